"""Key from a final tonic (mix set v2) and a tempo confidence that tracks accuracy (issue 19).

The truth comes from the arrangement or the synthesised signal, never from a detector."""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm import theory
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors import keys, tempo
from musicrfm.synth import arrangements as arr
from musicrfm.synth.render import find_soundfont

SR = det.SAMPLE_RATE


def _chords(*triads: list[int], seconds: float = 1.0) -> np.ndarray:
    """Triads one after another (bass note an octave below each root), ``seconds`` each."""
    return np.concatenate([det.harmonic_tone([t[0] - 12, *t], seconds) for t in triads])


AM, F, C, G = [57, 60, 64], [53, 57, 60], [60, 64, 67], [55, 59, 62]


def test_the_final_tonic_decides_between_a_key_and_its_relative_minor() -> None:
    """Am F C G is vi-IV-I-V in C and i-VI-III-VII in A minor: only the ending tells."""
    for ending, truth in ((C, "C:major"), (AM, "A:minor")):
        y = _chords(AM, F, C, G, ending, ending)
        d = det.detect_key(y, SR)
        assert d.label == truth, (d.label, truth)
        assert d.label == det.KEY_NAMES[int(np.argmax(d.probs))]
        blind = det.detect_key(y, SR, tonic_weights={**keys.TONIC_WEIGHTS, "last": 0.0})
        i = det.KEY_NAMES.index(truth)
        assert d.probs[i] > blind.probs[i]  # the last-chord cue is what moved it


def _mix(index: int, seed: int) -> tuple[arr.Arrangement, np.ndarray]:
    a = arr.arrangement(index, seed=seed)
    renderer = arr.TrackRenderer(find_soundfont(), "tinysoundfont", a.duration + 0.1)
    return a, arr.mix(a, renderer)


@pytest.mark.parametrize("name", ["vi-IV-I-V", "i-VI-III-VII"])
def test_key_of_the_two_same_chord_progressions_on_rendered_mixes(name: str) -> None:
    index = [p.name for p in theory.PROGRESSIONS].index(name)
    a, y = _mix(index + 19, seed=5)  # seed 5: no figure is reported on it
    assert a.progression == name
    d = det.detect_key(y, SR)
    assert d.label == a.key, (d.label, a.key)


def test_octave_evidence_sees_a_pattern_that_repeats_at_twice_the_beat() -> None:
    even = np.zeros(400)
    even[::10] = 1.0  # the same onset every 10 frames
    accented = even.copy()
    accented[10::20] = 0.1  # ... but every other one quiet: the beat is 20 frames
    assert tempo.octave_evidence(even, 10.0) > -0.05
    assert tempo.octave_evidence(accented, 10.0) < -0.3  # tracked at twice the tempo
    assert tempo.octave_evidence(accented, 20.0) > -0.05  # tracked at its beat: no worse


def test_tempo_confidence_is_the_fitted_logistic_of_the_octave_evidence() -> None:
    d = det.detect_tempo(det.click_track(120, 6.0), SR)
    a, b = tempo.OCTAVE_LOGISTIC
    evidence = d.details["octave_evidence"]
    assert d.confidence == pytest.approx(1 / (1 + np.exp(-(a + b * evidence))), abs=1e-3)
    assert d.confidence > 0.9 and 0.9 < d.details["regularity"] <= 1.0


def test_tempo_confidence_is_low_where_the_tempo_octave_is_wrong() -> None:
    """A slow mix the tracker follows at its eighth notes (67 BPM read as 136) and a slow mix
    it gets right (tuning-set clips): right <=> confidence >= 0.8, on both."""
    for index, seed in ((16, 1), (11, 0)):
        a, y = _mix(index, seed)
        d = det.detect_tempo(y, SR)
        right = det.tempo_match(d.details["bpm"], a.bpm)
        assert right == (d.confidence >= 0.8), (a.bpm, d.details["bpm"], d.confidence)
        assert det.tempo_match(d.details["bpm"], a.bpm, factors=det.OCTAVE_FACTORS)
