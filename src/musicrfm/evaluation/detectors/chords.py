"""Triad quality and root by chroma template correlation, with a no-chord outcome.

Why it is built this way (issue 19): cosine similarity of raw chroma to overtone-weighted
templates favours the diminished and augmented templates on a flat chroma (they sit closer to
it than major and minor do), so noise, drums and dense full mixes came out "diminished". Here

* each frame's chroma is log-compressed and scaled to unit norm before frames are averaged, so a
  loud kick or a held bass note does not outweigh the rest of the window;
* a window is compared with each template by *correlation* (both mean-centred), which is blind to
  the flat part of the chroma, so no quality is favoured by a flat chroma;
* whether there is a chord at all is a separate question, answered from the chroma's contrast
  (its standard deviation over its mean) times the best correlation: noise, drums and silence
  have a nearly flat chroma and get the label :data:`NO_CHORD`;
* one note with its harmonics is not a chord: a held note's 3rd partial is its fifth and its 5th
  partial its major third, so its compressed chroma looks like a major triad (the bundled note
  model's unsteered clips read "major" 24/24). When the strong peaks of the window's CQT spectrum
  sit on the harmonic series of one of them (or of the octave below it, for instruments with a
  weak fundamental), the window gets :data:`NO_CHORD` (``details["lone_note"]`` names the note);
  see :func:`harmonic_fit`;
* the label is the argmax of the probabilities returned with it: ``probs`` holds the four
  qualities' probabilities (summed over roots, multiplied by the probability that a chord
  sounds), ``details["no_chord_prob"]`` the rest; the root is the best root of that quality.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import (
    SILENT,
    Detection,
    check_silence,
    windows,
)
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.frontend import (
    HOP,
    SAMPLE_RATE,
    chromagram,
    cqt36,
    frame_db,
    prepare_audio,
)
from musicrfm.spelling import chord_quality
from musicrfm.theory import PITCH_CLASSES

CHORD_QUALITIES = ("major", "minor", "augmented", "diminished")
CHORD_INTERVALS = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "augmented": (0, 4, 8),
    "diminished": (0, 3, 6),
}
NO_CHORD = "none"
"""The label of a window or clip without a recognisable triad (noise, drums, one note...)."""
COMPRESSION = 100.0
"""Chroma is compressed as ``log1p(COMPRESSION * c / max(c))`` before each frame is normalised."""
TEMPERATURE = 0.02
PRESENCE = 0.035
PRESENCE_WIDTH = 0.003
"""The default softmax temperature and no-chord logistic (see :func:`chord_distribution`),
fitted by log loss on the bars of 30 TimGM6mb mixes (the chords) and 18 noise / drum clips
(no chord): correlation temperature 0.02 (0.086 nats per bar; 0.01: 0.117, 0.05: more).
Evidence (contrast x best correlation) on those bars is >= 0.05, on noise <= 0.01, on drums
alone <= 0.03."""
FLOOR_DB = 40.0
"""Frames more than this far below the clip's loudest frame do not count (release tails)."""
LONE_PEAK = 0.1
LONE_CANDIDATE = 0.3
LONE_PARTIALS = 8
LONE_TOLERANCE = 1.5
LONE_MAX_OFF = 0.12
LONE_WIDTH = 0.015
"""One note or a chord (:func:`harmonic_fit`): CQT peaks of at least ``LONE_PEAK`` of the
strongest bin count, those of ``LONE_CANDIDATE`` may be the fundamental; a peak is a partial
when it lies within ``LONE_TOLERANCE`` bins (a third of a semitone each) of one of the first
``LONE_PARTIALS`` harmonics. p(one note) is a logistic of (``LONE_MAX_OFF`` - off-series
share) / ``LONE_WIDTH``. Chosen by looking at (not fitted to) 180 TimGM6mb single notes (9
programs, MIDI 24-83: off share 0 for 90%, <= 0.26 all; low steel guitar and choir notes are
the highest), 96 clean triads (>= 0.20: root-position piano majors are the lowest) and 152
mix bars (>= 0.31)."""
_BINS_PER_SEMITONE = 3


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


def frame_features(chroma: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-compressed, per-frame unit-norm chroma (12, frames) and which frames count."""
    n = min(chroma.shape[1], levels.shape[0])
    c = np.maximum(chroma[:, :n], 0.0)
    c = np.log1p(COMPRESSION * c / max(float(c.max()), 1e-12))
    c = c / np.maximum(np.linalg.norm(c, axis=0, keepdims=True), 1e-12)
    loud = levels[:n] >= levels[:n].max() - FLOOR_DB
    return c, loud


def window_chroma(features: np.ndarray, loud: np.ndarray, a: int, b: int) -> np.ndarray:
    """Mean of the counted frames in ``[a, b)`` (all frames when none counts)."""
    sel = loud[a:b]
    block = features[:, a:b]
    return block[:, sel].mean(axis=1) if sel.any() else block.mean(axis=1)


def chord_distribution(
    chroma_mean: np.ndarray,
    templates: np.ndarray,
    *,
    temperature: float = TEMPERATURE,
    presence: float = PRESENCE,
    presence_width: float = PRESENCE_WIDTH,
) -> tuple[np.ndarray, float]:
    """(48 chord probabilities, probability of no chord) for one averaged chroma vector.

    p(chord k) = p(a chord sounds) * softmax(correlation / temperature)_k, where p(a chord
    sounds) is a logistic of (contrast * best correlation - ``presence``) / ``presence_width``.
    """
    v = np.asarray(chroma_mean, dtype=np.float64)
    mean = float(v.mean())
    centred = v - mean
    spread = float(np.linalg.norm(centred))
    if mean <= 0 or spread <= 1e-12:
        return np.zeros(templates.shape[0]), 1.0
    tc = templates - templates.mean(axis=1, keepdims=True)
    tc = tc / np.linalg.norm(tc, axis=1, keepdims=True)
    corr = tc @ (centred / spread)
    contrast = float(v.std() / mean)
    evidence = contrast * float(corr.max())
    p_chord = 1.0 / (1.0 + np.exp(-(evidence - presence) / presence_width))
    z = np.exp((corr - corr.max()) / temperature)
    return p_chord * z / z.sum(), float(1.0 - p_chord)


def harmonic_fit(
    spectrum: np.ndarray,
    *,
    peak: float = LONE_PEAK,
    candidate: float = LONE_CANDIDATE,
    partials: int = LONE_PARTIALS,
    tolerance: float = LONE_TOLERANCE,
) -> tuple[float, float]:
    """(share of the spectrum's peak amplitude off the best single harmonic series, that
    series' fundamental as MIDI) for a mean CQT magnitude spectrum (:func:`~..frontend.cqt36`
    bins: 36 per octave from C1).

    Candidate fundamentals: every peak of at least ``candidate`` of the strongest, and the
    octave below each (a weak fundamental); peaks below a candidate count against it, peaks
    above its last partial neither way (up there every semitone is near a partial). A triad in
    close voicing leaves its third or fifth off every candidate's series: C4 E4 G4 is C4 + 4
    and + 7 semitones, or C3 + 16 and + 19; a fifth or an octave alone does fit (no triad
    either). Nothing lower than an octave below is tried, or C4 E4 G4 would be partials 4, 5, 6
    of C2.
    """
    s = np.asarray(spectrum, dtype=np.float64)
    top = float(s.max()) if s.size else 0.0
    if top <= 0:
        return 1.0, float("nan")
    is_peak = np.r_[True, s[1:] > s[:-1]] & np.r_[s[:-1] >= s[1:], True] & (s >= peak * top)
    bins = np.flatnonzero(is_peak).astype(np.float64)
    amps = s[bins.astype(int)]
    series = 3 * 12 * np.log2(np.arange(1, partials + 1))
    best_off, best_f0 = 1.0, float(bins[0])
    for strong in bins[amps >= candidate * top]:
        for f0 in (strong, strong - 12.0 * _BINS_PER_SEMITONE):
            heard = bins <= f0 + series[-1] + tolerance
            distance = np.abs(bins[heard, None] - (f0 + series)[None, :]).min(axis=1)
            off = float(amps[heard][distance > tolerance].sum() / amps[heard].sum())
            if off < best_off:
                best_off, best_f0 = off, f0
    return best_off, 24.0 + best_f0 / _BINS_PER_SEMITONE


def one_note_probability(off: float) -> float:
    """p(the window is one note with its partials), from :func:`harmonic_fit`'s off share."""
    return float(1.0 / (1.0 + np.exp(-(LONE_MAX_OFF - off) / LONE_WIDTH)))


def decide(p48: np.ndarray, p_none: float) -> tuple[str, str, np.ndarray, float]:
    """(quality or NO_CHORD, chord name, quality probabilities, confidence of the label)."""
    q = p48.reshape(len(CHORD_QUALITIES), 12).sum(axis=1)
    best_q = int(np.argmax(q))
    if p_none >= q[best_q]:
        return NO_CHORD, NO_CHORD, q, p_none
    root = int(np.argmax(p48[best_q * 12 : (best_q + 1) * 12]))
    name = f"{PITCH_CLASSES[root]}:{CHORD_QUALITIES[best_q]}"
    return CHORD_QUALITIES[best_q], name, q, float(q[best_q])


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
    temperature: float = TEMPERATURE,
    presence: float = PRESENCE,
    presence_width: float = PRESENCE_WIDTH,
    tuning: float | None = 0.0,
    lone_notes: bool = True,
) -> Detection:
    """Triad quality (major/minor/augmented/diminished, or :data:`NO_CHORD`) and root.

    The label is the quality; ``details["root"]`` and ``details["chord"]`` ("C#:minor") give the
    root (``NO_CHORD`` when there is none). ``probs`` is over the four qualities, summed over
    the 12 roots and scaled by the probability that a chord sounds, so it sums to
    ``1 - details["no_chord_prob"]``; the label is always the most probable of the five
    outcomes and ``confidence`` its probability. The full 48-way distribution is in
    ``details["chord_probs"]``. ``trace_labels`` are per-window qualities and
    ``details["window_chords"]`` the per-window chord names. ``temperature``, ``presence`` and
    ``presence_width`` were fitted on TimGM6mb mixes (``benchmarks/detectors_mixes.py``) and
    are reported on FluidR3 mixes. The augmented triad is symmetric, so its root is only known
    up to a major third.

    ``lone_notes`` (default on): a window whose CQT peaks are one note and its partials
    (:func:`harmonic_fit`) has no chord; ``details["lone_note"]`` names the clip's note when the
    clip as a whole is one (else ""), ``details["off_series_share"]`` is the clip's fit.
    """
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "chords", silence_db, on_silent)
    if silent is not None:
        return silent
    names, templates = chord_templates(harmonics, decay)
    levels = frame_db(y)
    features, loud = frame_features(chromagram(y, tuning=tuning), levels)
    spectrum = cqt36(y, tuning=tuning)  # the analysis the chroma was folded from
    options = {"temperature": temperature, "presence": presence, "presence_width": presence_width}

    def judge(a: int, b: int) -> tuple[str, str, np.ndarray, float, np.ndarray, float]:
        p48, p_none = chord_distribution(window_chroma(features, loud, a, b), templates, **options)
        if lone_notes:
            p_one = one_note_probability(harmonic_fit(window_chroma(spectrum, loud, a, b))[0])
            p48, p_none = p48 * (1.0 - p_one), 1.0 - (1.0 - p_none) * (1.0 - p_one)
        return (*decide(p48, p_none), p48, p_none)

    quality, chord, q_probs, confidence, full, p_none = judge(0, features.shape[1])
    off, f0 = harmonic_fit(window_chroma(spectrum, loud, 0, features.shape[1]))
    lone = ""
    if lone_notes and one_note_probability(off) >= 0.5 and np.isfinite(f0):
        lone = PITCH_CLASSES[int(round(f0)) % 12] + str(int(round(f0)) // 12 - 1)
    frame_rate = SAMPLE_RATE / HOP
    spans = windows(features.shape[1], window_s, hop_s, frame_rate)
    times = np.array([(a + b) / 2 / frame_rate for a, b in spans])
    trace = np.zeros((len(spans), len(CHORD_QUALITIES)))
    labels: list[str] = []
    window_chords: list[str] = []
    for i, (a, b) in enumerate(spans):
        level = 10 * np.log10(np.mean(10 ** (levels[a:b] / 10)) + 1e-20)
        w_quality, w_chord, trace[i], _, _, _ = judge(a, b)
        labels.append(SILENT if level < silence_db else w_quality)
        window_chords.append(SILENT if level < silence_db else w_chord)
    root = chord.split(":")[0] if chord != NO_CHORD else NO_CHORD
    root_conf = (
        0.0 if chord == NO_CHORD else float(full[names.index(chord)] / max(confidence, 1e-12))
    )
    return Detection(
        concept="chords",
        label=quality,
        confidence=float(confidence),
        classes=CHORD_QUALITIES,
        probs=q_probs,
        times=times,
        trace_labels=tuple(labels),
        trace_probs=trace,
        details={
            "root": root,
            "chord": chord,
            "root_confidence": root_conf,
            "no_chord_prob": round(p_none, 6),
            "chord_probs": dict(zip(names, np.round(full, 6).tolist())),
            "window_chords": window_chords,
            "lone_note": lone,
            "off_series_share": round(off, 4),
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
