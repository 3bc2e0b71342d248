"""The demo's beat (experiments.demo.beat): its settings, its plumbing on a random tiny MusicGen
with a tiny onset ConceptDirections saved to a tmp folder (it steers nothing: only the jobs,
rows, CIs, files and the report section are checked), the skip-with-notice when a model has no
bundled onset directions, and ``--beat`` parsing."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError


def tiny_onsets(adapter, path):
    """A two-class (none / onset) ConceptDirections of ``adapter``'s shape, with the activation
    norm a relative η0 reads, saved at ``path``."""
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(0)
    n, d = int(adapter.num_layers), int(adapter.hidden_size)
    v = torch.randn(n, 2, 1, d, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    cd = ConceptDirections(
        concept="onsets", classes=["none", "onset"], vectors=v,
        scores=torch.full((n, 2), 0.9), layers=list(range(n)),
        meta={"model_id": str(adapter.model_id), "num_layers": n, "hidden_size": d,
              "activation_norm": 10.0},
    )  # fmt: skip
    cd.save(path)
    return cd


def test_the_defaults_pulse_80_and_160_bpm_at_03x_on_the_beat_testbed():
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.beat import beat_config, beat_model
    from musicrfm.experiments.demo.part import PART_MODEL

    cfg = DemoConfig()
    assert cfg.beat_bpms == (80.0, 160.0) and cfg.beat_relative_coef == 0.3
    assert cfg.beat_controls == ("random",) and beat_model(cfg) == PART_MODEL
    hcfg = beat_config(cfg)
    assert hcfg.clips == 16 == len(cfg.prompts) * cfg.beat_seeds_per_prompt
    assert hcfg.data.seconds == 4.0 and hcfg.targets == ("80", "160")
    assert DemoConfig.quick().beat_bpms is None  # CI stays as fast as it was
    assert beat_model(replace(cfg, part_model=None)) == PART_MODEL
    assert beat_model(replace(cfg, part_model="m")) == "m"
    assert beat_model(replace(cfg, beat_model="b")) == "b"


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"beat_bpms": ()}, "between 20 and 400"), ({"beat_bpms": (80.0, 1000.0)}, "between"),
     ({"beat_bpms": (80.0, 80.0)}, "differ"), ({"beat_relative_coef": 0.0}, "positive"),
     ({"beat_controls": ("nope",)}, "control"), ({"beat_seeds_per_prompt": 0}, "at least 2")],
)  # fmt: skip
def test_bad_beat_settings_are_refused_before_any_work(changes, message):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.beat import check_beat
    from musicrfm.experiments.demo.run import checked_config

    cfg = replace(DemoConfig(), **changes)
    with pytest.raises(ConfigError, match=message):
        check_beat(cfg)
    if cfg.beat_bpms:  # () is "no beat" to run_demo (falsy), caught by check_beat itself
        with pytest.raises(ConfigError, match=message):
            checked_config(cfg)


@pytest.fixture(scope="module")
def beat_run(tmp_path_factory):
    """The beat stage on a random tiny model: tiny onset directions from a tmp folder, two
    prompts x 1 seed of 1.2 s, 80 and 160 BPM, the random control."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.beat import run_beat_part
    from musicrfm.models import load_model

    root = tmp_path_factory.mktemp("demo-beat")
    cfg = DemoConfig.quick(beat_bpms=(80.0, 160.0), prompts=("violin", "flute"), seconds=1.2,
                           beat_seeds_per_prompt=1)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        adapter = load_model("random:tiny")
        tiny_onsets(adapter, root / "dirs" / "onsets")
        beat = run_beat_part(cfg, root / "out", adapter=adapter, directions=root / "dirs" /
                             "onsets", progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return beat, root / "out"


def test_the_beat_scores_unsteered_onset_and_control_against_each_tempo(beat_run):
    import pandas as pd

    beat, out = beat_run
    assert beat["bpms"] == [80.0, 160.0] and beat["controls"] == ["random"]
    assert beat["coef"] == pytest.approx(0.3 * 10.0) and beat["clips"] == 2
    got = [(r["bpm"], r["condition"]) for r in beat["rows"]]
    assert got == [(80.0, "unsteered"), (80.0, "onset"), (80.0, "random"),
                   (160.0, "unsteered"), (160.0, "onset"), (160.0, "random")]  # fmt: skip
    for r in beat["rows"]:
        assert r["n"] == 2 and 0 <= r["ci_low"] <= r["hit_rate"] <= r["ci_high"] <= 1
    # the unsteered clips are the same two clips scored against each target
    frame = pd.read_csv(out / "beat" / "results.csv")
    assert (frame["condition"] == "unsteered").sum() == 2 and len(frame) == 10
    assert set(frame.loc[frame["condition"] != "unsteered", "target"].astype(str)) == {"80", "160"}
    for p in frame["audio_path"]:
        assert (out / p).is_file(), p
    # every condition on the same (prompt, seed) pairs
    pairs = frame.groupby(["condition", "target"])[["prompt", "seed"]].apply(
        lambda g: tuple(map(tuple, g.to_numpy()))
    )
    assert len(set(pairs)) == 1
    assert set(beat["verdict"]["tempos"]) == {"80", "160"}
    assert (out / beat["figure"]).is_file() and beat["figure"] == "beat/onsets.png"
    assert {"load", "generate", "evaluate"} == set(beat["timings"])
    assert {(e["condition"], e["target"]) for e in beat["examples"]} == {
        ("unsteered", "none"), ("onset", "80"), ("onset", "160"), ("random", "80"),
        ("random", "160")}  # fmt: skip


def test_the_onset_pulses_follow_the_beat_grid(beat_run, tmp_path):
    """The steered jobs' plans are BeatPulse keyframes at each tempo's period (not one plan)."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.beat import beat_config
    from musicrfm.experiments.headline.beat import beat_jobs
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    cd = tiny_onsets(adapter, tmp_path / "onsets")
    cfg = DemoConfig.quick(beat_bpms=(80.0, 160.0), prompts=("violin",), seconds=4.0)
    jobs = beat_jobs(cd, beat_config(cfg), (80.0, 160.0), (3.0,), 0)
    assert [j.condition for j in jobs] == ["unsteered", "onset", "onset"]
    for job, bpm in zip(jobs[1:], (80.0, 160.0)):
        (d,) = job.plan.to_dict(strict=False)["direction"]
        assert d["target"] == "onset" and d["coef"] == 3.0 and d["layers"] == "all"
        assert d["schedule"]["kind"] == "keyframes" and d["schedule"]["unit"] == "seconds"
        peaks = [t for t, phi in d["schedule"]["points"] if phi == 1.0]
        assert len(peaks) >= 4
        assert np.allclose(np.diff(peaks), 60.0 / bpm)  # one pulse a beat
        assert peaks[0] == pytest.approx(30.0 / bpm)  # half a beat before the beat


def test_the_beat_shows_in_the_report_with_its_table_figure_and_clips(beat_run):
    from musicrfm.experiments.demo.report import beat_section

    beat, out = beat_run
    title, body = beat_section(out, beat)
    assert title.startswith("An exact tempo on random:tiny")
    assert "80 BPM: <b>" in body and "160 BPM: <b>" in body and "Wilson 95%" in body
    assert "onset pulses" in body and "random direction pulsed (equal norm)" in body
    assert len(re.findall(r"[0-2]/2 = ", body)) == 6  # one k/n per table row
    links = re.findall(r"(?:src|href)='([^']+)'", body)
    assert "beat/onsets.png" in links and "beat/results.csv" in links
    assert len(re.findall(r"<audio", body)) == 5
    for x in links:
        assert (out / x).is_file(), x


def test_a_model_without_bundled_onsets_skips_the_beat_with_a_notice(tmp_path, caplog):
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.run import _beat_part
    from musicrfm.models import load_model

    cfg = DemoConfig.quick(beat_bpms=(80.0,), beat_model="random:tiny", prompts=("violin",))
    adapter = load_model("random:tiny")  # no local folder, so no directions/onsets
    assert _beat_part(cfg, tmp_path, 0, "cpu", False, adapter) is None
    assert "no beat" in caplog.text and "no bundled onset directions" in caplog.text
    caplog.clear()
    missing = replace(cfg, beat_model=str(tmp_path / "none"))  # no such model
    assert _beat_part(missing, tmp_path, 0, "cpu", False) is None
    assert "no beat" in caplog.text
    assert _beat_part(DemoConfig.quick(), tmp_path, 0, "cpu", False) is None  # no beat asked
    assert not (tmp_path / "beat").exists()


def test_a_model_folder_without_the_onsets_file_says_so(tmp_path):
    from musicrfm.errors import ModelError
    from musicrfm.experiments.demo.beat import bundled_onsets

    class Folder:
        model_id = "m"
        local_path = str(tmp_path)

    with pytest.raises(ModelError, match="no bundled onset directions"):
        bundled_onsets(Folder())
    (tmp_path / "directions").mkdir()
    (tmp_path / "directions" / "onsets.safetensors").write_bytes(b"")
    assert bundled_onsets(Folder()) == tmp_path / "directions" / "onsets"


def test_the_bundled_beat_testbed_has_its_onset_directions():
    from pathlib import Path

    from musicrfm.probes.directions import ConceptDirections

    root = Path(__file__).resolve().parents[2] / "models" / "musicgen-mini-beat"
    if not root.is_dir():
        pytest.skip("no bundled beat testbed in this checkout")
    cd = ConceptDirections.load(root / "directions" / "onsets")
    assert cd.classes == ["none", "onset"] and cd.activation_norm() is not None


class _Stop(Exception):
    pass


def _config_from_cli(argv, monkeypatch):
    """The DemoConfig the CLI hands run_demo for ``argv`` (the model load and run stubbed)."""
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
    return seen["config"]


@pytest.mark.parametrize(
    ("argv", "bpms"),
    [([], (80.0, 160.0)), (["--beat", "none"], None), (["--beat", "NONE"], None),
     (["--beat", "80", "160"], (80.0, 160.0)), (["--beat", "100"], (100.0,)),
     (["--beat", "90,150"], (90.0, 150.0)), (["--no-part"], None),
     (["--no-part", "--beat", "100"], (100.0,)), (["--quick"], None),
     (["--quick", "--beat", "80", "160"], (80.0, 160.0)), (["--pair", "none"], (80.0, 160.0))],
)  # fmt: skip
def test_cli_beat_option(argv, bpms, monkeypatch):
    cfg = _config_from_cli(argv, monkeypatch)
    assert cfg.beat_bpms == bpms


@pytest.mark.parametrize("argv", [["--beat", "fast"], ["--beat", "80", "80"], ["--beat", "5"]])
def test_a_bad_beat_option_is_one_line_before_any_model_loads(argv, monkeypatch, capsys):
    from musicrfm.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("the model loaded before the --beat check")

    monkeypatch.setattr("musicrfm.models.load_model", no_model)
    assert main(["demo", *argv, "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_the_cli_line_on_the_beat():
    from musicrfm.commands.demo import beat_line

    def row(bpm, cond, k, median, n=16):
        return {"bpm": bpm, "condition": cond, "coef": 0.0, "hit_rate": k / n, "ci_low": 0.0,
                "ci_high": 1.0, "n": n, "median_bpm": median}  # fmt: skip

    beat = {"model_id": "m", "bpms": [80.0, 160.0], "relative_coef": 0.3, "controls": ["random"],
            "rows": [row(80.0, "unsteered", 0, 121.0), row(80.0, "onset", 14, 80.4),
                     row(80.0, "random", 1, 120.0), row(160.0, "unsteered", 0, 121.0),
                     row(160.0, "onset", 12, 158.9), row(160.0, "random", 0, 119.0)]}  # fmt: skip
    assert beat_line(beat) == (
        "beat on m (onset pulses at 0.3x, clips within 4% of the target): 80 BPM 14/16 (median "
        "80; unsteered 0/16, random 1/16); 160 BPM 12/16 (median 159; unsteered 0/16, random "
        "0/16)"
    )


def test_run_demo_writes_the_beat_into_demo_json_and_the_page(tmp_path, monkeypatch):
    """The whole quick demo with a beat and no part or pair (random tiny model; its onset
    directions put where the bundled ones would be: plumbing only)."""
    import json

    import musicrfm.experiments.demo.beat as beat_module
    from musicrfm.experiments.demo import DemoConfig, run_demo

    folder = tmp_path / "dirs" / "onsets"
    monkeypatch.setattr(beat_module, "bundled_onsets", lambda adapter: folder)
    cfg = DemoConfig.quick(clips_per_class=6, prompts=("violin", "flute"), crossfade_clips=0,
                           seconds=1.2, beat_bpms=(100.0,), beat_model="random:tiny",
                           beat_seeds_per_prompt=1)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from musicrfm.models import load_model

        tiny_onsets(load_model("random:tiny"), folder)
        result = run_demo(model="random:tiny", out=tmp_path / "out", work=tmp_path / "work",
                          config=cfg, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    record = json.loads((tmp_path / "out" / "demo.json").read_text())
    beat = record["settings"]["beat"]
    assert record["settings"]["part"] is None and record["settings"]["pair"] is None
    assert beat["bpms"] == [100.0] and beat["directions"] == str(folder)
    assert [r["condition"] for r in beat["rows"]] == ["unsteered", "onset", "random"]
    assert record["timings"]["beat"] == pytest.approx(sum(beat["timings"].values()))
    page = (tmp_path / "out" / "index.html").read_text()
    assert "An exact tempo on random:tiny" in page
    for src in re.findall(r"(?:src|href)='(beat/[^']+)'", page):
        assert (tmp_path / "out" / src).is_file(), src
    assert result.settings["beat"]["coef"] == pytest.approx(3.0)
