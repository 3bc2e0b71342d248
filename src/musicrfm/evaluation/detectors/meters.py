"""Meter (time signature) from the accents and harmonic changes of tracked beats.

The beats come from :func:`~.tempo.detect_tempo`. Each beat gets two features: its
low-frequency onset strength (kick drums and accented clicks fall on the downbeat) and how much
the chroma changes across it (chords change on bar lines). For each number of beats per bar
``P`` in (2, 3, 4) and each phase, the contrast is the mean feature on beats at that phase
minus the mean on the others; the meter is the ``P`` with the largest contrast, and a beat
divided in three (onsets at a third and two thirds of it stronger than at its half) makes it
compound (2 -> 6/8, 3 -> 9/8, 4 -> 12/8). ``details["downbeats"]`` are the bar lines found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.evaluation.detectors.base import SILENT, Detection, check_silence
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.detectors.tempo import detect_tempo
from musicrfm.evaluation.frontend import HOP, SAMPLE_RATE, chromagram, prepare_audio

METER_LABELS = ("2/4", "3/4", "4/4", "6/8", "9/8", "12/8")
_SIMPLE = {2: "2/4", 3: "3/4", 4: "4/4"}
_COMPOUND = {2: "6/8", 3: "9/8", 4: "12/8"}


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-9)


def beat_features(y: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low-frequency onset strength, chroma change) at each beat frame of ``beats``."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=HOP, n_mels=64, fmax=8000)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[:6]), sr=SAMPLE_RATE)
    chroma = chromagram(y)
    chroma = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-12)
    n = chroma.shape[1]
    accents, changes = [], []
    for i, f in enumerate(beats):
        accents.append(float(low[max(0, f - 2) : f + 3].max()) if f < len(low) else 0.0)
        prev = beats[i - 1] if i > 0 else max(0, f - (beats[1] - beats[0] if len(beats) > 1 else 8))
        nxt = beats[i + 1] if i + 1 < len(beats) else min(n, 2 * f - prev)
        before = chroma[:, prev:f].mean(axis=1) if f > prev else np.zeros(12)
        after = chroma[:, f:nxt].mean(axis=1) if nxt > f else np.zeros(12)
        denom = np.linalg.norm(before) * np.linalg.norm(after)
        changes.append(1.0 - float(before @ after / denom) if denom > 0 else 0.0)
    return np.asarray(accents), np.asarray(changes)


def period_contrast(feature: np.ndarray, period: int) -> tuple[float, int]:
    """The best (contrast, phase) of ``feature`` at beats ``phase mod period``."""
    best = (-np.inf, 0)
    for phase in range(period):
        on = feature[phase::period]
        off = np.delete(feature, np.arange(phase, len(feature), period))
        if len(on) and len(off):
            best = max(best, (float(on.mean() - off.mean()), phase))
    return best


def _is_compound(onset: np.ndarray, beats: np.ndarray) -> bool:
    """Onsets at a third and two thirds of the beats stronger than at their half."""
    if len(beats) < 3:
        return False

    def at(fraction: float) -> float:
        idx = (beats[:-1] + fraction * np.diff(beats)).astype(int)
        return float(np.mean([onset[max(0, i - 1) : i + 2].max() for i in idx]))

    return (at(1 / 3) + at(2 / 3)) / 2 > 1.5 * at(1 / 2)


def detect_meter(
    audio: Any,
    sr: int,
    *,
    silence_db: float = -60.0,
    on_silent: str = "label",
    accent_weight: float = 1.0,
    change_weight: float = 1.0,
) -> Detection:
    """Time signature, one of :data:`METER_LABELS`; ``details["beats_per_bar"]`` and
    ``details["downbeats"]`` (seconds). ``probs`` is a softmax over the three beat groupings'
    contrasts (simple or compound as detected); fewer than 6 beats gives ``SILENT``."""
    import librosa

    y = prepare_audio(audio, sr)
    silent = check_silence(y, "time_signatures", silence_db, on_silent)
    if silent is not None:
        return silent
    tempo = detect_tempo(y, SAMPLE_RATE)
    beats = np.round(np.asarray(tempo.details.get("beats", []), float) * SAMPLE_RATE / HOP)
    beats = beats.astype(int)
    if len(beats) < 6:
        return Detection(
            concept="time_signatures",
            label=SILENT,
            confidence=0.0,
            details={"reason": "fewer than 6 beats"},
        )
    accents, changes = beat_features(y, beats)
    score = accent_weight * zscore(accents) + change_weight * zscore(changes)
    periods = (2, 3, 4)
    contrasts = [period_contrast(score, p) for p in periods]
    values = np.array([c for c, _ in contrasts])
    probs = np.exp((values - values.max()) / 0.25)
    probs /= probs.sum()
    k = int(np.argmax(values))
    onset = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    names = _COMPOUND if _is_compound(onset, beats) else _SIMPLE
    period, phase = periods[k], contrasts[k][1]
    classes = tuple(names[p] for p in periods)
    downbeats = beats[phase::period] * HOP / SAMPLE_RATE
    return Detection(
        concept="time_signatures",
        label=classes[k],
        confidence=float(probs[k]),
        classes=classes,
        probs=probs,
        details={
            "beats_per_bar": period,
            "downbeats": [round(float(t), 4) for t in downbeats],
            "bpm": tempo.details.get("bpm"),
        },
    )


def _same_meter(detected: str, target: Any) -> bool:
    return str(detected) == str(target).strip()


METERS = register_detector(
    Detector(
        name="time_signatures",
        detect=detect_meter,
        aliases=("meter", "meters", "time_signature"),
        match=_same_meter,
        windowed=False,
        row_details=("beats_per_bar",),
    )
)
