"""Steered generation end to end: identity at coefficient 0, files, sidecars, reproduction, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.compile import compile_plan
from musicrfm.steering.generation import (
    GenerationOptions,
    generate,
    load_sidecar,
    reproduce,
    steps_for,
    write_results,
)
from musicrfm.steering.hooks import apply_plan
from musicrfm.steering.plan import SteeringPlan

CLASSES = ["C", "D", "E"]


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


@pytest.fixture(scope="module")
def dirs_path(tmp_path_factory, adapter):
    g = torch.Generator().manual_seed(1)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 3, 2, d, generator=g)
    cd = ConceptDirections(
        "notes",
        CLASSES,
        v / v.norm(dim=-1, keepdim=True),
        torch.rand(L, 3, generator=g),
        list(range(L)),
        meta={"model_id": adapter.model_id, "num_layers": L, "hidden_size": d},
    )
    return cd.save(tmp_path_factory.mktemp("dirs") / "notes")


SECONDS = 0.2  # 10 frames + 3 delay steps


def test_coefficient_zero_is_bit_identical_to_plain_generate(adapter, dirs_path) -> None:
    plain = generate(adapter, "lofi piano", seconds=SECONDS, seed=5)[0]
    zero = generate(
        adapter,
        "lofi piano",
        seconds=SECONDS,
        seed=5,
        plan=SteeringPlan.single(dirs_path, "D", 0.0, gate=0.3, layers="0-2"),
    )[0]
    assert np.array_equal(plain.audio, zero.audio)
    tok = adapter.tokenize(["lofi piano"])
    torch.manual_seed(5)
    raw = adapter.model.generate(
        **tok, max_new_tokens=steps_for(SECONDS, adapter), do_sample=True, guidance_scale=3.0
    )
    assert np.array_equal(raw[0].numpy(), plain.audio)
    steered = generate(
        adapter,
        "lofi piano",
        seconds=SECONDS,
        seed=5,
        plan=SteeringPlan.single(dirs_path, "D", 5.0),
    )[0]
    assert not np.array_equal(steered.audio, plain.audio)
    assert plain.audio.shape == (1, int(SECONDS * adapter.sample_rate))


def test_seeds_batches_and_sidecars(tmp_path, adapter, dirs_path) -> None:
    plan = SteeringPlan.single(
        dirs_path, "E", 1.0, gate=0.5, weighting="exponential", schedule="linear-rise"
    )
    res = generate(adapter, ["a", "b"], plan=plan, seconds=SECONDS, seed=[1, 2], batch=2)
    assert [(r.prompt, r.seed) for r in res] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    again = generate(adapter, ["a", "b"], plan=plan, seconds=SECONDS, seed=[1, 2], batch=2)
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(res, again))
    paths = write_results(res, tmp_path / "take.flac")
    assert [p.name for p in paths][0] == "take_000_a_s1.flac"
    audio, sr = sf.read(paths[0], always_2d=True)
    assert sr == adapter.sample_rate and audio.shape[0] == res[0].audio.shape[1]
    meta = load_sidecar(paths[3])
    assert meta["prompt"] == "b" and meta["seed"] == 2 and meta["chunk"]["index"] == 1
    assert meta["model"]["model_id"] == adapter.model_id
    assert meta["options"]["guidance_scale"] == 3.0 and meta["options"]["steps"] == 13
    d = meta["plan"]["direction"][0]
    assert d["target"] == "E" and d["gate"] == 0.5 and d["schedule"]["kind"] == "linear-rise"
    assert d["directions_sha256"] and d["concept"] == "notes"
    # a sidecar alone regenerates its clip exactly
    back = reproduce(paths[3], adapter)
    assert np.array_equal(back.audio, res[3].audio)


def test_wav_is_lossless(tmp_path, adapter) -> None:
    r = generate(adapter, "x", seconds=SECONDS, seed=0, guidance_scale=1.0, temperature=0.0)[0]
    path = r.save(tmp_path / "x.wav")
    audio, _ = sf.read(path, always_2d=True, dtype="float32")
    assert np.array_equal(audio.T, r.audio)
    assert json.loads(path.with_suffix(".json").read_text())["options"]["do_sample"] is False


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"batch": 0}, "batch"),
        ({"seed": []}, "seeds"),
    ],
)
def test_bad_options_fail_before_generation(adapter, monkeypatch, kwargs, words) -> None:
    monkeypatch.setattr(adapter.model, "generate", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(ConfigError, match=words):
        generate(adapter, "x", **kwargs)


def test_bad_plans_fail_before_generation(adapter, dirs_path, monkeypatch) -> None:
    monkeypatch.setattr(adapter.model, "generate", lambda *a, **k: pytest.fail("generated"))
    with pytest.raises(ConfigError, match="unknown class"):
        generate(adapter, "x", plan=SteeringPlan.single(dirs_path, "Bb", 0.5))
    with pytest.raises(ConfigError, match="out of range"):
        generate(adapter, "x", plan=SteeringPlan.single(dirs_path, "D", 0.5, layers=[4]))
    cd = ConceptDirections.load(dirs_path)
    cd.meta["model_id"] = "facebook/musicgen-small"
    with pytest.raises(CompatibilityError, match="musicgen-small"):
        generate(adapter, "x", plan=SteeringPlan.single(cd, "D", 0.5))


# ------------------------------------------------------------------------------ one compile
def _old_path(adapter, prompts, plan, seeds, *, batch, steps):
    """What generate() did before it compiled once: the plan compiled per chunk, each clip with
    its own seed as gate seed (unless the plan has one), then a generate seeded with the
    chunk's first seed."""
    items = [(p, s) for p in prompts for s in seeds]
    out = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        tok = adapter.tokenize([p for p, _ in chunk])
        gates = [plan.seed if plan.seed is not None else s for _, s in chunk]
        compiled = compile_plan(plan, adapter, total_steps=steps).with_seeds(gates)
        with torch.inference_mode(), apply_plan(adapter, compiled, total_steps=steps, cfg=True):  # fmt: skip
            torch.manual_seed(chunk[0][1])
            audio = adapter.model.generate(**tok, max_new_tokens=steps, do_sample=True, guidance_scale=3.0, temperature=1.0, top_k=250, top_p=1.0)  # fmt: skip
        out += list(audio.float().numpy())
    return out


@pytest.mark.parametrize("gate_seed", [None, 9])
@pytest.mark.parametrize("batch", [1, 2, 3])
def test_the_plan_is_compiled_once_and_the_audio_is_unchanged(
    adapter, dirs_path, monkeypatch, batch, gate_seed
) -> None:
    import musicrfm.steering.generation as gen
    import musicrfm.steering.hooks as hooks

    calls = []
    real = gen.compile_plan

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    plan = SteeringPlan.multi(dirs_path, {"C": 1.5, "E": -1.0}, gate=0.5, schedule="linear-rise")
    plan.seed = gate_seed
    steps = steps_for(SECONDS, adapter)
    expected = _old_path(adapter, ["a", "b"], plan, [3, 4, 5], batch=batch, steps=steps)
    monkeypatch.setattr(gen, "compile_plan", counting)
    monkeypatch.setattr(hooks, "compile_plan", counting)
    res = generate(adapter, ["a", "b"], plan=plan, seconds=SECONDS, seed=[3, 4, 5], batch=batch)
    assert len(calls) == 1  # not once more per chunk
    assert all(np.array_equal(r.audio, e) for r, e in zip(res, expected, strict=True))
    gates = [r.meta["gate_seed"] for r in res]
    assert gates == ([gate_seed] * 6 if gate_seed is not None else [3, 4, 5] * 2)  # per clip


# ------------------------------------------------------------------------------ options
OLD_OPTIONS = {  # a sidecar's "options" as written before GenerationOptions (and before strict)
    "seconds": SECONDS,
    "steps": 13,
    "guidance_scale": 3.0,
    "temperature": 1.0,
    "top_k": 250,
    "top_p": 0.0,
    "batch": 1,
    "do_sample": True,
}


def test_generation_options_round_trip_through_sidecars(adapter, dirs_path) -> None:
    opts = GenerationOptions(seconds=SECONDS, temperature=0.7, top_p=None, batch=2)
    assert opts.top_p == 0.0 and opts.generate_kwargs(13)["top_p"] == 1.0
    assert GenerationOptions.from_dict(opts.to_dict(steps=13)) == opts
    assert GenerationOptions.from_dict(OLD_OPTIONS) == GenerationOptions(seconds=SECONDS)
    with pytest.raises(ConfigError, match="unknown generation option"):
        GenerationOptions.from_dict({**OLD_OPTIONS, "cfg_rescale": 0.5})
    plan = SteeringPlan.single(dirs_path, "D", 1.0, gate=0.5)
    r = generate(adapter, "x", plan=plan, seed=4, options=GenerationOptions(seconds=SECONDS))[0]
    assert r.meta["options"] == {**OLD_OPTIONS, "strict": True}
    # an old sidecar (no "strict", keys in the old order) still reproduces its clip
    old = dict(r.meta, options=dict(OLD_OPTIONS))
    assert np.array_equal(reproduce(old, adapter).audio, r.audio)
    # keyword overrides and options give the same clip
    same = generate(adapter, "x", plan=plan, seed=4, seconds=SECONDS)[0]
    assert np.array_equal(same.audio, r.audio)


# ------------------------------------------------------------------------------ CLI
def test_cli_generate_with_flags_then_plan_then_reproduce(
    tmp_path, adapter, dirs_path, capsys
) -> None:
    from musicrfm.cli import main

    out = tmp_path / "out.wav"
    args = [
        "generate",
        "lofi piano",
        "--model",
        "random:tiny",
        "--directions",
        str(dirs_path),
        "--target",
        "D",
        "--coef",
        "0.5",
        "--layers",
        "exp:0.95",
        "--gate",
        "0.3",
        "--schedule",
        "linear-rise",
        "--seconds",
        str(SECONDS),
        "--seed",
        "0",
        "-o",
        str(out),
        "--save-plan",
        str(tmp_path / "plan.toml"),
    ]
    assert main(args) == 0
    assert out.exists() and out.with_suffix(".json").exists()
    first = load_sidecar(out)
    d = first["plan"]["direction"][0]
    assert (d["coef"], d["gate"], d["weighting"], d["kappa"]) == (0.5, 0.3, "exponential", 0.95)
    # the saved plan reproduces the same audio
    out2 = tmp_path / "plan.wav"
    rc = main(["generate", "lofi piano", "--model", "random:tiny", "--plan", str(tmp_path / "plan.toml"), "--seconds", str(SECONDS), "-o", str(out2)])  # fmt: skip
    assert rc == 0
    assert load_sidecar(out2)["audio_sha256"] == first["audio_sha256"]
    assert main(["generate", "--reproduce", str(out), "-o", str(tmp_path / "again.wav")]) == 0
    assert "identical" in capsys.readouterr().out
    # expected mistakes: one line, exit 2
    tiny = ["generate", "x", "--model", "random:tiny", "--directions", str(dirs_path)]
    assert main([*tiny, "--target", "Q"]) == 2
    assert "unknown class" in capsys.readouterr().err
    assert main([*tiny, "--target", "D", "--coef", "nan"]) == 2
    assert "coef) must be finite" in capsys.readouterr().err
    assert main([*tiny, "--schedule", "wobble"]) == 2
    assert main(["generate", "x", "--plan", "p.toml", "--directions", "d"]) == 2
    err = capsys.readouterr().err
    assert "unknown schedule" in err and "either --plan or --directions" in err


@pytest.fixture(scope="module")
def mini():
    """The bundled model, loaded for real (no stub)."""
    from musicrfm.models import load_model

    return load_model("mini")


def test_cli_reproduces_a_bundled_model_clip_without_model(tmp_path, mini, capsys) -> None:
    from musicrfm.cli import main

    g = torch.Generator().manual_seed(3)
    L, d = mini.num_layers, mini.hidden_size
    v = torch.randn(L, 2, 1, d, generator=g)
    meta = {"model_id": mini.model_id, "num_layers": L, "hidden_size": d}
    cd = ConceptDirections("notes", ["C", "D"], v, torch.rand(L, 2, generator=g), list(range(L)), meta=meta)  # fmt: skip
    path = cd.save(tmp_path / "dirs" / "notes")
    plan = SteeringPlan.single(path, "D", 1.0, gate=0.5, layers="top:3")
    clip = generate(mini, "solo piano", plan=plan, seconds=0.2, seed=7)[0]
    assert clip.meta["model"]["model_id"] == "musicgen-mini"
    audio = write_results([clip], tmp_path / "clip.wav")[0]
    out = tmp_path / "again.wav"
    assert main(["generate", "--reproduce", str(audio.with_suffix(".json")), "-o", str(out)]) == 0
    assert "identical" in capsys.readouterr().out
    again, _ = sf.read(out, always_2d=True, dtype="float32")
    assert np.array_equal(again.T, clip.audio)


def test_cli_crossfade_and_multi(tmp_path, adapter, dirs_path, monkeypatch) -> None:
    import argparse

    from musicrfm.commands.generate import build_plan, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    ns = parser.parse_args(
        [
            "generate",
            "x",
            "--directions",
            str(dirs_path),
            "--target",
            "C",
            "--to",
            "E",
            "--schedule",
            "linear-rise:start=1s,duration=2s",
        ]  # fmt: skip
    )
    plan = build_plan(ns)
    assert [d.schedule.kind for d in plan.directions] == ["linear-decay", "linear-rise"]
    assert plan.directions[0].schedule.unit == "seconds"
    ns = parser.parse_args(["generate", "x", "--directions", str(dirs_path), "--target", "C,E"])
    assert [d.target for d in build_plan(ns).directions] == ["C", "E"]


def test_cli_steers_a_tempo_direction_slower_and_explains_a_class_target(tmp_path, capsys):
    """`musicrfm generate --target slower` on a regression direction; `--target 140` is one
    clear line that says what to use instead."""
    import json

    import torch

    from musicrfm.cli import main
    from musicrfm.models import random_model
    from musicrfm.probes.directions import ConceptDirections

    m = random_model("tiny")
    g = torch.Generator().manual_seed(5)
    v = torch.nn.functional.normalize(
        torch.randn(m.num_layers, 1, 1, m.hidden_size, generator=g), dim=-1
    )
    ConceptDirections(
        "tempos", ["value"], v, torch.rand(m.num_layers, 1, generator=g),
        list(range(m.num_layers)), meta={"task": "regression", "model_id": m.model_id},
    ).save(tmp_path / "dirs" / "tempos")  # fmt: skip
    base = ["generate", "click", "--model", "random:tiny", "--directions", str(tmp_path / "dirs")]
    out = tmp_path / "slow.wav"
    assert (
        main([*base, "--target", "slower", "--coef", "2", "--seconds", "0.3", "-o", str(out)]) == 0
    )
    plan = json.loads(out.with_suffix(".json").read_text())["plan"]
    assert plan["direction"][0]["target"] == "slower"
    capsys.readouterr()
    bad = [*base, "--target", "140", "--seconds", "0.3", "-o", str(tmp_path / "x.wav")]
    assert main(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'faster' or 'slower'" in err[0]
    assert not (tmp_path / "x.wav").exists()


# ----------------------------------------------------------------------------- issue 22
def test_each_clip_is_written_as_it_is_made_and_a_rerun_skips_it(
    tmp_path, adapter, dirs_path, monkeypatch
) -> None:
    """Ctrl-C after the first clip keeps it; the same call again generates only the rest, and
    the files are those of an uninterrupted run; another command over them regenerates."""
    import musicrfm.steering.generation as gen

    plan = SteeringPlan.single(dirs_path, "D", 2.0, gate=0.5)
    kw = dict(plan=plan, seed=[0, 1, 2], seconds=SECONDS)
    whole = [r for _, r in gen.generate_files(adapter, "x", tmp_path / "whole", **kw)]
    real, calls = gen._run_chunk, []

    def interrupt_second(*a):  # noqa: ANN002, ANN202
        calls.append(a[3])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(gen, "_run_chunk", interrupt_second)
    out = tmp_path / "takes"
    with pytest.raises(KeyboardInterrupt):
        list(gen.generate_files(adapter, "x", out, **kw))
    assert [p.name for p in sorted(out.glob("*.wav"))] == ["000_x_s0.wav"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    calls.clear()
    monkeypatch.setattr(gen, "_run_chunk", lambda *a: (calls.append(a[3]), real(*a))[1])
    again = list(gen.generate_files(adapter, "x", out, **kw))
    assert calls == [1, 2] and again[0][1] is None  # seed 0 was kept
    for (path, _), ref in zip(again, whole):
        audio, _sr = sf.read(path, always_2d=True, dtype="float32")
        assert np.array_equal(audio.T, ref.audio)
    calls.clear()
    changed = dict(kw, plan=SteeringPlan.single(dirs_path, "D", 3.0, gate=0.5))
    assert all(r is not None for _, r in gen.generate_files(adapter, "x", out, **changed))
    assert calls == [0, 1, 2]  # other settings: regenerated, not skipped


def test_an_existing_folder_is_an_output_folder_whatever_its_name(tmp_path) -> None:
    from musicrfm.steering.generation import output_paths_for

    (tmp_path / "takes.wav").mkdir()
    assert output_paths_for([("x", 0)], tmp_path / "takes.wav") == [
        tmp_path / "takes.wav" / "000_x_s0.wav"
    ]
    assert output_paths_for([("x", 0)], tmp_path / "new.wav") == [tmp_path / "new.wav"]


def test_sidecars_record_the_thread_count_and_reproduce_sets_it(
    tmp_path, adapter, monkeypatch
) -> None:
    clip = generate(adapter, "x", seconds=SECONDS, seed=3)[0]
    assert clip.meta["torch_threads"] == torch.get_num_threads()
    meta = json.loads(json.dumps(clip.meta))
    meta["torch_threads"] = 3
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    before = torch.get_num_threads()
    back = reproduce(meta, adapter)
    assert seen == [3, before] and torch.get_num_threads() == before
    from musicrfm.steering.generation import reproduce_note

    del meta["torch_threads"]
    assert "does not record the torch thread count" in reproduce_note(meta, back)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda m: "{cut", "damaged \\(not JSON"),
        (lambda m: {**m, "chunk": None}, "no chunk record"),
        (lambda m: {**m, "chunk": {**m["chunk"], "seeds": ["a"]}}, "chunk.seeds must be"),
        (lambda m: {**m, "chunk": {**m["chunk"], "index": 5}}, "chunk.index 5"),
        (lambda m: {**m, "model": {}}, "no model.model_id"),
        (lambda m: {**m, "options": {**m["options"], "top_k": "x"}}, "options:"),
        (lambda m: {**m, "torch_threads": "two"}, "torch_threads must be an integer"),
    ],
)
def test_a_damaged_sidecar_names_the_file(tmp_path, adapter, damage, words) -> None:
    clip = generate(adapter, "x", seconds=SECONDS, seed=0)[0]
    path = clip.save(tmp_path / "x.wav").with_suffix(".json")
    bad = damage(json.loads(path.read_text()))
    path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(ConfigError, match=f"{path.name}.*{words}|{words}.*{path.name}"):
        load_sidecar(path)


def test_seeds_and_length_are_checked_before_generating(adapter) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        generate(adapter, "x", seconds=SECONDS, seed=2**70)
    with pytest.raises(ConfigError, match="a seed must be an integer"):
        generate(adapter, "x", seconds=SECONDS, seed=["abc"])
    with pytest.raises(ConfigError, match="positions for 512"):
        generate(adapter, "x", seconds=11.0, seed=0)


def test_sidecars_record_each_eta0_absolute_and_relative(tmp_path, adapter, dirs_path) -> None:
    cd = ConceptDirections.load(dirs_path)
    cd.meta["activation_norm"] = 8.0
    normed = cd.save(tmp_path / "normed")
    plan = SteeringPlan.single(normed, "D", "0.25x")
    clip = generate(adapter, "x", plan=plan, seconds=SECONDS, seed=0)[0]
    assert clip.meta["strength"] == [
        {"direction": "notes:D", "eta0": 2.0, "relative": 0.25, "activation_norm": 8.0}
    ]
    assert clip.meta["plan"]["direction"][0]["coef"] == "0.25x"
    assert clip.meta["plan"]["direction"][0]["eta0"] == 2.0
    same = generate(adapter, "x", plan=SteeringPlan.single(normed, "D", 2.0), seconds=SECONDS)[0]
    assert np.array_equal(same.audio, clip.audio)  # 0.25x of 8 is η0 = 2
    assert np.array_equal(reproduce(clip.meta, adapter).audio, clip.audio)
