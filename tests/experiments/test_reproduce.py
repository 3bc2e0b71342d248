"""`musicrfm reproduce`: the protocol file, the plan, the tables' layout, and a tiny end-to-end
run on a random MusicGen that is interrupted, resumed, and run again with nothing left to do."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from musicrfm.cli import main
from musicrfm.errors import ConfigError
from musicrfm.experiments.reproduce import (
    ReproduceOptions,
    build_plan,
    load_protocol,
    parse_tables,
    prepare_reproduce,
    run_reproduce,
)
from musicrfm.experiments.reproduce import tables as T
from musicrfm.experiments.reproduce.plan import data_size, sweep_specs
from musicrfm.experiments.reproduce.protocol import unsourced

TINY = dict(concepts=("notes", "chords"), scale=0.002, seconds=0.2, clip_seconds=0.5)
# the test's protocol: the paper's with shorter grids (fewer η0, variants, schedules), so the
# tiny run takes every code path in a fraction of the time
TRIM = {
    "coefs = { value = [0.15, 0.30, 0.45, 0.60]": "coefs = { value = [0.30, 0.60]",
    "coefs = { value = [0.3, 0.6], paper = true": "coefs = { value = [0.6], paper = true",
    'schedules = { value = ["linear-rise", "linear-decay", "exp-decay", "logistic-rise", '
    '"sine"]': 'schedules = { value = ["linear-rise", "sine"]',
    'variants = { value = ["linear", "exp:0.98", "exp:0.95", "exp:0.92", "uniform"]': (
        'variants = { value = ["linear"]'
    ),
    "top_k = { value = [4, 8, 12, 16, 24, 32, 48]": "top_k = { value = [24]",
    "gate = { value = [0.15, 0.30, 0.45, 0.6, 0.75, 0.9, 1.0]": "gate = { value = [0.3]",
    'kinds = { value = ["random", "flip", "orthogonal", "other_class"]': (
        'kinds = { value = ["flip"]'
    ),
}


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory) -> Path:
    text = load_protocol().path.read_text()
    for old, new in TRIM.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("protocol") / "trimmed.toml"
    path.write_text(text)
    return path


TINY_ARGS = [
    "--model", "random:tiny", "--concepts", "notes,chords", "--scale", "0.002",
    "--seconds", "0.2", "--clip-seconds", "0.5", "--budget", "fast", "--no-progress",
    "--syntheory", "local",  # never a hub request from the suite, online or not
]  # fmt: skip


def test_protocol_loads_and_every_value_names_its_source(tmp_path: Path) -> None:
    protocol = load_protocol()
    assert list(unsourced(protocol.data)) == []
    assert protocol.value("steering.coefs") == [0.15, 0.30, 0.45, 0.60]
    assert protocol.value("steering.gate") == 0.3
    assert (protocol.value("steering.weighting"), protocol.value("steering.kappa")) == (
        "exponential",
        0.95,
    )
    assert protocol.value("evaluation.generations_per_condition") == 500
    assert "Table 2" in protocol.source("steering.coefs")
    assert protocol.record("steering.prompts")["paper"] is False  # the paper names no prompts
    assert [t.number for t in protocol.tables() if not t.implemented] == [3, 4, 7]
    assert all(t.reason for t in protocol.tables() if not t.implemented)
    # the paper's Table 1 numbers agree with the table1 module's copy
    from musicrfm.experiments.table1 import PAPER_TABLE1

    paper = protocol.paper_numbers(1)
    assert {k: tuple(v) for k, v in paper.items() if k in PAPER_TABLE1} == PAPER_TABLE1
    assert protocol.paper_numbers(2)["notes"]["probe_acc"] == [0.231, 0.461, 0.684, 0.824]

    # a value without a source is refused, naming it
    text = protocol.path.read_text().replace(
        'gate = { value = 0.3, paper = true, source = "§5.1: stochastic application psi_p(t) '
        'with p = 0.3" }',
        "gate = { value = 0.3 }",
    )
    assert text != protocol.path.read_text()
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ConfigError, match="no source for steering.gate"):
        load_protocol(tmp_path / "p.toml")


def test_tables_the_verb_does_not_measure_are_refused_with_the_reason(capsys) -> None:
    protocol = load_protocol()
    assert parse_tables("1, 2,table5,10", protocol) == (1, 2, 5, 10)
    with pytest.raises(ConfigError, match="table 4 .*not implemented yet.*MusicBench"):
        parse_tables("1,4", protocol)
    with pytest.raises(ConfigError, match="listening test"):
        parse_tables("3", protocol)
    with pytest.raises(ConfigError, match="no table 11"):
        parse_tables("11", protocol)
    assert main(["reproduce", "--model", "random:tiny", "--tables", "2,4"]) == 2
    assert "not implemented yet" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--scale"):
        ReproduceOptions(scale=2.0)


def test_sizes_at_the_paper_scale_and_tables_that_lack_a_concept() -> None:
    protocol = load_protocol()
    full = ReproduceOptions()
    assert data_size("notes", full, protocol).clips == 9936  # all of SynTheory's notes
    assert data_size("progressions", full, protocol).clips_per_class == 700  # App. B's cap
    tempos = data_size("tempos", full, protocol)
    assert (tempos.clips_per_class, tempos.tempo_step, tempos.classes) == (25, 1, 161)
    small = data_size("tempos", ReproduceOptions(scale=0.002), protocol)
    assert small.clips_per_class == 6 and small.classes == 2  # BPMs thinned, 6 clips each
    dirs = {c: f"d/{c}" for c in protocol.value("dataset.concepts")}
    specs, missing = sweep_specs(full, protocol, model="m", num_layers=48, directions=dirs)
    by_name = {s.name: s for s in specs}
    notes = by_name["table2-notes"].config
    assert len(notes["concepts"]["notes"]["targets"]) == 12
    assert len(notes["prompts"]) * len(notes["seeds"]) * 12 >= 500  # 500 per cell
    assert notes["plan"]["gate"] == 0.3 and notes["plan"]["weighting"] == "exponential"
    assert by_name["ablations"].config["plan"]["weighting"] == "uniform"
    assert by_name["ablations"].config["ablations"]["top_k"] == [4, 8, 12, 16, 24, 32, 48]
    assert len(by_name["table5"].config["multi"]) >= 3 * 4  # pairs x coefficient pairs
    assert missing == {}
    only_chords = ReproduceOptions(concepts=("chords",), tables=(2, 5, 6, 9))
    specs, missing = sweep_specs(only_chords, protocol, model="m", num_layers=4, directions=dirs)
    assert [s.name for s in specs] == ["table2-chords"]
    assert set(missing) == {5, 6, 9} and "notes" in missing[6]


def test_plan_is_printed_and_nothing_runs_without_yes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["reproduce", *TINY_ARGS, "--tables", "2", "--concepts", "chords", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "plan: random:tiny" in text and "tables 2; concepts chords" in text
    assert "synthesise 28 clips" in text  # 4 chord qualities x 7 clips (13,248 x 0.002 / 4)
    assert "generate: 5 clips of 0.2 s" in text  # unsteered + 4 η0, one target at this scale
    assert "ESTIMATE on cpu (from a measured" in text and "memory ~" in text
    assert "not started: pass --yes" in text
    assert not list(out.glob("table*")) and not (out / "work" / "sweeps").exists()


def test_table_cells_put_ours_beside_the_papers_and_say_what_is_missing() -> None:
    protocol = load_protocol()
    long = pd.DataFrame(
        [
            {"concept": "notes", "coef": c, "n": 4, "fd": 0.5, "mmd": 0.1, "probe_acc": 0.25,
             "detector_acc": 0.75}
            for c in (0.15, 0.3, 0.45, 0.6)
        ]
    )  # fmt: skip
    table = T.table2(protocol, long, has_clap=False)
    md = table.markdown(["header"])
    notes_row = next(line for line in md.splitlines() if line.startswith("| Notes |"))
    assert "0.500 (0.113)" in notes_row and "0.250 (0.824)" in notes_row
    assert "n/m (0.315)" in notes_row  # CLAP, not measured, beside the paper's
    assert T.NO_CLAP in md
    chords_row = next(line for line in md.splitlines() if line.startswith("| Chords |"))
    assert "n/m (0.116)" in chords_row  # a concept we did not run: no number of ours
    with_clap = T.table2(protocol, long.assign(clap=0.3), has_clap=True).markdown([])
    assert T.NO_CLAP not in with_clap and "0.300 (0.315)" in with_clap


@pytest.fixture
def offline_small(tmp_path: Path, monkeypatch) -> str:
    """`facebook/musicgen-small` resolved offline from a hub cache, as for a user who has it
    cached (random weights of the tiny config: the same code path as the real checkpoint)."""
    import huggingface_hub.constants as hub_constants
    import torch

    from musicrfm.models import random_model
    from musicrfm.models.hub import place_in_hub_cache

    torch.set_num_threads(1)
    folder = random_model("tiny", seed=0).save_pretrained(tmp_path / "tiny")
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    place_in_hub_cache(folder, "facebook/musicgen-small", cache_dir=cache)
    return "facebook/musicgen-small"


@pytest.mark.slow
def test_tiny_run_is_interrupted_resumed_and_writes_every_table(
    tmp_path: Path, trimmed: Path, monkeypatch, offline_small: str
) -> None:
    import musicrfm.probes.training as training
    import musicrfm.steering.generation as generation

    out = tmp_path / "out"
    options = ReproduceOptions(budget="fast", **TINY)
    given = dict(out=out, protocol=trimmed, measure=False, progress=False)

    # run 1: stopped after two sweep conditions (everything before the sweeps finished)
    def stop(cond, n):
        if n == 2:
            raise KeyboardInterrupt

    first = prepare_reproduce(offline_small, options, **given)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(first, progress=False, on_condition=stop)
    dirs = sorted((out / "work" / "directions").glob("*/*.safetensors"))
    assert len(dirs) == 2
    stamps = {p: p.stat().st_mtime_ns for p in dirs}
    expected = first.plan.generations

    # run 2 (the CLI, now with the causal controls): no probe is trained again, the two
    # finished conditions are skipped
    def no_training(*a, **k):
        raise AssertionError("a finished stage trained probes again")

    monkeypatch.setattr(training, "train_directions", no_training)
    argv = [
        "reproduce", *TINY_ARGS, "--model", offline_small, "--protocol", str(trimmed),
        "--out", str(out), "--yes", "--controls",
    ]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "reproduce.json").read_text())
    assert record["stages"]["train"]["trained"] == []
    sweeps = record["stages"]["sweeps"]["runs"]
    assert sweeps["table2-notes"]["skipped"] == 2
    generated = sum(s["generated_clips"] for s in sweeps.values())
    assert generated + 2 == record["plan"]["generations"]  # the plan counted right
    controls_clips = sum(s["generated_clips"] for k, s in sweeps.items() if "controls" in k)
    assert controls_clips > 0 and generated - controls_clips + 2 == expected
    assert {p: p.stat().st_mtime_ns for p in dirs} == stamps
    ctl = json.loads((out / "controls.json").read_text())["concepts"]
    assert set(ctl) == {"notes", "chords"}
    conditions = {r["condition"] for r in ctl["notes"]["accuracy"]}
    assert conditions == {"concept", "flip", "unsteered"}
    assert "specific" in ctl["notes"]["specificity"]

    for n in (1, 2, 5, 6, 8, 9, 10):
        assert (out / f"table{n}.md").is_file() and (out / f"table{n}.json").is_file()
    assert "MODIFIED" in (out / "table2.md").read_text()  # not the paper's protocol: said so
    t1 = json.loads((out / "table1.json").read_text())
    rfm = t1["ours"]["RFM (mean-pooled)"]
    assert 0.0 <= rfm["Notes"] <= 1.0 and 0.0 <= rfm["Chords"] <= 1.0
    assert t1["paper"]["RFM (mean-pooled)"]["Notes"] == 0.850
    assert set(t1["ours"]) >= {"RFM (last token)", "Linear probe (ridge)", "2-layer MLP probe"}
    t2 = json.loads((out / "table2.json").read_text())
    assert set(t2["ours"]) == {"Notes", "Chords"}
    notes = t2["ours"]["Notes"]
    assert (
        notes["Probe acc. ↑ η0=0.6"] is not None
        and notes["Detector acc. (ours) η0=0.3"] is not None
    )
    assert notes.get("Probe acc. ↑ η0=0.15") is None  # not in this protocol's grid
    assert t2["paper"]["Notes"]["Probe acc. ↑ η0=0.6"] == 0.824
    assert T.NO_CLAP in (out / "table2.md").read_text()
    assert set(json.loads((out / "table5.json").read_text())["ours"]) == {
        "Notes η0=0.6",
        "Chords η0=0.6",
    }
    measured = {
        6: {"linear-rise", "sine", "crossfade"},
        8: {"linear"},
        9: {"K=24 (ours 2)"},
        10: {"p=0.3"},
    }
    for n, rows in measured.items():
        t = json.loads((out / f"table{n}.json").read_text())
        assert set(t["ours"]) == rows and rows <= set(t["paper"]), n
        assert all(v >= 1 for v in t["n"].values())
        assert all(t["ours"][r]["Probe acc. ↑"] is not None for r in rows), n

    # run 3: nothing left to do -- no training, no generation
    def no_generation(*a, **k):
        raise AssertionError("a finished condition was generated again")

    monkeypatch.setattr(generation, "generate", no_generation)
    with_controls = ReproduceOptions(budget="fast", controls=True, **TINY)
    again = prepare_reproduce(offline_small, with_controls, **given)
    result = run_reproduce(again, progress=False)
    assert all(s["finished_now"] == 0 for s in result.stages["sweeps"]["runs"].values())
    assert json.loads((out / "table2.json").read_text())["ours"] == t2["ours"]


def test_plan_counts_without_a_model() -> None:
    protocol = load_protocol()
    options = ReproduceOptions(budget="fast", **TINY)
    dirs = {c: f"d/{c}" for c in ("notes", "chords")}
    plan = build_plan(
        "m", options, protocol, num_layers=4, frame_rate=50, max_delay=3, directions=dirs
    )
    # table2: 2 x (unsteered + 4 η0); table5: 4 pairs + 3; table6: 1 + 1 + 5 schedules + 1
    # crossfade; ablations: 1 + 1 + 4 weightings + 4 top-K + 6 gates (uniform weighting and
    # p=1.0 are the naive plan itself, whose audio they share)
    assert plan.generations == 10 + 7 + 8 + 16
    assert plan.steps_per_clip == 13 and plan.decoder_steps == 41 * 13
    assert plan.clips == 12 * 6 + 4 * 7
    assert plan.estimate() is None and not any("ESTIMATE" in line for line in plan.lines())
