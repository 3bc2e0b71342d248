"""Plan files: every field of the wrong type is one ConfigError, and times are read as the CLI
reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicrfm.errors import ConfigError
from musicrfm.steering.plan import SteeringDirection, SteeringPlan, parse_layers


def _table(**fields) -> dict:
    return {"format_version": 1, "direction": [{"directions": "d", "target": "D", **fields}]}


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (_table(component="first"), "component must be an eigenvector index"),
        (_table(component=[[0]]), "component must be"),
        (_table(component={"a": 1}), "component must be"),
        (_table(layers=[1, "x"]), "a layer must be an integer"),
        (_table(layers={"a": 1}), "a layer must be an integer"),
        (_table(top_k="a"), "top_k must be an integer"),
        (_table(top_k=True), "top_k must be an integer"),
        (_table(weighting=3), "weighting must be a name"),
        (_table(rows=["both"]), "rows must be a name"),
        (_table(target=[1]), "target must be a class name"),
        (_table(schedule={"kind": "keyframes", "points": [[1]]}), r"keyframe point \[1\]"),
        (_table(schedule={"kind": "keyframes", "points": "0=1"}), "keyframe points must be"),
        (_table(schedule={"kind": "keyframes", "points": [["x", 1]]}), "cannot read time 'x'"),
        (_table(schedule={"kind": "exp-decay", "rate": "fast"}), "schedule rate must be a number"),
        ({**_table(), "seed": "abc"}, "plan's seed must be an integer"),
        ({**_table(), "format_version": "one"}, "format_version must be an integer"),
        ({"direction": 5}, r"\[\[direction\]\] must be tables"),
        ({"direction": [5]}, r"\[\[direction\]\] must be tables"),
        ({"sequence": [1]}, r"\[\[sequence\]\] must be tables"),
        ({"direction": [{"directions": 5}]}, "directions must be a path"),
    ],
)
def test_a_field_of_the_wrong_type_is_one_config_error(plan: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        SteeringPlan.from_dict(plan)


def test_keyframe_times_are_read_as_the_cli_reads_them(tmp_path: Path) -> None:
    """`--schedule keyframes:0=0,0.5s=1` and a plan's points = [["0s", 0], ["0.5s", 1]] agree."""
    path = tmp_path / "plan.toml"
    path.write_text(
        '[[direction]]\ndirections = "d"\ntarget = "D"\n[direction.schedule]\n'
        'kind = "keyframes"\npoints = [["0s", 0], ["0.5s", 1], ["2s", 0.5]]\n'
    )
    s = SteeringPlan.load(path).directions[0].schedule
    assert s.unit == "seconds" and s.points == ((0.0, 0.0), (0.5, 1.0), (2.0, 0.5))
    steps = {"kind": "keyframes", "points": [["0", 0], [25, 1]]}
    assert SteeringDirection("d", "D", schedule=steps).schedule.unit == "steps"
    mixed = {"kind": "keyframes", "points": [["10", 0], ["1s", 1]]}
    with pytest.raises(ConfigError, match="mix steps and seconds"):
        SteeringDirection("d", "D", schedule=mixed)


def test_a_layer_range_counting_down_is_refused_not_empty() -> None:
    with pytest.raises(ConfigError, match="'5-2' is empty \\(it counts down\\); write 2-5"):
        parse_layers("5-2")
    with pytest.raises(ConfigError, match="counts down"):
        SteeringDirection("d", "D", layers="top:2+5-2")
    assert parse_layers("2-5") == {"layers": [2, 3, 4, 5]}


def test_an_empty_plan_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("# nothing here\nseed = 1\n")
    with pytest.raises(ConfigError, match="it would steer nothing"):
        SteeringPlan.load(path)
    assert SteeringPlan.from_dict({"seed": 1}).directions == []  # in memory: an empty plan is fine


def test_valid_values_keep_their_meaning() -> None:
    d = SteeringDirection("d", "D", component="1", top_k=2.0, layers=[0, "2"])
    assert d.component == 1 and d.top_k == 2 and d.layers == [0, 2]
    assert SteeringDirection("d", "D", component=[[0, 1], [1, 0.5]]).component == {0: 1.0, 1: 0.5}
    assert SteeringPlan(seed=3.0).seed == 3


def _normed_dirs(tmp_path: Path, norm: float | None):
    import torch

    from musicrfm.probes.directions import ConceptDirections

    v = torch.nn.functional.normalize(torch.randn(2, 2, 1, 4), dim=-1)
    meta = {} if norm is None else {"activation_norm": norm}
    cd = ConceptDirections("notes", ["C", "D"], v, torch.rand(2, 2), [0, 1], meta=meta)
    return cd.save(tmp_path / ("notes" if norm else "old"))


def test_a_relative_coef_is_a_multiple_of_the_training_norm(tmp_path: Path) -> None:
    path = _normed_dirs(tmp_path, 12.5)
    d = SteeringDirection(path, "D", coef="0.1x")
    assert d.coef == pytest.approx(1.25) and d.relative == pytest.approx(0.1)
    assert SteeringDirection(path, "D", coef="-0.2×").coef == pytest.approx(-2.5)
    assert d.to_dict()["coef"] == "0.1x" and "eta0" not in d.to_dict()
    side = d.to_dict(strict=False)
    assert side["coef"] == "0.1x" and side["eta0"] == pytest.approx(1.25)
    back = SteeringDirection.from_dict(side)
    assert back.coef == d.coef and back.relative == d.relative
    plan = SteeringPlan.from_dict({"direction": [{"directions": str(path), "coef": "0.05x"}]})
    assert plan.directions[0].coef == pytest.approx(0.625)
    assert SteeringDirection(path, "D", coef="0.5").coef == 0.5  # a number as text: absolute


def test_a_relative_coef_needs_recorded_norms_and_a_readable_form(tmp_path: Path) -> None:
    old = _normed_dirs(tmp_path, None)
    with pytest.raises(ConfigError, match="do not record it.*train them again"):
        SteeringDirection(old, "D", coef="0.1x")
    with pytest.raises(ConfigError, match="relative like '0.1x'"):
        SteeringDirection(old, "D", coef="strong")
