"""`musicrfm generate --chords / --notes / --bpm` with several direction files: the flags, the
plan they make, a clip on the random model, and one-line errors."""

from __future__ import annotations

import argparse
import json
import logging

import pytest
import torch

from musicrfm.cli import main
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression
from musicrfm.theory import PITCH_CLASSES

SECONDS = "0.3"  # 15 frames of random:tiny


def _save(folder, concept: str, classes: list[str], seed: int, **meta) -> str:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(4, len(classes), 1, 64, generator=g)
    info = {"model_id": "random:tiny:seed0", "num_layers": 4, "hidden_size": 64, **meta}
    cd = ConceptDirections(concept, classes, v / v.norm(dim=-1, keepdim=True),
                           torch.rand(4, len(classes), generator=g), [0, 1, 2, 3], meta=info)  # fmt: skip
    return str(cd.save(folder / concept / concept))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, str]:
    """Direction files of four separately made concepts, shaped like random:tiny's."""
    root = tmp_path_factory.mktemp("gen_prog")
    return {
        "quality": _save(root, "chords", ["augmented", "diminished", "major", "minor"], 1),
        "root": _save(root, "chord-roots", list(PITCH_CLASSES), 2, label_column="root"),
        "notes": _save(root, "notes", list(PITCH_CLASSES), 3),
        "tempo": _save(root, "tempos", ["value"], 4, task="regression"),
    }


def _plan(argv: list[str]):
    from musicrfm.commands.generate import build_plan, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return build_plan(parser.parse_args(["generate", "x", *argv]))


def test_chords_flags_make_the_library_plan(dirs) -> None:
    both = ["--directions", dirs["quality"], dirs["root"]]
    plan = _plan(["--chords", "C G Am F", "--bpm", "100", *both, "--coef", "0.7"])
    want = compile_progression(
        make_progression(chords="C G Am F", bpm=100), [dirs["quality"], dirs["root"]], 0.7
    )
    assert plan.to_dict(strict=False) == want.to_dict(strict=False)
    assert [d.target for d in plan.directions] == ["C", "G", "A", "F", "major", "minor"]
    # --bars-per-chord, --beats-per-bar, --fade-beats, --chord-parts, repeated --directions
    plan = _plan(["--chords", "C G", "--bars-per-chord", "2", "--beats-per-bar", "3",
                  "--fade-beats", "0.5", "--directions", dirs["quality"], "--chord-parts",
                  "quality", "--layers", "exp:0.95", "--gate-seed", "4"])  # fmt: skip
    assert [d.target for d in plan.directions] == ["major"]  # C and G: one held major
    # 2 chords x 2 bars x 3 beats = 12 beats = 6 s at 120 BPM, fading over half a beat
    assert plan.directions[0].schedule.points == ((0.0, 1.0), (5.875, 1.0), (6.125, 0.0))
    assert plan.seed == 4 and plan.directions[0].weighting == "exponential"
    plan = _plan(["--chords", "C | G", "--directions", dirs["quality"], "--directions",
                  dirs["root"], "--bpm", "90..130", "--tempo-reference", "100", "--directions",
                  dirs["tempo"]])  # fmt: skip
    assert [d.target for d in plan.directions] == ["C", "G", "major", "slower", "faster"]


def test_a_tempo_curve_alone_spans_the_clip_and_notes_take_tempo_too(dirs) -> None:
    plan = _plan(["--bpm", "90..130", "--directions", dirs["tempo"], "--seconds", "8"])
    assert [(d.target, d.schedule.points) for d in plan.directions] == [
        ("slower", ((0.0, 1.0), (4.0, 0.0), (8.0, 0.0))),
        ("faster", ((0.0, 0.0), (4.0, 0.0), (8.0, 1.0))),
    ]
    plan = _plan(["--notes", "C E G", "--bpm", "120", "--tempo-reference", "90",
                  "--directions", dirs["notes"], dirs["tempo"]])  # fmt: skip
    assert [d.target for d in plan.directions] == ["C", "E", "G", "faster"]
    assert plan.directions[3].schedule.points == ((0.0, 1.0), (6.0, 1.0))
    # the note sequence alone is the plan it always was
    from musicrfm.steering.plan import SteeringPlan

    old = SteeringPlan.from_sequence("C E G", dirs["notes"], 0.3)
    new = _plan(["--notes", "C E G", "--directions", dirs["notes"]])
    assert new.to_dict(strict=False) == old.to_dict(strict=False)


def test_cli_generates_a_progression_on_the_random_model(tmp_path, dirs, capsys, caplog) -> None:
    from musicrfm.steering.generation import load_sidecar

    out = tmp_path / "prog.wav"
    # 1200 BPM: a bar is 0.2 s, so "C G7 | Am" changes chords inside the 0.3 s clip
    argv = ["generate", "warm pad", "--model", "random:tiny", "--chords", "C G7 | Am",
            "--bpm", "1200", "--directions", dirs["quality"], dirs["root"], "--coef", "3",
            "--seconds", SECONDS, "-o", str(out), "--save-plan", str(tmp_path / "plan.toml")]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert "--chords: G7 taken as its triad (G major)" in caplog.text
    meta = load_sidecar(out)
    assert [d["target"] for d in meta["plan"]["direction"]] == ["C", "G", "A", "major", "minor"]
    # the saved plan and a [progression] plan file make the same clip
    again = tmp_path / "again.wav"
    assert main(["generate", "warm pad", "--model", "random:tiny", "--plan", str(tmp_path / "plan.toml"), "--seconds", SECONDS, "-o", str(again)]) == 0  # fmt: skip
    assert load_sidecar(again)["audio_sha256"] == meta["audio_sha256"]
    table = {"chords": "C G7 | Am", "bpm": 1200, "coef": 3.0,
             "directions": [dirs["quality"], dirs["root"]]}  # fmt: skip
    (tmp_path / "prog.json").write_text(json.dumps({"progression": table}))
    from_table = tmp_path / "table.wav"
    assert main(["generate", "warm pad", "--model", "random:tiny", "--plan", str(tmp_path / "prog.json"), "--seconds", SECONDS, "-o", str(from_table)]) == 0  # fmt: skip
    assert load_sidecar(from_table)["audio_sha256"] == meta["audio_sha256"]
    capsys.readouterr()


def test_without_seconds_the_clip_is_the_whole_progression(tmp_path, dirs) -> None:
    """`--chords "C G Am F"` plays every chord unless --seconds cuts it: at 2400 BPM in 4/4 a
    bar is 0.1 s, so the clip is 0.4 s; a clip without chords keeps the 5 s default."""
    from musicrfm.steering.generation import load_sidecar

    out = tmp_path / "whole.wav"
    argv = ["generate", "warm pad", "--model", "random:tiny", "--chords", "C G Am F",
            "--bpm", "2400", "--directions", dirs["quality"], dirs["root"], "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert load_sidecar(out)["options"]["seconds"] == pytest.approx(0.4)
    assert main([*argv[:-1], str(tmp_path / "cut.wav"), "--seconds", "0.2"]) == 0
    assert load_sidecar(tmp_path / "cut.wav")["options"]["seconds"] == pytest.approx(0.2)
    plain = tmp_path / "plain.wav"
    assert main(["generate", "warm pad", "--model", "random:tiny", "-o", str(plain)]) == 0
    assert load_sidecar(plain)["options"]["seconds"] == 5.0


def test_two_targets_of_one_concept_at_once_warn(tmp_path, dirs, caplog) -> None:
    argv = ["generate", "x", "--model", "random:tiny", "--directions", dirs["notes"],
            "--target", "C,G", "--seconds", SECONDS, "-o", str(tmp_path / "cg.wav")]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    assert "contradictory targets of one concept at once: notes:C and notes:G" in caplog.text


def test_progression_errors_are_one_line(tmp_path, dirs, capsys) -> None:
    base = ["generate", "x", "--model", "random:tiny", "-o", str(tmp_path / "x.wav")]
    q, r = dirs["quality"], dirs["root"]
    cases = [
        ([*base, "--chords", "C G", "--directions", q],
         "(root part) needs chord-root directions (pitch classes trained on the chords' root "
         "label); train them: musicrfm train --features feats/chords --label-column root"),
        ([*base, "--chords", "C H", "--directions", q, r],
         "unknown chord 'H'; accepted forms: C, Cm, C:min, Cmin, Cdim, C°, Caug, C+"),
        ([*base, "--chords", "C | G", "--bars-per-chord", "2", "--directions", q, r],
         "drop bars_per_chord"),
        ([*base, "--chords", "C", "--notes", "C", "--directions", q, r],
         "use either --chords or --notes"),
        ([*base, "--chords", "C"], "--chords needs --directions"),
        ([*base, "--chords", "C", "--directions", q, r, "--target", "C"],
         "--chords sets the targets itself"),
        ([*base, "--chords", "C", "--directions", q, r, "--plan", "p.toml"],
         "use either --chords or --plan"),
        ([*base, "--chords", "C", "--directions", q, r, "--bpm", "90-"], "cannot read --bpm"),
        ([*base, "--chords", "C", "--directions", q, r, dirs["notes"]],
         "note directions (pitch classes)) is not used"),
        ([*base, "--chords", "C", "--directions", q, q], "two sets of chord-quality directions"),
        ([*base, "--chords", "C", "--directions", q, r, "--chord-parts", "bass"],
         "root and/or quality"),
        ([*base, "--notes", "C", "--directions", dirs["notes"], "--chord-parts", "root"],
         "--chord-parts picks the parts of --chords"),
        ([*base, "--bars-per-chord", "2"], "--bars-per-chord set the beat grid"),
        ([*base, "--bpm", "100", "--directions", dirs["notes"]],
         "none of --directions is onset or tempo directions"),
        ([*base, "--bpm", "100", "--directions", dirs["tempo"]],
         "relative to a reference tempo"),
        ([*base, "--chords", "C", "--directions", q, r, dirs["tempo"]],
         "tempo directions steer the tempo along --bpm"),
        ([*base, "--directions", q, r, "--target", "major"], "2 --directions given"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        err = [line for line in err if not line.startswith("INFO")]
        assert len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "x.wav").exists()


def test_bpm_with_onset_directions_pulses_the_beat_and_makes_a_clip(tmp_path, dirs) -> None:
    """`generate --bpm 100 --directions ONSETS`: one onset direction keyframed 1 on every beat,
    0 half a beat away; over --chords it rides their grid; a clip on the random model."""
    onsets = _save(tmp_path, "onsets", ["none", "onset"], 5)
    plan = _plan(["--bpm", "120", "--directions", onsets, "--seconds", "2", "--coef", "0.4"])
    (d,) = plan.directions
    assert d.target == "onset" and d.coef == 0.4
    # pulses half a beat early (the default lead): on 0.25, 0.75, ... s at 120 BPM
    assert d.schedule.points[:3] == ((0.0, 0.0), (0.25, 1.0), (0.5, 0.0))
    assert d.schedule.points[-1] == (2.5, 0.0)
    plan = _plan(["--chords", "C G", "--bpm", "100", "--directions", dirs["quality"], onsets,
                  "--chord-parts", "quality"])  # fmt: skip
    assert [d.target for d in plan.directions] == ["major", "onset"]
    pulses = [t for t, v in plan.directions[1].schedule.points if v == 1.0]
    assert pulses[:3] == pytest.approx([0.3, 0.9, 1.5]) and len(pulses) == 9  # 2 bars of 4, + 1
    out = tmp_path / "beat.wav"
    argv = ["generate", "x", "--model", "random:tiny", "-o", str(out), "--seconds", SECONDS,
            "--bpm", "150", "--directions", onsets, "--coef", "0.5"]  # fmt: skip
    assert main(argv) == 0 and out.exists()
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert "onset" in json.dumps(sidecar["plan"])
