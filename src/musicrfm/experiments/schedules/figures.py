"""The report's figure: φ(t) and the mean detector probability of the target, per schedule,
beside the unsteered clips, and the crossfade's two classes over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_schedules(record: dict[str, Any], path: Path) -> Path:
    """One panel per schedule (φ, mean target probability ± sd, unsteered mean) and one for the
    crossfade (mean probability of A and of B); saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = record["traces"]
    t = np.asarray(tr["times"])
    names = [e["schedule"] for e in record["schedules"]]
    panels = len(names) + (1 if "crossfade" in tr else 0)
    cols = 3
    rows = max(1, -(-panels // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.8 * rows), squeeze=False)
    target = record["target"]
    for ax, e in zip(axes.flat, record["schedules"]):
        c = tr[e["schedule"]]
        mean, sd = np.asarray(c["mean"]), np.asarray(c["sd"])
        ax.plot(t, c["phi"], "k--", lw=1.2, label="φ(t)")
        ax.plot(t, mean, color="tab:blue", lw=1.5, label=f"P({target}), steered")
        ax.fill_between(t, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1),
                        color="tab:blue", alpha=0.15)  # fmt: skip
        if "unsteered" in tr:
            ax.plot(
                t, tr["unsteered"]["mean"], color="0.55", lw=1.0, label=f"P({target}), unsteered"
            )
        ax.set_title(f"{e['schedule']}: r = {e['r_mean']:.2f} [{e['r_ci_low']:.2f}, "
                     f"{e['r_ci_high']:.2f}], n={e['n']}", fontsize=8)  # fmt: skip
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6, loc="best")
    used = len(names)
    if "crossfade" in tr:
        ax = axes.flat[used]
        xf = record["crossfade"]
        ax.plot(t, tr["crossfade"]["a"], color="tab:orange", label=f"P({xf['a']})")
        ax.plot(t, tr["crossfade"]["b"], color="tab:green", label=f"P({xf['b']})")
        xc = tr["crossfade"]
        if "phi_b" in xc:
            ax.plot(t, xc["phi_a"], "k--", lw=0.8, label="φ_A, φ_B")
            ax.plot(t, xc["phi_b"], "k--", lw=0.8)
        ax.set_title(f"crossfade {xf['a']}->{xf['b']}: starts {xf['starts_on_a']:.2f}, "
                     f"ends {xf['ends_on_b']:.2f} (n={xf['n']})", fontsize=8)  # fmt: skip
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
        used += 1
    for ax in list(axes.flat)[used:]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
