"""The matched-hit-rate figure: hit rate and adherence against η0 for each plan, with the η0
where each reaches the compared hit rates marked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from musicrfm.experiments.ablations.tables import curve_cells


def plot_matched(curves: Mapping[str, pd.DataFrame], matched: pd.DataFrame, path: Path) -> Path:
    """Two panels (hit rate, adherence vs relative η0), one line per plan, the matched points
    as markers with their adherence intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_hit, ax_adh) = plt.subplots(1, 2, figsize=(10, 4))
    for (name, frame), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
        cells = curve_cells(frame)
        coefs = [c for c, _, _ in cells]
        ax_hit.plot(coefs, [h.mean() for _, h, _ in cells], "o-", color=color, label=name)
        ax_adh.plot(coefs, [np.nanmean(v) for _, _, v in cells], "o-", color=color, label=name)
        for _, r in matched[matched["plan"] == name].iterrows():
            if np.isfinite(r["coef_at_rate"]):
                ax_hit.plot(r["coef_at_rate"], r["hit_rate"], "x", color=color, ms=9)
                err = [[r["adherence"] - r["adh_ci_low"]], [r["adh_ci_high"] - r["adherence"]]]
                ax_adh.errorbar(r["coef_at_rate"], r["adherence"], yerr=err, fmt="x",
                                color=color, ms=9, capsize=3)  # fmt: skip
    ax_hit.set(xlabel="η0 (× median activation norm)", ylabel="hit rate (pooled)", ylim=(0, 1.02))
    ax_adh.set(xlabel="η0 (× median activation norm)", ylabel="adherence (instrument judge)")
    ax_hit.set_title("hit rate; × = matched rates")
    ax_adh.set_title("adherence; × = at matched rate (95% CI)")
    for ax in (ax_hit, ax_adh):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
