"""Pure music theory: pitch classes, intervals, modes, triads, progressions, meters, GM programs.

Everything here is plain data and small pure functions (no audio, no I/O). Conventions follow the
SynTheory generator (Wei et al. 2024) so that labels match the original dataset:

- Pitch classes are spelled with sharps: ``C C# D D# E F F# G G# A A# B`` (0..11).
- ``octave(midi) = midi // 12`` (SynTheory's convention: MIDI 0 is octave 0, middle C = MIDI 60 is
  octave 5). :func:`note_name` gives the scientific spelling instead (MIDI 60 -> ``"C4"``).
- Intervals are labelled by their short name (``"m2"`` .. ``"P8"``); the semitone count is kept
  alongside.
- A key's tonic sits in the octave around middle C: C..F at MIDI 60..65, F#..B at 54..59.

Over 400 lines on purpose: a third of it is plain data tables (the 128 General MIDI program
names and families, the 19 progressions, meters, modes, intervals), and the whole module is the
one place every later stage reads its music-theory names from; split, the tables would only be
further from the few small functions that read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicrfm.errors import ConfigError

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": 1, "Eb": 3, "Gb": 6, "Ab": 8, "Bb": 10, "Cb": 11, "Fb": 4, "E#": 5, "B#": 0}
MIDDLE_C = 60

# ----------------------------------------------------------------------------- pitch classes


def pitch_class(name_or_number: str | int) -> int:
    """Pitch class 0..11 of a name (``"C#"``, ``"Db"``, case-insensitive) or an integer."""
    if isinstance(name_or_number, (int,)) and not isinstance(name_or_number, bool):
        return int(name_or_number) % 12
    text = str(name_or_number).strip()
    if text.lstrip("-").isdigit():
        return int(text) % 12
    norm = text[:1].upper() + text[1:].lower().replace("♯", "#").replace("♭", "b")
    if norm in PITCH_CLASSES:
        return PITCH_CLASSES.index(norm)
    if norm in _FLATS:
        return _FLATS[norm]
    raise ConfigError(f"unknown pitch class {name_or_number!r}; valid: {', '.join(PITCH_CLASSES)}")


def pitch_class_name(pc: int) -> str:
    """Sharp spelling of a pitch class (``1 -> "C#"``)."""
    return PITCH_CLASSES[int(pc) % 12]


def octave(midi: int) -> int:
    """SynTheory's octave number: ``midi // 12`` (MIDI 60 -> 5)."""
    return int(midi) // 12


def note_name(midi: int) -> str:
    """Scientific pitch name (``60 -> "C4"``, ``21 -> "A0"``)."""
    return f"{pitch_class_name(midi)}{int(midi) // 12 - 1}"


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency, A4 = 440 Hz."""
    return 440.0 * 2.0 ** ((float(midi) - 69.0) / 12.0)


def tonic_midi(pc: int) -> int:
    """MIDI note of a key's tonic near middle C (C..F -> 60..65, F#..B -> 54..59), as SynTheory."""
    pc = int(pc) % 12
    return MIDDLE_C + pc if pc <= 5 else MIDDLE_C - (12 - pc)


# ----------------------------------------------------------------------------- intervals

INTERVAL_NAMES: tuple[str, ...] = (
    "m2",
    "M2",
    "m3",
    "M3",
    "P4",
    "TT",
    "P5",
    "m6",
    "M6",
    "m7",
    "M7",
    "P8",
)
"""Interval names for 1..12 semitones (index = semitones - 1)."""


def interval_name(semitones: int) -> str:
    """Short name of an interval of 1..12 semitones (``4 -> "M3"``)."""
    if not 1 <= int(semitones) <= 12:
        raise ConfigError(f"interval must be 1..12 semitones, got {semitones}")
    return INTERVAL_NAMES[int(semitones) - 1]


def interval_semitones(name: str | int) -> int:
    """Semitones of an interval name (``"P5" -> 7``); integers 1..12 pass through."""
    if isinstance(name, int) or str(name).isdigit():
        value = int(name)
        if 1 <= value <= 12:
            return value
    elif str(name) in INTERVAL_NAMES:
        return INTERVAL_NAMES.index(str(name)) + 1
    raise ConfigError(f"unknown interval {name!r}; valid: {', '.join(INTERVAL_NAMES)} (or 1..12)")


def interval_between(low: int, high: int) -> int:
    """Pitch-class interval from ``low`` up to ``high`` (0..11)."""
    return (int(high) - int(low)) % 12


# ----------------------------------------------------------------------------- modes

MODES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
"""The seven diatonic modes, semitone offsets from the tonic (the ``scales`` concept's labels)."""

HARMONIC_MINOR: tuple[int, ...] = (0, 2, 3, 5, 7, 8, 11)


def scale_offsets(mode: str) -> tuple[int, ...]:
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    return MODES[mode]


def scale_pitch_classes(root: int | str, mode: str) -> tuple[int, ...]:
    """Pitch classes of a mode on a root (``(0, "ionian") -> (0, 2, 4, 5, 7, 9, 11)``)."""
    r = pitch_class(root)
    return tuple((r + o) % 12 for o in scale_offsets(mode))


def scale_midi(root: int | str, mode: str, *, descending: bool = False) -> list[int]:
    """Eight MIDI notes of a mode from the tonic (near middle C) up to its octave."""
    tonic = tonic_midi(pitch_class(root))
    notes = [tonic + o for o in scale_offsets(mode)] + [tonic + 12]
    return notes[::-1] if descending else notes


# ----------------------------------------------------------------------------- triads

CHORD_QUALITIES: dict[str, tuple[int, int, int]] = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "augmented": (0, 4, 8),
    "diminished": (0, 3, 6),
}
"""Triad qualities: semitones of root, third and fifth above the root."""

INVERSIONS: tuple[str, ...] = ("root", "first", "second")
"""Inversion names; figured-bass equivalents are 5, 6 and 64 (SynTheory's labels)."""
INVERSION_FIGURES: dict[str, str] = {"root": "5", "first": "6", "second": "64"}


def inversion_index(inversion: int | str) -> int:
    """0, 1, 2 from an index, a name (``"first"``) or a figure (``"6"``, ``"64"``)."""
    if isinstance(inversion, int) and 0 <= inversion <= 2:
        return inversion
    text = str(inversion)
    if text in INVERSIONS:
        return INVERSIONS.index(text)
    figures = list(INVERSION_FIGURES.values())
    if text in figures:
        return figures.index(text)
    raise ConfigError(
        f"unknown inversion {inversion!r}; valid: {', '.join(INVERSIONS)} (or 0, 1, 2 / 5, 6, 64)"
    )


def chord_pitch_classes(root: int | str, quality: str) -> tuple[int, int, int]:
    """Pitch classes of a triad in root position."""
    if quality not in CHORD_QUALITIES:
        raise ConfigError(f"unknown chord quality {quality!r}; valid: {', '.join(CHORD_QUALITIES)}")
    r = pitch_class(root)
    return tuple((r + o) % 12 for o in CHORD_QUALITIES[quality])  # type: ignore[return-value]


def invert(notes: list[int] | tuple[int, ...], inversion: int | str) -> list[int]:
    """Move the lowest ``inversion`` notes up an octave (close position, ascending)."""
    k = inversion_index(inversion)
    notes = sorted(int(n) for n in notes)
    return notes[k:] + [n + 12 for n in notes[:k]]


def chord_midi(root: int | str, quality: str, inversion: int | str = 0) -> list[int]:
    """MIDI notes of a triad whose root sits at :func:`tonic_midi` (ascending, close position)."""
    r = pitch_class(root)
    base = tonic_midi(r)
    return invert([base + o for o in CHORD_QUALITIES[_check_quality(quality)]], inversion)


def _check_quality(quality: str) -> str:
    if quality not in CHORD_QUALITIES:
        raise ConfigError(f"unknown chord quality {quality!r}; valid: {', '.join(CHORD_QUALITIES)}")
    return quality


def triad_quality(pcs: tuple[int, ...] | list[int]) -> str:
    """Quality of a root-position triad given as pitch classes (root first)."""
    third, fifth = (pcs[1] - pcs[0]) % 12, (pcs[2] - pcs[0]) % 12
    for name, (_, t, f) in CHORD_QUALITIES.items():
        if (t, f) == (third, fifth):
            return name
    raise ConfigError(f"not a major/minor/augmented/diminished triad: {tuple(pcs)}")


# ----------------------------------------------------------------------------- progressions

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


@dataclass(frozen=True)
class Progression:
    """A four-chord diatonic triad progression in a mode (ionian = major, aeolian = minor)."""

    mode: str
    degrees: tuple[int, ...]

    @property
    def name(self) -> str:
        """Roman-numeral name (``"I-IV-V-I"``, ``"i-VI-III-VII"``); unique among the 19."""
        return "-".join(roman_numeral(self.mode, d) for d in self.degrees)

    @property
    def tonality(self) -> str:
        return "major" if self.mode == "ionian" else "minor"


PROGRESSIONS: tuple[Progression, ...] = tuple(
    Progression(mode, degrees)
    for mode, degrees in (
        ("ionian", (1, 4, 5, 1)),
        ("ionian", (1, 4, 6, 5)),
        ("ionian", (1, 5, 6, 4)),
        ("ionian", (1, 6, 4, 5)),
        ("ionian", (2, 5, 1, 6)),
        ("ionian", (4, 1, 5, 6)),
        ("ionian", (4, 5, 3, 6)),
        ("ionian", (5, 4, 1, 5)),
        ("ionian", (5, 6, 4, 1)),
        ("ionian", (6, 4, 1, 5)),
        ("aeolian", (1, 2, 5, 1)),
        ("aeolian", (1, 3, 4, 1)),
        ("aeolian", (1, 4, 5, 1)),
        ("aeolian", (1, 6, 3, 7)),
        ("aeolian", (1, 6, 7, 1)),
        ("aeolian", (1, 6, 7, 3)),
        ("aeolian", (1, 7, 6, 4)),
        ("aeolian", (4, 7, 1, 1)),
        ("aeolian", (7, 6, 7, 1)),
    )
)
"""SynTheory's 19 progressions: 10 in major (ionian), 9 in natural minor (aeolian)."""


def diatonic_triad_pcs(key: int | str, mode: str, degree: int) -> tuple[int, int, int]:
    """Pitch classes (root, third, fifth) of the triad on a scale degree (1..7)."""
    if not 1 <= degree <= 7:
        raise ConfigError(f"scale degree must be 1..7, got {degree}")
    scale = scale_pitch_classes(key, mode)
    i = degree - 1
    return (scale[i], scale[(i + 2) % 7], scale[(i + 4) % 7])


def roman_numeral(mode: str, degree: int) -> str:
    """Roman numeral of a diatonic triad: upper case major, lower minor, ``°`` diminished."""
    quality = triad_quality(diatonic_triad_pcs(0, mode, degree))
    numeral = _ROMAN[degree - 1]
    if quality == "major":
        return numeral
    if quality == "minor":
        return numeral.lower()
    if quality == "diminished":
        return numeral.lower() + "o"
    return numeral + "+"


def progression_by_name(name: str) -> Progression:
    for p in PROGRESSIONS:
        if p.name == name:
            return p
    raise ConfigError(
        f"unknown progression {name!r}; valid: {', '.join(p.name for p in PROGRESSIONS)}"
    )


def progression_midi(key: int | str, progression: Progression) -> list[list[int]]:
    """MIDI triads of a progression, voiced as SynTheory did.

    Chord tones are the scale's notes in the octave above the tonic (no octave wrap), so every
    chord stays within one octave of the tonic and voice leading stays smooth.
    """
    k = pitch_class(key)
    tonic = tonic_midi(k)
    offsets = scale_offsets(progression.mode)
    chords = []
    for degree in progression.degrees:
        i = degree - 1
        chords.append(sorted(tonic + offsets[(i + step) % 7] for step in (0, 2, 4)))
    return chords


# ----------------------------------------------------------------------------- meters


@dataclass(frozen=True)
class Meter:
    """A time signature; clicks fall on beats (eighths for compound meters), accent on beat 1."""

    beats: int
    unit: int

    @property
    def name(self) -> str:
        return f"{self.beats}/{self.unit}"

    @property
    def is_compound(self) -> bool:
        return self.beats % 3 == 0 and self.unit != 4

    def click_seconds(self, bpm: float) -> float:
        """Seconds between clicks at a quarter-note ``bpm`` (as SynTheory wrote its click MIDI)."""
        quarter = 60.0 / float(bpm)
        return quarter / 2.0 if self.is_compound else quarter * 4.0 / self.unit


METERS: tuple[Meter, ...] = tuple(
    Meter(b, u) for b, u in ((2, 2), (2, 4), (3, 4), (3, 8), (4, 4), (6, 8), (9, 8), (12, 8))
)


def meter_by_name(name: str) -> Meter:
    for m in METERS:
        if m.name == str(name):
            return m
    raise ConfigError(
        f"unknown time signature {name!r}; valid: {', '.join(m.name for m in METERS)}"
    )


# ----------------------------------------------------------------------------- General MIDI

GM_PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip
"""The 128 General MIDI Level 1 program names (0-based program numbers)."""

GM_FAMILIES: tuple[str, ...] = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive",
    "sound_effects",
)  # fmt: skip
"""The 16 GM instrument families, eight programs each, in program order."""

EXCLUDED_PROGRAMS: frozenset[int] = frozenset(
    set(range(96, 104))  # synth effects
    | set(range(112, 128))  # percussive and sound effects
    | {8, 9, 14, 21, 23, 47, 86}  # atonal or highly articulated
    | {22, 31, 55, 77, 78}  # polyphonic or unpitched in practice
)
DEFAULT_PROGRAMS: tuple[int, ...] = tuple(p for p in range(128) if p not in EXCLUDED_PROGRAMS)
"""SynTheory's 92 tonal programs."""


def program_name(program: int) -> str:
    return GM_PROGRAM_NAMES[_check_program(program)]


def instrument_family(program: int) -> str:
    """Coarse GM family of a program (``0 -> "piano"``, ``65 -> "reed"``)."""
    return GM_FAMILIES[_check_program(program) // 8]


def _check_program(program: int) -> int:
    p = int(program)
    if not 0 <= p <= 127:
        raise ConfigError(f"GM program must be 0..127, got {program}")
    return p


def parse_program(value: str | int) -> int:
    """A program from its number or its (case-insensitive) GM name."""
    if isinstance(value, int) or str(value).strip().isdigit():
        return _check_program(int(value))
    lowered = str(value).strip().lower()
    for i, name in enumerate(GM_PROGRAM_NAMES):
        if name.lower() == lowered:
            return i
    raise ConfigError(f"unknown GM program {value!r}; give a number 0..127 or a GM name")
