"""Pitch class of a (mostly) single sounding note: CQT chroma, or a pitch tracker."""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.evaluation.detectors.base import (
    SILENT,
    Detection,
    check_silence,
    chroma_trace,
    normalize_pitch_class,
    track_frame_rate,
    weighted_chroma,
    windows,
)
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.frontend import (
    SAMPLE_RATE,
    PitchTracker,
    chromagram,
    frame_db,
    get_pitch_tracker,
    prepare_audio,
)
from musicrfm.theory import PITCH_CLASSES


def _pitch_class_probs(chroma_mean: np.ndarray, sharpness: float) -> np.ndarray:
    c = np.maximum(np.asarray(chroma_mean, dtype=np.float64), 0.0)
    total = c.max()
    if total <= 0:
        return np.full(12, 1.0 / 12)
    c = (c / total) ** sharpness
    return c / c.sum()


def detect_note(
    audio: Any,
    sr: int,
    *,
    method: str | PitchTracker = "chroma",
    window_s: float = 1.0,
    hop_s: float = 0.5,
    silence_db: float = -60.0,
    on_silent: str = "label",
    tuning: float | None = 0.0,
) -> Detection:
    """Pitch class of a (mostly) single sounding note.

    ``method="chroma"`` (default): CQT chroma, averaged over the clip; the probability of a
    pitch class is its share of the sharpened chroma energy. Any other value names a pitch
    tracker (``"pyin"``, ``"crepe"``, or a registered/instance back-end): the pitch-class
    histogram of voiced frames, weighted by voicing probability; ``details["midi"]`` then holds
    the median MIDI pitch (so the octave is known too).
    """
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "notes", silence_db, on_silent)
    if silent is not None:
        return silent
    if method == "chroma":
        return _chroma_note(y, window_s, hop_s, silence_db, tuning)
    return _tracked_note(y, get_pitch_tracker(method), window_s, hop_s)


def _chroma_note(
    y: np.ndarray, window_s: float, hop_s: float, silence_db: float, tuning: float | None
) -> Detection:
    levels = frame_db(y)
    chroma = chromagram(y, tuning=tuning)
    probs = _pitch_class_probs(weighted_chroma(chroma, levels), 2.0)
    times, labels, trace = chroma_trace(
        chroma,
        levels,
        window_s,
        hop_s,
        silence_db,
        lambda c: _pitch_class_probs(c, 2.0),
        PITCH_CLASSES,
    )
    best = int(np.argmax(probs))
    return Detection(
        concept="notes",
        label=PITCH_CLASSES[best],
        confidence=float(probs[best]),
        classes=PITCH_CLASSES,
        probs=probs,
        times=times,
        trace_labels=labels,
        trace_probs=trace,
        details={"method": "chroma"},
    )


def _tracked_note(y: np.ndarray, tracker: PitchTracker, window_s: float, hop_s: float) -> Detection:
    track = tracker.track(y, SAMPLE_RATE)
    voiced = np.isfinite(track.f0)
    if not voiced.any():
        return Detection(
            concept="notes",
            label=SILENT,
            confidence=0.0,
            details={"method": tracker.name, "reason": "no voiced frames"},
        )
    import librosa

    midi = np.full(track.f0.shape, np.nan)
    midi[voiced] = librosa.hz_to_midi(track.f0[voiced])
    pcs = np.full(midi.shape, -1)
    pcs[voiced] = np.round(midi[voiced]).astype(int) % 12
    w = np.where(voiced, np.maximum(track.voiced_prob, 1e-3), 0.0)

    def hist(sel: np.ndarray) -> np.ndarray:
        h = np.bincount(pcs[sel & voiced], weights=w[sel & voiced], minlength=12)[:12]
        return h / h.sum() if h.sum() > 0 else np.full(12, 1.0 / 12)

    probs = hist(np.ones_like(voiced))
    frame_rate = track_frame_rate(track.times)
    spans = windows(len(track.f0), window_s, hop_s, frame_rate)
    times = np.array([(a + b) / 2 / frame_rate for a, b in spans])
    trace = np.zeros((len(spans), 12))
    labels, values = [], []
    for i, (a, b) in enumerate(spans):
        sel = np.zeros_like(voiced)
        sel[a:b] = True
        trace[i] = hist(sel)
        has = (sel & voiced).any()
        labels.append(PITCH_CLASSES[int(np.argmax(trace[i]))] if has else SILENT)
        values.append(float(np.nanmedian(midi[a:b])) if has else np.nan)
    best = int(np.argmax(probs))
    return Detection(
        concept="notes",
        label=PITCH_CLASSES[best],
        confidence=float(probs[best]),
        classes=PITCH_CLASSES,
        probs=probs,
        times=times,
        trace_labels=tuple(labels),
        trace_probs=trace,
        trace_values=np.array(values),
        details={
            "method": tracker.name,
            "midi": float(np.nanmedian(midi)),
            "voiced_fraction": float(voiced.mean()),
        },
    )


def _same_pitch_class(detected: str, target: Any) -> bool:
    return normalize_pitch_class(detected) == normalize_pitch_class(str(target))


def _describe(d: Detection) -> str:
    return f" midi={d.details['midi']:.1f}" if "midi" in d.details else ""


NOTES = register_detector(
    Detector(
        name="notes",
        detect=detect_note,
        aliases=("note", "pitch_class"),
        labels=PITCH_CLASSES,
        match=_same_pitch_class,
        target_key=lambda target: normalize_pitch_class(str(target)),
        describe=_describe,
    )
)
