"""Causal controls: same norm, layers, scores, weights and schedule as the concept direction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.controls import CONTROL_KINDS, control_directions
from musicrfm.probes.directions import ConceptDirections
from musicrfm.theory import PITCH_CLASSES

CLASSES = list(PITCH_CLASSES)


def make_directions(n_layers: int = 4, k: int = 2, d: int = 64, seed: int = 0) -> ConceptDirections:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n_layers, len(CLASSES), k, d, generator=g)
    v = (
        v
        / v.norm(dim=-1, keepdim=True)
        * torch.rand(n_layers, len(CLASSES), k, 1, generator=g).add(0.5)
    )
    return ConceptDirections(
        concept="notes",
        classes=CLASSES,
        vectors=v,
        scores=torch.rand(n_layers, len(CLASSES), generator=g),
        layers=list(range(n_layers)),
        eigenvalues=torch.rand(n_layers, len(CLASSES), k, generator=g),
        meta={"num_layers": n_layers, "hidden_size": d},
    )


@pytest.mark.parametrize("kind", CONTROL_KINDS)
def test_same_norm_layers_scores_and_other_classes(kind: str) -> None:
    cd = make_directions()
    ctl = control_directions(cd, kind, target="D", seed=3)
    t = cd.class_index("D")
    assert ctl.layers == cd.layers and ctl.classes == cd.classes
    assert torch.equal(ctl.scores, cd.scores) and torch.equal(ctl.eigenvalues, cd.eigenvalues)
    assert ctl.vectors.shape == cd.vectors.shape
    torch.testing.assert_close(ctl.vectors[:, t].norm(dim=-1), cd.vectors[:, t].norm(dim=-1))
    others = [i for i in range(len(CLASSES)) if i != t]
    assert torch.equal(ctl.vectors[:, others], cd.vectors[:, others])
    assert not torch.allclose(ctl.vectors[:, t], cd.vectors[:, t])
    assert ctl.meta["control"]["kind"] == kind and ctl.meta["control"]["target"] == "D"
    assert "control" not in cd.meta  # the input is not modified


def test_flip_orthogonal_random_other_class_geometry() -> None:
    cd = make_directions()
    t = cd.class_index("E")
    q = cd.vectors[:, t] / cd.vectors[:, t].norm(dim=-1, keepdim=True)
    flip = control_directions(cd, "flip", target="E")
    torch.testing.assert_close(flip.vectors[:, t], -cd.vectors[:, t])
    orth = control_directions(cd, "orthogonal", target="E", seed=1)
    # orthogonal to every component of the concept direction at each layer
    dots = torch.einsum("lkd,ljd->lkj", orth.vectors[:, t].double(), q.double())
    assert dots.abs().max() < 1e-5
    rnd = control_directions(cd, "random", target="E", seed=1)
    rq = rnd.vectors[:, t] / rnd.vectors[:, t].norm(dim=-1, keepdim=True)
    cos = (rq * q).sum(-1).abs()
    assert cos.max() < 0.6  # random in 64 dimensions: far from the concept direction
    other = control_directions(cd, "other_class", target="E", other="G")
    g = cd.class_index("G")
    unit_g = cd.vectors[:, g] / cd.vectors[:, g].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(
        other.vectors[:, t], unit_g * cd.vectors[:, t].norm(dim=-1, keepdim=True)
    )
    assert other.meta["control"]["other"] == "G"


def test_seeded() -> None:
    cd = make_directions()
    for kind in ("random", "orthogonal", "other_class"):
        a = control_directions(cd, kind, target="A", seed=5)
        b = control_directions(cd, kind, target="A", seed=5)
        assert torch.equal(a.vectors, b.vectors)
    a = control_directions(cd, "random", target="A", seed=5)
    c = control_directions(cd, "random", target="A", seed=6)
    assert not torch.equal(a.vectors, c.vectors)
    picks = {
        control_directions(cd, "other_class", target="A", seed=s).meta["control"]["other"]
        for s in range(12)
    }
    assert "A" not in picks and len(picks) > 1


def test_bad_input() -> None:
    cd = make_directions()
    with pytest.raises(ConfigError, match="unknown control kind"):
        control_directions(cd, "shuffle", target="C")
    with pytest.raises(ConfigError, match="unknown class"):
        control_directions(cd, "flip", target="H")
    with pytest.raises(ConfigError, match="target itself"):
        control_directions(cd, "other_class", target="C", other="C")
    single = cd.select_classes(["C"])
    with pytest.raises(ConfigError, match="second class"):
        control_directions(single, "other_class", target="C")


def test_equal_layer_weights_and_schedule_in_compiled_plans() -> None:
    from musicrfm.models import random_model
    from musicrfm.steering.compile import compile_plan
    from musicrfm.steering.plan import SteeringPlan
    from musicrfm.steering.schedules import parse_schedule

    model = random_model("tiny")
    cd = make_directions(n_layers=model.num_layers, d=model.hidden_size)
    opts = dict(
        weighting="exponential", kappa=0.9, top_k=3, gate=0.3, schedule=parse_schedule("sine")
    )
    ref = compile_plan(SteeringPlan.single(cd, "D", 0.4, **opts), model, seed=1, total_steps=60)
    for kind in CONTROL_KINDS:
        ctl = control_directions(cd, kind, target="D", seed=2)
        comp = compile_plan(
            SteeringPlan.single(ctl, "D", 0.4, **opts), model, seed=1, total_steps=60
        )
        np.testing.assert_array_equal(comp.weights, ref.weights)
        np.testing.assert_array_equal(comp.coefs, ref.coefs)
        np.testing.assert_array_equal(comp.gate_p, ref.gate_p)
        np.testing.assert_array_equal(comp.schedules[0].values(60), ref.schedules[0].values(60))
        assert comp.steered_layers == ref.steered_layers
        # what is added differs only in direction: unit vectors on the same layers
        torch.testing.assert_close(comp.unit.norm(dim=-1), ref.unit.norm(dim=-1))
        assert not torch.allclose(comp.unit, ref.unit)
