"""What the schedules experiment hears, per concept: the class names of a concept, a user's
spelling of one, and a per-window trace of the class probabilities of a clip.

Notes and chord qualities come from their detectors' own traces. The interval detectors give a
clip-level answer only, so an interval trace runs the detector on each window and writes its
answer as a one-hot row: a glide from a second to a fifth then shows as the share of clips
whose window reads each interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import SILENT
from musicrfm.theory import INTERVAL_NAMES, PITCH_CLASSES

CONCEPTS = ("notes", "chords", "intervals")
INTERVAL_MODES = ("harmonic", "melodic")


@dataclass(frozen=True)
class Trace:
    """The clip's label, per-window centres (s), class probabilities (windows, classes) and
    decisions."""

    label: str
    times: np.ndarray
    probs: np.ndarray
    labels: tuple[str, ...]

    @property
    def sounding(self) -> bool:
        return len(self.times) > 0


def concept_classes(concept: str) -> tuple[str, ...]:
    """The classes a concept's trace columns refer to."""
    from musicrfm.evaluation.detectors.chords import CHORD_QUALITIES

    check_concept(concept)
    return {"notes": PITCH_CLASSES, "chords": CHORD_QUALITIES, "intervals": INTERVAL_NAMES}[concept]


def check_concept(concept: str) -> None:
    if concept not in CONCEPTS:
        raise ConfigError(
            f"unknown concept {concept!r} for schedules; valid: {', '.join(CONCEPTS)}"
        )


def class_name(concept: str, text: str) -> str:
    """A user's spelling (``G``/``Db``; ``aug``/``C+``; ``7``/``P5``/``perfect fifth``) as the
    concept's class name; a one-line ConfigError listing the valid ones otherwise."""
    from musicrfm.experiments.demo.config import note_name
    from musicrfm.spelling import chord_quality, interval_from_text
    from musicrfm.theory import interval_name

    check_concept(concept)
    if concept == "notes":
        return note_name(text)
    if concept == "chords":
        try:
            quality = chord_quality(text)
        except ConfigError:
            quality = ""
        if quality not in concept_classes("chords"):
            raise ConfigError(
                f"unknown chord quality {text!r}; valid: {', '.join(concept_classes('chords'))} "
                "(or a chord symbol such as Cm, Caug)"
            )
        return quality
    return interval_name(interval_from_text(text))


def named_classes(directions: Any, concept: str) -> Any:
    """``directions`` with their classes named as :func:`concept_classes` names them: strike
    clips label an interval by its semitones (``"7"``), the synthetic set and the detector's
    trace by its name (``"P5"``), so interval directions learned on strike clips are renamed
    (the vectors unchanged); any other directions are returned as they are."""
    from dataclasses import replace

    from musicrfm.theory import interval_name

    classes = [str(c) for c in directions.classes]
    if concept != "intervals" or not all(c.isdigit() and 1 <= int(c) <= 12 for c in classes):
        return directions
    return replace(directions, classes=[interval_name(int(c)) for c in classes])


def read_trace(
    concept: str,
    audio: np.ndarray,
    sr: int,
    *,
    window_s: float,
    hop_s: float,
    interval_mode: str = "harmonic",
) -> Trace:
    """The clip's per-window class probabilities (silent windows left out of ``sounding``)."""
    check_concept(concept)
    if concept == "notes":
        from musicrfm.evaluation.detectors.notes import detect_note

        d = detect_note(audio, sr, window_s=window_s, hop_s=hop_s)
    elif concept == "chords":
        from musicrfm.evaluation.detectors.chords import detect_chord

        d = detect_chord(audio, sr, window_s=window_s, hop_s=hop_s)
    else:
        return _interval_trace(audio, sr, window_s, hop_s, interval_mode)
    if d.trace_probs is None or not len(d.times):
        return Trace(d.label, np.zeros(0), np.zeros((0, len(concept_classes(concept)))), ())
    return Trace(d.label, np.asarray(d.times), np.asarray(d.trace_probs), tuple(d.trace_labels))


def _interval_trace(audio: np.ndarray, sr: int, window_s: float, hop_s: float, mode: str) -> Trace:
    from musicrfm.evaluation.detectors.intervals import detect_interval

    if mode not in INTERVAL_MODES:
        raise ConfigError(f"interval mode must be one of {', '.join(INTERVAL_MODES)}, got {mode!r}")
    y = np.asarray(audio, dtype=np.float32)
    win, hop = int(round(window_s * sr)), int(round(hop_s * sr))
    times, rows, labels = [], [], []
    for start in range(0, max(1, len(y) - win + 1), hop):
        d = detect_interval(y[start : start + win], sr, mode=mode, on_silent="label")
        row = np.zeros(len(INTERVAL_NAMES))
        semis = int(d.label) if d.label.isdigit() else 0
        if d.silent or not 1 <= semis <= len(INTERVAL_NAMES):
            labels.append(SILENT if d.silent else d.label)  # unison or wider than an octave
        else:
            row[semis - 1] = 1.0
            labels.append(INTERVAL_NAMES[semis - 1])
        times.append((start + win / 2) / sr)
        rows.append(row)
    probs = np.asarray(rows).reshape(-1, len(INTERVAL_NAMES))
    heard = probs.sum(0)
    label = INTERVAL_NAMES[int(np.argmax(heard))] if heard.any() else SILENT
    return Trace(label, np.asarray(times), probs, tuple(labels))
