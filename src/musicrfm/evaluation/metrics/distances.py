"""Distances between two sets of embeddings: Fréchet distance, MMD, and their bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.metrics.stats import Estimate


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
