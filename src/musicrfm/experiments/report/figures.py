"""Figures of a report: accuracy vs η0 with CI bands, a detector's trace over time, and the
spectrogram / chroma panels of a clip. They use matplotlib's object API (no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation import detectors as det
from musicrfm.theory import PITCH_CLASSES


def _figure(
    width: float = 6.0, height: float = 4.0, rows: int = 1, cols: int = 1
) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def plot_accuracy_vs_coef(
    table: pd.DataFrame,
    path: str | Path,
    *,
    x: str = "coef",
    hue: str = "condition",
    facet: str = "concept",
    chance: Mapping[str, float] | None = None,
) -> Path:
    """Accuracy vs steering strength, one line per ``hue`` with its 95% CI band, one panel per
    ``facet``; n per point is annotated. ``table`` comes from :func:`accuracy_table`."""
    for col in (x, hue, "accuracy", "ci_low", "ci_high", "n"):
        if col not in table.columns:
            raise ConfigError(f"accuracy table lacks column {col!r}")
    facets = sorted(table[facet].unique()) if facet in table.columns else [None]
    fig, axes = _figure(4.5 * len(facets), 3.6, 1, len(facets))
    for ax, value in zip(axes[0], facets):
        part = table if value is None else table[table[facet] == value]
        for name, g in part.groupby(hue, sort=True):
            g = g.sort_values(x)
            line = ax.plot(g[x], g["accuracy"], marker="o", label=str(name))[0]
            ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.2)
            for xv, yv, n in zip(g[x], g["accuracy"], g["n"]):
                ax.annotate(
                    f"n={n}",
                    (xv, yv),
                    textcoords="offset points",
                    xytext=(0, 5),
                    fontsize=6,
                    ha="center",
                )
        if chance and value in chance:
            ax.axhline(chance[value], color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("η0" if x == "coef" else x)
        ax.set_ylabel("target accuracy (independent detector)")
        ax.set_title(str(value) if value is not None else "accuracy")
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_trace(
    detection: det.Detection,
    path: str | Path,
    *,
    title: str = "",
    target: str | None = None,
    schedule: tuple[np.ndarray, np.ndarray] | None = None,
    ylabel: str = "detector probability",
) -> Path:
    """A detector's trace over time: class probabilities per window as lines (the paper's
    Figure 1 style), or the numeric trace (BPM, MIDI) when there are no probabilities.
    ``schedule`` = (times, strengths) overlays the steering schedule on a second axis;
    ``ylabel`` names the source of the probabilities (e.g. ``"probe probability"``)."""
    fig, axes = _figure(7.0, 3.2)
    ax = axes[0][0]
    if detection.trace_probs is not None and len(detection.times):
        probs = detection.trace_probs
        top = np.argsort(probs.mean(axis=0))[::-1][:4]
        keep = [detection.classes.index(target)] if target in detection.classes else []
        keep += [int(k) for k in top if k not in keep]
        for k in keep:
            style = "-" if detection.classes[k] == target else "--"
            ax.plot(detection.times, probs[:, k], style, marker=".", label=detection.classes[k])
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(ylabel)
    elif detection.trace_values is not None and len(detection.times):
        ax.plot(detection.times, detection.trace_values, marker=".", label=detection.concept)
        ax.set_ylabel("BPM" if detection.concept == "tempos" else "value")
    else:
        ax.text(
            0.5,
            0.5,
            f"no trace ({detection.label})",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    if schedule is not None:
        twin = ax.twinx()
        twin.plot(schedule[0], schedule[1], color="black", alpha=0.4, linewidth=1, label="schedule")
        twin.set_ylabel("steering strength")
    ax.set_xlabel("time (s)")
    ax.set_title(title or f"{detection.concept}: {detection.label} ({detection.confidence:.2f})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_audio_panels(audio: Any, sr: int, path: str | Path, *, title: str = "") -> Path:
    """Log-frequency spectrogram above a CQT chromagram of one clip."""
    import librosa

    y = det.prepare_audio(audio, sr)
    s = det.SAMPLE_RATE
    fig, axes = _figure(7.0, 4.8, 2, 1)
    spec = librosa.amplitude_to_db(
        np.abs(librosa.stft(y, n_fft=2048, hop_length=det.HOP)) + 1e-10, ref=np.max
    )
    t_end = len(y) / s
    axes[0][0].imshow(
        spec,
        origin="lower",
        aspect="auto",
        extent=(0, t_end, 0, s / 2),
        vmin=-80,
        vmax=0,
        cmap="magma",
    )
    axes[0][0].set_yscale("symlog", linthresh=500)
    axes[0][0].set_ylim(30, s / 2)
    axes[0][0].set_ylabel("Hz")
    axes[0][0].set_title(title or "spectrogram")
    chroma = det.chromagram(y)
    chroma = chroma / (chroma.max(axis=0, keepdims=True) + 1e-12)
    axes[1][0].imshow(
        chroma, origin="lower", aspect="auto", extent=(0, t_end, -0.5, 11.5), cmap="viridis"
    )
    axes[1][0].set_yticks(range(12), PITCH_CLASSES)
    axes[1][0].set_xlabel("time (s)")
    axes[1][0].set_ylabel("chroma")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
