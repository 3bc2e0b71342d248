"""Triad quality and root by chroma template matching."""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import (
    Detection,
    check_silence,
    chroma_trace,
    weighted_chroma,
)
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.frontend import chromagram, frame_db, prepare_audio
from musicrfm.spelling import chord_quality
from musicrfm.theory import PITCH_CLASSES

CHORD_QUALITIES = ("major", "minor", "augmented", "diminished")
CHORD_INTERVALS = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "augmented": (0, 4, 8),
    "diminished": (0, 3, 6),
}


def chord_templates(harmonics: int = 4, decay: float = 0.6) -> tuple[tuple[str, ...], np.ndarray]:
    """Unit-norm chroma templates for 12 roots x 4 qualities, names like ``"C:major"``.

    Each chord tone contributes its first ``harmonics`` partials (weights ``decay**k``) folded
    into pitch classes, which models real instruments (the 5th partial of a minor chord's root
    is its major third, for instance) better than binary templates.
    """
    names: list[str] = []
    rows: list[np.ndarray] = []
    partial_pcs = [int(round(12 * np.log2(k + 1))) % 12 for k in range(harmonics)]
    for quality in CHORD_QUALITIES:
        for root in range(12):
            t = np.zeros(12)
            for iv in CHORD_INTERVALS[quality]:
                for k, pc in enumerate(partial_pcs):
                    t[(root + iv + pc) % 12] += decay**k
            names.append(f"{PITCH_CLASSES[root]}:{quality}")
            rows.append(t / np.linalg.norm(t))
    return tuple(names), np.stack(rows)


def _chord_scores(chroma_mean: np.ndarray, templates: np.ndarray, temperature: float) -> np.ndarray:
    c = np.maximum(np.asarray(chroma_mean, dtype=np.float64), 0.0)
    norm = np.linalg.norm(c)
    if norm <= 0:
        return np.full(templates.shape[0], 1.0 / templates.shape[0])
    cos = templates @ (c / norm)
    z = (cos - cos.max()) / temperature
    p = np.exp(z)
    return p / p.sum()


def detect_chord(
    audio: Any,
    sr: int,
    *,
    window_s: float = 1.0,
    hop_s: float = 0.5,
    silence_db: float = -60.0,
    on_silent: str = "label",
    harmonics: int = 4,
    decay: float = 0.6,
    temperature: float = 0.02,
    tuning: float | None = 0.0,
) -> Detection:
    """Triad quality (major/minor/augmented/diminished) and root by chroma template matching.

    The label is the quality; ``details["root"]`` and ``details["chord"]`` ("C#:minor") give the
    root. ``probs`` is over the four qualities (summing the 12 roots); the full 48-way
    distribution is in ``details["chord_probs"]``. Probabilities are a softmax of template
    cosine similarity at ``temperature``. The augmented triad is symmetric, so its root is only
    known up to a major third.
    """
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "chords", silence_db, on_silent)
    if silent is not None:
        return silent
    names, templates = chord_templates(harmonics, decay)
    levels = frame_db(y)
    chroma = chromagram(y, tuning=tuning)
    clip = weighted_chroma(chroma, levels)

    def quality_probs(c: np.ndarray) -> np.ndarray:
        return (
            _chord_scores(c, templates, temperature).reshape(len(CHORD_QUALITIES), 12).sum(axis=1)
        )

    full = _chord_scores(clip, templates, temperature)
    best = int(np.argmax(full))
    quality = CHORD_QUALITIES[best // 12]
    root = PITCH_CLASSES[best % 12]
    q_probs = full.reshape(len(CHORD_QUALITIES), 12).sum(axis=1)
    times, labels, trace = chroma_trace(
        chroma, levels, window_s, hop_s, silence_db, quality_probs, CHORD_QUALITIES
    )
    return Detection(
        concept="chords",
        label=quality,
        confidence=float(q_probs[CHORD_QUALITIES.index(quality)]),
        classes=CHORD_QUALITIES,
        probs=q_probs,
        times=times,
        trace_labels=labels,
        trace_probs=trace,
        details={
            "root": root,
            "chord": names[best],
            "root_confidence": float(full[best] / q_probs[CHORD_QUALITIES.index(quality)]),
            "chord_probs": dict(zip(names, np.round(full, 6).tolist())),
        },
    )


def _quality_key(target: Any) -> str:
    """The quality a target names, as users write it (``minor``, ``min``, ``m``, ``C:min``,
    ``Cm``...); anything else lower-cased, so it matches nothing."""
    try:
        return chord_quality(str(target))
    except ConfigError:
        return str(target).strip().lower()


def _same_quality(detected: str, target: Any) -> bool:
    return detected == _quality_key(target)


def _describe(d: Detection) -> str:
    return "" if d.silent else f" root={d.details['root']}"


CHORDS = register_detector(
    Detector(
        name="chords",
        detect=detect_chord,
        aliases=("chord",),
        labels=CHORD_QUALITIES,
        match=_same_quality,
        target_key=_quality_key,
        row_details=("root",),
        describe=_describe,
    )
)
