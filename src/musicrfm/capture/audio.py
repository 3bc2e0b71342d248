"""Audio files in, model-ready waveforms out: mono, resampled, peak-normalised.

Every expected problem with a file (unreadable, empty, silent, too long, absurd sample rate,
non-finite samples) raises :class:`musicrfm.errors.AudioError` with the path and what to do, so a
batch job can record it and move on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicrfm.errors import AudioError
from musicrfm.files import MIN_AUDIO_SECONDS

log = logging.getLogger(__name__)

MIN_SOURCE_RATE = 4000
"""Sample rates below this cannot carry music; such files are rejected as a wrong rate."""
SILENCE_PEAK = 1e-4
"""Peak amplitude (about -80 dBFS) below which a clip counts as silent."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says."""

    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """Read a file's header (cheap; no samples decoded)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        raise AudioError(f"{path}: unreadable or corrupt audio ({_first_line(exc)})") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    max_seconds: float | None = 60.0,
    min_seconds: float = MIN_AUDIO_SECONDS,
    truncate: bool = False,
    peak: float = 1.0,
    min_source_rate: int = MIN_SOURCE_RATE,
) -> np.ndarray:
    """Load an audio file as a mono float32 waveform at ``sample_rate``, peak-normalised.

    Parameters
    ----------
    path: WAV/FLAC/OGG/MP3 (anything libsndfile reads).
    sample_rate: the target rate (the codec's, e.g. 32000).
    max_seconds: longer files raise AudioError, or are cut to this length with a warning when
        ``truncate`` is True. None: no limit.
    min_seconds: shorter files raise AudioError.
    peak: the peak absolute amplitude after normalisation.
    min_source_rate: files recorded below this rate raise AudioError (a wrong rate).

    Raises
    ------
    AudioError: missing, corrupt, empty, too short/long, silent, non-finite or wrong-rate audio.
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    if info.sample_rate < min_source_rate:
        raise AudioError(
            f"{path}: sample rate {info.sample_rate} Hz is too low for music "
            f"(minimum {min_source_rate} Hz); check that the file's header is right"
        )
    if info.frames == 0:
        raise AudioError(f"{path}: no audio samples (empty file)")
    stop = None
    if max_seconds is not None and info.duration > max_seconds:
        if not truncate:
            raise AudioError(
                f"{path}: {info.duration:.1f} s is longer than the {max_seconds:g} s limit; "
                "cut it, or raise the limit (max_seconds / --max-seconds)"
            )
        log.warning("%s: %.1f s cut to the first %g s", path, info.duration, max_seconds)
        stop = int(max_seconds * info.sample_rate)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True, stop=stop)
    except Exception as exc:  # noqa: BLE001
        raise AudioError(f"{path}: unreadable or corrupt audio ({_first_line(exc)})") from None
    return prepare_waveform(
        data, int(sr), sample_rate, name=str(path), min_seconds=min_seconds, peak=peak
    )


def prepare_waveform(
    data: np.ndarray,
    source_rate: int,
    sample_rate: int,
    *,
    name: str = "waveform",
    min_seconds: float = MIN_AUDIO_SECONDS,
    peak: float = 1.0,
) -> np.ndarray:
    """Mono-mix (samples, channels) or (samples,) audio, resample, peak-normalise; float32."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError(f"{name}: expected (samples,) or (samples, channels), got {data.shape}")
    if data.size == 0:
        raise AudioError(f"{name}: no audio samples (empty)")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: contains NaN or infinite samples (corrupt)")
    if data.size < min_seconds * source_rate:
        raise AudioError(
            f"{name}: {data.size / source_rate:.3f} s is shorter than the {min_seconds:g} s minimum"
        )
    top = float(np.abs(data).max())
    if top < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak amplitude {top:.1e}); nothing to analyse")
    if source_rate != sample_rate:
        import librosa

        data = librosa.resample(
            data, orig_sr=source_rate, target_sr=sample_rate, res_type="soxr_hq"
        )
        top = float(np.abs(data).max())
    return np.ascontiguousarray(data * (peak / top), dtype=np.float32)


def expected_samples(info: AudioInfo, sample_rate: int, max_seconds: float | None = None) -> int:
    """Length in samples after resampling (and truncation): for sorting clips by length."""
    frames = info.frames
    if max_seconds is not None:
        frames = min(frames, int(max_seconds * info.sample_rate))
    if info.sample_rate <= 0:
        return 0
    return int(np.ceil(frames * sample_rate / info.sample_rate))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
