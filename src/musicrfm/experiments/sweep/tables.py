"""The paper-format tables of a sweep (Tables 2, 5, 6, 8, 9, 10): per concept and η0 (or per
ablation variant), detector and probe accuracy, FD / MMD against the unsteered clips of the same
prompts and seeds, and prompt adherence. See :mod:`musicrfm.experiments.sweep.report`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

TABLES = {
    "table5": ("multi", "Multi-direction steering (paper Table 5)"),
    "table6": ("schedule", "Time-dependent schedules and crossfades (paper Table 6)"),
    "table8": ("weighting", "Layer weighting ablation (paper Table 8)"),
    "table9": ("top_k", "Top-K layer selection ablation (paper Table 9)"),
    "table10": ("gate", "Injection probability ablation (paper Table 10)"),
}


def _metric(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    try:
        return float(fn(a, b))
    except Exception as e:  # too few clips, degenerate embeddings
        log.debug("metric failed: %s", e)
        return float("nan")


def _stack(series: pd.Series) -> np.ndarray:
    return (
        np.stack([np.asarray(v, dtype=float) for v in series]) if len(series) else np.zeros((0, 1))
    )


def _metrics(
    group: pd.DataFrame, reference: pd.DataFrame, n_boot: int, seed: int
) -> dict[str, Any]:
    from musicrfm.evaluation.metrics import bootstrap_ci, frechet_distance, mmd_rbf

    acc = bootstrap_ci(group["correct"].astype(float).to_numpy(), n_boot=n_boot, seed=seed)
    row: dict[str, Any] = {
        "n": int(len(group)),
        "detector_acc": acc.value,
        "detector_ci_low": acc.low,
        "detector_ci_high": acc.high,
    }
    if "probe_correct" in group.columns and group["probe_correct"].notna().any():
        row["probe_acc"] = float(group["probe_correct"].dropna().astype(float).mean())
    if "embedding" in group.columns and len(reference):
        if "embedding_backend" in group.columns and "embedding_backend" in reference.columns:
            # a resumed sweep may mix back-ends: compare like with like (the group's first)
            g_backend = group["embedding_backend"].fillna("mfcc")  # rows from before the column
            r_backend = reference["embedding_backend"].fillna("mfcc")
            backend = g_backend.iloc[0]
            group, reference = group[g_backend == backend], reference[r_backend == backend]
            row["embedding"] = str(backend)
        a, b = _stack(group["embedding"]), _stack(reference["embedding"])
        ok = len(a) and len(b) and a.shape[1] == b.shape[1]
        row["fd"] = _metric(frechet_distance, a, b) if ok else float("nan")
        row["mmd"] = _metric(mmd_rbf, a, b) if ok else float("nan")
    if "clap" in group.columns and group["clap"].notna().any():
        row["clap"] = float(group["clap"].mean())
    if "instrument_match" in group.columns and group["instrument_match"].notna().any():
        row["instrument_adherence"] = float(group["instrument_match"].dropna().mean())
    return row


def _reference(frame: pd.DataFrame, concept: str) -> pd.DataFrame:
    ref = frame[(frame["condition"] == "unsteered") & (frame["concept"] == concept)]
    return ref.drop_duplicates(subset=["prompt", "seed"])


def paper_tables(
    frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The paper-format tables (see the module docstring) for the results of a sweep."""
    tables: dict[str, pd.DataFrame] = {}
    main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
    rows = []
    for (concept, coef), g in main.groupby(["concept", "coef"], sort=True):
        rows.append(
            {
                "concept": concept,
                "coef": coef,
                **_metrics(g, _reference(frame, concept), n_boot, seed),
            }
        )
    long = pd.DataFrame(rows)
    if not long.empty:
        value_cols = [
            c
            for c in ("fd", "mmd", "clap", "instrument_adherence", "probe_acc", "detector_acc")
            if c in long.columns
        ]
        wide = long.pivot(index="concept", columns="coef", values=value_cols)
        wide.columns = [f"{m} η0={c:g}" for m, c in wide.columns]
        tables["table2"] = wide.reset_index()
        tables["table2_long"] = long
    for name, (kind, _) in TABLES.items():
        kinds = ("schedule", "crossfade") if kind == "schedule" else (kind,)
        part = frame[frame["kind"].isin(kinds)]
        rows = []
        keys = ["concept", "coef"] if kind == "multi" else ["kind", "concept", "variant", "coef"]
        for key, g in part.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            rows.append(
                {
                    **dict(zip(keys, key)),
                    **_metrics(g, _reference(frame, g["concept"].iloc[0]), n_boot, seed),
                }
            )
        if rows:
            tables[name] = pd.DataFrame(rows)
    return tables
