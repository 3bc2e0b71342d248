"""The paper's tables in its layout, ours beside the paper's numbers: one ``tableN.md`` and
``tableN.json`` each. Cells read ``ours (paper)``; a value we did not measure is ``n/m`` with
the reason in the table's notes, never a number."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.experiments.reproduce.protocol import Protocol
from musicrfm.files import write_json_atomic, write_text_atomic

STEER_METRICS = (
    ("fd", "FD ↓"),
    ("mmd", "MMD ↓"),
    ("clap", "CLAP ↑"),
    ("probe_acc", "Probe acc. ↑"),
    ("detector_acc", "Detector acc. (ours)"),
)
NO_CLAP = "CLAP: not measured (no checkpoint; pass --clap-checkpoint with a local laion-clap file)"
LABELS = {
    "notes": "Notes",
    "intervals": "Intervals",
    "scales": "Scales",
    "chords": "Chords",
    "progressions": "Progressions",
    "time_signatures": "Time signatures",
    "tempos": "Tempos",
}


@dataclass
class PaperTable:
    """One table: rows of ours and of the paper's under the same columns (None: no value)."""

    number: int
    title: str
    section: str
    columns: list[str]
    ours: dict[str, dict[str, float | None]]
    paper: dict[str, dict[str, float | None]]
    n: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    measured: bool = True

    def markdown(self, header: list[str]) -> str:
        lines = [f"# Table {self.number}: {self.title} ({self.section})", "", *header, ""]
        if not self.measured:
            return "\n".join([*lines, *[f"- {n}" for n in self.notes], ""])
        cols = list(self.columns) + (["n"] if self.n else [])
        lines += ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for row in dict.fromkeys([*self.paper, *self.ours]):
            ours, paper = self.ours.get(row, {}), self.paper.get(row, {})
            cells = [_cell(ours.get(c), paper.get(c), row in self.ours) for c in self.columns]
            if self.n:
                cells.append(str(self.n.get(row, "–")))
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines += ["", "Cells: ours (the paper's); `n/m`: not measured; –: no such value."]
        lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"

    def write(self, out: Path, header: list[str], extra: dict[str, Any]) -> dict[str, Path]:
        md, js = out / f"table{self.number}.md", out / f"table{self.number}.json"
        write_text_atomic(md, self.markdown(header))
        write_json_atomic(js, {**asdict(self), **extra}, indent=2, default=str)
        return {"markdown": md, "json": js}


def _fmt(v: float | None) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return f"{float(v):.3f}"


def _cell(ours: float | None, paper: float | None, have_row: bool) -> str:
    p = _fmt(paper)
    o = _fmt(ours) or ("–" if p is None and have_row else "n/m")
    return f"{o} ({p})" if p is not None else o


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def not_measured(number: int, protocol: Protocol, reason: str) -> PaperTable:
    info = protocol.table(number)
    return PaperTable(
        number, info.title, info.section, [], {}, {}, notes=[f"not measured: {reason}"],
        measured=False,
    )  # fmt: skip


# ============================================================================ Table 1
def table1(protocol: Protocol, table: pd.DataFrame, n_test: dict[str, int]) -> PaperTable:
    """Ours: ``experiments.table1.build_table1``'s frame (rows = method labels)."""
    from musicrfm.experiments.table1.config import COLUMN_LABELS, ROW_LABELS

    info = protocol.table(1)
    paper = protocol.paper_numbers(1)
    columns = [c for c in paper["columns"] if c in table.columns]
    labels = [COLUMN_LABELS.get(c, c) for c in columns]
    ours = {
        str(row): {COLUMN_LABELS.get(c, c): _num(vals.get(c)) for c in columns}
        for row, vals in table.iterrows()
    }
    theirs = {
        ROW_LABELS[key]: {
            COLUMN_LABELS.get(c, c): _num(v) for c, v in zip(paper["columns"], values)
        }
        for key, values in paper.items()
        if key in ROW_LABELS
    }
    notes = [
        "Test score at the layer the validation score picks (accuracy; R² for tempos). Our Avg. "
        "is over the concepts measured, the paper's over all seven.",
        "Test clips per concept: " + ", ".join(f"{c} {n}" for c, n in n_test.items()) + ".",
        f"Paper: {paper['source']}. Like the paper, no logistic or difference-of-means rows "
        "(`musicrfm table1` measures them).",
    ]
    return PaperTable(1, info.title, info.section, labels, ours, theirs, notes=notes)


# ============================================================================ steering tables
def _metric_rows(frame: pd.DataFrame) -> tuple[dict[str, float | None], int]:
    row = {k: _num(frame.get(k)) for k, _ in STEER_METRICS}
    return row, int(frame.get("n", 0) or 0)


def _steer_notes(has_clap: bool, extra: list[str] | None = None) -> list[str]:
    notes = [
        "FD and MMD against the same sweep's unsteered clips (same prompts and seeds) on MusicGen "
        "pooled activations (the paper does not name its embedding); probe acc.: the multiclass "
        "RFM probe on each generated clip's activations (the paper's metric; mean over clips, "
        "classes balanced); detector acc.: model-independent detectors (ours, not in the paper). "
        "FD/MMD read n/m where a row or its unsteered reference has fewer than two clips.",
    ]
    if not has_clap:
        notes.append(NO_CLAP)
    return notes + list(extra or [])


def table2(protocol: Protocol, long: pd.DataFrame, has_clap: bool) -> PaperTable:
    """``long``: ``paper_tables(...)["table2_long"]`` of every concept's sweep, concatenated."""
    info = protocol.table(2)
    paper = protocol.paper_numbers(2)
    paper_coefs = [float(c) for c in paper["coefs"]]
    coefs = sorted({*paper_coefs, *(float(c) for c in protocol.value("steering.coefs"))})
    columns = [f"{label} η0={c:g}" for key, label in STEER_METRICS for c in coefs]
    ours, n = {}, {}
    for concept, grp in long.groupby("concept", sort=False):
        label = LABELS.get(str(concept), str(concept))
        row: dict[str, float | None] = {}
        for _, r in grp.iterrows():
            vals, count = _metric_rows(r)
            for key, name in STEER_METRICS:
                row[f"{name} η0={float(r['coef']):g}"] = vals[key]
            n[label] = max(n.get(label, 0), count)
        ours[label] = row
    theirs = {}
    for concept in protocol.value("tables.2.concepts"):
        metrics = paper.get(concept) or {}
        theirs[LABELS[concept]] = {
            f"{name} η0={c:g}": _num((metrics.get(key) or [None] * len(paper_coefs))[i])
            for key, name in STEER_METRICS
            for i, c in enumerate(paper_coefs)
        }
    extra = [
        "n: generations per cell (concept x η0), spread over the concept's targets; tempos: "
        "'faster' and 'slower' averaged into one |η0| column as in §5.1.",
        f"Unsteered CLAP in the paper: {protocol.value('evaluation.unsteered_clap')}.",
        f"Paper: {paper['source']}.",
    ]
    return PaperTable(
        2, info.title, info.section, columns, ours, theirs, n, _steer_notes(has_clap, extra)
    )


def _rows_table(
    number: int,
    protocol: Protocol,
    frame: pd.DataFrame | None,
    key_of: Any,
    paper_key: Any,
    paper_metrics: tuple[str, ...],
    has_clap: bool,
    extra: list[str],
) -> PaperTable:
    """A table whose rows are variants: ``key_of(row of ours) -> label``, ``paper_key(first
    cell of a paper row) -> label``; the paper's remaining cells are ``paper_metrics``."""
    info = protocol.table(number)
    paper = protocol.paper_numbers(number)
    columns = [name for _, name in STEER_METRICS]
    theirs: dict[str, dict[str, float | None]] = {}
    for prow in paper["rows"]:
        label = paper_key(prow)
        values = dict(zip(paper_metrics, prow[-len(paper_metrics) :]))
        theirs[label] = {name: _num(values.get(k)) for k, name in STEER_METRICS}
    ours, n = {}, {}
    for _, r in (frame if frame is not None else pd.DataFrame()).iterrows():
        label = key_of(r)
        if label is None:
            continue
        vals, count = _metric_rows(r)
        ours[label] = {name: vals[k] for k, name in STEER_METRICS}
        n[label] = count
    notes = _steer_notes(has_clap, [*extra, f"Paper: {paper['source']}."])
    return PaperTable(number, info.title, info.section, columns, ours, theirs, n, notes)


def table5(protocol: Protocol, frame: pd.DataFrame | None, has_clap: bool) -> PaperTable:
    def label(concept: Any, coef: Any) -> str:
        return f"{LABELS.get(str(concept), str(concept))} η0={float(coef):g}"

    extra = [
        "Every clip steered by two directions at once; a row pools all clips where its concept "
        "had that η0, whatever the pairing (§6.1).",
    ]
    return _rows_table(
        5, protocol, frame, lambda r: label(r["concept"], r["coef"]),
        lambda p: label(p[0], p[1]), ("fd", "mmd", "clap", "probe_acc"), has_clap, extra,
    )  # fmt: skip


def table6(protocol: Protocol, frame: pd.DataFrame | None, has_clap: bool) -> PaperTable:
    extra = [
        f"Notes only; schedules at η0={protocol.value('tables.6.coef')} over the whole "
        "generation; crossfade: one note decaying while another rises (η0 "
        f"{protocol.value('tables.6.crossfade_coef')}), all pairs pooled in one row.",
    ]
    return _rows_table(
        6, protocol, frame, lambda r: str(r["variant"]), lambda p: str(p[0]),
        ("fd", "mmd", "clap"), has_clap, extra,
    )  # fmt: skip


def table8(protocol: Protocol, frame: pd.DataFrame | None, has_clap: bool) -> PaperTable:
    return _rows_table(
        8, protocol, frame, lambda r: str(r["variant"]), lambda p: str(p[0]),
        ("fd", "mmd", "clap", "probe_acc"), has_clap, _ablation_notes(protocol),
    )  # fmt: skip


def table9(
    protocol: Protocol, frame: pd.DataFrame | None, has_clap: bool, k_map: dict[int, int]
) -> PaperTable:
    """Rows are the paper's K; each shows our measurement at the K it maps to on this model."""

    def label(k: int) -> str:
        return f"K={k} (ours {k_map.get(k, '?')})"

    table = _rows_table(
        9, protocol, frame, lambda r: f"ours {int(r['variant'])}", lambda p: label(int(p[0])),
        ("fd", "mmd", "clap", "probe_acc"), has_clap,
        [*_ablation_notes(protocol), "K of the paper's 48 layers -> ours: "
         + ", ".join(f"{k} -> {v}" for k, v in k_map.items()) + " (round(K x L / 48)); paper "
         "Ks that map to one K of ours share its measurement."],
    )  # fmt: skip
    measured, n = dict(table.ours), dict(table.n)
    table.ours, table.n = {}, {}
    for k, v in k_map.items():
        if f"ours {v}" in measured:
            table.ours[label(k)], table.n[label(k)] = measured[f"ours {v}"], n[f"ours {v}"]
    return table


def table10(protocol: Protocol, frame: pd.DataFrame | None, has_clap: bool) -> PaperTable:
    return _rows_table(
        10, protocol, frame, lambda r: f"p={float(r['variant']):g}", lambda p: f"p={p[0]:g}",
        ("fd", "mmd", "clap", "probe_acc"), has_clap, _ablation_notes(protocol),
    )  # fmt: skip


def _ablation_notes(protocol: Protocol) -> list[str]:
    base = protocol.value("ablations.base")
    return [
        f"{protocol.value('ablations.concept')} at η0={protocol.value('ablations.coef')}; each "
        f"row changes one knob of naive steering ({', '.join(f'{k} {v}' for k, v in base.items())}"
        "). The paper's 'Classification Acc.' is compared with our probe acc.",
    ]


# ============================================================================ causal controls
def write_controls(
    out: Path, header: list[str], results: dict[str, pd.DataFrame], protocol: Protocol
) -> dict[str, Path]:
    """``controls.md`` / ``.json`` (ours; the paper has no controls): per concept, detector and
    probe accuracy of the concept direction, each equal-norm control and unsteered, the
    difference concept - control with a bootstrap 95% CI, and whether the effect is specific."""
    from musicrfm.experiments.report.tables import (
        accuracy_table,
        compare_conditions,
        specificity_statement,
    )

    coef = float(protocol.value("controls.coef"))
    lines = [f"# Causal controls at η0={coef:g} (ours; not in the paper)", "", *header, ""]
    record: dict[str, Any] = {
        "coef": coef,
        "kinds": protocol.value("controls.kinds"),
        "concepts": {},
    }
    for concept, frame in results.items():
        main = frame[frame["kind"].isin(["main", "unsteered"])]
        acc = accuracy_table(main, by=("condition",))
        probe = (
            main.groupby("condition")["probe_correct"].apply(
                lambda s: s.dropna().astype(float).mean()
            )
            if "probe_correct" in main.columns
            else pd.Series(dtype=float)
        )
        diff = compare_conditions(main[main["kind"] == "main"], by=("concept", "coef"))
        statement = specificity_statement(diff)
        lines += [f"## {LABELS.get(concept, concept)}", "", statement, ""]
        lines += [
            "| condition | detector acc. | 95% CI | probe acc. | n |",
            "|---|---:|---:|---:|---:|",
        ]
        rows = []
        for _, r in acc.iterrows():
            cond = str(r["condition"])
            p = _fmt(_num(probe.get(cond))) or "–"
            lines.append(
                f"| {cond} | {r['accuracy']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {p} "
                f"| {int(r['n'])} |"
            )
            rows.append({**{k: r[k] for k in ("condition", "accuracy", "ci_low", "ci_high", "n")},
                         "probe_acc": _num(probe.get(cond))})  # fmt: skip
        lines.append("")
        record["concepts"][concept] = {
            "accuracy": rows,
            "differences": diff.to_dict(orient="records"),
            "specificity": statement,
        }
    md, js = out / "controls.md", out / "controls.json"
    write_text_atomic(md, "\n".join(lines) + "\n")
    write_json_atomic(js, record, indent=2, default=str)
    return {"markdown": md, "json": js}
