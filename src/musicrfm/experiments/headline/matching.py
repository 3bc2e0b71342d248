"""Whether a clip hit its target, as the concept's detector judges it (one rule for the
choice of η0, the tables and the verdict); and where a hit-rate curve over η0 reaches a given
rate, so that two plans can be compared at matched hit rate (:func:`matched_bootstrap`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError


def hits(frame: pd.DataFrame, target: str, concept: str = "notes") -> np.ndarray:
    """1.0 where the detector's label hits ``target`` (as the concept's detector matches it:
    pitch classes for notes, qualities for chords, sizes for intervals), else 0.0."""
    from musicrfm.evaluation import detectors as det

    return np.asarray(
        [float(det.label_matches(concept, str(label), target)) for label in frame["label"]]
    )


def prob_column(concept: str, target: str) -> int | None:
    """Where ``target`` sits in the detector's probability vector (None: no distribution, as
    for intervals; then the flip is judged by its hit rate alone)."""
    from musicrfm.evaluation import detectors as det

    labels = det.get_detector(concept).labels
    return det.target_index(concept, labels, target) if labels else None


# ---------------------------------------------------------------- matched hit rate
# Two plans that steer with different strength per η0 (a gate p = 0.3 fires on 30% of the steps)
# are compared where they do the same job: at the η0 where each first reaches one hit rate, and
# the quantity compared there (prompt adherence) is read off each plan's own curve.


def crossing(coefs: Any, rates: Any, rate: float) -> float | None:
    """The η0 where the hit-rate curve first reaches ``rate``, linear between grid points.

    ``coefs`` ascending (η0 = 0 for the unsteered clips may be the first point); the curve is not
    assumed monotone: the first grid point at or above ``rate`` is taken, and the crossing is
    interpolated from the point before it. None when no point reaches ``rate``; the first coef
    when the first point already does (nothing below it to interpolate from)."""
    c = np.asarray(coefs, dtype=float).ravel()
    r = np.asarray(rates, dtype=float).ravel()
    if c.size != r.size or c.size == 0:
        raise ConfigError(f"need one hit rate per η0, got {c.size} η0 and {r.size} rates")
    if np.any(np.diff(c) <= 0):
        raise ConfigError(f"η0 values must be strictly ascending, got {c.tolist()}")
    above = np.flatnonzero(r >= rate)
    if above.size == 0:
        return None
    k = int(above[0])
    if k == 0:
        return float(c[0])
    t = (rate - r[k - 1]) / (r[k] - r[k - 1])
    return float(c[k - 1] + t * (c[k] - c[k - 1]))


def value_at(coefs: Any, values: Any, coef: float) -> float:
    """``values`` (one per η0 of ascending ``coefs``) linearly interpolated at ``coef``; a coef
    outside the grid is a ConfigError (no extrapolation)."""
    c = np.asarray(coefs, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if c.size != v.size or c.size == 0:
        raise ConfigError(f"need one value per η0, got {c.size} η0 and {v.size} values")
    if not c[0] <= coef <= c[-1]:
        raise ConfigError(f"η0 {coef:g} is outside the grid [{c[0]:g}, {c[-1]:g}]")
    return float(np.interp(coef, c, v))


def matched_value(cells: Any, rate: float) -> tuple[float | None, float]:
    """(η0 at ``rate``, the value interpolated there) for ``cells``: a list of (η0, hits, values)
    in ascending η0, hits and values being per-clip arrays (0/1 hits; adherence 0/1 or any
    number). NaN value when the rate is not reached."""
    coefs = [float(c) for c, _, _ in cells]
    rates = [float(np.mean(h)) for _, h, _ in cells]
    means = [float(np.nanmean(v)) for _, _, v in cells]
    at = crossing(coefs, rates, rate)
    return at, (float("nan") if at is None else value_at(coefs, means, at))


def matched_bootstrap(
    cells: Any, rate: float, *, n_boot: int = 2000, seed: int = 0, rng: Any = None
) -> tuple[float | None, float, np.ndarray, np.ndarray]:
    """:func:`matched_value` and its bootstrap draws (η0 draws, value draws): every cell's clips
    resampled (jointly for hits and values, independently across cells), the crossing and the
    value recomputed, so the value's interval holds the uncertainty of where the rate is reached
    as well as of the value there. A draw that does not reach ``rate`` is NaN in both."""
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    cells = [(float(c), np.asarray(h, float), np.asarray(v, float)) for c, h, v in cells]
    if any(h.size == 0 or h.size != v.size for _, h, v in cells):
        raise ConfigError("every cell needs as many values as hits, and at least one clip")
    at, value = matched_value(cells, rate)
    coef_draws = np.full(n_boot, np.nan)
    value_draws = np.full(n_boot, np.nan)
    for b in range(n_boot):
        resampled = []
        for c, h, v in cells:
            idx = rng.integers(0, h.size, h.size)
            resampled.append((c, h[idx], v[idx]))
        c_b, v_b = matched_value(resampled, rate)
        if c_b is not None:
            coef_draws[b], value_draws[b] = c_b, v_b
    return at, value, coef_draws, value_draws


def percentile_ci(draws: Any, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the finite bootstrap draws (NaN, NaN when none is finite)."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(d, [alpha, 1 - alpha])
    return float(low), float(high)
