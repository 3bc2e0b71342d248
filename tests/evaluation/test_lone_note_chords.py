"""A lone note (with its harmonics) is not a chord; triads still are (issue 19).

A held note's 3rd partial is its fifth and its 5th partial its major third, so on chroma alone
the chord detector called the bundled note model's unsteered clips "major". Rendered through
TimGM6mb (the project's soundfont), single notes of several programs and registers must read
``none`` and name the note; rendered triads keep their quality.
"""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors.chords import harmonic_fit, one_note_probability
from musicrfm.synth.strikes import StrikeClip

SR = 16_000
PROGRAMS = (0, 19, 40, 56, 73, 81)  # piano, church organ, violin, trumpet, flute, saw lead


def _render(program: int, notes: tuple[int, ...], inversion: int = 0) -> np.ndarray:
    clip = StrikeClip(program=program, notes=notes, bpm=60.0, inversion=inversion)
    return clip.render(sampling_rate=SR, seconds=3.0)


@pytest.mark.parametrize("program", PROGRAMS)
def test_rendered_lone_notes_read_no_chord(program: int) -> None:
    for midi in (50, 62, 74):
        d = det.detect_chord(_render(program, (midi,)), SR)
        assert d.label == det.NO_CHORD, (program, midi, d.details["chord"], d.confidence)
        assert d.details["lone_note"][:-1].rstrip("-") == det.PITCH_CLASSES[midi % 12]
        assert d.details["no_chord_prob"] > 0.9
        assert d.probs is not None and d.probs.sum() < 0.1  # label and probs agree


def test_without_the_check_a_lone_note_reads_as_a_triad() -> None:
    # the failure the check removes: the overtones of one note look like a major triad
    y = _render(56, (62,))
    assert det.detect_chord(y, SR, lone_notes=False).label in det.CHORD_QUALITIES
    assert det.detect_chord(y, SR).label == det.NO_CHORD


@pytest.mark.parametrize("program", (0, 73))
@pytest.mark.parametrize("quality", det.CHORD_QUALITIES)
def test_rendered_triads_keep_their_quality(program: int, quality: str) -> None:
    root = 57
    notes = tuple(root + i for i in det.CHORD_INTERVALS[quality])
    d = det.detect_chord(_render(program, notes), SR)
    assert d.label == quality, (program, quality, d.details["chord"], d.details["off_series_share"])
    assert d.details["lone_note"] == ""
    assert d.details["off_series_share"] > 0.15


def test_inversions_are_not_one_note() -> None:
    # second inversion C major (G C E) would be partials 3, 4, 5 of C two octaves down
    for inversion, notes in enumerate(((60, 64, 67), (64, 67, 72), (67, 72, 76))):
        d = det.detect_chord(_render(0, notes, inversion), SR)
        assert (d.label, d.details["root"]) == ("major", "C"), notes


def test_harmonic_fit_on_synthetic_spectra() -> None:
    spec = det.cqt36(det.harmonic_tone(45, 1.0)).mean(axis=1)
    off, f0 = harmonic_fit(spec)
    assert off == pytest.approx(0.0, abs=1e-9) and round(f0) == 45
    triad = det.cqt36(det.harmonic_tone([57, 61, 64], 1.0)).mean(axis=1)
    assert harmonic_fit(triad)[0] > 0.2
    assert harmonic_fit(np.zeros(252))[0] == 1.0
    assert one_note_probability(0.0) > 0.99 and one_note_probability(0.3) < 0.01


def test_a_fifth_or_octave_is_one_series_but_a_third_is_not() -> None:
    for semis, one in ((7, True), (12, True), (4, False), (3, False)):
        spec = det.cqt36(det.harmonic_tone([55, 55 + semis], 1.0)).mean(axis=1)
        assert (harmonic_fit(spec)[0] < 0.12) is one, semis
