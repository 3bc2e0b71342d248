"""Reports from a results table: CSV + Markdown tables, figures, and an HTML page with audio.

The input is one row per generated clip. Columns used (others are carried along):

``condition``  what was applied: "concept", "unsteered", "random", "sign_flip", "orthogonal", ...
``concept``    notes / chords / intervals / tempos
``target``     the class steered toward
``coef``       the steering strength eta0
``seed``       generation seed
``label``      the detector's label; ``confidence`` its confidence
``correct``    optional; computed from label/target with :func:`detectors.label_matches` if absent
``audio_path`` optional; enables audio players, spectrogram/chroma panels and traces

Every accuracy carries a bootstrap 95% CI and its n. Figures use matplotlib's object API
(no pyplot state), so building reports is safe in any process.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.metrics import bootstrap_ci, bootstrap_difference, grouped_accuracy

log = logging.getLogger(__name__)

REQUIRED = ("condition", "concept", "target", "coef", "label")


def with_correct(
    results: pd.DataFrame, *, tempo_factors: tuple[float, ...] = det.OCTAVE_FACTORS
) -> pd.DataFrame:
    """A copy of ``results`` with a boolean ``correct`` column (kept if already present)."""
    missing = [c for c in REQUIRED if c not in results.columns]
    if missing:
        raise ConfigError(f"results table lacks column(s): {', '.join(missing)}")
    if results.empty:
        raise ConfigError("results table is empty: nothing to report")
    out = results.copy()
    if "correct" not in out.columns:

        def hit(row: pd.Series) -> bool:
            options = (
                {"factors": tempo_factors} if det.concept_name(row["concept"]) == "tempos" else {}
            )
            return det.label_matches(row["concept"], str(row["label"]), row["target"], **options)

        out["correct"] = out.apply(hit, axis=1)
    out["correct"] = out["correct"].astype(bool)
    return out


def accuracy_table(
    results: pd.DataFrame,
    by: Sequence[str] = ("concept", "condition", "coef"),
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Target accuracy with bootstrap 95% CI and n per group (default concept x condition x coef)."""
    frame = with_correct(results)
    table = grouped_accuracy(frame, list(by), n_boot=n_boot, seed=seed)
    if "confidence" in frame.columns:
        conf = frame.groupby(list(by), dropna=False)["confidence"].mean().rename("mean_confidence")
        table = table.merge(conf.reset_index(), on=list(by), how="left")
    return table


def compare_conditions(
    results: pd.DataFrame,
    *,
    reference: str = "concept",
    by: Sequence[str] = ("concept", "coef"),
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy of ``reference`` minus each other condition, per group, with a bootstrap 95% CI.

    Both arms are resampled independently (seeded). ``specific`` is True where the whole interval
    is above zero: the effect exceeds what that control achieves at the same settings.
    """
    frame = with_correct(results)
    if reference not in set(frame["condition"]):
        raise ConfigError(
            f"no rows with condition {reference!r}; conditions: {sorted(set(frame['condition']))}"
        )
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ref = group.loc[group["condition"] == reference, "correct"].to_numpy(float)
        if ref.size == 0:
            continue
        for control, cg in group[group["condition"] != reference].groupby("condition"):
            ctl = cg["correct"].to_numpy(float)
            diff = bootstrap_difference(ref, ctl, n_boot=n_boot, rng=rng)
            rows.append(
                {
                    **dict(zip(by, key)),
                    "control": control,
                    "difference": diff.value,
                    "ci_low": diff.low,
                    "ci_high": diff.high,
                    "n_reference": ref.size,
                    "n_control": ctl.size,
                    "specific": bool(diff.low > 0),
                }
            )
    return pd.DataFrame(rows)


def specificity_statement(comparison: pd.DataFrame, *, reference: str = "concept") -> str:
    """One sentence for the report on whether the effect is specific to ``reference``."""
    if comparison.empty:
        return (
            f"No controls were run alongside the {reference} direction, so specificity is untested."
        )
    steered = comparison[comparison["coef"] != 0] if "coef" in comparison.columns else comparison
    steered = steered if not steered.empty else comparison
    beaten = sorted(set(steered.loc[steered["specific"], "control"]))
    not_beaten = sorted(set(steered["control"]) - set(beaten))
    if not not_beaten:
        return (
            f"The effect is specific to the {reference} direction: its accuracy exceeds every control "
            f"({', '.join(beaten)}) with a 95% bootstrap interval above zero at some strength."
        )
    return (
        f"The effect is NOT shown to be specific to the {reference} direction: it never beats "
        f"{', '.join(not_beaten)} with a 95% interval above zero"
        + (f" (it does beat {', '.join(beaten)})." if beaten else ".")
    )


# ----------------------------------------------------------------------------- tables


def to_markdown(frame: pd.DataFrame, *, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append("" if np.isnan(v) else format(float(v), floatfmt))
            elif v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append("")
            else:
                cells.append(str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame, out_dir: str | Path, name: str, *, title: str | None = None
) -> tuple[Path, Path]:
    """Write ``name.csv`` and ``name.md`` into ``out_dir``; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    frame.to_csv(csv_path, index=False)
    md_path.write_text((f"# {title}\n\n" if title else "") + to_markdown(frame))
    return csv_path, md_path


# ----------------------------------------------------------------------------- figures


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
    axes[1][0].set_yticks(range(12), det.PITCH_CLASSES)
    axes[1][0].set_xlabel("time (s)")
    axes[1][0].set_ylabel("chroma")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------- HTML


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), base.resolve())).as_posix()


def write_html(
    path: str | Path,
    *,
    title: str,
    sections: Sequence[tuple[str, str]],
) -> Path:
    """A self-contained HTML page from (heading, inner HTML) sections."""
    body = "\n".join(
        f"<section><h2>{html.escape(h)}</h2>\n{inner}\n</section>" for h, inner in sections
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
figcaption {{ font-size: 0.8em; }}
audio {{ width: 280px; display: block; }}
.note {{ background: #f4f4f4; padding: 0.5em 1em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _pick_examples(frame: pd.DataFrame, per_group: int, seed: int) -> pd.DataFrame:
    if "audio_path" not in frame.columns or per_group <= 0:
        return frame.iloc[0:0]
    has = frame[frame["audio_path"].notna()]
    if has.empty:
        return has
    picks = []
    for _, g in has.groupby(["concept", "condition", "coef"], sort=True):
        picks.append(g.sample(n=min(per_group, len(g)), random_state=seed))
    return pd.concat(picks)


def build_report(
    results: pd.DataFrame,
    out_dir: str | Path,
    *,
    title: str = "MusicRFM evaluation",
    reference: str = "concept",
    examples_per_group: int = 1,
    audio_root: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    notes: str = "",
) -> Path:
    """Write tables, figures and ``index.html`` for a results table; returns the HTML path.

    Files: ``results.csv`` (per clip, with ``correct``), ``accuracy.csv/.md``,
    ``controls.csv/.md`` (when a ``reference`` condition and controls are present),
    ``figures/accuracy_vs_coef.png``, and per example ``figures/example_*_{panels,trace}.png``.
    ``audio_path`` values are resolved against ``audio_root`` (default: ``out_dir``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = with_correct(results)
    frame.to_csv(out / "results.csv", index=False)
    table = accuracy_table(frame, n_boot=n_boot, seed=seed)
    write_table(
        table,
        out,
        "accuracy",
        title="Target accuracy by concept, condition and η0 (95% bootstrap CI)",
    )
    chance = {
        c: 1.0 / len(det.PITCH_CLASSES) if c == "notes" else 1.0 / len(det.CHORD_QUALITIES)
        for c in ("notes", "chords")
    }
    acc_fig = plot_accuracy_vs_coef(table, out / "figures" / "accuracy_vs_coef.png", chance=chance)
    sections: list[tuple[str, str]] = []
    n_total = len(frame)
    intro = f"<p class='note'>{n_total} generated clips; accuracies by model-independent detectors; intervals are 95% percentile-bootstrap CIs (seed {seed}, {n_boot} resamples).</p>"
    if notes:
        intro += f"<p>{html.escape(notes)}</p>"
    sections.append(("Summary", intro))
    controls_html = ""
    if reference in set(frame["condition"]) and frame["condition"].nunique() > 1:
        comparison = compare_conditions(frame, reference=reference, n_boot=n_boot, seed=seed)
        write_table(
            comparison, out, "controls", title=f"{reference} minus each control (95% bootstrap CI)"
        )
        statement = specificity_statement(comparison, reference=reference)
        (out / "controls.md").write_text((out / "controls.md").read_text() + f"\n{statement}\n")
        controls_html = f"<p><b>{html.escape(statement)}</b></p>" + comparison.to_html(
            index=False, float_format=lambda v: f"{v:.3f}"
        )
    sections.append(
        (
            "Target accuracy vs η0",
            f"<img src='{_rel(acc_fig, out)}' alt='accuracy vs coef'>"
            + table.to_html(index=False, float_format=lambda v: f"{v:.3f}"),
        )
    )
    if controls_html:
        sections.append(("Causal controls", controls_html))
    examples = _pick_examples(frame, examples_per_group, seed)
    root = Path(audio_root) if audio_root is not None else out
    cards = []
    for i, (_, row) in enumerate(examples.iterrows()):
        audio = Path(row["audio_path"])
        audio = audio if audio.is_absolute() else root / audio
        caption = html.escape(
            f"{row['concept']} / {row['condition']} / η0={row['coef']} / target {row['target']} → {row['label']}"
        )
        if not audio.is_file():
            log.warning("example audio missing: %s", audio)
            cards.append(f"<figure><figcaption>{caption} (audio missing)</figcaption></figure>")
            continue
        y, sr = det.load_audio(audio)
        panels = plot_audio_panels(
            y, sr, out / "figures" / f"example_{i:03d}_panels.png", title=caption
        )
        detection = det.detect(y, sr, row["concept"])
        trace = plot_trace(
            detection,
            out / "figures" / f"example_{i:03d}_trace.png",
            target=str(row["target"]) if row["concept"] != "tempos" else None,
        )
        cards.append(
            f"<figure><audio controls preload='none' src='{html.escape(_rel(audio, out))}'></audio>"
            f"<img src='{_rel(panels, out)}' width='420' alt='spectrogram'>"
            f"<img src='{_rel(trace, out)}' width='420' alt='trace'>"
            f"<figcaption>{caption}</figcaption></figure>"
        )
    if cards:
        sections.append(("Examples", "\n".join(cards)))
    overall = bootstrap_ci(frame["correct"].to_numpy(float), n_boot=n_boot, seed=seed)
    sections.append(("All clips", f"<p>Overall detector hit rate {html.escape(str(overall))}.</p>"))
    return write_html(out / "index.html", title=title, sections=sections)
