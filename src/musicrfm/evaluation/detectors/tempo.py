"""Tempo in BPM by librosa beat tracking, and the MIREX tempo-match rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.evaluation.detectors.base import SILENT, Detection, check_silence
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.frontend import HOP, SAMPLE_RATE, prepare_audio, rms_db

OCTAVE_FACTORS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def tempo_match(
    estimate: float,
    reference: float,
    *,
    tolerance: float = 0.04,
    factors: tuple[float, ...] = (1.0,),
) -> bool:
    """True when ``estimate`` is within ``tolerance`` (relative) of ``reference`` times a factor.

    ``factors=(1.0,)`` is the strict MIREX "Accuracy 1"; :data:`OCTAVE_FACTORS` (x1, x2, x1/2,
    x3, x1/3) is "Accuracy 2", which forgives the tempo-octave errors beat trackers make.
    """
    if not (np.isfinite(estimate) and np.isfinite(reference)) or reference <= 0:
        return False
    return any(abs(estimate - reference * f) <= tolerance * reference * f for f in factors)


def detect_tempo(
    audio: Any,
    sr: int,
    *,
    start_bpm: float = 120.0,
    std_bpm: float = 1.0,
    window_s: float = 4.0,
    silence_db: float = -60.0,
    on_silent: str = "label",
) -> Detection:
    """Tempo in BPM by librosa beat tracking.

    The label is the BPM rounded to an integer (``details["bpm"]`` is the float, ``details["beats"]``
    the beat times). Confidence is the regularity of the tracked beats, 1 - CV of the
    inter-beat intervals, clipped to [0, 1] (0 with fewer than 3 beats). ``trace_values`` is the
    local tempo (autocorrelation tempogram over ``window_s``) at each onset frame, sampled every
    0.5 s. Compare with :func:`tempo_match`.

    The estimate uses librosa's log-normal tempo prior centred on ``start_bpm``, ``std_bpm``
    octaves wide (librosa's default 1.0). With it, synthetic click tracks above ~165 BPM come
    out at half tempo (strict accuracy 0.83, octave-tolerant 1.00 on 161 clips of 50-210 BPM);
    ``std_bpm=2`` scored 0.91 strict there, but was found on that same set, so it is not the
    default.
    """
    import librosa

    y = prepare_audio(audio, sr)
    silent = check_silence(y, "tempos", silence_db, on_silent)
    if silent is not None:
        return silent
    onset = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    global_tempo = librosa.feature.tempo(
        onset_envelope=onset, sr=SAMPLE_RATE, hop_length=HOP, start_bpm=start_bpm, std_bpm=std_bpm
    )
    tempo, beats = librosa.beat.beat_track(
        onset_envelope=onset,
        sr=SAMPLE_RATE,
        hop_length=HOP,
        bpm=float(global_tempo[0]),
        units="time",
    )
    bpm = float(np.atleast_1d(tempo)[0])
    if len(beats) >= 3:
        ibi = np.diff(beats)
        confidence = float(np.clip(1.0 - ibi.std() / max(ibi.mean(), 1e-9), 0.0, 1.0))
    else:
        confidence = 0.0
    times, labels, trace_values = _local_tempo(y, onset, start_bpm, std_bpm, window_s, silence_db)
    return Detection(
        concept="tempos",
        label=str(int(round(bpm))),
        confidence=confidence,
        times=times,
        trace_labels=labels,
        trace_values=trace_values,
        details={"bpm": bpm, "beats": [round(float(b), 4) for b in beats]},
    )


def _local_tempo(
    y: np.ndarray,
    onset: np.ndarray,
    start_bpm: float,
    std_bpm: float,
    window_s: float,
    silence_db: float,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """The local tempo every 0.5 s (autocorrelation over ``window_s``) and its labels."""
    import librosa

    duration = len(y) / SAMPLE_RATE
    ac = float(min(window_s, max(duration, 1.0)))
    local = librosa.feature.tempo(
        onset_envelope=onset,
        sr=SAMPLE_RATE,
        hop_length=HOP,
        start_bpm=start_bpm,
        std_bpm=std_bpm,
        ac_size=ac,
        aggregate=None,
    )
    frame_rate = SAMPLE_RATE / HOP
    step = max(1, int(round(0.5 * frame_rate)))
    idx = np.arange(0, len(local), step)
    trace_values = local[idx].astype(float)
    half = int(frame_rate)  # level over +-1 s: clicks are sparse, single frames are often quiet
    labels = tuple(
        SILENT
        if rms_db(y[max(0, (i - half) * HOP) : (i + half) * HOP]) < silence_db
        else str(int(round(v)))
        for i, v in zip(idx, trace_values)
    )
    return idx / frame_rate, labels, trace_values


def _tempo_match(detected: str, target: Any, **options: Any) -> bool:
    return tempo_match(float(detected), float(target), **options)


def _describe(d: Detection) -> str:
    return "" if d.silent else f" bpm={d.details['bpm']:.1f}"


TEMPOS = register_detector(
    Detector(
        name="tempos",
        detect=detect_tempo,
        aliases=("tempo",),
        match=_tempo_match,
        score_options={"factors": OCTAVE_FACTORS},
        windowed=False,
        row_details=("bpm",),
        value_key="bpm",
        describe=_describe,
    )
)
