"""Stage 1, models: load a text-to-music model and talk to it through one adapter.

- :mod:`.adapter` -- the `ModelAdapter` Protocol (what capture and steering need), the position
  convention, `block_output`;
- :mod:`.musicgen` -- `MusicGenAdapter` for MusicGen and MusicGen-Melody;
- :mod:`.loader` -- `load_model`, the one loader, and its table of names;
- :mod:`.random` -- config-built MusicGens with seeded random weights (tests, benchmarks);
- :mod:`.codecs` -- the audio codecs the bundled models need.

Importing this package registers those codecs with transformers' Auto classes, so after
``import musicrfm.models`` the stock ``MusicgenForConditionalGeneration.from_pretrained`` loads
a bundled model folder; :func:`load_model` registers them itself.
"""

from __future__ import annotations

from musicrfm.models.adapter import (
    POSITION_CONVENTION,
    DecoderInputs,
    ModelAdapter,
    block_output,
    resolve_device,
    resolve_dtype,
)
from musicrfm.models.codecs import register_codecs
from musicrfm.models.loader import (
    BEAT_MODEL_NAME,
    BUNDLED_MODEL_NAME,
    BUNDLED_NAMES,
    POLY_MODEL_NAME,
    bundled_model_dirs,
    load_model,
    random_model,
    resolve_name,
)
from musicrfm.models.musicgen import MusicGenAdapter

register_codecs()

__all__ = [
    "BUNDLED_MODEL_NAME",
    "BUNDLED_NAMES",
    "POLY_MODEL_NAME",
    "BEAT_MODEL_NAME",
    "POSITION_CONVENTION",
    "DecoderInputs",
    "ModelAdapter",
    "MusicGenAdapter",
    "block_output",
    "bundled_model_dirs",
    "load_model",
    "random_model",
    "register_codecs",
    "resolve_device",
    "resolve_dtype",
    "resolve_name",
]
