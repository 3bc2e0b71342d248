"""Recursive Feature Machine (RFM) probes on torch, CPU or GPU.

Kept as one module over ~400 lines: the RFM class (fit, predict, AGOP, save/load) is one
coherent object that reads best whole; its kernel maths is in :mod:`.kernels`, its metrics in
:mod:`.metrics`.

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
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.kernels import (
    agop_from_gradients,
    distances,
    kernel_from_distances,
    predictor_gradients,
    solve_krr,
    sqrt_psd,
)
from musicrfm.probes.metrics import auc_score, multiclass_auc, r2_score

TASKS = ("binary", "multiclass", "regression")
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
        Xt, Xv, Y, Y_v, y_v = self._fit_inputs(X, y, X_val, y_val, n_classes, check_inputs)
        p = self.params
        agop_idx = self._agop_rows(Xt.shape[0])
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
            alpha_c, cur, mse = self._solve_and_validate(D_tr, D_v, Y, Y_v, y_v)
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

    def _fit_inputs(
        self, X: Any, y: Any, X_val: Any, y_val: Any, n_classes: int | None, check_inputs: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        """Checked inputs for ``fit``: (train, val) features centred by the training mean, their
        targets (Y, Y_v) and the validation labels. Sets the target statistics the fit needs
        first (number of outputs, regression mean/std) and the shift applied to every input."""
        Xt = _as_tensor(X, "X", check_inputs).to(self.device, self.dtype)
        Xv = _as_tensor(X_val, "X_val", check_inputs).to(self.device, self.dtype)
        if Xt.shape[1] != Xv.shape[1]:
            raise ConfigError(f"X has {Xt.shape[1]} features but X_val has {Xv.shape[1]}")
        n = Xt.shape[0]
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
        return Xt, Xv, Y, Y_v, y_v

    def _agop_rows(self, n: int) -> torch.Tensor | None:
        """The (seeded) training rows the AGOP is estimated on, or None for all of them."""
        gen = torch.Generator().manual_seed(self.seed)
        if self.agop_max_points and self.agop_max_points < n:
            return torch.randperm(n, generator=gen)[: self.agop_max_points].to(self.device)
        return None

    def _solve_and_validate(
        self,
        D_tr: torch.Tensor,
        D_v: torch.Tensor,
        Y: torch.Tensor,
        Y_v: torch.Tensor,
        y_v: np.ndarray,
    ) -> tuple[torch.Tensor, float, float]:
        """One iteration's predictor: kernel ridge coefficients from the train distances, and
        its validation metric and MSE (recorded in ``history``). Returns (alpha, metric, mse)."""
        p = self.params
        K = kernel_from_distances(D_tr, p.bandwidth, p.exponent)
        alpha, jit = solve_krr(K, Y, p.reg, solve_dtype=self.solve_dtype)
        self.history.jitter = max(self.history.jitter, jit)
        alpha_c = alpha.to(self.dtype)
        out_v = kernel_from_distances(D_v, p.bandwidth, p.exponent).T @ alpha_c
        cur = self._metric(out_v, y_v)
        mse = float(((out_v.double() - Y_v) ** 2).mean())
        self.history.val_metric.append(cur)
        self.history.val_mse.append(mse)
        return alpha_c, cur, mse

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
        from musicrfm.files import save_tensors_atomic, write_text_atomic

        base = Path(path)
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        tensors, header = self.state()
        save_tensors_atomic(base.with_name(base.name + ".safetensors"), tensors)
        write_text_atomic(base.with_name(base.name + ".json"), json.dumps(header, indent=2))
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
