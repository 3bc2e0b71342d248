"""`musicrfm mini ablations`: the ablation report of finished sweep folders -- Tables 8, 9, 10
with Wilson intervals, the layer weights each variant steers with, and the paper's optimum
against the default plan at matched hit rate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.ablations.tables import ABLATIONS, ablation_table, matched_table

TITLE = "The paper's ablations and its optimum at matched hit rate"
# the variants of paper Tables 8 and 9 (issue 18), whose weights are listed even when not run
PAPER_VARIANTS = {
    "weighting": ("uniform", "linear", "exp:0.98", "exp:0.95", "exp:0.92"),
    "top_k": ("1", "2", "3", "4", "6"),
}
OPTIMUM = {"weighting": "exponential", "kappa": 0.95, "w0": 1.0, "gate": 0.3}  # paper §5.1


def load_sweep(folder: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """``sweep.json`` and the per-clip results of a finished (or partly finished) sweep."""
    from musicrfm.experiments.sweep.run import load_results

    folder = Path(folder)
    info_path = folder / "sweep.json"
    if not info_path.is_file():
        raise ConfigError(f"{folder} is not a sweep folder (no sweep.json); run `musicrfm sweep`")
    frame = load_results(folder)
    if frame.empty:
        raise ConfigError(f"{folder} has no finished conditions yet")
    frame["correct"] = frame["correct"].astype(bool)
    return json.loads(info_path.read_text()), frame


def _variant_options(kind: str, variant: str) -> dict[str, Any]:
    """The plan fields an ablation variant sets (as the sweep grid reads its config values)."""
    from musicrfm.steering.plan import parse_layers

    if kind == "top_k":
        return {"top_k": int(float(variant))}
    if kind == "gate":
        return {"gate": float(variant)}
    parsed = parse_layers(variant)
    parsed.pop("layers", None)
    return parsed


def weights_table(info: dict[str, Any], frame: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Per layer-weighting / top-K variant of the paper's tables or the sweep (and the default and
    optimum plans): the exact per-layer weights it steers with, compiled against ``model``, with
    the targets that share them (no clip is needed: these are the plan's own arrays). Weights come from
    the directions' per-layer validation scores min-max normalised, so when every layer scores
    the same every weighting is uniform, and top-K picks the first K layers."""
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.compile import compile_plan
    from musicrfm.steering.plan import SteeringPlan

    cfg = info.get("config") or {}
    rows = []
    for concept, spec in (cfg.get("concepts") or {}).items():
        cd = ConceptDirections.load(spec["directions"])
        base = dict(cfg.get("plan") or {})
        variants = [("default", "default plan", {})]
        for kind in ("weighting", "top_k"):
            seen = [*PAPER_VARIANTS[kind], *frame.loc[frame["kind"] == kind, "variant"].unique()]
            for v in dict.fromkeys(str(x) for x in seen):
                variants.append((kind, v, _variant_options(kind, v)))
        variants.append(("optimum", "exp:0.95 + gate 0.3", OPTIMUM))
        for kind, variant, opts in variants:
            groups: dict[tuple[float, ...], list[str]] = {}
            for target in spec["targets"]:
                plan = SteeringPlan.single(cd, target, 1.0, **{**base, **opts})
                w = compile_plan(plan, model, strict=False).weights[0]
                groups.setdefault(tuple(round(float(x), 4) for x in w), []).append(target)
            for w, targets in groups.items():
                rows.append(
                    {"concept": concept, "kind": kind, "variant": variant,
                     **{f"w_L{i}": x for i, x in enumerate(w)}, "targets": " ".join(targets)}
                )  # fmt: skip
    return pd.DataFrame(rows)


def load_sweeps(folders: Sequence[str | Path]) -> tuple[dict[str, Any], pd.DataFrame]:
    """Several sweep folders of one grid (run in parts) as one: the first folder's
    ``sweep.json``, every folder's rows, each unsteered clip once per target."""
    if not folders:
        raise ConfigError("give at least one sweep folder")
    parts = [load_sweep(f) for f in folders]
    frame = pd.concat([f for _, f in parts], ignore_index=True)
    unsteered = frame["kind"] == "unsteered"
    keep = ~unsteered | ~frame.duplicated(["kind", "target", "prompt", "seed"])
    return parts[0][0], frame[keep].reset_index(drop=True)


def only_targets(frame: pd.DataFrame, targets: Sequence[str] | None, where: str) -> pd.DataFrame:
    """The rows of ``targets`` (None: all): hit rates are pooled over the targets kept, so that
    a target no plan can steer does not cap every pooled rate below the compared rates."""
    if targets is None:
        return frame
    missing = sorted(set(targets) - set(frame["target"].astype(str)))
    if missing:
        raise ConfigError(f"--targets {missing} are not targets of {where}; it has "
                          f"{sorted(set(frame['target'].astype(str)))}")  # fmt: skip
    return frame[frame["target"].astype(str).isin(set(targets))].reset_index(drop=True)


def per_target_table(curves: dict[str, pd.DataFrame], *, n_boot: int = 2000) -> pd.DataFrame:
    """Hits per target on each plan's main-grid η0 (and unsteered), with Wilson intervals: which
    targets steer at all, before any pooling."""
    from musicrfm.experiments.ablations.tables import cell_row

    rows = []
    for name, frame in curves.items():
        main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
        cells = [("unsteered", 0.0, frame[frame["kind"] == "unsteered"])]
        cells += [(name, float(c), g) for c, g in main.groupby("coef", sort=True)]
        for plan, coef, g in cells:
            if plan == "unsteered" and name != next(iter(curves)):
                continue  # one unsteered block: the plans share their prompts and seeds
            for target, t in g.groupby("target", sort=True):
                r = cell_row(t, n_boot=n_boot)
                rows.append({"plan": plan, "coef": coef, "target": str(target),
                             **{k: r[k] for k in ("n", "hits", "hit_rate", "hit_ci_low",
                                                  "hit_ci_high")},
                             "adherence": r.get("adherence", np.nan)})  # fmt: skip
    return pd.DataFrame(rows)


def write_ablations_report(
    sweep: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    optimum: str | Path | None = None,
    rates: Sequence[float] = (0.8, 0.9),
    model: Any = None,
    targets: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    command: str | None = None,
) -> dict[str, Any]:
    """Write ``ablations.json``, ``ablations.md``, ``table8/9/10``, ``weights``, ``per_target``
    and ``matched`` (CSV + Markdown) and ``matched.png`` into ``out``; returns the JSON record.

    ``sweep``: the ablation sweep folder(s) (the main grid is the default plan's η0 curve; parts
    of one grid run into several folders are read as one, :func:`load_sweeps`); ``optimum``: a
    sweep of the optimum plan over its own η0 grid, same prompts and seeds; ``model``: a loaded
    adapter to compile the layer weights against (None: no weights table); ``targets``: pool
    the hit rates of the tables over these targets only (None: every target; the per-target
    table always has them all)."""
    from musicrfm.experiments.report.tables import to_markdown, write_table

    if not rates or any(not 0 < r <= 1 for r in rates):
        raise ConfigError(f"--rates must be hit rates in (0, 1], got {list(rates)}")
    folders = [sweep] if isinstance(sweep, (str, Path)) else list(sweep)
    info, every_target = load_sweeps(folders)
    frame = only_targets(every_target, targets, "the sweep")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "title": TITLE,
        "sweep": [str(f) for f in folders],
        "optimum": None if optimum is None else str(optimum),
        "command": command,
        "config": info.get("config"),
        "targets": None if targets is None else list(targets),
        "layer_scores": {k: v.get("layer_scores") for k, v in (info.get("concepts") or {}).items()},
        "tables": {},
    }
    md = [
        f"# {TITLE}\n",
        "Sweep "
        + ", ".join(f"`{f}`" for f in folders)
        + (f"; optimum `{optimum}`" if optimum else "")
        + ".",
    ]
    detector = ", ".join(sorted(set(frame["detector"].astype(str)))) if "detector" in frame else ""
    pooled = "every target" if targets is None else "the targets " + ", ".join(targets)
    md.append(
        f"Hit rate: the {detector or 'concept'} detector's clip label is the target, pooled over "
        f"{pooled}, Wilson 95%; adherence: the instrument judge hears the prompted family, "
        "bootstrap 95% over clips.\n"
    )
    for kind, (name, title) in ABLATIONS.items():
        table = ablation_table(frame, kind, n_boot=n_boot, seed=seed)
        if table.empty:
            continue
        write_table(table, out, name, title=title)
        record["tables"][name] = table.to_dict(orient="records")
        md += [f"## {title}\n", to_markdown(table)]
    if model is not None:
        weights = weights_table(info, frame, model)
        write_table(weights, out, "weights", title="Layer weights each variant steers with")
        record["tables"]["weights"] = weights.to_dict(orient="records")
        md += ["## Layer weights each variant steers with\n", to_markdown(weights)]
    curves = {"default": every_target}
    opt_frame = None
    if optimum is not None:
        opt_info, opt_every = load_sweep(optimum)
        curves["optimum"] = opt_every
        opt_frame = only_targets(opt_every, targets, "the optimum sweep")
        record["optimum_config"] = opt_info.get("config")
    if not every_target[every_target["kind"] == "main"].empty:
        per_target = per_target_table(curves, n_boot=n_boot)
        write_table(per_target, out, "per_target", title="Hits per target on the η0 curves")
        record["tables"]["per_target"] = per_target.to_dict(orient="records")
        md += ["## Hits per target on the η0 curves (every target)\n", to_markdown(per_target)]
    if opt_frame is not None:
        matched = matched_table(
            {"default": frame, "optimum": opt_frame}, list(rates), reference="default",
            n_boot=n_boot, seed=seed,
        )  # fmt: skip
        write_table(matched, out, "matched", title="Adherence at matched hit rate")
        record["tables"]["matched"] = matched.to_dict(orient="records")
        record["verdict"] = matched_verdict(matched, list(rates))
        md += ["## Adherence at matched hit rate\n", to_markdown(matched), record["verdict"] + "\n"]
        from musicrfm.experiments.ablations.figures import plot_matched

        plot_matched({"default": frame, "optimum": opt_frame}, matched, out / "matched.png")
    (out / "ablations.json").write_text(
        json.dumps(_plain(record), indent=2, default=_json_default, allow_nan=False)
    )
    (out / "ablations.md").write_text("\n".join(md))
    return record


def matched_verdict(matched: pd.DataFrame, rates: Sequence[float]) -> str:
    """Which plan keeps adherence better at each matched hit rate: a difference counts only when
    its whole 95% interval is on one side of zero."""
    parts = []
    diffs = matched[matched["plan"].str.contains(" - ")]
    for rate in rates:
        d = diffs[diffs["hit_rate"] == rate]
        if d.empty or not np.isfinite(d["adherence"].iloc[0]):
            parts.append(f"at hit rate {rate:g} one of the plans does not reach it on its grid")
            continue
        r = d.iloc[0]
        side = (
            "the optimum keeps adherence better"
            if r["adh_ci_low"] > 0
            else "the default keeps adherence better"
            if r["adh_ci_high"] < 0
            else "no difference beyond the CI"
        )
        parts.append(
            f"at hit rate {rate:g}: optimum - default {r['adherence']:+.3f} "
            f"[{r['adh_ci_low']:+.3f}, {r['adh_ci_high']:+.3f}], {side}"
        )
    return "Verdict: " + "; ".join(parts) + "."


def _plain(o: Any) -> Any:
    """``o`` with NaN / inf as None (strict JSON: a missing value, such as the η0 of a difference
    row or a rate a plan does not reach)."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def _json_default(o: Any) -> Any:
    return str(o)
