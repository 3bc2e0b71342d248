"""The CLI: every verb has --help, and expected mistakes become one line, not a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from musicrfm.cli import build_parser, main


def _verbs() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    return sorted(sub.choices)


def test_top_level_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "musicrfm", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: musicrfm" in out.stdout


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    assert verb in capsys.readouterr().out


def test_no_verb_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_generate_rows_choices_match_the_plan() -> None:
    from musicrfm.commands.generate import GUIDANCE_ROWS
    from musicrfm.steering.plan import ROWS

    assert GUIDANCE_ROWS == ROWS


# ----------------------------------------------------------------------------- bad inputs
# Issue 22: every bad input a user may give gets one clear `error:` line (exit 2), found before
# the model is loaded or any clip generated, and nothing is written or left behind.


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directions shaped like random:tiny's (4 layers, hidden 64), as `musicrfm train` saves."""
    import torch

    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(1)
    v = torch.randn(4, 3, 2, 64, generator=g)
    cd = ConceptDirections(
        "notes",
        ["C", "D", "E"],
        v / v.norm(dim=-1, keepdim=True),
        torch.rand(4, 3, generator=g),
        [0, 1, 2, 3],
        meta={"model_id": "random:tiny:seed0", "num_layers": 4, "hidden_size": 64},
    )
    folder = tmp_path_factory.mktemp("tiny_dirs")
    cd.save(folder / "notes")
    return folder


def _plan(dirs: Path, top: str = "", direction: str = "", schedule: str = "") -> str:
    text = f'{top}\n[[direction]]\ndirections = "{dirs}"\ntarget = "D"\ncoef = 1.0\n{direction}'
    return text + (f"\n[direction.schedule]\n{schedule}\n" if schedule else "")


def _one_error_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], match: str, *, code: int = 2
) -> str:
    """Run the CLI in-process: it must exit with ``code`` and print exactly one line,
    ``error: ...`` matching ``match`` (a traceback would raise out of main instead)."""
    import re

    assert main([str(a) for a in argv]) == code
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("INFO")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(match, err[0]), err[0]
    return err[0]


BAD_PLANS = {
    "component word": (dict(direction='component = "first"'), "component must be an eigen"),
    "seed word": (dict(top='seed = "abc"'), "plan's seed must be an integer"),
    "format word": (dict(top='format_version = "one"'), "format_version must be an integer"),
    "direction number": (None, r"\[\[direction\]\] must be tables"),
    "keyframe point of one": (
        dict(schedule='kind = "keyframes"\npoints = [[1]]'),
        r"keyframe point \[1\] must be a \[time, value\] pair",
    ),
    "keyframe points flat": (
        dict(schedule='kind = "keyframes"\npoints = [1, 2]'),
        "keyframe point 1 must be",
    ),
    "layers counting down": (dict(direction='layers = "3-1"'), r"counts down\); write 1-3"),
    "gate word": (dict(direction='gate = "x"'), "gate probability must be a number"),
    "top_k word": (dict(direction='top_k = "a"'), "top_k must be an integer"),
    "rate word": (
        dict(schedule='kind = "exp-decay"\nrate = "x"'),
        "schedule rate must be a number",
    ),
    "directions number": ("directions", "directions must be a path to direction files"),
    "empty plan": (
        "",
        "has no \\[\\[direction\\]\\] or \\[sequence\\] table: it would steer nothing",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PLANS))
def test_a_plan_value_of_the_wrong_type_is_one_line(
    case: str, tiny_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts, match = BAD_PLANS[case]
    if parts is None:
        text = "direction = 5\n"
    elif parts == "directions":
        text = "[[direction]]\ndirections = 5\n"
    elif isinstance(parts, str):
        text = parts
    else:
        text = _plan(tiny_dirs, **parts)
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    out = tmp_path / "out.wav"
    argv = ["generate", "piano", "--model", "random:tiny", "--seconds", "0.1", "--plan", plan]
    _one_error_line([*argv, "-o", out], capsys, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]  # nothing written


def test_a_non_utf8_plan_and_a_plan_folder_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "plan.toml"
    bad.write_bytes(b"\xff\xfe seed = 1\n")
    argv = ["generate", "piano", "--model", "random:tiny", "-o", tmp_path / "o.wav"]
    _one_error_line([*argv, "--plan", bad], capsys, "is not UTF-8 text")
    _one_error_line([*argv, "--plan", tmp_path], capsys, "is a folder; give the .toml or .json")


def test_generate_outputs_are_checked_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrfm.models

    def no_load(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(musicrfm.models, "load_model", no_load)
    (tmp_path / "afile").write_text("x")
    g = ["generate", "piano", "--model", "random:tiny", "--seconds", "0.1"]
    _one_error_line([*g, "-o", tmp_path / "x.mp3"], capsys, r"must end in \.wav or \.flac")
    _one_error_line([*g, "--seed", "0", "1", "-o", tmp_path / "takes.mp3"], capsys, "takes_000")
    _one_error_line([*g, "-o", tmp_path / "afile" / "x.wav"], capsys, "afile is a file")
    _one_error_line([*g, "--seed", str(2**70), "-o", tmp_path / "y.wav"], capsys, "out of range")
    _one_error_line([*g, "--threads", "0"], capsys, "--threads must be at least 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_full_disk_is_found_before_generating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import namedtuple

    import musicrfm.steering.generation as gen
    from musicrfm import files

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: usage(10, 10, 100))
    monkeypatch.setattr(gen, "_run_chunk", lambda *a: pytest.fail("generated on a full disk"))
    argv = ["generate", "piano", "--model", "random:tiny", "--seconds", "0.2"]
    _one_error_line([*argv, "-o", tmp_path / "x.wav"], capsys, "not enough disk space")
    assert list(tmp_path.iterdir()) == []


def test_too_many_seconds_are_refused_with_the_model_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "piano", "--model", "random:tiny", "--seconds", "100000"]
    _one_error_line(
        [*argv, "-o", tmp_path / "x.wav"], capsys, r"5000003 decoder steps.*positions for 512"
    )


def test_a_schedule_after_the_clip_ends_is_refused_not_silent(
    tiny_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "piano", "--model", "random:tiny", "--seconds", "0.1"]
    steer = ["--directions", tiny_dirs, "--target", "D", "-o", tmp_path / "x.wav"]
    _one_error_line(
        [*argv, *steer, "--schedule", "linear-rise:start=100s"],
        capsys,
        r"nothing would be steered: notes:D \(schedule kind=linear-rise, start=100.0.*is 0 over "
        r"the whole clip \(8 steps = 0.16 s\)",
    )
    _one_error_line([*argv, *steer, "--layers", "5-2"], capsys, r"counts down\); write 2-5")
    assert list(tmp_path.iterdir()) == []


DEVICES = ["tpu", "foo", "cuda:x", "cuda:99"]


@pytest.mark.parametrize("device", DEVICES)
def test_every_verb_says_the_same_about_a_device_that_is_not_here(
    device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generate, extract and train: one ModelError line (torch's RuntimeError and the CUDA
    AssertionError are not shown), before any input is read."""
    verbs = [
        ["generate", "piano", "--model", "random:tiny", "-o", tmp_path / "x.wav"],
        ["extract", "--data", tmp_path / "none", "--model", "random:tiny", "--out", tmp_path / "f"],
        ["train", "--features", tmp_path / "none", "--out", tmp_path / "t"],
    ]
    lines = {
        _one_error_line([*argv, "--device", device], capsys, "device").split(":", 1)[1]
        for argv in verbs
    }
    assert len(lines) == 1, lines
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FeatureSet folder with 5 clips of 'C' and 8 of 'D' (too few C for the split)."""
    import pandas as pd
    import torch

    from musicrfm.capture.features import FeatureSet

    rows = pd.DataFrame({"path": [f"{i}.wav" for i in range(13)], "label": ["C"] * 5 + ["D"] * 8})
    folder = tmp_path_factory.mktemp("feats") / "f"
    FeatureSet(torch.randn(2, 13, 8, generator=torch.Generator().manual_seed(0)), rows).save(folder)
    return folder


def test_train_checks_its_inputs_and_output_before_training(
    tiny_features: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import shutil

    import musicrfm.probes.training as training

    monkeypatch.setattr(training, "train_directions", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "afile").write_text("x")
    t = ["train", "--features", tiny_features, "--no-progress", "--baselines", "none"]
    _one_error_line([*t, "--out", tmp_path / "afile"], capsys, "--out .*afile is a file")
    _one_error_line(
        [*t, "--out", tmp_path / "o"], capsys, r"needs at least 6 per class: 'C': 5; render"
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_features, damaged)
    (damaged / "rows.parquet").write_bytes(b"PAR1 cut short")
    _one_error_line(
        ["train", "--features", damaged, "--out", tmp_path / "o"], capsys, "is damaged.*extract it"
    )
    for cut in (b"", b"\x10\x00\x00\x00garbage"):
        (damaged / "features.safetensors").write_bytes(cut)
        _one_error_line(
            ["train", "--features", damaged, "--out", tmp_path / "o"], capsys, "damaged"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "damaged"]


def test_train_where_keeps_the_matching_rows_only(tmp_path: Path, capsys, monkeypatch) -> None:
    """--where inversion=root trains on those rows (what the probe library is handed), and a
    bad condition is one line naming what there is, before any training."""
    import pandas as pd
    import torch

    import musicrfm.probes.training as training
    from musicrfm.capture.features import FeatureSet

    inv = ["root", "first", "second"] * 16
    rows = pd.DataFrame({"path": [f"{i}.wav" for i in range(48)], "label": ["C", "D"] * 24,
                         "inversion": inv})  # fmt: skip
    folder = tmp_path / "f"
    FeatureSet(torch.randn(2, 48, 8, generator=torch.Generator().manual_seed(0)), rows).save(folder)
    seen: list[list[str]] = []

    def fake_train(features, **kw):
        seen.append(sorted(set(features.rows["inversion"])))
        raise LookupError("stop here")

    monkeypatch.setattr(training, "train_directions", fake_train)
    t = ["train", "--features", folder, "--no-progress", "--baselines", "none", "--out",
         tmp_path / "o"]  # fmt: skip
    with pytest.raises(LookupError):
        main([*map(str, t), "--where", "inversion=root"])
    assert seen == [["root"]]
    with pytest.raises(LookupError):
        main([*map(str, t)])
    assert seen[-1] == ["first", "root", "second"]
    _one_error_line([*t, "--where", "bass=C"], capsys, r"no column 'bass'.*columns: path, label")
    _one_error_line([*t, "--where", "inversion=third"], capsys, r"holds first, root, second")
    _one_error_line([*t, "--where", "inversion"], capsys, r"--where takes COLUMN=VALUE")


def test_extract_checks_its_numbers_and_output_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrfm.models

    monkeypatch.setattr(musicrfm.models, "load_model", lambda *a, **k: pytest.fail("loaded"))
    (tmp_path / "afile").write_text("x")
    e = ["extract", "--data", tmp_path / "none", "--model", "random:tiny", "--no-cache"]
    _one_error_line([*e, "--out", tmp_path / "f", "--max-seconds", "-1"], capsys, "max_seconds")
    _one_error_line([*e, "--out", tmp_path / "f", "--batch-size", "0"], capsys, "batch_size")
    _one_error_line([*e, "--out", tmp_path / "afile" / "f"], capsys, "afile is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_synth_says_a_soundfont_folder_is_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sf").mkdir()
    argv = ["synth", "notes:C", "--out", tmp_path / "d", "--soundfont", tmp_path / "sf"]
    _one_error_line(argv, capsys, "--soundfont .*sf is a folder; give the .sf2 file itself")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sf"]


def test_damaged_direction_files_name_the_file(
    tiny_dirs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = tmp_path / "dirs"
    shutil.copytree(tiny_dirs, bad)
    st = bad / "notes.safetensors"
    st.write_bytes(st.read_bytes()[:100])
    argv = ["generate", "piano", "--model", "random:tiny", "--seconds", "0.1", "-o", tmp_path / "x"]
    _one_error_line(
        [*argv, "--directions", bad, "--target", "D"], capsys, "notes.safetensors is damaged"
    )
    assert not (tmp_path / "x").exists()


def test_os_errors_are_one_line(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """The disk or the OS saying no, anywhere in a verb, is one line naming the file."""
    import errno

    from musicrfm import cli

    def full(args):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/report/index.html")

    args = argparse.Namespace(verb="report", verbose=False)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _Parsed(parser, args, full))
    assert cli.main(["report", "runs/x"]) == 2
    assert capsys.readouterr().err == "error: runs/x/report/index.html: No space left on device\n"


class _Parsed:
    """A parser stand-in that returns ``args`` with ``func`` replaced."""

    def __init__(self, parser, args, func) -> None:  # noqa: ANN001
        self.parser, self.args = parser, args
        self.args.func = func

    def parse_args(self, argv):  # noqa: ANN001, ANN201
        return self.args

    def print_help(self) -> None:
        self.parser.print_help()


@pytest.mark.parametrize(
    ("verb", "says"),
    [("generate", "run the same command again to resume"), ("train", "does not resume")],
)
def test_ctrl_c_says_what_is_kept(verb: str, says: str, capsys, monkeypatch) -> None:
    from musicrfm import cli

    def interrupted(args):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    args = argparse.Namespace(verb=verb, verbose=False)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _Parsed(parser, args, interrupted))
    assert cli.main([verb]) == 130
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "verb",
    [
        ["generate", "piano"],
        ["extract", "--data", "d", "--out", "f"],
        ["train", "--features", "f", "--concept", "notes", "--out", "d"],
        ["mini", "gates", "--no-card"],
        ["mini", "judge", "--out", "j"],
        ["mini", "headline"],
        ["demo"],
        ["table1"],
        ["serve"],
        ["reproduce", "--model", "random:tiny", "--out", "rep"],
    ],
)
def test_every_verb_that_runs_the_model_takes_threads_and_refuses_zero(
    verb: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """--threads on each verb that runs a model or trains probes; 0 is one line, before work."""
    monkeypatch.chdir(tmp_path)
    _one_error_line([*verb, "--threads", "0"], capsys, "must be at least 1")
    assert list(tmp_path.iterdir()) == []
