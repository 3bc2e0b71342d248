"""Hits per gate mask of a sweep's gated cells (gate p < 1).

The engine draws a gated plan's per-step Bernoulli mask once per generate batch, seeded with
the batch's first seed (``gate_seed`` in each clip's sidecar), so the clips of one batch -- and
the clips of every prompt whose batch starts with the same seed -- share one mask. A cell of
48 clips with batch 4 and seeds 4-15 has 3 masks, not 48: its hit rate is clustered by mask.
This prints, per gated cell and target, the hits under each mask and a cluster-bootstrap 95%
interval of the pooled hit rate (masks resampled, not clips).

    .venv/bin/python experiments/ablations/gate_masks.py runs/ablations-testbed-optimum \
        --targets augmented diminished
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def gate_seeds(folder: Path, frame: pd.DataFrame) -> pd.Series:
    """Each row's gate seed, read from its clip's JSON sidecar (None for ungated clips)."""

    def one(path: str) -> int | None:
        meta = json.loads((folder / path).with_suffix(".json").read_text())
        return (meta.get("recipe") or meta).get("gate_seed")

    return frame["audio_path"].map(one)


def cluster_ci(hits: pd.Series, clusters: pd.Series, n_boot: int = 2000, seed: int = 0):
    """Percentile 95% interval of the pooled hit rate, resampling whole clusters."""
    groups = [g.to_numpy(float) for _, g in hits.groupby(clusters)]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        draws.append(np.concatenate([groups[i] for i in pick]).mean())
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def main() -> None:
    from musicrfm.experiments.sweep.run import load_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--targets", nargs="+", default=None, help="pool over these targets")
    args = parser.parse_args()
    folder = Path(args.folder)
    frame = load_results(folder)
    gated = frame[pd.to_numeric(frame.get("plan_gate"), errors="coerce") < 1.0].copy()
    if args.targets:
        gated = gated[gated["target"].isin(args.targets)]
    if gated.empty:
        print("no gated cells")
        return
    gated["gate_seed"] = gate_seeds(folder, gated)
    gated["correct"] = gated["correct"].astype(bool)
    for (kind, variant, coef), cell in gated.groupby(["kind", "variant", "coef"], sort=True):
        per = cell.groupby(["target", "gate_seed"])["correct"].agg(["sum", "count"])
        text = "; ".join(
            f"{t}: "
            + " ".join(f"s{int(s)} {int(r['sum'])}/{int(r['count'])}" for s, r in g.iterrows())
            for t, g in per.reset_index("target").groupby("target")
        )
        low, high = cluster_ci(cell["correct"], cell["gate_seed"])
        masks = cell["gate_seed"].nunique()
        print(
            f"{kind} {variant} η0 {coef:g}: pooled {cell['correct'].mean():.3f} "
            f"[{low:.3f}, {high:.3f}] over {masks} masks, n={len(cell)} | {text}"
        )


if __name__ == "__main__":
    main()
