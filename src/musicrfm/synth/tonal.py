"""Tonal concepts: notes, intervals, scales, chords and progressions on GM programs.

Each generator yields every :class:`~musicrfm.synth.spec.ClipSpec` of its concept in canonical
order (labels, manifest columns and sizes: :mod:`musicrfm.synth.concepts`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from musicrfm import theory
from musicrfm.synth.spec import BEAT, ClipSpec, Note, Selection, derive_seed


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


def notes(sel: Selection) -> Iterator[ClipSpec]:
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


def intervals(sel: Selection) -> Iterator[ClipSpec]:
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


def scales(sel: Selection) -> Iterator[ClipSpec]:
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


def chords(sel: Selection) -> Iterator[ClipSpec]:
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


def progressions(sel: Selection) -> Iterator[ClipSpec]:
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
