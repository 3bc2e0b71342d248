"""Key and mode (24 major / minor keys) and the mode of a scale (7 diatonic modes).

Key, in two steps, from the clip's chroma (log-compressed, each frame at unit norm, as the
chord detector reads it) and the chords heard in 1-s windows:

1. *Which diatonic collection* (a major key and its relative minor share one): the
   correlation with the 24 rotations of a key profile (:data:`KEY_PROFILES`; Temperley's
   Kostka-Payne profiles by default) + 2 x the share of window chords that are diatonic
   triads of the key (settles a profile's fifth errors: V-IV-I-V in F has a Bb that C major
   lacks) + 0.5 x the tonic triad's share. Right up to relative major / minor on 114/114
   seed-1 mixes.
2. *Which of the two tonics*: the pitch content is the same (C major's vi-IV-I-V is A minor's
   i-VI-III-VII), so only what the chords do tells them apart: the tonic triad's share of
   the windows + its probability in the first two chord windows (music starts on its tonic)
   + its probability in the last two (and ends on it: a cadence into a final tonic)
   + 2 x the share of the major triad on the fifth degree (the dominant; in a minor key the
   harmonic-minor V) + the profile correlation (:data:`TONIC_WEIGHTS`).

The step-1 weights and the first / dominant / profile weights were chosen on version-1 tuning
mixes (seeds 0-2, 57 TimGM6mb + 57 FluidR3 each); the last-chord weight and the tonic
temperature on TimGM6mb mixes of both versions (:data:`TONIC_WEIGHTS`); figures are reported on
FluidR3 and on held-out seeds 3 and 4 (docs/results/detectors-mixes/). Version 1 of the mix set
ended wherever its progression ended, and there some labelled keys cannot be told from the
audio at all: vi-IV-I-V and i-VI-III-VII are the same chords, and IV-V-iii-vi has no tonic
chord (it reads as VI-VII-v-i of the relative minor). Version 2 ends every clip on its tonic,
as music does; a clip cut off mid-phrase (generated audio) gives the last-chord cue the wrong
chord, and the other cues have to outvote it: the weight is half the first chord's so that
they can (a weight of 1 lost 6 of 57 version-1 clips, 0.5 loses 3).

Probabilities: p(collection) is the softmax of step 1 summed over the pair, times p(tonic |
collection), a logistic of the step-2 difference; the label is their argmax. A nearly flat
chroma (noise, drums, silence) gets :data:`NO_KEY`, as the chord detector's no-chord outcome
does. ``backend="essentia"`` runs essentia's KeyExtractor instead (``essentia_profile``:
``temperley2005``, ``edma``, ``bgate``...); it is kept for comparison (notes/LEARNINGS.md).

Scale mode: a SynTheory scale clip plays the seven notes of a mode from the tonic to its
octave, so the tonic sounds twice as long as any other degree. Templates are the mode's
pitch classes with the tonic doubled and each note's first partials folded in; the label is the
best of 7 modes x 12 tonics (the tonic is ``details["tonic"]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import Detection, check_silence, windows
from musicrfm.evaluation.detectors.chords import (
    NO_CHORD,
    chord_distribution,
    chord_templates,
    decide,
    frame_features,
    window_chroma,
)
from musicrfm.evaluation.detectors.registry import Detector, register_detector
from musicrfm.evaluation.detectors.tempo import ESSENTIA_INSTALL
from musicrfm.evaluation.frontend import HOP, SAMPLE_RATE, chromagram, frame_db, prepare_audio
from musicrfm.theory import MODES, PITCH_CLASSES

KEY_PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "albrecht": (
        (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
        (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052),
    ),
}
"""(major, minor) profiles, tonic first (Albrecht & Shanahan 2013: pop/classical corpus)."""
KEY_BACKENDS = ("chroma", "essentia")
ESSENTIA_KEY_PROFILES = ("edma", "bgate", "temperley", "krumhansl", "shaath", "temperley2005")
KEY_NAMES = tuple(f"{pc}:{mode}" for mode in ("major", "minor") for pc in PITCH_CLASSES)
NO_KEY = "none"
MODE_NAMES = tuple(MODES)


def _correlations(v: np.ndarray, templates: np.ndarray) -> np.ndarray:
    tc = templates - templates.mean(axis=1, keepdims=True)
    tc = tc / np.linalg.norm(tc, axis=1, keepdims=True)
    vc = v - v.mean()
    return tc @ (vc / max(float(np.linalg.norm(vc)), 1e-12))


def key_templates(profile: str = "temperley") -> np.ndarray:
    """(24, 12): the major keys C..B, then the minor keys C..B."""
    if profile not in KEY_PROFILES:
        raise ConfigError(f"unknown key profile {profile!r}; valid: {', '.join(KEY_PROFILES)}")
    major, minor = (np.asarray(p) for p in KEY_PROFILES[profile])
    return np.stack([np.roll(p, k) for p in (major, minor) for k in range(12)])


def mode_templates(harmonics: int = 3, decay: float = 0.5) -> np.ndarray:
    """(7 * 12, 12): each mode on each tonic, tonic weighted 2, partials folded in."""
    partial_pcs = [int(round(12 * np.log2(k + 1))) % 12 for k in range(harmonics)]
    rows = []
    for mode in MODE_NAMES:
        for tonic in range(12):
            t = np.zeros(12)
            for i, offset in enumerate(MODES[mode]):
                weight = 2.0 if i == 0 else 1.0
                for k, pc in enumerate(partial_pcs):
                    t[(tonic + offset + pc) % 12] += weight * decay**k
            rows.append(t)
    return np.stack(rows)


def diatonic_triads(key: str) -> list[str]:
    """The seven diatonic triads of ``"C:major"`` / ``"A:minor"`` (natural minor), tonic first."""
    tonic, mode = key.split(":")
    scale = "ionian" if mode == "major" else "aeolian"
    out = []
    for degree in range(1, 8):
        pcs = theory.diatonic_triad_pcs(PITCH_CLASSES.index(tonic), scale, degree)
        out.append(f"{PITCH_CLASSES[pcs[0]]}:{theory.triad_quality(pcs)}")
    return out


_DIATONIC = [diatonic_triads(k) for k in KEY_NAMES]


def window_distributions(
    features: np.ndarray, loud: np.ndarray, window_s: float = 1.0
) -> list[tuple[np.ndarray, float]]:
    """(48 chord probabilities, p(no chord)) of each ``window_s`` window, half-overlapping."""
    _, templates = chord_templates()
    return [
        chord_distribution(window_chroma(features, loud, a, b), templates)
        for a, b in windows(features.shape[1], window_s, window_s / 2, SAMPLE_RATE / HOP)
    ]


def window_chords(features: np.ndarray, loud: np.ndarray, window_s: float = 1.0) -> list[str]:
    """The chord (or NO_CHORD) of each ``window_s`` window, half-overlapping."""
    return [
        decide(p48, p_none)[1] for p48, p_none in window_distributions(features, loud, window_s)
    ]


def chord_terms(chords: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per key: the share of ``chords`` that are its diatonic triads, and that are its tonic."""
    heard = [c for c in chords if c != NO_CHORD]
    if not heard:
        return np.zeros(len(KEY_NAMES)), np.zeros(len(KEY_NAMES))
    fit = np.array([np.mean([c in d for c in heard]) for d in _DIATONIC])
    tonic = np.array([np.mean([c == d[0] for c in heard]) for d in _DIATONIC])
    return fit, tonic


_CHORD_NAMES = chord_templates()[0]
_TONIC_INDEX = np.array([_CHORD_NAMES.index(d[0]) for d in _DIATONIC])
_DOMINANT_INDEX = np.array(
    [
        _CHORD_NAMES.index(
            f"{PITCH_CLASSES[(PITCH_CLASSES.index(k.split(':')[0]) + 7) % 12]}:major"
        )
        for k in KEY_NAMES
    ]
)
RELATIVE = np.array([(k + 9) % 12 + 12 for k in range(12)] + [(k + 3) % 12 for k in range(12)])
"""Index in :data:`KEY_NAMES` of each key's relative minor / major."""
TONIC_WEIGHTS = {"tonic": 1.0, "first": 1.0, "last": 0.5, "dominant": 2.0, "profile": 1.0}
"""Step 2 of :func:`detect_key` (which tonic of a relative pair). tonic, first, dominant and
profile were chosen on the version-1 seed 0-2 mixes (342 clips, both soundfonts; the centre of
a plateau of 288-291 right); last on TimGM6mb mixes of both set versions, 171 of version 2
(seeds 0-2, which end on their tonic) and 57 of version 1 (seed 0, which end anywhere, as cut
generated audio does): weight 0 / 0.5 / 1 got 151 / 163 / 164 of the first and 48 / 45 / 42 of
the second; 0.5 has the most right in all (208 of 228)."""
TONIC_TEMPERATURE = 0.25
"""Logistic scale of p(tonic | collection), fitted by log loss on the version-2 tuning mixes
(0.2-0.3 within 1%; it was 0.5 before the last-chord cue widened the scores' range)."""


def tonic_terms(
    dists: list[tuple[np.ndarray, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per key: its tonic triad's mean probability in the first two windows with a chord and
    in the last two, and the mean probability of its dominant (the major triad on the fifth
    degree)."""
    heard = [p48 for p48, p_none in dists if decide(p48, p_none)[1] != NO_CHORD]
    if not heard:
        zero = np.zeros(len(KEY_NAMES))
        return zero, zero, zero
    probs = np.stack(heard)
    return (
        probs[:2, _TONIC_INDEX].mean(axis=0),
        probs[-2:, _TONIC_INDEX].mean(axis=0),
        probs[:, _DOMINANT_INDEX].mean(axis=0),
    )


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = np.exp((scores - scores.max()) / temperature)
    return z / z.sum()


def key_probabilities(
    collection_score: np.ndarray,
    tonic_score: np.ndarray,
    temperature: float,
    tonic_temperature: float,
) -> np.ndarray:
    """p(key) = p(its diatonic collection) x p(its tonic | the collection), over KEY_NAMES."""
    p1 = _softmax(collection_score, temperature)
    pair = p1 + p1[RELATIVE]
    diff = (tonic_score - tonic_score[RELATIVE]) / tonic_temperature
    return pair / (1.0 + np.exp(-np.clip(diff, -50, 50)))


def chroma_contrast(v: np.ndarray) -> float:
    """How far a clip's mean chroma is from flat (std / mean): noise and drums sit low, so a
    key or mode read off them is a guess (the ``min_contrast`` floor of both detectors)."""
    return float(v.std() / max(float(v.mean()), 1e-12))


def no_key(concept: str, classes: tuple[str, ...], contrast: float, **details: Any) -> Detection:
    """The detection of a chroma too flat to name a key or mode in: `NO_KEY`, confidence 0."""
    return Detection(
        concept=concept,
        label=NO_KEY,
        confidence=0.0,
        classes=classes,
        probs=np.zeros(len(classes)),
        details={"tonic": NO_KEY, **details, "contrast": contrast},
    )


def detect_key(
    audio: Any,
    sr: int,
    *,
    backend: str = "chroma",
    profile: str = "temperley",
    essentia_profile: str = "temperley2005",
    chord_weight: float = 2.0,
    tonic_weight: float = 0.5,
    tonic_weights: dict[str, float] | None = None,
    temperature: float = 0.1,
    tonic_temperature: float = TONIC_TEMPERATURE,
    min_contrast: float = 0.03,
    silence_db: float = -60.0,
    on_silent: str = "label",
    tuning: float | None = 0.0,
) -> Detection:
    """Key and mode, label ``"C:major"`` .. ``"B:minor"`` (or :data:`NO_KEY`).

    ``probs`` are over :data:`KEY_NAMES` (see the module docstring for the two steps):
    step 1 scores profile correlation + ``chord_weight`` x diatonic share + ``tonic_weight`` x
    tonic share at softmax ``temperature``; step 2 weighs ``tonic_weights`` (default
    :data:`TONIC_WEIGHTS`; all zero: each tonic of a pair 0.5) at ``tonic_temperature``.
    ``details`` has ``tonic``, ``mode``, ``contrast`` (the chroma's standard deviation over
    its mean) and ``collection_confidence`` (the pair's share, relative keys summed). A chroma
    with contrast below ``min_contrast`` (fitted on TimGM6mb: white and pink noise 0.01-0.02,
    drums alone 0.05-0.09 but with no correlation to any profile, full mixes 0.08-0.28)
    asserts no key: label NO_KEY, confidence 0. ``backend="essentia"``: essentia's
    KeyExtractor with profile type ``essentia_profile`` (``temperley2005`` by default,
    the best of :data:`ESSENTIA_KEY_PROFILES` on the seed-1 tuning mixes).
    """
    if backend not in KEY_BACKENDS:
        raise ConfigError(
            f"unknown key backend {backend!r}; valid: {', '.join(KEY_BACKENDS)} (default: chroma)"
        )
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "keys", silence_db, on_silent)
    if silent is not None:
        return silent
    features, loud = frame_features(chromagram(y, tuning=tuning), frame_db(y))
    v = window_chroma(features, loud, 0, features.shape[1])
    contrast = chroma_contrast(v)
    if contrast < min_contrast:
        return no_key("keys", KEY_NAMES, contrast, mode=NO_KEY)
    if backend == "essentia":
        return _essentia_key(y, essentia_profile, contrast)
    corr = _correlations(v, key_templates(profile))
    dists = window_distributions(features, loud)
    fit, tonic_share = chord_terms([decide(p48, p_none)[1] for p48, p_none in dists])
    first, last, dominant = tonic_terms(dists)
    w = (
        TONIC_WEIGHTS
        if tonic_weights is None
        else {**dict.fromkeys(TONIC_WEIGHTS, 0.0), **tonic_weights}
    )
    collection = corr + chord_weight * fit + tonic_weight * tonic_share
    tonic_score = (
        w["tonic"] * tonic_share
        + w["first"] * first
        + w["last"] * last
        + w["dominant"] * dominant
        + w["profile"] * corr
    )
    probs = key_probabilities(collection, tonic_score, temperature, tonic_temperature)
    best = int(np.argmax(probs))
    tonic, mode = KEY_NAMES[best].split(":")
    return Detection(
        concept="keys",
        label=KEY_NAMES[best],
        confidence=float(probs[best]),
        classes=KEY_NAMES,
        probs=probs,
        details={
            "tonic": tonic,
            "mode": mode,
            "contrast": contrast,
            "profile": profile,
            "backend": "chroma",
            "collection_confidence": float(probs[best] + probs[RELATIVE[best]]),
        },
    )


def _essentia_key(y: np.ndarray, profile: str, contrast: float) -> Detection:
    """essentia's KeyExtractor (HPCP + key profile ``profile``): label, and its strength as the
    confidence (essentia gives no distribution: ``probs`` is one-hot)."""
    try:
        import essentia.standard as es
    except ImportError as exc:
        raise ConfigError(f"the essentia key back-end needs essentia: {ESSENTIA_INSTALL}") from exc
    try:
        key, scale, strength = es.KeyExtractor(profileType=profile, sampleRate=SAMPLE_RATE)(
            np.asarray(y, dtype=np.float32)
        )
    except RuntimeError as exc:
        raise ConfigError(f"essentia KeyExtractor rejected profile {profile!r}: {exc}") from exc
    from musicrfm.evaluation.detectors.base import normalize_pitch_class

    label = f"{normalize_pitch_class(key)}:{scale}"
    probs = np.zeros(len(KEY_NAMES))
    probs[KEY_NAMES.index(label)] = 1.0
    return Detection(
        concept="keys",
        label=label,
        confidence=float(np.clip(strength, 0.0, 1.0)),
        classes=KEY_NAMES,
        probs=probs,
        details={
            "tonic": label.split(":")[0],
            "mode": scale,
            "contrast": contrast,
            "profile": profile,
            "backend": "essentia",
        },
    )


def detect_scale(
    audio: Any,
    sr: int,
    *,
    temperature: float = 0.02,
    silence_db: float = -60.0,
    on_silent: str = "label",
    tuning: float | None = 0.0,
    min_contrast: float = 0.15,
) -> Detection:
    """The mode of a scale (ionian .. locrian), tonic in ``details["tonic"]``.

    Each frame's chroma is scaled to its maximum (not log-compressed as for keys: compression
    lifts the 3rd partial of the 6th degree, which is the raised 3rd, and turned dorian into
    mixolydian); this and the templates' tonic weight 2 and 3 partials were chosen on 70
    clean scale clips (0.96), so the clean-scales figure is a tuning-set figure.

    ``probs`` are per mode, summed over the 12 tonics (the label is their argmax);
    ``details["tonic_confidence"]`` is the share of that mode's probability on its best tonic.
    A chroma whose contrast (standard deviation over mean) is below ``min_contrast`` asserts
    no scale: label :data:`NO_KEY`, confidence 0. Chosen on white noise (0.02), pink noise
    (0.10), 14 clean scale clips (0.51-0.64) and 60 seed-3 mixes (0.18-0.45); drums alone
    (0.08-0.24 on 16 TimGM6mb drum tracks) overlap the mixes, so some still get a mode.
    """
    y = prepare_audio(audio, sr)
    silent = check_silence(y, "scales", silence_db, on_silent)
    if silent is not None:
        return silent
    chroma, levels = chromagram(y, tuning=tuning), frame_db(y)
    n = min(chroma.shape[1], len(levels))
    frames = chroma[:, :n] / np.maximum(chroma[:, :n].max(axis=0, keepdims=True), 1e-12)
    v = frames[:, levels[:n] >= levels[:n].max() - 40.0].mean(axis=1)
    contrast = chroma_contrast(v)
    if contrast < min_contrast:
        return no_key("scales", MODE_NAMES, contrast)
    full = _softmax(_correlations(v, mode_templates()), temperature)
    per_mode = full.reshape(len(MODE_NAMES), 12).sum(axis=1)
    m = int(np.argmax(per_mode))
    tonic = int(np.argmax(full[m * 12 : (m + 1) * 12]))
    return Detection(
        concept="scales",
        label=MODE_NAMES[m],
        confidence=float(per_mode[m]),
        classes=MODE_NAMES,
        probs=per_mode,
        details={
            "tonic": PITCH_CLASSES[tonic],
            "tonic_confidence": float(full[m * 12 + tonic] / max(per_mode[m], 1e-12)),
            "contrast": contrast,
        },
    )


def _key_key(target: Any) -> str:
    """A key as users write it: ``C:major``, ``C major``, ``Cm``, ``c:min``, ``A minor``."""
    from musicrfm.evaluation.detectors.base import normalize_pitch_class

    text = str(target).strip().replace(" ", ":")
    tonic, _, mode = text.partition(":")
    if not mode:
        mode = "minor" if tonic.endswith("m") and len(tonic) > 1 else "major"
        tonic = tonic[:-1] if mode == "minor" else tonic
    mode = {"maj": "major", "min": "minor", "m": "minor"}.get(mode.lower(), mode.lower())
    try:
        return f"{normalize_pitch_class(tonic)}:{mode}"
    except ConfigError:
        return text.lower()


def _same_key(detected: str, target: Any) -> bool:
    return detected == _key_key(target)


def _same_mode(detected: str, target: Any) -> bool:
    return detected == str(target).strip().lower()


def _describe_key(d: Detection) -> str:
    return f" contrast={d.details['contrast']:.3f}" if "contrast" in d.details else ""


def _describe_scale(d: Detection) -> str:
    return f" tonic={d.details['tonic']}" if "tonic" in d.details else ""


KEYS = register_detector(
    Detector(
        name="keys",
        detect=detect_key,
        aliases=("key", "tonality"),
        labels=KEY_NAMES,
        match=_same_key,
        target_key=_key_key,
        windowed=False,
        row_details=("tonic", "mode"),
        describe=_describe_key,
    )
)
SCALES = register_detector(
    Detector(
        name="scales",
        detect=detect_scale,
        aliases=("scale", "modes"),
        labels=MODE_NAMES,
        match=_same_mode,
        windowed=False,
        row_details=("tonic",),
        describe=_describe_scale,
    )
)
