"""The demo's two-concept result (experiments.demo.pair): its settings, the pair's plumbing on a
random tiny MusicGen (it steers nothing: only the files, rows, CIs and the report section are
checked), reuse of the chord part's directions, the skip-with-notice, and ``--pair`` parsing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch

from musicrfm.errors import ConfigError


def test_the_defaults_run_the_part_progression_and_pair_on_the_beat_testbed():
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.pair import pair_config, pair_model
    from musicrfm.experiments.demo.part import PART_MODEL, part_train_set

    cfg = DemoConfig()
    assert cfg.part_model == PART_MODEL == "musicgen-mini-beat"
    assert cfg.part_train_set == "strikes" and cfg.train_set == "synthetic"  # the note part's
    assert part_train_set(cfg, "chords") == "strikes"
    assert part_train_set(cfg, "scales") == "synthetic"  # strike clips have no scales
    assert cfg.pair == "A+diminished" and pair_model(cfg) == PART_MODEL
    pcfg = pair_config(cfg)
    assert pcfg.pairs == (("A", "diminished"),) and pcfg.conflict is None
    assert (pcfg.first.concept, pcfg.second.concept) == ("notes", "chords")
    assert (pcfg.first.coef, pcfg.second.coef) == ("0.2x", "0.2x")
    assert pcfg.controls == ("random",) and pcfg.clips == 16
    assert pcfg.data.train_set == "strikes" and pcfg.data.prompts == cfg.prompts
    # the quick (CI) run has neither a second part nor a pair
    quick = DemoConfig.quick()
    assert quick.part_model is None and quick.pair is None
    # no part: the pair still has a model (the beat testbed)
    assert pair_model(replace(cfg, part_model=None)) == PART_MODEL
    assert pair_model(replace(cfg, part_model="m")) == "m"
    assert pair_model(replace(cfg, pair_model="p")) == "p"


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"pair": "A-diminished"}, r"FIRST\+SECOND"), ({"pair": "H+diminished"}, "pitch class"),
     ({"pair": "A+sus4"}, "not a chord quality"), ({"pair_controls": ("nope",)}, "control"),
     ({"pair_clips": 1}, "at least 2"), ({"pair_relative_coefs": (0.2,)}, "two numbers")],
)  # fmt: skip
def test_a_bad_pair_is_refused_before_any_work(changes, message):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import checked_config

    with pytest.raises(ConfigError, match=message):
        checked_config(replace(DemoConfig(), **changes))


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory):
    """The pair stage on a random tiny model: note and chord directions trained from strike
    clips, 2 clips a condition of 1.2 s, the random control."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import _pair_part

    root = tmp_path_factory.mktemp("demo-pair")
    cfg = DemoConfig.quick(pair="G+augmented", pair_model="random:tiny", prompts=("violin",),
                           clips_per_class=6, seconds=1.2, pair_clips=2)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pair = _pair_part(cfg, None, root / "work", root / "out", 0, "cpu", False)
    finally:
        torch.set_num_threads(threads)
    return pair, root / "out"


def test_the_pair_measures_joint_each_alone_unsteered_and_the_control(pair_run):
    pair, out = pair_run
    assert pair["pair"] == "G+augmented" and pair["concepts"] == ["notes", "chords"]
    assert pair["train_set"] == "strikes" and pair["directions_reused"] == []
    conditions = [r["condition"] for r in pair["rows"]]
    assert conditions == ["unsteered", "first alone", "second alone", "joint"]
    for r in pair["rows"]:
        for key in ("first", "second", "joint"):
            assert r[f"{key}_n"] == 2
            assert 0 <= r[f"{key}_ci_low"] <= r[f"{key}_rate"] <= r[f"{key}_ci_high"] <= 1
        assert r["joint_k"] <= min(r["first_k"], r["second_k"])  # both right in one clip
    assert [c["control"] for c in pair["controls"]] == ["random"]
    assert set(pair["verdict"]) >= {"joint", "joint_ci", "applies", "first_alone"}
    parts = pair["parts"]
    for p in parts.values():  # η0 = 0.2 x the activation norm its directions recorded
        assert p["eta0"] == pytest.approx(0.2 * p["activation_norm"], rel=1e-6)
    # what `mini pairs` writes, in the demo's report folder
    for name in ("pairs.json", "pairs.md", "pairs.png", "results.csv", "plans/G+augmented.toml",
                 "directions/notes.safetensors", "directions/chords.safetensors"):  # fmt: skip
        assert (out / "pair" / name).is_file(), name
    assert (out / pair["plan"]).is_file() and (out / pair["figure"]).is_file()
    assert pair["validator"]["directions"] and not pair["validator"]["warnings"]
    assert {"directions", "generate", "evaluate", "report"} <= set(pair["timings"])
    conds = {e["condition"] for e in pair["examples"]}
    assert conds == {"unsteered", "first alone", "second alone", "joint", "joint-random"}


def test_the_pair_shows_in_the_report_with_its_tables_figure_plan_and_clips(pair_run):
    from musicrfm.experiments.demo.report import pair_section

    pair, out = pair_run
    title, body = pair_section(out, pair)
    assert title.startswith("Two concepts at once")
    assert "G alone (note direction only)" in body and "joint plan (G + augmented)" in body
    assert "random" in body and "Wilson 95%" in body and re.search(r"[0-2]/2 = ", body)
    links = re.findall(r"(?:src|href)='([^']+)'", body)
    assert any(x.endswith(".toml") for x in links) and any(x.endswith(".png") for x in links)
    audio = re.findall(r"<audio[^>]*src='([^']+)'", body)
    assert audio, "no clips of the pair in the report"
    for x in links:
        assert (out / x).is_file(), x


def test_the_chord_parts_directions_are_reused_when_they_fit(tmp_path, pair_run):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.pair import part_directions
    from musicrfm.probes.directions import ConceptDirections

    _, out = pair_run
    cd = ConceptDirections.load(out / "pair" / "directions" / "chords")
    assert cd.activation_norm() is not None
    cd.save(tmp_path / "directions" / "chords")
    cfg = DemoConfig()
    part = {"concept": "chords", "train_set": "strikes"}
    got = part_directions(cfg, part, tmp_path)
    assert set(got) == {"chords"} and got["chords"].classes == cd.classes
    assert part_directions(cfg, {**part, "train_set": "synthetic"}, tmp_path) == {}
    assert part_directions(cfg, {**part, "concept": "scales"}, tmp_path) == {}
    assert part_directions(replace(cfg, pair_model="other"), part, tmp_path) == {}
    assert part_directions(cfg, None, tmp_path) == {}
    assert part_directions(cfg, part, tmp_path / "nothing") == {}
    cd.meta.pop("activation_norm")
    cd.save(tmp_path / "old" / "directions" / "chords")
    assert part_directions(cfg, part, tmp_path / "old") == {}  # "0.2x" needs the norm


def test_a_missing_pair_model_skips_the_pair_with_a_notice(tmp_path, caplog):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import _pair_part

    cfg = replace(DemoConfig.quick(), pair="A+diminished", pair_model=str(tmp_path / "none"))
    assert _pair_part(cfg, None, tmp_path, tmp_path, 0, "cpu", False) is None
    assert "no pair" in caplog.text
    assert _pair_part(DemoConfig.quick(), None, tmp_path, tmp_path, 0, "cpu", False) is None


class _Stop(Exception):
    pass


def _config_from_cli(argv, monkeypatch, whole=False):
    """The DemoConfig (``whole``: every argument) the CLI hands run_demo for ``argv`` (the model
    load and run stubbed)."""
    import musicrfm.experiments.demo
    import musicrfm.models
    from musicrfm.cli import build_parser

    seen = {}

    def fake_run_demo(**kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(musicrfm.models, "load_model", lambda *a, **k: object())
    monkeypatch.setattr(musicrfm.experiments.demo, "run_demo", fake_run_demo)
    args = build_parser().parse_args(["demo", *argv])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(_Stop):
            args.func(args)
    finally:
        torch.set_num_threads(threads)
    return seen if whole else seen["config"]


@pytest.mark.parametrize(
    ("argv", "pair", "part_model"),
    [([], "A+diminished", "musicgen-mini-beat"), (["--pair", "none"], None, "musicgen-mini-beat"),
     (["--pair", "NONE"], None, "musicgen-mini-beat"),
     (["--pair", "Eb+Augmented"], "D#+augmented", "musicgen-mini-beat"),
     (["--no-part"], None, None), (["--no-part", "--pair", "A+minor"], "A+minor", None),
     (["--quick"], None, None), (["--quick", "--pair", "D#+augmented"], "D#+augmented", None),
     (["--part-model", "m"], "A+diminished", "m")],
)  # fmt: skip
def test_cli_pair_option(argv, pair, part_model, monkeypatch):
    cfg = _config_from_cli(argv, monkeypatch)
    assert cfg.pair == pair and cfg.part_model == part_model


@pytest.mark.parametrize(
    ("argv", "cores", "workers"), [([], 2, 2), ([], 16, 2), ([], 1, 1), (["--workers", "1"], 2, 1)]
)
def test_cli_workers(argv, cores, workers, monkeypatch):
    """Two processes by default where there are two cores; --workers 1 runs in order."""
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert _config_from_cli(argv, monkeypatch, whole=True)["workers"] == workers


@pytest.mark.parametrize("text", ["A-diminished", "A+dim", "X+minor", "A+minor+major"])
def test_a_bad_pair_option_is_one_line_before_any_model_loads(text, monkeypatch, capsys):
    from musicrfm.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the --pair check")

    monkeypatch.setattr("musicrfm.models.load_model", no_model)
    assert main(["demo", "--pair", text, "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_the_cli_line_on_the_pair():
    from musicrfm.commands.demo import pair_line

    def row(cond, k1, k2, kj, n=12):
        out = {"condition": cond}
        for key, k in (("first", k1), ("second", k2), ("joint", kj)):
            out.update({f"{key}_k": k, f"{key}_n": n, f"{key}_rate": k / n,
                        f"{key}_ci_low": 0.0, f"{key}_ci_high": 1.0})  # fmt: skip
        return out

    pair = {"pair": "A+diminished", "model_id": "m",
            "rows": [row("unsteered", 2, 0, 0), row("first alone", 11, 1, 1),
                     row("second alone", 2, 12, 2), row("joint", 12, 11, 11)],
            "controls": [{"control": "random", "joint_rate": 0.0}]}  # fmt: skip
    assert pair_line(pair) == (
        "pair A + diminished at once on m: both right in 11/12 = 0.92 [0.00, 1.00]; A alone: A "
        "11/12, diminished 1/12, both 1/12; diminished alone: A 2/12, diminished 12/12, both "
        "2/12; unsteered: A 2/12, diminished 0/12, both 0/12; random: both 0.00"
    )


def test_run_demo_writes_the_pair_into_demo_json_and_the_page(tmp_path):
    """The whole demo with a pair and no second part (random tiny models: plumbing only)."""
    import json

    from musicrfm.experiments.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick(clips_per_class=6, prompts=("violin",), crossfade_clips=0, seconds=1.2,
                           pair="G+augmented", pair_model="random:tiny", pair_clips=2)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_demo(model="random:tiny", out=tmp_path / "out", work=tmp_path / "work",
                          config=cfg, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    record = json.loads((tmp_path / "out" / "demo.json").read_text())
    pair = record["settings"]["pair"]
    assert record["settings"]["part"] is None and pair["pair"] == "G+augmented"
    assert [r["condition"] for r in pair["rows"]] == ["unsteered", "first alone", "second alone",
                                                      "joint"]  # fmt: skip
    assert record["timings"]["pair"] == pytest.approx(sum(pair["timings"].values()))
    assert pair["directions_reused"] == []  # no chord part to take them from
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Two concepts at once on random:tiny" in page and "joint plan (G + augmented)" in page
    for src in re.findall(r"(?:src|href)='(pair/[^']+)'", page):
        assert (tmp_path / "out" / src).is_file(), src
    assert result.settings["pair"]["pair"] == "G+augmented"


def test_two_workers_give_the_same_demo_as_one(tmp_path):
    """workers=2 runs the pair in a spawned process beside the note part: the same clips and
    figures as one process running every stage in order (random tiny models: plumbing only)."""
    import json

    from musicrfm.experiments.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick(clips_per_class=6, prompts=("violin",), crossfade_clips=0, seconds=1.2,
                           pair="G+augmented", pair_model="random:tiny", pair_clips=2)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    records = {}
    try:
        for workers in (1, 2):
            out = tmp_path / f"out{workers}"
            run_demo(model="random:tiny", out=out, work=tmp_path / f"work{workers}", config=cfg,
                     progress=False, workers=workers)  # fmt: skip
            records[workers] = json.loads((out / "demo.json").read_text())
    finally:
        torch.set_num_threads(threads)
    one, two = records[1], records[2]
    assert (one["settings"]["workers"], two["settings"]["workers"]) == (1, 2)
    assert two["settings"]["pair"]["rows"] == one["settings"]["pair"]["rows"]
    assert two["summary"] == one["summary"] and two["controls"] == one["controls"]
    assert two["settings"]["wall_seconds"] > 0


def test_the_second_process_gets_its_own_environment_and_a_crash_is_reported():
    """The child sees the variables given for it (its own numba cache) and the parent keeps its
    own; a child that dies without a result raises WorkerDied (the demo then runs the testbed
    parts itself) instead of waiting for ever."""
    import os

    from musicrfm.experiments.demo.run import WorkerDied, _Background

    key = "MUSICRFM_TEST_CHILD_ONLY"
    assert key not in os.environ
    child = _Background(os.getenv, (key,), {key: "child"})
    try:
        assert child.result() == "child" and key not in os.environ
    finally:
        child.close()
    dying = _Background(os._exit, (3,))
    try:
        with pytest.raises(WorkerDied):
            dying.result()
    finally:
        dying.close()
