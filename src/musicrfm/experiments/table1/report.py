"""The report folder: table1.md / .csv / .json, layer_scores.csv and per-layer plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.experiments.table1.config import COLUMN_LABELS, PAPER_MODEL, TEMPO_RANGE, task_name
from musicrfm.experiments.table1.table import paper_table, row_label
from musicrfm.files import write_json_atomic, write_text_atomic


def write_report(
    out: Path, table: pd.DataFrame, scores: pd.DataFrame, summary: dict[str, Any]
) -> dict[str, Path]:
    """table1.md / .csv / .json, layer_scores.csv and plots/<concept>_<split>.png."""
    from musicrfm.probes.tables import plot_layer_scores

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "table1.md",
        "csv": out / "table1.csv",
        "json": out / "table1.json",
        "layer_scores": out / "layer_scores.csv",
    }
    write_text_atomic(paths["markdown"], table_markdown(table, summary))
    write_text_atomic(paths["csv"], table.to_csv(float_format="%.4f"))
    write_text_atomic(paths["layer_scores"], scores.to_csv(index=False, float_format="%.4f"))
    labelled = scores.assign(
        method=[row_label(p, m) for p, m in zip(scores.pooling, scores.method)]
    )
    for concept in dict.fromkeys(scores["concept"]):
        for split in ("val", "test"):
            key = f"plot_{concept}_{split}"
            paths[key] = plot_layer_scores(
                labelled[labelled["concept"] == concept], out / "plots" / f"{concept}_{split}.png",
                split=split,
            )  # fmt: skip
    summary["files"] = {
        k: p.name if p.parent == out else f"plots/{p.name}" for k, p in paths.items()
    }
    write_json_atomic(paths["json"], {**summary, "layer_scores": scores.to_dict(orient="records")})
    return paths


def table_markdown(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """Our table, the paper's in the same layout, intervals, n per split and wall times."""
    from musicrfm.probes.tables import to_markdown

    s = summary["settings"]
    programs = "SynTheory's 92" if s["programs"] is None else ",".join(map(str, s["programs"]))
    octaves = "all" if s.get("octaves") is None else ",".join(map(str, s["octaves"]))
    caption = (
        "Test score of each method at the layer its validation score picks (accuracy; R² for "
        "tempos). Avg. is over the concepts a row has (the logistic probe has no regression "
        "form). Bold: best per column."
    )
    lines = [
        f"# Table 1 on {summary['model']}",
        "",
        f"{s['clips_per_class']} clips per class (tempos: per BPM, every {s['tempo_step']} BPM "
        f"from {TEMPO_RANGE[0]} to {TEMPO_RANGE[1]}), {s['seconds']:g} s clips, programs "
        f"{programs}, note octaves {octaves}, empty prompt, seed {s['seed']}, budget "
        f"{s['budget']}; stratified 70/15/15 split.",
        "",
    ]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    lines += [to_markdown(table.rename(columns=COLUMN_LABELS), caption=caption)]
    paper = paper_table([*table.columns]).rename(columns=COLUMN_LABELS)
    lines += [f"## {PAPER_MODEL}", "", to_markdown(paper, caption="Its Avg. is over all seven.")]
    lines += _interval_lines(table, summary.get("ci95") or {})
    lines += _count_lines(summary["concepts"]) + _time_lines(summary)
    return "\n".join(lines) + "\n"


def _interval_lines(table: pd.DataFrame, ci95: dict[str, dict[str, list[float]]]) -> list[str]:
    cols = [c for c in table.columns if c not in ("tempos", "Avg.")]
    if not ci95 or not cols:
        return []
    lines = ["## Wilson 95% intervals of the accuracy cells", ""]
    lines += ["| Model | " + " | ".join(COLUMN_LABELS.get(c, c) for c in cols) + " |"]
    lines.append("|---|" + "---:|" * len(cols))
    for row, cells in ci95.items():
        shown = [f"[{cells[c][0]:.2f}, {cells[c][1]:.2f}]" if c in cells else "–" for c in cols]
        lines.append(f"| {row} | " + " | ".join(shown) + " |")
    return lines + [""]


def _count_lines(concepts: dict[str, Any]) -> list[str]:
    lines = ["## n per split", "", "| concept | task | classes | train | val | test | clips |"]
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for concept, info in concepts.items():
        n = info["n"]
        lines.append(
            f"| {concept} | {task_name(info['task'])} | {info['classes'] or '–'} "
            f"| {n['train']} | {n['val']} | {n['test']} | {info['clips_rendered']} |"
        )
    return lines + [""]


STAGE_NAMES = (
    "synthesise",
    "extract_mean",
    "extract_last",
    "train_rfm_mean",
    "baselines",
    "train_rfm_last",
)


def _time_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["## Wall time per stage (s)", "", "| concept | " + " | ".join(STAGE_NAMES) + " |"]
    lines.append("|---|" + "---:|" * len(STAGE_NAMES))
    for concept, info in summary["concepts"].items():
        cells = [f"{info['seconds'].get(k, float('nan')):.1f}" for k in STAGE_NAMES]
        note = " (scores cached; their first run's times)" if info.get("scores_cached") else ""
        lines.append(f"| {concept}{note} | " + " | ".join(cells) + " |")
    tot = summary["seconds"]
    return lines + ["", f"Model load {tot['load_model']:.1f} s; total {tot['total']:.1f} s."]
