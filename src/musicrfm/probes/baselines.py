"""Baseline probes on the same features and splits as the RFM: "RFM or simpler?".

- ``ridge_probe``: linear least squares with a ridge penalty chosen on validation (gives a direction).
- ``logistic_probe``: L2 logistic regression (scikit-learn), C chosen on validation (direction).
- ``mean_difference``: difference of class means (binary), nearest centroid (multiclass),
  covariance with the target (regression) (direction).
- ``mlp_probe``: the 2-layer MLP probe of the SynTheory study (accuracy only, no direction).

Every function takes standardisation-free raw features ``(X_train, y_train, X_val, y_val,
X_test, y_test)`` and a task ("binary", "multiclass", "regression") and returns a
``BaselineResult`` with validation/test scores: AUC (binary), accuracy (multiclass), R^2
(regression), and for linear probes a unit direction (binary/regression; sign: positive
projection-label correlation, the same rule as the RFM directions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.metrics import auc_score, r2_score

METHODS = ("ridge", "logistic", "mean_difference", "mlp")


@dataclass
class BaselineResult:
    method: str
    task: str
    val_score: float
    test_score: float
    score_name: str
    direction: torch.Tensor | None = None  # (d,) unit vector, binary/regression only
    params: dict[str, Any] | None = None


def _score(task: str, y: np.ndarray, out: np.ndarray) -> float:
    if task == "binary":
        return auc_score(y, out if out.ndim == 1 else out[:, -1])
    if task == "multiclass":
        return float((out.argmax(-1) == y).mean())
    return r2_score(y, out)


def _score_name(task: str) -> str:
    return {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}[task]


def _unit_signed(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> torch.Tensor:
    w = np.asarray(w, dtype=np.float64)
    n = np.linalg.norm(w)
    w = w / n if n > 0 else w
    proj = (X - X.mean(0)) @ w
    if np.dot(proj, y - np.mean(y)) < 0:
        w = -w
    return torch.as_tensor(w, dtype=torch.float32)


def _targets(task: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    if task == "multiclass":
        return np.eye(n_classes)[y.astype(np.int64)]
    return np.asarray(y, dtype=np.float64)[:, None]


def ridge_probe(
    Xt, yt, Xv, yv, Xte, yte, *, task: str, n_classes: int | None = None
) -> BaselineResult:
    """Ridge regression on centred features; penalty from a log grid (relative to trace/d)."""
    Xt, Xv, Xte = (np.asarray(a, dtype=np.float64) for a in (Xt, Xv, Xte))
    mu = Xt.mean(0)
    A = Xt - mu
    nc = n_classes or (int(max(yt.max(), yv.max())) + 1 if task == "multiclass" else 1)
    Y = _targets(task, yt, nc)
    ym = Y.mean(0)
    # one SVD serves every penalty
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    UtY = U.T @ (Y - ym)
    base = float((s**2).mean()) or 1.0
    best = None
    for lam in base * np.logspace(-4, 2, 13):
        W = Vt.T @ ((s / (s**2 + lam))[:, None] * UtY)
        out_v = (Xv - mu) @ W + ym
        sv = _score(task, yv, out_v[:, 0] if out_v.shape[1] == 1 else out_v)
        if best is None or sv > best[0]:
            best = (sv, lam, W)
    sv, lam, W = best
    out_t = (Xte - mu) @ W + ym
    st = _score(task, yte, out_t[:, 0] if out_t.shape[1] == 1 else out_t)
    direction = _unit_signed(W[:, 0], Xt, yt) if task != "multiclass" else None
    return BaselineResult("ridge", task, sv, st, _score_name(task), direction, {"ridge": lam})


def logistic_probe(
    Xt, yt, Xv, yv, Xte, yte, *, task: str, n_classes: int | None = None
) -> BaselineResult:
    """L2 logistic regression on standardised features (C from {0.01, 0.1, 1})."""
    if task == "regression":
        raise ConfigError("the logistic probe is for classification")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    Xt, Xv, Xte = (np.asarray(a, dtype=np.float64) for a in (Xt, Xv, Xte))
    mu, sd = Xt.mean(0), Xt.std(0) + 1e-8
    Zt, Zv, Zte = (Xt - mu) / sd, (Xv - mu) / sd, (Xte - mu) / sd
    best = None
    for C in (0.01, 0.1, 1.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=C, max_iter=300).fit(Zt, yt)
        sv = _score(task, yv, clf.predict_proba(Zv))
        if best is None or sv > best[0]:
            best = (sv, C, clf)
    sv, C, clf = best
    st = _score(task, yte, clf.predict_proba(Zte))
    direction = _unit_signed(clf.coef_[0] / sd, Xt, yt) if task == "binary" else None
    return BaselineResult("logistic", task, sv, st, _score_name(task), direction, {"C": C})


def mean_difference(
    Xt, yt, Xv, yv, Xte, yte, *, task: str, n_classes: int | None = None
) -> BaselineResult:
    """Difference of class means (binary), nearest centroid (multiclass), cov(X, y) (regression)."""
    Xt, Xv, Xte = (np.asarray(a, dtype=np.float64) for a in (Xt, Xv, Xte))
    if task == "binary":
        w = Xt[yt == 1].mean(0) - Xt[yt == 0].mean(0)
        return BaselineResult(
            "mean_difference",
            task,
            _score(task, yv, Xv @ w),
            _score(task, yte, Xte @ w),
            "auc",
            _unit_signed(w, Xt, yt),
        )
    if task == "multiclass":
        nc = n_classes or int(yt.max()) + 1
        C = np.stack(
            [
                Xt[yt == c].mean(0) if (yt == c).any() else np.full(Xt.shape[1], np.inf)
                for c in range(nc)
            ]
        )

        def out(X: np.ndarray) -> np.ndarray:
            return -((X[:, None, :] - C[None]) ** 2).sum(-1)

        return BaselineResult(
            "mean_difference",
            task,
            _score(task, yv, out(Xv)),
            _score(task, yte, out(Xte)),
            "accuracy",
        )
    mu = Xt.mean(0)
    w = (Xt - mu).T @ (yt - yt.mean())
    u = w / (np.linalg.norm(w) or 1.0)
    pt = (Xt - mu) @ u
    a, b = np.polyfit(pt, yt, 1)
    return BaselineResult(
        "mean_difference",
        task,
        _score(task, yv, a * ((Xv - mu) @ u) + b),
        _score(task, yte, a * ((Xte - mu) @ u) + b),
        "r2",
        _unit_signed(w, Xt, yt),
    )


def _mlp_net(d: int, hidden: int, out_dim: int, g: torch.Generator) -> torch.nn.Sequential:
    """d -> hidden -> out_dim, ReLU and dropout 0.2, initialised from ``g`` (not the global
    RNG, which only drives dropout), so the same seed gives the same network everywhere."""
    net = torch.nn.Sequential(
        torch.nn.Linear(d, hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(hidden, out_dim),
    )
    with torch.no_grad():  # deterministic init from our generator
        for mod in net:
            if isinstance(mod, torch.nn.Linear):
                bound = 1.0 / mod.in_features**0.5
                mod.weight.uniform_(-bound, bound, generator=g)
                mod.bias.uniform_(-bound, bound, generator=g)
    return net


def mlp_probe(
    Xt,
    yt,
    Xv,
    yv,
    Xte,
    yte,
    *,
    task: str,
    n_classes: int | None = None,
    hidden: int = 512,
    epochs: int = 60,
    patience: int = 8,
    seed: int = 0,
) -> BaselineResult:
    """2-layer MLP (d -> hidden -> outputs, ReLU, dropout 0.2), Adam, early stopping on validation."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    Xt, Xv, Xte = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in (Xt, Xv, Xte))
    mu, sd = Xt.mean(0), Xt.std(0) + 1e-6
    Xt, Xv, Xte = (Xt - mu) / sd, (Xv - mu) / sd, (Xte - mu) / sd
    nc = n_classes or (int(max(yt.max(), yv.max())) + 1 if task == "multiclass" else 1)
    out_dim = nc if task == "multiclass" else 1
    y_mu, y_sd = (
        (float(np.mean(yt)), float(np.std(yt)) or 1.0) if task == "regression" else (0.0, 1.0)
    )
    net = _mlp_net(Xt.shape[1], hidden, out_dim, g)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    if task == "multiclass":
        yt_t = torch.as_tensor(yt, dtype=torch.long)
        loss_fn: Callable[..., torch.Tensor] = torch.nn.functional.cross_entropy
    elif task == "binary":
        yt_t = torch.as_tensor(yt, dtype=torch.float32)[:, None]
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    else:
        yt_t = torch.as_tensor((np.asarray(yt) - y_mu) / y_sd, dtype=torch.float32)[:, None]
        loss_fn = torch.nn.functional.mse_loss

    def outputs(X: torch.Tensor) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            o = net(X).numpy()
        net.train()
        if task == "regression":
            return o[:, 0] * y_sd + y_mu
        return o[:, 0] if task == "binary" else o

    best, best_state, bad = -np.inf, None, 0
    n = Xt.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, 64):
            b = perm[i : i + 64]
            opt.zero_grad()
            loss_fn(net(Xt[b]), yt_t[b]).backward()
            opt.step()
        sv = _score(task, yv, outputs(Xv))
        if sv > best + 1e-6:
            best, bad = sv, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return BaselineResult(
        "mlp",
        task,
        float(best),
        _score(task, yte, outputs(Xte)),
        _score_name(task),
        None,
        {"hidden": hidden, "epochs": epochs},
    )


PROBES: dict[str, Callable[..., BaselineResult]] = {
    "ridge": ridge_probe,
    "logistic": logistic_probe,
    "mean_difference": mean_difference,
    "mlp": mlp_probe,
}


def run_baselines(
    Xt, yt, Xv, yv, Xte, yte, *, task: str, n_classes: int | None = None, methods=METHODS
) -> dict[str, BaselineResult]:
    """Every requested baseline on one split (logistic is skipped for regression)."""
    out = {}
    for m in methods:
        if m not in PROBES:
            raise ConfigError(f"unknown baseline {m!r}; valid: {', '.join(PROBES)}")
        if m == "logistic" and task == "regression":
            continue
        out[m] = PROBES[m](Xt, yt, Xv, yv, Xte, yte, task=task, n_classes=n_classes)
    return out
