"""Clip specifications: pure data describing one clip to render and its manifest row."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError

BPM = 120
BEAT = 60.0 / BPM
VELOCITY = 64


@dataclass(frozen=True)
class Note:
    """One MIDI note, times in seconds from the start of the (uncropped) track."""

    start: float
    end: float
    pitch: int
    velocity: int = VELOCITY


@dataclass(frozen=True)
class ClipSpec:
    """A clip to render: its manifest fields, its notes and how to render them."""

    concept: str
    key: str
    index: int
    label: str
    params: Mapping[str, Any]
    notes: tuple[Note, ...]
    program: int
    drums: bool = False
    offset: float = 0.0
    reverb_level: int = 0
    seed: int = 0

    def row(self) -> dict[str, Any]:
        """Manifest fields of this clip (without path/duration/sample rate)."""
        return {"concept": self.concept, "label": self.label, **dict(self.params)}


@dataclass(frozen=True)
class Selection:
    """Which clips of a concept to make (every field ``None`` means all)."""

    programs: tuple[int, ...] | None = None
    roots: tuple[int, ...] | None = None
    octaves: tuple[int, ...] | None = None
    labels: tuple[str, ...] | None = None
    limit_per_class: int | None = None
    seed: int = 0


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed from a base seed and any labels (independent of process/hash salt)."""
    text = "\x1f".join([str(int(seed)), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def limit_per_class(clips: list[ClipSpec], limit: int, seed: int) -> list[ClipSpec]:
    """At most ``limit`` clips per label, drawn with ``seed``, kept in canonical order."""
    if limit < 1:
        raise ConfigError(f"--limit-per-class must be at least 1, got {limit}")
    by_label: dict[str, list[ClipSpec]] = {}
    for clip in clips:
        by_label.setdefault(clip.label, []).append(clip)
    rng = np.random.default_rng(seed)
    keep: list[ClipSpec] = []
    for label in sorted(by_label):
        group = by_label[label]
        order = rng.permutation(len(group))[:limit]
        keep.extend(group[i] for i in sorted(order))
    return sorted(keep, key=lambda c: c.index)


# ----------------------------------------------------------------------------- helpers
