"""Pooled (augmented + diminished) η0 curve of each plan's sweep folder: hits with Wilson 95%,
adherence with a bootstrap 95% over clips, via the ablation report's own cell_row.

    .venv/bin/python docs/results/ablations-testbed/per-clip-gates/pooled_curves.py \
        default=runs/default optimum=runs/optimum top3=runs/top3 gate09=runs/gate09 --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from musicrfm.experiments.ablations.report import load_sweep
from musicrfm.experiments.ablations.tables import cell_row
from musicrfm.experiments.report.tables import write_table


def pooled_curve(plan: str, folder: str, targets: list[str]) -> pd.DataFrame:
    """One row per main-grid η0 (and unsteered as η0 = 0) of one plan, pooled over targets."""
    _, frame = load_sweep(folder)
    frame = frame[frame["target"].isin(targets)]
    main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
    cells = [(0.0, frame[frame["kind"] == "unsteered"])] + list(main.groupby("coef", sort=True))
    return pd.DataFrame([{"plan": plan, "coef": float(c), **cell_row(g)} for c, g in cells])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("plans", nargs="+", help="name=sweep_folder")
    ap.add_argument("--targets", nargs="+", default=["augmented", "diminished"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    parts = [pooled_curve(*p.split("=", 1), args.targets) for p in args.plans]
    write_table(pd.concat(parts, ignore_index=True), Path(args.out), "pooled_curves",
                title="Pooled hit rate and adherence per η0 (augmented + diminished)")  # fmt: skip


if __name__ == "__main__":
    main()
