"""Strike clips: one note, a two-note interval or a triad, struck on the beat at a tempo.

The clips of a polyphonic testbed (issue 17): intervals harmonic or melodic (up / down), triads
in every inversion, at 60-180 BPM, on the prompt instruments; captions name the instrument and
register only. Rendered by the same renderer as the note clips
(:func:`musicrfm.synth.notes.render_spec`), so a note sounds the same in both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.errors import ConfigError
from musicrfm.synth.notes import INSTRUMENTS, REGISTERS, TRAIN_PROGRAMS, caption_for, render_spec
from musicrfm.synth.spec import ClipSpec, Note
from musicrfm.theory import PITCH_CLASSES

CONCEPTS: tuple[str, ...] = ("notes", "intervals", "chords")
"""What a :class:`StrikeClip` can be: one note, two notes, three notes (a triad)."""
INTERVAL_MODES: tuple[str, ...] = ("harmonic", "up", "down")
"""How an interval clip plays its two notes: together, or one per beat rising / falling."""
TEMPOS: tuple[int, ...] = tuple(range(60, 181, 10))
"""The testbed's tempos (BPM), 60 to 180 in steps of 10."""


@dataclass(frozen=True)
class StrikeClip:
    """A note, interval or triad struck on every beat at ``bpm``, on a GM program.

    ``notes`` are the MIDI notes in playing order: with ``melodic`` strike i plays
    ``notes[i % len(notes)]`` alone (a melodic interval: ``(60, 67)`` rises a fifth, ``(67, 60)``
    falls), otherwise every strike sounds all of them together (a harmonic interval or a triad;
    stored lowest first). Strike i starts at ``i * 60 / bpm`` seconds and is held ``gate`` of a
    beat; every beat that starts inside the clip is struck. ``inversion`` (0, 1, 2) says which
    chord tone is in the bass, so the root of a triad (ambiguous for augmented ones) is known.
    The caption names the instrument and the register of the lowest note only.
    """

    program: int
    notes: tuple[int, ...]
    bpm: float = 120.0
    melodic: bool = False
    inversion: int = 0
    velocity: int = 80
    gate: float = 0.9

    def __post_init__(self) -> None:
        if not 1 <= len(self.notes) <= 3:
            raise ConfigError(f"a strike clip has 1 to 3 notes, got {self.notes}")
        if any(not 0 <= int(n) <= 127 for n in self.notes):
            raise ConfigError(f"MIDI notes must be 0..127, got {self.notes}")
        if not 20.0 <= float(self.bpm) <= 400.0:
            raise ConfigError(f"bpm must be 20..400, got {self.bpm}")
        if not 0.0 < float(self.gate) <= 1.0:
            raise ConfigError(f"gate must be in (0, 1], got {self.gate}")
        if self.melodic and len(self.notes) != 2:
            raise ConfigError("melodic strike clips are intervals: exactly two notes")
        if not self.melodic and list(self.notes) != sorted(self.notes):
            raise ConfigError(f"notes sounded together are stored lowest first, got {self.notes}")
        if len(self.notes) == 2 and not 1 <= abs(self.notes[1] - self.notes[0]) <= 12:
            raise ConfigError(f"an interval spans 1..12 semitones, got {self.notes}")
        if len(self.notes) == 3:
            self.quality  # noqa: B018 - raises for anything but the four triads
        elif self.inversion:
            raise ConfigError("only triads have an inversion")

    @classmethod
    def note(cls, program: int, midi: int, **kw: Any) -> StrikeClip:
        return cls(program, (int(midi),), **kw)

    @classmethod
    def interval(
        cls, program: int, low: int, semitones: int, mode: str = "harmonic", **kw: Any
    ) -> StrikeClip:
        """Two notes ``semitones`` apart from ``low`` up; ``mode`` one of INTERVAL_MODES."""
        if mode not in INTERVAL_MODES:
            raise ConfigError(f"interval mode must be one of {', '.join(INTERVAL_MODES)}")
        high = int(low) + int(semitones)
        notes = (high, int(low)) if mode == "down" else (int(low), high)
        return cls(program, notes, melodic=mode != "harmonic", **kw)

    @classmethod
    def triad(
        cls, program: int, root: int, quality: str, inversion: int | str = 0, **kw: Any
    ) -> StrikeClip:
        """The triad on MIDI ``root`` (close position), ``inversion`` as theory.invert takes."""
        if quality not in theory.CHORD_QUALITIES:
            raise ConfigError(
                f"unknown chord quality {quality!r}; valid: {', '.join(theory.CHORD_QUALITIES)}"
            )
        inv = theory.inversion_index(inversion)
        base = [int(root) + o for o in theory.CHORD_QUALITIES[quality]]
        return cls(program, tuple(theory.invert(base, inv)), inversion=inv, **kw)

    @property
    def concept(self) -> str:
        return CONCEPTS[len(self.notes) - 1]

    @property
    def bass(self) -> int:
        return min(self.notes)

    @property
    def root_pitch_class(self) -> int:
        """The pitch class of the note (notes), the lower note (intervals), the root (triads)."""
        if len(self.notes) == 3:
            return self.notes[(3 - self.inversion) % 3] % 12
        return self.bass % 12

    @property
    def root(self) -> str:
        return PITCH_CLASSES[self.root_pitch_class]

    @property
    def quality(self) -> str | None:
        if len(self.notes) != 3:
            return None
        r = (3 - self.inversion) % 3  # where the root sits among the notes, lowest first
        return theory.triad_quality([self.notes[(r + k) % 3] % 12 for k in range(3)])

    @property
    def semitones(self) -> int | None:
        return abs(self.notes[1] - self.notes[0]) if len(self.notes) == 2 else None

    @property
    def interval_mode(self) -> str | None:
        if len(self.notes) != 2:
            return None
        if not self.melodic:
            return "harmonic"
        return "up" if self.notes[1] > self.notes[0] else "down"

    @property
    def label(self) -> str:
        """The concept's class: pitch class, interval semitones ("7"), triad quality."""
        if len(self.notes) == 1:
            return self.root
        if len(self.notes) == 2:
            return str(self.semitones)
        return str(self.quality)

    @property
    def instrument(self) -> str:
        return INSTRUMENTS.get(self.program, f"program {self.program}")

    @property
    def register(self) -> str:
        return REGISTERS.get(self.bass // 12 - 1, "middle")

    @property
    def caption(self) -> str:
        return caption_for(self.instrument, self.register)

    @property
    def labels(self) -> dict[str, Any]:
        """Every label of the clip (what a manifest row or a probe target reads)."""
        return {
            "concept": self.concept,
            "label": self.label,
            "root": self.root,
            "quality": self.quality,
            "inversion": theory.INVERSIONS[self.inversion] if len(self.notes) == 3 else None,
            "semitones": self.semitones,
            "interval_mode": self.interval_mode,
            "bpm": float(self.bpm),
            "program": self.program,
            "instrument": self.instrument,
            "register": self.register,
            "midi_notes": " ".join(map(str, self.notes)),
        }

    def strikes(self, seconds: float) -> int:
        """How many beats start inside a clip of ``seconds``."""
        return max(1, math.ceil(seconds * self.bpm / 60.0 - 1e-9))

    def render(self, *, sampling_rate: int = 16_000, seconds: float = 4.0) -> np.ndarray:
        """:func:`render_strikes` of this clip (what :func:`~musicrfm.synth.notes.render_clips`
        calls for a clip that is not a note clip)."""
        return render_strikes(self, sampling_rate=sampling_rate, seconds=seconds)

    def notes_at(self, strikes: int) -> list[tuple[int, ...]]:
        """The MIDI notes sounded by each of ``strikes`` strikes."""
        if self.melodic:
            return [(self.notes[i % len(self.notes)],) for i in range(strikes)]
        return [self.notes] * strikes


def strike_spec(clip: StrikeClip, *, seconds: float = 4.0) -> ClipSpec:
    """The clip as the :class:`~musicrfm.synth.render.Renderer` takes it: strike i at
    ``i * 60 / bpm`` seconds, every note of it held ``gate * 60 / bpm`` seconds."""
    beat = 60.0 / float(clip.bpm)
    notes = tuple(
        Note(i * beat, i * beat + clip.gate * beat, n, clip.velocity)
        for i, chord in enumerate(clip.notes_at(clip.strikes(seconds)))
        for n in chord
    )
    key = "_".join([clip.concept, f"p{clip.program:03d}", "-".join(map(str, clip.notes))])
    params = {k: v for k, v in clip.labels.items() if k not in ("concept", "label")}
    return ClipSpec(
        concept=clip.concept,
        key=f"{key}_{'mel' if clip.melodic else 'har'}_{clip.bpm:g}bpm",
        index=0,
        label=clip.label,
        params=params,
        notes=notes,
        program=clip.program,
    )


def render_strikes(
    clip: StrikeClip, *, sampling_rate: int = 16_000, seconds: float = 4.0
) -> np.ndarray:
    """Render one strike clip to mono float32 in [-1, 1], peak-normalised to 0.9, through the
    same renderer as :func:`render_note` (stereo, channel mean). Nothing is silenced: the last
    strike rings to the clip's end."""
    spec = strike_spec(clip, seconds=seconds)
    return render_spec(spec, sampling_rate, seconds, None, f"program {clip.program}, {spec.key}")


def strike_grid(
    programs: Sequence[int] = TRAIN_PROGRAMS,
    *,
    roots: Sequence[int] = tuple(range(12)),
    bpms: Sequence[float] = TEMPOS,
    note_range: tuple[int, int] = (48, 83),
    octaves: Sequence[int] = (3, 4),
    interval_modes: Sequence[str] = INTERVAL_MODES,
    qualities: Sequence[str] = tuple(theory.CHORD_QUALITIES),
    inversions: Sequence[int] = (0, 1, 2),
    seed: int = 0,
) -> list[StrikeClip]:
    """The polyphonic testbed's clips, in a fixed order, each program playing every item:

    * notes: every MIDI note of ``note_range`` whose pitch class is in ``roots``;
    * intervals: 1..12 semitones x ``interval_modes`` x ``roots`` (the lower note's pitch class);
    * triads: ``qualities`` x ``roots`` x ``inversions``.

    The lower note of an interval and the root of a triad sit in one of ``octaves`` (octave
    numbers, C4 = 60), drawn per (item, program); each clip's tempo is drawn from ``bpms`` so
    that every tempo is used equally often (+-1) within each concept. Both draws come from one
    generator seeded with ``seed``: the same arguments give the same list.
    """
    rng = np.random.default_rng(seed)
    octs = [int(o) for o in octaves]
    if not octs or not bpms:
        raise ConfigError("strike_grid needs at least one octave and one tempo")
    pcs = sorted({int(r) % 12 for r in roots})
    items: dict[str, list[tuple[str, tuple[Any, ...]]]] = {c: [] for c in CONCEPTS}
    for midi in range(note_range[0], note_range[1] + 1):
        if midi % 12 in pcs:
            items["notes"].append(("note", (midi,)))
    for semis in range(1, 13):
        for mode in interval_modes:
            for pc in pcs:
                items["intervals"].append(("interval", (pc, semis, mode)))
    for quality in qualities:
        for pc in pcs:
            for inv in inversions:
                items["chords"].append(("triad", (pc, quality, int(inv))))
    clips: list[StrikeClip] = []
    for concept in CONCEPTS:
        n = len(items[concept]) * len(programs)
        tempo_of = [float(bpms[i % len(bpms)]) for i in rng.permutation(n)]
        octave_of = rng.integers(0, len(octs), size=n)
        k = 0
        for kind, args in items[concept]:
            for program in programs:
                base = 12 * (octs[int(octave_of[k])] + 1)
                bpm = tempo_of[k]
                if kind == "note":
                    clips.append(StrikeClip.note(program, args[0], bpm=bpm))
                elif kind == "interval":
                    pc, semis, mode = args
                    clips.append(StrikeClip.interval(program, base + pc, semis, mode, bpm=bpm))
                else:
                    pc, quality, inv = args
                    clips.append(StrikeClip.triad(program, base + pc, quality, inv, bpm=bpm))
                k += 1
    return clips


def tempo_specs(clips: Sequence[StrikeClip], *, seconds: float = 4.0) -> list[ClipSpec]:
    """The clips as a tempo dataset's specs: concept ``tempos``, label the BPM (a number, so
    probes on it are regressions), the note / interval / chord kept in the params."""
    from dataclasses import replace

    out = []
    for c in clips:
        spec = strike_spec(c, seconds=seconds)
        params = {**spec.params, "strike_concept": c.concept, "strike_label": c.label}
        out.append(replace(spec, concept="tempos", label=f"{c.bpm:g}", params=params))
    return out


def split_strikes(
    clips: Sequence[StrikeClip], *, holdout: float = 0.1, seed: int = 0
) -> tuple[list[StrikeClip], list[StrikeClip]]:
    """A seeded train / held-out split, stratified by (concept, label): each class of each
    concept keeps ``holdout`` of its clips (at least one) for held-out evaluation."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault((c.concept, c.label), []).append(i)
    held: set[int] = set()
    for key in sorted(groups):
        idx = groups[key]
        n_hold = max(1, int(round(holdout * len(idx))))
        held.update(idx[j] for j in rng.permutation(len(idx))[:n_hold])
    train = [c for i, c in enumerate(clips) if i not in held]
    return train, [c for i, c in enumerate(clips) if i in held]
