"""Typed errors. The CLI turns any `MusicRFMError` into one clear line and a non-zero exit."""

from __future__ import annotations


class MusicRFMError(Exception):
    """Base class for every expected, user-fixable problem."""


class ConfigError(MusicRFMError, ValueError):
    """A bad option, an unknown concept/label, or impossible parameters."""


class DatasetError(MusicRFMError):
    """A dataset folder or manifest cannot be read or written."""


class RenderError(MusicRFMError):
    """Audio cannot be rendered (e.g. a missing soundfont)."""


class AudioError(MusicRFMError):
    """An audio file is corrupt, empty, silent or otherwise unusable."""


class ModelError(MusicRFMError):
    """A model cannot be loaded or does not fit what was asked of it."""


class CompatibilityError(MusicRFMError):
    """Two artefacts (model, directions, features, cache) do not belong together."""
