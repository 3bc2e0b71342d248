"""Note clips of the prompt instruments: one sustained note, struck in a rhythm, with a caption.

What the bundled models are trained on (:mod:`musicrfm.mini`) and what instrument judges are
fitted on (:mod:`musicrfm.evaluation.judges`). Each clip is a MIDI note played ``repeats`` times
(SynTheory's notes layout: 4 x 2 beats at 120 BPM = 4 s), rendered with TinySoundFont and the
soundfont :func:`musicrfm.synth.render.find_soundfont` finds (TimGM6mb by default). Captions name
the instrument and the register only ("acoustic piano, low register"), never the pitch, so an
unsteered model must choose a note itself: that is what steering later acts on.

:class:`StrikeClip` generalises the note clip for a polyphonic testbed (issue 17): one note, a
two-note interval (together or one after the other) or a triad, struck on every beat at a tempo,
with the same caption rule (instrument and register only). :func:`strike_grid` is that testbed's
clip set, labelled (concept, root, quality and inversion or interval, bpm, program, register).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.errors import ConfigError, RenderError
from musicrfm.synth.render import Renderer, RenderOptions
from musicrfm.synth.spec import ClipSpec, Note
from musicrfm.theory import PITCH_CLASSES

# Tonal GM programs with a clear, stable pitch, one or more per family, and a short caption name.
INSTRUMENTS: dict[int, str] = {
    0: "acoustic piano",
    4: "electric piano",
    6: "harpsichord",
    11: "vibraphone",
    12: "marimba",
    16: "drawbar organ",
    19: "church organ",
    21: "accordion",
    24: "nylon guitar",
    26: "jazz guitar",
    33: "electric bass",
    40: "violin",
    42: "cello",
    46: "harp",
    48: "string ensemble",
    52: "choir",
    56: "trumpet",
    57: "trombone",
    60: "french horn",
    66: "tenor sax",
    68: "oboe",
    71: "clarinet",
    73: "flute",
    80: "square lead",
    81: "sawtooth lead",
    89: "warm pad",
    105: "banjo",
    108: "kalimba",
}

# The programs the bundled model is trained on: twelve clearly different timbres (one or two per
# GM family). Fewer timbres than INSTRUMENTS lets a few-million-parameter decoder trained for an
# hour on a CPU learn each (instrument, note) well; the others keep their caption names.
TRAIN_PROGRAMS: tuple[int, ...] = (0, 11, 12, 19, 24, 40, 52, 56, 71, 73, 80, 89)

# MIDI octave number (C4 = 60) -> register word used in captions.
REGISTERS: dict[int, str] = {3: "low", 4: "middle", 5: "high"}


@dataclass(frozen=True)
class NoteClip:
    """One training clip: a MIDI note on a GM program, its rhythm, and its caption.

    The note is struck ``repeats`` times, evenly spaced, each held for ``gate`` of its slot. With
    ``second_note`` the later half of the strikes play that note instead: the same instrument
    changing pitch mid-clip, which teaches the decoder that pitch can move while timbre stays
    (captioned "..., two notes", so prompts without those words still get one note). With
    ``melody`` every strike plays its own note (``melody[i]`` for strike i; captioned
    "..., melody"): pitch is then a per-strike choice that the instrument does not decide."""

    program: int
    midi_note: int
    velocity: int = 80
    repeats: int = 4
    gate: float = 0.9
    second_note: int | None = None
    melody: tuple[int, ...] | None = None

    @property
    def instrument(self) -> str:
        return INSTRUMENTS.get(self.program, f"program {self.program}")

    @property
    def octave(self) -> int:
        return self.midi_note // 12 - 1

    @property
    def pitch_class(self) -> int:
        return self.midi_note % 12

    @property
    def register(self) -> str:
        return REGISTERS.get(self.octave, "middle")

    @property
    def caption(self) -> str:
        return caption_for(
            self.instrument, self.register, two_notes=self.second_note is not None,
            melody=self.melody is not None,
        )  # fmt: skip

    def notes_at(self, repeats: int | None = None) -> list[int]:
        """The MIDI note of each of ``repeats`` strikes (default: the clip's own)."""
        n = self.repeats if repeats is None else repeats
        if self.melody is not None:
            return [self.melody[i % len(self.melody)] for i in range(n)]
        if self.second_note is None:
            return [self.midi_note] * n
        first = (n + 1) // 2
        return [self.midi_note] * first + [self.second_note] * (n - first)


TWO_NOTES = "two notes"
MELODY = "melody"


def caption_for(
    instrument: str, register: str | None = None, *, two_notes: bool = False, melody: bool = False
) -> str:
    """The caption text the model is trained on: instrument, register if given, and
    "two notes" for clips that change pitch half-way, "melody" for a note per strike."""
    parts = [instrument] + ([f"{register} register"] if register else [])
    return ", ".join(parts + ([TWO_NOTES] if two_notes else []) + ([MELODY] if melody else []))


def note_grid(
    programs: list[int] | None = None,
    low: int = 48,
    high: int = 83,
    velocities: tuple[int, ...] = (80,),
) -> list[NoteClip]:
    """Every (program, note, velocity) of the grid, in a fixed order."""
    programs = list(INSTRUMENTS) if programs is None else programs
    return [NoteClip(p, n, v) for p in programs for n in range(low, high + 1) for v in velocities]


def note_spec(
    clip: NoteClip, *, sampling_rate: int, seconds: float, repeats: int, gate: float
) -> ClipSpec:
    """The clip as the :class:`~musicrfm.synth.render.Renderer` takes it: strike i starts at
    sample ``i * slot`` and ends ``int(slot * gate)`` samples later (``slot`` =
    ``round(seconds * sampling_rate) // repeats``), so the samples are exactly these."""
    total = int(round(seconds * sampling_rate))
    slot = total // repeats
    held = int(slot * gate)
    notes = tuple(
        Note(i * slot / sampling_rate, (i * slot + held) / sampling_rate, n, clip.velocity)
        for i, n in enumerate(clip.notes_at(repeats))
    )
    return ClipSpec(
        concept="notes",
        key=f"p{clip.program:03d}_{clip.midi_note:03d}",
        index=0,
        label=PITCH_CLASSES[clip.pitch_class],
        params={},
        notes=notes,
        program=clip.program,
    )


@functools.lru_cache(maxsize=4)
def _renderer(sampling_rate: int, seconds: float) -> Renderer:
    # stereo, then the mean of the channels: TinySoundFont's mono output mixes panned voices
    # differently (up to 8e-3 after normalisation); this is what the clips were always made of
    return Renderer(options=RenderOptions(int(sampling_rate), 2, float(seconds)))


def render_note(
    clip: NoteClip,
    *,
    sampling_rate: int = 16_000,
    seconds: float = 4.0,
    repeats: int = 4,
    gate: float = 0.9,
) -> np.ndarray:
    """Render one clip to mono float32 in [-1, 1], peak-normalised to 0.9.

    The note starts at 0 and every ``seconds / repeats`` seconds, held for ``gate`` of each slot;
    the samples after the last whole slot are silent.
    """
    spec = note_spec(clip, sampling_rate=sampling_rate, seconds=seconds, repeats=repeats, gate=gate)
    silent_from = (int(round(seconds * sampling_rate)) // repeats) * repeats
    return _render_spec(
        spec, sampling_rate, seconds, silent_from, f"program {clip.program}, note {clip.midi_note}"
    )


def _render_spec(
    spec: ClipSpec, sampling_rate: int, seconds: float, silent_from: int | None, what: str
) -> np.ndarray:
    """Stereo render, channel mean, silence from sample ``silent_from`` on (None: none), peak 0.9."""
    audio = _renderer(sampling_rate, seconds).render(spec).mean(axis=1)
    if silent_from is not None:
        audio[silent_from:] = 0.0
    peak = float(np.abs(audio).max())
    if peak < 1e-6:
        raise RenderError(f"silent render for {what}")
    return (0.9 * audio / peak).astype(np.float32)


def render_clips(
    clips: Sequence[NoteClip | StrikeClip],
    *,
    sampling_rate: int = 16_000,
    seconds: float = 4.0,
    progress: bool = False,
) -> np.ndarray:
    """Render many clips (note clips, strike clips or a mix) into one (n, samples) float32 array."""
    from tqdm.auto import tqdm

    def one(c: NoteClip | StrikeClip) -> np.ndarray:
        if isinstance(c, StrikeClip):
            return render_strikes(c, sampling_rate=sampling_rate, seconds=seconds)
        return render_note(
            c, sampling_rate=sampling_rate, seconds=seconds, repeats=c.repeats, gate=c.gate
        )

    return np.stack([one(c) for c in tqdm(clips, desc="render", disable=not progress)])


# ----------------------------------------------------------------------------- strike clips

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
    return _render_spec(spec, sampling_rate, seconds, None, f"program {clip.program}, {spec.key}")


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
