"""Dense multi-track arrangements with known labels: the detectors' full-mix validation set.

Rendered single-instrument clips are easy for a chroma detector; real music is not. An
:class:`Arrangement` is four tracks -- drums, bass, a chord instrument and a lead melody, each
on a GM program drawn from a short list -- playing one of SynTheory's 19 progressions (one
chord per bar) in a key and mode, at a tempo and meter, mixed at seeded levels with reverb.
Every label is known by construction: key and mode, the chord of every bar (root + quality),
the bar and beat times, tempo, meter and every lead note.

Set version 2 (:data:`SET_VERSION`; version 1 was the four bars alone) establishes the key the
way real music does: after the progression's four bars comes a final tonic bar -- the tonic
triad in the chord instrument, the bass holding the tonic, the lead landing on the tonic and
holding it, a crash on its downbeat. Version 1 ended wherever the progression ended, and
several of SynTheory's progressions are the same four chords in a major key and its relative
minor (vi-IV-I-V in C = i-VI-III-VII in A minor), so its key labels could not be told from the
audio (every key error of the detectors there was a relative major / minor swap). The change
was made to the validation set openly, not tuned on any detector's answer. Bars 1-4 of a
version-2 clip are the notes of the same clip in version 1 (the final bar draws from its own
generator). Labels: ``chords`` names all five bars (the fifth is the tonic triad),
``progression`` stays the SynTheory name of bars 1-4 (so a progression detector reads the
first four bars, as before), ``cadence`` names the last two bars' numerals (``"V-I"``,
``"VII-i"``...).

Two renderers: TinySoundFont (the project's :class:`~musicrfm.synth.render.Renderer`, default
soundfont TimGM6mb) and FluidSynth (pyfluidsynth, reverb and chorus off) with any other General
MIDI soundfont (Debian ``fluid-soundfont-gm``: FluidR3_GM.sf2). Tracks are rendered one at a
time, scaled to their level by RMS and summed, then :func:`~musicrfm.synth.render.add_reverb`
is applied, so both renderers get the same mix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.errors import ConfigError, RenderError
from musicrfm.synth.spec import Note, derive_seed

SAMPLE_RATE = 22050
"""The detectors' rate; mixes are written at it so no resampling stands between them."""
ROLES = ("drums", "bass", "chords", "lead")
BASS_PROGRAMS = (32, 33, 34, 35, 38)
CHORD_PROGRAMS = (0, 4, 5, 16, 19, 24, 25, 48)
LEAD_PROGRAMS = (40, 56, 65, 71, 73, 80, 81)
METERS = {"4/4": 4, "3/4": 3}
"""The meters of the set and their beats per bar (quarter-note beats)."""
TEMPO_RANGE = {"4/4": (70, 180), "3/4": (60, 180)}
LEVELS_DB = {"drums": -14.0, "bass": -16.0, "chords": -17.0, "lead": -14.0}
"""Mean RMS level of each track (dBFS) before the seeded +-2 dB jitter: lead and drums on top,
bass and chords under them, as a pop mix is balanced."""
KICK, SNARE, HAT, CRASH = 36, 38, 42, 49
SET_VERSION = 2
"""Version of the set's design, written to ``dataset.json`` and every manifest row: 2 added the
final tonic bar (see the module docstring)."""
PROGRESSION_BARS = 4
"""Bars of the SynTheory progression (the ``progression`` label)."""
BARS = PROGRESSION_BARS + 1
"""Bars of a clip: the progression, then the final tonic bar."""


@dataclass(frozen=True)
class Arrangement:
    """One multi-track clip and all its labels (times in seconds from the clip start)."""

    index: int
    tonic: int
    mode: str
    progression: str
    chords: tuple[tuple[int, str], ...]
    bpm: float
    meter: str
    programs: Mapping[str, int]
    levels_db: Mapping[str, float]
    reverb: int
    tracks: Mapping[str, tuple[Note, ...]] = field(repr=False)
    seed: int = 0

    @property
    def beat_s(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar_s(self) -> float:
        return METERS[self.meter] * self.beat_s

    @property
    def duration(self) -> float:
        """Five bars (the progression and the final tonic bar) and half a beat of ring-out."""
        return BARS * self.bar_s + 0.5 * self.beat_s

    @property
    def key(self) -> str:
        return f"{theory.PITCH_CLASSES[self.tonic]}:{self.mode}"

    def chord_names(self) -> list[str]:
        return [f"{theory.PITCH_CLASSES[r]}:{q}" for r, q in self.chords]

    @property
    def cadence(self) -> str:
        """Roman numerals of the last two bars (the approach and the final tonic): ``"V-I"``."""
        return "-".join(self.progression.split("-")[-1:] + ["I" if self.mode == "major" else "i"])

    def labels(self) -> dict[str, Any]:
        """The manifest row (lists as JSON text so a CSV keeps them)."""
        lead = [[round(n.start, 4), round(n.end, 4), n.pitch] for n in self.tracks["lead"]]
        return {
            "concept": "mixes",
            "label": self.key,
            "key": self.key,
            "tonic": theory.PITCH_CLASSES[self.tonic],
            "mode": self.mode,
            "progression": self.progression,
            "cadence": self.cadence,
            "chords": "|".join(self.chord_names()),
            "bar_times": json.dumps([round(i * self.bar_s, 4) for i in range(BARS + 1)]),
            "bpm": float(self.bpm),
            "time_signature": self.meter,
            "lead_notes": json.dumps(lead),
            "reverb_level": self.reverb,
            **{f"{role}_program": int(p) for role, p in self.programs.items()},
            "seed": self.seed,
            "set_version": SET_VERSION,
        }


def _voicing(root: int, quality: str, previous: list[int] | None) -> list[int]:
    """The triad's close-position inversion nearest the previous chord, within MIDI 52-71."""
    pcs = theory.chord_pitch_classes(root, quality)
    options = []
    for base in range(52, 64):
        if base % 12 in pcs:
            chord = sorted(base + (pc - base) % 12 for pc in pcs)
            options.append(chord)
    if previous is None:
        return min(options, key=lambda c: abs(np.mean(c) - 60))
    return min(options, key=lambda c: sum(abs(a - b) for a, b in zip(c, previous)))


def _drums(
    meter: str, beat: float, rng: np.random.Generator, bars: range = range(PROGRESSION_BARS)
) -> list[Note]:
    """Kick, snare and hi-hat eighths in ``bars``, a crash on the first of them."""
    beats = METERS[meter]
    notes = [Note(bars[0] * beats * beat, bars[0] * beats * beat + 0.3, CRASH, 90)]
    for bar in bars:
        t0 = bar * beats * beat
        for b in range(beats):
            t = t0 + b * beat
            if b == 0 or (meter == "4/4" and b == 2):
                notes.append(Note(t, t + 0.1, KICK, 110 if b == 0 else 96))
            if (meter == "4/4" and b in (1, 3)) or (meter == "3/4" and b in (1, 2)):
                notes.append(Note(t, t + 0.1, SNARE, 96 if meter == "4/4" else 70))
            for half in (0.0, 0.5):
                vel = int(rng.integers(60, 80)) if half else int(rng.integers(75, 95))
                notes.append(Note(t + half * beat, t + half * beat + 0.05, HAT, vel))
    return notes


def _bass(chords: list[tuple[int, str]], meter: str, beat: float) -> list[Note]:
    beats = METERS[meter]
    notes = []
    for bar, (root, quality) in enumerate(chords):
        low = 36 + (root - 36) % 12  # MIDI 36-47
        fifth = low + theory.CHORD_QUALITIES[quality][2]
        t0 = bar * beats * beat
        pattern = (low, low, fifth, low) if beats == 4 else (low, fifth, fifth)
        for b, pitch in enumerate(pattern):
            notes.append(Note(t0 + b * beat, t0 + (b + 0.9) * beat, pitch, 100))
    return notes


def _comp(
    chords: list[tuple[int, str]], meter: str, beat: float, style: str
) -> tuple[list[Note], list[list[int]]]:
    beats = METERS[meter]
    notes: list[Note] = []
    voicings: list[list[int]] = []
    previous = None
    for bar, (root, quality) in enumerate(chords):
        chord = _voicing(root, quality, previous)
        previous = chord
        voicings.append(chord)
        t0 = bar * beats * beat
        if style == "sustain":
            notes.extend(Note(t0, t0 + beats * beat * 0.98, p, 80) for p in chord)
        elif style == "beats":
            for b in range(beats):
                notes.extend(Note(t0 + b * beat, t0 + (b + 0.8) * beat, p, 76) for p in chord)
        else:  # broken chord in eighths
            order = [*chord, chord[1]]
            for k in range(2 * beats):
                t = t0 + k * beat / 2
                notes.append(Note(t, t + beat * 0.9, order[k % 4], 80))
    return notes, voicings


def _lead(
    tonic: int,
    mode: str,
    chords: list[tuple[int, str]],
    meter: str,
    beat: float,
    rng: np.random.Generator,
) -> list[Note]:
    """A melody on the key's scale within MIDI 67-88: a chord tone on every strong beat, scale
    steps between, notes of one or two beats (never shorter, so every note can be heard and
    scored)."""
    beats = METERS[meter]
    scale = [m for m in range(67, 89) if (m - tonic) % 12 in theory.MODES[mode]]
    notes: list[Note] = []
    current = int(rng.choice([m for m in scale if 70 <= m <= 79]))
    for bar, (root, quality) in enumerate(chords):
        tones = [m for m in scale if (m % 12) in theory.chord_pitch_classes(root, quality)]
        b = 0
        while b < beats:
            length = 2 if beats - b >= 2 and rng.random() < 0.4 else 1
            if b == 0 or rng.random() < 0.5:
                choices = [m for m in tones if abs(m - current) <= 7] or tones
            else:
                i = scale.index(min(scale, key=lambda m: abs(m - current)))
                step = int(rng.choice([-2, -1, 1, 2]))
                choices = [scale[int(np.clip(i + step, 0, len(scale) - 1))]]
            pitch = int(rng.choice(choices))
            t = (bar * beats + b) * beat
            notes.append(Note(t, t + (length - 0.1) * beat, pitch, 100))
            current = pitch
            b += length
    return notes


def _coda(
    tonic: int,
    lead: list[Note],
    meter: str,
    beat: float,
    rng: np.random.Generator,
) -> dict[str, list[Note]]:
    """The final tonic bar (bar :data:`PROGRESSION_BARS`): the bass holds the low tonic, the
    lead lands on the tonic nearest its last note (MIDI 67-88) and holds it, the drums keep
    time with a crash on the downbeat. The chord instrument's bar comes from :func:`_comp`."""
    beats = METERS[meter]
    t0 = PROGRESSION_BARS * beats * beat
    hold = t0 + (beats - 0.1) * beat
    low = 36 + (tonic - 36) % 12
    last = lead[-1].pitch
    top = min((m for m in range(67, 89) if m % 12 == tonic), key=lambda m: (abs(m - last), m))
    return {
        "drums": _drums(meter, beat, rng, range(PROGRESSION_BARS, BARS)),
        "bass": [Note(t0, hold, low, 100)],
        "lead": [Note(t0, hold, top, 100)],
    }


def arrangement(index: int, *, seed: int = 0) -> Arrangement:
    """Arrangement number ``index`` of the set made with ``seed`` (same arguments, same clip).

    Progressions cycle through SynTheory's 19 (so the set is balanced in major / minor); tonic,
    meter (4/4 twice as often as 3/4), tempo, programs, comping style, levels and reverb are
    drawn from a generator seeded by ``(seed, index)``, in the order version 1 drew them; the
    final tonic bar's hi-hat velocities come from a second generator, so bars 1-4 are
    version 1's notes.
    """
    rng = np.random.default_rng(derive_seed(seed, "arrangement", index))
    prog = theory.PROGRESSIONS[index % len(theory.PROGRESSIONS)]
    tonic = int(rng.integers(12))
    mode = "major" if prog.mode == "ionian" else "minor"
    chords = []
    for degree in prog.degrees:
        pcs = theory.diatonic_triad_pcs(tonic, prog.mode, degree)
        chords.append((pcs[0], theory.triad_quality(pcs)))
    meter = "4/4" if rng.random() < 2 / 3 else "3/4"
    low, high = TEMPO_RANGE[meter]
    bpm = float(rng.integers(low, high + 1))
    beat = 60.0 / bpm
    programs = {
        "drums": 0,
        "bass": int(rng.choice(BASS_PROGRAMS)),
        "chords": int(rng.choice(CHORD_PROGRAMS)),
        "lead": int(rng.choice(LEAD_PROGRAMS)),
    }
    style = str(rng.choice(["sustain", "beats", "broken"]))
    final = (tonic, "major" if mode == "major" else "minor")
    comp, _ = _comp([*chords, final], meter, beat, style)
    drums = _drums(meter, beat, rng)
    lead = _lead(tonic, prog.mode, chords, meter, beat, rng)
    coda = _coda(tonic, lead, meter, beat, np.random.default_rng(derive_seed(seed, "coda", index)))
    tracks = {
        "drums": tuple(drums + coda["drums"]),
        "bass": tuple(_bass(chords, meter, beat) + coda["bass"]),
        "chords": tuple(comp),
        "lead": tuple(lead + coda["lead"]),
    }
    levels = {r: round(LEVELS_DB[r] + float(rng.uniform(-2, 2)), 2) for r in ROLES}
    return Arrangement(
        index=index,
        tonic=tonic,
        mode=mode,
        progression=prog.name,
        chords=(*chords, final),
        bpm=bpm,
        meter=meter,
        programs=programs,
        levels_db=levels,
        reverb=int(rng.choice([1, 2])),
        tracks=tracks,
        seed=seed,
    )


# ----------------------------------------------------------------------------- rendering


class TrackRenderer:
    """Renders one track (notes on one GM program) to mono float32 at :data:`SAMPLE_RATE`.

    ``backend="tinysoundfont"`` uses the project's Renderer; ``"fluidsynth"`` uses pyfluidsynth
    (needs the Debian ``fluidsynth`` / ``libfluidsynth3`` library) with reverb and chorus off.
    """

    def __init__(self, soundfont: str | os.PathLike[str], backend: str, seconds: float) -> None:
        self.backend = backend
        self.seconds = seconds
        self.soundfont = Path(soundfont)
        if backend == "tinysoundfont":
            from musicrfm.synth.render import Renderer, RenderOptions

            self._tsf = Renderer(
                soundfont, RenderOptions(sample_rate=SAMPLE_RATE, channels=1, duration=seconds)
            )
        elif backend == "fluidsynth":
            try:
                import fluidsynth
            except (ImportError, OSError) as exc:
                raise RenderError(
                    "the fluidsynth backend needs pyfluidsynth and the FluidSynth library: "
                    "apt-get install fluidsynth && pip install pyfluidsynth"
                ) from exc
            self._fs = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.5)
            self._fs.setting("synth.reverb.active", 0)
            self._fs.setting("synth.chorus.active", 0)
            self._sfid = self._fs.sfload(str(soundfont))
            if self._sfid < 0:
                raise RenderError(f"FluidSynth cannot load soundfont {str(soundfont)!r}")
        else:
            raise ConfigError(f"unknown renderer {backend!r}; valid: tinysoundfont, fluidsynth")

    def render(self, notes: Sequence[Note], program: int, drums: bool) -> np.ndarray:
        if self.backend == "tinysoundfont":
            from musicrfm.synth.spec import ClipSpec

            spec = ClipSpec("mix", "track", 0, "", {}, tuple(notes), program, drums=drums)
            return self._tsf.render(spec)[:, 0].astype(np.float32)
        return self._fluid(notes, program, drums)

    def _fluid(self, notes: Sequence[Note], program: int, drums: bool) -> np.ndarray:
        fs, chan = self._fs, 9 if drums else 0
        fs.program_select(chan, self._sfid, 128 if drums else 0, int(program))
        n_total = int(round(self.seconds * SAMPLE_RATE))
        events = []
        for n in notes:
            events.append((int(round(n.start * SAMPLE_RATE)), 1, n.pitch, n.velocity))
            events.append((int(round(n.end * SAMPLE_RATE)), 0, n.pitch, 0))
        events.sort()
        out, pos = [], 0
        for sample, kind, pitch, velocity in events:
            if sample >= n_total:
                break
            if sample > pos:
                out.append(self._samples(sample - pos))
                pos = sample
            if kind:
                fs.noteon(chan, int(pitch), int(velocity))
            else:
                fs.noteoff(chan, int(pitch))
        if pos < n_total:
            out.append(self._samples(n_total - pos))
        fs.all_sounds_off(chan)
        self._samples(SAMPLE_RATE // 2)  # flush released voices before the next track
        return np.concatenate(out).astype(np.float32)

    def _samples(self, n: int) -> np.ndarray:
        stereo = np.asarray(self._fs.get_samples(n), dtype=np.float32).reshape(-1, 2)
        return stereo.mean(axis=1) / 32768.0


def mix(arr: Arrangement, renderer: TrackRenderer) -> np.ndarray:
    """The arrangement's mix: each track at its level (RMS), summed, reverb, peak 0.9."""
    from musicrfm.synth.render import add_reverb

    n = int(round(arr.duration * SAMPLE_RATE))
    total = np.zeros(n, dtype=np.float64)
    for role in ROLES:
        y = renderer.render(arr.tracks[role], arr.programs[role], role == "drums")[:n]
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms <= 0:
            raise RenderError(f"silent {role} track in arrangement {arr.index}")
        total[: len(y)] += y * (10 ** (arr.levels_db[role] / 20) / rms)
    wet = add_reverb(total[:, None].astype(np.float32), arr.reverb, SAMPLE_RATE, seed=arr.seed)
    y = wet[:, 0]
    return (0.9 * y / max(float(np.abs(y).max()), 1e-9)).astype(np.float32)


def write_mix_set(
    out: str | os.PathLike[str],
    *,
    count: int = 38,
    soundfont: str | os.PathLike[str] | None = None,
    backend: str = "tinysoundfont",
    seed: int = 0,
) -> Path:
    """Render ``count`` arrangements into ``out`` (FLAC files, ``manifest.csv``,
    ``dataset.json``); returns the folder. The same arguments give the same labels, and the
    same audio for a given soundfont and renderer."""
    import pandas as pd
    import soundfile as sf

    from musicrfm.files import write_atomic
    from musicrfm.synth.render import find_soundfont

    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    sf_path = find_soundfont(soundfont)
    arrs = [arrangement(i, seed=seed) for i in range(count)]
    renderer = TrackRenderer(sf_path, backend, max(a.duration for a in arrs) + 0.1)
    root = Path(out)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for arr in arrs:
        rel = f"audio/mix_{arr.index:04d}.flac"
        sf.write(str(root / rel), mix(arr, renderer), SAMPLE_RATE, subtype="PCM_16")
        rows.append(
            {
                "path": rel,
                **arr.labels(),
                "duration": round(arr.duration, 4),
                "sample_rate": SAMPLE_RATE,
            }
        )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    meta = {
        "kind": "mixes",
        "set_version": SET_VERSION,
        "count": count,
        "seed": seed,
        "renderer": backend,
        "soundfont": sf_path.name,
    }
    text = json.dumps(meta, indent=2) + "\n"
    write_atomic(root / "dataset.json", lambda tmp: tmp.write_text(text))
    return root
