"""Meter (time signature) from the accents and harmonic changes of tracked beats.

The beats come from :func:`~.tempo.detect_tempo`, extended at their median interval to the
start and end of the music (librosa's tracker trims weak beats at both ends, and on a short
clip that can drop a whole bar: the first downbeat and the last bar). Each beat gets two
features: its low-frequency onset strength (kick drums and bass notes, strongest on the
downbeat) and how much the beat-synchronous chroma after it differs from that before it, over
one and over two beats (:data:`CHANGE_SPANS`; chords change on bar lines and then hold). For each number of beats per bar
``P`` in (2, 3, 4) and each phase, the contrast is the mean feature on beats at that phase
minus the mean on the others. A winning ``P = 2`` is read one level up: beat trackers often
follow the eighth notes of a slow song, and then every other tracked beat is a real beat, so
the strong beats are grouped again by 2, 3 or 4 (bars of 4, 3 or 4 real beats); only when no
grouping of them beats :data:`FLAT_CONTRAST` is the answer 2/4. This second reading is tried
only where the tempo detector's ``octave_evidence`` says the onsets repeat about as strongly at
twice the tracked period (:data:`EIGHTHS_EVIDENCE`). A beat divided in three
(onsets at a third and two thirds of it stronger than at its half) makes it compound
(2 -> 6/8, 3 -> 9/8, 4 -> 12/8). ``details["downbeats"]`` are the bar lines found.
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
PERIODS = (2, 3, 4)
CHANGE_SPANS = (1, 2)
"""Beats of chroma averaged on each side of a beat for its chord change (geometric mean over
these spans: two beats average out a melody note that changes on every beat, one beat keeps a
change that lasts a single beat from counting on the beats around it)."""
FLAT_CONTRAST = 0.5
"""The "no grouping" value the strong beats' groupings must beat before a P = 2 reading is
taken as eighth-note tracking (z-scored feature units, as the contrasts)."""
EIGHTHS_EVIDENCE = -0.1
"""The tempo's ``octave_evidence`` under which a P = 2 reading may be taken one level up: the
onset envelope repeats at least about as strongly at twice the tracked beat's period
(eighth-note tracking reads about -0.3, right tempi -0.24 to 0.26). Chosen on the clean
SynTheory-style time-signature set (2/4 clicks otherwise read 4/4); the mixes' tuning figures
are the same from 0 to -0.1."""
TEMPERATURE = 0.25
"""Softmax temperature of the contrasts (z-scored feature units)."""


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-9)


def _peak(envelope: np.ndarray, frame: int) -> float:
    """The envelope's maximum within -2..+2 frames of ``frame`` (0 past its end)."""
    return float(envelope[max(0, frame - 2) : frame + 3].max()) if frame < len(envelope) else 0.0


def extend_beats(
    beats: np.ndarray, onset: np.ndarray, *, first: int = 3, relative: float = 0.3
) -> np.ndarray:
    """``beats`` (frames) continued at their median interval, backwards and forwards, while an
    onset at least ``relative`` times the tracked beats' median peak falls on the next beat.
    Frames before ``first`` are left out: the onset envelope's first frames are unreliable."""
    if len(beats) < 2:
        return beats
    interval = float(np.median(np.diff(beats)))
    floor = relative * float(np.median([_peak(onset, f) for f in beats]))
    before: list[int] = []
    t = beats[0] - interval
    while round(t) >= first and _peak(onset, int(round(t))) >= floor:
        before.append(int(round(t)))
        t -= interval
    after: list[int] = []
    t = beats[-1] + interval
    while round(t) < len(onset) - 2 and _peak(onset, int(round(t))) >= floor:
        after.append(int(round(t)))
        t += interval
    return np.asarray([*before[::-1], *beats, *after], dtype=int)


def beat_features(
    y: np.ndarray, beats: np.ndarray, spans: tuple[int, ...] = CHANGE_SPANS
) -> tuple[np.ndarray, np.ndarray]:
    """(low-frequency onset strength, chroma change) at each beat frame of ``beats``. The
    change over ``s`` beats is 1 - cosine between the mean beat chroma of the ``s`` beats from
    this one and of the ``s`` beats before it (0 on the first beat); the feature is the
    geometric mean over ``spans``: high only where the harmony changes at this beat and stays
    changed (a bar line), not where one beat differs (an accent click, a passing note)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=HOP, n_mels=64, fmax=8000)
    low = librosa.onset.onset_strength(S=librosa.power_to_db(mel[:6]), sr=SAMPLE_RATE)
    chroma = chromagram(y)
    chroma = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-12)
    n = chroma.shape[1]
    last = beats[-1] + (beats[-1] - beats[-2] if len(beats) > 1 else 8)
    edges = [*(min(int(f), n - 1) for f in beats), min(int(last), n)]
    per_beat = np.stack(
        [chroma[:, a : max(b, a + 1)].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1
    )
    accents = np.array([_peak(low, int(f)) for f in beats])
    changes = np.ones(len(beats))
    for span in spans:
        change = np.zeros(len(beats))
        for i in range(1, len(beats)):
            before = per_beat[:, max(0, i - span) : i].mean(axis=1)
            after = per_beat[:, i : i + span].mean(axis=1)
            denom = float(np.linalg.norm(before) * np.linalg.norm(after))
            change[i] = max(1.0 - float(before @ after) / denom, 0.0) if denom > 0 else 0.0
        changes *= change
    return accents, changes ** (1.0 / len(spans))


def period_contrast(feature: np.ndarray, period: int) -> tuple[float, int]:
    """The best (contrast, phase) of ``feature`` at beats ``phase mod period``; -inf under two
    whole periods (one bar's accent is no evidence of a bar length)."""
    best = (-np.inf, 0)
    if len(feature) < 2 * period:
        return best
    for phase in range(period):
        on = feature[phase::period]
        off = np.delete(feature, np.arange(phase, len(feature), period))
        if len(on) and len(off):
            best = max(best, (float(on.mean() - off.mean()), phase))
    return best


def _softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    p = np.exp((values - values.max()) / temperature)
    return p / p.sum()


def meter_probs(
    values: np.ndarray, sub_values: np.ndarray | None, temperature: float = TEMPERATURE
) -> np.ndarray:
    """p(2, 3, 4 beats a bar) from the contrasts of P = 2, 3, 4 (``values``) and of the strong
    beats of P = 2 grouped by 2, 3, 4 (``sub_values``; None: too few beats). The P = 2 share
    goes to 4 (groups of 2 or 4: 4/4 at the eighth-note level), 3 (3/4) or, through the
    :data:`FLAT_CONTRAST` option, stays 2 (2/4)."""
    p = _softmax(values, temperature)
    if sub_values is None or not np.isfinite(sub_values).any():
        return p
    q = _softmax(np.concatenate([[FLAT_CONTRAST], sub_values]), temperature)
    return np.array([p[0] * q[0], p[1] + p[0] * q[2], p[2] + p[0] * (q[1] + q[3])])


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
    """Time signature, one of :data:`METER_LABELS`; ``details["beats_per_bar"]``,
    ``details["downbeats"]`` (seconds), ``details["contrasts"]`` (P = 2, 3, 4) and
    ``details["eighths"]`` (the tracked beats were read as eighth notes). ``probs``: see
    :func:`meter_probs` (simple or compound as detected); fewer than 6 beats gives ``SILENT``."""
    import librosa

    y = prepare_audio(audio, sr)
    silent = check_silence(y, "time_signatures", silence_db, on_silent)
    if silent is not None:
        return silent
    tempo = detect_tempo(y, SAMPLE_RATE)
    onset = librosa.onset.onset_strength(y=y, sr=SAMPLE_RATE, hop_length=HOP)
    beats = np.round(np.asarray(tempo.details.get("beats", []), float) * SAMPLE_RATE / HOP)
    beats = extend_beats(beats.astype(int), onset)
    if len(beats) < 6:
        return Detection(
            concept="time_signatures",
            label=SILENT,
            confidence=0.0,
            details={"reason": "fewer than 6 beats"},
        )
    accents, changes = beat_features(y, beats)
    score = accent_weight * zscore(accents) + change_weight * zscore(changes)
    contrasts = [period_contrast(score, p) for p in PERIODS]
    values = np.array([c for c, _ in contrasts])
    strong = contrasts[0][1]
    sub = [period_contrast(score[strong::2], p) for p in PERIODS]
    sub_values = np.array([c for c, _ in sub]) if len(score[strong::2]) >= 4 else None
    if tempo.details.get("octave_evidence", 0.0) >= EIGHTHS_EVIDENCE:
        sub_values = None
    if sub_values is not None and not np.isfinite(sub_values).any():
        sub_values = None
    probs = meter_probs(values, sub_values)
    k = int(np.argmax(probs))
    period = PERIODS[k]
    # bar lines: the direct reading, or the strong beats' grouping when that gave the label
    direct = _softmax(values, TEMPERATURE)[k]
    eighths = bool(k > 0 and sub_values is not None and probs[k] - direct > direct)
    if eighths:
        j = (0 if sub_values[0] >= sub_values[2] else 2) if k == 2 else 1
        downbeats = beats[strong::2][sub[j][1] :: PERIODS[j]]
    else:
        downbeats = beats[contrasts[k][1] :: period]
    names = _COMPOUND if _is_compound(onset, beats) else _SIMPLE
    classes = tuple(names[p] for p in PERIODS)
    return Detection(
        concept="time_signatures",
        label=classes[k],
        confidence=float(probs[k]),
        classes=classes,
        probs=probs,
        details={
            "beats_per_bar": period,
            "downbeats": [round(float(t), 4) for t in downbeats * HOP / SAMPLE_RATE],
            "bpm": tempo.details.get("bpm"),
            "contrasts": [round(float(v), 4) if np.isfinite(v) else None for v in values],
            "sub_contrasts": None
            if sub_values is None
            else [round(float(v), 4) if np.isfinite(v) else None for v in sub_values],
            "eighths": eighths,
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
