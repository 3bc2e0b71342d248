"""MusicRFM: steer frozen text-to-music models with Recursive Feature Machine concept directions.

Importing the package has no side effects and loads neither torch nor transformers: the public
names below are imported on first use (PEP 562). The stages, in the order imports flow, are
listed in `STAGES` (see docs/ARCHITECTURE.md).
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

# The pipeline's stages, in the order imports flow: a module may import from its own stage and
# from earlier ones, never from a later one (tests/test_architecture.py walks the import graph).
STAGES = (
    ("base", ("musicrfm", "musicrfm.errors", "musicrfm.theory", "musicrfm.files")),
    ("models", ("musicrfm.models",)),
    ("synth", ("musicrfm.synth",)),
    ("capture", ("musicrfm.capture",)),
    ("probes", ("musicrfm.probes",)),
    ("steering", ("musicrfm.steering",)),
    ("evaluation", ("musicrfm.evaluation",)),
    ("experiments", ("musicrfm.experiments",)),
    ("mini", ("musicrfm.mini",)),
    ("cli", ("musicrfm.commands", "musicrfm.cli", "musicrfm.__main__")),
)

# public name -> module that defines it
_LAZY = {
    "generate_dataset": "musicrfm.synth",
    "load_dataset": "musicrfm.synth",
    "SynthDataset": "musicrfm.synth",
    "load_model": "musicrfm.models",
    "random_model": "musicrfm.models",
    "MusicGenAdapter": "musicrfm.models",
    "extract_features": "musicrfm.capture.extract",
    "FeatureSet": "musicrfm.capture.features",
    "RFM": "musicrfm.probes.rfm",
    "RFMParams": "musicrfm.probes.rfm",
    "train_directions": "musicrfm.probes.training",
    "TrainResult": "musicrfm.probes.training",
    "ConceptDirections": "musicrfm.probes.directions",
    "Schedule": "musicrfm.steering",
    "SteeringDirection": "musicrfm.steering",
    "SteeringPlan": "musicrfm.steering",
    "apply_plan": "musicrfm.steering",
    "compile_plan": "musicrfm.steering",
    "generate": "musicrfm.steering",
    "GenerationResult": "musicrfm.steering",
    "reproduce": "musicrfm.steering",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'musicrfm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


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
