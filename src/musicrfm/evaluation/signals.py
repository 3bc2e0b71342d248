"""Reference signals with known content (harmonic tones, note sequences, click tracks).

Used by the tests and handy for demos: the truth is known exactly, no soundfont needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.evaluation.frontend import SAMPLE_RATE


def harmonic_tone(
    midi: float | list[float],
    duration: float = 2.0,
    sr: int = SAMPLE_RATE,
    *,
    partials: int = 6,
    rolloff: float = 0.6,
    amplitude: float = 0.3,
) -> np.ndarray:
    """A steady harmonic tone (or several notes summed) with a short fade; for tests and demos."""
    notes = [midi] if np.isscalar(midi) else list(midi)
    t = np.arange(int(duration * sr)) / sr
    y = np.zeros_like(t)
    nyquist = sr / 2
    for m in notes:
        f0 = 440.0 * 2 ** ((float(m) - 69) / 12)
        for k in range(1, partials + 1):
            if f0 * k < nyquist:
                y += rolloff ** (k - 1) * np.sin(2 * np.pi * f0 * k * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02) if len(t) > 1 else np.ones_like(t)
    y *= fade
    peak = np.abs(y).max()
    return (amplitude * y / peak if peak > 0 else y).astype(np.float32)


def note_sequence(
    midis: list[float], note_s: float = 0.5, sr: int = SAMPLE_RATE, **kw: Any
) -> np.ndarray:
    """Notes one after another, each ``note_s`` long (see :func:`harmonic_tone`)."""
    return np.concatenate([harmonic_tone(m, note_s, sr, **kw) for m in midis])


def click_track(
    bpm: float, duration: float = 6.0, sr: int = SAMPLE_RATE, *, amplitude: float = 0.5
) -> np.ndarray:
    """Short decaying 1 kHz clicks at ``bpm``."""
    y = np.zeros(int(duration * sr), dtype=np.float32)
    n = int(0.03 * sr)
    t = np.arange(n) / sr
    click = (amplitude * np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.005)).astype(np.float32)
    for start in np.arange(0.0, duration, 60.0 / bpm):
        i = int(start * sr)
        seg = y[i : i + n]
        seg += click[: len(seg)]
    return y
