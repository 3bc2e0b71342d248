"""Hyper-parameter search for one RFM probe, and the search budgets.

The space is the paper's (bandwidth L ~ logU(1,100), ridge ~ logU(1e-5,10), q ~ U(0.7,1.4),
centred gradients in {no, yes}), scored by validation AUC (MSE for regression).
``budget="paper"`` is the paper's protocol (100 random draws x 15 iterations); ``budget="fast"``
(default) draws 32 candidates and screens them at iteration 0, where M = I and the distance
matrices are shared by every draw (one kernel + one Cholesky solve each, ~0.02 CPU-s at n=1000),
then runs full RFMs (up to 4 iterations, patience 1) only on the best 2. Ties in the validation
metric are broken by the lower validation MSE.

Why 32 screened draws: about half of the paper's bandwidth range (L < 10 for d=1024 features,
whose distances are ~50) gives near-chance probes, and 8 draws often hold only 2-3 usable ones.
On 7 sampled probes (3 layers of musicgen-small-shaped planted features) the iteration-0 screen
of 32 draws closes half the validation gap to the paper budget (0.0142 -> 0.0069) for ~1.5x
the time; the rest of the gap is selection bias of the paper search (max over ~1,500 candidates
on ~210 validation rows): its test AUC is no better than the fast budget's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from musicrfm.errors import ConfigError, DatasetError
from musicrfm.probes.kernels import distances
from musicrfm.probes.rfm import RFM, RFMParams

SEARCH_SPACE = {
    "bandwidth": "logU(1,100)",
    "reg": "logU(1e-5,10)",
    "exponent": "U(0.7,1.4)",
    "center_grads": [False, True],
}


@dataclass(frozen=True)
class Budget:
    """How much hyper-parameter search to do per probe."""

    name: str
    n_draws: int  # random draws from the paper's space
    keep: int  # draws run as full RFMs after the iteration-0 screen (= n_draws: no screen)
    iters: int  # T
    patience: int | None  # stop after this many iterations without improvement
    early_stop_multiplier: float | None  # xrfm's rule: stop when metric < best / multiplier
    agop_max_points: int | None
    mc_draws: int  # multiclass probes (and task="multiclass" directions; no row cap for those)
    mc_keep: int
    mc_iters: int
    mc_max_train: int | None  # cap on multiclass training rows (stratified subsample)
    mc_agop_max_points: int | None


BUDGETS = {
    # measured on planted 12-class features of musicgen-small shapes (benchmarks/bench_rfm.py,
    # one thread): ~1.2-1.3 CPU-s per one-vs-rest probe (n_train ~1000, d=1024; 8 draws were
    # ~0.8-0.9), ~2.8 CPU-s per multiclass probe. Screening more draws beat running more
    # iterations per kept draw: (32, 3, 6, 2) and (48, 3, 4, 1) gained < 0.001 over (32, 2, 4, 1).
    "fast": Budget("fast", 32, 2, 4, 1, 1.1, None, 4, 1, 2, 2000, 500),
    "paper": Budget("paper", 100, 100, 15, None, 1.1, None, 100, 100, 15, None, None),
}


def get_budget(budget: str | Budget) -> Budget:
    if isinstance(budget, Budget):
        return budget
    try:
        return BUDGETS[budget]
    except KeyError:
        raise ConfigError(f"unknown budget {budget!r}; valid: {', '.join(BUDGETS)}") from None


def budget_with(budget: str | Budget, **changes: Any) -> Budget:
    """A copy of a named budget with some fields changed (e.g. ``iters=3``)."""
    return replace(get_budget(budget), **changes)


def sample_params(n: int, seed: int) -> list[RFMParams]:
    """n draws from the paper's layer-wise space (Table 7); the same seed gives the same draws."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        out.append(
            RFMParams(
                bandwidth=float(10 ** rng.uniform(0, 2)),
                reg=float(10 ** rng.uniform(-5, 1)),
                exponent=float(rng.uniform(0.7, 1.4)),
                center_grads=bool(rng.integers(0, 2)),
            )
        )
    return out


@dataclass
class ProbeFit:
    """The selected probe of one search, with its scores."""

    model: RFM
    val_metric: float  # the selection metric (AUC, or MSE for regression)
    draws_tried: int
    seconds: float


def search_rfm(
    Xt: torch.Tensor,
    yt: np.ndarray,
    Xv: torch.Tensor,
    yv: np.ndarray,
    *,
    task: str,
    budget: Budget,
    seed: int,
    device: str = "cpu",
    n_classes: int | None = None,
    multiclass: bool = False,
) -> ProbeFit:
    """Random search over the paper's space; returns the probe with the best validation metric.

    Work shared between draws: the training mean, and the M = I distance matrices
    (train x train, train x val), computed once and passed to every draw's iteration 0.
    """
    t0 = time.perf_counter()
    draws_n, keep, iters = (
        (budget.mc_draws, budget.mc_keep, budget.mc_iters)
        if multiclass
        else (budget.n_draws, budget.keep, budget.iters)
    )
    draws = sample_params(draws_n, seed)
    Xt = Xt.to(device, torch.float32)
    Xv = Xv.to(device, torch.float32)
    for name, a in (("training", Xt), ("validation", Xv)):
        if not bool(torch.isfinite(a).all()):
            raise DatasetError(f"{name} features contain NaN/inf values")
    mu = Xt.mean(0)
    D0 = (distances(Xt - mu, Xt - mu, symmetric=True), distances(Xt - mu, Xv - mu))
    common = dict(
        task=task,
        early_stop_multiplier=budget.early_stop_multiplier,
        patience=budget.patience,
        agop_max_points=budget.mc_agop_max_points if multiclass else budget.agop_max_points,
        device=device,
        seed=seed,
    )
    if keep < len(draws):
        scores = []
        for i, p in enumerate(draws):
            m = RFM(p, iters=0, **common).fit(
                Xt,
                yt,
                Xv,
                yv,
                n_classes=n_classes,
                init_distances=D0,
                with_agop=False,
                check_inputs=False,
            )
            scores.append((*m.best_key, -i))
        order = sorted(range(len(draws)), key=lambda i: scores[i], reverse=True)
        candidates = [draws[i] for i in order[:keep]]
    else:
        candidates = draws
    best: tuple[tuple[float, float], RFM] | None = None
    for p in candidates:
        m = RFM(p, iters=iters, **common).fit(
            Xt, yt, Xv, yv, n_classes=n_classes, init_distances=D0, check_inputs=False
        )
        if math.isnan(m.history.val_metric[m.history.best_iter]):
            continue
        if best is None or m.best_key > best[0]:
            best = (m.best_key, m)
    if best is None:
        raise ConfigError("every hyper-parameter draw gave an undefined validation metric")
    m = best[1]
    return ProbeFit(
        m, m.history.val_metric[m.history.best_iter], len(draws), time.perf_counter() - t0
    )
