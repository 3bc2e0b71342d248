"""One generator per concept: clip specifications (labels + MIDI notes + render parameters).

A :class:`ClipSpec` is everything needed to render one clip and to write its manifest row; it is
pure data (no audio), so enumerating a whole concept is instant and can be tested without
rendering. The seven concepts and their full sizes match SynTheory (Wei et al. 2024); enumeration
is outer to inner, and ``label`` (always a string) is the first manifest column after ``concept``:

- notes (9,936): MIDI 0..107 x 92 programs; one note played 4 times for 2 beats.
  label = pitch class (``"C#"``); columns pitch_class (0..11), note_name (``"C#4"``),
  octave (SynTheory's ``midi // 12``), register (0 low, 1 mid, 2 high), midi_note.
- intervals (39,744): root MIDI 60..71 x 1..12 semitones x {up, down, unison} x 92.
  label = interval name (``"m2"`` .. ``"P8"``); columns interval, semitones, play_style, root,
  root_pitch_class, midi_note (the lower note).
- scales (15,456): 12 roots x 7 modes x {up, down} x 92; eight one-beat notes.
  label = mode; columns mode, root, root_pitch_class, play_style, midi_note (tonic).
- chords (13,248): 12 roots x {major, minor, augmented, diminished} x {root, first, second}
  inversion x 92; the triad held 2 beats, 4 times. label = quality; columns quality, root,
  root_pitch_class, inversion, inversion_figure (5/6/64), bass_pitch_class, midi_notes.
- progressions (20,976): 12 keys x 19 progressions (10 major, 9 natural minor) x 92; four triads
  of 2 beats. label = Roman numerals (``"I-V-vi-IV"``); columns progression, key,
  key_pitch_class, mode, tonality, degrees.
- tempos (4,025): 50..210 BPM x 5 click sounds x 5 seeded 4 s crops of a 20 s click track.
  label = BPM as a string; columns bpm (int), click, crop, offset (crop start, s).
- time_signatures (1,200): 8 meters x 3 reverb levels x 5 click sounds x 10 seeded crops of a
  30 s track at 120 BPM, accent on each bar's first click. label = ``"6/8"``; columns
  time_signature, beats, unit, is_compound, bpm, reverb_level, click, crop, offset.

Every row also has program, program_name and instrument_family (the GM family: ``"piano"``,
``"organ"``, ``"guitar"``, ``"strings"``, ``"brass"``, ``"reed"``, ``"pipe"``, ...; ``"drums"``
for the drum-kit click). Tonal concepts play at 120 BPM (a beat is 0.5 s), velocity 64, as the
original did. Their generators are :mod:`musicrfm.synth.tonal`, the click concepts'
:mod:`musicrfm.synth.clicks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from musicrfm import theory
from musicrfm.errors import ConfigError
from musicrfm.synth import clicks, tonal
from musicrfm.synth.clicks import CLICK_SOUNDS, ClickSound, click_track
from musicrfm.synth.spec import (
    BEAT,
    BPM,
    VELOCITY,
    ClipSpec,
    Note,
    Selection,
    derive_seed,
    limit_per_class,
)

__all__ = [
    "BEAT",
    "BPM",
    "CLICK_SOUNDS",
    "CONCEPTS",
    "VELOCITY",
    "ClickSound",
    "ClipSpec",
    "Concept",
    "Note",
    "Selection",
    "click_track",
    "clips_for",
    "derive_seed",
    "get_concept",
    "parse_concepts",
]


@dataclass(frozen=True)
class Concept:
    """A concept: its label column, its classes and a generator of every clip."""

    name: str
    description: str
    labels: tuple[str, ...]
    label_meaning: str
    generator: Callable[[Selection], Iterator[ClipSpec]] = field(repr=False)
    full_size: int
    uses_programs: bool = True
    uses_roots: bool = True
    uses_octaves: bool = False

    def clips(self, selection: Selection | None = None) -> list[ClipSpec]:
        """The selected clips in canonical order (subset, limit per class, seeded)."""
        sel = selection or Selection()
        if sel.labels is not None:
            unknown = [lab for lab in sel.labels if lab not in self.labels]
            if unknown:
                raise ConfigError(
                    f"unknown {self.name} label(s) {', '.join(map(repr, unknown))}; "
                    f"valid: {', '.join(self.labels)}"
                )
        clips = [c for c in self.generator(sel) if sel.labels is None or c.label in sel.labels]
        if sel.limit_per_class is not None:
            clips = limit_per_class(clips, sel.limit_per_class, derive_seed(sel.seed, self.name))
        return clips


CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in (
        Concept(
            "notes",
            "single notes, 4 plays of 2 beats",
            theory.PITCH_CLASSES,
            "pitch class (sharp spelling)",
            tonal.notes,
            108 * 92,
            uses_octaves=True,
        ),
        Concept(
            "intervals",
            "two notes up, down or together, root MIDI 60..71",
            theory.INTERVAL_NAMES,
            "interval name (m2..P8; semitones in `semitones`)",
            tonal.intervals,
            12 * 12 * 3 * 92,
        ),
        Concept(
            "scales",
            "eight one-beat notes of a mode, up or down",
            tuple(theory.MODES),
            "mode name",
            tonal.scales,
            12 * 7 * 2 * 92,
        ),
        Concept(
            "chords",
            "a triad held 2 beats, 4 times, in root/first/second inversion",
            tuple(theory.CHORD_QUALITIES),
            "triad quality",
            tonal.chords,
            12 * 4 * 3 * 92,
        ),
        Concept(
            "progressions",
            "four diatonic triads of 2 beats (10 major, 9 natural minor)",
            tuple(p.name for p in theory.PROGRESSIONS),
            "progression in Roman numerals",
            tonal.progressions,
            12 * 19 * 92,
        ),
        Concept(
            "tempos",
            "click tracks at 50..210 BPM in 5 sounds, random 4 s crops",
            tuple(str(b) for b in range(50, 211)),
            "BPM as a string (numeric in `bpm`)",
            clicks.tempos,
            161 * 5 * 5,
            uses_programs=False,
            uses_roots=False,
        ),
        Concept(
            "time_signatures",
            "accented click tracks at 120 BPM, 3 reverb levels, 5 sounds, 10 crops",
            tuple(m.name for m in theory.METERS),
            "time signature",
            clicks.time_signatures,
            8 * 3 * 5 * 10,
            uses_programs=False,
            uses_roots=False,
        ),
    )
}
"""The seven concepts by name, in SynTheory's order."""

ALIASES = {"chord_progressions": "progressions", "note": "notes", "meters": "time_signatures"}


def get_concept(name: str) -> Concept:
    """A concept by name (or alias); an unknown name lists the valid ones."""
    key = ALIASES.get(name, name)
    if key not in CONCEPTS:
        raise ConfigError(f"unknown concept {name!r}; valid: {', '.join(CONCEPTS)}")
    return CONCEPTS[key]


def parse_concepts(
    concepts: str | Iterable[str] | Mapping[str, Iterable[str] | None],
) -> dict[str, tuple[str, ...] | None]:
    """Concept names with optional label subsets.

    Accepts ``"notes"``, ``["chords:major,minor", "notes"]`` or ``{"chords": ["major"]}``;
    returns ``{name: labels or None}`` in the order given (duplicates merged).
    """
    if isinstance(concepts, str):
        concepts = [concepts]
    items: list[tuple[str, tuple[str, ...] | None]] = []
    if isinstance(concepts, Mapping):
        for name, labels in concepts.items():
            items.append((name, None if labels is None else tuple(map(str, labels))))
    else:
        for text in concepts:
            name, _, rest = str(text).partition(":")
            labels = tuple(s.strip() for s in rest.split(",") if s.strip()) if rest else None
            items.append((name.strip(), labels))
    if not items:
        raise ConfigError(f"no concept given; valid: {', '.join(CONCEPTS)}")
    out: dict[str, tuple[str, ...] | None] = {}
    for name, labels in items:
        concept = get_concept(name)
        if labels is not None:
            unknown = [lab for lab in labels if lab not in concept.labels]
            if unknown:
                raise ConfigError(
                    f"unknown {concept.name} label(s) {', '.join(map(repr, unknown))}; "
                    f"valid: {', '.join(concept.labels)}"
                )
        if concept.name not in out:
            out[concept.name] = labels
        else:
            prev = out[concept.name]
            merged = None if prev is None or labels is None else (*prev, *labels)
            out[concept.name] = None if merged is None else tuple(dict.fromkeys(merged))
    return out


def clips_for(concept: str, selection: Selection, *, duration: float = 4.0) -> list[ClipSpec]:
    """The selected clips of one concept (``duration`` sets crop ranges of click concepts)."""
    c = get_concept(concept)
    if c.name in ("tempos", "time_signatures") and duration != 4.0:
        gen = clicks.tempos if c.name == "tempos" else clicks.time_signatures
        c = Concept(
            c.name,
            c.description,
            c.labels,
            c.label_meaning,
            lambda sel: gen(sel, duration),
            c.full_size,
            uses_programs=False,
            uses_roots=False,
        )
    return c.clips(selection)
