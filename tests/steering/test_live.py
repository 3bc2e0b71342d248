"""Live values: a coefficient changed mid-generation acts from the next step, exactly as a plan
with that coefficient; replays are exact; stop, the token tap and no-control sameness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.steering.generation import generate
from musicrfm.steering.hooks import apply_plan
from musicrfm.steering.live import GenerationStopped, LiveControl, LiveEvent, live_control
from musicrfm.steering.plan import SteeringPlan

STEPS = 12


def outputs(adapter, plan, *, live=None, layer=1, seed=0):
    """Block ``layer``'s steered output at every step of a greedy generation."""
    seen: list[torch.Tensor] = []
    tok = adapter.tokenize(["lofi piano"])
    with apply_plan(adapter, plan, seed=seed, total_steps=STEPS, cfg=True, live=live):
        h = adapter.decoder_layers[layer].register_forward_hook(
            lambda m, a, o: seen.append(o.detach().clone())
        )
        try:
            torch.manual_seed(seed)
            adapter.model.generate(**tok, max_new_tokens=STEPS, do_sample=False, guidance_scale=3.0)
        finally:
            h.remove()
    return seen


def test_a_change_acts_from_the_next_step_as_a_plan_with_that_coefficient(adapter, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 0.0, layers=[1, 2])
    live = LiveControl(on_step=lambda step: live.set_coef(0, 2.5) if step == 5 else None)
    got = outputs(adapter, plan, live=live)
    assert live.events == [LiveEvent(6, 0, 2.5)]  # set during step 5, read at step 6
    before = outputs(adapter, plan)
    # calls 0 and 1 are both step 0 (transformers runs the first step twice)
    assert all(torch.equal(g, b) for g, b in zip(got[:7], before[:7]))
    assert not torch.equal(got[7], before[7])
    replay = outputs(adapter, plan, live=LiveControl.replay(live.events))
    assert all(torch.equal(g, r) for g, r in zip(got, replay))


def test_a_live_control_without_changes_is_sample_identical(adapter, dirs) -> None:
    plan = SteeringPlan(
        [
            SteeringPlan.single(dirs, "C", 0.7).directions[0],
            SteeringPlan.single(dirs, "E", 0.0, layers=[3]).directions[0],  # a knob at 0
        ]
    )
    kw = dict(seed=3, seconds=0.2, temperature=1.0, top_k=20)
    plain = generate(adapter, "jazz", plan=plan, **kw)[0].audio
    with live_control(LiveControl()):
        live = generate(adapter, "jazz", plan=plan, **kw)[0].audio
    assert np.array_equal(plain, live)
    unsteered = generate(adapter, "jazz", **kw)[0].audio
    with live_control(LiveControl()):
        assert np.array_equal(unsteered, generate(adapter, "jazz", **kw)[0].audio)


def test_the_change_is_exactly_the_new_coefficient(adapter, dirs) -> None:
    """The addition after a change equals CompiledPlan.addition with the new coefficient."""
    from musicrfm.steering.compile import compile_plan

    plan = SteeringPlan.single(dirs, "E", 0.4, layers=[2])
    live = LiveControl(on_step=lambda step: live.set_coef(0, -1.5) if step == 3 else None)
    tok = adapter.tokenize(["x"])
    pre, post = [], []
    h1 = adapter.decoder_layers[2].register_forward_hook(lambda m, a, o: pre.append(o.clone()))
    with apply_plan(adapter, plan, total_steps=STEPS, cfg=False, live=live) as session:
        h2 = adapter.decoder_layers[2].register_forward_hook(lambda m, a, o: post.append(o.clone()))
        adapter.model.generate(**tok, max_new_tokens=8, do_sample=False, guidance_scale=1.0)
    h1.remove()
    h2.remove()
    new = compile_plan(SteeringPlan.single(dirs, "E", -1.5, layers=[2]), adapter, total_steps=STEPS)
    for call, step in enumerate(session.steps):
        if step >= 4:
            want = new.addition(step, 2).float()
            torch.testing.assert_close(post[call] - pre[call], want.expand_as(pre[call]))


def test_stop_ends_generation_and_removes_the_hooks(adapter, dirs) -> None:
    plan = SteeringPlan.single(dirs, "C", 0.5)
    live = LiveControl(on_step=lambda step: live.stop() if step == 4 else None)
    with live_control(live), pytest.raises(GenerationStopped) as info:
        generate(adapter, "x", plan=plan, seconds=0.3)
    assert info.value.step == 5
    assert all(not layer._forward_hooks for layer in adapter.decoder_layers)
    assert not adapter.decoder_layers[0]._forward_pre_hooks


def test_the_token_tap_sees_every_position(adapter) -> None:
    seen: dict[int, np.ndarray] = {}

    def tap(position: int, ids: np.ndarray) -> None:
        for j in range(ids.shape[1]):
            seen[position + j] = ids[:, j]

    with live_control(LiveControl(on_tokens=tap)):
        generate(adapter, "x", seconds=0.2, temperature=0)
    assert sorted(seen) == list(range(len(seen)))
    assert (seen[0] == adapter.bos_token_id).all()


def test_bad_live_values_are_refused(adapter, dirs) -> None:
    live = LiveControl()
    with pytest.raises(ConfigError, match="finite"):
        live.set_coef(0, float("nan"))
    live.set_coef(5, 1.0)  # no such direction: said at the next step
    with live_control(live), pytest.raises(ConfigError, match="steers directions"):
        generate(adapter, "x", plan=SteeringPlan.single(dirs, "C", 0.5), seconds=0.2)
