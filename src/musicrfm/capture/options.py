"""`CaptureOptions`: how features are captured, as one frozen value.

It travels from the CLI (or a caller) to `extract_features`, into the cache key (the fields that
change what is computed, see :meth:`CaptureOptions.cache_fields`) and into the FeatureSet's
``meta["options"]``, from which it is rebuilt with ``CaptureOptions.from_dict(meta["options"])``
(or :meth:`CaptureOptions.from_meta`, which also reads folders written before the options were
stored). Where the cache lives, whether it is used and progress bars are not options: they do not
change the features.

This module imports neither torch nor the models, so a command can build and check the options
before loading anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from musicrfm.errors import ConfigError

POOLINGS = ("mean", "last", "max")


@dataclass(frozen=True)
class CaptureOptions:
    """What `extract_features` does with every clip.

    pooling: ``"mean"`` (default, the paper's), ``"last"`` or ``"max"`` over valid frames.
    prompt: text condition; ``""`` (default) is the empty prompt, None the null condition.
    batch_size: clips per decoder forward. Clips are batched in order of length.
    keep_frames: also keep per-frame features (``FeatureSet.frames``; large: L x frames x d).
    max_seconds, truncate: longer files are skipped with an error, or cut when ``truncate``.
    shard_size: clips per cache shard (default 256, or 32 with ``keep_frames``).
    """

    pooling: str = "mean"
    prompt: str | None = ""
    batch_size: int = 8
    keep_frames: bool = False
    max_seconds: float | None = 30.0
    truncate: bool = False
    shard_size: int | None = None

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}")
        for name in ("batch_size", "shard_size"):
            value = getattr(self, name)
            if value is None and name == "shard_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        m = self.max_seconds
        if m is not None and (
            isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m <= 0
        ):
            raise ConfigError(
                f"max_seconds must be a number of seconds > 0 (or None: no limit), got {m!r}"
            )
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise ConfigError(
                f"prompt must be text (or None: the null condition), got {self.prompt!r}"
            )

    def with_changes(self, **changes: Any) -> CaptureOptions:
        """A copy with some fields changed; unknown names are a ConfigError, not ignored."""
        names = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ConfigError(f"unknown capture options {unknown}; valid: {', '.join(names)}")
        return replace(self, **changes) if changes else self

    @property
    def clips_per_shard(self) -> int:
        """``shard_size``, or its default (fewer clips per shard when frames are kept)."""
        return self.shard_size or (32 if self.keep_frames else 256)

    def cache_fields(self) -> dict[str, Any]:
        """The options that change what is computed, as the feature cache key holds them.

        batch_size and shard_size are left out: they only change how the work is cut up. The
        content (names, bool coercion) must not change, or existing caches stop matching.
        """
        return {
            "pooling": self.pooling,
            "prompt": self.prompt,
            "keep_frames": bool(self.keep_frames),
            "max_seconds": self.max_seconds,
            "truncate": bool(self.truncate),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaptureOptions:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> CaptureOptions:
        """The options a FeatureSet was captured with, from its ``meta``.

        Folders written before ``meta["options"]`` existed give pooling, prompt and max_seconds
        (what they recorded); the other fields take their defaults.
        """
        if isinstance(meta.get("options"), dict):
            return cls.from_dict(meta["options"])
        old = {k: meta[k] for k in ("pooling", "prompt", "max_seconds") if k in meta}
        return cls(**old)
