"""The report of a sweep folder (from :func:`musicrfm.experiments.sweep.run.run_sweep`).

Writes, next to the sweep (default ``<sweep>/report``):

* ``results.csv``: one row per clip (detector label, correctness, probe label, adherence, ...);
* ``accuracy.csv/.md``: target accuracy by concept x condition x η0, bootstrap 95% CI and n;
* ``controls.csv/.md`` + ``specificity.txt``: concept direction minus each causal control, and
  the sentence saying whether the effect is specific to the concept direction;
* the paper's tables as far as they apply: ``table2`` (single direction: FD, MMD, adherence,
  probe accuracy and detector accuracy per concept and η0), ``table5`` (multi-direction),
  ``table6`` (schedules and crossfades), ``table8`` (layer weighting), ``table9`` (top-K),
  ``table10`` (gate p); FD/MMD are against the unsteered clips of the same prompts and seeds on
  the sweep's embedding back-end (MusicGen pooled activations by default, MFCC by config);
  adherence is the instrument classifier's match rate or
  CLAP similarity when configured;
* figures: accuracy vs η0 with CI bands, detector traces and the multiclass probe's probability
  traces over time for schedules and crossfades (with the schedule overlaid; paper Figure 1), spectrogram/chroma panels of examples;
* ``index.html`` with all of it and audio players.

The tables are computed in :mod:`.tables` and the trace figures drawn in :mod:`.figures`.
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.report.figures import plot_accuracy_vs_coef, plot_audio_panels
from musicrfm.experiments.report.page import write_html
from musicrfm.experiments.report.tables import (
    accuracy_table,
    compare_conditions,
    specificity_statement,
    write_table,
)
from musicrfm.experiments.sweep.figures import plot_layer_scores, trace_figures
from musicrfm.experiments.sweep.run import load_results
from musicrfm.experiments.sweep.tables import TABLES, paper_tables

log = logging.getLogger(__name__)

DROP = (
    "embedding",
    "trace_times",
    "trace_target",
    "trace_a",
    "probe_trace_times",
    "probe_trace_target",
    "probe_trace_a",
    "probe_trace_probs",
    "probe_trace_classes",
)
Section = tuple[str, str]


def build_sweep_report(
    sweep_dir: str | Path,
    out: str | Path | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    examples: bool = True,
) -> dict[str, Any]:
    """Tables, figures and ``index.html`` for a sweep; returns paths and the specificity text."""
    sweep_dir = Path(sweep_dir)
    info, frame = _load_sweep(sweep_dir)
    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    frame["correct"] = frame["correct"].astype(bool)
    flat = frame.drop(columns=[c for c in DROP if c in frame.columns])
    flat.to_csv(out / "results.csv", index=False)
    written: dict[str, Any] = {"results": out / "results.csv"}
    sections: list[Section] = []
    n_done, n_all = frame["condition_id"].nunique(), info.get("conditions")
    sections.append(
        (
            "Summary",
            f"<p class='note'>{len(frame)} generated clips in {n_done} of {n_all} conditions; "
            f"model {html.escape(str(info.get('model', {}).get('model_id')))}. Accuracies by "
            "model-independent detectors with 95% percentile-bootstrap CIs and n."
            f"{_unit_note(info)}</p>",
        )
    )
    main = flat[flat["kind"].isin(["main", "unsteered"])]
    statement = "No main-grid conditions finished yet."
    if not main.empty:
        statement = _main_grid_sections(main, out, n_boot, seed, written, sections)
    (out / "specificity.txt").write_text(statement + "\n")
    written["specificity"] = statement
    sections += _paper_table_sections(frame, out, n_boot, seed, written)
    layer_fig = plot_layer_scores(info.get("concepts") or {}, out / "figures" / "layer_scores.png")
    if layer_fig is not None:
        sections.append(
            (
                "Per-layer direction scores",
                f"<img src='figures/{layer_fig.name}' alt='per-layer scores'>"
                "<p>Validation score of the directions per layer (mean over classes); it drives "
                "top-K selection and linear/exponential layer weights.</p>",
            )
        )
    sections += _trace_sections(frame, info, out, written)
    if examples:
        sections.append(("Examples", _examples(frame, sweep_dir, out, seed)))
    written["html"] = write_html(
        out / "index.html",
        title=f"MusicRFM sweep: {info.get('config', {}).get('name', sweep_dir.name)}",
        sections=sections,
    )
    return written


def _load_sweep(sweep_dir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """``sweep.json`` and the results of every finished condition; a clear error otherwise."""
    info_path = sweep_dir / "sweep.json"
    if not info_path.is_file():
        raise ConfigError(
            f"{sweep_dir} is not a sweep folder (no sweep.json); run `musicrfm sweep` first"
        )
    try:
        info = json.loads(info_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{info_path} is damaged ({exc}); run the same `musicrfm sweep` again to rewrite it "
            "(finished conditions are kept)"
        ) from None
    wrong = (
        [k for k in ("config", "model", "concepts") if not isinstance(info.get(k, {}), dict)]
        if isinstance(info, dict)
        else ["the whole file"]
    )
    if wrong:
        raise ConfigError(
            f"{info_path} is damaged ({', '.join(wrong)} must be a table); run the same "
            "`musicrfm sweep` again to rewrite it (finished conditions are kept)"
        )
    frame = load_results(sweep_dir)
    if frame.empty:
        raise ConfigError(f"{sweep_dir} has no finished conditions yet")
    return info, frame


def _html_table(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:.3f}")


def _unit_note(info: dict[str, Any]) -> str:
    """What the η0 values of the tables mean when the sweep gave them relative."""
    coefs = (info.get("config") or {}).get("coefs") or []
    if not any(isinstance(c, str) for c in coefs):
        return ""
    return (
        " Every η0 here is relative: a multiple of the median activation norm its concept's "
        "directions were trained on (0.1 = '0.1x')."
    )


def _main_grid_sections(
    main: pd.DataFrame,
    out: Path,
    n_boot: int,
    seed: int,
    written: dict[str, Any],
    sections: list[Section],
) -> str:
    """Accuracy (detector, and the probe's when scored) vs η0 and the causal controls of the main
    grid; adds their files to ``written`` and sections to ``sections``, returns the specificity
    sentence."""
    acc = accuracy_table(main, n_boot=n_boot, seed=seed)
    written["accuracy"] = write_table(
        acc, out, "accuracy", title="Target accuracy (95% bootstrap CI)"
    )[1]
    fig = plot_accuracy_vs_coef(acc, out / "figures" / "accuracy_vs_coef.png")
    section = f"<img src='figures/{fig.name}' alt='accuracy vs η0'>" + _html_table(acc)
    if "probe_correct" in main.columns and main["probe_correct"].notna().any():
        pm = main[main["probe_correct"].notna()].assign(
            correct=lambda d: d["probe_correct"].astype(bool)
        )
        pacc = accuracy_table(pm, n_boot=n_boot, seed=seed)
        written["probe_accuracy"] = write_table(
            pacc,
            out,
            "probe_accuracy",
            title="The paper's probe accuracy (circular: a probe on MusicGen's own activations)",
        )[1]
        section += "<h3>Probe accuracy (paper's metric)</h3>" + _html_table(pacc)
    sections.append(("Target accuracy vs η0", section))
    steered = main[main["kind"] == "main"]
    if steered["condition"].nunique() <= 1:
        return "No controls were run, so specificity is untested."
    comparison = compare_conditions(steered, n_boot=n_boot, seed=seed)
    statement = specificity_statement(comparison)
    written["controls"] = write_table(
        comparison,
        out,
        "controls",
        title="Concept direction minus each control (95% bootstrap CI)",
    )[1]
    (out / "controls.md").write_text((out / "controls.md").read_text() + f"\n{statement}\n")
    sections.append(
        (
            "Causal controls",
            f"<p><b>{html.escape(statement)}</b></p>" + _html_table(comparison),
        )
    )
    return statement


def _paper_table_sections(
    frame: pd.DataFrame, out: Path, n_boot: int, seed: int, written: dict[str, Any]
) -> list[Section]:
    tables = paper_tables(frame, n_boot=n_boot, seed=seed)
    titles = {
        "table2": "Single-direction steering (paper Table 2)",
        "table2_long": "Single-direction steering, long form",
        **{k: v[1] for k, v in TABLES.items()},
    }
    sections = []
    for name, table in tables.items():
        written[name] = write_table(table, out, name, title=titles.get(name, name))[1]
        sections.append((titles.get(name, name), _html_table(table)))
    return sections


def _trace_sections(
    frame: pd.DataFrame, info: dict[str, Any], out: Path, written: dict[str, Any]
) -> list[Section]:
    """Detector traces, then the multiclass probe's probability traces (paper Figure 1)."""
    frame_rate = float(info.get("frame_rate") or 50.0)
    seconds = (info.get("config") or {}).get("seconds")
    sections = []
    figs = trace_figures(frame, out, frame_rate, seconds)
    if figs:
        sections.append(("Detector traces over time", _figure_list(figs)))
    probe_figs = trace_figures(frame, out, frame_rate, seconds, source="probe")
    if probe_figs:
        written["probe_traces"] = [p for _, p in probe_figs]
        sections.append(
            (
                "Probe-probability traces over time (paper Figure 1)",
                "<p class='note'>The multiclass RFM probe's softmax on the generated clip's own "
                "activations, pooled over time windows (circular, as in the paper; compare with "
                "the detector traces).</p>" + _figure_list(probe_figs),
            )
        )
    return sections


def _figure_list(figs: list[tuple[str, Path]]) -> str:
    return "\n".join(
        f"<figure><img src='figures/{p.name}' width='520'>"
        f"<figcaption>{html.escape(t)}</figcaption></figure>"
        for t, p in figs
    )


def _examples(frame: pd.DataFrame, sweep_dir: Path, out: Path, seed: int) -> str:
    from musicrfm.evaluation import detectors as det

    cards = []
    # one clip per kind / concept / condition / variant, at its strongest η0
    strongest = frame.sort_values("coef", ascending=False, kind="stable")
    picks = strongest.groupby(["kind", "concept", "condition", "variant"], sort=True).head(1)
    for i, (_, row) in enumerate(picks.iterrows()):
        audio = sweep_dir / row["audio_path"]
        caption = html.escape(
            f"{row['kind']} / {row['concept']} / {row['condition']} / {row['variant']} / "
            f"η0={row['coef']:g} / target {row['target']} → {row['label']}"
        )
        if not audio.is_file():
            cards.append(f"<figure><figcaption>{caption} (audio missing)</figcaption></figure>")
            continue
        try:
            y, sr = det.load_audio(audio)
            panels = plot_audio_panels(
                y, sr, out / "figures" / f"example_{i:03d}.png", title=caption
            )
        except Exception as e:
            log.warning("example panel failed for %s: %s", audio, e)
            cards.append(
                f"<figure><figcaption>{caption} ({html.escape(str(e))})</figcaption></figure>"
            )
            continue
        rel = Path(os.path.relpath(audio.resolve(), out.resolve())).as_posix()
        cards.append(
            f"<figure><audio controls preload='none' src='{html.escape(rel)}'></audio>"
            f"<img src='figures/{panels.name}' width='420' alt='spectrogram'>"
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return "\n".join(cards)
