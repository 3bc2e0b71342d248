"""The ``[progression]`` table as the studio writes it: ``beat = true`` (and its one-line errors),
``seconds`` setting the pulses' length over a chord grid, ``coef`` by role, and
`progression_table` writing a table that reads back into the same plan."""

from __future__ import annotations

import pytest
import tomllib
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.plan import SteeringPlan, compile_progression
from musicrfm.steering.progressions import (
    BeatPulse,
    Progression,
    make_progression,
    progression_table,
    split_progression_table,
)
from musicrfm.steering.toml_writer import dumps_toml
from musicrfm.theory import PITCH_CLASSES


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """Chord-quality, chord-root and onset direction files for the tiny random model."""
    from musicrfm.models import random_model

    adapter = random_model("tiny", seed=0)
    L, d = adapter.num_layers, adapter.hidden_size
    root = tmp_path_factory.mktemp("table_dirs")
    out = {}
    for seed, (role, concept, classes, label) in enumerate([
        ("quality", "chords", ["augmented", "diminished", "major", "minor"], "label"),
        ("root", "chord-roots", list(PITCH_CLASSES), "root"),
        ("beat", "onsets", ["none", "onset"], "label"),
    ]):  # fmt: skip
        g = torch.Generator().manual_seed(seed)
        v = torch.randn(L, len(classes), 1, d, generator=g)
        meta = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d,
                "label_column": label, "activation_norm": 20.0}  # fmt: skip
        cd = ConceptDirections(concept, classes, v / v.norm(dim=-1, keepdim=True),
                               torch.rand(L, len(classes), generator=g), list(range(L)), meta=meta)  # fmt: skip
        out[role] = str(cd.save(root / concept))
    return out


def _load(table: dict) -> SteeringPlan:
    return SteeringPlan.from_dict(tomllib.loads(dumps_toml({"progression": table})))


def test_beat_true_pulses_the_onset_directions_and_says_when_they_are_missing(paths) -> None:
    table = {"chords": "C G", "bpm": 100, "parts": ["quality"], "beat": True, "coef": 0.4,
             "directions": [paths["quality"], paths["beat"]]}  # fmt: skip
    plan = _load(table)
    assert [d.target for d in plan.directions] == ["major", "onset"]
    # the same as leaving beat out (on when onset directions are given): the CLI's plan
    assert _load({k: v for k, v in table.items() if k != "beat"}).to_dict() == plan.to_dict()
    no_onsets = {**table, "directions": [paths["quality"]]}
    with pytest.raises(ConfigError) as info:
        _load(no_onsets)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("[progression] beat = true (beat pulses at 100 BPM)")
    assert "needs onset directions" in msg and "--concept beats" in msg
    with pytest.raises(ConfigError, match="beat must be true or false"):
        _load({**table, "beat": "yes"})
    with pytest.raises(ConfigError, match=r"onset directions .* is not used .*leave it out"):
        _load({**table, "beat": False})
    with pytest.raises(ConfigError, match="beat pulses needs bpm"):
        _load({"beat": True, "seconds": 2.0, "directions": [paths["beat"]]})


def test_seconds_sets_the_pulses_length_over_a_chord_grid(paths) -> None:
    grid = make_progression(chords="C G", bpm=120, parts="quality", steer_beat=True)
    assert grid.beat.seconds == pytest.approx(4.0)  # two bars at 120: the CLI's --chords grid
    longer = make_progression(chords="C G", bpm=120, parts="quality", steer_beat=True,
                              span_seconds=6.0)  # fmt: skip
    assert longer.beat == BeatPulse(120, 6.0) and longer.chords == grid.chords
    table = {"chords": "C G", "bpm": 120, "parts": "quality", "seconds": 6.0,
             "directions": [paths["quality"], paths["beat"]], "coef": 0.3}  # fmt: skip
    prog, _, _ = split_progression_table(table)
    assert prog.beat == BeatPulse(120, 6.0)
    peaks = [t for t, v in _load(table).directions[-1].schedule.points if v == 1.0]
    on_grid = {k: v for k, v in table.items() if k != "seconds"}
    grid_peaks = [t for t, v in _load(on_grid).directions[-1].schedule.points if v == 1.0]
    # pulses half a beat early to the end of the 6 s (the one after it included), not the 4 s grid
    assert peaks[-1] == pytest.approx(6.25) and grid_peaks[-1] == pytest.approx(4.25)
    with pytest.raises(ConfigError, match="seconds"):
        _load({**table, "seconds": -1})


def test_coef_by_role_gives_each_part_its_own_strength(paths) -> None:
    table = {"chords": "C Am", "bpm": 100, "coef": {"root": 0.5, "quality": 0.7, "beat": 2.0},
             "directions": [paths["root"], paths["quality"], paths["beat"]]}  # fmt: skip
    plan = _load(table)
    got = [(d.target, d.coef) for d in plan.directions]
    assert got == [("C", 0.5), ("A", 0.5), ("major", 0.7), ("minor", 0.7), ("onset", 2.0)]
    rel = _load({**table, "coef": {"root": "0.1x", "quality": 0.7, "beat": 2.0}})
    assert rel.directions[0].relative == pytest.approx(0.1) and rel.directions[0].coef == 2.0
    for coef, match in (
        ({"root": 0.5, "quality": 0.7}, r"gives no η0 for the beat part \(onset directions"),
        ({"root": 0.5, "quality": 0.7, "beat": 1, "tempo": 1}, "names tempo, which .* does not"),
        ({"root": 0.5, "quality": 0.7, "beat": 1, "drums": 1}, "takes the roles .* got drums"),
        ({}, "got an empty table"),
    ):
        with pytest.raises(ConfigError, match=match):
            _load({**table, "coef": coef})


@pytest.mark.parametrize(
    "kw",
    [
        dict(chords="C Am F G", bpm="90..130", bars_per_chord=0.5, parts="quality",
             steer_beat=True, span_seconds=3.0),
        dict(chords="C G | Am F", bpm=100),
        dict(chords="C G", bpm=100, steer_beat=True),  # pulses on the grid: no seconds written
        dict(bpm=150, steer_beat=True, seconds=2.5),
    ],
)  # fmt: skip
def test_the_written_table_reads_back_into_the_same_plan(paths, kw) -> None:
    prog = make_progression(**kw)
    sources = [paths[r] for r in ("root", "quality", "beat") if _uses(prog, r)]
    coef = {r: 0.25 * (i + 1) for i, r in enumerate(("root", "quality", "beat")) if _uses(prog, r)}
    table = progression_table(prog, sources, coef, layers="top:2", gate=0.5)
    assert ("seconds" in table) == ("span_seconds" in kw or "seconds" in kw)
    want = compile_progression(prog, sources, coef, layers="top:2", gate=0.5)
    assert _load(table).to_dict() == want.to_dict()
    one = progression_table(prog, sources, 0.3)
    assert _load(one).to_dict() == compile_progression(prog, sources, 0.3).to_dict()


def test_a_table_cannot_hold_pulses_with_another_lead(paths) -> None:
    prog = Progression(beat=BeatPulse(120, 2.0, lead=0.0))
    with pytest.raises(ConfigError, match="default lead"):
        progression_table(prog, [paths["beat"]], 0.3)


def _uses(prog: Progression, role: str) -> bool:
    if role == "beat":
        return prog.beat is not None
    return prog.chords is not None and role in prog.parts
