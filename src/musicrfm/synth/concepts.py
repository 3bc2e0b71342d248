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
original did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from musicrfm import theory
from musicrfm.errors import ConfigError
from musicrfm.synth import clicks
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


def _safe(text: str) -> str:
    return text.replace("#", "s").replace("/", "-").replace(" ", "_")


def _program_fields(program: int) -> dict[str, Any]:
    return {
        "program": program,
        "program_name": theory.program_name(program),
        "instrument_family": theory.instrument_family(program),
    }


def _programs(sel: Selection) -> tuple[int, ...]:
    return sel.programs if sel.programs is not None else theory.DEFAULT_PROGRAMS


def _root_ok(sel: Selection, pc: int) -> bool:
    return sel.roots is None or pc in sel.roots


def _repeated(pitches: Sequence[int], plays: int, beats: float, start: float = 0.0) -> list[Note]:
    """``plays`` repetitions of a chord/note ``pitches``, each held ``beats`` beats."""
    notes = []
    for k in range(plays):
        t0 = start + k * beats * BEAT
        notes.extend(Note(t0, t0 + beats * BEAT, p) for p in pitches)
    return notes


def _melody(pitches: Sequence[int], beats: float = 1.0) -> list[Note]:
    return [Note(i * beats * BEAT, (i + 1) * beats * BEAT, p) for i, p in enumerate(pitches)]


# ----------------------------------------------------------------------------- tonal concepts


def _notes(sel: Selection) -> Iterator[ClipSpec]:
    programs = _programs(sel)
    n_prog = len(theory.DEFAULT_PROGRAMS) + 128
    for midi in range(108):
        pc = midi % 12
        if not _root_ok(sel, pc) or (sel.octaves is not None and midi // 12 not in sel.octaves):
            continue
        name = theory.pitch_class_name(pc)
        notes = tuple(_repeated([midi], plays=4, beats=2))
        for program in programs:
            yield ClipSpec(
                concept="notes",
                key=f"{midi:03d}_{_safe(name)}_p{program:03d}",
                index=midi * n_prog + _prog_index(program),
                label=name,
                params={
                    "pitch_class": pc,
                    "note_name": theory.note_name(midi),
                    "octave": theory.octave(midi),
                    "register": _register(midi),
                    "midi_note": midi,
                    **_program_fields(program),
                },
                notes=notes,
                program=program,
                seed=derive_seed(sel.seed, "notes", midi, program),
            )


def _register(midi: int) -> int:
    """SynTheory's coarse register: 0 low (octave < 3), 1 mid (3..5), 2 high (>= 6)."""
    o = midi // 12
    return 0 if o < 3 else 1 if o < 6 else 2


def _prog_index(program: int) -> int:
    """Position of a program in the enumeration (defaults first, others after)."""
    if program in theory.DEFAULT_PROGRAMS:
        return theory.DEFAULT_PROGRAMS.index(program)
    return len(theory.DEFAULT_PROGRAMS) + program


PLAY_STYLES = ("up", "down", "unison")


def _intervals(sel: Selection) -> Iterator[ClipSpec]:
    programs = _programs(sel)
    n_prog = len(theory.DEFAULT_PROGRAMS) + 128
    index = 0
    for base in range(60, 72):
        pc = base % 12
        for semis in range(1, 13):
            name = theory.interval_name(semis)
            for style in PLAY_STYLES:
                block = index
                index += n_prog
                if not _root_ok(sel, pc):
                    continue
                hi = base + semis
                if style == "up":
                    notes = _melody([base, hi] * 4)
                elif style == "down":
                    notes = _melody([hi, base] * 4)
                else:
                    notes = _repeated([base, hi], plays=8, beats=1)
                root = theory.pitch_class_name(pc)
                for program in programs:
                    yield ClipSpec(
                        concept="intervals",
                        key=f"{_safe(root)}_{name}_{style}_p{program:03d}",
                        index=block + _prog_index(program),
                        label=name,
                        params={
                            "interval": name,
                            "semitones": semis,
                            "play_style": style,
                            "root": root,
                            "root_pitch_class": pc,
                            "midi_note": base,
                            **_program_fields(program),
                        },
                        notes=tuple(notes),
                        program=program,
                        seed=derive_seed(sel.seed, "intervals", base, semis, style, program),
                    )


def _scales(sel: Selection) -> Iterator[ClipSpec]:
    programs = _programs(sel)
    n_prog = len(theory.DEFAULT_PROGRAMS) + 128
    index = 0
    for pc in range(12):
        root = theory.pitch_class_name(pc)
        for mode in theory.MODES:
            for style in ("up", "down"):
                block = index
                index += n_prog
                if not _root_ok(sel, pc):
                    continue
                notes = tuple(_melody(theory.scale_midi(pc, mode, descending=style == "down")))
                for program in programs:
                    yield ClipSpec(
                        concept="scales",
                        key=f"{_safe(root)}_{mode}_{style}_p{program:03d}",
                        index=block + _prog_index(program),
                        label=mode,
                        params={
                            "mode": mode,
                            "root": root,
                            "root_pitch_class": pc,
                            "play_style": style,
                            "midi_note": theory.tonic_midi(pc),
                            **_program_fields(program),
                        },
                        notes=notes,
                        program=program,
                        seed=derive_seed(sel.seed, "scales", pc, mode, style, program),
                    )


def _chords(sel: Selection) -> Iterator[ClipSpec]:
    programs = _programs(sel)
    n_prog = len(theory.DEFAULT_PROGRAMS) + 128
    index = 0
    for pc in range(12):
        root = theory.pitch_class_name(pc)
        for quality in theory.CHORD_QUALITIES:
            for inv, inv_name in enumerate(theory.INVERSIONS):
                block = index
                index += n_prog
                if not _root_ok(sel, pc):
                    continue
                pitches = theory.chord_midi(pc, quality, inv)
                notes = tuple(_repeated(pitches, plays=4, beats=2))
                for program in programs:
                    yield ClipSpec(
                        concept="chords",
                        key=f"{_safe(root)}_{quality}_{inv_name}_p{program:03d}",
                        index=block + _prog_index(program),
                        label=quality,
                        params={
                            "quality": quality,
                            "root": root,
                            "root_pitch_class": pc,
                            "inversion": inv_name,
                            "inversion_figure": theory.INVERSION_FIGURES[inv_name],
                            "bass_pitch_class": pitches[0] % 12,
                            "midi_notes": " ".join(map(str, pitches)),
                            **_program_fields(program),
                        },
                        notes=notes,
                        program=program,
                        seed=derive_seed(sel.seed, "chords", pc, quality, inv, program),
                    )


def _progressions(sel: Selection) -> Iterator[ClipSpec]:
    programs = _programs(sel)
    n_prog = len(theory.DEFAULT_PROGRAMS) + 128
    index = 0
    for pc in range(12):
        key = theory.pitch_class_name(pc)
        for prog in theory.PROGRESSIONS:
            block = index
            index += n_prog
            if not _root_ok(sel, pc):
                continue
            notes = []
            for i, chord in enumerate(theory.progression_midi(pc, prog)):
                notes.extend(_repeated(chord, plays=1, beats=2, start=i * 2 * BEAT))
            degrees = "-".join(map(str, prog.degrees))
            for program in programs:
                yield ClipSpec(
                    concept="progressions",
                    key=f"{_safe(key)}_{prog.mode}_{degrees}_p{program:03d}",
                    index=block + _prog_index(program),
                    label=prog.name,
                    params={
                        "progression": prog.name,
                        "key": key,
                        "key_pitch_class": pc,
                        "mode": prog.mode,
                        "tonality": prog.tonality,
                        "degrees": degrees,
                        **_program_fields(program),
                    },
                    notes=tuple(notes),
                    program=program,
                    seed=derive_seed(sel.seed, "progressions", pc, prog.name, program),
                )


# ----------------------------------------------------------------------------- click concepts


CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in (
        Concept(
            "notes",
            "single notes, 4 plays of 2 beats",
            theory.PITCH_CLASSES,
            "pitch class (sharp spelling)",
            _notes,
            108 * 92,
            uses_octaves=True,
        ),
        Concept(
            "intervals",
            "two notes up, down or together, root MIDI 60..71",
            theory.INTERVAL_NAMES,
            "interval name (m2..P8; semitones in `semitones`)",
            _intervals,
            12 * 12 * 3 * 92,
        ),
        Concept(
            "scales",
            "eight one-beat notes of a mode, up or down",
            tuple(theory.MODES),
            "mode name",
            _scales,
            12 * 7 * 2 * 92,
        ),
        Concept(
            "chords",
            "a triad held 2 beats, 4 times, in root/first/second inversion",
            tuple(theory.CHORD_QUALITIES),
            "triad quality",
            _chords,
            12 * 4 * 3 * 92,
        ),
        Concept(
            "progressions",
            "four diatonic triads of 2 beats (10 major, 9 natural minor)",
            tuple(p.name for p in theory.PROGRESSIONS),
            "progression in Roman numerals",
            _progressions,
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
