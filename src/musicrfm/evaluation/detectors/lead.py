"""Pitch class of the lead melody in a full mix (drums, bass, chords and a melody on top).

:func:`~.notes.detect_note` hears the whole chroma, so in a mix the bass and the chord
instrument outvote the melody. This detector follows the lead voice only, with one of two
back-ends (:data:`LEAD_BACKENDS`):

* ``"auto"`` (default): basic-pitch where it is installed, else salience; which one judged a
  clip is in ``details["backend"]`` (and in a results row).
* ``"salience"`` (no dependency, ~10x faster): a harmonic-sum salience on a 36-bins-per-octave CQT
  over the lead register; per frame, the *highest* candidate whose salience is within
  ``rho`` of the frame's best (a plain argmax picks the octave below the melody, whose
  harmonics include all of the melody's). Fitted on TimGM6mb mixes.
* ``"basic-pitch"``: Spotify's polyphonic transcription (its ONNX model ships in the wheel; run
  with onnxruntime); per frame the highest sounding note in the lead register.

Both give a MIDI lead pitch per frame (:func:`lead_track`); the clip label is the pitch class
the lead holds longest. Measured per lead note on 57 FluidR3 mixes (``musicrfm evaluate
detectors --data MIXES --backend lead=salience,basic-pitch``; salience was fitted on TimGM6mb):
pitch class 0.914 (salience) / 0.917 (basic-pitch), exact MIDI 0.791 / 0.897, interval between
consecutive notes 0.789 / 0.863. basic-pitch is the better octave reader, at ~10x the cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import (
    SILENT,
    Detection,
    check_silence,
    normalize_pitch_class,
    windows,
)
from musicrfm.evaluation.detectors.notes import _describe, _same_pitch_class  # as for notes
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.frontend import (
    HOP,
    SAMPLE_RATE,
    PitchTrack,
    cqt36,
    frame_db,
    prepare_audio,
    register_pitch_tracker,
)
from musicrfm.theory import PITCH_CLASSES

LEAD_BACKENDS = ("auto", "salience", "basic-pitch")
LEAD_RANGE = (60, 96)
"""MIDI range searched for the lead voice (C4-C7)."""
BASIC_PITCH_INSTALL = (
    "pip install onnxruntime resampy mir_eval && pip install --no-deps basic-pitch "
    "(its metadata pulls TensorFlow on Linux; the ONNX model inside the wheel needs only onnxruntime)"
)


@dataclass(frozen=True)
class LeadTrack:
    """The lead voice per frame: ``midi`` (float, NaN where no lead sounds) at ``times``."""

    times: np.ndarray
    midi: np.ndarray
    backend: str


def lead_track(
    y: np.ndarray,
    *,
    backend: str = "auto",
    low: int = LEAD_RANGE[0],
    high: int = LEAD_RANGE[1],
    harmonics: int = 3,
    rho: float = 0.75,
    floor_db: float = 40.0,
) -> LeadTrack:
    """The lead voice of ``y`` (mono, at :data:`SAMPLE_RATE`), frame rate SAMPLE_RATE / HOP."""
    if backend == "auto":
        backend = "basic-pitch" if basic_pitch_available() else "salience"
    if backend == "salience":
        return _salience_track(y, low, high, harmonics, rho, floor_db)
    if backend == "basic-pitch":
        return _basic_pitch_track(y, low, high)
    raise ConfigError(
        f"unknown lead backend {backend!r}; valid: {', '.join(LEAD_BACKENDS)} (default: auto)"
    )


def basic_pitch_available() -> bool:
    """Whether the basic-pitch back-end can run here (the package and onnxruntime import)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("basic_pitch", "onnxruntime"))


def _salience_track(
    y: np.ndarray, low: int, high: int, harmonics: int, rho: float, floor_db: float
) -> LeadTrack:
    spec = cqt36(y)  # bin j is MIDI 24 + j / 3
    s = np.log1p(100.0 * spec / max(float(spec.max()), 1e-12))
    cands = np.arange((low - 24) * 3, (high - 24) * 3 + 1)
    sal = np.zeros((len(cands), s.shape[1]))
    for h in range(1, harmonics + 1):
        idx = cands + int(round(36 * np.log2(h)))
        inside = idx < s.shape[0]
        sal[inside] += 0.8 ** (h - 1) * s[idx[inside]]
    ok = sal >= rho * sal.max(axis=0, keepdims=True)
    best = len(cands) - 1 - np.argmax(ok[::-1], axis=0)
    midi = 24 + cands[best] / 3.0
    levels = frame_db(y)[: len(midi)]
    midi = np.where(levels >= levels.max() - floor_db, midi, np.nan)
    times = np.arange(len(midi)) * HOP / SAMPLE_RATE
    return LeadTrack(times, midi, "salience")


def _basic_pitch_track(y: np.ndarray, low: int, high: int) -> LeadTrack:
    events = transcribe(y)
    n = int(np.ceil(len(y) / HOP))
    times = np.arange(n) * HOP / SAMPLE_RATE
    midi = np.full(n, np.nan)
    for start, end, pitch in events:
        if not low <= pitch <= high:
            continue
        a, b = int(start * SAMPLE_RATE / HOP), int(np.ceil(end * SAMPLE_RATE / HOP))
        seg = midi[a:b]
        midi[a:b] = np.where(np.isnan(seg) | (seg < pitch), pitch, seg)
    return LeadTrack(times, midi, "basic-pitch")


def transcribe(y: np.ndarray) -> list[tuple[float, float, int]]:
    """Note events (start s, end s, MIDI) of ``y`` by basic-pitch (ONNX model, onnxruntime)."""
    import contextlib
    import io
    import tempfile

    import soundfile as sf

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # basic-pitch warns at import about back-ends it does not need
    try:
        from basic_pitch import ICASSP_2022_MODEL_PATH
        from basic_pitch.inference import predict
    except ImportError as exc:
        raise ConfigError(f"transcription needs basic-pitch: {BASIC_PITCH_INSTALL}") from exc
    finally:
        root.setLevel(level)
    with (
        tempfile.NamedTemporaryFile(suffix=".wav") as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        sf.write(tmp.name, y, SAMPLE_RATE)
        _, _, events = predict(tmp.name, ICASSP_2022_MODEL_PATH)  # it prints a line per file
    return sorted((float(s), float(e), int(p)) for s, e, p, *_ in events)


@dataclass
class LeadTracker:
    """:func:`lead_track` as a pitch tracker (``detect_interval(tracker="lead")``,
    ``detect_note(method="lead")``): the lead voice of a mix instead of its lowest peak."""

    backend: str = "salience"
    low: int = 36
    high: int = LEAD_RANGE[1]
    name: str = "lead"

    def track(self, y: np.ndarray, sr: int) -> PitchTrack:
        y = prepare_audio(y, sr)
        lead = lead_track(y, backend=self.backend, low=self.low, high=self.high)
        f0 = 440.0 * 2 ** ((lead.midi - 69) / 12)
        return PitchTrack(lead.times, f0, np.isfinite(f0).astype(float))


register_pitch_tracker("lead", LeadTracker)
register_pitch_tracker(
    "basic-pitch", lambda: LeadTracker(backend="basic-pitch", name="basic-pitch")
)


def note_pitch(track: LeadTrack, start: float, end: float, margin: float = 0.05) -> int | None:
    """The most frequent rounded lead MIDI pitch between ``start`` and ``end`` (None: unvoiced)."""
    frame_rate = SAMPLE_RATE / HOP
    a = int((start + margin) * frame_rate)
    b = max(a + 1, int((end - margin) * frame_rate))
    seg = track.midi[a:b]
    seg = np.round(seg[np.isfinite(seg)]).astype(int)
    if seg.size == 0:
        return None
    values, counts = np.unique(seg, return_counts=True)
    return int(values[np.argmax(counts)])


def pitch_class_shares(midi: np.ndarray) -> np.ndarray:
    """Share of the voiced frames of a lead track on each pitch class (uniform when none)."""
    return _histogram(midi)


def _histogram(midi: np.ndarray) -> np.ndarray:
    voiced = np.isfinite(midi)
    if not voiced.any():
        return np.full(12, 1.0 / 12)
    h = np.bincount(np.round(midi[voiced]).astype(int) % 12, minlength=12).astype(float)
    return h / h.sum()


def detect_lead(
    audio: Any,
    sr: int,
    *,
    backend: str = "auto",
    window_s: float = 1.0,
    hop_s: float = 0.5,
    silence_db: float = -60.0,
    on_silent: str = "label",
) -> Detection:
    """Pitch class of the lead melody: the class the lead voice holds in most frames.

    ``probs`` is the share of lead frames per pitch class; ``trace_values`` the median lead
    MIDI pitch per window, ``trace_labels`` its pitch class; ``details["midi"]`` the median
    lead pitch of the clip, ``details["voiced_fraction"]`` the share of frames with a lead.
    """
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "lead", silence_db, on_silent)
    if silent is not None:
        return silent
    track = lead_track(y, backend=backend)
    voiced = np.isfinite(track.midi)
    if not voiced.any():
        return Detection(
            concept="lead", label=SILENT, confidence=0.0, details={"reason": "no lead voice"}
        )
    probs = _histogram(track.midi)
    frame_rate = SAMPLE_RATE / HOP
    spans = windows(len(track.midi), window_s, hop_s, frame_rate)
    times = np.array([(a + b) / 2 / frame_rate for a, b in spans])
    trace = np.stack([_histogram(track.midi[a:b]) for a, b in spans])
    values = np.array(
        [
            float(np.nanmedian(track.midi[a:b])) if np.isfinite(track.midi[a:b]).any() else np.nan
            for a, b in spans
        ]
    )
    labels = tuple(
        SILENT if not np.isfinite(v) else PITCH_CLASSES[int(np.argmax(p))]
        for v, p in zip(values, trace)
    )
    best = int(np.argmax(probs))
    return Detection(
        concept="lead",
        label=PITCH_CLASSES[best],
        confidence=float(probs[best]),
        classes=PITCH_CLASSES,
        probs=probs,
        times=times,
        trace_labels=labels,
        trace_probs=trace,
        trace_values=values,
        details={
            "backend": track.backend,
            "midi": float(np.nanmedian(track.midi)),
            "voiced_fraction": float(voiced.mean()),
        },
    )


LEAD = register_detector(
    Detector(
        name="lead",
        detect=detect_lead,
        aliases=("melody", "lead_pitch_class"),
        labels=PITCH_CLASSES,
        match=_same_pitch_class,
        target_key=lambda target: normalize_pitch_class(str(target)),
        row_details=("midi", "backend"),
        describe=_describe,
    )
)
