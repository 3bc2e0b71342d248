"""The public API: every advertised name resolves; importing the package has no side effects."""

from __future__ import annotations

import musicrfm

PROMISED = (
    "load_model",
    "ConceptDirections",
    "SteeringPlan",
    "SteeringDirection",
    "generate",
    "extract_features",
    "train_directions",
)


def test_every_public_name_resolves() -> None:
    for name in musicrfm.__all__:
        assert getattr(musicrfm, name) is not None, name
    assert set(PROMISED) <= set(musicrfm.__all__)


def test_importing_the_models_package_registers_the_bundled_codecs() -> None:
    from transformers import AutoConfig

    import musicrfm.models  # noqa: F401
    from musicrfm.models.codecs.harmonic import HARMONIC_MODEL_TYPE
    from musicrfm.models.codecs.spectral import MODEL_TYPE

    assert type(AutoConfig.for_model(MODEL_TYPE)).__name__ == "SpectralCodecConfig"
    assert type(AutoConfig.for_model(HARMONIC_MODEL_TYPE)).__name__ == "HarmonicCodecConfig"
