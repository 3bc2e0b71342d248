"""Probe metrics without scikit-learn: ROC AUC (ties averaged), macro one-vs-rest AUC and R^2.

Used for model selection inside the RFM fit (so they must be exact and deterministic) and by the
baselines and tables, which score every probe the same way.
"""

from __future__ import annotations

import math

import numpy as np


def auc_score(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney with average ranks for ties)."""
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    r = (np.cumsum(counts) - (counts - 1) / 2.0)[inv.ravel()]  # 1-based average ranks
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def multiclass_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Macro one-vs-rest AUC over the classes present in y."""
    vals = [auc_score(y == c, scores[:, c]) for c in range(scores.shape[1]) if (y == c).any()]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    ss = ((y - y.mean()) ** 2).sum()
    return float(1.0 - ((y - pred) ** 2).sum() / ss) if ss > 0 else float("nan")
