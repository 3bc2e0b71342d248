"""MusicRFM: steer frozen text-to-music models with Recursive Feature Machine concept directions.

Importing the package registers the bundled mini model's spectral codec with `transformers`, so
`MusicgenForConditionalGeneration.from_pretrained("models/musicgen-mini")` works after
`import musicrfm`. Everything else is imported on first use (PEP 562), so `musicrfm --help` and
`import musicrfm` stay cheap beyond that one registration.
"""

from __future__ import annotations

import importlib
from typing import Any

from musicrfm.errors import (
    AudioError,
    CompatibilityError,
    ConfigError,
    DatasetError,
    ModelError,
    MusicRFMError,
    RenderError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "generate_dataset": "musicrfm.synth",
    "load_dataset": "musicrfm.synth",
    "SynthDataset": "musicrfm.synth",
    "load_model": "musicrfm.models",
    "random_model": "musicrfm.models",
    "MusicGenAdapter": "musicrfm.models",
    "extract_features": "musicrfm.capture",
    "FeatureSet": "musicrfm.features",
    "RFM": "musicrfm.rfm",
    "RFMParams": "musicrfm.rfm",
    "train_directions": "musicrfm.probes",
    "TrainResult": "musicrfm.probes",
    "ConceptDirections": "musicrfm.directions",
    "Schedule": "musicrfm.schedules",
    "SteeringDirection": "musicrfm.steering",
    "SteeringPlan": "musicrfm.steering",
    "apply_plan": "musicrfm.steering",
    "compile_plan": "musicrfm.steering",
    "generate": "musicrfm.generate",
    "GenerationResult": "musicrfm.generate",
    "reproduce": "musicrfm.generate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'musicrfm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


def _register_mini_codec() -> None:
    """Make the bundled model's custom codec known to transformers' Auto classes."""
    importlib.import_module("musicrfm.mini.codec")


_register_mini_codec()

__all__ = [
    "AudioError",
    "CompatibilityError",
    "ConfigError",
    "DatasetError",
    "ModelError",
    "MusicRFMError",
    "RenderError",
    "__version__",
    *_LAZY,
]
