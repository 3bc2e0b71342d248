"""`musicrfm mini schedules`: φ at the detector's windows, the correlation and crossfade verdicts
on planted traces (they pass and they fail), and the pipeline on a random tiny MusicGen
(plumbing: a random model steers nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.schedules.config import (
    MONOTONE,
    SCHEDULES,
    SchedulesConfig,
    paper_schedules,
    parse_coef,
)
from musicrfm.experiments.schedules.scoring import (
    crossfade_verdict,
    phi_at,
    schedule_verdict,
    third_labels,
    trace_correlation,
)
from musicrfm.probes.directions import ConceptDirections
from musicrfm.theory import PITCH_CLASSES

SECONDS, FRAME_RATE = 5.0, 50.0
TIMES = np.arange(0.25, SECONDS - 0.2, 0.25)  # window centres, as the 0.5 s / 0.25 s trace gives


def test_paper_schedules_span_the_clip():
    s = paper_schedules(SECONDS, FRAME_RATE)
    assert tuple(s) == SCHEDULES
    phi = {k: phi_at(v, [0.0, SECONDS / 4, SECONDS / 2, SECONDS], FRAME_RATE, SECONDS)
           for k, v in s.items()}  # fmt: skip
    assert phi["linear-rise"] == pytest.approx([0, 0.25, 0.5, 1.0])
    assert phi["linear-decay"] == pytest.approx([1, 0.75, 0.5, 0.0])
    assert phi["logistic-rise"][2] == pytest.approx(0.5)
    assert phi["logistic-rise"][0] < 0.03 and phi["logistic-rise"][3] > 0.97
    # exp-decay falls over the clip as 0.998**t over the paper's 1500 steps
    assert phi["exp-decay"][0] == pytest.approx(1.0)
    assert phi["exp-decay"][3] == pytest.approx(0.998**1500, rel=1e-3)
    assert phi["sine"] == pytest.approx([0.5, 1.0, 0.5, 0.5], abs=1e-3)  # one full period


def _planted(phi, *, gain, noise, n, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(0.1 + gain * phi + noise * rng.standard_normal(phi.size), 0, 1)
            for _ in range(n)]  # fmt: skip


def test_a_trace_that_follows_phi_passes_and_one_that_does_not_fails():
    phi = phi_at(paper_schedules(SECONDS, FRAME_RATE)["linear-rise"], TIMES, FRAME_RATE, SECONDS)
    good = [trace_correlation(phi, p) for p in _planted(phi, gain=0.8, noise=0.05, n=12)]
    v = schedule_verdict(good, monotone=True, gate=0.7)
    assert v["r_mean"] > 0.9 and v["passed"] and v["passed_ci"] and v["shortfall"] == 0
    assert v["n"] == 12 and v["r_ci_low"] <= v["r_mean"] <= v["r_ci_high"]
    # a weak effect buried in noise: positive, but below the gate, and the shortfall says by how much
    weak = [trace_correlation(phi, p) for p in _planted(phi, gain=0.1, noise=0.2, n=12)]
    w = schedule_verdict(weak, monotone=True, gate=0.7)
    assert not w["passed"] and w["shortfall"] == pytest.approx(0.7 - w["r_mean"])
    # a trace that runs against φ
    against = [trace_correlation(phi, 1 - p) for p in _planted(phi, gain=0.8, noise=0.05, n=12)]
    assert schedule_verdict(against, monotone=True, gate=0.7)["r_mean"] < -0.9


def test_a_flat_or_silent_trace_counts_as_not_following():
    phi = np.linspace(0, 1, 10)
    assert np.isnan(trace_correlation(phi, np.full(10, 0.3)))  # stuck on one note
    labels = ["silent"] * 8 + ["G", "G"]
    assert np.isnan(trace_correlation(phi, phi, labels))  # too few sounding windows
    # silent windows are left out: a ramp whose silent windows read noise still correlates
    noisy = phi.copy()
    noisy[[1, 3]] = [0.9, 0.95]
    quiet = ["G", "silent", "G", "silent", *["G"] * 6]
    assert trace_correlation(phi, noisy, quiet) == pytest.approx(1.0)
    assert trace_correlation(phi, noisy) < 0.9
    # undefined r is scored 0, so a third of flat clips pulls a perfect mean down to 2/3
    v = schedule_verdict([1.0] * 8 + [np.nan] * 4, monotone=True, gate=0.7)
    assert v["undefined"] == 4 and v["r_mean"] == pytest.approx(2 / 3) and not v["passed"]
    with pytest.raises(ConfigError, match="length"):
        trace_correlation(phi, phi[:5])


def test_sine_has_no_target():
    v = schedule_verdict([0.2, 0.4], monotone=False, gate=0.7)
    assert v["passed"] is None and v["gate"] is None and v["shortfall"] is None
    assert set(MONOTONE) == set(SCHEDULES) - {"sine"}


def _crossfade_trace(first: str, last: str) -> tuple[np.ndarray, list[str]]:
    probs = np.full((len(TIMES), 12), 0.02)
    for i, t in enumerate(TIMES):
        probs[i, PITCH_CLASSES.index(first if t < SECONDS / 2 else last)] = 0.8
    return probs, [PITCH_CLASSES[int(np.argmax(p))] for p in probs]


def test_crossfade_thirds_and_verdict():
    probs, labels = _crossfade_trace("C", "G")
    assert third_labels(TIMES, probs, labels, SECONDS, PITCH_CLASSES) == ("C", "G")
    silent = ["silent"] * len(TIMES)
    assert third_labels(TIMES, probs, silent, SECONDS, PITCH_CLASSES) == ("silent", "silent")
    ok = crossfade_verdict(["C"] * 7 + ["E"], ["G"] * 8, "C", "G", gate=0.8)
    assert ok["passed"] and ok["starts_on_a"] == 7 / 8 and ok["ends_on_b"] == 1.0
    assert ok["both"] == 7 / 8 and ok["ends_ci_low"] < 1.0 == ok["ends_ci_high"]  # Wilson
    bad = crossfade_verdict(["C"] * 8, ["G"] * 5 + ["C"] * 3, "C", "G", gate=0.8)
    assert not bad["passed"] and bad["ends_on_b"] == 5 / 8 and bad["n"] == 8
    with pytest.raises(ConfigError):
        crossfade_verdict([], [], "C", "G", gate=0.8)


def test_config_errors_are_one_line():
    assert parse_coef("0.15x") == (0.15, None) and parse_coef("2.5") == (None, 2.5)
    for bad, match in (
        (dict(clips=1), "clips"),
        (dict(target="H"), "H"),
        (dict(crossfade=("C", "C")), "different"),
        (dict(coef="lots"), "coef"),
        (dict(schedules=("wobble",)), "wobble"),
        (dict(seconds=1.0), "too short"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            SchedulesConfig().with_changes(**bad).validate()
        assert "\n" not in str(info.value)


def _random_directions(adapter, concept: str, classes) -> ConceptDirections:
    """Seeded random unit directions for every class, scores and an activation norm of 10."""
    g = torch.Generator().manual_seed(0)
    L, d, k = adapter.num_layers, adapter.hidden_size, len(classes)
    v = torch.randn(L, k, 1, d, generator=g)
    meta = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d,
            "activation_norm": 10.0}  # fmt: skip
    return ConceptDirections(concept, list(classes), v / v.norm(dim=-1, keepdim=True),
                             torch.rand(L, k, generator=g), list(range(L)), meta=meta)  # fmt: skip


def test_pipeline_runs_end_to_end_on_a_random_model(tmp_path):
    """Given directions (training them would take longer than the run), 2 clips of 1.5 s per
    condition: every file is written and the record matches the JSON."""
    from dataclasses import replace

    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.schedules import run_schedules
    from musicrfm.models import load_model

    start = time.process_time()  # our own CPU time: the shared machine's load is not ours
    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "notes", PITCH_CLASSES)
    data = replace(DemoConfig.quick(), prompts=("acoustic piano", "violin"), seconds=1.5)
    cfg = SchedulesConfig(clips=2, coef="0.5x", data=data)
    out = tmp_path / "out"
    record = run_schedules(model=adapter, out=out, config=cfg, directions=cd, progress=False)
    assert json.loads((out / "schedules.json").read_text()) == record
    assert [e["schedule"] for e in record["schedules"]] == list(SCHEDULES)
    assert record["settings"]["eta0"] == pytest.approx(5.0)
    assert all(e["n"] == 2 for e in record["schedules"])
    assert record["crossfade"]["n"] == 2 and record["crossfade"]["a"] == "C"
    assert (out / "schedules.png").stat().st_size > 0
    md = (out / "schedules.md").read_text()
    assert "linear-rise" in md and "C -> G" in md and "Command:" in md
    assert record["crossfade"]["unsteered"]["n"] == 2 and "unsteered: starts / ends" in md
    lines = (out / "results.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 7 * 2  # 5 schedules + unsteered + crossfade, 2 clips each
    assert time.process_time() - start < 20, record["timings"]


def test_cli_rejects_an_unknown_note_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "schedules", "--model", "random:tiny",
         "--target", "H", "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "H" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_clips_cycle_the_prompts_and_a_sample_seed_gives_fresh_ones():
    from musicrfm.experiments.schedules.run import clip_items

    cfg = SchedulesConfig(clips=10)
    items = clip_items(cfg, 0)
    prompts = cfg.data.prompt_texts()
    assert [p for p, _ in items] == [prompts[i % len(prompts)] for i in range(10)]
    assert [s for _, s in items] == [0] * len(prompts) + [1000] * (10 - len(prompts))
    fresh = clip_items(cfg.with_changes(sample_seed=7), 0)
    assert {s for _, s in fresh} == {7, 1007} and not set(fresh) & set(items)


def _tones(midis: list[int], seconds: float, sr: int = 22050) -> np.ndarray:
    """Notes sounding together, each with four decaying harmonics."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for m in midis:
        f = 440.0 * 2 ** ((m - 69) / 12)
        y += sum(0.6**h * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(4))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_readers_name_classes_as_users_write_them():
    from musicrfm.experiments.schedules.readers import class_name

    assert class_name("notes", "Db") == "C#"
    assert class_name("chords", "aug") == "augmented" and class_name("chords", "Cm") == "minor"
    assert class_name("intervals", "7") == "P5" == class_name("intervals", "perfect fifth")
    for concept, bad in (("chords", "sus9"), ("intervals", "13"), ("tempos", "fast")):
        with pytest.raises(ConfigError) as info:
            class_name(concept, bad)
        assert "\n" not in str(info.value) and "valid" in str(info.value)


def test_an_interval_glide_reads_as_its_two_intervals():
    """A harmonic M2 for 2 s then a P5 for 2 s: the windowed interval trace hears M2 in the
    first third and P5 in the last (and would not, were the halves swapped)."""
    from musicrfm.experiments.schedules.readers import concept_classes, read_trace
    from musicrfm.experiments.schedules.scoring import third_labels

    y = np.concatenate([_tones([60, 62], 2.0), _tones([60, 67], 2.0)])
    tr = read_trace("intervals", y, 22050, window_s=0.5, hop_s=0.25)
    assert tr.probs.shape == (len(tr.times), 12)
    first, last = third_labels(tr.times, tr.probs, tr.labels, 4.0, concept_classes("intervals"))
    assert (first, last) == ("M2", "P5")


def test_a_chord_quality_trace_follows_the_chords():
    from musicrfm.experiments.schedules.readers import concept_classes, read_trace
    from musicrfm.experiments.schedules.scoring import third_labels

    y = np.concatenate([_tones([60, 64, 68], 2.0), _tones([60, 64, 67], 2.0)])  # C+ then C
    tr = read_trace("chords", y, 22050, window_s=1.0, hop_s=0.5)
    first, last = third_labels(tr.times, tr.probs, tr.labels, 4.0, concept_classes("chords"))
    assert (first, last) == ("augmented", "major")


def test_chord_quality_schedules_run_end_to_end(tmp_path):
    """The pipeline with chord-quality directions on a random model: the record names the
    concept, the crossfade its qualities, and a target the directions lack is one line."""
    from dataclasses import replace

    from musicrfm.evaluation.detectors.chords import CHORD_QUALITIES
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.schedules import run_schedules
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "chords", CHORD_QUALITIES)
    data = replace(DemoConfig.quick(), prompts=("acoustic piano",), seconds=1.5)
    cfg = SchedulesConfig(concept="chords", target="aug", crossfade=("C+", "major"), clips=2,
                          coef="0.5x", data=data, schedules=("linear-rise",),
                          window_s=0.5)  # fmt: skip
    record = run_schedules(model=adapter, out=tmp_path / "o", config=cfg, directions=cd,
                           progress=False)  # fmt: skip
    assert record["concept"] == "chords" and record["target"] == "augmented"
    assert (record["crossfade"]["a"], record["crossfade"]["b"]) == ("augmented", "major")
    assert "chord quality augmented" in (tmp_path / "o" / "schedules.md").read_text()
    notes = _random_directions(adapter, "notes", PITCH_CLASSES)
    with pytest.raises(ConfigError, match="no class augmented"):
        run_schedules(model=adapter, out=tmp_path / "p", config=cfg, directions=notes,
                      progress=False)  # fmt: skip


def test_the_training_set_goes_into_the_data_config_and_a_bad_one_is_one_line():
    cfg = SchedulesConfig().with_changes(train_set="strikes", seconds=4)
    assert cfg.train_set == cfg.data.train_set == "strikes" and cfg.seconds == 4.0
    assert SchedulesConfig().train_set == "synthetic"
    assert SchedulesConfig().with_changes(train_set=None).train_set == "synthetic"
    with pytest.raises(ConfigError, match="training set 'hub'") as info:
        SchedulesConfig().with_changes(train_set="hub").validate()
    assert "\n" not in str(info.value) and "strikes" in str(info.value)


@pytest.mark.parametrize("train_set", ["synthetic", "strikes"])
def test_directions_are_learned_on_the_chosen_training_set(tmp_path, monkeypatch, train_set):
    """The run learns its directions on ``data.train_set``'s clips (stubbed here: the strike
    set takes minutes to render) and records the set in the JSON and the report."""
    from dataclasses import replace
    from types import SimpleNamespace

    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.schedules import run as schedules_run
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "notes", PITCH_CLASSES)
    seen = []

    def learn(adapter, cfg, work, **kwargs):
        seen.append((cfg.train_set, kwargs["concept"]))
        feats = SimpleNamespace(features=torch.full((4, 8), 10.0 / 8**0.5))  # norm 10
        return None, feats, SimpleNamespace(directions=cd)

    monkeypatch.setattr(schedules_run, "learn_note_directions", learn)
    data = replace(DemoConfig.quick(), prompts=("acoustic piano",), seconds=1.5)
    cfg = SchedulesConfig(clips=2, coef="0.5x", data=data, schedules=("linear-rise",),
                          unsteered_control=False).with_changes(train_set=train_set)  # fmt: skip
    record = schedules_run.run_schedules(model=adapter, out=tmp_path / "o", config=cfg,
                                         work=tmp_path / "w", progress=False)  # fmt: skip
    assert seen == [(train_set, "notes")]
    assert record["settings"]["train_set"] == train_set
    assert record["settings"]["eta0"] == pytest.approx(5.0)
    assert (
        f"directions from the `{train_set}` training set"
        in (tmp_path / "o" / "schedules.md").read_text()
    )


def test_cli_passes_the_training_set_and_shows_it_in_the_command(tmp_path, monkeypatch):
    from musicrfm import experiments
    from musicrfm.cli import main

    calls = []

    def fake_run(**kwargs):
        calls.append(kwargs)
        out = tmp_path / "o"
        out.mkdir(exist_ok=True)
        (out / "schedules.md").write_text("report\n")
        return {"overall": {"passed": True}}

    monkeypatch.setattr(experiments.schedules, "run_schedules", fake_run)
    base = ["mini", "schedules", "--model", "random:tiny", "--out", str(tmp_path / "o")]
    assert main([*base, "--train-set", "strikes"]) == 0
    assert main(base) == 0
    (strikes, default) = calls
    assert strikes["config"].train_set == "strikes" and default["config"].train_set == "synthetic"
    assert "--train-set strikes" in strikes["command"] and "--train-set" not in default["command"]
    with pytest.raises(SystemExit) as info:
        main([*base, "--train-set", "hub"])
    assert info.value.code == 2


def test_strike_interval_directions_are_named_as_the_trace_names_them(tmp_path):
    """Strike clips label intervals by semitones ("7"); the run renames those directions' classes
    to the trace's names (P5), so `--train-set strikes --concept intervals` can steer toward
    P5 and glide M2 -> P5 (it stopped with "no class P5" before)."""
    from dataclasses import replace

    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.schedules import run_schedules
    from musicrfm.experiments.schedules.readers import named_classes
    from musicrfm.models import load_model
    from musicrfm.theory import INTERVAL_NAMES

    adapter = load_model("random:tiny")
    semis = [str(i) for i in (1, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9)]  # the strike set's order
    cd = _random_directions(adapter, "intervals", semis)
    named = named_classes(cd, "intervals")
    assert set(named.classes) == set(INTERVAL_NAMES)
    assert torch.equal(named.vectors[:, named.classes.index("P5")], cd.vectors[:, semis.index("7")])
    assert named_classes(cd, "chords") is cd  # only intervals are renamed
    notes = _random_directions(adapter, "notes", PITCH_CLASSES)
    assert named_classes(notes, "notes") is notes
    data = replace(DemoConfig.quick(), prompts=("acoustic piano",), seconds=1.5)
    cfg = SchedulesConfig(concept="intervals", target="P5", crossfade=("M2", "P5"), clips=2,
                          coef="0.5x", data=data, schedules=("linear-rise",),
                          unsteered_control=False)  # fmt: skip
    record = run_schedules(model=adapter, out=tmp_path / "o", config=cfg, directions=cd,
                           progress=False)  # fmt: skip
    assert record["target"] == "P5" and record["crossfade"]["a"] == "M2"
    saved = ConceptDirections.load(tmp_path / "o" / "directions" / "intervals")
    assert "P5" in saved.classes and "7" not in saved.classes


# ---------------------------------------------------------------------- the release (--release R)
@pytest.mark.parametrize("name", SCHEDULES)
def test_the_release_schedule_is_one_minus_phi_at_every_step(name):
    from musicrfm.experiments.schedules.config import release_schedule

    sched = paper_schedules(SECONDS, FRAME_RATE)[name]
    rel = release_schedule(sched, SECONDS, FRAME_RATE)
    n = int(SECONDS * FRAME_RATE) + 1
    phi = sched.values(n, frame_rate=FRAME_RATE, horizon=n)
    assert rel.kind == "keyframes" and rel.unit == "steps"
    assert rel.values(n, horizon=n) == pytest.approx(1 - phi, abs=1e-12)
    # and at the detector's windows, as the scoring reads φ
    assert phi_at(rel, TIMES, FRAME_RATE, SECONDS) == pytest.approx(
        1 - phi_at(sched, TIMES, FRAME_RATE, SECONDS), abs=1e-12
    )
    # a plan file can hold it: it survives a round trip through its dict
    from musicrfm.steering.schedules import Schedule

    assert Schedule.from_dict(rel.to_dict()) == rel


def test_a_linear_releases_keyframes_are_its_two_ends():
    from musicrfm.experiments.schedules.config import release_schedule

    s = paper_schedules(SECONDS, FRAME_RATE)
    assert release_schedule(s["linear-decay"], SECONDS, FRAME_RATE).points == ((0, 0), (250, 1))
    assert release_schedule(s["linear-rise"], SECONDS, FRAME_RATE).points == ((0, 1), (250, 0))
    assert len(release_schedule(s["exp-decay"], SECONDS, FRAME_RATE).points) == 251


def _schedule_plans(release: float):
    from musicrfm.experiments.schedules.run import schedule_plan
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "notes", PITCH_CLASSES)
    cfg = SchedulesConfig(release=release).with_changes(seconds=SECONDS)
    sched = paper_schedules(SECONDS, FRAME_RATE)["linear-decay"]
    return adapter, cd, sched, schedule_plan(cd, cfg, sched, 2.0, FRAME_RATE)


def test_release_zero_is_todays_one_direction_plan():
    from musicrfm.steering.plan import SteeringPlan

    _, cd, sched, plan = _schedule_plans(0.0)
    today = SteeringPlan.single(cd, "G", 2.0, schedule=sched)
    assert plan.to_dict(strict=False) == today.to_dict(strict=False)
    assert len(plan.directions) == 1


@pytest.mark.parametrize("release", [1.0, 0.5])
def test_a_release_adds_the_target_negated_with_schedule_one_minus_phi(release):
    """The plan's second direction is the same target at -η0·R with 1 - φ; the engine then adds
    η0·(φ(t) - R·(1 - φ(t))) times the target's vector at every step (checked on the compiled
    plan's exact addition)."""
    from musicrfm.steering.compile import compile_plan

    adapter, cd, sched, plan = _schedule_plans(release)
    main, rel = plan.directions
    assert (main.target, main.coef, main.schedule) == ("G", 2.0, sched)
    assert rel.target == "G" and rel.coef == pytest.approx(-2.0 * release)
    assert rel.name == "release" and rel.layers == main.layers and rel.gate == 1.0
    n = int(SECONDS * FRAME_RATE) + 1
    phi = sched.values(n, frame_rate=FRAME_RATE, horizon=n)
    assert rel.schedule.values(n, horizon=n) == pytest.approx(1 - phi)
    compiled = compile_plan(plan, adapter, total_steps=n)
    single = compile_plan(_schedule_plans(0.0)[3], adapter, total_steps=n)
    for step in (0, 60, 125, 200, 250):
        for layer in (0, adapter.num_layers - 1):
            want = (phi[step] - release * (1 - phi[step])) / phi[0]  # φ(0) = 1: the full push
            got = compiled.addition(step, layer)
            full = single.addition(0, layer)
            assert torch.allclose(got, want * full, atol=1e-9), (step, layer)
    # the end of a decay pushes away from the target at R·η0
    assert torch.allclose(compiled.addition(250, 0), -release * single.addition(0, 0), atol=1e-9)


def test_a_bad_release_is_one_line():
    for bad in (-0.5, float("nan"), float("inf"), "1", True):
        with pytest.raises(ConfigError, match="--release") as info:
            SchedulesConfig(release=bad).validate()
        assert "\n" not in str(info.value)
    SchedulesConfig(release=0).validate()
    SchedulesConfig(release=1.0).validate()


def test_cli_passes_the_release_and_records_it_in_the_command(tmp_path, monkeypatch, capsys):
    from musicrfm import experiments
    from musicrfm.cli import main

    calls = []

    def fake_run(**kwargs):
        calls.append(kwargs)
        out = tmp_path / "o"
        out.mkdir(exist_ok=True)
        (out / "schedules.md").write_text("report\n")
        return {"overall": {"passed": True}}

    monkeypatch.setattr(experiments.schedules, "run_schedules", fake_run)
    base = ["mini", "schedules", "--model", "random:tiny", "--out", str(tmp_path / "o")]
    assert main([*base, "--release", "0.5"]) == 0
    assert main(base) == 0
    assert main([*base, "--release", "1", "--release-shape", "drop"]) == 0
    (half, default, drop) = calls
    assert half["config"].release == 0.5 and default["config"].release == 0.0
    assert half["config"].release_shape == "complement" and drop["config"].release_shape == "drop"
    assert "--release 0.5" in half["command"] and "--release" not in default["command"]
    assert "--release-shape" not in half["command"]
    assert "--release 1 --release-shape drop" in drop["command"]
    capsys.readouterr()
    assert main([*base, "--release", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--release" in err[0] and len(calls) == 3


def test_a_release_run_records_the_release_in_json_and_md(tmp_path):
    from dataclasses import replace

    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.schedules import run_schedules
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "notes", PITCH_CLASSES)
    data = replace(DemoConfig.quick(), prompts=("acoustic piano",), seconds=1.5)
    cfg = SchedulesConfig(clips=2, coef="0.5x", data=data, schedules=("linear-decay",),
                          unsteered_control=False, release=1.0)  # fmt: skip
    record = run_schedules(model=adapter, out=tmp_path / "o", config=cfg, directions=cd,
                           progress=False, command="cmd --release 1")  # fmt: skip
    s = record["settings"]
    assert s["release"] == 1.0 and s["release_eta"] == pytest.approx(5.0)
    assert s["config"]["release"] == 1.0 and "1 - φ(t)" in s["release_schedule"]
    md = (tmp_path / "o" / "schedules.md").read_text()
    assert "**Release 1**" in md and "5.0·ρ(t) with ρ = 1 - φ(t)." in md and "--release 1" in md
    assert s["release_shape"] == "complement"
    off = run_schedules(model=adapter, out=tmp_path / "p",
                        config=replace(cfg, release=0.0), directions=cd, progress=False)  # fmt: skip
    assert off["settings"]["release"] == 0.0 and off["settings"]["release_schedule"] is None
    assert "Release" not in (tmp_path / "p" / "schedules.md").read_text()


def test_the_drop_release_follows_how_far_phi_has_fallen_from_its_peak():
    """``drop``: max φ(s≤t) - φ(t). A rise never falls (no release: the plan is today's), a
    decay from 1 gets 1 - φ, and the sine releases only once it has passed its peak."""
    from musicrfm.experiments.schedules.config import release_schedule
    from musicrfm.experiments.schedules.run import schedule_plan
    from musicrfm.models import load_model

    s = paper_schedules(SECONDS, FRAME_RATE)
    n = int(SECONDS * FRAME_RATE) + 1
    for rise in ("linear-rise", "logistic-rise"):
        assert release_schedule(s[rise], SECONDS, FRAME_RATE, "drop") is None
    for decay in ("linear-decay", "exp-decay"):
        drop = release_schedule(s[decay], SECONDS, FRAME_RATE, "drop")
        comp = release_schedule(s[decay], SECONDS, FRAME_RATE, "complement")
        assert drop.values(n, horizon=n) == pytest.approx(comp.values(n, horizon=n))
    phi = s["sine"].values(n, frame_rate=FRAME_RATE, horizon=n)
    rho = release_schedule(s["sine"], SECONDS, FRAME_RATE, "drop").values(n, horizon=n)
    peak = int(np.argmax(phi))  # 1.25 s: a quarter period
    assert peak == pytest.approx(SECONDS * FRAME_RATE / 4, abs=1)
    assert rho[: peak + 1] == pytest.approx(0.0, abs=1e-12)
    assert rho[peak:] == pytest.approx(phi[peak] - phi[peak:], abs=1e-9)  # φ's peak: ~1
    assert phi[peak] == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ConfigError, match="release shape"):
        release_schedule(s["sine"], SECONDS, FRAME_RATE, "bounce")
    adapter = load_model("random:tiny")
    cd = _random_directions(adapter, "notes", PITCH_CLASSES)
    cfg = SchedulesConfig(release=1.0, release_shape="drop").with_changes(seconds=SECONDS)
    assert len(schedule_plan(cd, cfg, s["linear-rise"], 2.0, FRAME_RATE).directions) == 1
    assert len(schedule_plan(cd, cfg, s["linear-decay"], 2.0, FRAME_RATE).directions) == 2
    with pytest.raises(ConfigError, match="--release-shape") as info:
        SchedulesConfig(release_shape="bounce").validate()
    assert "\n" not in str(info.value)
