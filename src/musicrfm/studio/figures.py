"""The page's plots: per-layer scores of a bundle, the φ(t) preview of a request, and the
detector's trace of a finished clip against what was steered when.

Figures are `matplotlib.figure.Figure` objects (no pyplot, so no global state between sessions);
the page shows them with ``gr.Plot``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from musicrfm.studio.bundles import Bundle

WINDOW_S, HOP_S = 0.5, 0.25  # the note detector's trace windows (as in the sequence study)


def _figure(height: float = 2.6) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.0, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def scores_figure(bundle: Bundle) -> Figure:
    """Per-layer validation score of every class (what layer weighting reads)."""
    cd = bundle.directions
    fig, ax = _figure()
    scores = cd.scores.detach().float().cpu().numpy()
    for j, name in enumerate(cd.classes):
        ax.plot(cd.layers, scores[:, j], marker="o", ms=3, lw=1, label=name)
    ax.set_xlabel("decoder layer (0 = bottom)")
    ax.set_ylabel(str(cd.meta.get("score_name", "score")))
    ax.set_title(f"{bundle.name}: per-layer probe scores", fontsize=10)
    ax.legend(ncol=6, fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def direction_curves(plan: Any, frame_rate: float, seconds: float, steps: int) -> list[tuple]:
    """[(label, seconds (n,), φ (n,), coef)] of every plan direction, φ sampled per step."""
    if plan is None:
        return []
    t = np.arange(steps) / frame_rate
    out = []
    for d in plan.directions:
        phi = d.schedule.resolve(frame_rate=frame_rate, horizon=steps).values(steps)
        out.append((str(d.target), t, np.asarray(phi, dtype=np.float64), float(d.coef)))
    return out


def schedule_figure(plan: Any, frame_rate: float, seconds: float) -> Figure:
    """φ(t) of every direction the request would steer (the schedule editor's preview)."""
    steps = int(round(seconds * frame_rate)) + 1
    fig, ax = _figure(2.2)
    curves = direction_curves(plan, frame_rate, seconds, steps)
    for label, t, phi, _ in curves:
        ax.plot(t, phi, lw=1.5, label=label)
    if not curves:
        ax.text(0.5, 0.5, "nothing steered: pick a knob class or a note sequence",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)  # fmt: skip
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(0, seconds)
    ax.set_xlabel("seconds")
    ax.set_ylabel("φ(t)")
    ax.set_title("schedule preview", fontsize=10)
    if curves:
        ax.legend(ncol=6, fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def strength_over_time(take: Any, frame_rate: float, scales: Mapping[int, float]) -> list[tuple]:
    """[(label, seconds, strength(t))]: each direction's φ(t)·η0(t)/scale, with the live
    changes the take recorded applied from the step they took effect at."""
    steps = int(round(take.seconds * frame_rate)) + 1
    curves = direction_curves(take.plan, frame_rate, take.seconds, steps)
    out = []
    for m, (label, t, phi, coef) in enumerate(curves):
        eta = np.full(steps, coef)
        for e in take.events:
            if e.direction == m:
                eta[e.step :] = e.coef
        out.append((label, t, phi * eta / scales.get(m, 1.0)))
    return out


def detection(take: Any) -> Any:
    """The note detector's reading of a take (clip label, probabilities and the windowed
    trace), computed once; None for a clip shorter than one window."""
    from musicrfm.evaluation.detectors import detect_note

    if take.detection is None and len(take.audio) >= take.sample_rate * WINDOW_S:
        take.detection = detect_note(take.audio, take.sample_rate, window_s=WINDOW_S, hop_s=HOP_S)
    return take.detection


def trace_figure(take: Any, bundles: Mapping[str, Bundle], frame_rate: float) -> Figure:
    """The note detector over the clip: the probability of each steered class per window, over
    the strength that steered it (dashed), or the detected note when nothing was steered."""
    fig, ax = _figure(2.8)
    det = detection(take)
    if det is None:
        ax.text(0.5, 0.5, "too short to trace", ha="center", va="center", transform=ax.transAxes)
        return fig
    scales = _scales(take, bundles)
    curves = strength_over_time(take, frame_rate, scales) if take.plan is not None else []
    targets = [c[0] for c in curves if c[0] in det.classes]
    if det.trace_probs is not None and len(det.times):
        for name in dict.fromkeys(targets) or [det.label]:
            if name in det.classes:
                j = det.classes.index(name)
                ax.plot(det.times, det.trace_probs[:, j], marker="o", ms=3, label=f"P({name})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, take.seconds)
    ax.set_xlabel("seconds")
    ax.set_ylabel("detector probability")
    ax.set_title(f"note detector (no model inside) heard: {runs_text(det)}", fontsize=8)
    if curves:
        twin = ax.twinx()
        for label, t, s in curves:
            twin.plot(t, s, ls="--", lw=1, alpha=0.8, label=f"strength {label}")
        twin.set_ylabel("strength (× norm)")
        lo = min(0.0, min(float(s.min()) for _, _, s in curves))
        hi = max(0.05, max(float(s.max()) for _, _, s in curves))
        twin.set_ylim(lo - 0.01, hi * 1.1)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def runs_text(det: Any) -> str:
    """The detector's window labels as runs: ``D 0.2-1.8 s, G 2.0-3.8 s``."""
    out: list[list[Any]] = []
    for label, t in zip(det.trace_labels, det.times):
        if out and out[-1][0] == label:
            out[-1][2] = t
        else:
            out.append([label, t, t])
    return ", ".join(f"{lab} {a:.1f}-{b:.1f} s" for lab, a, b in out) or det.label


def _scales(take: Any, bundles: Mapping[str, Bundle]) -> dict[int, float]:
    """Direction index -> the activation scale of its bundle (to plot strengths, not η0)."""
    by_path = {str(b.path): b.scale for b in bundles.values()}
    if take.plan is None:
        return {}
    return {m: by_path.get(str(d.directions), 1.0) for m, d in enumerate(take.plan.directions)}


def detection_summary(take: Any) -> str:
    """One line: what the note detector heard (over the clip, and over time when that
    changes), and for each steered class the share of windows it was heard in."""
    det = detection(take)
    if det is None:
        return "too short for the note detector"
    parts = [f"heard **{det.label}** ({det.confidence:.2f})"]
    labels = list(det.trace_labels or [])
    if len(set(labels)) > 1:
        parts.append(f"over time {runs_text(det)}")
    if take.plan is not None:
        for d in take.plan.directions:
            if labels and d.target in det.classes:
                hits = sum(lab == d.target for lab in labels)
                parts.append(f"{d.target} in {hits}/{len(labels)} windows")
            elif det.probs is not None and d.target in det.classes:
                parts.append(f"P({d.target}) {det.probs[det.classes.index(d.target)]:.2f}")
    return ", ".join(dict.fromkeys(parts))
