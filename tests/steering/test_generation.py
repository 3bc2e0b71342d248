"""Steered generation end to end: identity at coefficient 0, files, sidecars, reproduction, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate, load_sidecar, reproduce, steps_for, write_results
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


# ------------------------------------------------------------------------------ CLI
def test_cli_generate_with_flags_then_plan_then_reproduce(
    tmp_path, adapter, dirs_path, monkeypatch, capsys
) -> None:
    import musicrfm.models.loader
    from musicrfm.cli import main

    loaded = []

    def fake_load(name, **kw):  # the real loader is tested elsewhere; reuse the built model
        loaded.append(name)
        return adapter

    monkeypatch.setattr(musicrfm.models.loader, "load_model", fake_load)
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
    assert loaded[-1] == adapter.model_id
    # expected mistakes: one line, exit 2
    assert main(["generate", "x", "--directions", str(dirs_path), "--target", "Q"]) == 2
    assert "unknown class" in capsys.readouterr().err
    assert main(["generate", "x", "--directions", str(dirs_path), "--schedule", "wobble"]) == 2
    assert main(["generate", "x", "--plan", "p.toml", "--directions", "d"]) == 2
    err = capsys.readouterr().err
    assert "unknown schedule" in err and "either --plan or --directions" in err


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
