"""The table itself: the cells picked by validation, their intervals, the layers behind them,
and the paper's rows in the same layout."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from musicrfm.experiments.table1.config import (
    CONCEPT_ORDER,
    PAPER_TABLE1,
    POOLINGS,
    ROW_LABELS,
    ROWS,
)


def build_table1(scores: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: one row per ROWS entry present, one column per concept in the
    paper's order, then Avg. (mean over the concepts a row has). Each cell is the method's test
    score at its best validation layer (``table_from_scores``, applied per pooling)."""
    from musicrfm.probes.tables import METHOD_LABELS, table_from_scores

    scores = scores.reset_index(drop=True)  # the selection reads index labels
    by_pooling = {
        p: table_from_scores(scores[scores["pooling"] == p].drop(columns="pooling"))
        for p in POOLINGS
        if (scores["pooling"] == p).any()
    }
    picked = {}
    for key, label in ROWS:
        pooling, method = ("last", "rfm") if key == "rfm_last" else ("mean", key)
        method = "rfm" if key == "rfm_mean" else method  # compare_probes' name for the RFM
        part = by_pooling.get(pooling)
        if part is not None and METHOD_LABELS[method] in part.index:
            picked[label] = part.loc[METHOD_LABELS[method]]
    table = pd.DataFrame(picked).T
    columns = [c for c in CONCEPT_ORDER if c in table.columns]
    table = table[columns].astype(float)
    table["Avg."] = table.mean(axis=1, skipna=True)
    table.index.name = "Model"
    return table


def accuracy_intervals(
    table: pd.DataFrame, n_test: dict[str, int]
) -> dict[str, dict[str, list[float]]]:
    """Wilson 95% interval of every accuracy cell (k = accuracy x n test clips): at the sizes a
    CPU affords, one test clip moves a cell by 1/n, and this says which differences are real.
    Tempo (R²) and Avg. cells have none."""
    from musicrfm.evaluation.metrics.stats import wilson_interval

    out: dict[str, dict[str, list[float]]] = {}
    for row, vals in table.iterrows():
        for concept, v in vals.items():
            n = n_test.get(str(concept))
            if concept in ("tempos", "Avg.") or not n or pd.isna(v):
                continue
            e = wilson_interval(int(round(float(v) * n)), n)
            out.setdefault(str(row), {})[str(concept)] = [round(e.low, 3), round(e.high, 3)]
    return out


def paper_table(columns: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 1 rows in our layout, restricted to ``columns`` (Avg. is the paper's
    own, over all seven concepts)."""
    names = [*CONCEPT_ORDER, "Avg."]
    frame = pd.DataFrame({ROW_LABELS[k]: dict(zip(names, v)) for k, v in PAPER_TABLE1.items()}).T
    frame.index.name = "Model"
    return frame[[c for c in columns if c in frame.columns]]


def chosen_layers(scores: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{row label: {concept: layer}}: the layer whose validation score picked each cell (the
    rule of ``table_from_scores``: the first layer with the highest validation score)."""
    out: dict[str, dict[str, int]] = {}
    scores = scores.reset_index(drop=True)
    for (pooling, concept, method), grp in scores.groupby(["pooling", "concept", "method"]):
        layer = int(grp.loc[grp["val"].idxmax(), "layer"])
        out.setdefault(row_label(pooling, method), {})[concept] = layer
    return out


def table_records(table: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {
        str(row): {c: (None if pd.isna(v) else round(float(v), 4)) for c, v in vals.items()}
        for row, vals in table.iterrows()
    }


def row_label(pooling: str, method: str) -> str:
    if method == "rfm":
        return ROW_LABELS["rfm_last" if pooling == "last" else "rfm_mean"]
    return ROW_LABELS.get(method, method)
