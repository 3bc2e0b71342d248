"""The stochastic gate per clip: each clip of a batch (and its guidance twin) gets the gate mask
it gets alone, seeded with its own seed; ungated plans keep one table; sidecars reproduce."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import musicrfm.steering.generation as gen
from musicrfm.errors import ConfigError
from musicrfm.steering.compile import CompiledPlan, compile_plan
from musicrfm.steering.generation import (
    GenerationOptions,
    generate,
    load_sidecar,
    reproduce,
    steps_for,
    write_results,
)
from musicrfm.steering.hooks import SteeringSession, apply_plan
from musicrfm.steering.live import LiveControl, live_control
from musicrfm.steering.plan import ROW_GAINS, SteeringPlan

SEEDS = [11, 22, 33]
STEPS = 12
SECONDS = 0.2  # 10 frames + 3 delay steps
LAYER = 1


@pytest.fixture(scope="module")
def dirs_path(tmp_path_factory, dirs):
    return dirs.save(tmp_path_factory.mktemp("dirs") / "notes")


def steer(
    adapter, compiled: CompiledPlan, clips: int, *, cfg: bool = True, seed: int = 0
) -> tuple[SteeringSession, list[torch.Tensor], torch.Tensor]:
    """Generate ``clips`` clips with ``compiled``; the session, block LAYER's steered-minus-raw
    output at every forward call, and the output."""
    pre: list[torch.Tensor] = []
    post: list[torch.Tensor] = []
    block = adapter.decoder_layers[LAYER]
    hooks = [block.register_forward_hook(lambda m, a, o: pre.append(o.detach().clone()))]
    try:
        with apply_plan(adapter, compiled, total_steps=STEPS, cfg=cfg) as session:
            hooks.append(block.register_forward_hook(lambda m, a, o: post.append(o.detach().clone())))  # fmt: skip
            torch.manual_seed(seed)
            out = adapter.model.generate(
                **adapter.tokenize(["lofi piano"] * clips),
                max_new_tokens=STEPS,
                do_sample=True,
                guidance_scale=3.0 if cfg else 1.0,
            )
    finally:
        for h in hooks:
            h.remove()
    return session, [b - a for a, b in zip(pre, post)], out


def gated(dirs, rows: str = "both", gate: float = 0.5, coef: float = 3.0) -> SteeringPlan:
    return SteeringPlan.single(dirs, "D", coef, gate=gate, rows=rows, layers=[LAYER, 2])


# ------------------------------------------------------------------------ the hooks
# "contrast" acts through guidance rows only (refused without them)
@pytest.mark.parametrize(
    ("rows", "cfg"),
    [("both", True), ("conditional", True), ("contrast", True), ("both", False)],
)
def test_each_clip_of_a_batch_gets_the_mask_it_gets_alone(adapter, dirs, rows, cfg) -> None:
    c = compile_plan(gated(dirs, rows), adapter, total_steps=STEPS)
    twins = 2 if cfg else 1
    batch, _, _ = steer(adapter, c.with_seeds(SEEDS), len(SEEDS), cfg=cfg)
    got = batch.row_factors(twins * len(SEEDS))  # (steps, rows, 1)
    for i, s in enumerate(SEEDS):
        alone, _, _ = steer(adapter, c.with_seed(s), 1, cfg=cfg)
        want = alone.row_factors(twins)
        assert np.array_equal(got[:, i], want[:, 0]), f"clip {i} (seed {s})"
        if cfg:  # its unconditional twin, row i + B
            assert np.array_equal(got[:, i + len(SEEDS)], want[:, 1])
        # the mask is the one its own seed draws, with the row's gain
        own = c.factors(len(got), seed=s)[:, 0] * ROW_GAINS[rows][0]
        assert np.array_equal(got[:, i, 0], own)
    if rows == "both":  # the clips' masks differ (what a shared mask would not do)
        assert not np.array_equal(got[:, 0], got[:, 1])


def test_the_hooks_add_each_row_its_own_clips_addition(adapter, dirs) -> None:
    """Not only the table: block outputs differ from the raw ones by each clip's own
    η0·w·φ·ψ·q (`CompiledPlan.addition` with that clip's seed), row by row, step by step."""
    c = compile_plan(gated(dirs), adapter, total_steps=STEPS)
    session, diffs, _ = steer(adapter, c.with_seeds(SEEDS), len(SEEDS))
    B = len(SEEDS)
    checked = 0
    for call, t0 in enumerate(session.steps):
        d = diffs[call]  # (2B, S, H)
        for s in range(d.shape[1]):
            for row in range(2 * B):
                want = c.with_seed(SEEDS[row % B]).addition(t0 + s, LAYER).float()
                torch.testing.assert_close(d[row, s], want, atol=1e-4, rtol=1e-4)
                checked += 1
    assert checked >= 2 * B * STEPS


def test_rows_of_one_batch_get_different_masks(adapter, dirs) -> None:
    c = compile_plan(gated(dirs), adapter, total_steps=STEPS)
    session, _, _ = steer(adapter, c.with_seeds(SEEDS), len(SEEDS))
    f = session.row_factors(2 * len(SEEDS))[:64, :, 0]
    masks = {tuple(f[:, i] != 0) for i in range(len(SEEDS))}
    assert len(masks) == len(SEEDS)  # one per clip
    assert np.array_equal(f[:, : len(SEEDS)], f[:, len(SEEDS) :])  # twins share theirs
    assert 0.3 < (f != 0).mean() < 0.7


def test_twelve_seeds_batched_by_four_draw_twelve_masks(adapter, dirs, monkeypatch) -> None:
    """The measured case: 12 seeds in chunks of 4 had 3 distinct masks (one per chunk)."""
    sessions: list[SteeringSession] = []
    real = gen.apply_plan

    @contextlib.contextmanager
    def spy(*a, **k):
        with real(*a, **k) as session:
            sessions.append(session)
            yield session

    monkeypatch.setattr(gen, "apply_plan", spy)
    generate(adapter, "x", plan=gated(dirs), seed=list(range(12)), batch=4, seconds=SECONDS)
    masks = [
        tuple(s.row_factors(8)[:64, i, 0] != 0) for s in sessions for i in range(4)
    ]  # conditional rows of each chunk of 4
    assert len(sessions) == 3 and len(set(masks)) == 12


def test_clips_in_a_batch_make_the_codes_they_make_alone(adapter, dirs) -> None:
    """End to end: greedy decoding does not use the sampling stream, so a clip generated in a
    batch makes exactly the codes it makes alone (the token tap sees them)."""

    def codes(seeds: list[int]) -> np.ndarray:
        seen: list[np.ndarray] = []
        with live_control(LiveControl(on_tokens=lambda pos, ids: seen.append(ids))):
            generate(adapter, "x", plan=gated(dirs), seed=seeds, batch=len(seeds),
                     seconds=0.3, temperature=0.0)  # fmt: skip
        ids = np.concatenate(seen, axis=1)  # (2·B·K, calls): conditional rows first
        return ids[: len(seeds) * adapter.num_codebooks].reshape(len(seeds), -1, ids.shape[1])

    batch = codes(SEEDS)
    for i, s in enumerate(SEEDS):
        assert np.array_equal(batch[i], codes([s])[0]), f"clip {i} (seed {s})"


def test_an_ungated_plan_keeps_one_table_and_its_output(adapter, dirs) -> None:
    for plan, seeds in (
        (gated(dirs, gate=1.0), SEEDS),  # no gate
        (SteeringPlan(gated(dirs).directions, seed=9), [9] * 3),  # the plan fixes the gate seed
    ):
        c = compile_plan(plan, adapter, total_steps=STEPS)
        assert c.with_seeds(seeds).per_clip_seeds(np.arange(c.num_directions)) is None
        per_clip, _, out = steer(adapter, c.with_seeds(seeds), len(seeds))
        _, _, ref = steer(adapter, c.with_seed(seeds[0]), len(seeds))
        assert per_clip.groups == 1  # no per-row table
        assert torch.equal(out, ref)  # bit-identical to the one-table path
    # a gated direction beside an ungated one: the table goes per row
    mixed = compile_plan(
        SteeringPlan(gated(dirs, gate=1.0).directions + gated(dirs, gate=0.4).directions),
        adapter,
        total_steps=STEPS,
    ).with_seeds(SEEDS)
    session, _, _ = steer(adapter, mixed, len(SEEDS))
    assert session.groups == 2 * len(SEEDS)


def test_a_batch_of_one_is_the_single_seed_plan(adapter, dirs) -> None:
    c = compile_plan(gated(dirs), adapter, total_steps=STEPS)
    a, _, out_a = steer(adapter, c.with_seeds([SEEDS[1]]), 1, seed=5)
    b, _, out_b = steer(adapter, c.with_seed(SEEDS[1]), 1, seed=5)
    assert a.groups == b.groups == 1 and torch.equal(out_a, out_b)
    with pytest.raises(ConfigError, match="at least one seed"):
        c.with_seeds([])


def test_a_batch_that_does_not_match_the_seeds_is_refused(adapter, dirs) -> None:
    from musicrfm.errors import ModelError

    c = compile_plan(gated(dirs), adapter, total_steps=STEPS).with_seeds(SEEDS)
    with pytest.raises(ModelError, match="gate seeds for 3 clips"):
        steer(adapter, c, 2)


# ------------------------------------------------------------------------ live knobs
def test_a_live_change_in_a_gated_batch_keeps_each_clips_mask(adapter, dirs) -> None:
    c = compile_plan(gated(dirs), adapter, total_steps=STEPS).with_seeds(SEEDS)
    live = LiveControl(on_step=lambda step: live.set_coef(0, -1.5) if step == 3 else None)
    pre: list[torch.Tensor] = []
    post: list[torch.Tensor] = []
    block = adapter.decoder_layers[LAYER]
    h1 = block.register_forward_hook(lambda m, a, o: pre.append(o.clone()))
    with apply_plan(adapter, c, total_steps=STEPS, cfg=False, live=live) as session:
        h2 = block.register_forward_hook(lambda m, a, o: post.append(o.clone()))
        adapter.model.generate(**adapter.tokenize(["x"] * 3), max_new_tokens=8, do_sample=False,
                               guidance_scale=1.0)  # fmt: skip
    h1.remove()
    h2.remove()
    new = compile_plan(gated(dirs, coef=-1.5), adapter, total_steps=STEPS)
    for call, step in enumerate(session.steps):
        if step >= 4:
            for row, s in enumerate(SEEDS):
                want = new.with_seed(s).addition(step, LAYER).float()
                torch.testing.assert_close(post[call][row, 0] - pre[call][row, 0], want)
    assert live.events and live.events[0].step == 4


# ------------------------------------------------------------------------ sidecars
def test_batched_sidecars_record_each_clips_gate_seed_and_reproduce(
    tmp_path, adapter, dirs_path
) -> None:
    plan = gated(dirs_path, coef=20.0)
    res = generate(adapter, "x", plan=plan, seed=SEEDS, batch=3, seconds=SECONDS)
    paths = write_results(res, tmp_path / "take.wav")
    for i, path in enumerate(paths):
        meta = load_sidecar(path)
        assert meta["gate_seed"] == SEEDS[i] and meta["chunk"]["gate_seeds"] == SEEDS
    back = reproduce(paths[2], adapter)
    assert np.array_equal(back.audio, res[2].audio)
    assert back.meta["chunk"]["gate_seeds"] == SEEDS
    # a clip alone records what it did before: no chunk.gate_seeds
    one = generate(adapter, "x", plan=plan, seed=SEEDS[2], seconds=SECONDS)[0]
    assert one.meta["gate_seed"] == SEEDS[2] and "gate_seeds" not in one.meta["chunk"]


def test_an_old_batched_sidecar_reproduces_its_shared_mask(adapter, dirs_path) -> None:
    """Sidecars written when a chunk shared its first clip's mask have no chunk.gate_seeds and
    the first seed as every clip's gate_seed: they still regenerate that clip."""
    plan = gated(dirs_path, coef=20.0)
    res = generate(adapter, "x", plan=plan, seed=SEEDS, batch=3, seconds=SECONDS)
    old = {**res[2].meta, "gate_seed": SEEDS[0]}
    old["chunk"] = {k: v for k, v in old["chunk"].items() if k != "gate_seeds"}
    steps = steps_for(SECONDS, adapter)
    one_mask = compile_plan(plan, adapter, total_steps=steps).with_seed(SEEDS[0])
    opts = GenerationOptions(seconds=SECONDS, batch=3)
    shared = gen._run_chunk(adapter, ["x"] * 3, one_mask, SEEDS[0], steps, opts)[2]
    back = reproduce(old, adapter)
    assert np.array_equal(back.audio, shared)
    assert not np.array_equal(shared, res[2].audio)  # the mask matters at this strength


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["chunk"].update(gate_seeds=[1, 2]),
        lambda m: m["chunk"].update(gate_seeds=[11, 22, "33"]),
        lambda m: m["chunk"].update(gate_seeds=[11, 99, 33]),  # not the clip's gate_seed
        lambda m: m.update(gate_seed="11"),
    ],
)
def test_damaged_gate_seeds_are_named(adapter, dirs_path, edit) -> None:
    from musicrfm.steering.generation import check_sidecar

    res = generate(adapter, "x", plan=gated(dirs_path), seed=SEEDS, batch=3, seconds=SECONDS)
    meta = {**res[1].meta, "chunk": dict(res[1].meta["chunk"])}
    check_sidecar(meta)
    edit(meta)
    with pytest.raises(ConfigError, match="gate_seed"):
        check_sidecar(meta)
