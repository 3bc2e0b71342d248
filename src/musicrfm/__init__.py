"""MusicRFM: steer frozen text-to-music models with Recursive Feature Machine concept directions.

Importing the package has no side effects and loads neither torch nor transformers: the public
names below are imported on first use (PEP 562). The stages, in the order imports flow, are
listed in `STAGES` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from musicrfm.errors import (
    AudioError,
    CompatibilityError,
    ConfigError,
    DatasetError,
    ModelError,
    MusicRFMError,
    RenderError,
)
from musicrfm.lazy import lazy_exports

__version__ = "0.1.0"

# The pipeline's stages, in the order imports flow: a module may import from its own stage and
# from earlier ones, never from a later one (tests/test_architecture.py walks the import graph).
STAGES = (
    (
        "base",
        (
            "musicrfm",
            "musicrfm.errors",
            "musicrfm.lazy",
            "musicrfm.theory",
            "musicrfm.spelling",
            "musicrfm.files",
        ),
    ),
    ("models", ("musicrfm.models",)),
    ("synth", ("musicrfm.synth",)),
    ("capture", ("musicrfm.capture",)),
    ("probes", ("musicrfm.probes",)),
    ("steering", ("musicrfm.steering",)),
    ("evaluation", ("musicrfm.evaluation",)),
    ("experiments", ("musicrfm.experiments",)),
    ("studio", ("musicrfm.studio",)),
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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


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
