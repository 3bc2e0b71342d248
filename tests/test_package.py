"""The public API: every advertised name resolves, and the mini codec is registered on import."""

from __future__ import annotations

import musicrfm


def test_every_public_name_resolves() -> None:
    for name in musicrfm.__all__:
        assert getattr(musicrfm, name) is not None, name


def test_import_registers_the_mini_codec() -> None:
    from transformers import AutoConfig

    from musicrfm.models.codecs.spectral import MODEL_TYPE

    assert type(AutoConfig.for_model(MODEL_TYPE)).__name__ == "SpectralCodecConfig"
