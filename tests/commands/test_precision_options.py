"""`musicrfm demo` and `musicrfm mini headline` take --dtype and --batch-size and hand them to
the model and to generation; bad values stop before the model loads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from musicrfm.cli import build_parser, main


class _Captured(Exception):  # noqa: N818 - a sentinel that stops the verb after its setup
    pass


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the experiments by a recorder of what the commands pass them."""
    import musicrfm.experiments.demo as demo
    import musicrfm.experiments.headline as headline

    seen: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise _Captured

    monkeypatch.setattr(demo, "run_demo", record)
    monkeypatch.setattr(headline, "run_headline", record)
    torch.set_num_threads(1)
    return seen


def test_demo_passes_dtype_and_batch_size(captured: dict[str, Any], tmp_path) -> None:
    from musicrfm.commands.demo import DEMO_BATCH
    from musicrfm.experiments.demo import DemoConfig

    assert DemoConfig().batch == DEMO_BATCH  # the default the help shows
    with pytest.raises(_Captured):
        main(["demo", "--model", "random:tiny", "--dtype", "bf16", "--batch-size", "3",
              "--quick", "--out", str(tmp_path / "r")])  # fmt: skip
    assert captured["model"].dtype == torch.bfloat16
    assert captured["model"].model_id == "random:tiny:seed0"
    assert captured["config"].batch == 3
    with pytest.raises(_Captured):
        main(["demo", "--model", "random:tiny", "--quick", "--out", str(tmp_path / "r")])
    assert captured["model"].dtype == torch.float32
    assert captured["config"].batch == DemoConfig.quick().batch


def test_headline_passes_dtype_and_batch_size(captured: dict[str, Any], tmp_path) -> None:
    from musicrfm.experiments.headline import HeadlineConfig

    with pytest.raises(_Captured):
        main(["mini", "headline", "--model", "random:tiny", "--dtype", "float16",
              "--batch-size", "1", "--quick", "--out", str(tmp_path / "h")])  # fmt: skip
    assert captured["model"].dtype == torch.float16
    assert captured["config"].data.batch == 1
    assert "--batch-size 1" in captured["command"] and "--dtype float16" in captured["command"]
    with pytest.raises(_Captured):
        main(["mini", "headline", "--model", "random:tiny", "--quick", "--out", str(tmp_path)])
    assert captured["config"].data.batch == HeadlineConfig.quick().data.batch
    assert "--dtype" not in captured["command"] and "--batch-size" not in captured["command"]


@pytest.mark.parametrize("verb", [["demo"], ["mini", "headline"]])
def test_bad_values_stop_before_the_model_loads(
    verb: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import musicrfm.models as models

    def no_load(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_model", no_load)
    assert main([*verb, "--model", "random:tiny", "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([*verb, "--dtype", "int8"])
    assert "use one of float32, bfloat16, float16" in capsys.readouterr().err
    if verb == ["demo"]:
        assert main(["demo", "--target", "H", "--model", "random:tiny"]) == 2
        assert main(["demo", "--controls", "nope", "--model", "random:tiny"]) == 2
        assert "unknown control" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_generates_on_cpu(dtype: str) -> None:
    """Half precision is allowed on CPU: torch runs MusicGen's generation in it here."""
    from musicrfm.models import load_model
    from musicrfm.steering import generate

    torch.set_num_threads(1)
    model = load_model("random:tiny", dtype=dtype)
    (clip,) = generate(model, "a tone", seconds=0.2, seed=0)
    assert clip.meta["model"]["dtype"] == dtype
    assert clip.audio.dtype == np.float32 and clip.audio.size > 0
    assert np.isfinite(clip.audio).all()


def test_the_bundled_codec_encodes_in_bfloat16() -> None:
    """The demo's default model at --dtype bfloat16: its codec's residual k-means quantises in
    float32 (bf16 centroids against float32 features used to be a dtype error)."""
    from pathlib import Path

    from musicrfm.models import load_model

    if not (Path(__file__).resolve().parents[2] / "models/musicgen-mini/config.json").is_file():
        pytest.skip("models/musicgen-mini is not in this checkout")
    torch.set_num_threads(1)
    t = np.arange(16000) / 32000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    full, _ = load_model("mini", progress=False).encode_audio([wave])
    half_model = load_model("mini", dtype="bfloat16", progress=False)
    half, _ = half_model.encode_audio([wave])
    assert torch.equal(half[:, 0], full[:, 0])  # the pitch codebook: the same notes
    assert int(half.max()) < half_model.codebook_size
    assert np.isfinite(half_model.decode_codes(half)).all()
