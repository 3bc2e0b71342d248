"""Labels and splits for probe training: task inference, class order, seeded stratified
splits, class-balanced one-vs-rest subsets, and the rows each probe is fitted on.

The second half holds the data steps of ``train_directions``: the split of every row
(``split_rows``), the encoded labels (``encode_labels``), the direction probes to fit with their
rows (``probe_tasks_for``) and the rows of the multiclass probes (``multiclass_rows``).

Every function here is deterministic given its seed or generator, so the same labels give the
same rows to every probe, baseline and table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import DatasetError

SPLITS = ("train", "val", "test")

# (class name, rfm task, {split: rows}, targets for every row): one direction probe per entry
ProbeTask = tuple[str, str, dict[str, np.ndarray], np.ndarray]


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


def numeric_labels(labels: pd.Series) -> pd.Series | None:
    """The labels as numbers when every one is a number (manifests keep ``label`` as text, so a
    tempo's "120" arrives as a string), else None."""
    if pd.api.types.is_bool_dtype(labels):
        return None
    if pd.api.types.is_numeric_dtype(labels):
        return labels
    values = pd.to_numeric(labels, errors="coerce")
    return values if values.notna().all() else None


def infer_task(labels: pd.Series) -> str:
    """'regression' for non-integer numbers or many distinct numeric values (numbers written as
    text count), else 'binary'."""
    labels = numeric_labels(labels)
    if labels is not None:
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


# --------------------------------------------------------------------------- train_directions steps


def split_rows(rows: pd.DataFrame, labels: pd.Series, task: str, seed: int) -> np.ndarray:
    """The split name of every row: the ``split`` column when there is one (so a dataset's own
    held-out rows stay held out), else a seeded 70/15/15 split, stratified for classes."""
    if "split" in rows.columns:
        split = rows["split"].astype(str).str.lower().to_numpy()
        unknown = set(split) - set(SPLITS)
        if unknown:
            raise DatasetError(
                f"split column has unknown values {sorted(unknown)}; use train/val/test"
            )
        return split
    return make_splits(labels if task != "regression" else None, len(rows), seed=seed)


def encode_labels(
    labels: pd.Series, label_column: str, task: str, idx: dict[str, np.ndarray]
) -> tuple[list[Any], np.ndarray]:
    """(classes, targets per row): class indices in ``class_names`` order, or float values for
    regression (classes ``["value"]``). Checks that every split can be fitted and scored."""
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
        return ["value"], y_all
    classes = class_names(labels)
    if len(classes) < 2:
        raise DatasetError(
            f"label column {label_column!r} has a single class {classes[0]!r}; need at least 2"
        )
    cls_index = {c: i for i, c in enumerate(classes)}
    y_all = labels.map(cls_index).to_numpy(dtype=np.int64)
    for s, need in zip(SPLITS, (2, 1, 1)):
        counts = np.bincount(y_all[idx[s]], minlength=len(classes))
        short = [f"{classes[c]!r}: {counts[c]}" for c in range(len(classes)) if counts[c] < need]
        if short:
            raise DatasetError(
                f"too few samples in split {s!r} (need >= {need} per class): {', '.join(short)}"
            )
    return classes, y_all


def probe_tasks_for(
    task: str, classes: list[Any], y_all: np.ndarray, idx: dict[str, np.ndarray], seed: int
) -> list[ProbeTask]:
    """The direction probes of every layer: one-vs-rest per class on class-balanced rows (so
    each class's probe sees as many positives as negatives), or one multiclass/regression probe
    on all rows. The balanced subsets are drawn once, so every layer uses the same rows."""
    rng = np.random.default_rng(seed)
    if task == "binary":
        out: list[ProbeTask] = []
        for c, name in enumerate(classes):
            yb = (y_all == c).astype(np.int64)
            sub = {s: balanced_subset(yb, idx[s], rng) for s in SPLITS}
            out.append((str(name), "binary", sub, yb))
        return out
    if task == "multiclass":
        return [("all", "multiclass", idx, y_all)]
    return [("value", "regression", idx, y_all)]


def multiclass_rows(
    idx: dict[str, np.ndarray], y_all: np.ndarray, cap: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Rows of the per-layer multiclass probes: all splits, with the training rows cut to the
    budget's cap by a stratified subsample (the multiclass solve grows as n^3)."""
    mc_rows = dict(idx)
    n_train = len(mc_rows["train"])
    if cap is not None and n_train > cap:
        keep = make_splits(
            pd.Series(y_all[mc_rows["train"]]),
            n_train,
            seed=seed,
            fractions=(cap / n_train, 1.0 - cap / n_train, 0.0),
        )
        mc_rows["train"] = np.sort(mc_rows["train"][keep == "train"])
    return mc_rows
