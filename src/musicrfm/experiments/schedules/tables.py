"""The report's Markdown: one row per schedule, the crossfade, the verdict and the command."""

from __future__ import annotations

from typing import Any

import pandas as pd

from musicrfm.experiments.report.tables import to_markdown


def _ci(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def schedule_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per schedule: mean per-clip r [95% CI], r of the mean trace, the unsteered
    control's r with the same φ, the gate and the verdict."""
    rows = []
    for e in record["schedules"]:
        verdict = "no target" if e["passed"] is None else ("pass" if e["passed"] else "FAIL")
        if e["passed"] is False:
            verdict += f" (short by {e['shortfall']:.2f})"
        rows.append(
            {
                "schedule": e["schedule"],
                "r per clip, mean [95% CI]": _ci(e["r_mean"], e["r_ci_low"], e["r_ci_high"]),
                "n": e["n"],
                "undefined r": e["undefined"],
                "r of mean trace": e["r_of_mean_trace"],
                "unsteered r [95% CI]": _ci(
                    e.get("unsteered_r"), e.get("unsteered_ci_low"), e.get("unsteered_ci_high")
                ),
                "target": f">= {e['gate']:g}" if e["gate"] is not None else "",
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def crossfade_table(xf: dict[str, Any]) -> pd.DataFrame:
    """The crossfade's shares (k/n, Wilson 95% CI)."""
    if not xf.get("n"):
        return pd.DataFrame()
    n = xf["n"]

    def share(key: str) -> str:
        return f"{round(xf[key] * n)}/{n} = " + _ci(xf[key], xf[f"{key.split('_')[0]}_ci_low"],
                                                     xf[f"{key.split('_')[0]}_ci_high"])  # fmt: skip

    row = {
        "crossfade": f"{xf['a']} -> {xf['b']}",
        f"starts on {xf['a']} (first third)": share("starts_on_a"),
        f"ends on {xf['b']} (last third)": share("ends_on_b"),
        "both": share("both"),
    }
    ctl = xf.get("unsteered")
    if ctl:  # the same thirds of the unsteered clips
        m = ctl["n"]
        row["unsteered: starts / ends"] = (
            f"{round(ctl['starts_on_a'] * m)}/{m}, {round(ctl['ends_on_b'] * m)}/{m}"
        )
    row.update(target=f">= {xf['gate']:g} each", verdict="pass" if xf["passed"] else "FAIL")
    return pd.DataFrame([row])


def schedules_markdown(record: dict[str, Any]) -> str:
    """The whole ``schedules.md``."""
    s = record.get("settings", {})
    o = record["overall"]
    scale = s.get("activation_scale")
    scale = f"{scale:.2f}" if isinstance(scale, (int, float)) else "not recorded"
    concept = record.get("concept", "notes")
    what = {"notes": "note", "chords": "chord quality", "intervals": "interval"}.get(concept)
    heard = {"notes": "the note detector's per-window probability",
             "chords": "the chord detector's per-window probability",
             "intervals": "the share of windows where the interval detector hears"}.get(concept)  # fmt: skip
    lines = [
        "# Steering over time: the paper's schedules and a crossfade",
        "",
        f"Model `{s.get('model_id', '?')}`; {what} directions from the "
        f"`{s.get('train_set', 'synthetic')}` training set; target {what} {record['target']}; "
        "η0 at φ = 1: "
        f"{s.get('eta0', '?')} ({s.get('coef', '?')}; median activation norm {scale}). "
        f"r: Pearson correlation of {heard} of the target "
        "with φ(t), per clip over its sounding windows (an undefined r counts as 0), averaged over clips (bootstrap 95% CI).",
        *(
            [
                "",
                f"**Release {s['release']:g}**: beside the target at η0·φ(t), the same direction "
                f"negated at η0·{s['release']:g}·ρ(t) = {s.get('release_eta', '?')}·ρ(t) with "
                + (
                    "ρ = max φ(s≤t) - φ(t), how far φ has fallen from its peak (0 on a rise)"
                    if s.get("release_shape") == "drop"
                    else "ρ = 1 - φ(t)"
                )
                + ". This is not one of the paper's schedules; the crossfade has no release.",
            ]
            if s.get("release")
            else []
        ),
        "",
        to_markdown(schedule_table(record), floatfmt=".2f"),
        "",
        to_markdown(crossfade_table(record["crossfade"]), floatfmt=".2f")
        if record["crossfade"].get("n")
        else "No crossfade clips.",
        "",
        f"Monotone schedules reaching the target: {o['monotone_passed_count']}/"
        f"{o['monotone_count']}; crossfade: {'pass' if o['crossfade_passed'] else 'fail'}.",
        "",
        f"Command: `{s.get('command', '?')}`",
        "",
    ]
    return "\n".join(lines)
