"""Names as users write them: chord symbols, interval words, a target's class."""

from __future__ import annotations

import pytest

from musicrfm import spelling
from musicrfm.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "root", "quality"),
    [("C", 0, "major"), ("Cm", 0, "minor"), ("C:min", 0, "minor"), ("Cmin", 0, "minor"),
     ("Cdim", 0, "diminished"), ("C°", 0, "diminished"), ("Caug", 0, "augmented"),
     ("C+", 0, "augmented"), ("F#m", 6, "minor"), ("Bb", 10, "major"), ("Ebmaj", 3, "major")],
)  # fmt: skip
def test_chord_symbols_as_users_write_them(text, root, quality):
    assert spelling.parse_chord(text) == (root, quality, None)


def test_a_seventh_chord_is_taken_as_its_triad_with_a_notice():
    root, quality, notice = spelling.parse_chord("Am7")
    assert (root, quality) == (9, "minor") and "Am7" in notice and "triad" in notice


@pytest.mark.parametrize("bad", ["H", "Csus4", "C:weird", "", "7"])
def test_an_unknown_chord_shows_the_accepted_forms(bad):
    with pytest.raises(ConfigError, match=r"accepted forms: C, Cm, C:min"):
        spelling.parse_chord(bad)


@pytest.mark.parametrize(
    ("text", "semitones"),
    [("5", 5), (7, 7), ("P4", 5), ("perfect fourth", 5), ("minor 3rd", 3), ("tritone", 6),
     ("octave", 12), ("Major Sixth", 9)],
)  # fmt: skip
def test_intervals_as_numbers_names_or_words(text, semitones):
    assert spelling.interval_from_text(text) == semitones


def test_an_unknown_interval_lists_the_forms():
    with pytest.raises(ConfigError, match=r"1\.\.12 semitones.*perfect fourth"):
        spelling.interval_from_text("13")


def test_class_spellings_cover_notes_qualities_and_intervals():
    assert "C#" in spelling.class_spellings("Db")
    assert spelling.class_spellings("min") == ["minor"]
    assert "minor" in spelling.class_spellings("C:min")
    assert {"P4", "5"} <= set(spelling.class_spellings("perfect fourth"))
    assert spelling.class_spellings("nonsense") == []
