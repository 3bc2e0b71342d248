"""Metrics: target accuracy with bootstrap CIs, Fréchet distance, MMD, CLAP similarity.

Every number that goes into a table or a figure should be an :class:`Estimate` (value, 95%
interval, n), so the report can always say how many generations are behind it.

Embedding back-ends for FD/MMD are pluggable (:class:`EmbeddingBackend`): anything with
``embed(audios, sr) -> (n, d) array``. The default, when a model is at hand, is MusicGen pooled
activations (:class:`musicrfm.evaluation.activations.ActivationEmbedding`, middle decoder layer);
:class:`MFCCEmbedding` needs no weights. :func:`make_embedding` picks one by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from musicrfm.errors import AudioError, ConfigError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimate:
    """A statistic with a percentile-bootstrap confidence interval and its sample size."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"

    def to_dict(self, prefix: str = "") -> dict[str, float | int]:
        return {
            f"{prefix}value" if prefix else "value": self.value,
            f"{prefix}ci_low": self.low,
            f"{prefix}ci_high": self.high,
            f"{prefix}n": self.n,
        }


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap CI of ``statistic`` over ``values`` (resampled with replacement).

    Same seed, same interval. With n = 1 the interval collapses to the value; n = 0 raises
    ConfigError (there is nothing to estimate).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ConfigError("cannot bootstrap an empty sample")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    value = float(statistic(x))
    if x.size == 1:
        return Estimate(value, value, value, 1, confidence)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    if statistic is np.mean:
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in idx])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high), int(x.size), confidence)


def bootstrap_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """mean(a) - mean(b) with a percentile-bootstrap CI, both samples resampled independently.

    ``n`` of the result is the smaller sample size. Pass ``rng`` to draw from a shared stream.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ConfigError("cannot bootstrap a difference with an empty sample")
    rng = rng if rng is not None else np.random.default_rng(seed)
    diffs = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1) - y[
        rng.integers(0, y.size, (n_boot, y.size))
    ].mean(1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return Estimate(float(x.mean() - y.mean()), float(low), float(high), min(x.size, y.size))


def proportion_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, confidence: float = 0.95
) -> Estimate:
    """rate(a) - rate(b) of two 0/1 samples with Newcombe's hybrid score interval.

    Why not the bootstrap: a sample with no hits (0/24) resamples to a rate of exactly 0, so a
    percentile bootstrap of the difference excludes zero against any baseline with a few hits,
    although 0/24 is what a rate of 5% gives a third of the time. The score interval (built from
    the two Wilson intervals) keeps its coverage at 0 and at 1.
    """
    from scipy.stats import binomtest

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ConfigError("cannot compare rates with an empty sample")
    if not (np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        raise ConfigError("proportion_difference takes 0/1 outcomes")

    def wilson(v: np.ndarray) -> tuple[float, float, float]:
        ci = binomtest(int(v.sum()), v.size).proportion_ci(confidence, method="wilson")
        return float(v.mean()), float(ci.low), float(ci.high)

    p1, l1, u1 = wilson(x)
    p2, l2, u2 = wilson(y)
    d = p1 - p2
    low = d - float(np.hypot(p1 - l1, u2 - p2))
    high = d + float(np.hypot(u1 - p1, p2 - l2))
    return Estimate(d, low, high, min(x.size, y.size))


def target_accuracy(
    predicted: Sequence[Any],
    targets: Sequence[Any],
    *,
    match: Callable[[Any, Any], bool] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Share of ``predicted`` labels that hit their ``targets``, with a bootstrap 95% CI.

    ``match(pred, target)`` decides a hit (default: string equality), e.g.
    ``functools.partial(detectors.label_matches, "tempos")``.
    """
    if len(predicted) != len(targets):
        raise ConfigError(f"{len(predicted)} predictions but {len(targets)} targets")
    if match is None:
        hits = [str(p) == str(t) for p, t in zip(predicted, targets)]
    else:
        hits = [bool(match(p, t)) for p, t in zip(predicted, targets)]
    return bootstrap_ci(np.asarray(hits, dtype=float), n_boot=n_boot, seed=seed)


def grouped_accuracy(
    frame: pd.DataFrame,
    by: str | Sequence[str],
    *,
    correct: str = "correct",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy per group of ``frame`` with columns ``accuracy, ci_low, ci_high, n``.

    ``correct`` is a boolean (or 0/1) column. Each group's bootstrap uses the same seed.
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, correct] if c not in frame.columns]
    if missing:
        raise ConfigError(f"results have no column(s) {', '.join(missing)}")
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        est = bootstrap_ci(group[correct].astype(float).to_numpy(), n_boot=n_boot, seed=seed)
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(keys, key)),
                "accuracy": est.value,
                "ci_low": est.low,
                "ci_high": est.high,
                "n": est.n,
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "accuracy", "ci_low", "ci_high", "n"])


# ----------------------------------------------------------------------------- distributions


def _as_2d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ConfigError(f"{name} must be an (n, dim) array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} contains NaN or infinite values")
    return a


def frechet_distance(x: Any, y: Any, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (rows are samples).

    ``||mu_x - mu_y||^2 + Tr(Sx + Sy - 2 (Sx Sy)^(1/2))``, as in FAD/FID. Needs at least two
    samples per set; ``eps`` is added to the diagonals when the product is near-singular.
    """
    from scipy import linalg

    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ConfigError("Fréchet distance needs at least 2 samples in each set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: Any, y: Any) -> float:
    """The median heuristic: median pairwise Euclidean distance over the pooled samples."""
    z = np.concatenate([_as_2d(x, "x"), _as_2d(y, "y")])
    d = np.sqrt(_sq_dists(z, z))
    off = d[~np.eye(len(z), dtype=bool)]
    med = float(np.median(off)) if off.size else 0.0
    return med if med > 0 else 1.0


def mmd_rbf(x: Any, y: Any, *, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with an RBF kernel ``exp(-d^2 / (2 sigma^2))``.

    ``bandwidth`` (sigma) defaults to the median heuristic over both sets. The unbiased
    estimator can be slightly negative when the distributions are equal.
    """
    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ConfigError("MMD needs at least 2 samples in each set")
    sigma = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if sigma <= 0:
        raise ConfigError(f"bandwidth must be positive, got {sigma}")
    gamma = 1.0 / (2 * sigma**2)
    kxx = np.exp(-gamma * _sq_dists(a, a))
    kyy = np.exp(-gamma * _sq_dists(b, b))
    kxy = np.exp(-gamma * _sq_dists(a, b))
    m, n = len(a), len(b)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2 * kxy.mean())


def bootstrap_distance(
    x: Any,
    y: Any,
    distance: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A two-sample statistic (FD, MMD) with a percentile CI from resampling both sets."""
    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    value = distance(a, b)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        ia = rng.integers(0, len(a), len(a))
        ib = rng.integers(0, len(b), len(b))
        stats.append(distance(a[ia], b[ib]))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(float(value), float(low), float(high), int(min(len(a), len(b))), confidence)


# ----------------------------------------------------------------------------- embeddings


class EmbeddingBackend(Protocol):
    """Turns audio clips into fixed-size vectors for FD/MMD."""

    name: str

    def embed(self, audios: Sequence[Any], sr: int) -> np.ndarray: ...


@dataclass
class MFCCEmbedding:
    """Mean and standard deviation of 20 MFCCs and their deltas (80 dims). Offline, no weights."""

    n_mfcc: int = 20
    name: str = "mfcc"

    def embed(self, audios: Sequence[Any], sr: int) -> np.ndarray:
        import librosa

        from musicrfm.evaluation.detectors import SAMPLE_RATE, prepare_audio

        out = []
        for audio in audios:
            y = prepare_audio(audio, sr)
            m = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=self.n_mfcc)
            frames = m.shape[1]
            width = min(9, frames if frames % 2 else frames - 1)
            d = librosa.feature.delta(m, width=width) if width >= 3 else np.zeros_like(m)
            out.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
        return np.stack(out) if out else np.zeros((0, 4 * self.n_mfcc))


def make_embedding(spec: str | None = None, adapter: Any = None) -> EmbeddingBackend:
    """The FD/MMD back-end named by ``spec``: ``"mfcc"``, ``"activations"`` (MusicGen pooled
    activations of ``adapter``, middle layer) or ``"activations:<layer>"``. The default (None or
    ``""``) is the activations back-end when a model is at hand, MFCC otherwise."""
    name = (spec or ("activations" if adapter is not None else "mfcc")).strip().lower()
    if name == "mfcc":
        return MFCCEmbedding()
    kind, _, layer = name.partition(":")
    if kind == "activations":
        if adapter is None:
            raise ConfigError("the 'activations' embedding needs a loaded model")
        from musicrfm.evaluation.activations import ActivationEmbedding

        try:
            return ActivationEmbedding(adapter, layer=int(layer) if layer else None)
        except ValueError:
            raise ConfigError(f"bad embedding layer in {spec!r}; use activations:<int>") from None
    raise ConfigError(f"unknown embedding {spec!r}; use mfcc, activations or activations:<layer>")


# ----------------------------------------------------------------------------- CLAP


class ClapScorer:
    """CLAP text-audio cosine similarity from a local laion-clap checkpoint.

    The checkpoint is never downloaded: pass the path of a ``.pt`` file (e.g.
    ``music_audioset_epoch_15_esc_90.14.pt``). Raises ConfigError when no path is given or the
    file does not exist, and ModelError when ``laion_clap`` is not installed (``pip install
    laion-clap``). ``backend`` may be any object with ``embed_audio(list of 48 kHz mono arrays)``
    and ``embed_text(list of str)`` returning (n, d) arrays, which replaces laion-clap.
    """

    SAMPLE_RATE = 48000

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        amodel: str = "HTSAT-base",
        enable_fusion: bool = False,
        device: str = "cpu",
        backend: Any = None,
    ) -> None:
        if backend is not None:
            self._backend = backend
            return
        if checkpoint is None or str(checkpoint) == "":
            raise ConfigError(
                "CLAP similarity needs a local checkpoint: pass --clap-checkpoint PATH "
                "(a laion-clap .pt file; nothing is downloaded)"
            )
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ConfigError(f"CLAP checkpoint not found: {path}")
        try:
            import laion_clap
        except ImportError as exc:
            raise ModelError(
                "CLAP similarity needs the laion_clap package (`pip install laion-clap`); "
                "it is an optional dependency and is not installed"
            ) from exc
        try:
            model = laion_clap.CLAP_Module(
                enable_fusion=enable_fusion, amodel=amodel, device=device
            )
            model.load_ckpt(str(path))
        except Exception as exc:  # checkpoint/architecture mismatch surfaces as many types
            raise ModelError(f"cannot load CLAP checkpoint {path}: {exc}") from exc
        self._backend = _LaionBackend(model)

    def similarity(self, audios: Sequence[Any], sr: int, texts: Sequence[str] | str) -> np.ndarray:
        """Cosine similarity of each clip with its text (one text broadcasts to all clips)."""
        from musicrfm.evaluation.detectors import prepare_audio

        if isinstance(texts, str):
            texts = [texts] * len(audios)
        if len(texts) != len(audios):
            raise ConfigError(f"{len(audios)} clips but {len(texts)} texts")
        if not len(audios):
            return np.zeros(0)
        clips = [prepare_audio(a, sr, target_sr=self.SAMPLE_RATE) for a in audios]
        if any(np.sqrt(np.mean(c.astype(np.float64) ** 2)) == 0 for c in clips):
            raise AudioError("CLAP similarity got a digitally silent clip")
        a = np.asarray(self._backend.embed_audio(clips), dtype=np.float64)
        t = np.asarray(self._backend.embed_text(list(texts)), dtype=np.float64)
        a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-12
        t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
        return (a * t).sum(axis=1)


class _LaionBackend:
    def __init__(self, model: Any) -> None:
        self.model = model

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        length = max(len(c) for c in clips)
        batch = np.stack([np.pad(c, (0, length - len(c))) for c in clips])
        return np.asarray(self.model.get_audio_embedding_from_data(x=batch, use_tensor=False))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.get_text_embedding(texts, use_tensor=False))


def clap_similarity(
    audios: Sequence[Any], sr: int, texts: Sequence[str] | str, *, checkpoint: str | Path | None
) -> np.ndarray:
    """One-shot :class:`ClapScorer` similarity (loads the checkpoint each call)."""
    return ClapScorer(checkpoint).similarity(audios, sr, texts)
