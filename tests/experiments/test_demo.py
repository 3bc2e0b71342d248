"""`musicrfm demo` end to end: a reduced (quick) run on the bundled mini model.

The run writes the report and measures, with the independent note detector, whether the concept
direction beats its causal controls and the unsteered baseline. When the bundled model has not
been trained (no ``models/musicgen-mini``), the plumbing still runs on a random tiny MusicGen and
the steering claim is skipped: a random model cannot be steered toward anything.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from musicrfm.errors import ModelError


def _mini_available() -> bool:
    from musicrfm.models import bundled_model_dirs

    return any((d / "config.json").is_file() for d in bundled_model_dirs())


MINI = _mini_available()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from musicrfm.experiments.demo import DemoConfig, run_demo

    out = tmp_path_factory.mktemp("demo-report")
    work = tmp_path_factory.mktemp("demo-work")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI does: more threads are far slower on a shared CPU
    try:
        yield _run(run_demo, DemoConfig, out, work)
    finally:
        torch.set_num_threads(threads)


def _run(run_demo, DemoConfig, out, work):  # noqa: N803
    if MINI:
        return run_demo(model="mini", out=out, work=work, quick=True, progress=False)
    # plumbing only: a random tiny MusicGen, the smallest sizes that still exercise every stage
    cfg = replace(
        DemoConfig.quick(),
        clips_per_class=6,
        prompts=("acoustic piano", "violin"),
        crossfade_clips=2,
        seconds=1.0,
    )
    return run_demo(model="random:tiny", out=out, work=work, config=cfg, progress=False)


def test_report_files_exist_and_reference_audio(demo):
    out = demo.out
    for name in ("index.html", "results.csv", "summary.csv", "summary.md", "controls.csv",
                 "demo.json", "figures/accuracy_by_condition.png", "figures/crossfade_trace.png",
                 "figures/panel_unsteered.png", "figures/panel_concept.png",
                 "directions/notes.safetensors", "directions/notes.json"):  # fmt: skip
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
    page = (out / "index.html").read_text()
    sources = re.findall(r"<audio[^>]*src='([^']+)'", page)
    assert sources, "the HTML has no audio players"
    for src in sources:
        assert (out / src).is_file() and (out / src).stat().st_size > 0, src
    for fig in re.findall(r"<img src='([^']+)'", page):
        assert (out / fig).is_file(), fig
    results = pd.read_csv(out / "results.csv")
    assert len(results) == len(demo.results)
    assert all((out / p).is_file() for p in results["audio_path"])
    assert {"unsteered", "concept", "random", "flip", "crossfade"} <= set(results["condition"])


def test_summary_has_ci_and_n_for_every_condition(demo):
    s = demo.summary
    assert {"unsteered", "concept", "random", "flip"} <= set(s["condition"])
    assert (s["n"] >= 2).all()
    assert ((s["ci_low"] <= s["accuracy"]) & (s["accuracy"] <= s["ci_high"])).all()
    steady = demo.results[demo.results["kind"] == "steady"]
    # paired design: every condition saw the same prompts and seeds
    pairs = steady.groupby(["condition", "coef"])[["prompt", "seed"]].apply(
        lambda g: tuple(sorted(zip(g["prompt"], g["seed"])))
    )
    assert pairs.nunique() == 1
    xf = demo.crossfade
    assert xf["n"] >= 1 and len(xf["prob_a"]) == len(xf["times"]) >= 2


@pytest.mark.skipif(not MINI, reason="the bundled mini model is not trained (musicrfm mini train)")
def test_concept_direction_beats_controls_and_baseline(demo):
    """The headline, measured by a detector that never sees MusicGen."""
    concept = demo.accuracy("concept")
    others = {c: demo.accuracy(c) for c in ("unsteered", "random", "flip")}
    report = ", ".join(
        f"{c} {r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] n={r['n']}"
        for c, r in {"concept": concept, **others}.items()
    )
    for name, r in others.items():
        assert concept["accuracy"] > r["accuracy"], f"concept does not beat {name}: {report}"
    comp = demo.comparisons.set_index("control")
    for name in others:
        assert comp.loc[name, "ci_low"] > 0, f"difference to {name} not above 0: {report}"


def test_missing_bundled_model_says_how_to_train(tmp_path, monkeypatch):
    import musicrfm.models.loader
    from musicrfm.experiments.demo import run_demo

    monkeypatch.setattr(
        musicrfm.models.loader,
        "bundled_model_dirs",
        lambda folder="musicgen-mini": [tmp_path / "nothing"],
    )
    with pytest.raises(ModelError, match="musicrfm mini train"):
        run_demo(model="mini", out=tmp_path / "out", work=tmp_path / "work", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_registers_demo():
    from musicrfm.cli import build_parser

    args = build_parser().parse_args(["demo", "--quick", "--target", "F#", "--out", "x"])
    assert args.quick and args.target == "F#" and Path(args.out) == Path("x")


def test_chord_part_runs_and_shows_in_the_report(tmp_path):
    """The chord part learns chord directions, steers toward one quality with the controls and
    is judged by the chord detector (plumbing on a random model: it steers nothing)."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.chords import run_chord_part
    from musicrfm.experiments.demo.report import _chord_section

    cfg = DemoConfig.quick(chord_model="random:tiny", prompts=("violin",), seeds_per_prompt=2,
                           clips_per_class=6, seconds=1.0)  # fmt: skip
    chords = run_chord_part(cfg, tmp_path / "work", tmp_path / "out", progress=False)
    conditions = [r["condition"] for r in chords["summary"]]
    assert conditions[:2] == ["unsteered", "concept"] and {"random", "flip"} <= set(conditions)
    assert chords["target"] == "augmented" and all(r["n"] == 2 for r in chords["summary"])
    title, body = _chord_section(chords)
    assert "polyphonic testbed" in title and "augmented" in body
    assert (tmp_path / "out" / "results_chords.csv").is_file()


def test_a_missing_chord_model_skips_the_chord_part_with_a_notice(tmp_path, caplog):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import _chord_part

    cfg = DemoConfig.quick(chord_model=str(tmp_path / "no-such-model"))
    assert _chord_part(cfg, tmp_path, tmp_path, 0, "cpu", False) is None
    assert "no chord part" in caplog.text
    assert _chord_part(DemoConfig.quick(), tmp_path, tmp_path, 0, "cpu", False) is None
