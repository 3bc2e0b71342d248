"""Note sequences on a beat grid: keyframes at beat positions, tempo ramps, plans and plan files,
the `generate --notes` CLI, and the errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tomllib
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.plan import SteeringDirection, SteeringPlan
from musicrfm.steering.sequence import (
    NoteSequence,
    NoteSpan,
    Tempo,
    merge_spans,
    parse_notes,
    sequence_table,
)
from musicrfm.steering.toml_writer import dumps_toml
from musicrfm.theory import PITCH_CLASSES

FPS = 50  # MusicGen's frame rate: step = seconds x 50


def values_at_beats(seq: NoteSequence, beats, fps: float = FPS) -> dict[str, np.ndarray]:
    """Each note's schedule value at the steps of the given beat positions (constant tempo)."""
    steps = np.rint(seq.beat_seconds(beats) * fps).astype(int)
    n = int(steps.max()) + 1
    return {k: s.values(n, frame_rate=fps)[steps] for k, s in seq.schedules().items()}


# ------------------------------------------------------------------------------ the grid
def test_one_note_per_bar_keyframes_at_beat_positions() -> None:
    seq = NoteSequence("C E G", bpm=120)  # 4/4, a bar each: C 0-2 s, E 2-4 s, G 4-6 s
    assert seq.seconds == 6.0
    h = 0.0625  # half of the quarter-beat fade at 0.5 s per beat
    assert seq.keyframes() == {
        "C": [(0.0, 1.0), (2 - h, 1.0), (2 + h, 0.0)],
        "E": [(2 - h, 0.0), (2 + h, 1.0), (4 - h, 1.0), (4 + h, 0.0)],
        "G": [(4 - h, 0.0), (4 + h, 1.0), (6 - h, 1.0), (6 + h, 0.0)],
    }
    v = values_at_beats(seq, np.arange(15))  # beats 0..14 = steps 0, 25, ..., 350
    np.testing.assert_array_equal(v["C"], [1, 1, 1, 1, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(v["E"], [0, 0, 0, 0, 0.5, 1, 1, 1, 0.5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(v["G"], [0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1, 0.5, 0, 0])
    # inside a fade: linear, and the two neighbours sum to 1 at every step
    sched = {k: s.values(320, frame_rate=FPS) for k, s in seq.schedules().items()}
    assert sched["C"][97] == pytest.approx(1 - (1.94 - 1.9375) / 0.125)
    assert sched["C"][96] == 1.0 and sched["C"][104] == 0.0  # 1.92 s and 2.08 s: outside
    total = sched["C"] + sched["E"] + sched["G"]
    np.testing.assert_allclose(total[:296], 1.0)  # until the last note fades out at 5.9375 s
    assert total[304] == 0.0  # after the last note's fade


def test_beats_per_note_bars_per_note_meter_and_bar_lines() -> None:
    def spans(text, **kw):
        return [(s.note, s.start, s.end) for s in parse_notes(text, **kw)]

    assert spans("C E G") == [("C", 0, 4), ("E", 4, 8), ("G", 8, 12)]
    assert spans("C,E, G", beats_per_note=2) == [("C", 0, 2), ("E", 2, 4), ("G", 4, 6)]
    assert spans("C E", bars_per_note=2) == [("C", 0, 8), ("E", 8, 16)]
    assert spans("C E", bars_per_note=1, beats_per_bar=3) == [("C", 0, 3), ("E", 3, 6)]
    # '|': the notes of a bar share it; leading/trailing bar lines are fine
    assert spans("C E | G") == [("C", 0, 2), ("E", 2, 4), ("G", 4, 8)]
    assert spans("| C E G D |G|") == [("C", 0, 1), ("E", 1, 2), ("G", 2, 3), ("D", 3, 4), ("G", 4, 8)]  # fmt: skip
    assert spans("C E | G", beats_per_bar=3) == [("C", 0, 1.5), ("E", 1.5, 3), ("G", 3, 6)]
    # two notes in a bar at 120 BPM: the boundaries at 1 s and 2 s
    kf = NoteSequence("C E | G").keyframes()
    assert kf["E"] == [(0.9375, 0.0), (1.0625, 1.0), (1.9375, 1.0), (2.0625, 0.0)]


def test_repeated_notes_merge_and_recurring_notes_share_one_direction() -> None:
    assert merge_spans([NoteSpan("C", 0, 4), NoteSpan("C", 4, 8), NoteSpan("G", 8, 12)]) == [
        NoteSpan("C", 0, 8),
        NoteSpan("G", 8, 12),
    ]
    assert NoteSequence("C C G").keyframes()["C"] == [(0.0, 1.0), (3.9375, 1.0), (4.0625, 0.0)]
    seq = NoteSequence("C G C", bpm=60, beats_per_note=1)  # 1 s per note
    kf = seq.keyframes()
    assert list(kf) == ["C", "G"]
    assert kf["C"] == [
        (0.0, 1.0), (0.875, 1.0), (1.125, 0.0), (1.875, 0.0), (2.125, 1.0), (2.875, 1.0),
        (3.125, 0.0),
    ]  # fmt: skip
    v = values_at_beats(seq, [0, 1, 1.5, 2, 3])
    np.testing.assert_array_equal(v["C"], [1, 0.5, 0, 0.5, 0.5])
    np.testing.assert_array_equal(v["G"], [0, 0.5, 1, 0.5, 0])
    # a longer fade
    kf = NoteSequence("C G", bpm=60, beats_per_note=2, fade_beats=1).keyframes()
    assert kf["G"] == [(1.5, 0.0), (2.5, 1.0), (3.5, 1.0), (4.5, 0.0)]


# ------------------------------------------------------------------------------ tempo
def test_tempo_forms_and_a_ramp_moves_the_beats() -> None:
    assert Tempo.parse(120) == Tempo.parse("120") == Tempo(120.0, 120.0)
    for text in ("90..130", "90-130", "90 .. 130", "90->130", "90 to 130", [90, 130]):
        assert Tempo.parse(text) == Tempo(90.0, 130.0), text
    assert Tempo.parse("90..130").to_value() == "90..130" and Tempo(120).to_value() == 120.0
    # 60 -> 120 BPM linear in time over 8 beats: D = 120 * 8 / 180 s; beat B where
    # 60 t + 60 t^2 / (2 D) = 60 B
    seq = NoteSequence("C E", bpm="60..120")
    D = 16 / 3
    assert seq.seconds == pytest.approx(D)
    t = seq.beat_seconds(np.arange(9))
    np.testing.assert_allclose(60 * t + 60 * t**2 / (2 * D), 60 * np.arange(9), atol=1e-9)
    assert np.all(np.diff(np.diff(t)) < 0)  # the beats come faster and faster
    np.testing.assert_allclose(seq.tempo.bpm_at([0, D / 2, D], 8), [60, 90, 120])
    # after the end the last tempo holds
    assert seq.beat_seconds(9)[()] == pytest.approx(D + 0.5)
    # the boundary (beat 4) and its fade follow the ramp
    kf = seq.keyframes()
    b4 = kf["E"][0][0], kf["E"][1][0]
    np.testing.assert_allclose(b4, seq.beat_seconds([3.875, 4.125]))
    assert seq.beat_seconds(4)[()] == pytest.approx((-60 + np.sqrt(3600 + 4 * 60 / D * 120)) * D / 60)  # fmt: skip
    # a slowing ramp works too
    assert NoteSequence("C E", bpm="130..90").seconds == pytest.approx(120 * 8 / 220)


# ------------------------------------------------------------------------------ plans
@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


@pytest.fixture(scope="module")
def dirs_path(tmp_path_factory, adapter):
    """Random note directions (all 12 pitch classes) for the tiny random model."""
    g = torch.Generator().manual_seed(9)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 12, 1, d, generator=g)
    cd = ConceptDirections(
        "notes",
        list(PITCH_CLASSES),
        v / v.norm(dim=-1, keepdim=True),
        torch.rand(L, 12, generator=g),
        list(range(L)),
        meta={"model_id": adapter.model_id, "num_layers": L, "hidden_size": d},
    )
    return cd.save(tmp_path_factory.mktemp("dirs") / "notes")


def test_plan_from_sequence_resolves_names_as_users_write_them(dirs_path) -> None:
    plan = SteeringPlan.from_sequence("Db F Ab db", dirs_path, 0.7, layers="exp:0.95", gate=0.5)
    assert [d.target for d in plan.directions] == ["C#", "F", "G#"]  # Db and db: one direction
    d = plan.directions[0]
    assert (d.coef, d.weighting, d.kappa, d.gate) == (0.7, "exponential", 0.95, 0.5)
    assert d.schedule.kind == "keyframes" and d.schedule.unit == "seconds"
    assert d.schedule.points == ((0.0, 1.0), (1.9375, 1.0), (2.0625, 0.0), (5.9375, 0.0), (6.0625, 1.0), (7.9375, 1.0), (8.0625, 0.0))  # fmt: skip
    with pytest.raises(ConfigError, match=r"note sequence 'C H': unknown class 'H'.*valid: C, C#"):
        SteeringPlan.from_sequence("C H", dirs_path)
    with pytest.raises(ConfigError, match="sets target itself"):
        SteeringPlan.from_sequence("C", dirs_path, target="D")
    with pytest.raises(ConfigError, match="unknown direction field"):
        SteeringPlan.from_sequence("C", dirs_path, wobble=1)


def test_plan_file_round_trips_compiled_and_as_a_sequence_table(tmp_path, dirs_path) -> None:
    seq = NoteSequence("C E | G", bpm="90..130", fade_beats=0.5)
    plan = SteeringPlan.from_sequence(seq, dirs_path, 0.5, layers="top:2", seed=3)
    want = plan.to_dict()
    # the compiled form: to_dict -> TOML -> from_dict, and save/load in TOML and JSON
    back = SteeringPlan.from_dict(tomllib.loads(dumps_toml(want)))
    assert back.to_dict() == want
    for name in ("plan.toml", "plan.json"):
        loaded = SteeringPlan.load(plan.save(tmp_path / name))
        assert loaded.to_dict(relative_to=tmp_path) == plan.to_dict(relative_to=tmp_path)
    # the [sequence] form, with a relative directions path, gives the same compiled plan
    table = sequence_table(seq, os.path.relpath(dirs_path, tmp_path), 0.5, layers="top:2")
    assert not os.path.isabs(table["directions"])
    assert table["bpm"] == "90..130" and table["fade_beats"] == 0.5
    path = tmp_path / "seq.toml"
    path.write_text(dumps_toml({"seed": 3, "sequence": table}))
    assert SteeringPlan.load(path).to_dict(strict=False) == plan.to_dict(strict=False)
    # with an explicit [[direction]] too: those first, then the notes
    other = SteeringDirection(dirs_path, "A", 0.2).to_dict()
    both = SteeringPlan.from_dict({"direction": [other], "sequence": [table]}, base_dir=tmp_path)
    assert [d.target for d in both.directions] == ["A", "C", "E", "G"]
    with pytest.raises(ConfigError, match="unknown sequence field|unknown direction field"):
        SteeringPlan.from_dict({"sequence": {**table, "bmp": 120}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs directions"):
        SteeringPlan.from_dict({"sequence": {"notes": "C"}})
    with pytest.raises(ConfigError, match="needs notes"):
        SteeringPlan.from_dict({"sequence": {"directions": str(dirs_path)}})


def test_sequence_values_are_checked() -> None:
    with pytest.raises(ConfigError, match="bar 2 is empty"):
        NoteSequence("C || G")
    with pytest.raises(ConfigError, match="shorter than the shortest note"):
        NoteSequence("C E | G", fade_beats=2)
    with pytest.raises(ConfigError, match="drop beats_per_note/bars_per_note"):
        NoteSequence("C | E", beats_per_note=2)
    with pytest.raises(ConfigError, match="not both"):
        NoteSequence("C E", beats_per_note=2, bars_per_note=1)
    with pytest.raises(ConfigError, match="empty note sequence"):
        NoteSequence("  ")
    for bad in ("90-", "0", "fast", "130..0", "nan", "-120"):
        with pytest.raises(ConfigError, match=r"use a tempo such as 120, or a linear ramp"):
            NoteSequence("C", bpm=bad)
    for field in ("beats_per_note", "beats_per_bar", "fade_beats"):
        with pytest.raises(ConfigError, match=f"{field} must be a finite number > 0"):
            NoteSequence("C", **{field: 0})


# ------------------------------------------------------------------------------ CLI
SECONDS = 0.3  # 15 frames


def test_cli_generates_a_note_sequence_on_the_random_model(tmp_path, adapter, dirs_path, capsys):
    from musicrfm.cli import main
    from musicrfm.steering.generation import generate, load_sidecar

    out = tmp_path / "seq.wav"
    # 600 BPM: a beat is 0.1 s, so "C E | G" puts C at 0-0.2 s, E at 0.2-0.4 s inside the clip
    args = ["generate", "acoustic piano", "--model", "random:tiny", "--directions", str(dirs_path), "--notes", "C E | G", "--bpm", "600", "--coef", "4", "--seconds", str(SECONDS), "-o", str(out), "--save-plan", str(tmp_path / "plan.toml")]  # fmt: skip
    assert main(args) == 0
    meta = load_sidecar(out)
    dirs = meta["plan"]["direction"]
    assert [d["target"] for d in dirs] == ["C", "E", "G"]
    assert [d["schedule"]["kind"] for d in dirs] == ["keyframes"] * 3
    assert dirs[1]["schedule"]["points"] == [[0.1875, 0.0], [0.2125, 1.0], [0.3875, 1.0], [0.4125, 0.0]]  # fmt: skip
    # the same plan from the library gives the same audio; the steering changed it
    seq = NoteSequence("C E | G", bpm=600)
    plan = SteeringPlan.from_sequence(seq, dirs_path, 4.0)
    same = generate(adapter, "acoustic piano", plan=plan, seconds=SECONDS, seed=0)[0]
    assert same.meta["audio_sha256"] == meta["audio_sha256"]
    plain = generate(adapter, "acoustic piano", seconds=SECONDS, seed=0)[0]
    assert plain.meta["audio_sha256"] != meta["audio_sha256"]
    # the saved plan and the sidecar reproduce it
    out2 = tmp_path / "again.wav"
    rc = main(["generate", "acoustic piano", "--model", "random:tiny", "--plan", str(tmp_path / "plan.toml"), "--seconds", str(SECONDS), "-o", str(out2)])  # fmt: skip
    assert rc == 0 and load_sidecar(out2)["audio_sha256"] == meta["audio_sha256"]
    assert main(["generate", "--reproduce", str(out), "-o", str(tmp_path / "r.wav")]) == 0
    assert "identical" in capsys.readouterr().out
    # a [sequence] plan file generates the same clip
    table = sequence_table(seq, dirs_path, 4.0)
    (tmp_path / "seq.json").write_text(json.dumps({"sequence": table}))
    out3 = tmp_path / "table.wav"
    rc = main(["generate", "acoustic piano", "--model", "random:tiny", "--plan", str(tmp_path / "seq.json"), "--seconds", str(SECONDS), "-o", str(out3)])  # fmt: skip
    assert rc == 0 and load_sidecar(out3)["audio_sha256"] == meta["audio_sha256"]


def test_cli_note_sequence_flags_parse_into_the_plan(dirs_path) -> None:
    import argparse

    from musicrfm.commands.generate import build_plan, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    base = ["generate", "x", "--directions", str(dirs_path), "--notes", "C E G"]
    plan = build_plan(parser.parse_args(base))  # 120 BPM, a bar each
    assert plan.directions[1].schedule.points == ((1.9375, 0.0), (2.0625, 1.0), (3.9375, 1.0), (4.0625, 0.0))  # fmt: skip
    ns = parser.parse_args([*base, "--bpm", "60", "--beats-per-note", "2", "--fade-beats", "0.5", "--layers", "exp:0.95", "--gate-seed", "4"])  # fmt: skip
    plan = build_plan(ns)
    assert plan.seed == 4 and plan.directions[0].weighting == "exponential"
    assert plan.directions[0].schedule.points == ((0.0, 1.0), (1.75, 1.0), (2.25, 0.0))
    ns = parser.parse_args([*base, "--bars-per-note", "2", "--beats-per-bar", "3"])
    assert build_plan(ns).directions[0].schedule.points == ((0.0, 1.0), (2.9375, 1.0), (3.0625, 0.0))  # fmt: skip
    ns = parser.parse_args([*base, "--bpm", "90..130"])
    expect = NoteSequence("C E G", bpm="90..130").schedules()
    assert [d.schedule for d in build_plan(ns).directions] == list(expect.values())


def test_cli_note_sequence_errors_are_one_line(tmp_path, dirs_path, capsys) -> None:
    from musicrfm.cli import main

    base = ["generate", "x", "--model", "random:tiny", "-o", str(tmp_path / "x.wav")]
    notes = [*base, "--directions", str(dirs_path), "--notes"]
    cases = [
        ([*notes, "C H"], "unknown class 'H' for concept 'notes'; valid: C, C#, D"),
        (
            [*notes, "C E", "--bpm", "90-"],
            "cannot read --bpm '90-'; use a tempo such as 120, or a linear ramp such as 90..130",
        ),  # fmt: skip
        ([*notes, "C E", "--bpm", "fast"], "cannot read --bpm 'fast'"),
        ([*base, "--notes", "C E"], "--notes needs --directions"),
        ([*notes, "C E", "--target", "D"], "--notes sets the targets itself"),
        ([*notes, "C E", "--plan", "p.toml"], "use either --notes or --plan"),
        ([*base, "--notes", "C E", "--plan", "p.toml"], "use either --notes or --plan"),
        ([*notes, "C E", "--schedule", "linear-rise"], "drop --schedule"),
        ([*base, "--bpm", "120"], "--bpm set the beat grid of --notes and need it"),
        ([*notes, "C | E", "--beats-per-note", "2"], "drop beats_per_note/bars_per_note"),
        ([*notes, "C E", "--fade-beats", "4"], "shorter than the shortest note"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "x.wav").exists()
