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
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments import report as rep
from musicrfm.experiments.sweep.run import load_results

log = logging.getLogger(__name__)

TABLES = {
    "table5": ("multi", "Multi-direction steering (paper Table 5)"),
    "table6": ("schedule", "Time-dependent schedules and crossfades (paper Table 6)"),
    "table8": ("weighting", "Layer weighting ablation (paper Table 8)"),
    "table9": ("top_k", "Top-K layer selection ablation (paper Table 9)"),
    "table10": ("gate", "Injection probability ablation (paper Table 10)"),
}
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


def _metric(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    try:
        return float(fn(a, b))
    except Exception as e:  # too few clips, degenerate embeddings
        log.debug("metric failed: %s", e)
        return float("nan")


def _stack(series: pd.Series) -> np.ndarray:
    return (
        np.stack([np.asarray(v, dtype=float) for v in series]) if len(series) else np.zeros((0, 1))
    )


def _metrics(
    group: pd.DataFrame, reference: pd.DataFrame, n_boot: int, seed: int
) -> dict[str, Any]:
    from musicrfm.evaluation.metrics import bootstrap_ci, frechet_distance, mmd_rbf

    acc = bootstrap_ci(group["correct"].astype(float).to_numpy(), n_boot=n_boot, seed=seed)
    row: dict[str, Any] = {
        "n": int(len(group)),
        "detector_acc": acc.value,
        "detector_ci_low": acc.low,
        "detector_ci_high": acc.high,
    }
    if "probe_correct" in group.columns and group["probe_correct"].notna().any():
        row["probe_acc"] = float(group["probe_correct"].dropna().astype(float).mean())
    if "embedding" in group.columns and len(reference):
        if "embedding_backend" in group.columns and "embedding_backend" in reference.columns:
            # a resumed sweep may mix back-ends: compare like with like (the group's first)
            g_backend = group["embedding_backend"].fillna("mfcc")  # rows from before the column
            r_backend = reference["embedding_backend"].fillna("mfcc")
            backend = g_backend.iloc[0]
            group, reference = group[g_backend == backend], reference[r_backend == backend]
            row["embedding"] = str(backend)
        a, b = _stack(group["embedding"]), _stack(reference["embedding"])
        ok = len(a) and len(b) and a.shape[1] == b.shape[1]
        row["fd"] = _metric(frechet_distance, a, b) if ok else float("nan")
        row["mmd"] = _metric(mmd_rbf, a, b) if ok else float("nan")
    if "clap" in group.columns and group["clap"].notna().any():
        row["clap"] = float(group["clap"].mean())
    if "instrument_match" in group.columns and group["instrument_match"].notna().any():
        row["instrument_adherence"] = float(group["instrument_match"].dropna().mean())
    return row


def _reference(frame: pd.DataFrame, concept: str) -> pd.DataFrame:
    ref = frame[(frame["condition"] == "unsteered") & (frame["concept"] == concept)]
    return ref.drop_duplicates(subset=["prompt", "seed"])


def paper_tables(
    frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The paper-format tables (see the module docstring) for the results of a sweep."""
    tables: dict[str, pd.DataFrame] = {}
    main = frame[(frame["kind"] == "main") & (frame["condition"] == "concept")]
    rows = []
    for (concept, coef), g in main.groupby(["concept", "coef"], sort=True):
        rows.append(
            {
                "concept": concept,
                "coef": coef,
                **_metrics(g, _reference(frame, concept), n_boot, seed),
            }
        )
    long = pd.DataFrame(rows)
    if not long.empty:
        value_cols = [
            c
            for c in ("fd", "mmd", "clap", "instrument_adherence", "probe_acc", "detector_acc")
            if c in long.columns
        ]
        wide = long.pivot(index="concept", columns="coef", values=value_cols)
        wide.columns = [f"{m} η0={c:g}" for m, c in wide.columns]
        tables["table2"] = wide.reset_index()
        tables["table2_long"] = long
    for name, (kind, _) in TABLES.items():
        kinds = ("schedule", "crossfade") if kind == "schedule" else (kind,)
        part = frame[frame["kind"].isin(kinds)]
        rows = []
        keys = ["concept", "coef"] if kind == "multi" else ["kind", "concept", "variant", "coef"]
        for key, g in part.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            rows.append(
                {
                    **dict(zip(keys, key)),
                    **_metrics(g, _reference(frame, g["concept"].iloc[0]), n_boot, seed),
                }
            )
        if rows:
            tables[name] = pd.DataFrame(rows)
    return tables


def _mean_trace(
    group: pd.DataFrame, column: str, times_column: str = "trace_times"
) -> tuple[np.ndarray, np.ndarray] | None:
    if column not in group.columns or times_column not in group.columns:
        return None
    have = [
        (np.asarray(t, float), np.asarray(v, float))
        for t, v in zip(group[times_column], group[column])
        if isinstance(v, (list, np.ndarray)) and len(v) and isinstance(t, (list, np.ndarray))
    ]
    if not have:
        return None
    times = [t for t, _ in have]
    traces = [v for _, v in have]
    n = min(len(t) for t in traces)
    return times[0][:n], np.mean([t[:n] for t in traces], axis=0)


def _mean_probs(group: pd.DataFrame) -> tuple[list[str], np.ndarray] | None:
    """Mean over clips of the probe's (windows, classes) softmax traces, and the class names."""
    if "probe_trace_probs" not in group.columns or "probe_trace_classes" not in group.columns:
        return None
    have = [
        (list(c), np.asarray(p, float))
        for p, c in zip(group["probe_trace_probs"], group["probe_trace_classes"])
        if isinstance(p, (list, np.ndarray)) and len(p) and isinstance(c, (list, np.ndarray))
    ]
    if not have or any(c != have[0][0] or p.ndim != 2 for c, p in have):
        return None
    n = min(len(p) for _, p in have)
    return have[0][0], np.mean([p[:n] for _, p in have], axis=0)


def trace_figures(
    frame: pd.DataFrame,
    out: Path,
    frame_rate: float,
    seconds: float | None = None,
    *,
    source: str = "detector",
) -> list[tuple[str, Path]]:
    """Mean probability of the target over time per schedule / crossfade, with the schedule's
    strength overlaid (the paper's Figure 1). ``source="detector"``: judged by an independent
    detector; ``source="probe"``: the multiclass RFM probe on the clip's own activations."""
    from musicrfm.evaluation.detectors import Detection
    from musicrfm.steering.schedules import Schedule, parse_schedule

    if source not in ("detector", "probe"):
        raise ConfigError(f"unknown trace source {source!r}; use detector or probe")
    probe = source == "probe"
    figs = []
    part = frame[frame["kind"].isin(["schedule", "crossfade"])]
    for i, ((kind, concept, variant, target), g) in enumerate(
        part.groupby(["kind", "concept", "variant", "target"], sort=True)
    ):
        prefix, times_column = ("probe_", "probe_trace_times") if probe else ("", "trace_times")
        tgt = _mean_trace(g, f"{prefix}trace_target", times_column)
        if tgt is None:
            continue
        times, probs, classes = tgt[0], [tgt[1]], [str(target)]
        sched = None
        if kind == "crossfade":
            a = _mean_trace(g, f"{prefix}trace_a", times_column)
            if a is not None:
                m = min(len(a[1]), len(probs[0]))
                probs = [probs[0][:m], a[1][:m]]
                times = times[:m]
                classes.append(str(variant).split("->")[0])
            schedule: Schedule = parse_schedule("linear-rise")
        else:
            schedule = parse_schedule(str(variant))
        if len(times):
            length = seconds if seconds else float(times[-1]) + float(times[0])
            horizon = max(int(round(length * frame_rate)), 1)
            steps = np.arange(horizon)
            sched = (steps / frame_rate, schedule.values(horizon, frame_rate=frame_rate))
        matrix = np.stack(probs, axis=1) if len(times) else None
        full = _mean_probs(g) if probe else None
        if full is not None and str(target) in full[0] and len(full[1]) == len(times):
            classes, matrix = list(full[0]), full[1]  # the probe's softmax over all classes
        det = Detection(
            concept=concept,
            label=str(target),
            confidence=float(np.mean(probs[0])) if len(probs[0]) else 0.0,
            classes=tuple(classes),
            times=np.asarray(times),
            trace_probs=matrix,
        )
        title = f"{kind} {variant}: {source} P({target}) over time (mean of {len(g)} clips)"
        try:
            path = rep.plot_trace(
                det,
                out / "figures" / f"{prefix}trace_{i:02d}.png",
                title=title,
                target=str(target),
                schedule=sched,
                ylabel=f"{source} probability",
            )
        except Exception as e:  # a figure must not sink the report
            log.warning("trace figure failed for %s %s: %s", kind, variant, e)
            continue
        figs.append((title, path))
    return figs


def plot_layer_scores(concepts: dict[str, Any], path: Path) -> Path | None:
    """Per-layer direction scores (mean over classes) per concept, from ``sweep.json``."""
    have = {n: c for n, c in concepts.items() if c.get("layer_scores")}
    if not have:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, c in have.items():
        ax.plot(c["layers"], c["layer_scores"], marker="o", label=f"{name} ({c.get('score_name')})")
    ax.set_xlabel("layer (0-based decoder block output)")
    ax.set_ylabel("validation score")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


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
    info_path = sweep_dir / "sweep.json"
    if not info_path.is_file():
        raise ConfigError(
            f"{sweep_dir} is not a sweep folder (no sweep.json); run `musicrfm sweep` first"
        )
    info = json.loads(info_path.read_text())
    frame = load_results(sweep_dir)
    if frame.empty:
        raise ConfigError(f"{sweep_dir} has no finished conditions yet")
    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    frame["correct"] = frame["correct"].astype(bool)
    flat = frame.drop(columns=[c for c in DROP if c in frame.columns])
    flat.to_csv(out / "results.csv", index=False)
    written: dict[str, Any] = {"results": out / "results.csv"}
    sections: list[tuple[str, str]] = []
    n_done, n_all = frame["condition_id"].nunique(), info.get("conditions")
    sections.append(
        (
            "Summary",
            f"<p class='note'>{len(frame)} generated clips in {n_done} of {n_all} conditions; "
            f"model {html.escape(str(info.get('model', {}).get('model_id')))}. Accuracies by "
            "model-independent detectors with 95% percentile-bootstrap CIs and n.</p>",
        )
    )
    main = flat[flat["kind"].isin(["main", "unsteered"])]
    statement = "No main-grid conditions finished yet."
    if not main.empty:
        acc = rep.accuracy_table(main, n_boot=n_boot, seed=seed)
        written["accuracy"] = rep.write_table(
            acc, out, "accuracy", title="Target accuracy (95% bootstrap CI)"
        )[1]
        fig = rep.plot_accuracy_vs_coef(acc, out / "figures" / "accuracy_vs_coef.png")
        section = f"<img src='figures/{fig.name}' alt='accuracy vs η0'>" + acc.to_html(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
        if "probe_correct" in main.columns and main["probe_correct"].notna().any():
            pm = main[main["probe_correct"].notna()].assign(
                correct=lambda d: d["probe_correct"].astype(bool)
            )
            pacc = rep.accuracy_table(pm, n_boot=n_boot, seed=seed)
            written["probe_accuracy"] = rep.write_table(
                pacc,
                out,
                "probe_accuracy",
                title="The paper's probe accuracy (circular: a probe on MusicGen's own activations)",
            )[1]
            section += "<h3>Probe accuracy (paper's metric)</h3>" + pacc.to_html(
                index=False, float_format=lambda v: f"{v:.3f}"
            )
        sections.append(("Target accuracy vs η0", section))
        steered = main[main["kind"] == "main"]
        if steered["condition"].nunique() > 1:
            comparison = rep.compare_conditions(steered, n_boot=n_boot, seed=seed)
            statement = rep.specificity_statement(comparison)
            written["controls"] = rep.write_table(
                comparison,
                out,
                "controls",
                title="Concept direction minus each control (95% bootstrap CI)",
            )[1]
            (out / "controls.md").write_text((out / "controls.md").read_text() + f"\n{statement}\n")
            sections.append(
                (
                    "Causal controls",
                    f"<p><b>{html.escape(statement)}</b></p>"
                    + comparison.to_html(index=False, float_format=lambda v: f"{v:.3f}"),
                )
            )
        else:
            statement = "No controls were run, so specificity is untested."
    (out / "specificity.txt").write_text(statement + "\n")
    written["specificity"] = statement
    tables = paper_tables(frame, n_boot=n_boot, seed=seed)
    titles = {
        "table2": "Single-direction steering (paper Table 2)",
        "table2_long": "Single-direction steering, long form",
        **{k: v[1] for k, v in TABLES.items()},
    }
    for name, table in tables.items():
        written[name] = rep.write_table(table, out, name, title=titles.get(name, name))[1]
        sections.append(
            (titles.get(name, name), table.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
        )
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
    figs = trace_figures(
        frame,
        out,
        float(info.get("frame_rate") or 50.0),
        (info.get("config") or {}).get("seconds"),
    )
    if figs:
        sections.append(("Detector traces over time", _figure_list(figs)))
    probe_figs = trace_figures(
        frame,
        out,
        float(info.get("frame_rate") or 50.0),
        (info.get("config") or {}).get("seconds"),
        source="probe",
    )
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
    if examples:
        sections.append(("Examples", _examples(frame, sweep_dir, out, seed)))
    written["html"] = rep.write_html(
        out / "index.html",
        title=f"MusicRFM sweep: {info.get('config', {}).get('name', sweep_dir.name)}",
        sections=sections,
    )
    return written


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
            panels = rep.plot_audio_panels(
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
