"""Music theory facts: intervals, modes, chord spellings, inversions, progressions, meters, GM."""

from __future__ import annotations

import pytest

from musicrfm import theory
from musicrfm.errors import ConfigError


def test_pitch_classes_and_names() -> None:
    assert (
        tuple(["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"])
        == theory.PITCH_CLASSES
    )
    assert theory.pitch_class("C#") == theory.pitch_class("Db") == 1
    assert theory.pitch_class("bb") == 10
    assert theory.pitch_class(14) == 2
    assert theory.pitch_class_name(13) == "C#"
    assert theory.note_name(60) == "C4"
    assert theory.note_name(69) == "A4"
    assert theory.octave(60) == 5  # SynTheory: midi // 12
    assert theory.midi_to_hz(69) == pytest.approx(440.0)
    assert theory.midi_to_hz(81) == pytest.approx(880.0)
    with pytest.raises(ConfigError, match="valid: C, C#"):
        theory.pitch_class("H")


def test_tonic_placement_is_symmetric_around_middle_c() -> None:
    assert [theory.tonic_midi(pc) for pc in range(12)] == [60, 61, 62, 63, 64, 65] + [
        54,
        55,
        56,
        57,
        58,
        59,
    ]


def test_intervals() -> None:
    assert theory.INTERVAL_NAMES[3] == "M3"
    assert theory.interval_name(7) == "P5"
    assert theory.interval_name(6) == "TT"
    assert theory.interval_name(12) == "P8"
    assert [theory.interval_semitones(n) for n in ("m2", "m3", "P4", "m6", "M7")] == [
        1,
        3,
        5,
        8,
        11,
    ]
    assert theory.interval_semitones("9") == 9
    assert theory.interval_between(67, 60) == 5  # G up to C is a fourth
    assert theory.interval_between(60, 67) == 7
    with pytest.raises(ConfigError):
        theory.interval_name(0)
    with pytest.raises(ConfigError, match="valid: m2"):
        theory.interval_semitones("M9")


def test_modes_are_rotations_of_the_major_scale() -> None:
    ionian = theory.MODES["ionian"]
    steps = [(ionian[(i + 1) % 7] - ionian[i]) % 12 for i in range(7)]
    assert steps == [2, 2, 1, 2, 2, 2, 1]
    for k, mode in enumerate(theory.MODES):
        rotated = sorted((ionian[(k + i) % 7] - ionian[k]) % 12 for i in range(7))
        assert tuple(rotated) == theory.MODES[mode], mode
    assert (
        theory.scale_pitch_classes("A", "aeolian")
        == theory.scale_pitch_classes("C", "ionian")[5:]
        + theory.scale_pitch_classes("C", "ionian")[:5]
    )
    assert theory.scale_pitch_classes("D", "dorian") == (2, 4, 5, 7, 9, 11, 0)
    assert theory.scale_midi("C", "ionian") == [60, 62, 64, 65, 67, 69, 71, 72]
    assert theory.scale_midi("G", "mixolydian", descending=True) == [67, 65, 64, 62, 60, 59, 57, 55]
    assert len(theory.MODES) == 7


@pytest.mark.parametrize(
    ("root", "quality", "spelled"),
    [
        ("C", "major", ("C", "E", "G")),
        ("A", "minor", ("A", "C", "E")),
        ("C", "augmented", ("C", "E", "G#")),
        ("B", "diminished", ("B", "D", "F")),
        ("F#", "major", ("F#", "A#", "C#")),
        ("D#", "minor", ("D#", "F#", "A#")),
    ],
)
def test_chord_spellings(root: str, quality: str, spelled: tuple[str, ...]) -> None:
    pcs = theory.chord_pitch_classes(root, quality)
    assert tuple(theory.pitch_class_name(p) for p in pcs) == spelled
    assert theory.triad_quality(pcs) == quality


def test_inversions() -> None:
    assert theory.chord_midi("C", "major", "root") == [60, 64, 67]
    assert theory.chord_midi("C", "major", "first") == [64, 67, 72]
    assert theory.chord_midi("C", "major", "second") == [67, 72, 76]
    assert theory.chord_midi("A", "minor", 1) == [60, 64, 69]
    for quality in theory.CHORD_QUALITIES:
        for inv in range(3):
            notes = theory.chord_midi("E", quality, inv)
            assert notes == sorted(notes) and notes[-1] - notes[0] < 12
            assert {n % 12 for n in notes} == set(theory.chord_pitch_classes("E", quality))
            bass = theory.chord_pitch_classes("E", quality)[inv]
            assert notes[0] % 12 == bass
    assert theory.inversion_index("64") == 2
    with pytest.raises(ConfigError, match="valid: root, first, second"):
        theory.inversion_index("third")


def test_diatonic_triads_and_numerals() -> None:
    assert [theory.roman_numeral("ionian", d) for d in range(1, 8)] == [
        "I",
        "ii",
        "iii",
        "IV",
        "V",
        "vi",
        "viio",
    ]
    assert [theory.roman_numeral("aeolian", d) for d in range(1, 8)] == [
        "i",
        "iio",
        "III",
        "iv",
        "v",
        "VI",
        "VII",
    ]
    assert theory.diatonic_triad_pcs("G", "ionian", 5) == (2, 6, 9)  # D major


def test_the_19_progressions() -> None:
    progs = theory.PROGRESSIONS
    assert len(progs) == 19
    assert sum(p.mode == "ionian" for p in progs) == 10
    assert sum(p.mode == "aeolian" for p in progs) == 9
    names = [p.name for p in progs]
    assert len(set(names)) == 19
    assert "I-IV-V-I" in names and "vi-IV-I-V" in names and "i-VI-III-VII" in names
    assert all(len(p.degrees) == 4 for p in progs)
    assert theory.progression_by_name("I-V-vi-IV").degrees == (1, 5, 6, 4)
    chords = theory.progression_midi("C", theory.progression_by_name("I-IV-V-I"))
    assert chords[0] == [60, 64, 67]
    assert {n % 12 for n in chords[1]} == {5, 9, 0}  # F major
    assert {n % 12 for n in chords[2]} == {7, 11, 2}  # G major
    minor = theory.progression_midi("A", theory.progression_by_name("i-iv-v-i"))
    assert {n % 12 for n in minor[0]} == {9, 0, 4}  # A minor
    assert {n % 12 for n in minor[1]} == {2, 5, 9}  # D minor
    for chord in minor:
        assert max(chord) - min(chord) < 12
    with pytest.raises(ConfigError, match="valid: I-IV-V-I"):
        theory.progression_by_name("I-II")


def test_meters() -> None:
    assert [m.name for m in theory.METERS] == [
        "2/2",
        "2/4",
        "3/4",
        "3/8",
        "4/4",
        "6/8",
        "9/8",
        "12/8",
    ]
    compound = {m.name for m in theory.METERS if m.is_compound}
    assert compound == {"3/8", "6/8", "9/8", "12/8"}
    assert theory.meter_by_name("3/4").click_seconds(120) == pytest.approx(0.5)
    assert theory.meter_by_name("2/2").click_seconds(120) == pytest.approx(1.0)
    assert theory.meter_by_name("6/8").click_seconds(120) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="valid: 2/2"):
        theory.meter_by_name("5/4")


def test_general_midi_programs() -> None:
    assert len(theory.GM_PROGRAM_NAMES) == 128
    assert len(theory.DEFAULT_PROGRAMS) == 92
    for p in (8, 9, 14, 21, 22, 23, 31, 47, 55, 77, 78, 86, 96, 103, 112, 127):
        assert p not in theory.DEFAULT_PROGRAMS
    for p in (0, 24, 40, 56, 65, 73, 104, 111):
        assert p in theory.DEFAULT_PROGRAMS
    assert theory.program_name(0) == "Acoustic Grand Piano"
    assert theory.program_name(40) == "Violin"
    assert theory.instrument_family(0) == "piano"
    assert theory.instrument_family(19) == "organ"
    assert theory.instrument_family(25) == "guitar"
    assert theory.instrument_family(41) == "strings"
    assert theory.instrument_family(57) == "brass"
    assert theory.instrument_family(66) == "reed"
    assert theory.instrument_family(73) == "pipe"
    assert theory.parse_program("violin") == 40
    assert theory.parse_program("24") == 24
    with pytest.raises(ConfigError):
        theory.parse_program(128)
