"""Tables from a results table (one row per clip): accuracy with bootstrap CIs, the reference
condition minus each control, the specificity sentence, and CSV + Markdown output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.metrics import bootstrap_difference, grouped_accuracy

REQUIRED = ("condition", "concept", "target", "coef", "label")


def with_correct(
    results: pd.DataFrame, *, tempo_factors: tuple[float, ...] = det.OCTAVE_FACTORS
) -> pd.DataFrame:
    """A copy of ``results`` with a boolean ``correct`` column (kept if already present)."""
    missing = [c for c in REQUIRED if c not in results.columns]
    if missing:
        raise ConfigError(f"results table lacks column(s): {', '.join(missing)}")
    if results.empty:
        raise ConfigError("results table is empty: nothing to report")
    out = results.copy()
    if "correct" not in out.columns:

        def hit(row: pd.Series) -> bool:
            options = dict(det.get_detector(row["concept"]).score_options)
            if "factors" in options:
                options["factors"] = tempo_factors
            return det.label_matches(row["concept"], str(row["label"]), row["target"], **options)

        out["correct"] = out.apply(hit, axis=1)
    out["correct"] = out["correct"].astype(bool)
    return out


def accuracy_table(
    results: pd.DataFrame,
    by: Sequence[str] = ("concept", "condition", "coef"),
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Target accuracy with bootstrap 95% CI and n per group (default concept x condition x coef)."""
    frame = with_correct(results)
    table = grouped_accuracy(frame, list(by), n_boot=n_boot, seed=seed)
    if "confidence" in frame.columns:
        conf = frame.groupby(list(by), dropna=False)["confidence"].mean().rename("mean_confidence")
        table = table.merge(conf.reset_index(), on=list(by), how="left")
    return table


def compare_conditions(
    results: pd.DataFrame,
    *,
    reference: str = "concept",
    by: Sequence[str] = ("concept", "coef"),
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy of ``reference`` minus each other condition, per group, with a bootstrap 95% CI.

    Both arms are resampled independently (seeded). ``specific`` is True where the whole interval
    is above zero: the effect exceeds what that control achieves at the same settings.
    """
    frame = with_correct(results)
    if reference not in set(frame["condition"]):
        raise ConfigError(
            f"no rows with condition {reference!r}; conditions: {sorted(set(frame['condition']))}"
        )
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ref = group.loc[group["condition"] == reference, "correct"].to_numpy(float)
        if ref.size == 0:
            continue
        for control, cg in group[group["condition"] != reference].groupby("condition"):
            ctl = cg["correct"].to_numpy(float)
            diff = bootstrap_difference(ref, ctl, n_boot=n_boot, rng=rng)
            rows.append(
                {
                    **dict(zip(by, key)),
                    "control": control,
                    "difference": diff.value,
                    "ci_low": diff.low,
                    "ci_high": diff.high,
                    "n_reference": ref.size,
                    "n_control": ctl.size,
                    "specific": bool(diff.low > 0),
                }
            )
    return pd.DataFrame(rows)


def specificity_statement(comparison: pd.DataFrame, *, reference: str = "concept") -> str:
    """One sentence for the report on whether the effect is specific to ``reference``."""
    if comparison.empty:
        return (
            f"No controls were run alongside the {reference} direction, so specificity is untested."
        )
    steered = comparison[comparison["coef"] != 0] if "coef" in comparison.columns else comparison
    steered = steered if not steered.empty else comparison
    beaten = sorted(set(steered.loc[steered["specific"], "control"]))
    not_beaten = sorted(set(steered["control"]) - set(beaten))
    if not not_beaten:
        return (
            f"The effect is specific to the {reference} direction: its accuracy exceeds every control "
            f"({', '.join(beaten)}) with a 95% bootstrap interval above zero at some strength."
        )
    return (
        f"The effect is NOT shown to be specific to the {reference} direction: it never beats "
        f"{', '.join(not_beaten)} with a 95% interval above zero"
        + (f" (it does beat {', '.join(beaten)})." if beaten else ".")
    )


def to_markdown(frame: pd.DataFrame, *, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append("" if np.isnan(v) else format(float(v), floatfmt))
            elif v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append("")
            else:
                cells.append(str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame, out_dir: str | Path, name: str, *, title: str | None = None
) -> tuple[Path, Path]:
    """Write ``name.csv`` and ``name.md`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    frame.to_csv(csv_path, index=False)
    md_path.write_text((f"# {title}\n\n" if title else "") + to_markdown(frame))
    return csv_path, md_path
