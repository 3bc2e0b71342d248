"""MusicRFM: steer frozen text-to-music models with Recursive Feature Machine concept directions."""

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

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "CompatibilityError",
    "ConfigError",
    "DatasetError",
    "ModelError",
    "MusicRFMError",
    "RenderError",
    "__version__",
]
