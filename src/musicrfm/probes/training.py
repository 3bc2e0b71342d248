"""Per-layer, per-concept RFM probe training and concept directions (SPEC 2.2-2.3).

Kept as one module over ~400 lines: the steps of `train_directions` (checks, per-layer fits,
eigenvector signs, metadata) read top to bottom in one place; the search is in :mod:`.search`,
the label and split steps in :mod:`.splits`, the kernel maths in :mod:`.kernels`.

``train_directions(features, label_column=...)`` trains, for every requested layer:
- one-vs-rest binary RFM probes per class on class-balanced subsets (their AGOP eigenvectors are
  the steering directions), or one regression probe (tempo);
- one multiclass probe (one-hot targets, softmax probabilities) that later classifies generated
  audio and gives the classification table.

It runs as a few steps, each a small function, in this order: check the inputs and resolve the
layers (``_check_labels``, ``_resolve_layers``, ``_check_features``); split the rows and encode
the labels (``split_rows``, ``encode_labels`` in :mod:`.splits`); list the probes to fit and
their rows (``probe_tasks_for``, ``multiclass_rows``, also in :mod:`.splits`); fit them layer by
layer (``_fit_layers``: ``_fit_direction_probe``, with the eigenvectors and their signs from
``_signed_directions``, and ``_fit_multiclass_probe``); assemble the result
(``_directions_meta``).
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import musicrfm
from musicrfm.capture.distributed import World, world
from musicrfm.capture.features import FeatureSet
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import write_text_atomic
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.metrics import multiclass_auc
from musicrfm.probes.rfm import RFM
from musicrfm.probes.search import SEARCH_SPACE, Budget, get_budget, search_rfm
from musicrfm.probes.splits import (
    SPLITS,
    ProbeTask,
    encode_labels,
    infer_task,
    multiclass_rows,
    numeric_labels,
    probe_tasks_for,
    split_rows,
)


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
    labels, task = _check_labels(features.rows, label_column, task, components)
    layer_ids = _resolve_layers(layers, features.num_layers)
    _check_features(features, layer_ids)
    k = min(components, features.hidden_size)
    concept = concept or str(features.meta.get("concept") or label_column)

    split = split_rows(features.rows, labels, task, seed)
    idx = {s: np.flatnonzero(split == s) for s in SPLITS}
    classes, y_all = encode_labels(labels, label_column, task, idx)
    probe_tasks = probe_tasks_for(task, classes, y_all, idx, seed)
    mc_rows = None
    if task == "binary" and multiclass_probes and len(classes) >= 3:
        mc_rows = multiclass_rows(idx, y_all, bud.mc_max_train, seed)

    fits = _fit_layers(
        features, layer_ids, probe_tasks, mc_rows, y_all, n_classes=len(classes), k=k,
        budget=bud, seed=seed, device=device, progress=progress, concept=concept,
    )  # fmt: skip
    meta = _directions_meta(
        features, concept=concept, classes=classes, label_column=label_column, task=task,
        test_scores=fits.test_scores, hyper=fits.hyper, budget=bud, seed=seed, components=k, idx=idx,
        mc_scores=fits.mc_scores, t_start=t_start,
    )  # fmt: skip
    directions = ConceptDirections(
        concept=concept,
        classes=[name for name, *_ in probe_tasks],
        vectors=fits.vectors,
        scores=fits.val_scores,
        layers=layer_ids,
        eigenvalues=fits.eigvals,
        meta=meta,
    )
    return TrainResult(
        directions=directions,
        val_scores=fits.val_scores,
        test_scores=fits.test_scores,
        hyperparams=fits.hyper,
        multiclass_probes=fits.mc_probes,
        multiclass_scores=fits.mc_scores,
        splits=split,
        multiclass_rows=mc_rows,
        labels=y_all,
        task=task,
        seconds=time.perf_counter() - t_start,
    )


# --------------------------------------------------------------------------- 1. inputs


def _check_labels(
    rows: pd.DataFrame, label_column: str, task: str, components: int
) -> tuple[pd.Series, str]:
    """The label column and the resolved task, checked before any work is done, so that a typo
    in a column or task name fails at once instead of after the first layer's search."""
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
    if task == "regression":
        numbers = numeric_labels(labels)
        if numbers is None:
            raise DatasetError(
                f"a regression needs numeric labels; {label_column!r} holds e.g. "
                f"{labels.iloc[0]!r} (use --task binary, or a numeric --label-column)"
            )
        labels = numbers.astype(float)
    return labels, task


def _resolve_layers(layers: Any, num_layers: int) -> list[int]:
    """0-based layer numbers, sorted and unique; negative ones count from the top, as in
    ``FeatureSet.layer``. Out-of-range numbers fail here rather than as an index error."""
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


def _check_features(features: FeatureSet, layers: list[int]) -> None:
    """Fail early, naming the rows, on NaN/inf features: the kernel solve would otherwise turn
    them into an undefined metric for every draw, far from their cause."""
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


# --------------------------------------------------------------------------- 2. per layer


@dataclass
class _LayerFits:
    """What the per-layer fits give: direction tensors (layers, classes, ...) and probes."""

    vectors: torch.Tensor  # (L, C, k, d)
    eigvals: torch.Tensor  # (L, C, k)
    val_scores: torch.Tensor  # (L, C)
    test_scores: torch.Tensor  # (L, C)
    hyper: list[list[dict[str, Any]]] = field(default_factory=list)
    mc_probes: dict[int, RFM] = field(default_factory=dict)
    mc_scores: dict[int, dict[str, float]] = field(default_factory=dict)


def _fit_layers(
    features: FeatureSet,
    layer_ids: list[int],
    probe_tasks: list[ProbeTask],
    mc_rows: dict[str, np.ndarray] | None,
    y_all: np.ndarray,
    *,
    n_classes: int,
    k: int,
    budget: Budget,
    seed: int,
    device: str,
    progress: bool,
    concept: str,
) -> _LayerFits:
    """Every layer's direction probes, then its multiclass probe, one layer at a time.

    Each search gets its own seed (``seed + 1000 * layer + probe``, 999 for the multiclass
    probe), so a layer's results do not depend on which other layers are trained -- nor on which
    process trains them: under a launcher (:mod:`musicrfm.capture.distributed`) the fits, listed
    in that order, go round robin to the ranks and every rank gets all of them back.
    """
    n_l, n_c, d = len(layer_ids), len(probe_tasks), features.hidden_size
    out = _LayerFits(
        vectors=torch.zeros(n_l, n_c, k, d),
        eigvals=torch.zeros(n_l, n_c, k),
        val_scores=torch.zeros(n_l, n_c),
        test_scores=torch.zeros(n_l, n_c),
    )
    # (layer position, probe position or None for the multiclass probe), in one process's order
    fits: list[tuple[int, int | None]] = []
    for li in range(n_l):
        fits += [(li, ci) for ci in range(n_c)] + ([(li, None)] if mc_rows is not None else [])
    w = world()
    done: dict[tuple[int, int | None], Any] = {}
    for j in _fit_progress(fits, w, concept, progress):
        li, ci = fits[j]
        layer = layer_ids[li]
        X = features.features[layer]
        if ci is not None:
            done[fits[j]] = _fit_direction_probe(
                X, probe_tasks[ci], n_classes, k, budget, seed + 1000 * layer + ci, device
            )
        else:
            done[fits[j]] = _fit_multiclass_probe(
                X, mc_rows, y_all, n_classes, budget, seed + 1000 * layer + 999, device
            )  # type: ignore[arg-type]
    if w.distributed:  # probes travel on the CPU and come back to this rank's device
        shared = w.all_gather({key: _portable(v, "cpu") for key, v in done.items()})
        done = {key: _portable(v, device) for part in shared for key, v in part.items()}
    for li in range(n_l):
        out.hyper.append([])
        for ci in range(n_c):
            vecs, vals, val_s, test_s, chosen = done[(li, ci)]
            out.vectors[li, ci] = vecs
            out.eigvals[li, ci] = vals
            out.val_scores[li, ci] = val_s
            out.test_scores[li, ci] = test_s
            out.hyper[-1].append(chosen)
        if mc_rows is not None:
            layer = layer_ids[li]
            out.mc_probes[layer], out.mc_scores[layer] = done[(li, None)]
    return out


def _fit_progress(
    fits: list[tuple[int, int | None]], w: World, concept: str, progress: bool
) -> Any:
    """This rank's fits (all of them in one process), with a progress bar on rank 0 when asked
    (tqdm is imported only then)."""
    mine = [j for j in range(len(fits)) if w.owns(j)]
    if not progress or not w.main:
        return mine
    from tqdm.auto import tqdm

    return tqdm(mine, desc=f"train {concept}", unit="probe")


def _portable(fit: tuple[Any, ...], device: str) -> tuple[Any, ...]:
    """A fit with its multiclass probe's tensors moved to ``device`` (direction fits hold only
    CPU tensors and plain values already)."""
    if not isinstance(fit[0], RFM):
        return fit
    m = copy.copy(fit[0])
    for name in ("centers", "shift", "alpha", "M", "agop_"):
        t = getattr(m, name)
        if t is not None:
            setattr(m, name, t.to(device))
    m.device = torch.device(device)
    return (m, *fit[1:])


def _fit_direction_probe(
    X: torch.Tensor,
    probe_task: ProbeTask,
    n_classes: int,
    k: int,
    budget: Budget,
    seed: int,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor, float, float, dict[str, Any]]:
    """Search and fit one direction probe on one layer's features X (n, d).

    Returns (vectors (k, d), eigenvalues (k,), validation score, test score, chosen
    hyper-parameters). The validation score is AUC for binary probes, R^2 for regression, and
    the search's macro AUC for a multiclass direction probe (its ``score`` is accuracy).
    """
    _name, rtask, sub, yy = probe_task
    Xs = {s: X[torch.as_tensor(sub[s])] for s in SPLITS}
    ys = {s: yy[sub[s]] for s in SPLITS}
    fit = search_rfm(
        Xs["train"],
        ys["train"],
        Xs["val"],
        ys["val"],
        task=rtask,
        budget=budget,
        seed=seed,
        device=device,
        n_classes=n_classes if rtask == "multiclass" else None,
        multiclass=rtask == "multiclass",
    )
    m = fit.model
    vals, vecs = _signed_directions(m, k, Xs["train"], ys["train"])
    val_score = fit.val_metric if rtask == "multiclass" else m.score(Xs["val"], ys["val"])
    chosen = {
        **m.params.to_dict(),
        "best_iter": m.history.best_iter,
        "val_metric": fit.val_metric,
        "draws": fit.draws_tried,
        "seconds": round(fit.seconds, 3),
        "n_train": len(sub["train"]),
    }
    return vecs, vals, val_score, _test_score(m, Xs["test"], ys["test"]), chosen


def _signed_directions(
    m: RFM, k: int, X_train: torch.Tensor, y_train: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, vectors) of the top-k AGOP eigenvectors as float32 on the CPU, with a sign:
    eigenvectors have none, and steering needs +v to mean "more of the class" (the label-
    correlation rule), or at least the same sign on every run (multiclass: canonical sign)."""
    vals, vecs = m.eigenvectors(k)
    vecs = vecs.cpu()
    if m.task == "multiclass":
        vecs = canonical_sign(vecs)
    else:
        vecs = sign_vectors(vecs, X_train, y_train)
    return vals.float().cpu(), vecs.float()


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


def _test_score(m: RFM, X: torch.Tensor, y: np.ndarray) -> float:
    """Held-out score on the same scale as the validation one (macro AUC for multiclass)."""
    if m.task == "multiclass":
        return multiclass_auc(y, m.decision_function(X).cpu().numpy())
    return m.score(X, y)


def _fit_multiclass_probe(
    X: torch.Tensor,
    mc_rows: dict[str, np.ndarray],
    y_all: np.ndarray,
    n_classes: int,
    budget: Budget,
    seed: int,
    device: str,
) -> tuple[RFM, dict[str, float]]:
    """The layer's multiclass probe (it classifies generated audio later) and its scores."""
    Xs = {s: X[torch.as_tensor(mc_rows[s])] for s in SPLITS}
    ys = {s: y_all[mc_rows[s]] for s in SPLITS}
    fit = search_rfm(
        Xs["train"],
        ys["train"],
        Xs["val"],
        ys["val"],
        task="multiclass",
        budget=budget,
        seed=seed,
        device=device,
        n_classes=n_classes,
        multiclass=True,
    )
    scores = {
        "val_accuracy": fit.model.score(Xs["val"], ys["val"]),
        "test_accuracy": fit.model.score(Xs["test"], ys["test"]),
        "val_auc": fit.val_metric,
        **{f"param_{a}": b for a, b in fit.model.params.to_dict().items()},
        "best_iter": fit.model.history.best_iter,
    }
    return fit.model, scores


# --------------------------------------------------------------------------- 3. the result


def _directions_meta(
    features: FeatureSet,
    *,
    concept: str,
    classes: list[Any],
    label_column: str,
    task: str,
    test_scores: torch.Tensor,
    hyper: list[list[dict[str, Any]]],
    budget: Budget,
    seed: int,
    components: int,
    idx: dict[str, np.ndarray],
    mc_scores: dict[int, dict[str, float]],
    t_start: float,
) -> dict[str, Any]:
    """What the direction files record: the model and capture they come from (so steering can
    check it runs on the same model), and how they were trained (so they can be reproduced)."""
    meta = {
        key: features.meta.get(key)
        for key in ("model_id", "model_revision", "num_layers", "hidden_size", "pooling", "prompt")
    }
    # FeatureSets record the model's snapshot commit as "revision" (capture.runner)
    meta["model_revision"] = meta["model_revision"] or features.meta.get("revision")
    meta["num_layers"] = meta["num_layers"] or features.num_layers
    meta["hidden_size"] = meta["hidden_size"] or features.hidden_size
    has_split_column = "split" in features.rows.columns
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
        score_name={"binary": "val_auc", "multiclass": "val_auc", "regression": "val_r2"}[task],
        test_scores=test_scores.tolist(),
        hyperparams=hyper,
        budget=budget.name,
        budget_settings=asdict(budget),
        search_space=copy.deepcopy(SEARCH_SPACE),
        seed=seed,
        components=components,
        split_counts={s: len(idx[s]) for s in SPLITS},
        split_source="column" if has_split_column else f"stratified 70/15/15, seed {seed}",
        multiclass=mc_scores,
        library_version=musicrfm.__version__,
        train_seconds=round(time.perf_counter() - t_start, 2),
    )
    return meta


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
        # atomic: ranks that all trained the same directions may save them side by side
        write_text_atomic(probe_dir / "index.json", json.dumps(index, indent=2))
    return base
