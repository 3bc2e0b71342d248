"""Tables of the ablation report: one row per plan variant (hit rate with its Wilson 95% interval,
prompt adherence with a bootstrap interval, FD / MMD from the sweep's own tables) and the
matched-hit-rate comparison of two plans."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError

# the ablation kind of the sweep grid -> (paper table, the plan column its variants set)
ABLATIONS = {
    "weighting": ("table8", "Layer weighting (paper Table 8)"),
    "top_k": ("table9", "Top-K layer selection (paper Table 9)"),
    "gate": ("table10", "Injection probability p (paper Table 10)"),
}


def cell_row(group: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """n, hits, the hit rate with its Wilson 95% interval, and adherence (the instrument judge's
    match rate over the cell's distinct clips) with a percentile-bootstrap 95% interval."""
    from musicrfm.evaluation.metrics import bootstrap_ci, wilson_interval

    if group.empty:
        raise ConfigError("a table cell needs at least one clip")
    hits = group["correct"].astype(bool).to_numpy()
    rate = wilson_interval(int(hits.sum()), int(hits.size))
    row: dict[str, Any] = {
        "n": int(hits.size),
        "hits": int(hits.sum()),
        "hit_rate": rate.value,
        "hit_ci_low": rate.low,
        "hit_ci_high": rate.high,
    }
    if "instrument_match" in group.columns:
        # each clip once: the unsteered clips are every target's baseline, so they recur per target
        clips = group.drop_duplicates("audio_path") if "audio_path" in group.columns else group
        match = pd.to_numeric(clips["instrument_match"], errors="coerce").dropna().to_numpy()
        if match.size:
            adh = bootstrap_ci(match, n_boot=n_boot, seed=seed)
            row.update(adherence=adh.value, adh_ci_low=adh.low, adh_ci_high=adh.high)
            row["n_adherence"] = int(match.size)
    return row


def _fd_mmd(frame: pd.DataFrame, kind: str, n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """FD / MMD per variant of ``kind`` from the sweep's own paper tables."""
    from musicrfm.experiments.sweep.tables import paper_tables

    table = paper_tables(frame[frame["kind"].isin([kind, "unsteered"])], n_boot=n_boot, seed=seed)
    name = ABLATIONS[kind][0]
    if name not in table:
        return {}
    keep = [c for c in ("fd", "mmd") if c in table[name].columns]
    return {str(r["variant"]): {k: r[k] for k in keep} for _, r in table[name].iterrows()}


def ablation_table(
    frame: pd.DataFrame, kind: str, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row per variant of ablation ``kind`` (weighting / top_k / gate) at the sweep's
    ablation η0, then the default plan at that η0 (the main grid's cell: uniform, all layers,
    gate 1) and unsteered, for reference, both over the targets the variants have."""
    if kind not in ABLATIONS:
        raise ConfigError(f"unknown ablation {kind!r}; valid: {', '.join(ABLATIONS)}")
    part = frame[frame["kind"] == kind]
    if part.empty:
        return pd.DataFrame()
    coefs = sorted(part["coef"].unique())
    if len(coefs) != 1:
        raise ConfigError(f"the {kind} ablation ran at several η0 {coefs}; expected one")
    coef = float(coefs[0])
    extra = _fd_mmd(frame, kind, n_boot, seed)
    rows = []
    for variant, g in sorted(part.groupby("variant"), key=lambda vg: _order(vg[0])):
        rows.append(
            {"variant": str(variant), "coef": coef, **cell_row(g, n_boot=n_boot, seed=seed),
             **extra.get(str(variant), {})}
        )  # fmt: skip
    # the reference rows over the same targets as the variants (a part-finished ablation)
    frame = frame[frame["target"].isin(set(part["target"]))]
    main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
    default = main[np.isclose(main["coef"].astype(float), coef)]
    if not default.empty:
        rows.append(
            {"variant": "default plan (main grid)", "coef": coef,
             **cell_row(default, n_boot=n_boot, seed=seed)}
        )  # fmt: skip
    unsteered = frame[frame["kind"] == "unsteered"]
    if not unsteered.empty:
        rows.append(
            {"variant": "unsteered", "coef": 0.0, **cell_row(unsteered, n_boot=n_boot, seed=seed)}
        )
    return pd.DataFrame(rows)


def _order(variant: Any) -> tuple[int, float, str]:
    """Numeric variants (K, p) in numeric order, named ones (weightings) as given."""
    try:
        return (0, float(variant), "")
    except ValueError:
        return (1, 0.0, str(variant))


def curve_cells(frame: pd.DataFrame) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(η0, hits, adherence) per η0 of a sweep's main grid, ascending, with the unsteered clips as
    η0 = 0 (every target's hit judged on them, as each target's own baseline). An η0 that not
    every target has finished is left out: a rate pooled over other targets is another curve."""
    main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
    if main.empty:
        raise ConfigError("the sweep has no finished main-grid cells")
    targets = set(main["target"])
    complete = main.groupby("coef")["target"].agg(lambda t: set(t) == targets)
    main = main[main["coef"].isin(complete[complete].index)]
    cells = []
    unsteered = frame[(frame["kind"] == "unsteered") & frame["target"].isin(targets)]
    for coef, g in [(0.0, unsteered), *main.groupby("coef", sort=True)]:
        if g.empty:
            continue
        adh = pd.to_numeric(g.get("instrument_match"), errors="coerce")
        if adh is None or adh.isna().all():
            raise ConfigError("matched adherence needs the instrument judge's verdicts")
        cells.append((float(coef), g["correct"].astype(bool).to_numpy(float), adh.to_numpy(float)))
    return cells


def matched_table(
    curves: Mapping[str, pd.DataFrame],
    rates: Sequence[float],
    *,
    reference: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per plan and hit rate: the η0 where the plan's pooled hit rate first reaches the rate
    (linear between grid points) and the adherence interpolated there, each with a bootstrap 95%
    interval (clips resampled within each cell), and the share of draws that reach the rate. With
    ``reference``, one more row per rate and other plan: its adherence minus the reference's, the
    difference's interval from the two plans' independent draws."""
    from musicrfm.experiments.headline.matching import matched_bootstrap, percentile_ci

    rows, draws = [], {}
    for i, (name, frame) in enumerate(curves.items()):
        cells = curve_cells(frame)
        for j, rate in enumerate(rates):
            rng = np.random.default_rng([seed, i, j])
            at, value, c_draws, v_draws = matched_bootstrap(cells, rate, n_boot=n_boot, rng=rng)
            draws[name, rate] = v_draws
            c_lo, c_hi = percentile_ci(c_draws)
            a_lo, a_hi = percentile_ci(v_draws)
            rows.append(
                {"plan": name, "hit_rate": rate, "coef_at_rate": np.nan if at is None else at,
                 "coef_ci_low": c_lo, "coef_ci_high": c_hi, "adherence": value,
                 "adh_ci_low": a_lo, "adh_ci_high": a_hi,
                 "reached": float(np.isfinite(v_draws).mean()),
                 "grid": " ".join(f"{c:g}" for c, _, _ in cells)}
            )  # fmt: skip
    if reference is not None:
        if reference not in curves:
            raise ConfigError(f"reference plan {reference!r} is not one of {list(curves)}")
        for name in curves:
            if name == reference:
                continue
            for rate in rates:
                diff = draws[name, rate] - draws[reference, rate]
                point = _value(rows, name, rate) - _value(rows, reference, rate)
                lo, hi = percentile_ci(diff)
                rows.append(
                    {"plan": f"{name} - {reference}", "hit_rate": rate, "adherence": point,
                     "adh_ci_low": lo, "adh_ci_high": hi,
                     "reached": float(np.isfinite(diff).mean())}
                )  # fmt: skip
    return pd.DataFrame(rows)


def _value(rows: list[dict[str, Any]], plan: str, rate: float) -> float:
    return next(float(r["adherence"]) for r in rows if r["plan"] == plan and r["hit_rate"] == rate)
