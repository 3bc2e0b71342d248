"""`musicrfm mini pairs`: two-concept plan files (two direction files, each with its own coef,
schedule and gate) load, validate and steer with both directions; the joint / cross-talk /
control arithmetic on hand-made detector outputs; the conflict case's outcomes and the plan
validator's warning; the pipeline on a random tiny MusicGen (plumbing: a random model steers
nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.pairs.config import PairsConfig, PartSpec, parse_pair
from musicrfm.experiments.pairs.scoring import (
    ALONE,
    JOINT,
    UNSTEERED,
    attribute_hits,
    conflict_outcome,
    conflict_summary,
    control_rows,
    crosstalk_rows,
    label_shift,
    pair_rows,
    pair_verdict,
    switches,
)
from musicrfm.theory import PITCH_CLASSES

QUALITIES = ["augmented", "diminished", "major", "minor"]
CONDS = (UNSTEERED, *ALONE, JOINT)


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import load_model

    return load_model("random:tiny")


def _directions(adapter, concept: str, classes: list[str], seed: int):
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(seed)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, len(classes), 1, d, generator=g)
    meta = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d,
            "activation_norm": 10.0}  # fmt: skip
    return ConceptDirections(concept, list(classes), v / v.norm(dim=-1, keepdim=True),
                             torch.rand(L, len(classes), generator=g), list(range(L)), meta=meta)  # fmt: skip


@pytest.fixture(scope="module")
def dirs(adapter):
    return {"notes": _directions(adapter, "notes", list(PITCH_CLASSES), 0),
            "chords": _directions(adapter, "chords", QUALITIES, 1)}  # fmt: skip


PLAN = """\
format_version = 1
name = "G and augmented"

[[direction]]
directions = "dirs/notes"
target = "G"
coef = "4x"
gate = 1.0
schedule = {kind = "constant"}

[[direction]]
directions = "dirs/chords"
target = "aug"
coef = 40.0
gate = 0.5
schedule = {kind = "linear-rise", duration = 0.2, unit = "seconds"}
"""


def test_a_two_concept_plan_file_loads_validates_and_steers_both(tmp_path, adapter, dirs):
    from musicrfm.steering.compile import compile_plan
    from musicrfm.steering.generation import generate
    from musicrfm.steering.live import LiveControl, live_control
    from musicrfm.steering.plan import SteeringPlan

    for concept, cd in dirs.items():
        cd.save(tmp_path / "dirs" / concept)
    (tmp_path / "plan.toml").write_text(PLAN)
    plan = SteeringPlan.load(tmp_path / "plan.toml")
    first, second = plan.directions
    # each direction keeps its own files, coef (relative resolved by its own norm), schedule, gate
    assert (first.load().concept, second.load().concept) == ("notes", "chords")
    assert first.coef == pytest.approx(40.0) and first.relative == 4 and second.coef == 40.0
    assert (first.gate, second.gate) == (1.0, 0.5)
    assert (first.schedule.kind, second.schedule.kind) == ("constant", "linear-rise")
    compiled = compile_plan(plan, adapter, total_steps=40)
    assert compiled.labels == ["notes:G", "chords:aug"] and compiled.conflicts == ()
    assert compiled.coefs.tolist() == pytest.approx([40.0, 40.0])
    assert compiled.gate_p.tolist() == [1.0, 0.5] and compiled.active.all()
    phi = compiled.schedule_values(40)
    assert phi[:, 0].min() == 1.0 and phi[0, 1] == 0.0 and phi[-1, 1] == 1.0
    assert compiled.gate_values(40)[:, 1].mean() < 1.0 == compiled.gate_values(40)[:, 0].min()

    # both directions steer: the joint clip's tokens differ from each one alone and unsteered
    # (the random codec's audio hardly depends on its tokens, so the tokens are compared)
    def tokens(p):
        seen: dict[int, np.ndarray] = {}

        def tap(position: int, ids: np.ndarray) -> None:
            for j in range(ids.shape[1]):
                seen[position + j] = np.array(ids[:, j])

        with live_control(LiveControl(on_tokens=tap)):
            generate(adapter, ["acoustic piano"], plan=p, seconds=0.6, seed=3)
        return np.stack([seen[k] for k in sorted(seen)])

    joint, a, b = tokens(plan), tokens(SteeringPlan([first])), tokens(SteeringPlan([second]))
    free = tokens(None)
    for x, y in ((joint, a), (joint, b), (a, free), (b, free), (joint, free)):
        assert x.shape == y.shape and (x != y).any()


def test_pair_plan_round_trips_each_parts_fields(tmp_path, dirs):
    from musicrfm.experiments.pairs.run import pair_plan
    from musicrfm.steering.plan import SteeringPlan

    paths = {c: cd.save(tmp_path / "d" / c) for c, cd in dirs.items()}
    cfg = PairsConfig(first=PartSpec("notes", "0.3x", gate=0.7),
                      second=PartSpec("chords", 1.5, schedule="linear-rise:duration=2s"))  # fmt: skip
    saved = pair_plan(paths, cfg, ("D#", "major")).save(tmp_path / "p" / "pair.toml")
    a, b = SteeringPlan.load(saved).directions
    assert (a.target, a.coef, a.gate, a.schedule.kind) == ("D#", pytest.approx(3.0), 0.7, "constant")  # fmt: skip
    assert (b.target, b.coef, b.gate, b.schedule.kind) == ("major", 1.5, 1.0, "linear-rise")
    assert b.schedule.duration == 2.0


def _frame(cells: dict[str, list[tuple[str, str]]], pair: str = "G+augmented") -> pd.DataFrame:
    rows = []
    for cond, labels in cells.items():
        for note, quality in labels:
            rows.append({"condition": cond, "pair": "" if cond == "unsteered" else pair,
                         "note": note, "quality": quality, "root": note})  # fmt: skip
    return pd.DataFrame(rows)


def test_joint_crosstalk_and_controls_arithmetic_on_hand_made_labels():
    cells = {
        # unsteered: G 1/10, augmented 2/10, both 0/10
        "unsteered": [("G", "major")] + [("C", "augmented")] * 2 + [("C", "major")] * 7,
        # notes alone: G 9/10; augmented stays 2/10 (no cross-talk)
        ALONE[0]: [("G", "major")] * 7 + [("G", "augmented")] * 2 + [("C", "major")],
        # chords alone: augmented 9/10, but it drags G up to 6/10 (cross-talk)
        ALONE[1]: [("G", "augmented")] * 6 + [("E", "augmented")] * 3 + [("C", "minor")],
        # joint: both right in 8/10, G 9/10, augmented 8/10
        "joint": [("G", "augmented")] * 8 + [("G", "major"), ("C", "minor")],
        "joint-random": [("G", "major")] + [("C", "augmented")] * 2 + [("C", "major")] * 7,
        "joint-flip": [("C", "major")] * 10,
    }
    frame = _frame(cells)
    pair, concepts = ("G", "augmented"), ("notes", "chords")
    rows = {r["condition"]: r for r in pair_rows(frame, pair, concepts, CONDS)}
    assert (rows["joint"]["first_k"], rows["joint"]["second_k"], rows["joint"]["joint_k"]) == (9, 8, 8)  # fmt: skip
    assert rows["unsteered"]["joint_k"] == 0 and rows["unsteered"]["second_rate"] == 0.2
    assert rows["joint"]["joint_ci_low"] < 0.8 < rows["joint"]["joint_ci_high"]  # Wilson, n=10
    v = pair_verdict(list(rows.values()), joint_gate=0.7, alone_gate=0.8)
    assert v["applies"] and v["passed"] and (v["first_alone"], v["second_alone"]) == (0.9, 0.9)
    # the same pair with joint 6/10: fails, short by 0.1
    worse = frame.copy()
    idx = worse.index[(worse["condition"] == "joint")][:2]
    worse.loc[idx, "quality"] = "major"
    w = pair_verdict(pair_rows(worse, pair, concepts, CONDS), joint_gate=0.7, alone_gate=0.8)
    assert w["joint"] == 0.6 and w["passed"] is False and w["shortfall"] == pytest.approx(0.1)
    # an attribute alone below 0.8: the rule does not apply (no pass, no fail)
    weak = frame[~((frame["condition"] == ALONE[0]) & (frame["note"] == "G"))]
    assert pair_verdict(pair_rows(weak, pair, concepts, CONDS), joint_gate=0.7, alone_gate=0.8)["passed"] is None  # fmt: skip

    talk = {r["steered"]: r for r in crosstalk_rows(frame, pair, concepts)}
    quiet, loud = talk["notes -> G"], talk["chords -> augmented"]
    assert quiet["measured"] == "chords = augmented" and quiet["diff"] == 0 and quiet["within_ci"]
    assert loud["measured"] == "notes = G" and loud["diff"] == pytest.approx(0.5)
    assert not loud["within_ci"] and loud["diff_ci_low"] > 0
    # notes: unsteered {G .1, C .9} vs chords-alone {G .6, E .3, C .1}
    assert loud["label_shift_tv"] == pytest.approx(0.8)

    ctl = {r["control"]: r for r in control_rows(frame, pair, concepts, ("random", "flip"))}
    assert ctl["random"]["joint_diff"] == 0 and ctl["random"]["joint_within_ci"]
    assert ctl["flip"]["first_diff"] == pytest.approx(-0.1) and ctl["flip"]["first_not_above"]
    assert ctl["flip"]["second_diff"] == pytest.approx(-0.2) and ctl["flip"]["joint_not_above"]


def test_hits_per_concept_and_the_augmented_root_symmetry():
    frame = pd.DataFrame({"note": ["G", "silent", "Gb"], "quality": ["augmented", "major", "minor"],
                          "root": ["B", "F#", "F#"]})  # fmt: skip
    assert attribute_hits(frame, "notes", "G").tolist() == [1, 0, 0]
    assert attribute_hits(frame, "notes", "F#").tolist() == [0, 0, 1]  # the detector's spelling
    assert attribute_hits(frame, "chords", "augmented").tolist() == [1, 0, 0]
    # G+ = B+ = D#+: a clip heard as B augmented hits root G; F# major does not hit D
    assert attribute_hits(frame, "chord-roots", "G").tolist() == [1, 0, 0]
    assert attribute_hits(frame, "chord-roots", "F#").tolist() == [0, 1, 1]
    assert attribute_hits(frame, "chord-roots", "D").tolist() == [0, 0, 0]
    assert label_shift(["a", "b"], ["a", "b"]) == 0 and label_shift(["a"], ["b"]) == 1
    with pytest.raises(ConfigError, match="tempos"):
        attribute_hits(frame, "tempos", "faster")


def test_conflict_outcomes_from_window_labels():
    assert conflict_outcome(["C"] * 8, "C", "G") == "A"
    assert conflict_outcome(["G"] * 7 + ["C"], "C", "G") == "B"  # 1/8 C: below a quarter
    assert conflict_outcome(["C", "G"] * 4, "C", "G") == "A and B"
    assert conflict_outcome(["C"] * 4 + ["G"] * 4, "C", "G") == "A and B"
    assert conflict_outcome(["D"] * 6 + ["C"], "C", "G") == "neither"
    assert conflict_outcome(["silent"] * 3, "C", "G") == "silent"
    assert conflict_outcome(["silent"] * 6 + ["G", "G"], "C", "G") == "B"  # silent windows ignored
    assert switches(["C", "G", "G", "silent", "C"]) == 2
    rows = conflict_summary({"C + G": [["C", "G"] * 4, ["C"] * 8, ["D"] * 8, ["G"] * 8]},
                            {"C + G": ["C", "C", "D", "G"]}, "C", "G")  # fmt: skip
    (r,) = rows
    assert (r["C"], r["G"], r["C and G"], r["neither"], r["silent"]) == (0.25, 0.25, 0.25, 0.25, 0)
    assert r["n"] == 4 and r["clip labels"] == "C 2, D 1, G 1" and r["median switches"] == 0.0
    assert r["C and G ci"][0] < 0.25 < r["C and G ci"][1]


def test_the_conflict_plan_gets_the_validators_warning_and_the_pairs_do_not(tmp_path, adapter, dirs):  # fmt: skip
    from musicrfm.experiments.pairs.run import _jobs, _validate_plans

    cfg = PairsConfig(first=PartSpec("notes", "0.5x"), second=PartSpec("chords", "0.5x"),
                      pairs=(("G", "augmented"),), clips=2, controls=(),
                      conflict=("C", "G")).normalized()  # fmt: skip
    paths = {c: cd.save(tmp_path / "directions" / c) for c, cd in dirs.items()}
    jobs, plans = _jobs(dirs, paths, cfg, tmp_path, seed=0)
    assert set(plans) == {"G+augmented", "conflict C+G"}
    assert {j.condition for j in jobs} == {UNSTEERED, JOINT, *ALONE, "conflict-both",
                                           "conflict-C", "conflict-G"}  # fmt: skip
    said = _validate_plans(plans, adapter, total_steps=50)
    assert said["G+augmented"]["warnings"] == []
    assert said["G+augmented"]["directions"] == ["notes:G", "chords:augmented"]
    (warning,) = said["conflict C+G"]["warnings"]
    assert "contradictory targets of one concept at once: notes:C and notes:G" in warning
    assert said["conflict C+G"]["eta0"] == pytest.approx([5.0, 5.0])


def test_config_errors_are_one_line():
    assert parse_pair(" G + augmented ") == ("G", "augmented")
    # chord roots need more training clips a class than qualities (a root per test split)
    assert PairsConfig().chord_clips() == PairsConfig().data.clips_per_class == 24
    assert PairsConfig(first=PartSpec("chord-roots")).chord_clips() == 48
    for bad in ("G", "G+", "+major", "G+major+C"):
        with pytest.raises(ConfigError, match="FIRST\\+SECOND"):
            parse_pair(bad)
    for changes, match in (
        (dict(pairs=(("H", "major"),)), "H"),
        (dict(pairs=(("G", "sus4"),)), "sus4"),
        (dict(first=PartSpec("notes", coef="lots")), "coef"),
        (dict(first=PartSpec("tempo")), "tempo"),
        (dict(second=PartSpec("notes")), "two concepts"),
        (dict(second=PartSpec("chords", schedule="wobble")), "wobble"),
        (dict(second=PartSpec("chords", gate=0)), "gate"),
        (dict(clips=1), "clips"),
        (dict(conflict=("C", "C")), "two different"),
        (dict(controls=("shuffled",)), "shuffled"),
        (dict(pairs=()), "at least one pair"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            PairsConfig().with_changes(**changes).validate()
        assert "\n" not in str(info.value)


def test_a_judge_folder_without_a_judge_for_the_codec_is_refused_before_generating(
    tmp_path, adapter, monkeypatch
):
    from musicrfm.experiments.pairs import run as pairs_run

    def no_generation(*a, **k):
        raise AssertionError("generated before the judge was checked")

    monkeypatch.setattr(pairs_run, "generate_all", no_generation)
    with pytest.raises(ConfigError, match="musicrfm mini judge"):
        pairs_run.run_pairs(model=adapter, out=tmp_path / "o", judge=tmp_path, progress=False)
    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "pairs", "--model", "random:tiny",
         "--judge", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "instrument_judge.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pipeline_runs_end_to_end_on_a_random_model(tmp_path, adapter, dirs):
    """Given directions, 2 clips of 1.2 s per condition: every file is written and the record
    matches the JSON."""
    from dataclasses import replace

    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.pairs import run_pairs

    start = time.process_time()  # our own CPU time: the shared machine's load is not ours
    data = replace(DemoConfig.quick(), prompts=("acoustic piano", "violin"), seconds=1.2)
    cfg = PairsConfig(first=PartSpec("notes", "0.5x"),
                      second=PartSpec("chords", 1.0, schedule="linear-rise", gate=0.5),
                      pairs=(("G", "augmented"),), clips=2, controls=("flip",), conflict=None,
                      data=data)  # fmt: skip
    out = tmp_path / "out"
    record = run_pairs(model=adapter, out=out, config=cfg, directions=dirs, progress=False)
    assert json.loads((out / "pairs.json").read_text()) == record
    (p,) = record["pairs"]
    assert [r["condition"] for r in p["rows"]] == list(CONDS)
    assert all(r["joint_n"] == 2 for r in p["rows"]) and p["controls"][0]["control"] == "flip"
    assert len(p["crosstalk"]) == 2 and record["conflict"] is None
    parts = record["settings"]["parts"]
    assert parts["first"]["eta0"] == pytest.approx(5.0) and parts["second"]["eta0"] == 1.0
    assert record["plans"]["G+augmented"]["file"] == "plans/G+augmented.toml"
    assert (out / "plans" / "G+augmented.toml").is_file() and (out / "pairs.png").stat().st_size
    md = (out / "pairs.md").read_text()
    assert "Cross-talk" in md and "flip" in md and "Command:" in md
    lines = (out / "results.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 5 * 2  # unsteered, joint, 2 alone, flip; 2 clips each
    assert time.process_time() - start < 20, record["timings"]


def test_cli_rejects_a_bad_pair_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "pairs", "--model", "random:tiny",
         "--pairs", "G-augmented", "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "G-augmented" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_training_set_goes_to_both_parts():
    cfg = PairsConfig().with_changes(seconds=3, train_set="strikes")
    assert cfg.data.train_set == "strikes" and cfg.data.seconds == 3.0
    assert PairsConfig().with_changes(train_set=None).data.train_set == "synthetic"


def test_cli_pairs_takes_a_training_set():
    from musicrfm.cli import build_parser

    args = build_parser().parse_args(["mini", "pairs", "--train-set", "strikes"])
    assert args.train_set == "strikes"


def test_cli_pairs_steers_with_saved_directions_and_checks_their_role(
    tmp_path, adapter, dirs, monkeypatch, capsys
):
    """--first-directions / --second-directions: no training, the saved files reach run_pairs;
    a file of another role (notes given as chord roots) is one line before the model loads."""
    import musicrfm.experiments.pairs as pairs_pkg
    from musicrfm.cli import main

    roots = _directions(adapter, "chord-roots", list(PITCH_CLASSES), 5)
    roots.meta["label_column"] = "root"
    paths = {"root": roots.save(tmp_path / "roots"), "quality": dirs["chords"].save(tmp_path / "q"),
             "notes": dirs["notes"].save(tmp_path / "n")}  # fmt: skip
    seen = {}

    def fake_run(**kw):
        seen.update(kw["directions"])
        raise LookupError("stop")

    monkeypatch.setattr(pairs_pkg, "run_pairs", fake_run)
    argv = ["mini", "pairs", "--model", "random:tiny", "--first", "chord-roots", "--second",
            "chords", "--pairs", "C+major", "--no-conflict", "--out", str(tmp_path / "o")]  # fmt: skip
    with pytest.raises(LookupError):
        main([*argv, "--first-directions", str(paths["root"]),
              "--second-directions", str(paths["quality"])])  # fmt: skip
    assert set(seen) == {"chord-roots", "chords"}
    assert seen["chord-roots"].classes == list(PITCH_CLASSES)
    assert main([*argv, "--first-directions", str(paths["notes"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds note directions" in err[0] and "chord-root" in err[0], err
