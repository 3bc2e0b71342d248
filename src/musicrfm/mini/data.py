"""The mini recipe's clip variants: two-note and melody copies, and the held-out split.

The clips themselves (instruments, registers, captions, rendering) are
:mod:`musicrfm.synth.notes`.
"""

from __future__ import annotations

import numpy as np

from musicrfm.synth.notes import NoteClip


def _nearby_notes(
    clip: NoteClip, low: int, high: int, exclude: set[tuple[int, int]] | frozenset[tuple[int, int]]
) -> list[int]:
    """Notes within an octave of the clip's, inside [low, high], not a held-out pair."""
    return [
        n for n in range(max(low, clip.midi_note - 12), min(high, clip.midi_note + 12) + 1)
        if (clip.program, n) not in exclude
    ]  # fmt: skip


def with_second_notes(
    clips: list[NoteClip],
    *,
    low: int,
    high: int,
    seed: int = 0,
    exclude: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(),
) -> list[NoteClip]:
    """A two-note copy of every clip: the second note is another pitch class within an octave of
    the first, inside [low, high], never one of the ``exclude`` (program, note) pairs (the
    held-out ones stay unheard), seeded."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    out = []
    for c in clips:
        options = [n for n in _nearby_notes(c, low, high, exclude) if n % 12 != c.pitch_class]
        out.append(replace(c, second_note=int(rng.choice(options))))
    return out


def with_melodies(
    clips: list[NoteClip],
    *,
    low: int,
    high: int,
    seed: int = 0,
    exclude: set[tuple[int, int]] | frozenset[tuple[int, int]] = frozenset(),
) -> list[NoteClip]:
    """A melody copy of every clip: the first strike keeps the clip's note, every later strike
    plays a random note within an octave of it (another pitch class than the strike before),
    inside [low, high], never one of the ``exclude`` (program, note) pairs; seeded."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    out = []
    for c in clips:
        options = _nearby_notes(c, low, high, exclude)
        notes = [c.midi_note]
        for _ in range(c.repeats - 1):
            notes.append(int(rng.choice([n for n in options if n % 12 != notes[-1] % 12])))
        out.append(replace(c, melody=tuple(notes)))
    return out


def split_clips(
    clips: list[NoteClip], *, holdout: float = 0.1, seed: int = 0
) -> tuple[list[NoteClip], list[NoteClip]]:
    """A seeded train/held-out split of clips (held-out ones are never used to fit anything)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clips))
    n_hold = max(1, int(round(holdout * len(clips))))
    hold = sorted(order[:n_hold].tolist())
    hold_set = set(hold)
    train = [c for i, c in enumerate(clips) if i not in hold_set]
    return train, [clips[i] for i in hold]
