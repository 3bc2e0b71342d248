"""The headline's numbers from per-clip results: one row per target, the pooled trade-off, the
verdict against the issue's criteria, and their Markdown."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation.metrics import Estimate
from musicrfm.experiments.headline.config import SAME_AS_BASELINE, HeadlineConfig, choose_coefs
from musicrfm.experiments.headline.matching import hits, prob_column

TABLE_COLUMNS = (
    "target", "baseline", "best_coef", "accuracy", "ci_low", "ci_high", "n", "adherence",
    "random", "orthogonal", "flip", "flip_prob_minus_baseline",
)  # fmt: skip


def headline_table(
    frame: pd.DataFrame, cfg: HeadlineConfig, *, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-target rows and the overall verdict from per-clip results.

    ``frame`` needs columns condition, target, coef, label and probs (the detector's class
    probabilities; NaN for a detector without a distribution);
    instrument_match is used when present.
    """
    base = frame[frame["condition"] == "unsteered"]
    if base.empty:
        raise ConfigError("no unsteered clips: the headline compares against them")
    base_probs = np.stack(base["probs"].to_numpy())
    has_adh = "instrument_match" in frame and frame["instrument_match"].notna().any()
    chosen = choose_coefs(frame, cfg)
    rows, best_clips = [], []
    flip_probs: list[np.ndarray] = []
    flip_classes: list[int] = []
    for target in cfg.targets:
        row, at_best = _target_row(frame, base, target, chosen[target], cfg, has_adh, seed)
        best_clips.append(at_best)
        flip = _control_columns(row, frame, base, base_probs, target, cfg, seed)
        if flip is not None:
            flip_probs.append(flip)
            flip_classes.append(prob_column(cfg.concept, target))
        rows.append(row)
    table = pd.DataFrame(rows)
    overall = _overall(table)
    if cfg.concept != "notes":  # the notes record stays as it was (the card reads it)
        overall["concept"] = cfg.concept
    if has_adh:
        overall.update(_adherence_change(pd.concat(best_clips), base, cfg, seed))
    if flip_probs:
        d = _pooled_difference(flip_probs, base_probs[:, flip_classes], seed=seed)
        overall.update(
            flip_prob_pooled_minus_baseline=d.value,
            flip_prob_pooled_ci=[d.low, d.high],
            flip_pooled_below_baseline=bool(d.high < 0),
        )
    overall["passed"] = _verdict(table, overall, cfg, has_adh)
    return table, overall


def _target_row(
    frame: pd.DataFrame,
    base: pd.DataFrame,
    target: str,
    best: float,
    cfg: HeadlineConfig,
    has_adh: bool,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """One target's baseline and direction columns (hit rate at every η0, the chosen η0's CI and
    adherence), and its steered clips at the chosen η0."""
    from musicrfm.evaluation.metrics import bootstrap_ci

    b = bootstrap_ci(hits(base, target, cfg.concept), seed=seed)
    row: dict[str, Any] = {
        "target": target,
        "baseline": b.value,
        "baseline_ci_low": b.low,
        "baseline_ci_high": b.high,
        "n_baseline": b.n,
    }
    steered = frame[(frame["condition"] == "concept") & (frame["target"] == target)]
    accs = {
        float(c): bootstrap_ci(hits(g, target, cfg.concept), seed=seed)
        for c, g in steered.groupby("coef")
    }
    for c, e in accs.items():
        row[f"acc_at_{c:g}"] = e.value
    at_best = steered[steered["coef"] == best]
    row.update(
        best_coef=best,
        accuracy=accs[best].value,
        ci_low=accs[best].low,
        ci_high=accs[best].high,
        n=accs[best].n,
        reaches_gate=bool(accs[best].value >= cfg.accuracy_gate),
    )
    if has_adh:
        row["adherence"] = float(at_best["instrument_match"].dropna().mean())
    return row, at_best


def _control_columns(
    row: dict[str, Any],
    frame: pd.DataFrame,
    base: pd.DataFrame,
    base_probs: np.ndarray,
    target: str,
    cfg: HeadlineConfig,
    seed: int,
) -> np.ndarray | None:
    """Add each control's columns to ``row``; returns the flip clips' target probabilities (None
    without a flip control)."""
    from musicrfm.evaluation.metrics import (
        bootstrap_ci,
        bootstrap_difference,
        proportion_difference,
    )

    ti = prob_column(cfg.concept, target)
    base_hits = hits(base, target, cfg.concept)
    b_low, b_high = row["baseline_ci_low"], row["baseline_ci_high"]
    flip = None
    for kind in cfg.controls:
        g = frame[(frame["condition"] == kind) & (frame["target"] == target)]
        if g.empty:
            continue
        e = bootstrap_ci(hits(g, target, cfg.concept), seed=seed)
        row.update(
            {kind: e.value, f"{kind}_ci_low": e.low, f"{kind}_ci_high": e.high, f"{kind}_n": e.n}
        )
        if kind in SAME_AS_BASELINE:
            # literal reading: the control's rate lies inside the baseline's 95% CI. The
            # verdict uses the sounder test that also counts the control's own sampling
            # noise: the 95% CI of (control - baseline) contains zero (Newcombe's score
            # interval; a bootstrap is degenerate when the control has no hits at all)
            d = proportion_difference(hits(g, target, cfg.concept), base_hits)
            row[f"{kind}_within_baseline_ci"] = bool(b_low <= e.value <= b_high)
            row[f"{kind}_consistent_with_baseline"] = bool(d.low <= 0 <= d.high)
        if kind == "flip" and ti is None:
            # no class probabilities (intervals): the flip is judged by its hit rate, which
            # must not exceed the baseline's (Newcombe's interval of the difference reported)
            d = proportion_difference(hits(g, target, cfg.concept), base_hits)
            row.update(
                flip_hits_minus_baseline=d.value,
                flip_hits_ci_low=d.low,
                flip_hits_ci_high=d.high,
                flip_hits_at_most_baseline=bool(d.value <= 0),
            )
        if kind == "flip" and ti is not None:
            d = bootstrap_difference(
                np.stack(g["probs"].to_numpy())[:, ti], base_probs[:, ti], seed=seed
            )
            row.update(
                flip_prob_minus_baseline=d.value,
                flip_prob_ci_low=d.low,
                flip_prob_ci_high=d.high,
                flip_lower_than_baseline=bool(d.value < 0),
                flip_below_baseline=bool(d.high < 0),
            )
            flip = np.stack(g["probs"].to_numpy())[:, ti]
    return flip


def _overall(table: pd.DataFrame) -> dict[str, Any]:
    return {
        "targets": len(table),
        "reach_gate": int(table["reaches_gate"].sum()),
        "all_reach_gate": bool(table["reaches_gate"].all()),
        "min_accuracy": float(table["accuracy"].min()),
        "mean_accuracy": float(table["accuracy"].mean()),
        "mean_baseline": float(table["baseline"].mean()),
    }


def _adherence_change(
    steered_all: pd.DataFrame, base: pd.DataFrame, cfg: HeadlineConfig, seed: int
) -> dict[str, Any]:
    """Prompt adherence steered (every target at its chosen η0) against unsteered."""
    from musicrfm.evaluation.metrics import bootstrap_difference

    # both arms cycle through the same prompts, so every prompt weighs the same in each
    d = bootstrap_difference(
        steered_all["instrument_match"].dropna().to_numpy(float),
        base["instrument_match"].dropna().to_numpy(float),
        seed=seed,
    )
    return {
        "adherence_unsteered": float(base["instrument_match"].mean()),
        "adherence_steered": float(steered_all["instrument_match"].mean()),
        "adherence_change": d.value,
        "adherence_change_ci": [d.low, d.high],
        "adherence_within_tolerance": bool(d.value >= -cfg.adherence_tolerance),
    }


def _verdict(
    table: pd.DataFrame, overall: dict[str, Any], cfg: HeadlineConfig, has_adh: bool
) -> bool:
    """Add the per-class counts of every control criterion to ``overall``; True when every
    criterion of the module docstring holds."""
    gated = []
    for kind in cfg.controls:
        same = kind in SAME_AS_BASELINE
        cols = (
            [f"{kind}_consistent_with_baseline", f"{kind}_within_baseline_ci"]
            if same
            else ["flip_lower_than_baseline", "flip_below_baseline"]
            if "flip_lower_than_baseline" in table
            else ["flip_hits_at_most_baseline"]
        )
        for col in cols:
            if col in table:
                overall[f"{col}_all"] = bool(table[col].all())
                overall[f"{col}_count"] = int(table[col].sum())
        if cols[0] in table:
            gated.append(overall[f"{cols[0]}_all"])
        if not same and "flip_pooled_below_baseline" in overall:
            gated.append(overall["flip_pooled_below_baseline"])
    checks = [overall["all_reach_gate"], *gated]
    if has_adh:
        checks.append(overall["adherence_within_tolerance"])
    return bool(all(checks))


def _pooled_difference(
    groups: list[np.ndarray], base: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> Estimate:
    """Mean over targets of (mean of the target's control clips - the baseline's mean for that
    target), with a percentile-bootstrap CI. ``base`` is (baseline clips, targets): every target
    is judged on the same baseline clips, so they are resampled together, not per target."""
    rng = np.random.default_rng(seed)
    value = float(np.mean([g.mean() for g in groups]) - base.mean(axis=0).mean())
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        flip = np.mean([g[rng.integers(0, g.size, g.size)].mean() for g in groups])
        diffs[i] = flip - base[rng.integers(0, len(base), len(base))].mean(axis=0).mean()
    low, high = np.quantile(diffs, [0.025, 0.975])
    return Estimate(value, float(low), float(high), sum(g.size for g in groups))


def tradeoff_table(frame: pd.DataFrame, *, seed: int = 0, concept: str = "notes") -> pd.DataFrame:
    """Hit rate and prompt adherence at each η0, pooled over the targets (and unsteered): what a
    stronger push buys in notes and costs in timbre, with 95% CIs."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.evaluation.metrics import bootstrap_ci

    has_adh = "instrument_match" in frame and frame["instrument_match"].notna().any()
    rows = []
    parts = [("unsteered", frame[frame["condition"] == "unsteered"])]
    steered = frame[frame["condition"] == "concept"]
    parts += [("direction", g) for _, g in steered.groupby("coef", sort=True)]
    for name, g in parts:
        hit = [
            float(det.label_matches(concept, str(label), target))
            for label, target in zip(g["label"], g["target"])
        ]
        h = bootstrap_ci(np.asarray(hit), seed=seed)
        row = {"condition": name, "coef": float(g["coef"].iloc[0]), "n": h.n,
               "hit_rate": h.value, "hit_ci_low": h.low, "hit_ci_high": h.high}  # fmt: skip
        if has_adh:
            a = bootstrap_ci(g["instrument_match"].dropna().to_numpy(float), seed=seed)
            row.update(adherence=a.value, adherence_ci_low=a.low, adherence_ci_high=a.high)
        rows.append(row)
    return pd.DataFrame(rows)


# what each per-class count in the verdict says, where its key alone would be ambiguous
COUNT_WORDS = {
    "random_consistent_with_baseline": "random consistent with baseline (Newcombe 95% CI)",
    "random_within_baseline_ci": "random within the baseline's 95% CI (literal reading)",
    "orthogonal_consistent_with_baseline": "orthogonal consistent with baseline (Newcombe 95% CI)",
    "orthogonal_within_baseline_ci": "orthogonal within the baseline's 95% CI (literal reading)",
    "flip_lower_than_baseline": "flip's mean target probability lower than baseline",
    "flip_below_baseline": "flip's target probability significantly below baseline (own 95% CI)",
    "flip_hits_at_most_baseline": "flip's hit rate at most the baseline's",
}


def _unit(overall: dict[str, Any]) -> str:
    """What the targets are called: pitch classes (notes), else e.g. 'chords classes'."""
    concept = overall.get("concept", "notes")
    return "pitch classes" if concept == "notes" else f"{concept} classes"


def verdict_lines(overall: dict[str, Any]) -> list[str]:
    """The verdict as Markdown bullets (the report and the mini model's card both show them)."""
    o = overall
    unit = _unit(o)
    lines = [
        f"- Reached the gate: {o['reach_gate']}/{o['targets']} {unit} "
        f"(min {o['min_accuracy']:.3f}, mean {o['mean_accuracy']:.3f}; "
        f"unsteered mean {o['mean_baseline']:.3f}).",
    ]
    if "adherence_change" in o:
        lo, hi = o["adherence_change_ci"]
        lines.append(
            f"- Prompt adherence: {o['adherence_unsteered']:.3f} unsteered -> "
            f"{o['adherence_steered']:.3f} steered (change {o['adherence_change']:+.3f}, "
            f"95% CI [{lo:+.3f}, {hi:+.3f}]); within tolerance: {o['adherence_within_tolerance']}."
        )
    if "flip_prob_pooled_minus_baseline" in o:
        lo, hi = o["flip_prob_pooled_ci"]
        lines.append(
            f"- Sign-flipped direction, target probability minus baseline pooled over the {unit}: "
            f"{o['flip_prob_pooled_minus_baseline']:+.3f} (95% CI [{lo:+.3f}, {hi:+.3f}]);"
            f" below baseline: {o['flip_pooled_below_baseline']}."
        )
    for key, value in o.items():
        if key.endswith("_count"):
            words = COUNT_WORDS.get(key[:-6], key[:-6].replace("_", " "))
            lines.append(f"- {words}: {value}/{o['targets']} {unit}.")
    lines.append(f"- All criteria met: {o['passed']}.")
    return lines


def headline_markdown(record: dict[str, Any], table_md: str, tradeoff_md: str = "") -> str:
    """A short human summary of the verdict, the per-target table, and the trade-off table."""
    s = record["settings"]
    lines = [
        f"# Steering headline: every {_unit(record['overall'])[:-2]}",
        "",
        f"Model `{s['model_id']}`, η0 grid {', '.join(f'{c:g}' for c in s['coefs'])} "
        f"(= {', '.join(f'{r:g}' for r in s['relative_coefs'])} x the median activation norm "
        f"{s['activation_scale']:.2f}); layers `{s['config'].get('layers', 'all')}`, guidance rows "
        f"`{s['config'].get('rows', 'both')}`, gate p {s['config'].get('gate', 1.0):g}; "
        f"command `{s['command']}`.",
        "",
        *verdict_lines(record["overall"]),
        "",
        table_md,
        "",
    ]
    if tradeoff_md:
        lines += [
            "## Hit rate and prompt adherence at each η0 (pooled over the targets)",
            "",
            tradeoff_md,
            "",
        ]
    return "\n".join(lines)
