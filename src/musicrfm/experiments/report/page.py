"""The HTML page of a report and :func:`build_report`, which writes a whole report folder."""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.metrics import bootstrap_ci
from musicrfm.experiments.report.figures import plot_accuracy_vs_coef, plot_audio_panels, plot_trace
from musicrfm.experiments.report.tables import (
    accuracy_table,
    compare_conditions,
    specificity_statement,
    with_correct,
    write_table,
)

log = logging.getLogger(__name__)


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
    # chance: one over the number of classes, for every detector that names its classes
    chance = {c: 1.0 / len(d.labels) for c in det.concepts() if (d := det.get_detector(c)).labels}
    acc_fig = plot_accuracy_vs_coef(table, out / "figures" / "accuracy_vs_coef.png", chance=chance)
    sections: list[tuple[str, str]] = []
    n_total = len(frame)
    intro = f"<p class='note'>{n_total} generated clips; accuracies by model-independent detectors; intervals are 95% percentile-bootstrap CIs (seed {seed}, {n_boot} resamples).</p>"
    if notes:
        intro += f"<p>{html.escape(notes)}</p>"
    sections.append(("Summary", intro))
    controls_html = _controls_section(frame, out, reference, n_boot, seed)
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
    cards = [_example_card(i, row, root, out) for i, (_, row) in enumerate(examples.iterrows())]
    if cards:
        sections.append(("Examples", "\n".join(cards)))
    overall = bootstrap_ci(frame["correct"].to_numpy(float), n_boot=n_boot, seed=seed)
    sections.append(("All clips", f"<p>Overall detector hit rate {html.escape(str(overall))}.</p>"))
    return write_html(out / "index.html", title=title, sections=sections)


def _controls_section(
    frame: pd.DataFrame, out: Path, reference: str, n_boot: int, seed: int
) -> str:
    """``controls.csv/.md`` with the specificity sentence, and their HTML ("" without controls)."""
    if reference not in set(frame["condition"]) or frame["condition"].nunique() <= 1:
        return ""
    comparison = compare_conditions(frame, reference=reference, n_boot=n_boot, seed=seed)
    write_table(
        comparison, out, "controls", title=f"{reference} minus each control (95% bootstrap CI)"
    )
    statement = specificity_statement(comparison, reference=reference)
    (out / "controls.md").write_text((out / "controls.md").read_text() + f"\n{statement}\n")
    return f"<p><b>{html.escape(statement)}</b></p>" + comparison.to_html(
        index=False, float_format=lambda v: f"{v:.3f}"
    )


def _example_card(i: int, row: pd.Series, root: Path, out: Path) -> str:
    """One example clip: audio player, spectrogram/chroma panels and the detector's trace."""
    audio = Path(row["audio_path"])
    audio = audio if audio.is_absolute() else root / audio
    caption = html.escape(
        f"{row['concept']} / {row['condition']} / η0={row['coef']} / target {row['target']} → {row['label']}"
    )
    if not audio.is_file():
        log.warning("example audio missing: %s", audio)
        return f"<figure><figcaption>{caption} (audio missing)</figcaption></figure>"
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
    return (
        f"<figure><audio controls preload='none' src='{html.escape(_rel(audio, out))}'></audio>"
        f"<img src='{_rel(panels, out)}' width='420' alt='spectrogram'>"
        f"<img src='{_rel(trace, out)}' width='420' alt='trace'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )
