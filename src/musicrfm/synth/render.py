"""Clip specifications -> audio through a General MIDI soundfont (TinySoundFont).

TinySoundFont (compiled into the ``tinysoundfont`` wheel) renders each clip sample-accurately in
about a millisecond. It has no effects unit, so MIDI CC 91 (reverb send), which SynTheory used for
its three time-signature reverb levels, is replaced by :func:`add_reverb`: a convolution with a
seeded, exponentially decaying stereo-decorrelated noise tail (documented levels below).

The default soundfont is TimGM6mb, looked up in this order: the ``soundfont`` argument, the
``MUSICRFM_SOUNDFONT`` environment variable, the copy inside the ``pretty_midi`` package, then the
Debian/Ubuntu package locations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrfm.errors import RenderError
from musicrfm.synth.spec import ClipSpec

SOUNDFONT_ENV = "MUSICRFM_SOUNDFONT"
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/timgm6mb.sf2",
)
NAMED_SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "fluidr3": (
        "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "/usr/share/soundfonts/FluidR3_GM.sf2",
    ),
}
"""Other General MIDI soundfonts by name (``find_soundfont("fluidr3")``): Debian
``fluid-soundfont-gm``. ``timgm6mb`` names the default lookup."""
SILENCE_DB = -60.0
"""A clip whose peak is below this level (dBFS) is treated as silent and left out."""
PREROLL_SECONDS = 2.0
"""Audio rendered before a crop's start so that earlier notes' tails and reverb are present."""

REVERB_PRESETS: dict[int, tuple[float, float]] = {0: (0.0, 0.0), 1: (0.8, 0.25), 2: (1.8, 0.5)}
"""Reverb level -> (RT60 in seconds, wet gain). Level 0 is dry, 1 a room, 2 a hall."""

HOW_TO_GET = (
    "install the Debian/Ubuntu package `timgm6mb-soundfont` (apt-get install timgm6mb-soundfont), "
    "or `pip install pretty_midi` (it ships TimGM6mb.sf2), or pass --soundfont PATH "
    f"(or set {SOUNDFONT_ENV}) to any General MIDI .sf2 file"
)


def find_soundfont(path: str | os.PathLike[str] | None = None) -> Path:
    """Path of the soundfont to use; raises :class:`RenderError` saying how to get one.

    ``path`` may also be a name: ``"timgm6mb"`` (the default lookup) or a key of
    :data:`NAMED_SOUNDFONTS` (``"fluidr3"``).
    """
    name = str(path).lower() if path is not None else None
    if name == "timgm6mb":
        path = None
    elif name in NAMED_SOUNDFONTS:
        for candidate in NAMED_SOUNDFONTS[name]:
            if Path(candidate).is_file():
                return Path(candidate)
        raise RenderError(
            f"soundfont {name!r} not found (looked in {', '.join(NAMED_SOUNDFONTS[name])}); "
            "apt-get install fluid-soundfont-gm"
        )
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():  # it exists: "not found" would mislead
            found = sorted(x.name for x in p.glob("*.sf2"))
            hint = f" (it holds {', '.join(found[:3])})" if found else ""
            raise RenderError(f"soundfont {str(p)!r} is a folder; give the .sf2 file itself{hint}")
        if not p.is_file():
            raise RenderError(f"soundfont {str(p)!r} not found; {HOW_TO_GET}")
        return p
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        return find_soundfont(env)
    candidates: list[Path] = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("pretty_midi")
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).parent / "TimGM6mb.sf2")
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        pass
    candidates.extend(Path(p) for p in SYSTEM_SOUNDFONTS)
    for c in candidates:
        if c.is_file():
            return c
    raise RenderError(f"no General MIDI soundfont found (looked for TimGM6mb.sf2); {HOW_TO_GET}")


@dataclass(frozen=True)
class RenderOptions:
    sample_rate: int = 32000
    channels: int = 1
    duration: float = 4.0
    gain_db: float = 0.0


class Renderer:
    """Renders :class:`ClipSpec` objects; holds one loaded soundfont (one per process)."""

    def __init__(
        self, soundfont: str | os.PathLike[str] | None = None, options: RenderOptions | None = None
    ) -> None:
        self.options = options or RenderOptions()
        if self.options.channels not in (1, 2):
            raise RenderError(f"channels must be 1 or 2, got {self.options.channels}")
        if not 8000 <= self.options.sample_rate <= 192000:
            raise RenderError(
                f"sample rate must be 8000..192000 Hz, got {self.options.sample_rate}"
            )
        self.soundfont_path = find_soundfont(soundfont)
        try:
            from tinysoundfont import _tinysoundfont as tsf
        except ImportError as exc:  # pragma: no cover - a dependency
            raise RenderError(
                "the `tinysoundfont` package is missing: pip install tinysoundfont"
            ) from exc
        self._tsf = tsf
        try:
            self._sf = tsf.SoundFont(str(self.soundfont_path))
        except Exception as exc:
            raise RenderError(f"cannot load soundfont {str(self.soundfont_path)!r}: {exc}") from exc
        mode = (
            tsf.OutputMode.Mono if self.options.channels == 1 else tsf.OutputMode.StereoInterleaved
        )
        self._sf.set_output(mode, int(self.options.sample_rate), float(self.options.gain_db))
        self._sf.set_max_voices(128)
        self._scratch = memoryview(np.zeros(4096 * self.options.channels, dtype=np.float32)).cast(
            "B"
        )

    def render(self, clip: ClipSpec) -> np.ndarray:
        """Audio of one clip, float32 of shape (samples, channels), reverb applied, cropped."""
        opts = self.options
        sr = int(opts.sample_rate)
        n_out = int(round(opts.duration * sr))
        start = max(0.0, clip.offset - PREROLL_SECONDS)
        first = int(round((clip.offset - start) * sr))
        n_total = first + n_out
        end_t = start + n_total / sr
        events: list[tuple[int, int, int, int]] = []  # (sample, order, pitch, velocity); off first
        for note in clip.notes:
            if note.end <= start or note.start >= end_t:
                continue
            on = int(round((note.start - start) * sr))
            off = int(round((note.end - start) * sr))
            if on >= 0:
                events.append((on, 1, note.pitch, note.velocity))
            else:  # started before the pre-roll: restart it at the window start
                events.append((0, 1, note.pitch, note.velocity))
            if off < n_total:
                events.append((off, 0, note.pitch, 0))
        events.sort()
        sf = self._sf
        # tsf_reset only fast-releases voices still sounding; they would leak a few 1e-8 of the
        # previous clip into this one. Render them out into scratch so every clip starts from
        # the same state (byte-identical output whatever was rendered before).
        sf.reset()
        sf.render(self._scratch, False)
        sf.reset()
        sf.channel_set_preset_number(0, int(clip.program), bool(clip.drums))
        ch = opts.channels
        buf = np.zeros(n_total * ch, dtype=np.float32)
        view = memoryview(buf).cast("B")
        pos = 0
        for sample, kind, pitch, velocity in events:
            if sample > pos:
                sf.render(view[pos * ch * 4 : sample * ch * 4], False)
                pos = sample
            if kind == 1:
                sf.channel_note_on(0, int(pitch), float(velocity) / 127.0)
            else:
                sf.channel_note_off(0, int(pitch))
        if pos < n_total:
            sf.render(view[pos * ch * 4 : n_total * ch * 4], False)
        audio = buf.reshape(n_total, ch)
        if clip.reverb_level:
            audio = add_reverb(audio, clip.reverb_level, sr, seed=clip.seed)
        audio = audio[first : first + n_out]
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0.999:  # keep within full scale for 16-bit files
            audio = audio * (0.999 / peak)
        return np.ascontiguousarray(audio, dtype=np.float32)


def add_reverb(audio: np.ndarray, level: int, sample_rate: int, *, seed: int = 0) -> np.ndarray:
    """Simple artificial reverb: ``dry + wet * (audio * h)``.

    ``h`` is white noise (seeded, independent per channel) under an exponential envelope that
    falls 60 dB in RT60 seconds, normalised to unit energy; see :data:`REVERB_PRESETS`.
    Level 0 returns the input unchanged.
    """
    if level not in REVERB_PRESETS:
        raise RenderError(f"reverb level must be one of {sorted(REVERB_PRESETS)}, got {level}")
    rt60, wet = REVERB_PRESETS[level]
    if wet == 0.0:
        return audio
    from scipy.signal import fftconvolve

    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    env = np.exp(-6.907755 * t / rt60)  # ln(1000): -60 dB at rt60
    rng = np.random.default_rng(seed)
    out = np.empty_like(audio)
    for c in range(audio.shape[1]):
        h = rng.standard_normal(n) * env
        h[: int(0.005 * sample_rate)] *= np.linspace(0, 1, int(0.005 * sample_rate))  # pre-delay
        h /= np.sqrt(np.sum(h**2))
        tail = fftconvolve(audio[:, c], h)[: audio.shape[0]]
        out[:, c] = audio[:, c] + wet * tail
    return out.astype(np.float32)


def peak_db(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return -np.inf if peak <= 0 else 20.0 * float(np.log10(peak))


def is_silent(audio: np.ndarray, threshold_db: float = SILENCE_DB) -> bool:
    """True when the clip's peak is below ``threshold_db`` dBFS (inaudible or empty)."""
    return peak_db(audio) < threshold_db
