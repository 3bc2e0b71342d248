"""Steering hooks: exactness, the gate and its clock, guidance rows, plan files and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tomllib
import torch

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.compile import compile_plan, layer_weights
from musicrfm.steering.hooks import apply_plan
from musicrfm.steering.plan import SteeringDirection, SteeringPlan, parse_layers
from musicrfm.steering.schedules import (
    Schedule,
    constant,
    exp_decay,
    from_callable,
    keyframes,
    linear_decay,
    linear_rise,
    logistic_rise,
    sine,
)
from musicrfm.steering.toml_writer import dumps_toml

CLASSES = ["C", "D", "E"]


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


def make_directions(adapter, *, seed: int = 0, **meta) -> ConceptDirections:
    g = torch.Generator().manual_seed(seed)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, len(CLASSES), 2, d, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    scores = torch.linspace(0.55, 0.95, L)[:, None].repeat(1, len(CLASSES))
    scores = scores[torch.randperm(L, generator=g)]  # best layer is not the last one
    info = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d}
    info.update(meta)
    return ConceptDirections("notes", CLASSES, v, scores, list(range(L)), meta=info)


@pytest.fixture(scope="module")
def dirs(adapter) -> ConceptDirections:
    return make_directions(adapter)


@pytest.fixture(scope="module")
def tok(adapter):
    return adapter.tokenize(["lofi piano"])


def run(adapter, tok, plan, *, steps: int = 6, seed: int = 0, record=(), **kw):
    """Generate with `plan`; record each layer's block output before and after steering."""
    pre: dict[int, list[torch.Tensor]] = {i: [] for i in record}
    post: dict[int, list[torch.Tensor]] = {i: [] for i in record}
    handles = [
        adapter.decoder_layers[i].register_forward_hook(
            lambda m, a, o, i=i: pre[i].append(o.detach().clone())
        )
        for i in record
    ]
    try:
        with apply_plan(adapter, plan, seed=seed, total_steps=steps, **kw) as session:
            handles += [
                adapter.decoder_layers[i].register_forward_hook(
                    lambda m, a, o, i=i: post[i].append(o.detach().clone())
                )
                for i in record
            ]
            torch.manual_seed(seed)
            audio = adapter.model.generate(
                **tok, max_new_tokens=steps, do_sample=True, guidance_scale=3.0
            )
    finally:
        for h in handles:
            h.remove()
    return audio, session, pre, post


def no_hooks_left(adapter) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in adapter.decoder_layers)


# --------------------------------------------------------------------------- identity
def test_zero_coefficient_and_empty_plan_are_bit_identical(adapter, tok, dirs) -> None:
    plain, _, _, _ = run(adapter, tok, None, steps=12)
    for plan in (SteeringPlan(), SteeringPlan.single(dirs, "D", 0.0, gate=0.3)):
        out, session, _, _ = run(adapter, tok, plan, steps=12)
        assert torch.equal(out, plain)
        assert session.layers == []
    steered, _, _, _ = run(adapter, tok, SteeringPlan.single(dirs, "D", 4.0), steps=12)
    assert not torch.equal(steered, plain)
    assert no_hooks_left(adapter)


# --------------------------------------------------------------------------- exactness
SCHEDULES = {
    "constant": constant(),
    "linear-rise": linear_rise(duration=4),
    "linear-decay": linear_decay(duration=4),
    "exp-decay": exp_decay(0.7),
    "logistic-rise": logistic_rise(duration=4),
    "sine": sine(period=4, phase=0.3),
    "keyframes": keyframes([(0, 0.4), (2, 1.0), (5, 0.0)]),
    "callable": from_callable(lambda t: 0.25 * (t % 4)),
}
WEIGHTS = {
    "uniform": {},
    "top-2": {"top_k": 2},
    "exponential": {"weighting": "exponential", "kappa": 0.95},
    "linear": {"weighting": "linear", "w0": 2.0},
}


@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_layer_output_differs_by_exactly_the_formula(
    adapter, tok, dirs, weights: str, schedule: str
) -> None:
    coef = 1.7
    d = SteeringDirection(dirs, "E", coef, schedule=SCHEDULES[schedule], **WEIGHTS[weights])
    plan = SteeringPlan([d])
    steps = 5
    compiled = compile_plan(plan, adapter, total_steps=steps)
    w = compiled.weights[0]
    q = torch.nn.functional.normalize(dirs.vectors[:, 2, 0].double(), dim=-1)
    phi = SCHEDULES[schedule].values(steps)
    layers = list(range(adapter.num_layers))
    _, base_pre, _ = run(adapter, tok, None, steps=steps, record=layers)[1:]
    _, session, pre, post = run(adapter, tok, plan, steps=steps, record=layers)
    first = min(session.layers)  # the lowest steered layer sees identical inputs at step 0
    assert torch.equal(pre[first][0], base_pre[first][0])
    expected0 = coef * w[first] * phi[0] * q[first]
    torch.testing.assert_close(
        (post[first][0] - base_pre[first][0]).double(),
        expected0.expand_as(post[first][0]),
        atol=1e-5,
        rtol=0,
    )
    # every layer and step: steered - raw block output == η0·w_ℓ·φ(t)·q_ℓ (no gate here)
    for layer in layers:
        for call, t in enumerate(session.steps):
            diff = (post[layer][call] - pre[layer][call]).double()
            expected = coef * w[layer] * phi[t] * q[layer]
            torch.testing.assert_close(diff, expected.expand_as(diff), atol=1e-5, rtol=0)
            assert expected.norm() == 0 or layer in session.layers


def test_weight_formulas() -> None:
    s = np.array([0.5, 0.9, 0.7, np.nan, 0.6])
    sel = np.ones(5, dtype=bool)
    shat = np.array([0.0, 1.0, 0.5, 0.0, 0.25])
    np.testing.assert_allclose(layer_weights(s, sel, "uniform", w0=0.5), 0.5)
    np.testing.assert_allclose(layer_weights(s, sel, "linear", w0=2), 2 * shat)
    np.testing.assert_allclose(layer_weights(s, sel, "exponential", kappa=0.5), shat**2)
    sel[1] = False
    assert layer_weights(s, sel, "uniform")[1] == 0


def test_top_k_picks_the_best_scoring_layers(adapter, dirs) -> None:
    c = compile_plan(SteeringDirection(dirs, "C", 1.0, top_k=2), adapter)
    best = set(np.argsort(-dirs.scores[:, 0].numpy())[:2].tolist())
    assert set(c.steered_layers) == best
    assert np.all(c.weights[0][list(best)] == 1.0)
    c = compile_plan(SteeringDirection(dirs, "C", 1.0, layers=[0, -1]), adapter)
    assert c.steered_layers == [0, adapter.num_layers - 1]


def test_component_combination_is_renormalised(adapter, dirs) -> None:
    c = compile_plan(SteeringDirection(dirs, "D", 1.0, component={0: 1.0, 1: 1.0}), adapter)
    v = dirs.vectors[:, 1, 0] + dirs.vectors[:, 1, 1]
    torch.testing.assert_close(c.unit[0], (v / v.norm(dim=-1, keepdim=True)).double())


def test_multi_direction_sums_per_layer(adapter, tok, dirs) -> None:
    plan = SteeringPlan.multi(dirs, {"C": 0.8, "E": -0.5}, schedule=linear_decay(duration=6))
    _, session, pre, post = run(adapter, tok, plan, steps=4, record=[1])
    c = session.compiled
    for call, t in enumerate(session.steps):
        diff = (post[1][call] - pre[1][call]).double()
        exp = c.addition(t, 1)
        torch.testing.assert_close(diff, exp.expand_as(diff), atol=1e-5, rtol=0)
        manual = sum(
            c.coefs[m] * c.weights[m, 1] * c.schedule_values(t + 1)[t, m] * c.unit[m, 1]
            for m in range(2)
        )
        torch.testing.assert_close(exp, manual)


# --------------------------------------------------------------------------- gate & clock
def test_gate_fires_on_about_p_of_the_steps(adapter, dirs) -> None:
    n, p = 20_000, 0.3
    c = compile_plan(SteeringPlan.single(dirs, "D", 1.0, gate=p, seed=7), adapter)
    g = c.gate_values(n)[:, 0]
    assert set(np.unique(g)) <= {0.0, 1.0}
    tol = 4.5 * math.sqrt(p * (1 - p) / n)  # ~1 false alarm in 150,000 runs
    assert abs(g.mean() - p) < tol
    # neighbouring steps are independent (lag-1 correlation near 0)
    assert abs(np.corrcoef(g[:-1], g[1:])[0, 1]) < 4.5 / math.sqrt(n)
    same = compile_plan(SteeringPlan.single(dirs, "D", 1.0, gate=p, seed=7), adapter)
    other = compile_plan(SteeringPlan.single(dirs, "D", 1.0, gate=p, seed=8), adapter)
    assert np.array_equal(same.gate_values(n), c.gate_values(n))
    assert not np.array_equal(other.gate_values(n), c.gate_values(n))
    assert np.array_equal(c.gate_values(100)[:, 0], g[:100])  # prefix-stable when the table grows


def test_gate_is_shared_by_all_layers_and_the_clock_never_stops(adapter, tok, dirs) -> None:
    steps, T = 60, 60
    plan = SteeringPlan.single(dirs, "D", 2.0, gate=0.5, schedule=linear_rise(duration=T))
    layers = list(range(adapter.num_layers))
    _, session, pre, post = run(adapter, tok, plan, steps=steps, record=layers, seed=3)
    q = torch.nn.functional.normalize(dirs.vectors[:, 1, 0].double(), dim=-1)
    fired = []
    for call, t in enumerate(session.steps):
        on = [not torch.equal(post[i][call], pre[i][call]) for i in layers]
        assert len(set(on)) == 1, f"step {t}: the gate differs between layers"
        fired.append(on[0])
        if on[0]:  # schedule value is φ(t) = t/T, whatever happened at earlier steps
            diff = (post[2][call] - pre[2][call]).double()[0, 0]
            torch.testing.assert_close(diff, 2.0 * (t / T) * q[2], atol=1e-5, rtol=0)
    assert session.steps == [0] + list(range(steps))  # transformers 5.x runs the prefill twice
    gate = session.compiled.gate_values(steps)[:, 0]
    expect = [bool(gate[t]) and t > 0 for t in session.steps]  # φ(0) = 0 adds nothing
    assert fired == expect
    assert 0.3 < np.mean(gate) < 0.7


def test_positions_without_kv_cache_get_their_own_step(adapter, tok, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 1.0, gate=0.5, schedule=linear_decay(duration=5))
    post, pre = [], []
    h0 = adapter.decoder_layers[1].register_forward_hook(lambda m, a, o: pre.append(o.clone()))
    try:
        with apply_plan(adapter, plan, total_steps=5, seed=1) as session:
            h1 = adapter.decoder_layers[1].register_forward_hook(
                lambda m, a, o: post.append(o.clone())
            )
            torch.manual_seed(0)
            adapter.model.generate(**tok, max_new_tokens=5, use_cache=False, guidance_scale=3.0)
            h1.remove()
    finally:
        h0.remove()
    last = (post[-1] - pre[-1]).double()  # the last call recomputes every position
    assert last.shape[1] == 5
    for pos in range(5):
        exp = session.compiled.addition(pos, 1)
        torch.testing.assert_close(last[:, pos], exp.expand_as(last[:, pos]), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- rows
def test_conditional_only_leaves_unconditional_rows_untouched(adapter, tok, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 3.0, rows="conditional", gate=0.7)
    layers = list(range(adapter.num_layers))
    _, session, pre, post = run(adapter, tok, plan, steps=8, record=layers)
    touched = 0
    for i in layers:
        for call in range(len(session.steps)):
            diff = post[i][call] - pre[i][call]
            assert diff.shape[0] == 2  # CFG: conditional row 0, unconditional row 1
            assert torch.equal(post[i][call][1], pre[i][call][1])
            touched += int(diff[0].abs().max() > 0)
    assert touched > 0
    both = SteeringPlan.single(dirs, "D", 3.0, rows="both")
    _, _, pre, post = run(adapter, tok, both, steps=2, record=[0])
    assert not torch.equal(post[0][0][1], pre[0][0][1])


def test_conditional_only_without_guidance_steers_every_row(adapter, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 1.0, rows="conditional")
    with apply_plan(adapter, plan, cfg=False) as session:
        assert session.groups == 1


# --------------------------------------------------------------------------- hooks
def test_hooks_are_removed_on_errors_and_ctrl_c(adapter, tok, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 1.0)
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), apply_plan(adapter, plan):
            assert not no_hooks_left(adapter)
            raise exc
        assert no_hooks_left(adapter)


def test_tuple_returning_layers_are_steered_too(adapter, tok, dirs) -> None:
    """Older transformers / MusicGen-Melody blocks return (hidden, ...) tuples."""
    plan = SteeringPlan.single(dirs, "E", 2.0)
    ref, _, _, _ = run(adapter, tok, plan, steps=6)
    layers = adapter.decoder_layers
    to_tuple = [layer.register_forward_hook(lambda m, a, o: (o, None)) for layer in layers]
    try:
        with apply_plan(adapter, plan, total_steps=6):
            back = [layer.register_forward_hook(lambda m, a, o: o[0]) for layer in layers]
            torch.manual_seed(0)
            out = adapter.model.generate(**tok, max_new_tokens=6, do_sample=True)
            for h in back:
                h.remove()
    finally:
        for h in to_tuple:
            h.remove()
    assert torch.equal(out, ref)


def test_a_bare_transformers_model_works(adapter, tok, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 2.0)
    ref, _, _, _ = run(adapter, tok, plan, steps=6)
    with apply_plan(adapter.model, plan, total_steps=6, strict=False) as session:
        torch.manual_seed(0)
        out = adapter.model.generate(**tok, max_new_tokens=6, do_sample=True)
    assert session.layers == list(range(adapter.num_layers))
    assert torch.equal(out, ref)


# --------------------------------------------------------------------------- bad input
def test_bad_input_fails_before_anything_is_installed(adapter, dirs) -> None:
    other = make_directions(adapter, model_id="facebook/musicgen-large")
    wrong_width = ConceptDirections(
        "notes", CLASSES, torch.randn(4, 3, 1, 32), torch.rand(4, 3), [0, 1, 2, 3]
    )
    deeper = make_directions(adapter, num_layers=48)
    cases = [
        (lambda: SteeringPlan.single(other, "D", 1.0), CompatibilityError, "musicgen-large"),
        (lambda: SteeringPlan.single(wrong_width, "D", 1.0), CompatibilityError, "hidden"),
        (lambda: SteeringPlan.single(deeper, "D", 1.0), CompatibilityError, "48"),
        (lambda: SteeringPlan.single(dirs, "F#", 1.0), ConfigError, "unknown class"),
        (lambda: SteeringPlan.single(dirs, None, 1.0), ConfigError, "target"),
        (lambda: SteeringPlan.single(dirs, "D", float("nan")), ConfigError, "finite"),
        (lambda: SteeringPlan.single(dirs, "D", float("inf")), ConfigError, "finite"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, layers=[7]), ConfigError, "out of range"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, layers=[-9]), ConfigError, "out of range"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, top_k=9), ConfigError, "top_k"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, component=5), ConfigError, "component"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, gate=1.5), ConfigError, "gate"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, kappa=0), ConfigError, "kappa"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, rows="odd"), ConfigError, "rows"),
        (lambda: SteeringPlan.single(dirs, "D", 1.0, weighting="cubic"), ConfigError, "weighting"),
        (
            lambda: SteeringPlan.single(dirs, "D", 1.0, schedule={"kind": "exp-decay", "rate": 2}),
            ConfigError,
            "rate",
        ),
        (
            lambda: SteeringPlan.single(dirs, "D", 1.0, schedule=from_callable(lambda t: -1.0)),
            ConfigError,
            "schedule",
        ),
    ]
    for make, err, words in cases:
        with pytest.raises(err, match=words), apply_plan(adapter, make()):
            pytest.fail("the block must not run")
        assert no_hooks_left(adapter)
    # the model id check can be relaxed; shapes cannot
    with apply_plan(adapter, SteeringPlan.single(other, "D", 1.0), strict=False) as s:
        assert s.layers


# --------------------------------------------------------------------------- plans
def test_one_liners(adapter, dirs) -> None:
    x = SteeringPlan.crossfade(dirs, "C", "G" if "G" in CLASSES else "E", 0.5, start=1, duration=2)
    assert [d.target for d in x.directions] == ["C", "E"]
    c = compile_plan(x, adapter, total_steps=50)
    v = c.schedule_values(50)
    np.testing.assert_allclose(v.sum(1), 1.0)
    assert v[0].tolist() == [1.0, 0.0] and v[-1].tolist() == [0.0, 1.0]
    secs = SteeringPlan.crossfade(dirs, "C", "E", start=1, duration=2, unit="seconds")
    v = compile_plan(secs, adapter, total_steps=200).schedule_values(200)
    assert v[50].tolist() == [1.0, 0.0] and v[100].tolist() == [0.5, 0.5]
    m = SteeringPlan.multi(dirs, ["C", "E"], coef=0.2, gate=0.3)
    assert [(d.target, d.coef, d.gate) for d in m.directions] == [("C", 0.2, 0.3), ("E", 0.2, 0.3)]
    assert len((x + m).directions) == 4


def test_parse_layers() -> None:
    assert parse_layers("exp:0.95") == {"weighting": "exponential", "kappa": 0.95}
    assert parse_layers("top:8+linear:2") == {"top_k": 8, "weighting": "linear", "w0": 2.0}
    assert parse_layers("0-2,5,-1") == {"layers": [0, 1, 2, 5, -1]}
    assert parse_layers("all") == {"layers": "all"}
    with pytest.raises(ConfigError):
        parse_layers("top:x")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_plan_files_round_trip(tmp_path, adapter, dirs, suffix: str) -> None:
    dirs.save(tmp_path / "dirs" / "notes")
    plan = SteeringPlan(
        [
            SteeringDirection(
                "dirs/notes",
                "D",
                0.5,
                component={0: 1.0, 1: 0.5},
                top_k=3,
                weighting="exponential",
                kappa=0.9,
                schedule=Schedule("linear-rise", start=1, duration=3, unit="seconds"),
                gate=0.3,
                rows="conditional",
            ),
            SteeringDirection("dirs/notes", "C", -0.2, layers=[1, 2], schedule=exp_decay(0.99)),
        ],
        seed=11,
    )
    # paths in memory are relative to the working directory; in the file, to the file
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        path = plan.save(tmp_path / "plans" / f"p{suffix}")
    finally:
        os.chdir(cwd)
    text = path.read_text()
    data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    assert data["direction"][0]["directions"] == os.path.join("..", "dirs", "notes")
    back = SteeringPlan.load(path)
    assert back.seed == 11 and len(back.directions) == 2
    a = compile_plan(back, adapter, total_steps=100)
    os.chdir(tmp_path)
    try:
        b = compile_plan(plan, adapter, total_steps=100)
    finally:
        os.chdir(cwd)
    np.testing.assert_array_equal(a.factors(100), b.factors(100))
    np.testing.assert_array_equal(a.weights, b.weights)
    assert torch.equal(a.unit, b.unit)


def test_plan_file_errors(tmp_path, dirs) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[direction]]\ndirections = "x"\ntarget = "D"\ncoeff = 0.5\n')
    with pytest.raises(ConfigError, match="coeff"):
        SteeringPlan.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        SteeringPlan.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="in memory"):
        SteeringPlan.single(dirs, "D").save(tmp_path / "p.toml")
    assert tomllib.loads(dumps_toml({"a": 1, "t": {"b": [1, 2.5]}, "x": [{"k": "v"}]})) == {
        "a": 1,
        "t": {"b": [1, 2.5]},
        "x": [{"k": "v"}],
    }


def test_melody_condition_prefix_is_not_a_step() -> None:
    """MusicGen-Melody prepends its condition to the decoder sequence: step 0 is the BOS after it,
    the condition positions get no addition, and its blocks return tuples."""
    from musicrfm.models import block_output, random_model

    mel = random_model("tiny-melody", seed=0)
    cd = make_directions(mel)
    plan = SteeringPlan.single(cd, "D", 1.0, schedule=linear_decay(duration=4))
    pre, post = [], []
    h0 = mel.decoder_layers[1].register_forward_hook(
        lambda m, a, o: pre.append(block_output(o).clone())
    )
    try:
        with apply_plan(mel, plan, total_steps=4) as session:
            h1 = mel.decoder_layers[1].register_forward_hook(
                lambda m, a, o: post.append(block_output(o).clone())
            )
            torch.manual_seed(0)
            mel.model.generate(**mel.tokenize(["x"]), max_new_tokens=4, guidance_scale=3.0)
            h1.remove()
    finally:
        h0.remove()
    prefix = session._prefix
    assert prefix > 0 and session.steps[0] == -prefix and session.steps[-1] == 3
    for call, t in enumerate(session.steps):
        diff = (post[call] - pre[call]).double()
        for j in range(diff.shape[1]):
            step = t + j
            exp = session.compiled.addition(step, 1) if step >= 0 else torch.zeros(cd.hidden_size)
            torch.testing.assert_close(
                diff[:, j], exp.double().expand_as(diff[:, j]), atol=1e-5, rtol=0
            )
    assert pre[0].shape[1] == prefix + 1


def test_layer_specs_in_plans_set_selection_and_weighting(dirs) -> None:
    d = SteeringDirection(dirs, "D", 0.5, layers="top:2+exp:0.9")
    assert (d.layers, d.top_k, d.weighting, d.kappa) == ("all", 2, "exponential", 0.9)
    assert SteeringDirection(dirs, "D", layers="1-2").layers == [1, 2]
    with pytest.raises(ConfigError, match="top_k"):
        SteeringDirection(dirs, "D", layers="top:0")


def test_contrast_rows_subtract_from_unconditional_rows_only(adapter, tok, dirs) -> None:
    """rows='contrast' leaves the prompt's rows exactly as they were and moves the unconditional
    rows by minus the addition that rows='both' makes there."""
    layers = [0, adapter.num_layers - 1]
    plan = SteeringPlan.single(dirs, "D", 3.0, rows="contrast")
    _, session, pre, post = run(adapter, tok, plan, steps=4, record=layers)
    for i in layers:
        for call in range(1, len(session.steps)):
            assert torch.equal(post[i][call][0], pre[i][call][0])
            diff = post[i][call][1] - pre[i][call][1]
            exp = session.compiled.addition(session.steps[call], i, conditional=False)
            assert exp.abs().max() > 0
            torch.testing.assert_close(diff.double(), exp.expand_as(diff), atol=1e-5, rtol=0)
    assert session.compiled.row_gain.tolist() == [[0.0, -1.0]]


def test_unconditional_rows_need_guidance(adapter, dirs) -> None:
    for rows in ("unconditional", "contrast"):
        plan = SteeringPlan.single(dirs, "D", 1.0, rows=rows)
        with pytest.raises(ConfigError, match="guidance"), apply_plan(adapter, plan, cfg=False):
            pass


# --------------------------------------------------------------------------- model adapters
def test_bare_models_are_wrapped_and_other_types_refused(adapter, dirs) -> None:
    from musicrfm.errors import ModelError
    from musicrfm.steering.adapters import as_adapter

    assert as_adapter(adapter) is adapter
    wrapped = as_adapter(adapter.model)
    assert wrapped.decoder_layers is adapter.decoder_layers
    assert (wrapped.num_layers, wrapped.hidden_size) == (adapter.num_layers, adapter.hidden_size)
    with pytest.raises(ModelError, match="MusicgenForCausalLM"):
        compile_plan(SteeringPlan.single(dirs, "D", 1.0), adapter.model.decoder)
    with pytest.raises(ModelError, match="cannot steer a Linear"):
        apply_plan(torch.nn.Linear(2, 2), None).__enter__()


def test_a_compiled_plan_is_applied_as_it_is(adapter, tok, dirs) -> None:
    plan = SteeringPlan.single(dirs, "D", 2.0, gate=0.5)
    ref, _, _, _ = run(adapter, tok, plan, steps=6, seed=2)
    compiled = compile_plan(plan, adapter, seed=7, total_steps=6).with_seed(2)
    out, session, _, _ = run(adapter, tok, compiled, steps=6, seed=2)  # seed= not used for it
    assert session.compiled is compiled and torch.equal(out, ref)
    assert compiled.with_seed(5).seed == 5 and compiled.with_seed(5).unit is compiled.unit
    other = make_directions(adapter)
    small = compile_plan(SteeringPlan.single(other, "D", 1.0), adapter)
    small.num_layers = 2
    with pytest.raises(ConfigError, match="compiled for 2 layers"), apply_plan(adapter, small):
        pass


def test_a_regression_direction_steered_slower_compiles_to_a_negative_coefficient(adapter) -> None:
    """A tempo direction: 'faster' adds +η0 along it, 'slower' -η0 (the plan keeps the word)."""
    g = torch.Generator().manual_seed(3)
    v = torch.nn.functional.normalize(
        torch.randn(adapter.num_layers, 1, 1, adapter.hidden_size, generator=g), dim=-1
    )
    cd = ConceptDirections(
        "tempos", ["value"], v, torch.rand(adapter.num_layers, 1, generator=g),
        list(range(adapter.num_layers)), meta={"task": "regression"},
    )  # fmt: skip
    faster = compile_plan(SteeringPlan.single(cd, target="faster", coef=0.5), adapter)
    slower = compile_plan(SteeringPlan.single(cd, target="slower", coef=0.5), adapter)
    assert faster.coefs.tolist() == [0.5] and slower.coefs.tolist() == [-0.5]
    assert (
        SteeringPlan.single(cd, target="slower", coef=0.5).to_dict(strict=False)["direction"][0][
            "target"
        ]
        == "slower"
    )
    with pytest.raises(ConfigError, match="'faster' or 'slower'"):
        compile_plan(SteeringPlan.single(cd, target="140", coef=0.5), adapter)
