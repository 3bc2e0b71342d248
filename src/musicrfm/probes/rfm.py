"""Recursive Feature Machine (RFM) probes on torch, CPU or GPU.

An RFM alternates kernel ridge regression with a Laplace-family kernel under a learned metric M
and an update of M to the Average Gradient Outer Product (AGOP) of the fitted predictor
(see ``SPEC.md`` section 2.2):

    K_M(x, z) = exp(-||x - z||_M^q / L^q),     ||u||_M = sqrt(u^T M u)        (p = 2)
    alpha = (K_M(X, X) + lambda I)^{-1} Y
    grad f(z) = -(q / L^q) sum_i alpha_i K_M(x_i, z) ||z - x_i||_M^(q-2) M (z - x_i)
    M <- sum_z sum_outputs grad f(z) grad f(z)^T   (optionally centred), divided by its max entry

The parameterisation matches the public ``xrfm`` package (``RFM(kernel="laplace")``, and
``kernel="lpq"`` for the p,q generalisation ||S(x - z)||_p^q with S = M^(1/2)), so the two can be
compared on identical data and hyper-parameters.

Numerics: distances and gradients use ``dtype`` (float32 by default) matmuls on data centred by
the training mean; the linear solve is done in ``solve_dtype`` (float64) with a Cholesky
factorisation, adding jitter and finally falling back to an eigen-solve when the system is
ill-conditioned.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicrfm.errors import ConfigError

log = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "regression")
_EPS_DIST = 1e-10
_MAX_EXPONENT = 60.0
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RFMParams:
    """Hyper-parameters of one RFM (the paper's search space, SPEC 2.2)."""

    bandwidth: float = 10.0  # L
    reg: float = 1e-3  # lambda
    exponent: float = 1.0  # q
    norm_p: float = 2.0  # p of the K_{p,q} kernel; 2 is the Laplace kernel the paper uses per layer
    center_grads: bool = False

    def __post_init__(self) -> None:
        if not self.bandwidth > 0:
            raise ConfigError(f"bandwidth must be > 0, got {self.bandwidth}")
        if not self.reg >= 0:
            raise ConfigError(f"reg must be >= 0, got {self.reg}")
        if not 0 < self.exponent <= 2:
            raise ConfigError(f"exponent q must be in (0, 2], got {self.exponent}")
        if not self.norm_p >= 1:
            raise ConfigError(f"norm_p must be >= 1, got {self.norm_p}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RFMParams:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


# --------------------------------------------------------------------------- kernel maths


def sqrt_psd(M: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a PSD matrix (negative eigenvalues clipped)."""
    vals, vecs = torch.linalg.eigh(M.double())
    vals = vals.clamp(min=0).sqrt()
    return ((vecs * vals) @ vecs.T).to(M.dtype)


def distances(
    x: torch.Tensor,
    z: torch.Tensor,
    M: torch.Tensor | None = None,
    *,
    norm_p: float = 2.0,
    sqrtM: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """Matrix of ||x_i - z_j||_M (p=2) or ||S(x_i - z_j)||_p with S = sqrt(M) (p != 2).

    ``M=None`` is the identity. ``symmetric=True`` (x is z) forces an exact zero diagonal.
    """
    if norm_p == 2.0:
        xm = x if M is None else x @ M
        zm = z if M is None else (xm if symmetric else z @ M)
        sx = (xm * x).sum(-1)
        sz = sx if symmetric else (zm * z).sum(-1)
        d2 = sx[:, None] + sz[None, :] - 2.0 * (xm @ z.T)
        d2.clamp_(min=0)
        if symmetric:
            d2.fill_diagonal_(0)
        return d2.sqrt_()
    if M is not None and sqrtM is None:
        sqrtM = sqrt_psd(M)
    xs = x if sqrtM is None else x @ sqrtM
    zs = xs if symmetric else (z if sqrtM is None else z @ sqrtM)
    out = torch.cdist(xs, zs, p=norm_p)
    if symmetric:
        out.fill_diagonal_(0)
    return out


def kernel_from_distances(D: torch.Tensor, bandwidth: float, exponent: float) -> torch.Tensor:
    """exp(-D^q / L^q), elementwise; values below exp(-60) are set to exactly 0.

    (Tiny kernel values would otherwise become subnormal floats downstream, which makes CPU
    matrix products tens of times slower; exp(-60) ~ 1e-26 is far below any visible effect.)
    """
    E = (D / bandwidth) ** exponent
    return torch.where(
        E < _MAX_EXPONENT, torch.exp(-E), torch.zeros((), dtype=E.dtype, device=E.device)
    )


def predictor_gradients(
    x: torch.Tensor,
    z: torch.Tensor,
    alpha: torch.Tensor,
    M: torch.Tensor | None,
    params: RFMParams,
    *,
    D: torch.Tensor | None = None,
    sqrtM: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form gradients of f(z) = sum_i alpha_i K_M(x_i, z) at the rows of z.

    x: (n, d) centres, z: (m, d) points, alpha: (n, c). ``D`` (n, m) may pass precomputed
    distances. Returns (c, m, d). Terms with ||z - x_i|| below 1e-10 are zeroed (as in xrfm).
    """
    L, q, p = params.bandwidth, params.exponent, params.norm_p
    if D is None:
        D = distances(x, z, M, norm_p=p, sqrtM=sqrtM)
    alpha = alpha.to(x.dtype)
    K = kernel_from_distances(D, L, q)
    mask = D >= _EPS_DIST
    if p == 2.0:
        # W_ij = -(q/L^q) K_ij D_ij^(q-2); grad_l(z_j) = M (s_lj z_j - sum_i alpha_il W_ij x_i)
        W = K * D.clamp(min=_EPS_DIST).pow(q - 2.0) * mask * (-q / L**q)
        s = alpha.T @ W  # (c, m)
        grads = []
        for lo in range(alpha.shape[1]):
            b = s[lo][:, None] * z - (W * alpha[:, lo : lo + 1]).T @ x
            grads.append(b if M is None else b @ M)
        return torch.stack(grads)
    # p != 2: d/dz ||S(z - x)||_p^q = q ||u||_p^(q-p) S (|u|^(p-1) sign u), u = S(z - x)
    if M is not None and sqrtM is None:
        sqrtM = sqrt_psd(M)
    xs = x if sqrtM is None else x @ sqrtM
    zs = z if sqrtM is None else z @ sqrtM
    coef = K * D.clamp(min=_EPS_DIST).pow(q - p) * mask * (-q / L**q)  # (n, m)
    c = alpha.shape[1]
    out = torch.empty(c, z.shape[0], x.shape[1], dtype=x.dtype, device=x.device)
    step = max(1, int(2**24 // max(1, x.shape[0] * x.shape[1])))
    for j0 in range(0, z.shape[0], step):
        u = zs[j0 : j0 + step, None, :] - xs[None, :, :]  # (b, n, d)
        g = u.abs().pow(p - 1) * u.sign()
        w = coef[:, j0 : j0 + step].T[None] * alpha.T[:, None, :]  # (c, b, n)
        out[:, j0 : j0 + step] = torch.einsum("cbn,bnd->cbd", w, g)
    if sqrtM is not None:
        out = out @ sqrtM
    return out


def agop_from_gradients(grads: torch.Tensor, center: bool = False) -> torch.Tensor:
    """sum over outputs and points of g g^T, up to a positive factor (the gradients are first
    divided by their largest magnitude to keep products out of the subnormal range; the RFM
    normalises M by its max entry anyway). Centring subtracts the mean over all rows (as xrfm)."""
    g = grads.reshape(-1, grads.shape[-1])
    if center:
        g = g - g.mean(dim=0, keepdim=True)
    scale = g.abs().max()
    if float(scale) > 0:
        g = g / scale
    return g.T @ g


def solve_krr(
    K: torch.Tensor, Y: torch.Tensor, reg: float, *, solve_dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, float]:
    """alpha = (K + reg I)^{-1} Y with Cholesky; jitter then eigh fallback. Returns (alpha, jitter)."""
    A = K.to(solve_dtype).clone()
    n = A.shape[0]
    A.diagonal().add_(reg)
    Yd = Y.to(solve_dtype)
    scale = float(A.diagonal().abs().mean()) or 1.0
    jitter = 0.0
    for k in range(4):
        Lc, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            # two triangular solves (much faster than cholesky_solve on CPU for few columns)
            tmp = torch.linalg.solve_triangular(Lc, Yd, upper=False)
            alpha = torch.linalg.solve_triangular(Lc.mT, tmp, upper=True)
            if bool(torch.isfinite(alpha).all()):
                return alpha, jitter
        add = scale * 10.0 ** (-8 + 2 * k)
        A.diagonal().add_(add)
        jitter += add
    log.warning("kernel system ill-conditioned (n=%d, reg=%g): using an eigen-solve", n, reg)
    vals, vecs = torch.linalg.eigh(A)
    floor = max(float(vals.max()) * 1e-10, 1e-12)
    vals = vals.clamp(min=floor)
    return vecs @ ((vecs.T @ Yd) / vals[:, None]), jitter


# --------------------------------------------------------------------------- metrics


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


# --------------------------------------------------------------------------- the model


def _as_tensor(a: Any, name: str, check: bool = True) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    if t.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (n, d); got shape {tuple(t.shape)}")
    if check and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ConfigError(f"{name} contains {bad} NaN/inf values")
    return t


@dataclass
class FitHistory:
    val_metric: list[float] = field(default_factory=list)
    val_mse: list[float] = field(default_factory=list)  # tie-breaker (e.g. AUC = 1 for several)
    best_iter: int = -1
    stopped_early: bool = False
    jitter: float = 0.0


class RFM:
    """A Recursive Feature Machine probe.

    Parameters
    ----------
    params: kernel and ridge hyper-parameters (``RFMParams``).
    task: "binary" (targets 0/1), "multiclass" (integer labels 0..C-1, one-hot targets) or
        "regression" (targets z-scored with the training statistics, which are saved).
    iters: T, the number of AGOP updates; T+1 predictors are fitted and the one with the best
        validation metric (AUC, or MSE for regression) is kept, as in xrfm.
    early_stop_multiplier: stop when the metric is worse than best / multiplier (xrfm: 1.1).
    patience: also stop after this many iterations without improvement (None: off).
    agop_max_points: estimate the AGOP on at most this many (seeded, random) training points.
    """

    def __init__(
        self,
        params: RFMParams | None = None,
        *,
        task: str = "binary",
        iters: int = 15,
        early_stop_multiplier: float | None = 1.1,
        patience: int | None = None,
        agop_max_points: int | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        solve_dtype: torch.dtype = torch.float64,
        seed: int = 0,
    ) -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        if iters < 0:
            raise ConfigError(f"iters must be >= 0, got {iters}")
        self.params = params or RFMParams()
        self.task = task
        self.iters = int(iters)
        self.early_stop_multiplier = early_stop_multiplier
        self.patience = patience
        self.agop_max_points = agop_max_points
        self.device = torch.device(device)
        self.dtype = dtype
        self.solve_dtype = solve_dtype
        self.seed = seed
        self.centers: torch.Tensor | None = None  # training points (centred)
        self.shift: torch.Tensor | None = None  # training mean subtracted from every input
        self.alpha: torch.Tensor | None = None
        self.M: torch.Tensor | None = None  # metric of the kept predictor (None = identity)
        self.agop_: torch.Tensor | None = None  # AGOP of the kept predictor (the directions)
        self.n_outputs = 1
        self.y_mean = 0.0
        self.y_std = 1.0
        self.temperature = 1.0
        self.history = FitHistory()

    # ------------------------------------------------------------------ helpers
    def _prep(self, X: Any, name: str = "X") -> torch.Tensor:
        t = _as_tensor(X, name).to(self.device, self.dtype)
        if self.shift is not None:
            if t.shape[1] != self.shift.shape[0]:
                raise ConfigError(
                    f"{name} has {t.shape[1]} features, the probe expects {self.shift.shape[0]}"
                )
            t = t - self.shift
        return t

    def _targets(self, y: Any, n: int, name: str) -> tuple[torch.Tensor, np.ndarray]:
        y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).ravel()
        if y_np.shape[0] != n:
            raise ConfigError(f"{name} has {y_np.shape[0]} targets for {n} feature rows")
        if not np.all(np.isfinite(y_np.astype(np.float64))):
            raise ConfigError(f"{name} contains NaN/inf targets")
        if self.task == "binary":
            if not set(np.unique(y_np)).issubset({0, 1}):
                raise ConfigError(f"binary {name} must be 0/1, got values {np.unique(y_np)[:5]}")
            Y = torch.as_tensor(y_np, dtype=torch.float64)[:, None]
        elif self.task == "multiclass":
            yi = y_np.astype(np.int64)
            if (yi != y_np).any() or yi.min() < 0 or yi.max() >= self.n_outputs:
                raise ConfigError(f"multiclass {name} must be integers in 0..{self.n_outputs - 1}")
            Y = torch.nn.functional.one_hot(torch.as_tensor(yi), self.n_outputs).double()
        else:
            Y = ((torch.as_tensor(y_np, dtype=torch.float64) - self.y_mean) / self.y_std)[:, None]
        return Y.to(self.device), y_np

    def _metric(self, out: torch.Tensor, y_np: np.ndarray) -> float:
        o = out.detach().double().cpu().numpy()
        if self.task == "binary":
            return auc_score(y_np, o[:, 0])
        if self.task == "multiclass":
            return multiclass_auc(y_np.astype(np.int64), o)
        z = (y_np.astype(np.float64) - self.y_mean) / self.y_std
        return float(((o[:, 0] - z) ** 2).mean())

    def selection_key(self, metric: float, mse: float) -> tuple[float, float]:
        """Larger is better: the metric (AUC up, or MSE down), then lower validation MSE."""
        if math.isnan(metric):
            return (-math.inf, -math.inf)
        return (-metric if self.task == "regression" else metric, -mse)

    @property
    def best_key(self) -> tuple[float, float]:
        h, i = self.history, self.history.best_iter
        return self.selection_key(h.val_metric[i], h.val_mse[i])

    def _should_stop(self, cur: float, best: float) -> bool:
        m = self.early_stop_multiplier
        if m is None or math.isnan(cur):
            return math.isnan(cur)
        return cur > best * m if self.task == "regression" else cur < best / m

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any,
        y_val: Any,
        *,
        n_classes: int | None = None,
        init_distances: tuple[torch.Tensor, torch.Tensor] | None = None,
        with_agop: bool = True,
        check_inputs: bool = True,
    ) -> RFM:
        """Fit on (X, y), selecting the iteration by the metric on (X_val, y_val).

        ``init_distances`` = (D(train, train), D(train, val)) for M = I (identity metric) may be
        passed to share that work between hyper-parameter draws on the same data; it must be
        computed on inputs centred by the training mean (``distances`` is translation-invariant,
        so any common shift works). ``with_agop=False`` skips the AGOP of the kept predictor when
        it is not needed (e.g. ``iters=0`` screening); ``eigenvectors`` then recomputes it.
        """
        Xt = _as_tensor(X, "X", check_inputs).to(self.device, self.dtype)
        Xv = _as_tensor(X_val, "X_val", check_inputs).to(self.device, self.dtype)
        if Xt.shape[1] != Xv.shape[1]:
            raise ConfigError(f"X has {Xt.shape[1]} features but X_val has {Xv.shape[1]}")
        n, d = Xt.shape
        if n < 2 or Xv.shape[0] < 1:
            raise ConfigError(
                f"need at least 2 training and 1 validation rows, got {n} and {Xv.shape[0]}"
            )
        if self.task == "multiclass":
            y_all = np.concatenate([np.asarray(y).ravel(), np.asarray(y_val).ravel()])
            self.n_outputs = int(n_classes or int(y_all.max()) + 1)
        elif self.task == "regression":
            yt = np.asarray(y, dtype=np.float64).ravel()
            self.y_mean, self.y_std = float(yt.mean()), float(yt.std()) or 1.0
        self.shift = Xt.mean(0)
        Xt = Xt - self.shift
        Xv = Xv - self.shift
        Y, y_tr = self._targets(y, n, "y")
        Y_v, y_v = self._targets(y_val, Xv.shape[0], "y_val")
        if self.task == "binary" and len(np.unique(y_tr)) < 2:
            raise ConfigError("binary training targets hold a single class")
        p = self.params
        gen = torch.Generator().manual_seed(self.seed)
        if self.agop_max_points and self.agop_max_points < n:
            agop_idx = torch.randperm(n, generator=gen)[: self.agop_max_points].to(self.device)
        else:
            agop_idx = None

        M: torch.Tensor | None = None
        best: tuple[Any, ...] = ((-math.inf, -math.inf), None, None, None, -1)
        since_best = 0
        self.history = FitHistory()
        for t in range(self.iters + 1):
            sqrtM = sqrt_psd(M) if (M is not None and p.norm_p != 2.0) else None
            if t == 0 and init_distances is not None:
                D_tr, D_v = (a.to(self.device, self.dtype) for a in init_distances)
            else:
                D_tr = distances(Xt, Xt, M, norm_p=p.norm_p, sqrtM=sqrtM, symmetric=True)
                D_v = distances(Xt, Xv, M, norm_p=p.norm_p, sqrtM=sqrtM)
            K = kernel_from_distances(D_tr, p.bandwidth, p.exponent)
            alpha, jit = solve_krr(K, Y, p.reg, solve_dtype=self.solve_dtype)
            self.history.jitter = max(self.history.jitter, jit)
            alpha_c = alpha.to(self.dtype)
            out_v = kernel_from_distances(D_v, p.bandwidth, p.exponent).T @ alpha_c
            cur = self._metric(out_v, y_v)
            mse = float(((out_v.double() - Y_v) ** 2).mean())
            self.history.val_metric.append(cur)
            self.history.val_mse.append(mse)
            key = self.selection_key(cur, mse)
            improved = key > best[0]
            if improved:
                best = (key, alpha_c, M, None, t)
                since_best = 0
            else:
                since_best += 1
            stop = t > 0 and (
                self._should_stop(cur, self.history.val_metric[best[4]])
                or (self.patience is not None and since_best >= self.patience)
            )
            if stop or (t == self.iters and not (improved and with_agop)):
                self.history.stopped_early = stop
                break
            # AGOP of this predictor: next metric, and the directions if this one is kept
            zi = agop_idx if agop_idx is not None else slice(None)
            Dz = D_tr[:, zi] if agop_idx is not None else D_tr
            G = predictor_gradients(Xt, Xt[zi], alpha_c, M, p, D=Dz, sqrtM=sqrtM)
            agop = agop_from_gradients(G, center=p.center_grads)
            if improved:
                # directions come from the uncentred AGOP: centring (a de-noising device for the
                # metric update) removes the mean gradient, which for a near-linear probe *is*
                # the concept direction
                keep_agop = agop if not p.center_grads else agop_from_gradients(G, center=False)
                best = (key, alpha_c, M, keep_agop, t)
            if t == self.iters:
                break
            mx = agop.max()
            M = agop / mx if float(mx) > 0 else agop
        self.history.best_iter = best[4]
        self.alpha, self.M, self.agop_ = best[1], best[2], best[3]
        self.centers = Xt
        if self.task == "multiclass":
            self._fit_temperature(Xv, y_v)
        return self

    def _fit_temperature(self, Xv: torch.Tensor, y_v: np.ndarray) -> None:
        """Softmax temperature minimising validation log-loss (a 1-D grid, deterministic)."""
        out = self._raw(Xv, centred=True).double()
        yi = torch.as_tensor(y_v.astype(np.int64), device=out.device)
        best_t, best_nll = 1.0, math.inf
        for temp in np.geomspace(0.01, 10.0, 61):
            nll = float(torch.nn.functional.cross_entropy(out / temp, yi))
            if nll < best_nll:
                best_t, best_nll = float(temp), nll
        self.temperature = best_t

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if self.alpha is None or self.centers is None:
            raise ConfigError("the RFM is not fitted yet; call fit() first")

    def _raw(self, X: torch.Tensor, centred: bool = False) -> torch.Tensor:
        Xc = X if centred else self._prep(X)
        p = self.params
        out = []
        for i in range(0, Xc.shape[0], 4096):
            D = distances(self.centers, Xc[i : i + 4096], self.M, norm_p=p.norm_p)
            out.append(kernel_from_distances(D, p.bandwidth, p.exponent).T @ self.alpha)
        return torch.cat(out)

    def decision_function(self, X: Any) -> torch.Tensor:
        """Raw KRR outputs: (n,) for binary/regression (z-scored for regression), (n, C) multiclass."""
        self._check_fitted()
        out = self._raw(X)
        return out[:, 0] if self.task != "multiclass" else out

    def predict(self, X: Any) -> torch.Tensor:
        """Class indices (classification) or values in the original units (regression)."""
        out = self.decision_function(X)
        if self.task == "binary":
            return (out > 0.5).long()
        if self.task == "multiclass":
            return out.argmax(-1)
        return out.double() * self.y_std + self.y_mean

    def predict_proba(self, X: Any) -> torch.Tensor:
        """(n, 2) clipped scores for binary; (n, C) softmax(outputs / temperature) for multiclass."""
        if self.task == "regression":
            raise ConfigError("predict_proba is for classification probes")
        out = self.decision_function(X).double()
        if self.task == "binary":
            p1 = out.clamp(0, 1)
            return torch.stack([1 - p1, p1], dim=-1)
        return torch.softmax(out / self.temperature, dim=-1)

    def score(self, X: Any, y: Any) -> float:
        """AUC (binary), accuracy (multiclass) or R^2 (regression)."""
        y_np = np.asarray(y).ravel()
        if self.task == "binary":
            return auc_score(y_np, self.decision_function(X).cpu().numpy())
        if self.task == "multiclass":
            return float((self.predict(X).cpu().numpy() == y_np.astype(np.int64)).mean())
        return r2_score(y_np, self.predict(X).cpu().numpy())

    # ------------------------------------------------------------------ AGOP
    def agop(self) -> torch.Tensor:
        """AGOP (d, d) of the kept predictor, normalised by its largest entry.

        Always the uncentred AGOP (sum of g g^T), whatever ``center_grads`` says: centring only
        shapes the metric M used in the next iteration (paper eq. 6, xrfm), and it would remove
        the mean gradient, i.e. the concept direction of a near-linear probe.
        """
        self._check_fitted()
        if self.agop_ is None:  # e.g. loaded without it: recompute from the centres
            G = predictor_gradients(self.centers, self.centers, self.alpha, self.M, self.params)
            self.agop_ = agop_from_gradients(G, center=False)
        a = self.agop_.double()
        mx = a.max()
        return a / mx if float(mx) > 0 else a

    def eigenvectors(self, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k eigenpairs of the AGOP from ``eigh``, sorted by eigenvalue, descending.

        Returns (eigenvalues (k,), vectors (k, d)) in float64; vectors are unit-norm and have no
        sign convention here (see ``musicrfm.probes.training`` for the label-correlation sign rule).
        """
        vals, vecs = torch.linalg.eigh(self.agop())
        order = torch.argsort(vals, descending=True)
        if k is not None:
            order = order[:k]
        return vals[order], vecs[:, order].T.contiguous()

    # ------------------------------------------------------------------ I/O
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        self._check_fitted()
        tensors = {"centers": self.centers, "shift": self.shift, "alpha": self.alpha}
        if self.M is not None:
            tensors["M"] = self.M
        if self.agop_ is not None:
            tensors["agop"] = self.agop_
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        header = {
            "format_version": FORMAT_VERSION,
            "params": self.params.to_dict(),
            "task": self.task,
            "iters": self.iters,
            "n_outputs": self.n_outputs,
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "temperature": self.temperature,
            "best_iter": self.history.best_iter,
            "val_metric": self.history.val_metric,
            "val_mse": self.history.val_mse,
            "dtype": str(self.dtype).replace("torch.", ""),
        }
        return tensors, header

    def save(self, path: str | Path) -> Path:
        """Write ``path.safetensors`` (centres, alpha, M, AGOP) and ``path.json`` (the rest)."""
        from safetensors.torch import save_file

        base = Path(path)
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        tensors, header = self.state()
        tmp = base.with_name(base.name + ".safetensors.tmp")
        save_file(tensors, str(tmp))
        tmp.replace(base.with_name(base.name + ".safetensors"))
        base.with_name(base.name + ".json").write_text(json.dumps(header, indent=2))
        return base

    @classmethod
    def from_state(
        cls, tensors: dict[str, torch.Tensor], header: dict[str, Any], device: str = "cpu"
    ) -> RFM:
        dtype = getattr(torch, header.get("dtype", "float32"))
        m = cls(
            RFMParams.from_dict(header["params"]),
            task=header["task"],
            iters=header.get("iters", 0),
            device=device,
            dtype=dtype,
        )
        m.centers = tensors["centers"].to(device, dtype)
        m.shift = tensors["shift"].to(device, dtype)
        m.alpha = tensors["alpha"].to(device, dtype)
        m.M = tensors["M"].to(device, dtype) if "M" in tensors else None
        m.agop_ = tensors["agop"].to(device, dtype) if "agop" in tensors else None
        m.n_outputs = int(header["n_outputs"])
        m.y_mean, m.y_std = float(header["y_mean"]), float(header["y_std"])
        m.temperature = float(header.get("temperature", 1.0))
        m.history = FitHistory(
            val_metric=list(header.get("val_metric", [])),
            val_mse=list(header.get("val_mse", [])),
            best_iter=header.get("best_iter", -1),
        )
        return m

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> RFM:
        from safetensors.torch import load_file

        base = Path(path)
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        st, js = base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")
        if not st.exists() or not js.exists():
            raise ConfigError(f"probe files not found: need {st.name} and {js.name} in {st.parent}")
        return cls.from_state(load_file(str(st)), json.loads(js.read_text()), device=device)
