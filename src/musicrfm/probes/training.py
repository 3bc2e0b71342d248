"""Per-layer, per-concept RFM probe training and concept directions (SPEC 2.2-2.3).

``train_directions(features, label_column=...)`` trains, for every requested layer:
- one-vs-rest binary RFM probes per class on class-balanced subsets (their AGOP eigenvectors are
  the steering directions), or one regression probe (tempo);
- one multiclass probe (one-hot targets, softmax probabilities) that later classifies generated
  audio and gives the classification table.

Hyper-parameters are searched over the paper's space (bandwidth L ~ logU(1,100), ridge
~ logU(1e-5,10), q ~ U(0.7,1.4), centred gradients in {no, yes}) with validation AUC (MSE for
regression). ``budget="paper"`` is the paper's protocol (100 random draws x 15 iterations);
``budget="fast"`` (default) draws 32 candidates and screens them at iteration 0, where M = I and
the distance matrices are shared by every draw (one kernel + one Cholesky solve each, ~0.02 CPU-s
at n=1000), then runs full RFMs (up to 4 iterations, patience 1) only on the best 2. Ties in the
validation metric are broken by the lower validation MSE.

Why 32 screened draws: about half of the paper's bandwidth range (L < 10 for d=1024 features,
whose distances are ~50) gives near-chance probes, and 8 draws often hold only 2-3 usable ones.
On 7 sampled probes (3 layers of musicgen-small-shaped planted features) the iteration-0 screen
of 32 draws closes half the validation gap to the paper budget (0.0142 -> 0.0069) for ~1.5x
the time; the rest of the gap is selection bias of the paper search (max over ~1,500 candidates
on ~210 validation rows): its test AUC is no better than the fast budget's.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import musicrfm
from musicrfm.capture.features import FeatureSet
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.rfm import RFM, RFMParams, distances

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


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


# --------------------------------------------------------------------------- data handling


def make_splits(
    labels: pd.Series | None, n: int, *, seed: int = 0, fractions=(0.7, 0.15, 0.15)
) -> np.ndarray:
    """Seeded 70/15/15 split, stratified by ``labels`` when given. Returns an array of names."""
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=object)
    groups = (
        [np.arange(n)]
        if labels is None
        else [np.flatnonzero((labels == v).to_numpy()) for v in pd.unique(labels)]
    )
    for idx in groups:
        idx = rng.permutation(idx)
        n_tr = int(np.floor(fractions[0] * len(idx) + 0.5 + 1e-9))  # round half up
        n_va = int(np.floor(fractions[1] * len(idx) + 0.5 + 1e-9))
        out[idx[:n_tr]] = "train"
        out[idx[n_tr : n_tr + n_va]] = "val"
        out[idx[n_tr + n_va :]] = "test"
    return out


def infer_task(labels: pd.Series) -> str:
    """'regression' for non-integer numbers or many distinct numeric values, else 'binary'."""
    if pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        vals = labels.to_numpy(dtype=np.float64)
        if not np.all(np.mod(vals, 1) == 0) or len(np.unique(vals)) > 20:
            return "regression"
    return "binary"


def class_names(labels: pd.Series) -> list[Any]:
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = set(labels.unique())
        return [c for c in labels.cat.categories if c in present]
    vals = list(pd.unique(labels))
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def balanced_subset(y_bin: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """All positives and an equal number of random negatives (or the reverse if fewer negatives)."""
    pos, neg = idx[y_bin[idx] == 1], idx[y_bin[idx] == 0]
    m = min(len(pos), len(neg))
    pos = pos if len(pos) == m else rng.choice(pos, m, replace=False)
    neg = neg if len(neg) == m else rng.choice(neg, m, replace=False)
    return np.sort(np.concatenate([pos, neg]))


def _check_features(features: FeatureSet, layers: list[int]) -> None:
    F = features.features
    if F.shape[1] != len(features.rows):
        raise DatasetError(f"{F.shape[1]} feature rows but {len(features.rows)} label rows")
    for layer in layers:
        bad = ~torch.isfinite(F[layer])
        if bool(bad.any()):
            rows = torch.nonzero(bad.any(-1)).flatten()[:5].tolist()
            raise DatasetError(
                f"features of layer {layer} contain {int(bad.sum())} NaN/inf values "
                f"(first rows {rows}); re-extract or drop those clips"
            )


def _resolve_layers(layers: Any, num_layers: int) -> list[int]:
    if layers is None:
        return list(range(num_layers))
    out = []
    for i in layers:
        j = int(i) + num_layers if int(i) < 0 else int(i)
        if not 0 <= j < num_layers:
            raise ConfigError(
                f"layer {i} out of range for {num_layers} layers (0..{num_layers - 1})"
            )
        out.append(j)
    return sorted(set(out))


def sign_vectors(vecs: torch.Tensor, X: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    """Flip each row of vecs (k, d) so that X @ v correlates positively with y."""
    proj = (X.double() - X.double().mean(0)) @ vecs.double().T  # (n, k)
    yc = torch.as_tensor(np.asarray(y, dtype=np.float64) - np.mean(y), device=proj.device)
    corr = yc @ proj
    signs = torch.where(corr < 0, -1.0, 1.0).to(vecs.dtype)
    return vecs * signs[:, None]


def canonical_sign(vecs: torch.Tensor) -> torch.Tensor:
    """Deterministic sign for unsigned (multiclass) vectors: largest-magnitude entry positive."""
    idx = vecs.abs().argmax(-1)
    s = torch.sign(vecs.gather(-1, idx[:, None]))[:, 0]
    return vecs * torch.where(s == 0, 1.0, s)[:, None]


# --------------------------------------------------------------------------- main entry


@dataclass
class TrainResult:
    """Directions plus everything needed to judge and reproduce them."""

    directions: ConceptDirections
    val_scores: torch.Tensor  # (L, C): AUC (binary/multiclass) or R^2 (regression)
    test_scores: torch.Tensor
    hyperparams: list[list[dict[str, Any]]]  # [layer][class] chosen params + best iteration
    multiclass_probes: dict[int, RFM] = field(default_factory=dict)
    multiclass_scores: dict[int, dict[str, float]] = field(default_factory=dict)
    splits: np.ndarray | None = None
    multiclass_rows: dict[str, np.ndarray] | None = None  # rows the multiclass probes used
    labels: np.ndarray | None = None  # class index (classification) or value per row
    task: str = "binary"
    seconds: float = 0.0

    def best_multiclass_layer(self) -> int | None:
        if not self.multiclass_scores:
            return None
        return max(self.multiclass_scores, key=lambda i: self.multiclass_scores[i]["val_accuracy"])


def train_directions(
    features: FeatureSet,
    *,
    label_column: str = "label",
    concept: str | None = None,
    task: str = "auto",
    budget: str | Budget = "fast",
    components: int = 4,
    layers: Any = None,
    device: str = "cpu",
    seed: int = 0,
    multiclass_probes: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train per-layer RFM probes for one concept and return its directions.

    task: "binary" (one-vs-rest directions per class), "multiclass" (one unsigned direction set
    per layer from the multiclass AGOP, stored as the single class "all"), "regression", or
    "auto" (regression for continuous numeric labels, else binary). For binary concepts with 3+
    classes a multiclass probe per layer is trained too (``multiclass_probes``).
    """
    t_start = time.perf_counter()
    bud = get_budget(budget)
    rows = features.rows
    if label_column not in rows.columns:
        raise ConfigError(
            f"label column {label_column!r} not found; columns: {', '.join(map(str, rows.columns))}"
        )
    labels = rows[label_column]
    if labels.isna().any():
        raise DatasetError(
            f"label column {label_column!r} has {int(labels.isna().sum())} missing values"
        )
    if components < 1:
        raise ConfigError(f"components must be >= 1, got {components}")
    if task == "auto":
        task = infer_task(labels)
    if task not in ("binary", "multiclass", "regression"):
        raise ConfigError(f"unknown task {task!r}; valid: auto, binary, multiclass, regression")
    layer_ids = _resolve_layers(layers, features.num_layers)
    _check_features(features, layer_ids)
    d = features.hidden_size
    k = min(components, d)
    concept = concept or str(features.meta.get("concept") or label_column)

    # ---- splits
    if "split" in rows.columns:
        split = rows["split"].astype(str).str.lower().to_numpy()
        unknown = set(split) - set(SPLITS)
        if unknown:
            raise DatasetError(
                f"split column has unknown values {sorted(unknown)}; use train/val/test"
            )
    else:
        split = make_splits(labels if task != "regression" else None, len(rows), seed=seed)
    idx = {s: np.flatnonzero(split == s) for s in SPLITS}

    if task == "regression":
        y_all = labels.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(y_all)):
            raise DatasetError(f"label column {label_column!r} has NaN/inf values")
        for s, need in zip(SPLITS, (5, 2, 2)):
            if len(idx[s]) < need:
                raise DatasetError(
                    f"too few samples in split {s!r}: {len(idx[s])} (need >= {need})"
                )
        if np.std(y_all[idx["train"]]) == 0:
            raise DatasetError(f"label column {label_column!r} is constant on the training split")
        classes = ["value"]
    else:
        classes = class_names(labels)
        if len(classes) < 2:
            raise DatasetError(
                f"label column {label_column!r} has a single class {classes[0]!r}; need at least 2"
            )
        cls_index = {c: i for i, c in enumerate(classes)}
        y_all = labels.map(cls_index).to_numpy(dtype=np.int64)
        for s, need in zip(SPLITS, (2, 1, 1)):
            counts = np.bincount(y_all[idx[s]], minlength=len(classes))
            short = [
                f"{classes[c]!r}: {counts[c]}" for c in range(len(classes)) if counts[c] < need
            ]
            if short:
                raise DatasetError(
                    f"too few samples in split {s!r} (need >= {need} per class): {', '.join(short)}"
                )

    # ---- the probe tasks: (name, rfm task, {split: rows}, targets)
    rng = np.random.default_rng(seed)
    probe_tasks: list[tuple[str, str, dict[str, np.ndarray], np.ndarray]] = []
    if task == "binary":
        for c, name in enumerate(classes):
            yb = (y_all == c).astype(np.int64)
            sub = {s: balanced_subset(yb, idx[s], rng) for s in SPLITS}
            probe_tasks.append((str(name), "binary", sub, yb))
    elif task == "multiclass":
        probe_tasks.append(("all", "multiclass", idx, y_all))
    else:
        probe_tasks.append(("value", "regression", idx, y_all))
    mc_rows = None
    if task == "binary" and multiclass_probes and len(classes) >= 3:
        mc_rows = dict(idx)
        cap = bud.mc_max_train
        if cap is not None and len(mc_rows["train"]) > cap:
            keep = make_splits(
                pd.Series(y_all[mc_rows["train"]]),
                len(mc_rows["train"]),
                seed=seed,
                fractions=(cap / len(mc_rows["train"]), 1.0 - cap / len(mc_rows["train"]), 0.0),
            )
            mc_rows["train"] = np.sort(mc_rows["train"][keep == "train"])

    n_l, n_c = len(layer_ids), len(probe_tasks)
    vectors = torch.zeros(n_l, n_c, k, d)
    eigvals = torch.zeros(n_l, n_c, k)
    val_scores = torch.zeros(n_l, n_c)
    test_scores = torch.zeros(n_l, n_c)
    hyper: list[list[dict[str, Any]]] = []
    mc_probes: dict[int, RFM] = {}
    mc_scores: dict[int, dict[str, float]] = {}
    iterator: Any = range(n_l)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"train {concept}", unit="layer")
    for li in iterator:
        layer = layer_ids[li]
        X = features.features[layer]
        hyper.append([])
        for ci, (_name, rtask, sub, yy) in enumerate(probe_tasks):
            Xs = {s: X[torch.as_tensor(sub[s])] for s in SPLITS}
            ys = {s: yy[sub[s]] for s in SPLITS}
            fit = search_rfm(
                Xs["train"],
                ys["train"],
                Xs["val"],
                ys["val"],
                task=rtask,
                budget=bud,
                seed=seed + 1000 * layer + ci,
                device=device,
                n_classes=len(classes) if rtask == "multiclass" else None,
                multiclass=rtask == "multiclass",
            )
            m = fit.model
            vals, vecs = m.eigenvectors(k)
            vecs = vecs.cpu()
            if rtask == "multiclass":
                vecs = canonical_sign(vecs)
            else:
                vecs = sign_vectors(vecs, Xs["train"], ys["train"])
            vectors[li, ci] = vecs.float()
            eigvals[li, ci] = vals.float().cpu()
            if rtask == "regression":
                val_scores[li, ci] = m.score(Xs["val"], ys["val"])
            elif rtask == "multiclass":
                val_scores[li, ci] = fit.val_metric
            else:
                val_scores[li, ci] = m.score(Xs["val"], ys["val"])
            test_scores[li, ci] = _test_score(m, Xs["test"], ys["test"], len(classes))
            hyper[-1].append(
                {
                    **m.params.to_dict(),
                    "best_iter": m.history.best_iter,
                    "val_metric": fit.val_metric,
                    "draws": fit.draws_tried,
                    "seconds": round(fit.seconds, 3),
                    "n_train": len(sub["train"]),
                }
            )
        if mc_rows is not None:
            Xs = {s: X[torch.as_tensor(mc_rows[s])] for s in SPLITS}
            ys = {s: y_all[mc_rows[s]] for s in SPLITS}
            fit = search_rfm(
                Xs["train"],
                ys["train"],
                Xs["val"],
                ys["val"],
                task="multiclass",
                budget=bud,
                seed=seed + 1000 * layer + 999,
                device=device,
                n_classes=len(classes),
                multiclass=True,
            )
            mc_probes[layer] = fit.model
            mc_scores[layer] = {
                "val_accuracy": fit.model.score(Xs["val"], ys["val"]),
                "test_accuracy": fit.model.score(Xs["test"], ys["test"]),
                "val_auc": fit.val_metric,
                **{f"param_{a}": b for a, b in fit.model.params.to_dict().items()},
                "best_iter": fit.model.history.best_iter,
            }

    score_name = {"binary": "val_auc", "multiclass": "val_auc", "regression": "val_r2"}[task]
    meta = {
        key: features.meta.get(key)
        for key in ("model_id", "model_revision", "num_layers", "hidden_size", "pooling", "prompt")
    }
    meta["num_layers"] = meta["num_layers"] or features.num_layers
    meta["hidden_size"] = meta["hidden_size"] or d
    meta.update(
        concept=concept,
        classes=[str(c) for c in classes],
        label_column=label_column,
        task=task,
        direction_kind={
            "binary": "one_vs_rest",
            "multiclass": "multiclass_agop",
            "regression": "regression",
        }[task],
        score_name=score_name,
        test_scores=test_scores.tolist(),
        hyperparams=hyper,
        budget=bud.name,
        budget_settings=asdict(bud),
        search_space={
            "bandwidth": "logU(1,100)",
            "reg": "logU(1e-5,10)",
            "exponent": "U(0.7,1.4)",
            "center_grads": [False, True],
        },
        seed=seed,
        components=k,
        split_counts={s: len(idx[s]) for s in SPLITS},
        split_source="column" if "split" in rows.columns else f"stratified 70/15/15, seed {seed}",
        multiclass=mc_scores,
        library_version=musicrfm.__version__,
        train_seconds=round(time.perf_counter() - t_start, 2),
    )
    directions = ConceptDirections(
        concept=concept,
        classes=[name for name, *_ in probe_tasks],
        vectors=vectors,
        scores=val_scores,
        layers=layer_ids,
        eigenvalues=eigvals,
        meta=meta,
    )
    return TrainResult(
        directions=directions,
        val_scores=val_scores,
        test_scores=test_scores,
        hyperparams=hyper,
        multiclass_probes=mc_probes,
        multiclass_scores=mc_scores,
        splits=split,
        multiclass_rows=mc_rows,
        labels=y_all,
        task=task,
        seconds=time.perf_counter() - t_start,
    )


def _test_score(m: RFM, X: torch.Tensor, y: np.ndarray, n_classes: int) -> float:
    if m.task == "multiclass":
        from musicrfm.probes.rfm import multiclass_auc

        return multiclass_auc(y, m.decision_function(X).cpu().numpy())
    return m.score(X, y)


def budget_with(budget: str | Budget, **changes: Any) -> Budget:
    """A copy of a named budget with some fields changed (e.g. ``iters=3``)."""
    return replace(get_budget(budget), **changes)


def save_train_result(result: TrainResult, out: str | Path) -> Path:
    """Write a TrainResult's files: `<concept>.safetensors/.json` and `probes/` + `index.json`.

    The one layout `musicrfm train`, sweeps and the demo share, so any of them can read the
    others' directions and multiclass probes. Returns the directions' base path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = result.directions
    stem = re.sub(r"[^\w.-]+", "_", d.concept).strip("._") or "directions"
    base = d.save(out / stem)
    if result.multiclass_probes:
        probe_dir = out / "probes"
        for layer, probe in result.multiclass_probes.items():
            probe.save(probe_dir / f"{stem}_multiclass_layer{layer:02d}")
        index = {
            "concept": d.concept,
            "classes": d.meta.get("classes"),
            "layers": sorted(result.multiclass_probes),
            "scores": result.multiclass_scores,
            "model_id": d.meta.get("model_id"),
        }
        (probe_dir / "index.json").write_text(json.dumps(index, indent=2))
    return base
