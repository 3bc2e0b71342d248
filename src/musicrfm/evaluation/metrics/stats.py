"""Accuracy and differences with confidence intervals: every number in a table is an
:class:`Estimate` (value, 95% interval, n)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError


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


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """k hits of n as a share with its Wilson score interval (keeps its coverage at 0/n and n/n,
    where a bootstrap collapses to a point)."""
    from scipy.stats import binomtest

    if n <= 0:
        raise ConfigError("a share needs at least one trial")
    if not 0 <= k <= n:
        raise ConfigError(f"k must be 0..n, got {k} of {n}")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n), confidence)


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
