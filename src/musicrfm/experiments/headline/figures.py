"""The headline's figures: grouped bars per pitch class, and hit rate against prompt adherence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# what one class of each headline concept is called: (a class, the classes' kind) -- the axis
# labels and titles say "clips detected as the target <class>"
CONCEPT_WORDS = {
    "notes": ("note", "pitch class"),
    "chords": ("chord quality", "chord quality"),
    "intervals": ("interval", "interval"),
    "scales": ("scale mode", "scale mode"),
    "progressions": ("progression", "chord progression"),
    "time_signatures": ("time signature", "time signature"),
    "tempo_bins": ("tempo bin", "tempo bin"),
}


def concept_words(concept: str) -> tuple[str, str]:
    """(a class, the classes' kind) of ``concept``: ("note", "pitch class") for notes; an
    unknown concept is named by itself, underscores as spaces."""
    word = concept.replace("_", " ")
    return CONCEPT_WORDS.get(concept, (word, word))


def plot_tradeoff(
    trade: pd.DataFrame, path: Path, gate: float, tolerance: float, concept: str = "notes"
) -> Path | None:
    """Hit rate against prompt adherence, one point per η0, with the issue's target region; the
    y-axis names ``concept``'s class (clips detected as the target note / chord quality / ...)."""
    if "adherence" not in trade:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for _, r in trade.iterrows():
        base = r["condition"] == "unsteered"
        ax.errorbar(
            r["adherence"], r["hit_rate"],
            xerr=[[r["adherence"] - r["adherence_ci_low"]], [r["adherence_ci_high"] - r["adherence"]]],
            yerr=[[r["hit_rate"] - r["hit_ci_low"]], [r["hit_ci_high"] - r["hit_rate"]]],
            fmt="s" if base else "o", color="0.4" if base else "tab:blue", capsize=2, lw=0.8,
        )  # fmt: skip
        ax.annotate("unsteered" if base else f"η0 {r['coef']:g}", (r["adherence"], r["hit_rate"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=7)  # fmt: skip
    base_adh = float(trade.loc[trade["condition"] == "unsteered", "adherence"].iloc[0])
    ax.axhline(gate, color="k", ls="--", lw=0.7)
    ax.axvline(base_adh - tolerance, color="k", ls=":", lw=0.7)
    ax.fill_between([base_adh - tolerance, 1.02], gate, 1.02, color="tab:green", alpha=0.1,
                    label="goal: hits >= gate, adherence within tolerance")  # fmt: skip
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("prompt adherence (timbre classifier hears the prompted family)")
    ax.set_ylabel(f"clips detected as the target {concept_words(concept)[0]}")
    ax.set_title("What steering strength buys and costs (pooled, 95% CIs)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_headline(table: pd.DataFrame, path: Path, gate: float, concept: str = "notes") -> Path:
    """Grouped bars per target class: baseline, direction (best η0) and controls, with 95% CIs."""
    word = concept_words(concept)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("baseline", "unsteered", "0.6")]
    series.append(("accuracy", f"{word[0]} direction (best η0)", "tab:blue"))
    colors = {"random": "tab:orange", "orthogonal": "tab:green", "flip": "tab:red"}
    series += [(k, f"{k} control", colors[k]) for k in colors if k in table]
    x = np.arange(len(table))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(table) + 2), 3.8))
    for j, (col, label, color) in enumerate(series):
        lo_col = "ci_low" if col == "accuracy" else f"{col}_ci_low"
        hi_col = "ci_high" if col == "accuracy" else f"{col}_ci_high"
        val = table[col].to_numpy(float)
        err = np.vstack([val - table[lo_col].to_numpy(float), table[hi_col].to_numpy(float) - val])
        ax.bar(x + (j - (len(series) - 1) / 2) * width, val, width, yerr=err, label=label,
               color=color, capsize=2, error_kw={"lw": 0.8})  # fmt: skip
    ax.axhline(gate, color="k", ls="--", lw=0.8, label=f"gate {gate:g}")
    ax.set_xticks(x, table["target"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"clips detected as the target {word[0]}")
    ax.set_title(f"Steering toward each {word[1]} (95% bootstrap CIs)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
