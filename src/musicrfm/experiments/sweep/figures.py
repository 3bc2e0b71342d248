"""Figures of a sweep report: the mean target probability over time per schedule and crossfade
(detector or probe, with the schedule overlaid; the paper's Figure 1) and per-layer scores."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.report.figures import plot_trace

log = logging.getLogger(__name__)


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
            path = plot_trace(
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
