"""Steering some codebooks only (`SteeringPlan.codebooks`): the listed codebooks are predicted by
the steered model, the others by an unsteered copy of each decoder call in the same batch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.steering.compile import compile_plan
from musicrfm.steering.generation import generate, load_sidecar, reproduce
from musicrfm.steering.plan import SteeringPlan

SECONDS = 0.2


def _codes(adapter, plan, **kw) -> torch.Tensor:
    """(steps, rows, K) decoder input codes of one greedy generation: what was sampled."""
    seen: list[torch.Tensor] = []
    hook = adapter.decoder_lm.register_forward_pre_hook(
        lambda m, a, k: seen.append(k["input_ids"][:, -1].clone()), with_kwargs=True
    )
    try:
        clips = generate(adapter, ["lofi piano", "violin"], plan=plan, seconds=SECONDS, seed=3,
                         temperature=0, batch=2, **kw)  # fmt: skip
    finally:
        hook.remove()
    assert len(clips) == 2
    return torch.stack(seen).reshape(len(seen), -1, adapter.num_codebooks)


@pytest.fixture(scope="module")
def strong(dirs):
    return dict(directions=dirs, target="C", coef=40.0)


@pytest.mark.parametrize("guidance", [3.0, 1.0])
def test_every_codebook_listed_is_plain_steering_and_none_steered_is_unsteered(
    adapter, strong, guidance
):
    plain = generate(adapter, "lofi piano", plan=SteeringPlan.single(**strong), seconds=SECONDS,
                     seed=2, guidance_scale=guidance)[0]  # fmt: skip
    every = SteeringPlan.single(**strong)
    every.codebooks = list(range(adapter.num_codebooks))
    listed = generate(adapter, "lofi piano", plan=every, seconds=SECONDS, seed=2,
                      guidance_scale=guidance)[0]  # fmt: skip
    np.testing.assert_array_equal(plain.audio, listed.audio)
    # a plan at coefficient 0 steers nothing: the copy and the steered rows are the same rows
    zero = SteeringPlan.single(**{**strong, "coef": 0.0}, codebooks=[0])
    unsteered = generate(adapter, "lofi piano", seconds=SECONDS, seed=2, guidance_scale=guidance)
    split = generate(adapter, "lofi piano", plan=zero, seconds=SECONDS, seed=2,
                     guidance_scale=guidance)  # fmt: skip
    np.testing.assert_array_equal(unsteered[0].audio, split[0].audio)


def test_the_first_code_comes_from_the_steered_model_only_where_its_codebook_is_listed(
    adapter, strong
):
    """At the first step every row has the same context (BOS), and only codebook 0 is sampled
    (delay pattern): greedy, it is the steered model's argmax when codebook 0 is listed and the
    unsteered model's when it is not."""
    unsteered = _codes(adapter, None)
    steered = _codes(adapter, SteeringPlan.single(**strong))
    first = 2  # transformers runs the prefill twice: the third call reads the first codes
    assert not torch.equal(steered[first, :, 0], unsteered[first, :, 0]), "steer harder"
    with_0 = _codes(adapter, SteeringPlan.single(**strong, codebooks=[0]))
    without_0 = _codes(adapter, SteeringPlan.single(**strong, codebooks=[1, 2]))
    assert torch.equal(with_0[first, :, 0], steered[first, :, 0])
    assert torch.equal(without_0[first, :, 0], unsteered[first, :, 0])
    assert with_0.shape == steered.shape  # generate saw the batch it sent, not the copy


def test_a_split_clip_is_reproduced_from_its_sidecar(adapter, dirs, tmp_path):
    plan = SteeringPlan.single(dirs.save(tmp_path / "notes"), "C", 40.0, codebooks=[1, 2])
    clip = generate(adapter, "lofi piano", plan=plan, seconds=SECONDS, seed=4)[0]
    path = clip.save(tmp_path / "clip.wav")
    assert load_sidecar(path)["plan"]["codebooks"] == [1, 2]
    plain = generate(adapter, "lofi piano", plan=SteeringPlan.single(dirs, "C", 40.0),
                     seconds=SECONDS, seed=4)[0]  # fmt: skip
    assert not np.array_equal(plain.audio, clip.audio)
    np.testing.assert_array_equal(reproduce(path, adapter).audio, clip.audio)


def test_codebooks_are_checked_and_travel_in_plan_files(adapter, dirs, tmp_path):
    source = dirs.save(tmp_path / "notes")
    plan = SteeringPlan.single(source, "D", 1.0, codebooks=[1, 0])
    assert plan.codebooks == [0, 1]
    path = plan.save(tmp_path / "plan.toml")
    assert "codebooks = [0, 1]" in path.read_text()
    assert SteeringPlan.load(path).codebooks == [0, 1]
    assert compile_plan(plan, adapter).codebooks == (0, 1)
    every = SteeringPlan.single(dirs, "D", 1.0, codebooks=list(range(adapter.num_codebooks)))
    assert compile_plan(every, adapter).codebooks == ()  # all of them: one pass
    with pytest.raises(ConfigError, match="has 4 codebooks"):
        compile_plan(SteeringPlan.single(dirs, "D", 1.0, codebooks=[4]), adapter)
    for bad in ([], [0, 0], [-1], "01"):
        with pytest.raises(ConfigError, match="codebook"):
            SteeringPlan.single(dirs, "D", 1.0, codebooks=bad)


def test_cli_codebooks_needs_a_plan(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "generate", "piano", "--model", "random:tiny",
         "--codebooks", "0", "-o", str(tmp_path / "x.wav")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0 and "--codebooks needs a plan" in proc.stderr
    assert "Traceback" not in proc.stderr
