"""Audio codecs of the bundled models, with EnCodec's interface (`encode`/`decode`/`forward`).

`MusicgenForConditionalGeneration.from_pretrained` finds a codec through transformers' Auto
classes by its ``model_type``. Nothing is registered on import: :func:`register_codecs` does it,
and the model loader calls it before loading any folder (importing :mod:`musicrfm.models` calls
it too, for stock ``from_pretrained`` on a bundled folder).
"""

from __future__ import annotations


def register_codecs() -> None:
    """Make the project's codecs known to `AutoConfig`/`AutoModel` (idempotent)."""
    from transformers import AutoConfig, AutoModel

    from musicrfm.models.codecs.harmonic import (
        HARMONIC_MODEL_TYPE,
        HarmonicCodecConfig,
        HarmonicCodecModel,
    )
    from musicrfm.models.codecs.polyphonic import (
        POLYPHONIC_MODEL_TYPE,
        PolyphonicCodecConfig,
        PolyphonicCodecModel,
    )
    from musicrfm.models.codecs.spectral import MODEL_TYPE, SpectralCodecConfig, SpectralCodecModel

    AutoConfig.register(MODEL_TYPE, SpectralCodecConfig, exist_ok=True)
    AutoModel.register(SpectralCodecConfig, SpectralCodecModel, exist_ok=True)
    AutoConfig.register(HARMONIC_MODEL_TYPE, HarmonicCodecConfig, exist_ok=True)
    AutoModel.register(HarmonicCodecConfig, HarmonicCodecModel, exist_ok=True)
    AutoConfig.register(POLYPHONIC_MODEL_TYPE, PolyphonicCodecConfig, exist_ok=True)
    AutoModel.register(PolyphonicCodecConfig, PolyphonicCodecModel, exist_ok=True)
