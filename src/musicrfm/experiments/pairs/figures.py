"""The report's figure: per pair, each attribute's and the joint hit rate under every condition
(Wilson 95% bars), and the conflict case's outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COLOURS = {"first": "tab:blue", "second": "tab:orange", "joint": "tab:green"}


def _bars(record: dict[str, Any], p: dict[str, Any]) -> list[tuple[str, dict[str, tuple]]]:
    """(condition, {first/second/joint: (rate, low, high)}) in the order shown."""
    out = []
    for r in p["rows"]:
        out.append((r["condition"], {k: (r[f"{k}_rate"], r[f"{k}_ci_low"], r[f"{k}_ci_high"])
                                     for k in COLOURS}))  # fmt: skip
    for r in p["controls"]:
        out.append((f"joint-{r['control']}", {k: (r[f"{k}_rate"], r[f"{k}_ci_low"], r[f"{k}_ci_high"])
                                              for k in COLOURS}))  # fmt: skip
    return out


def plot_pairs(record: dict[str, Any], path: Path) -> Path:
    """One panel per pair and one for the conflict case; saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c1, c2 = record["concepts"]
    conflict = record.get("conflict")
    panels = len(record["pairs"]) + (1 if conflict else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.6), squeeze=False)
    gates = record.get("settings", {}).get("config", {})
    for ax, p in zip(axes.flat, record["pairs"]):
        bars = _bars(record, p)
        x = np.arange(len(bars))
        a, b = p["pair"].split("+")
        names = {"first": f"{c1} = {a}", "second": f"{c2} = {b}", "joint": "both"}
        for j, key in enumerate(COLOURS):
            v = np.array([bb[1][key] for bb in bars])
            ax.bar(x + (j - 1) * 0.27, v[:, 0], 0.27, color=COLOURS[key], label=names[key],
                   yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], capsize=2, ecolor="0.3",
                   error_kw={"lw": 0.8})  # fmt: skip
        ax.axhline(gates.get("joint_gate", 0.7), color="tab:green", ls=":", lw=0.9)
        ax.axhline(gates.get("alone_gate", 0.8), color="0.4", ls=":", lw=0.9)
        ax.set_xticks(x, [bb[0] for bb in bars], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1.28)
        ax.set_yticks(np.linspace(0, 1, 6))
        n = p["rows"][0]["joint_n"] if p["rows"] else 0
        v = p["verdict"]
        ax.set_title(f"{p['pair']}: joint {v['joint']:.2f} (n={n} a bar)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper center", ncol=3, frameon=False)
    if conflict:
        ax = axes.flat[len(record["pairs"])]
        a, b = conflict["a"], conflict["b"]
        keys = (a, b, f"{a} and {b}", "neither", "silent")
        colours = ("tab:blue", "tab:red", "tab:purple", "0.6", "0.85")
        rows = conflict["rows"]
        x = np.arange(len(rows))
        bottom = np.zeros(len(rows))
        for k, col in zip(keys, colours):
            v = np.array([r[k] for r in rows])
            ax.bar(x, v, 0.6, bottom=bottom, color=col, label=f"heard {k}")
            bottom += v
        ax.set_xticks(x, [r["condition"] for r in rows], rotation=20, ha="right", fontsize=7)
        ax.set_ylim(0, 1.28)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title(f"conflict: {a} and {b} at once (n={rows[0]['n']})", fontsize=9)
        ax.legend(fontsize=6, loc="upper center", ncol=3, frameon=False)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
