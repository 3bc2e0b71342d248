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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm.errors import RenderError
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
    return render_spec(
        spec, sampling_rate, seconds, silent_from, f"program {clip.program}, note {clip.midi_note}"
    )


def render_spec(
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
    clips: Sequence[Any],
    *,
    sampling_rate: int = 16_000,
    seconds: float = 4.0,
    progress: bool = False,
) -> np.ndarray:
    """Render many clips into one (n, samples) float32 array: note clips, or any clip that
    renders itself (``clip.render(sampling_rate=, seconds=)``, e.g. a
    :class:`~musicrfm.synth.strikes.StrikeClip`), or a mix."""
    from tqdm.auto import tqdm

    def one(c: Any) -> np.ndarray:
        if not isinstance(c, NoteClip):
            return c.render(sampling_rate=sampling_rate, seconds=seconds)
        return render_note(
            c, sampling_rate=sampling_rate, seconds=seconds, repeats=c.repeats, gate=c.gate
        )

    return np.stack([one(c) for c in tqdm(clips, desc="render", disable=not progress)])
