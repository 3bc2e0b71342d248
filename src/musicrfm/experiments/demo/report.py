"""The demo's figures, tables, HTML page and JSON record."""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.experiments.demo.config import CONTROL_LABELS

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- figures
def plot_conditions(summary: pd.DataFrame, path: Path, target: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    labels, colors = [], []
    palette = {"unsteered": "#888888", "concept": "#1f77b4"}
    for _, r in summary.iterrows():
        name = r["condition"] if r["condition"] != "concept" else f"{target} direction"
        labels.append(f"{name}\nη0={r['coef']:g}" if r["coef"] else name)
        colors.append(palette.get(r["condition"], "#d62728"))
    x = np.arange(len(summary))
    acc = summary["accuracy"].to_numpy()
    err = np.vstack([acc - summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy() - acc])
    ax.bar(x, acc, color=colors, alpha=0.85)
    ax.errorbar(x, acc, yerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1)
    for xi, a, hi, n in zip(x, acc, summary["ci_high"], summary["n"]):
        ax.annotate(f"{a:.2f}\nn={n}", (xi, max(a, hi)), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=7)  # fmt: skip
    ax.axhline(1 / 12, color="grey", linestyle=":", linewidth=1, label="chance (1/12)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(f"share of clips detected as {target}")
    ax.set_title("Target-note accuracy by condition (independent detector, 95% bootstrap CI)")
    ax.legend(fontsize=7, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_crossfade(xf: dict[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    t = np.asarray(xf["times"])
    for key, name, color in (("a", xf["a"], "#1f77b4"), ("b", xf["b"], "#d62728")):
        m, sd = np.asarray(xf[f"prob_{key}"]), np.asarray(xf[f"prob_{key}_sd"])
        ax.plot(t, m, marker="o", color=color, label=f"P({name}) detected")
        ax.fill_between(t, np.clip(m - sd, 0, 1), np.clip(m + sd, 0, 1), color=color, alpha=0.15)
    twin = ax.twinx()
    s = np.linspace(0, xf["seconds"], 50)
    twin.plot(
        s, 1 - s / xf["seconds"], "--", color="#1f77b4", alpha=0.5, label=f"schedule {xf['a']}"
    )
    twin.plot(s, s / xf["seconds"], "--", color="#d62728", alpha=0.5, label=f"schedule {xf['b']}")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("schedule φ(t)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("detector probability (mean ± sd)")
    ax.set_title(f"Crossfade {xf['a']} → {xf['b']}: detector trace over time (n={xf['n']} clips)")
    lines = ax.get_legend_handles_labels()
    lines2 = twin.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------- report
def _audio_cell(path: str, out: Path, caption: str) -> str:
    rel = Path(os.path.relpath(path, out)).as_posix()
    return (
        f"<figure><audio controls preload='none' src='{html.escape(rel)}'></audio>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")


def _judge_item(info: dict[str, Any]) -> str:
    """Which timbre classifier judged prompt adherence, and how often it is right."""
    if not info:
        return ""
    acc = info.get("classifier_test_accuracy_through_codec")
    right = f", right on {acc:.3f} of held-out codec round trips" if acc is not None else ""
    return (
        f"<li>Prompt adherence: the {html.escape(str(info.get('classifier')))} instrument "
        f"classifier hears the prompted instrument family{right}.</li>"
    )


def write_report_html(
    out: Path,
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    comp: pd.DataFrame,
    xf: dict[str, Any],
    settings: dict[str, Any],
    timings: dict[str, float],
    figures: dict[str, Path],
) -> Path:
    from musicrfm.experiments.report.page import write_html
    from musicrfm.experiments.report.tables import specificity_statement

    rel = {k: Path(os.path.relpath(v, out)).as_posix() for k, v in figures.items()}
    statement = specificity_statement(comp.rename(columns={"concept_coef": "coef"}))
    sections = [
        ("Result", _result_html(summary, settings) + f"<p><b>{html.escape(statement)}</b></p>"),
        (
            "Target accuracy by condition",
            f"<img src='{rel['conditions']}' alt='accuracy by condition'>" + _table_html(summary),
        ),
        ("Causal controls (concept minus control, 95% bootstrap CI)", _table_html(comp)),
    ]
    if "coef_sweep" in rel:
        sections.append(("Accuracy vs η0", f"<img src='{rel['coef_sweep']}' alt='sweep'>"))
    if xf.get("n"):
        sections.append(_crossfade_section(out, frame, xf, rel))
    if settings.get("part"):
        sections.append(part_section(settings["part"]))
    if settings.get("pair"):
        sections.append(pair_section(out, settings["pair"]))
    if settings.get("beat"):
        sections.append(beat_section(out, settings["beat"]))
    panels = "".join(
        f"<img src='{rel[k]}' width='520' alt='{k}'>" for k in ("panel_unsteered", "panel_concept")
        if k in rel
    )  # fmt: skip
    sections.append(("Spectrogram and chroma (same prompt and seed)", panels))
    sections.append(("Listen", _listen_html(out, frame, settings["examples_per_condition"])))
    sections.append(("How this was made", _how_html(settings)))
    runtime = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    sections.append(
        (
            "Reproduce",
            f"<pre>{html.escape(settings['command'])}</pre><p>Runtime: {runtime} "
            f"(stages {sum(timings.values()):.0f} s, wall {settings.get('wall_seconds', 0):.0f} s"
            f" with {settings.get('workers', 1)} process(es)). Every clip's JSON sidecar holds its full "
            "plan, seed and model info. Per-clip results: <a href='results.csv'>results.csv</a>; "
            "summary: <a href='summary.csv'>summary.csv</a>.</p>",
        )
    )
    return write_html(out / "index.html", title="MusicRFM demo", sections=sections)


def _result_html(summary: pd.DataFrame, settings: dict[str, Any]) -> str:
    """The headline sentence: steered against unsteered accuracy, with CIs."""
    target = settings["target"]
    c = summary[summary["condition"] == "concept"].iloc[-1]
    u = summary[summary["condition"] == "unsteered"].iloc[0]
    return (
        f"<p class='note'>Steering {html.escape(settings['model_id'])} toward the note "
        f"<b>{target}</b> at η0={c['coef']:g}: the independent chroma detector hears {target} in "
        f"<b>{c['accuracy']:.2f}</b> [{c['ci_low']:.2f}, {c['ci_high']:.2f}] of n={c['n']} clips, "
        f"against {u['accuracy']:.2f} [{u['ci_low']:.2f}, {u['ci_high']:.2f}] unsteered "
        f"(chance 1/12 = 0.083). Intervals are 95% percentile-bootstrap CIs.</p>"
    )


CONCEPT_WORDS = {
    "chords": ("Chord quality", "a {} triad"),
    "intervals": ("Interval", "the interval {}"),
    "scales": ("Scale mode", "the {} mode"),
    "progressions": ("Chord progression", "the progression {}"),
    "time_signatures": ("Time signature", "{} time"),
    "notes": ("Note", "the note {}"),
}


def part_section(part: dict[str, Any]) -> tuple[str, str]:
    """The second part: one class of another concept steered on its model, with controls."""
    if part["concept"] == "tempos":
        return _tempo_section(part)
    title, heard = CONCEPT_WORDS.get(part["concept"], (part["concept"], "{}"))
    summary = pd.DataFrame(part["summary"])
    shown = [c for c in ("condition", "coef", "accuracy", "ci_low", "ci_high", "n", "adherence",
                         "detected") if c in summary]  # fmt: skip
    c = summary[summary["condition"] == "concept"].iloc[-1]
    u = summary[summary["condition"] == "unsteered"].iloc[0]
    target = html.escape(str(part["target"]))
    learned = (
        "strike clips (the testbed's own kind of clip)"
        if part.get("train_set") == "strikes"
        else f"the synthetic {html.escape(part['concept'])} set"
    )
    text = (
        f"<p class='note'>Steered on {html.escape(part['model_id'])} (the note model is "
        f"monophonic; the polyphonic testbed was trained on notes, intervals and triads struck "
        f"on the beat at 60-180 BPM), directions learned from {learned}. Toward "
        f"<b>{target}</b> at η0={c['coef']:g} ({part['relative_coef']:g}x "
        f"the median activation norm), the {html.escape(part['concept'])} detector hears "
        f"{heard.format(target)} in <b>{c['accuracy']:.2f}</b> [{c['ci_low']:.2f}, "
        f"{c['ci_high']:.2f}] of n={c['n']} clips, against {u['accuracy']:.2f} "
        f"[{u['ci_low']:.2f}, {u['ci_high']:.2f}] unsteered (chance {part['chance']:.2f}). "
        "Controls as for the note.</p>"
    )
    tables = _table_html(summary[shown]) + _table_html(pd.DataFrame(part["controls"]))
    if part.get("progression"):
        tables += _progression_html(part["progression"])
    return f"{title} on {html.escape(part['model_id'])}", text + tables


def _progression_html(prog: dict[str, Any]) -> str:
    """The progression: per-bar quality and root + quality, steered against unsteered, which
    directions steered it, and the chroma figure."""

    def ci(x: dict[str, Any]) -> str:
        return f"{x['value']:.2f} [{x['ci'][0]:.2f}, {x['ci'][1]:.2f}]"

    rows = []
    for name, c in prog["conditions"].items():
        rows.append({
            "condition": name, "clips": c["clips"], "bars": c["bars"],
            "quality per bar": ci(c["quality"]), "root + quality per bar": ci(c["chord"]),
            "quality, bars 1-4": " ".join(f"{x:.2f}" for x in c["quality_by_bar"]),
            "root + quality, bars 1-4": " ".join(f"{x:.2f}" for x in c.get("chord_by_bar", [])),
        })  # fmt: skip
    coefs = prog.get("coef_by_role") or {"quality": prog["coef"]}
    sources = prog.get("directions") or {"quality": "the chord part's directions"}
    parts = " and ".join(f"{role} (η0={coefs[role]:.3g}, <code>{html.escape(sources[role])}</code>)"
                         for role in prog.get("parts", ["quality"]))  # fmt: skip
    if prog.get("bundled"):
        learned = "; ".join(f"{role}: {html.escape(what)}"
                            for role, what in (prog.get("trained_on") or {}).items() if what)  # fmt: skip
        which = (
            "Both parts, root and quality, are steered, with the chord directions bundled with "
            "the model" + (f" ({learned})" if learned else "") + ": the testbed plays a triad's "
            "root as its bass only in root position (docs/results/roots-testbed-beat/)."
        )
    else:
        which = (
            "Only the quality part is steered (this model carries no bundled chord directions, "
            "directions/chords and directions/chord-roots), so a right root is the model's own "
            "doing."
        )
    text = (
        f"<p class='note'>The progression <b>{html.escape(prog['chords'])}</b> (one chord a bar "
        f"of 2/4 at {prog['bpm']:g} BPM), compiled as <code>musicrfm generate --chords</code> "
        f"compiles it (keyframed directions on the bar grid at {prog['relative_coef']:g}x each "
        f"set's activation norm): {parts}. One clip per prompt; each bar judged by the chord "
        "detector without its first and last 0.15 s; 95% CIs bootstrap over clips. "
        f"{which}</p>"
    )
    image = f"<img src='{html.escape(prog['figure'])}' width='640' alt='progression chroma'>"
    return text + _table_html(pd.DataFrame(rows)) + image


def pair_section(out: Path, pair: dict[str, Any]) -> tuple[str, str]:
    """Two concepts at once: joint success against each alone, unsteered and the controls
    (the ``mini pairs`` tables), the figure, the plan file and a few clips."""
    from musicrfm.experiments.pairs.tables import controls_table, joint_table, verdict_table

    # experiments.pairs.scoring's condition names (not imported: it imports the tempo
    # headline, which imports this module)
    UNSTEERED, ALONE, JOINT = "unsteered", ("first alone", "second alone"), "joint"  # noqa: N806

    record = pair["record"]
    first, second = pair["pair"].split("+")
    c1, c2 = pair["concepts"]
    by = {r["condition"]: r for r in pair["rows"]}
    names = {UNSTEERED: "unsteered", ALONE[0]: f"{first} alone (note direction only)",
             ALONE[1]: f"{second} alone (quality direction only)",
             JOINT: f"joint plan ({first} + {second})"}  # fmt: skip

    def share(cond: str, key: str = "joint") -> str:
        r = by.get(cond)
        if r is None:
            return "n/a"
        return (f"{r[f'{key}_k']}/{r[f'{key}_n']} = {r[f'{key}_rate']:.2f} "
                f"[{r[f'{key}_ci_low']:.2f}, {r[f'{key}_ci_high']:.2f}]")  # fmt: skip

    parts = pair["parts"]
    eta = ", ".join(
        f"{html.escape(str(p['concept']))} η0={p['eta0']:.3g} ({html.escape(str(p['coef']))} "
        f"the median activation norm)" for p in (parts["first"], parts["second"])
    )  # fmt: skip
    ctl = "; ".join(
        f"{html.escape(r['control'])} (both directions replaced at equal norm) "
        f"{r['joint_rate']:.2f} [{r['joint_ci_low']:.2f}, {r['joint_ci_high']:.2f}]"
        for r in pair["controls"]
    )  # fmt: skip
    learned = "strike clips" if pair["train_set"] == "strikes" else "the synthetic sets"
    text = (
        f"<p class='note'>One plan of two directions on {html.escape(pair['model_id'])}, each "
        f"trained separately from {learned}: the note <b>{html.escape(first)}</b> and the "
        f"<b>{html.escape(second)}</b> triad at once ({eta}; <a href='{html.escape(pair['plan'])}'>plan file</a>). Joint success "
        f"(the note detector hears {html.escape(first)} <i>and</i> the chord detector hears "
        f"{html.escape(second)} in the same clip): <b>{share(JOINT)}</b>. With the note "
        f"direction alone both are right in {share(ALONE[0])} (the note in "
        f"{share(ALONE[0], 'first')}), with the quality direction alone in {share(ALONE[1])} "
        f"(the quality in {share(ALONE[1], 'second')}), unsteered in {share(UNSTEERED)}; "
        f"controls of the joint plan (both right): "
        f"{ctl or 'none'}. k/n with Wilson 95% intervals, the same prompts and seeds in every "
        "condition; measured by the <code>musicrfm mini pairs</code> code (full record, "
        f"tables and clips in <a href='{html.escape(pair['folder'])}/pairs.md'>"
        f"{html.escape(pair['folder'])}/</a>).</p>"
    )  # fmt: skip
    joint = joint_table(record).drop(columns=["pair"])
    joint["condition"] = [names.get(c, c) for c in joint["condition"]]
    tables = _table_html(joint) + _table_html(verdict_table(record).drop(columns=["pair"]))
    if pair["controls"]:
        tables += _table_html(controls_table(record).drop(columns=["pair"]))
    image = f"<img src='{html.escape(pair['figure'])}' width='520' alt='pair rates'>"
    cells = "".join(
        _audio_cell(str(out / e["audio"]), out,
                    f"{names.get(e['condition'], e['condition'])}: {e['prompt']} → {c1} "
                    f"{e['note']}, {c2} {e['quality']}")
        for e in pair.get("examples", []) if e["condition"] in (JOINT, UNSTEERED)
    )  # fmt: skip
    return (
        f"Two concepts at once on {html.escape(pair['model_id'])}",
        text + tables + image + cells,
    )


def beat_section(out: Path, beat: dict[str, Any]) -> tuple[str, str]:
    """An exact tempo: per target, the share of clips within 4% of it with the onset pulses,
    unsteered and the control pulsed the same way, median BPM; the onset-strength figure and
    one clip of each condition."""

    model = html.escape(str(beat["model_id"]))
    tempos = ", ".join(f"{b:g}" for b in beat["bpms"])
    by = {(r["bpm"], r["condition"]): r for r in beat["rows"]}
    lead = "; ".join(
        f"{b:g} BPM: <b>{by[(b, 'onset')]['hit_rate']:.2f}</b> [{by[(b, 'onset')]['ci_low']:.2f}, "
        f"{by[(b, 'onset')]['ci_high']:.2f}] against {by[(b, 'unsteered')]['hit_rate']:.2f} "
        "unsteered" for b in beat["bpms"] if (b, "onset") in by and (b, "unsteered") in by
    )  # fmt: skip
    controls = ", ".join(html.escape(c) for c in beat["controls"]) or "none"
    path = Path(str(beat["directions"]))
    where = f"{path.parent.name}/{path.name}"  # directions/onsets
    text = (
        f"<p class='note'>The onset directions bundled with {model} "
        f"(<code>{html.escape(where)}</code>, no training in this "
        f"run) pulsed on the beats of {tempos} BPM, as <code>musicrfm generate --bpm N "
        f"--directions .../onsets --coef {beat['relative_coef']:g}x</code> compiles them "
        f"(η0={beat['coef']:.3g} = {beat['relative_coef']:g}x the median activation norm), "
        f"{beat['clips']} clips of {beat['seconds']:g} s per condition (the demo's "
        f"{beat['prompts']} prompts x {beat['seeds_per_prompt']} seeds, the same in every "
        f"condition). Clips whose detected tempo is within "
        f"{100 * beat['tolerance']:g}% of the target, k/n with Wilson 95% intervals: {lead}. "
        f"Controls ({controls}): a direction of equal norm pulsed on the same beats. "
        f"Per-clip results: <a href='{html.escape(beat['results'])}'>"
        f"{html.escape(beat['results'])}</a>.</p>"
    )
    image = (
        f"<img src='{html.escape(beat['figure'])}' width='640' alt='onset strength per tempo'>"
        if beat.get("figure") else ""
    )  # fmt: skip
    cells = "".join(
        _audio_cell(str(out / e["audio"]), out,
                    f"{e['condition']}" + (f" at {e['target']} BPM" if e["condition"] != "unsteered"
                                           else "") + f": {e['prompt']}, detected "
                    + (f"{e['bpm']:.0f} BPM" if e["bpm"] is not None else "silence"))
        for e in beat.get("examples", [])
    )  # fmt: skip
    return (
        f"An exact tempo on {model}: onset pulses on the beat grid",
        text + _table_html(beat_cells(beat)) + image + cells,
    )


def _tempo_section(part: dict[str, Any]) -> tuple[str, str]:
    """Tempo: median detected BPM against unsteered, each way, with controls and the verdict."""
    rows = pd.DataFrame(part["rows"])
    rows["change_ci"] = [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in rows["change_ci"]]
    shown = [c for c in ("condition", "coef", "median_bpm", "change", "change_ci", "n",
                         "adherence") if c in rows]  # fmt: skip
    overall = part["overall"]
    way = overall.get(part["target"], {})
    text = (
        f"<p class='note'>A signed tempo direction (a regression probe on strike clips at "
        f"60-180 BPM) on {html.escape(part['model_id'])}, η0 = ±{abs(part['coef']):g} "
        f"({part['relative_coef']:g}x the median activation norm). '{part['target']}' moves the "
        f"median detected BPM by <b>{way.get('change', float('nan')):+.2f}</b> (95% CI "
        f"{_ci(way.get('change_ci'))}) against unsteered; the issue's bar is 20% each way with "
        f"random and orthogonal controls inside their CI and the flip the other way: "
        f"<b>{'met' if overall.get('passed') else 'not met'}</b>.</p>"
    )
    return (f"Tempo on {html.escape(part['model_id'])}", text + _table_html(rows[shown]))


def _ci(ci: Any) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "n/a"


def _how_html(settings: dict[str, Any]) -> str:
    """How the data, features, directions, generations and controls were made."""
    target = settings["target"]
    return (
        "<ul>"
        f"<li>Training data: {settings['train_clips']} synthetic one-note clips "
        f"({settings['clips_per_class']} per pitch class, {len(settings['programs'])} GM programs, "
        f"MIDI {settings['midi_range']}), rendered offline.</li>"
        f"<li>Features: output of each of the {settings['num_layers']} decoder blocks, mean-pooled "
        "over the clip, empty text prompt.</li>"
        f"<li>Directions: top AGOP eigenvector of one-vs-rest RFM probes per layer and note "
        f"(budget '{settings['budget']}'); validation AUC of the {target}-vs-rest probe per layer: "
        f"{', '.join(f'{s:.2f}' for s in settings['target_auc_per_layer'])}; multiclass probe "
        f"best validation accuracy {settings['multiclass_val_accuracy']:.2f} (chance 0.083).</li>"
        f"<li>Steering: the unit direction × η0 added to every decoder block's output at every "
        f"step (uniform layer weights, gate p=1). η0 values {settings['coefs']}"
        + (
            f" = {settings['relative_coefs']} × the median norm of the pooled activations "
            f"({settings['activation_scale']:.1f})"
            if settings["relative_coefs"]
            else f" (given; median activation norm {settings['activation_scale']:.1f})"
        )
        + ".</li>"
        f"<li>Generation: prompts {', '.join(settings['prompts'])}; "
        f"{settings['seeds_per_prompt']} seed(s) each, {settings['seconds']:g} s clips, sampling "
        f"{settings['sampling'] or 'defaults'} (the model's generation config); the same "
        "prompts and seeds in every condition.</li>"
        "<li>Controls: the same plan with the target's vectors replaced at equal norm "
        f"({', '.join(CONTROL_LABELS.get(k, k) for k in settings['controls'])}); random and "
        "orthogonal controls draw a new direction for each generation seed.</li>"
        + _judge_item(settings.get("instrument") or {})
        + "</ul>"
    )


def _crossfade_section(
    out: Path, frame: pd.DataFrame, xf: dict[str, Any], rel: dict[str, str]
) -> tuple[str, str]:
    xf_rows = frame[frame["kind"] == "crossfade"]
    cells = "".join(
        _audio_cell(p, out, f"{pr} → detected {lab}")
        for p, pr, lab in zip(xf_rows["audio_path"], xf_rows["prompt"], xf_rows["label"])
    )
    return (
        f"Crossfade {xf['a']} → {xf['b']}",
        f"<img src='{rel['crossfade']}' alt='crossfade trace'>"
        f"<p>First window detected as {xf['a']} in {xf['starts_on_a']:.2f} of clips; last "
        f"window detected as {xf['b']} in {xf['ends_on_b']:.2f} (n={xf['n']}). The two "
        "directions are added with a linear decay and a linear rise over the whole clip "
        "at the strongest η0 (SteeringPlan.crossfade). Note: a model trained only on "
        "single sustained notes (like the bundled mini model) has never heard a note "
        "change mid-clip and tends to hold the note it started with.</p>" + cells,
    )


def _listen_html(out: Path, frame: pd.DataFrame, per_condition: int) -> str:
    """Audio players of the steady clips, a few per (condition, η0)."""
    listen = []
    steady = frame[frame["kind"] == "steady"]
    for (cond, coef), g in steady.groupby(["condition", "coef"], sort=False):
        cells = "".join(
            _audio_cell(p, out, f"{pr} → {lab}")
            for p, pr, lab in list(zip(g["audio_path"], g["prompt"], g["label"]))[:per_condition]
        )
        listen.append(f"<h3>{html.escape(str(cond))} (η0={coef:g})</h3>{cells}")
    return "".join(listen)


def beat_cells(beat: dict[str, Any]) -> pd.DataFrame:
    """The report's table: per target tempo, each condition's k/n within 4% (Wilson 95% CI)
    and median detected BPM."""
    rows = []
    for r in beat["rows"]:
        k = int(round(r["hit_rate"] * r["n"]))
        cond = {"onset": "onset pulses"}.get(r["condition"], r["condition"])
        if r["condition"] not in ("unsteered", "onset"):
            cond = f"{r['condition']} direction pulsed (equal norm)"
        median = r.get("median_bpm")
        rows.append({
            "target BPM": f"{r['bpm']:g}", "condition": cond,
            "within 4%": f"{k}/{r['n']} = {r['hit_rate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
            "median BPM": f"{median:.1f}" if median is not None else "n/a",
        })  # fmt: skip
    return pd.DataFrame(rows)


def json_default(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (Path,)):
        return str(v)
    if isinstance(v, pd.DataFrame):
        return v.to_dict(orient="records")
    return str(v)


def write_outputs(
    out: Path, frame: pd.DataFrame, summary: pd.DataFrame, comp: pd.DataFrame, xf: dict, tgt: str
) -> dict[str, Path]:
    from musicrfm.experiments.report.figures import plot_accuracy_vs_coef, plot_audio_panels
    from musicrfm.experiments.report.tables import write_table

    files: dict[str, Path] = {}
    per_clip = frame.drop(columns=["probs"], errors="ignore")
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    files["results"] = out / "results.csv"
    csv, md = write_table(
        summary, out, "summary", title="Target-note accuracy by condition (95% bootstrap CI)"
    )
    files.update(summary_csv=csv, summary_md=md)
    if len(comp):
        csv, md = write_table(
            comp, out, "controls", title="Concept minus each control (95% bootstrap CI)"
        )
        files.update(controls_csv=csv, controls_md=md)
    fig = out / "figures"
    files["conditions"] = plot_conditions(summary, fig / "accuracy_by_condition.png", tgt)
    if summary["condition"].eq("concept").sum() > 1:
        sweep = summary.assign(concept="notes", condition=summary["condition"])
        files["coef_sweep"] = plot_accuracy_vs_coef(
            sweep, fig / "accuracy_vs_coef.png", chance={"notes": 1 / 12}
        )
    if xf.get("n"):
        files["crossfade"] = plot_crossfade(xf, fig / "crossfade_trace.png")
    steady = frame[frame["kind"] == "steady"]
    first = steady.iloc[0]
    top = steady.loc[steady["condition"] == "concept", "coef"].max()
    pair = {
        "panel_unsteered": steady[(steady["condition"] == "unsteered") & (steady["prompt"] == first["prompt"]) & (steady["seed"] == first["seed"])],
        "panel_concept": steady[(steady["condition"] == "concept") & (steady["coef"] == top) & (steady["prompt"] == first["prompt"]) & (steady["seed"] == first["seed"])],
    }  # fmt: skip
    import soundfile as sf

    for key, rows in pair.items():
        if rows.empty:
            continue
        r = rows.iloc[0]
        y, sr = sf.read(r["audio_path"], dtype="float32")
        title = f"{r['condition']} (η0={r['coef']:g}) — {r['prompt']} — detected {r['label']}"
        files[key] = plot_audio_panels(y, sr, fig / f"{key}.png", title=title)
    return files
