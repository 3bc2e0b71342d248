"""MusicGen's own activations on in-memory audio: an embedding back-end for FD/MMD and the
multiclass probe's probability trace over time (the paper's Figure 1).

Both run the capture path of :mod:`musicrfm.capture.extract` (the model's codec, then one forward of the
bare decoder with hooks on every block) on waveforms instead of a manifest of files. The text
condition defaults to the empty prompt, so that an embedding depends on the audio only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from musicrfm.errors import AudioError, ConfigError

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def prepare_wave(audio: Any, sr: int, sample_rate: int, *, name: str = "clip") -> np.ndarray:
    """Mono, resampled to ``sample_rate`` and peak-normalised (silence is kept as zeros, so a
    silent generation still gets an embedding instead of failing the whole set)."""
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim == 2:  # (channels, samples) as generated, or (samples, channels) as read
        y = y.mean(axis=0) if y.shape[0] <= 2 < y.shape[1] else y.mean(axis=1)
    y = y.reshape(-1)
    if y.size == 0:
        raise AudioError(f"{name}: no audio samples (empty)")
    if not np.isfinite(y).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    if int(sr) != int(sample_rate):
        import librosa

        y = librosa.resample(y, orig_sr=int(sr), target_sr=int(sample_rate), res_type="soxr_hq")
    top = float(np.abs(y).max()) if y.size else 0.0
    if top > 0:
        y = y / top
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_layer(adapter: ModelAdapter, layer: int | None) -> int:
    n = int(adapter.num_layers)
    layer = n // 2 if layer is None else int(layer)
    if not -n <= layer < n:
        raise ConfigError(f"layer {layer} is out of range for a model with {n} layers (0-based)")
    return layer % n


@dataclass
class ActivationEmbedding:
    """Pooled decoder-block activations of the model at hand (default: the middle layer, mean over
    the clip's frames), the default FD/MMD back-end of a sweep. Same ``embed(audios, sr)``
    protocol as :class:`musicrfm.evaluation.metrics.MFCCEmbedding`; ``hidden_size`` dims."""

    adapter: ModelAdapter
    layer: int | None = None
    pooling: str = "mean"
    prompt: str | None = ""
    batch_size: int = 8
    name: str = "activations"

    def __post_init__(self) -> None:
        from musicrfm.capture.options import POOLINGS

        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}")
        self.layer = _check_layer(self.adapter, self.layer)
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")

    def embed(self, audios: Sequence[Any], sr: int) -> np.ndarray:
        from musicrfm.capture.decoder import capture_codes

        sample_rate = int(self.adapter.sample_rate)
        waves = [prepare_wave(a, sr, sample_rate, name=f"clip {i}") for i, a in enumerate(audios)]
        out = []
        for start in range(0, len(waves), self.batch_size):
            batch = waves[start : start + self.batch_size]
            codes, mask = self.adapter.encode_audio(batch)
            feats = capture_codes(
                self.adapter, codes, mask, pooling=self.pooling, prompt=self.prompt
            )
            out.append(feats.pooled[int(self.layer)].numpy().astype(np.float64))
        if not out:
            return np.zeros((0, int(self.adapter.hidden_size)))
        return np.concatenate(out, axis=0)


def activation_frames(
    adapter: ModelAdapter, audio: Any, sr: int, *, prompt: str | None = ""
) -> Any:
    """Per-frame block outputs of one clip: a (L, T, d) float32 tensor, T codec frames."""
    from musicrfm.capture.decoder import capture_codes

    wave = prepare_wave(audio, sr, int(adapter.sample_rate))
    codes, mask = adapter.encode_audio([wave])
    feats = capture_codes(adapter, codes, mask, prompt=prompt, keep_frames=True)
    return feats.frames


def window_frames(n_frames: int, frame_rate: float, window_s: float) -> list[tuple[int, int]]:
    """Consecutive non-overlapping windows of ``window_s`` seconds over ``n_frames`` frames at
    ``frame_rate``: ``ceil(duration / window_s)`` windows, the last one possibly shorter; window
    edges are the nearest frames to multiples of ``window_s`` (at least one frame each)."""
    if window_s <= 0:
        raise ConfigError("window_s must be positive")
    per = max(window_s * frame_rate, 1.0)  # frames per window
    n = max(1, math.ceil(n_frames / per - 1e-9))
    edges = [min(n_frames, int(np.floor(k * per + 0.5))) for k in range(n)] + [n_frames]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def probe_trace(
    adapter: ModelAdapter,
    probe: Any,
    layer: int,
    audio: Any,
    sr: int,
    window_s: float = 0.5,
    *,
    prompt: str | None = "",
) -> tuple[np.ndarray, np.ndarray]:
    """The multiclass probe's class probabilities along the clip: per-frame activations of
    ``layer`` mean-pooled over windows of ``window_s`` seconds, then ``probe.predict_proba``.

    Returns (times, probs): window centres in seconds (T,) and probabilities (T, C), rows
    summing to 1, columns in the probe's class order.
    """
    import torch

    layer = _check_layer(adapter, layer)
    frames = activation_frames(adapter, audio, sr, prompt=prompt)[layer]  # (T, d)
    rate = float(adapter.frame_rate)
    spans = window_frames(int(frames.shape[0]), rate, window_s)
    pooled = torch.stack([frames[a:b].mean(0) for a, b in spans])
    probs = probe.predict_proba(pooled)
    probs = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
    times = np.array([(a + b) / 2.0 / rate for a, b in spans])
    return times, np.asarray(probs, dtype=np.float64)


def trace_window(seconds: float) -> float:
    """The probe-trace window for a clip: 1/8 of it, kept within 0.25-0.5 s."""
    return float(min(0.5, max(0.25, seconds / 8.0))) if math.isfinite(seconds) else 0.5


__all__ = [
    "ActivationEmbedding",
    "activation_frames",
    "prepare_wave",
    "probe_trace",
    "trace_window",
    "window_frames",
]
