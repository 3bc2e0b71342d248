"""Concept enumeration: SynTheory's label sets and counts, selections, errors (no rendering)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from musicrfm import theory
from musicrfm.errors import ConfigError
from musicrfm.synth.concepts import (
    CONCEPTS,
    Selection,
    clips_for,
    derive_seed,
    get_concept,
    parse_concepts,
)

FULL = {
    "notes": 9936,
    "intervals": 39744,
    "scales": 15456,
    "chords": 13248,
    "progressions": 20976,
    "tempos": 4025,
    "time_signatures": 1200,
}


@pytest.mark.parametrize("name", list(FULL))
def test_full_sizes_labels_and_unique_keys(name: str) -> None:
    concept = CONCEPTS[name]
    clips = concept.clips()
    assert len(clips) == FULL[name] == concept.full_size
    assert len({c.key for c in clips}) == len(clips)
    assert len({c.index for c in clips}) == len(clips)
    assert [c.index for c in clips] == sorted(c.index for c in clips)
    counts = Counter(c.label for c in clips)
    assert set(counts) == set(concept.labels)
    # every class equally represented, as in SynTheory
    assert len(set(counts.values())) == 1
    for clip in clips[:50]:
        assert clip.row()["label"] == clip.label and isinstance(clip.label, str)


def test_label_sets() -> None:
    assert CONCEPTS["notes"].labels == theory.PITCH_CLASSES
    assert len(CONCEPTS["intervals"].labels) == 12
    assert CONCEPTS["scales"].labels == tuple(theory.MODES)
    assert CONCEPTS["chords"].labels == ("major", "minor", "augmented", "diminished")
    assert len(CONCEPTS["progressions"].labels) == 19
    assert CONCEPTS["tempos"].labels[0] == "50" and CONCEPTS["tempos"].labels[-1] == "210"
    assert CONCEPTS["time_signatures"].labels == tuple(m.name for m in theory.METERS)


def test_notes_rows_and_timing() -> None:
    clips = CONCEPTS["notes"].clips(Selection(programs=(0,), roots=(9,), octaves=(5,)))
    assert len(clips) == 1
    clip = clips[0]
    assert clip.label == "A"
    assert clip.params["midi_note"] == 69 and clip.params["octave"] == 5
    assert clip.params["note_name"] == "A4"
    assert clip.params["program_name"] == "Acoustic Grand Piano"
    assert clip.params["instrument_family"] == "piano"
    assert [(n.start, n.end, n.pitch) for n in clip.notes] == [
        (0.0, 1.0, 69),
        (1.0, 2.0, 69),
        (2.0, 3.0, 69),
        (3.0, 4.0, 69),
    ]


def test_intervals_play_styles() -> None:
    clips = CONCEPTS["intervals"].clips(Selection(programs=(0,), roots=(0,), labels=("P5",)))
    by_style = {c.params["play_style"]: c for c in clips}
    assert set(by_style) == {"up", "down", "unison"}
    up = [n.pitch for n in by_style["up"].notes]
    assert up[:4] == [60, 67, 60, 67] and len(up) == 8
    assert [n.pitch for n in by_style["down"].notes][:2] == [67, 60]
    unison = by_style["unison"].notes
    assert unison[0].start == unison[1].start and {unison[0].pitch, unison[1].pitch} == {60, 67}
    assert all(c.params["semitones"] == 7 for c in clips)


def test_chords_and_progressions_notes() -> None:
    (clip,) = CONCEPTS["chords"].clips(Selection(programs=(0,), roots=(0,), labels=("minor",)))[1:2]
    assert clip.params["inversion"] == "first"
    assert sorted({n.pitch for n in clip.notes}) == [63, 67, 72]
    (prog,) = [
        c
        for c in CONCEPTS["progressions"].clips(Selection(programs=(0,), roots=(7,)))
        if c.label == "I-IV-V-I"
    ]
    firsts = sorted(n.pitch % 12 for n in prog.notes if n.start == 0.0)
    assert firsts == [2, 7, 11]  # G major
    assert prog.params["key"] == "G" and prog.params["tonality"] == "major"


def test_click_concepts() -> None:
    tempos = CONCEPTS["tempos"].clips()
    assert all(0.0 <= c.offset <= 16.0 for c in tempos)
    assert len({c.offset for c in tempos}) > 4000  # random crops
    clip = next(c for c in tempos if c.label == "120")
    gaps = {round(b.start - a.start, 6) for a, b in zip(clip.notes, clip.notes[1:])}
    assert gaps == {0.5}
    ts = [c for c in CONCEPTS["time_signatures"].clips() if c.label == "6/8"]
    assert len(ts) == 150
    assert {c.reverb_level for c in ts} == {0, 1, 2}
    accents = [n.velocity for n in ts[0].notes[:12]]
    assert accents == [100, 75, 75, 75, 75, 75] * 2
    # a different seed moves the crops
    other = clips_for("tempos", Selection(seed=1))
    assert [c.offset for c in other] != [c.offset for c in tempos]


def test_selection_and_limit_per_class_are_seeded() -> None:
    sel = Selection(limit_per_class=3, seed=5)
    a = CONCEPTS["chords"].clips(sel)
    b = CONCEPTS["chords"].clips(sel)
    assert [c.key for c in a] == [c.key for c in b]
    assert Counter(c.label for c in a) == dict.fromkeys(CONCEPTS["chords"].labels, 3)
    c = CONCEPTS["chords"].clips(Selection(limit_per_class=3, seed=6))
    assert [x.key for x in c] != [x.key for x in a]
    sub = CONCEPTS["notes"].clips(Selection(programs=(0, 24), octaves=(3, 4)))
    assert len(sub) == 2 * 24
    assert {x.params["octave"] for x in sub} == {3, 4}


def test_unknown_concept_and_label_list_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid: notes, intervals, scales"):
        get_concept("melodies")
    with pytest.raises(ConfigError, match="valid: major, minor, augmented, diminished"):
        parse_concepts(["chords:maj"])
    with pytest.raises(ConfigError, match="valid: C, C#"):
        CONCEPTS["notes"].clips(Selection(labels=("H",)))


def test_parse_concepts_forms() -> None:
    assert parse_concepts("notes") == {"notes": None}
    assert parse_concepts(["chords:major,minor", "chord_progressions"]) == {
        "chords": ("major", "minor"),
        "progressions": None,
    }
    assert parse_concepts({"chords": ["major"]}) == {"chords": ("major",)}
    assert parse_concepts(["chords:major", "chords:minor"]) == {"chords": ("major", "minor")}


def test_derive_seed_is_stable() -> None:
    assert derive_seed(0, "notes", 60) == derive_seed(0, "notes", 60)
    assert derive_seed(0, "notes", 60) != derive_seed(1, "notes", 60)
    code = "from musicrfm.synth.concepts import derive_seed; print(derive_seed(0, 'x', 3))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(h)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for h in (1, 2)
    }
    assert outs == {str(derive_seed(0, "x", 3))}  # independent of the process's hash salt
