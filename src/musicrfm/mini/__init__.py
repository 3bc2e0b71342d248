"""The bundled mini MusicGen: spectral codec (registered with transformers), recipe and gates.

Importing this package registers `SpectralCodecConfig`/`SpectralCodecModel` with `AutoConfig` and
`AutoModel`, which `MusicgenForConditionalGeneration.from_pretrained` needs for the mini model.
"""

from __future__ import annotations

from musicrfm.mini.codec import MODEL_TYPE, SpectralCodecConfig, SpectralCodecModel
from musicrfm.mini.harmonic_codec import (
    HARMONIC_MODEL_TYPE,
    HarmonicCodecConfig,
    HarmonicCodecModel,
)

__all__ = [
    "HARMONIC_MODEL_TYPE",
    "MODEL_TYPE",
    "HarmonicCodecConfig",
    "HarmonicCodecModel",
    "SpectralCodecConfig",
    "SpectralCodecModel",
]
