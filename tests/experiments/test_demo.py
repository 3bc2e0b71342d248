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
from musicrfm.synth.concepts import CONCEPTS

SCALE_LABELS = set(CONCEPTS["scales"].labels)


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
    """The default second part learns chord directions, steers toward one quality with the
    controls and is judged by the chord detector (plumbing on a random model: it steers
    nothing)."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.part import run_concept_part
    from musicrfm.experiments.demo.report import part_section

    cfg = DemoConfig.quick(part_model="random:tiny", prompts=("violin",), seeds_per_prompt=2,
                           clips_per_class=6, seconds=1.0)  # fmt: skip
    part = run_concept_part(cfg, tmp_path / "work", tmp_path / "out", progress=False)
    conditions = [r["condition"] for r in part["summary"]]
    assert conditions[:2] == ["unsteered", "concept"] and {"random", "flip"} <= set(conditions)
    assert part["target"] == "augmented" and all(r["n"] == 2 for r in part["summary"])
    assert part["concept"] == "chords" and part["chance"] == 0.25
    assert part["train_set"] == "strikes"  # the testbed's own kind of clip
    from musicrfm.probes.directions import ConceptDirections

    saved = ConceptDirections.load(tmp_path / "out" / "directions" / "chords")
    assert saved.activation_norm() == pytest.approx(part["activation_scale"])  # the pair's 0.2x
    title, body = part_section(part)
    assert title.startswith("Chord quality") and "augmented triad" in body
    results = pd.read_csv(tmp_path / "out" / "results_chords.csv")
    assert set(results["concept"]) == {"chords"}  # rows name the part's concept, not notes
    # the progression: 4 bars judged in every clip of both conditions, and its figure
    prog = part["progression"]
    assert prog["chords"] == "C G Am F" and set(prog["conditions"]) == {"unsteered", "steered"}
    for c in prog["conditions"].values():
        assert c["clips"] == 1 and c["bars"] == 4 and len(c["quality_by_bar"]) == 4
        assert 0 <= c["chord"]["value"] <= c["quality"]["value"] <= 1
    assert (tmp_path / "out" / prog["figure"]).is_file()
    assert "C G Am F" in body and "progression.png" in body


def test_a_part_of_another_concept_is_judged_by_its_detector(tmp_path):
    """``--part scales:dorian``: the scale set, scale directions, the scale detector."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.part import run_concept_part
    from musicrfm.experiments.demo.report import part_section

    cfg = DemoConfig.quick(part_model="random:tiny", part_concept="scales", part_target="Dorian",
                           prompts=("violin",), seeds_per_prompt=2, clips_per_class=6,
                           seconds=1.0, controls=("random",))  # fmt: skip
    part = run_concept_part(cfg, tmp_path / "work", tmp_path / "out", progress=False)
    assert part["concept"] == "scales" and part["target"] == "dorian"
    assert part["train_set"] == "synthetic"  # strike clips have no scales
    assert part["chance"] == pytest.approx(1 / 7)
    results = pd.read_csv(tmp_path / "out" / "results_scales.csv")
    assert set(results["concept"]) == {"scales"} and len(results) == 2 + 2 + 2
    assert set(results["label"]) <= {*SCALE_LABELS, "none", "silent"}
    assert "dorian mode" in part_section(part)[1]


def test_the_tempo_part_measures_the_bpm_change_each_way(tmp_path):
    """``--part tempos:faster``: a regression direction, judged by the median detected BPM."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.part import run_concept_part
    from musicrfm.experiments.demo.report import part_section

    cfg = DemoConfig.quick(part_model="random:tiny", part_concept="tempos", part_target="faster",
                           prompts=("violin",), seeds_per_prompt=2, clips_per_class=6,
                           seconds=1.0)  # fmt: skip
    part = run_concept_part(cfg, tmp_path / "work", tmp_path / "out", progress=False)
    conditions = {r["condition"] for r in part["rows"]}
    assert {"unsteered", "faster", "slower", "flip (faster)"} <= conditions
    assert set(part["overall"]) >= {"faster", "slower", "passed"}
    title, body = part_section(part)
    assert title.startswith("Tempo") and "median detected BPM" in body
    assert (tmp_path / "out" / "tempos" / "headline.json").is_file()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("chords:Cm", ("chords", "minor")), ("chord:C+", ("chords", "augmented")),
     ("intervals:5", ("intervals", "P4")), ("intervals:perfect fifth", ("intervals", "P5")),
     ("scales:Dorian", ("scales", "dorian")), ("meter:3/4", ("time_signatures", "3/4")),
     ("notes:Db", ("notes", "C#")), ("tempos:Slower", ("tempos", "slower")),
     ("progressions:I-V-vi-IV", ("progressions", "I-V-vi-IV"))],
)  # fmt: skip
def test_part_names_as_users_write_them(text, expected):
    from musicrfm.experiments.demo.part import parse_part

    assert parse_part(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("chords", "CONCEPT:CLASS"), ("keys:C", "training set and a detector"),
     ("chords:sus4", "valid: major, minor, augmented, diminished"),
     ("intervals:P13", "valid: m2"), ("tempos:120", "tempos:faster or tempos:slower")],
)  # fmt: skip
def test_a_bad_part_lists_what_is_valid_before_any_model_loads(text, message, monkeypatch, capsys):
    from musicrfm.cli import main

    monkeypatch.setattr("musicrfm.models.load_model", _no_model)
    assert main(["demo", "--part", text, "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def _no_model(*args, **kwargs):
    raise AssertionError("the model loaded before the --part check")


def test_cli_part_options():
    from musicrfm.cli import build_parser

    args = build_parser().parse_args(["demo", "--part", "intervals:P5", "--part-model", "m"])
    assert args.part == "intervals:P5" and args.part_model == "m" and not args.no_part


def test_a_missing_part_model_skips_the_part_with_a_notice(tmp_path, caplog):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import _concept_part

    cfg = DemoConfig.quick(part_model=str(tmp_path / "no-such-model"))
    assert _concept_part(cfg, tmp_path, tmp_path, 0, "cpu", False) is None
    assert "no chords part" in caplog.text
    assert _concept_part(DemoConfig.quick(), tmp_path, tmp_path, 0, "cpu", False) is None


def test_a_bad_progression_is_one_line_before_any_model_loads(monkeypatch, capsys):
    from musicrfm.cli import main

    monkeypatch.setattr("musicrfm.models.load_model", _no_model)
    assert main(["demo", "--progression", "C Gsus9 F", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Gsus9" in err and len(err.strip().splitlines()) == 1


def test_the_cli_lines_on_the_part_and_the_progression():
    from musicrfm.commands.demo import part_line, progression_line

    rows = [{"condition": "unsteered", "coef": 0.0, "accuracy": 0.25, "ci_low": 0.06,
             "ci_high": 0.44, "n": 16},
            {"condition": "concept", "coef": 3.08, "accuracy": 0.875, "ci_low": 0.69,
             "ci_high": 1.0, "n": 16}]  # fmt: skip
    part = {"concept": "chords", "model_id": "m", "target": "augmented", "summary": rows}
    assert part_line(part) == (
        "chords on m, toward augmented at η0=3.08: accuracy 0.88 [0.69, 1.00] n=16 against "
        "0.25 unsteered"
    )
    cond = {"bars": 32, "quality": {"value": 0.5625, "ci": [0.5, 0.66]},
            "chord": {"value": 0.125, "ci": [0.03, 0.22]}}  # fmt: skip
    low = {"bars": 32, "quality": {"value": 0.1875, "ci": [0.06, 0.34]},
           "chord": {"value": 0.0, "ci": [0.0, 0.0]}}  # fmt: skip
    prog = {"chords": "C Caug F Faug", "conditions": {"steered": cond, "unsteered": low}}
    assert progression_line(prog) == (
        "progression C Caug F Faug: quality right in 0.56 [0.50, 0.66] of 32 bars against 0.19 "
        "unsteered; root + quality 0.12 against 0.00"
    )
