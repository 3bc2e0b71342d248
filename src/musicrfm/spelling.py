"""How users write music-theory names, and what they stand for: chord symbols, quality words,
intervals in numbers, names or words, and the class a target names whatever the concept.

Kept apart from :mod:`musicrfm.theory` (the definitions) because spellings grow with what users
type; one place so that sweeps, plans, the CLI, the headline and the detectors agree.
"""

from __future__ import annotations

from musicrfm.errors import ConfigError
from musicrfm.theory import (
    INTERVAL_NAMES,
    interval_name,
    interval_semitones,
    pitch_class,
    pitch_class_name,
)

QUALITY_SPELLINGS: dict[str, str] = {
    **{w: "major" for w in ("major", "maj", "M", "")},
    **{w: "minor" for w in ("minor", "min", "m", "-")},
    **{w: "augmented" for w in ("augmented", "aug", "+")},
    **{w: "diminished" for w in ("diminished", "dim", "°", "o")},
}
"""How users write a triad quality (``C:min``, ``Cm``, ``C°``...) -> the quality's name."""
SEVENTHS: dict[str, str] = {"7": "major", "maj7": "major", "M7": "major", "m7": "minor",
                            "min7": "minor", "dim7": "diminished", "°7": "diminished",
                            "m7b5": "diminished", "ø": "diminished", "ø7": "diminished"}  # fmt: skip
"""Seventh chords and the triad they are taken as (with a notice: the seventh is dropped)."""
CHORD_FORMS = "C, Cm, C:min, Cmin, Cdim, C°, Caug, C+ (sevenths such as C7, Cm7 as their triad)"


def parse_chord(text: str) -> tuple[int, str, str | None]:
    """``(root pitch class, quality, notice)`` of a chord symbol; ``notice`` says what was
    dropped (a seventh), else None. Anything else is a ConfigError showing the accepted forms."""
    s = str(text).strip()
    if not s or s[0].upper() not in "ABCDEFG":
        raise ConfigError(f"unknown chord {text!r}; accepted forms: {CHORD_FORMS}")
    root_len = 2 if len(s) > 1 and s[1] in "#b♯♭" else 1
    try:
        root = pitch_class(s[:root_len])
    except ConfigError:
        raise ConfigError(f"unknown chord {text!r}; accepted forms: {CHORD_FORMS}") from None
    rest = s[root_len:].lstrip(":")
    if rest in QUALITY_SPELLINGS or rest.lower() in QUALITY_SPELLINGS:
        return root, QUALITY_SPELLINGS.get(rest, QUALITY_SPELLINGS.get(rest.lower(), "")), None
    if rest in SEVENTHS:
        quality = SEVENTHS[rest]
        return root, quality, f"{text} taken as its triad ({pitch_class_name(root)} {quality})"
    raise ConfigError(f"unknown chord {text!r}; accepted forms: {CHORD_FORMS}")


def chord_quality(text: str) -> str:
    """A triad quality from a quality word (``minor``, ``min``, ``m``, ``aug``, ``°``...) or a
    chord symbol (``C:min`` -> ``minor``)."""
    s = str(text).strip()
    if s in QUALITY_SPELLINGS or s.lower() in QUALITY_SPELLINGS:
        return QUALITY_SPELLINGS.get(s, QUALITY_SPELLINGS.get(s.lower(), ""))
    return parse_chord(s)[1]


INTERVAL_WORDS: dict[str, int] = {
    "minor second": 1, "major second": 2, "minor third": 3, "major third": 4,
    "perfect fourth": 5, "fourth": 5, "tritone": 6, "augmented fourth": 6,
    "diminished fifth": 6, "perfect fifth": 7, "fifth": 7, "minor sixth": 8, "major sixth": 9,
    "minor seventh": 10, "major seventh": 11, "octave": 12, "perfect octave": 12,
}  # fmt: skip
"""Interval names in words -> semitones."""


def interval_from_text(text: str | int) -> int:
    """Semitones of an interval written as a number (``5``), a short name (``P4``) or words
    (``perfect fourth``, ``minor 3rd``); a ConfigError lists the accepted forms otherwise."""
    s = str(text).strip()
    words = s.lower().replace("2nd", "second").replace("3rd", "third").replace("4th", "fourth")
    words = words.replace("5th", "fifth").replace("6th", "sixth").replace("7th", "seventh")
    if words in INTERVAL_WORDS:
        return INTERVAL_WORDS[words]
    try:
        return interval_semitones(s)
    except ConfigError:
        raise ConfigError(
            f"unknown interval {text!r}; valid: 1..12 semitones, {', '.join(INTERVAL_NAMES)}, "
            "or words such as 'perfect fourth', 'minor third', 'tritone', 'octave'"
        ) from None


def class_spellings(text: str) -> list[str]:
    """Every canonical class name ``text`` may stand for: a pitch class (``Db`` -> ``C#``), a
    triad quality (``Cm`` / ``min`` -> ``minor``), an interval (``5`` / ``perfect fourth`` ->
    ``P4``, also as the semitone count). Used to find a user's target among a direction's
    classes, whatever the concept."""
    out: list[str] = []
    for spell in (
        lambda s: pitch_class_name(pitch_class(s)),
        chord_quality,
        lambda s: interval_name(interval_from_text(s)),
        lambda s: str(interval_from_text(s)),
    ):
        try:
            name = spell(text)
        except (ConfigError, ValueError, IndexError):
            continue
        if name not in out:
            out.append(name)
    return out
