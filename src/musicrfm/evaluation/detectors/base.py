"""What every detector shares: the :class:`Detection` record, the silence policy, pitch-class
names and the windowing of per-window traces."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicrfm.errors import AudioError, ConfigError
from musicrfm.evaluation.frontend import HOP, SAMPLE_RATE, rms_db
from musicrfm.theory import PITCH_CLASSES

log = logging.getLogger(__name__)

SILENT = "silent"
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}


@dataclass(frozen=True)
class Detection:
    """What a detector heard in one clip.

    label: the clip-level decision (``SILENT`` for silent audio).
    confidence: in [0, 1]; the probability of ``label`` where the detector has a distribution.
    classes: the label set that ``probs`` and ``trace_probs`` columns refer to (empty for tempo).
    probs: clip-level probabilities over ``classes`` (None when not applicable).
    times: centres of the trace windows, seconds.
    trace_labels: the decision in each window.
    trace_probs: (windows, classes) probabilities, or None.
    trace_values: a numeric trace (BPM for tempo, MIDI pitch for pitch trackers), or None.
    details: detector-specific extras (root, bpm, midi, direction, ...).
    """

    concept: str
    label: str
    confidence: float
    classes: tuple[str, ...] = ()
    probs: np.ndarray | None = None
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trace_labels: tuple[str, ...] = ()
    trace_probs: np.ndarray | None = None
    trace_values: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def silent(self) -> bool:
        return self.label == SILENT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (clip-level fields and details, no traces)."""
        out: dict[str, Any] = {
            "concept": self.concept,
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
        }
        for key, value in self.details.items():
            out[key] = value.item() if isinstance(value, np.generic) else value
        return out


def normalize_pitch_class(name: str) -> str:
    """'Db' -> 'C#', 'c' -> 'C'; raises ConfigError for anything else."""
    text = str(name).strip()
    if not text:
        raise ConfigError("empty pitch-class name")
    text = text[0].upper() + text[1:]
    text = _FLATS.get(text, text)
    if text not in PITCH_CLASSES:
        raise ConfigError(
            f"unknown pitch class {name!r}; expected one of {', '.join(PITCH_CLASSES)}"
        )
    return text


def check_silence(
    y: np.ndarray, concept: str, silence_db: float, on_silent: str
) -> Detection | None:
    """The ``SILENT`` detection when ``y`` is below ``silence_db`` (or AudioError with
    ``on_silent="raise"``); None when there is something to hear."""
    if on_silent not in ("label", "raise"):
        raise ConfigError(f"on_silent must be 'label' or 'raise', got {on_silent!r}")
    level = rms_db(y)
    if level >= silence_db:
        return None
    message = f"audio is silent ({level:.1f} dBFS < {silence_db:.0f} dBFS threshold)"
    if on_silent == "raise":
        raise AudioError(message)
    log.warning("%s: %s", concept, message)
    return Detection(concept=concept, label=SILENT, confidence=0.0, details={"rms_db": level})


def windows(
    n_frames: int, window_s: float, hop_s: float, frame_rate: float
) -> list[tuple[int, int]]:
    """(start, stop) frame spans of ``window_s`` every ``hop_s``; the last one ends the clip."""
    if window_s <= 0 or hop_s <= 0:
        raise ConfigError("window_s and hop_s must be positive")
    win = max(1, int(round(window_s * frame_rate)))
    hop = max(1, int(round(hop_s * frame_rate)))
    if n_frames <= win:
        return [(0, n_frames)]
    starts = list(range(0, n_frames - win + 1, hop))
    if starts[-1] + win < n_frames:
        starts.append(n_frames - win)
    return [(s, s + win) for s in starts]


def track_frame_rate(times: np.ndarray) -> float:
    """Frames per second of a pitch track (the detectors' frame rate for a single frame)."""
    return 1.0 / np.median(np.diff(times)) if len(times) > 1 else SAMPLE_RATE / HOP


def weighted_chroma(chroma: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The clip's chroma, frames weighted by their amplitude."""
    weights = 10 ** (levels[: chroma.shape[1]] / 20)
    return (chroma * weights[None, : chroma.shape[1]]).sum(axis=1) / max(weights.sum(), 1e-12)


def chroma_trace(
    chroma: np.ndarray,
    levels: np.ndarray,
    window_s: float,
    hop_s: float,
    silence_db: float,
    score: Callable[[np.ndarray], np.ndarray],
    classes: tuple[str, ...],
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Per window: ``score`` of the mean chroma, and its best class (``SILENT`` when quiet)."""
    frame_rate = SAMPLE_RATE / HOP
    n = min(chroma.shape[1], levels.shape[0])
    spans = windows(n, window_s, hop_s, frame_rate)
    times = np.array([(a + b) / 2 / frame_rate for a, b in spans])
    probs = np.zeros((len(spans), len(classes)))
    labels: list[str] = []
    for i, (a, b) in enumerate(spans):
        level = 10 * np.log10(np.mean(10 ** (levels[a:b] / 10)) + 1e-20)
        probs[i] = score(chroma[:, a:b].mean(axis=1))
        labels.append(SILENT if level < silence_db else classes[int(np.argmax(probs[i]))])
    return times, tuple(labels), probs
