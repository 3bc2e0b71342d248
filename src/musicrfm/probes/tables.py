"""The classification table (paper Table 1 format) and per-layer score plots: RFM vs baselines.

``compare_probes`` scores, per layer, the RFM probes of a ``TrainResult`` and the baseline probes
on exactly the same rows and splits: multiclass accuracy for categorical concepts (the RFM
multiclass probe), R^2 for regression concepts (tempo). ``table_from_scores`` picks each method's
layer by validation score and reports its test score, one column per concept plus "Avg.", as in
the paper; ``write_table`` writes Markdown and CSV; ``plot_layer_scores`` draws the per-layer
curves with matplotlib's Agg backend.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicrfm.capture.features import FeatureSet
from musicrfm.probes.baselines import METHODS, run_baselines
from musicrfm.probes.splits import SPLITS
from musicrfm.probes.training import TrainResult

log = logging.getLogger(__name__)

METHOD_LABELS = {
    "rfm": "MusicRFM (RFM probe)",
    "ridge": "Linear (ridge) probe",
    "logistic": "Logistic probe",
    "mean_difference": "Difference of means",
    "mlp": "2-layer MLP probe",
}


def compare_probes(
    features: FeatureSet,
    result: TrainResult,
    *,
    methods: Sequence[str] = METHODS,
    layers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Per-layer validation/test scores of the RFM and each baseline (long format).

    Columns: concept, layer, method, metric, val, test.
    """
    d = result.directions
    concept = d.concept
    task = result.task
    layers = list(d.layers if layers is None else layers)
    recs = []
    if task == "regression":
        rows = {s: np.flatnonzero(result.splits == s) for s in SPLITS}
        y = result.labels.astype(np.float64)
        metric, btask, n_classes = "r2", "regression", None
        for layer in layers:
            li = d.layers.index(layer)
            recs.append(
                (
                    concept,
                    layer,
                    "rfm",
                    metric,
                    float(d.scores[li, 0]),
                    float(result.test_scores[li, 0]),
                )
            )
    else:
        rows = result.multiclass_rows or {s: np.flatnonzero(result.splits == s) for s in SPLITS}
        y = result.labels.astype(np.int64)
        n_classes = len(d.meta.get("classes", d.classes))
        metric, btask = "accuracy", "multiclass"
        for layer in layers:
            sc = result.multiclass_scores.get(layer)
            if sc is not None:
                recs.append(
                    (concept, layer, "rfm", metric, sc["val_accuracy"], sc["test_accuracy"])
                )
    for layer in layers:
        X = features.features[layer]
        parts = []
        for s in SPLITS:
            parts += [X[torch.as_tensor(rows[s])].numpy(), y[rows[s]]]
        res = run_baselines(*parts, task=btask, n_classes=n_classes, methods=methods)
        for name, r in res.items():
            recs.append((concept, layer, name, metric, r.val_score, r.test_score))
        log.info(
            "baselines for %s layer %d: %s",
            concept,
            layer,
            {k: round(v.test_score, 3) for k, v in res.items()},
        )
    return pd.DataFrame(recs, columns=["concept", "layer", "method", "metric", "val", "test"])


def table_from_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 1: rows = methods, columns = concepts (+ Avg.); each cell is the test score at
    the layer with the best validation score for that method and concept."""
    best = scores.loc[scores.groupby(["concept", "method"])["val"].idxmax()]
    table = best.pivot(index="method", columns="concept", values="test")
    order = [m for m in ["rfm", *METHODS] if m in table.index]
    table = table.loc[order]
    table["Avg."] = table.mean(axis=1, skipna=True)
    table.index = [METHOD_LABELS.get(m, m) for m in table.index]
    table.index.name = "Model"
    return table


def to_markdown(table: pd.DataFrame, *, caption: str | None = None) -> str:
    cols = list(table.columns)
    lines = ["| Model | " + " | ".join(map(str, cols)) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        best = {c: table[c].max() for c in cols}
        cells = []
        for c in cols:
            v = row[c]
            if pd.isna(v):
                cells.append("–")
            else:
                txt = f"{v:.3f}"
                cells.append(f"**{txt}**" if v == best[c] and len(table) > 1 else txt)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if caption:
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def write_table(
    scores: pd.DataFrame, out_dir: str | Path, *, stem: str = "classification_table"
) -> dict[str, Path]:
    """Write <stem>.md, <stem>.csv (the table) and layer_scores.csv (all per-layer scores)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = table_from_scores(scores)
    metrics = ", ".join(f"{c}: {m}" for c, m in scores.groupby("concept")["metric"].first().items())
    caption = (
        "Test score at each method's best layer by validation score "
        f"({metrics}). Bold: best per column."
    )
    paths = {
        "markdown": out / f"{stem}.md",
        "csv": out / f"{stem}.csv",
        "layer_scores": out / "layer_scores.csv",
    }
    paths["markdown"].write_text(to_markdown(table, caption=caption))
    table.to_csv(paths["csv"], float_format="%.4f")
    scores.to_csv(paths["layer_scores"], index=False, float_format="%.4f")
    return paths


def plot_layer_scores(scores: pd.DataFrame, path: str | Path, *, split: str = "val") -> Path:
    """One panel per concept: score per layer, one line per method (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    concepts = list(dict.fromkeys(scores["concept"]))
    fig, axes = plt.subplots(1, len(concepts), figsize=(5.5 * len(concepts), 3.8), squeeze=False)
    for ax, concept in zip(axes[0], concepts):
        sub = scores[scores["concept"] == concept]
        for method, grp in sub.groupby("method", sort=False):
            grp = grp.sort_values("layer")
            ax.plot(
                grp["layer"], grp[split], marker="o", ms=3, label=METHOD_LABELS.get(method, method)
            )
        ax.set_title(f"{concept} ({sub['metric'].iloc[0]}, {split})")
        ax.set_xlabel("layer (0-based decoder block output)")
        ax.set_ylabel(sub["metric"].iloc[0])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_direction_scores(result: TrainResult, path: str | Path) -> Path:
    """Per-layer validation score of every direction probe (one line per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = result.directions
    fig, ax = plt.subplots(figsize=(7, 4))
    for ci, name in enumerate(d.classes):
        ax.plot(d.layers, d.scores[:, ci].numpy(), marker=".", lw=1, label=name)
    ax.plot(d.layers, d.scores.mean(1).numpy(), color="k", lw=2.5, label="mean")
    ax.set_xlabel("layer (0-based decoder block output)")
    ax.set_ylabel(d.meta.get("score_name", "score"))
    ax.set_title(f"{d.concept}: direction probes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
