"""The report's Markdown: per pair the joint-success table, the cross-talk table, the controls,
adherence; the conflict case with the validator's words; the command."""

from __future__ import annotations

from typing import Any

import pandas as pd

from musicrfm.experiments.report.tables import to_markdown


def _share(rate: float, low: float, high: float, n: int) -> str:
    return f"{round(rate * n)}/{n} = {rate:.2f} [{low:.2f}, {high:.2f}]"


def _diff(d: float, low: float, high: float) -> str:
    return f"{d:+.2f} [{low:+.2f}, {high:+.2f}]"


def _share_of(r: dict[str, Any], key: str) -> str:
    """``{key}_rate``, ``_ci_low``, ``_ci_high``, ``_n`` of a row as k/n = rate [CI]."""
    return _share(r[f"{key}_rate"], r[f"{key}_ci_low"], r[f"{key}_ci_high"], r[f"{key}_n"])


def _diff_of(r: dict[str, Any], key: str) -> str:
    return _diff(r[f"{key}_diff"], r[f"{key}_diff_ci_low"], r[f"{key}_diff_ci_high"])


def joint_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per pair and condition: first, second and joint hit rates (Wilson 95%)."""
    c1, c2 = record["concepts"]
    rows = []
    for p in record["pairs"]:
        for r in p["rows"]:
            rows.append(
                {
                    "pair": p["pair"],
                    "condition": r["condition"],
                    f"{c1} right": _share_of(r, "first"),
                    f"{c2} right": _share_of(r, "second"),
                    "both right (joint)": _share_of(r, "joint"),
                }
            )
    return pd.DataFrame(rows)


def verdict_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per pair: each alone, joint, the rule (joint >= 0.7 where each alone >= 0.8)
    and the joint plan's adherence change."""
    cfg = record.get("settings", {}).get("config", {})
    jg, ag = cfg.get("joint_gate", 0.7), cfg.get("alone_gate", 0.8)
    rows = []
    for p in record["pairs"]:
        v = p["verdict"]
        if v["applies"]:
            verdict = "pass" if v["passed"] else f"FAIL (short by {v['shortfall']:.2f})"
            still = [f"{k} alone {v[f'{k}_alone']:.2f} vs unsteered {v[f'{k}_unsteered']:.2f}"
                     for k in ("first", "second") if v.get(f"{k}_moved") is False]  # fmt: skip
            if still:
                verdict += " -- trivially: " + "; ".join(still) + " (not moved by steering)"
        else:
            verdict = f"not applicable: an attribute alone is below {ag:g}"
            verdict += (
                " (joint " + ("reaches" if v["joint_reaches_gate"] else "below") + f" {jg:g})"
            )
        adh = p.get("adherence", {}).get("joint")
        cost = "n/a"
        if adh and adh.get("adherence_change") is not None:
            cost = f"{adh['adherence_steered']:.2f} - {adh['adherence_unsteered']:.2f} = "
            cost += _diff(adh["adherence_change"], *adh["adherence_change_ci"])
        rows.append(
            {
                "pair": p["pair"],
                "first alone": f"{v['first_alone']:.2f}",
                "second alone": f"{v['second_alone']:.2f}",
                "joint [95% CI]": f"{v['joint']:.2f} [{v['joint_ci'][0]:.2f}, {v['joint_ci'][1]:.2f}]",  # fmt: skip
                "verdict": verdict,
                "adherence joint - unsteered": cost,
            }
        )
    return pd.DataFrame(rows)


BPM_CHANGE = "median BPM steered vs unsteered, change [bootstrap 95% CI]"


def _bpm(b: dict[str, Any] | None) -> str:
    """``median vs unsteered median, relative change [CI]`` of a :func:`bpm_change` record."""
    if not b:
        return "no BPM reading"
    lo, hi = b["change_ci"]
    return (f"{b['median_bpm']:.0f} vs {b['unsteered_median_bpm']:.0f}, {b['change']:+.0%} "
            f"[{lo:+.0%}, {hi:+.0%}]")  # fmt: skip


def crosstalk_table(record: dict[str, Any]) -> pd.DataFrame:
    """Steering one attribute alone: the other attribute's target rate against unsteered; when
    the other is tempo, also its median BPM against unsteered."""
    tempo = "tempos" in record.get("concepts", [])
    rows = []
    for p in record["pairs"]:
        for r in p["crosstalk"]:
            rows.append(
                {
                    "pair": p["pair"],
                    "steered alone": r["steered"],
                    "measured": r["measured"],
                    "rate": _share(r["rate"], r["ci_low"], r["ci_high"], r["n"]),
                    "unsteered": _share_of(r, "unsteered"),
                    "moved by [95% CI]": _diff(r["diff"], r["diff_ci_low"], r["diff_ci_high"]),
                    "within CI": "yes" if r["within_ci"] else "NO",
                    "label distribution shift (TV)": f"{r['label_shift_tv']:.2f}",
                }
            )
            if tempo:
                measured = str(r["measured"]).startswith("tempos")
                rows[-1][BPM_CHANGE] = _bpm(r.get("bpm")) if measured else "-"
    return pd.DataFrame(rows)


def tempo_table(record: dict[str, Any]) -> pd.DataFrame:
    """A tempo part's BPM distribution per pair and condition against unsteered: the median BPM
    and its change (bootstrap 95%), the shares past the faster / slower bars (Wilson 95%)."""
    t = record.get("tempo_threshold") or {}
    fast, slow = t.get("faster_at_least_bpm"), t.get("slower_at_most_bpm")
    fast = f">= {fast:.0f} BPM" if fast is not None else "(no baseline)"
    slow = f"<= {slow:.0f} BPM" if slow is not None else "(no baseline)"
    rows = []
    for p in record["pairs"]:
        for r in p.get("tempo", []):
            f, s = r["faster"], r["slower"]
            rows.append(
                {
                    "pair": p["pair"],
                    "condition": r["condition"],
                    BPM_CHANGE: _bpm(r["bpm"]),
                    "silent": r["bpm"]["silent"] if r["bpm"] else r["n"],
                    f"faster {fast}": _share(f["rate"], f["ci_low"], f["ci_high"], f["n"]),
                    f"slower {slow}": _share(s["rate"], s["ci_low"], s["ci_high"], s["n"]),
                }
            )
    return pd.DataFrame(rows)


def tempo_bar_text(record: dict[str, Any]) -> str:
    """The tempo part's per-clip criterion in words, with the numbers it used."""
    t = record.get("tempo_threshold") or {}
    c = t.get("change", 0.2)
    head = (f"A tempo part's clip is right when its detected BPM is at least {1 + c:g}x "
            f"('faster') or at most {1 - c:g}x ('slower') the median detected BPM of the "
            "unsteered clips")  # fmt: skip
    if t.get("unsteered_median_bpm") is None:
        return head + ": no unsteered clip had a BPM reading, so no tempo clip is right."
    return (f"{head}: median {t['unsteered_median_bpm']:.1f} BPM over "
            f"{t['unsteered_with_bpm']}/{t['unsteered_n']} unsteered clips with a reading, so "
            f"faster >= {t['faster_at_least_bpm']:.1f} BPM, slower <= "
            f"{t['slower_at_most_bpm']:.1f} BPM (silent clips: a miss). 'slower' is the "
            "'faster' direction at -η0.")  # fmt: skip


def controls_table(record: dict[str, Any]) -> pd.DataFrame:
    """Each control of the joint plan: joint rate and its difference from unsteered."""
    rows = []
    for p in record["pairs"]:
        for r in p["controls"]:
            k = r["control"]
            if k == "flip":  # lowers the joint rate; neither attribute significantly above
                ok = r["joint_diff"] <= 0 and max(r["first_diff_ci_low"], r["second_diff_ci_low"]) <= 0  # fmt: skip
            else:
                ok = r["joint_within_ci"]
            rows.append(
                {
                    "pair": p["pair"],
                    "control (both directions)": k,
                    "joint": _share_of(r, "joint"),
                    "joint - unsteered": _diff_of(r, "joint"),
                    "first - unsteered": _diff_of(r, "first"),
                    "second - unsteered": _diff_of(r, "second"),
                    "as expected": ("yes" if ok else "NO")
                    + (
                        " (joint not above, no attribute significantly above unsteered)"
                        if k == "flip"
                        else " (joint CI holds 0)"
                    ),
                }
            )
    return pd.DataFrame(rows)


def conflict_table(record: dict[str, Any]) -> pd.DataFrame:
    """The conflict case: the share of clips heard as A, B, both (switching), neither."""
    c = record.get("conflict")
    if not c:
        return pd.DataFrame()
    a, b = c["a"], c["b"]
    keys = (a, b, f"{a} and {b}", "neither", "silent")
    rows = []
    for r in c["rows"]:
        row = {"condition": r["condition"], "n": r["n"]}
        for k in keys:
            lo, hi = r[f"{k} ci"]
            row[f"heard {k}"] = f"{r[k]:.2f} [{lo:.2f}, {hi:.2f}]"
        row["clip labels"] = r["clip labels"]
        row["median label switches"] = r["median switches"]
        rows.append(row)
    return pd.DataFrame(rows)


def pairs_markdown(record: dict[str, Any]) -> str:
    """The whole ``pairs.md``."""
    s = record.get("settings", {})
    parts = s.get("parts", {})

    def part(which: str) -> str:
        p = parts.get(which, {})
        eta = p.get("eta0")
        eta = f"{eta:.3g}" if isinstance(eta, (int, float)) else "?"
        return (f"{p.get('concept', '?')} (coef {p.get('coef', '?')} = η0 {eta}, schedule "
                f"{p.get('schedule', '?')}, gate {p.get('gate', '?')})")  # fmt: skip

    lines = [
        "# Two concepts at once: joint success, cross-talk, controls, a conflict",
        "",
        f"Model `{s.get('model_id', '?')}`; first part {part('first')}, second part "
        f"{part('second')}; each part's directions trained separately, one plan file of two "
        "directions per pair (`plans/`). Rates are k/n with Wilson 95% intervals; differences "
        "from unsteered use Newcombe's interval; adherence (reference timbre judge) uses a "
        "bootstrap. Same prompts x seeds in every condition.",
        "",
        *([tempo_bar_text(record), ""] if record.get("tempo_threshold") is not None else []),
        "## Joint success",
        "",
        to_markdown(joint_table(record)),
        "",
        to_markdown(verdict_table(record)),
        "",
        "## Cross-talk: one attribute steered alone, the other against unsteered",
        "",
        to_markdown(crosstalk_table(record)),
        "",
        "## Controls of the joint plan (both directions replaced at equal norm)",
        "",
        to_markdown(controls_table(record)),
        "",
    ]
    if record.get("tempo_threshold") is not None:
        lines += ["## Tempo: the BPM distribution of every condition against unsteered", "",
                  to_markdown(tempo_table(record)), ""]  # fmt: skip
    c = record.get("conflict")
    if c:
        lines += [f"## Conflict: {c['a']} and {c['b']} of one concept at once", "",
                  to_markdown(conflict_table(record)), ""]  # fmt: skip
        for name, p in record.get("plans", {}).items():
            if name.startswith("conflict"):
                warn = p["validator"]["warnings"]
                lines += ["The plan validator (`compile_plan`, run by `generate`) on "
                          f"`{p['file']}`: " + ("; ".join(f"warning: {w}" for w in warn)
                                               if warn else "no warning."), ""]  # fmt: skip
    o = record["overall"]
    lines += [
        f"Pairs passing the joint rule: {o['passed']}/{o['pairs']} ({o['applicable']} where "
        "each attribute alone reaches the gate).",
        "",
        f"Command: `{s.get('command', '?')}`",
        "",
    ]
    return "\n".join(lines)
