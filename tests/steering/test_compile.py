"""Compiling a plan against a model: a plan that would steer nothing is refused before any step."""

from __future__ import annotations

import logging

import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.compile import compile_plan
from musicrfm.steering.plan import SteeringDirection, SteeringPlan
from musicrfm.steering.schedules import Schedule, parse_schedule


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


@pytest.fixture(scope="module")
def dirs(adapter) -> ConceptDirections:
    g = torch.Generator().manual_seed(0)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 2, 1, d, generator=g)
    meta = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d}
    return ConceptDirections("notes", ["C", "D"], v / v.norm(dim=-1, keepdim=True),
                             torch.rand(L, 2, generator=g), list(range(L)), meta=meta)  # fmt: skip


def test_a_window_after_the_clip_is_refused(adapter, dirs) -> None:
    late = SteeringPlan.single(dirs, "D", 1.0, schedule=parse_schedule("linear-rise:start=100s"))
    with pytest.raises(ConfigError, match=r"nothing would be steered.*\(28 steps = 0.56 s\)"):
        compile_plan(late, adapter, total_steps=28)
    # the same plan on a clip long enough to reach the window compiles
    assert compile_plan(late, adapter, total_steps=5100).steered_layers == [0, 1, 2, 3]
    # without a clip length (the hooks' own use) nothing is judged
    compile_plan(late, adapter)


def test_one_silent_direction_among_others_is_a_warning(adapter, dirs, caplog) -> None:
    """A note sequence cut by the clip's end leaves its last note silent: that is allowed."""
    plan = SteeringPlan(
        [
            SteeringDirection(dirs, "C", 1.0),
            SteeringDirection(dirs, "D", 1.0, schedule=Schedule("constant", start=50)),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="musicrfm.steering.compile"):
        compile_plan(plan, adapter, total_steps=20)
    assert "notes:D (schedule kind=constant, start=50) is 0 over the whole clip" in caplog.text


def test_a_zero_coefficient_stays_the_unsteered_identity(adapter, dirs) -> None:
    late = SteeringPlan.single(dirs, "D", 0.0, schedule=Schedule("constant", start=50))
    assert compile_plan(late, adapter, total_steps=20).steered_layers == []
