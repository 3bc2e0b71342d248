"""Model loading and the adapter: random models, local folders, hub errors, Melody, code layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError, ModelError
from musicrfm.models import MusicGenAdapter, block_output, load_model, random_model
from musicrfm.models import loader as models
from musicrfm.models import random as random_models


@pytest.fixture(scope="module")
def tiny() -> MusicGenAdapter:
    torch.set_num_threads(1)
    return random_model("tiny", seed=0)


def _tones(sr: int, specs: list[tuple[float, float]]) -> list[np.ndarray]:
    out = []
    for freq, seconds in specs:
        t = np.arange(int(seconds * sr)) / sr
        out.append((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    return out


def test_tiny_random_model_shape(tiny: MusicGenAdapter) -> None:
    assert tiny.model_id == "random:tiny:seed0"
    assert (tiny.num_layers, tiny.hidden_size, tiny.num_codebooks) == (4, 64, 4)
    assert len(tiny.decoder_layers) == 4
    assert tiny.sample_rate == 32000 and tiny.frame_rate == 50
    assert tiny.bos_token_id == tiny.pad_token_id == 64 == tiny.codebook_size
    assert tiny.delays == [0, 1, 2, 3]
    assert not tiny.model.training
    info = tiny.info()
    for key in ("model_id", "revision", "num_layers", "hidden_size", "fingerprint", "delays"):
        assert key in info
    assert info["layer_convention"] == "decoder_block_output_0_based"


def test_same_seed_same_weights_other_seed_other_weights(tiny: MusicGenAdapter) -> None:
    again = random_model("tiny", seed=0)
    other = random_model("tiny", seed=1)
    assert again.fingerprint() == tiny.fingerprint()
    assert other.fingerprint() != tiny.fingerprint()
    w0 = tiny.decoder_layers[0].fc1.weight
    assert torch.equal(again.decoder_layers[0].fc1.weight, w0)
    assert not torch.equal(other.decoder_layers[0].fc1.weight, w0)
    # building a model leaves the global RNG alone
    torch.manual_seed(123)
    a = torch.rand(3)
    torch.manual_seed(123)
    random_model("tiny", seed=5)
    assert torch.equal(torch.rand(3), a)


def test_load_model_random_spec() -> None:
    adapter = load_model("random:tiny:seed3")
    assert adapter.model_id == "random:tiny:seed3"
    assert adapter.fingerprint() == random_model("tiny", seed=3).fingerprint()
    with pytest.raises(ConfigError, match="unknown random model size"):
        load_model("random:huge")
    with pytest.raises(ConfigError):
        load_model("random:tiny:sd3")


def test_small_shapes_without_building() -> None:
    spec = random_models.SIZES["small"]["decoder"]
    assert (spec["num_hidden_layers"], spec["hidden_size"], spec["num_attention_heads"]) == (
        24,
        1024,
        16,
    )
    assert (spec["num_codebooks"], spec["vocab_size"], spec["ffn_dim"]) == (4, 2048, 4096)


def test_dtype_and_device_errors() -> None:
    assert models.resolve_dtype("bf16") is torch.bfloat16
    assert models.resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ConfigError, match="unknown dtype"):
        models.resolve_dtype("int8")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            load_model("random:tiny", device="cuda")


def test_encode_audio_codes_and_batch_independence(tiny: MusicGenAdapter) -> None:
    waves = _tones(tiny.sample_rate, [(440, 1.0), (220, 0.5), (330, 1.0)])
    codes, mask = tiny.encode_audio(waves)
    assert codes.shape == (3, 4, 50) and codes.dtype == torch.long
    assert mask.sum(-1).tolist() == [50, 25, 50]
    assert (codes[1, :, 25:] == tiny.pad_token_id).all()
    assert int(codes[mask.unsqueeze(1).expand_as(codes)].max()) < tiny.codebook_size
    # a clip's codes do not depend on what it is batched with
    alone, _ = tiny.encode_audio([waves[1]])
    assert torch.equal(alone[0], codes[1, :, :25])
    # codes depend on the audio
    assert not torch.equal(codes[0], codes[2])
    audio = tiny.decode_codes(codes[:1])
    assert audio.shape == (1, 32000) and audio.dtype == np.float32
    trimmed = tiny.decode_codes(codes, mask)
    assert [len(a) for a in trimmed] == [32000, 16000, 32000]


def test_decoder_input_layout_by_hand(tiny: MusicGenAdapter) -> None:
    b = tiny.bos_token_id
    codes = torch.arange(2 * 4 * 3).reshape(2, 4, 3)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    ids, attn, frames = tiny.decoder_input_from_codes(codes, mask)
    assert ids.shape == (8, 3 + 3 + 1)
    ids = ids.view(2, 4, 7)
    # clip 0: codebook k of frame t at position t + k + 1, BOS elsewhere (as generate lays it out)
    expected0 = torch.full((4, 7), b)
    for k in range(4):
        expected0[k, k + 1 : k + 4] = codes[0, k]
    assert torch.equal(ids[0], expected0)
    # clip 1 has one frame: its own layout is positions 0..4, then batch padding
    expected1 = torch.full((4, 7), b)
    for k in range(4):
        expected1[k, k + 1] = codes[1, k, 0]
    expected1[:, 5:] = tiny.pad_token_id
    assert torch.equal(ids[1], expected1)
    assert attn.tolist() == [[1] * 7, [1] * 5 + [0, 0]]
    assert frames.tolist() == [
        [False, True, True, True, False, False, False],
        [False, True] + [False] * 5,
    ]
    with pytest.raises(ConfigError, match="right padding"):
        tiny.decoder_input_from_codes(
            codes, torch.tensor([[True, False, True], [True, True, True]])
        )
    with pytest.raises(ConfigError, match="codes must be"):
        tiny.decoder_input_from_codes(codes[:, :3])


def test_block_output_never_indexes_a_tensor() -> None:
    h = torch.randn(3, 5, 8)
    assert block_output(h) is h  # a bare tensor: NOT h[0] (batch row 0)
    assert block_output((h, None)) is h
    with pytest.raises(ModelError):
        block_output(None)


def test_hub_id_offline_gives_actionable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as exc:
        load_model("facebook/musicgen-small")
    text = str(exc.value)
    assert "local folder" in text and "cache" in text and "facebook/musicgen-small" in text


def test_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model folder"):
        load_model(str(tmp_path / "nothing-here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path / "empty"))


def test_save_pretrained_then_load_local_dir(tiny: MusicGenAdapter, tmp_path: Path) -> None:
    folder = tiny.save_pretrained(tmp_path / "tiny-model")
    loaded = load_model(str(folder))
    assert loaded.model_id == str(folder.resolve()) and loaded.source == "local"
    assert loaded.fingerprint() == tiny.fingerprint()
    assert loaded.tokenizer is not None
    assert (
        loaded.tokenize(["hi"])["input_ids"].tolist() == tiny.tokenize(["hi"])["input_ids"].tolist()
    )
    waves = _tones(tiny.sample_rate, [(440, 0.4)])
    assert torch.equal(loaded.encode_audio(waves)[0], tiny.encode_audio(waves)[0])
    ids = tiny.decoder_input_from_codes(tiny.encode_audio(waves)[0]).input_ids
    outs = []
    for adapter in (tiny, loaded):
        seen: list[torch.Tensor] = []
        h = adapter.decoder_layers[-1].register_forward_hook(
            lambda _m, _i, o, seen=seen: seen.append(block_output(o))
        )
        adapter.run_decoder(ids)
        h.remove()
        outs.append(seen[0])
    torch.testing.assert_close(outs[0], outs[1])


def test_bundled_model_missing_then_found(
    tiny: MusicGenAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        models, "bundled_model_dirs", lambda folder="musicgen-mini": [tmp_path / "nope"]
    )
    with pytest.raises(ModelError, match="musicgen-mini is not available"):
        load_model("mini")
    with pytest.raises(ModelError, match="musicgen-mini"):
        load_model(None)
    tiny.save_pretrained(tmp_path / "mini")
    monkeypatch.setattr(
        models, "bundled_model_dirs", lambda folder="musicgen-mini": [tmp_path / "mini"]
    )
    adapter = load_model("default")
    assert adapter.model_id == "musicgen-mini" and adapter.source == "bundled"


def test_melody_class_through_the_same_adapter(tmp_path: Path) -> None:
    mel = random_model("tiny-melody", seed=0)
    assert mel.is_melody and type(mel.model).__name__ == "MusicgenMelodyForConditionalGeneration"
    assert mel.model_id == "random:tiny-melody:seed0"
    assert mel.num_layers == 4 and len(mel.decoder_layers) == 4
    # a Melody block returns a tuple; the adapter's helper takes the hidden state
    seen: list[object] = []
    h = mel.decoder_layers[0].register_forward_hook(lambda _m, _i, o: seen.append(o))
    codes, mask = mel.encode_audio(_tones(mel.sample_rate, [(440, 0.3)]))
    ids = mel.decoder_input_from_codes(codes, mask).input_ids
    prefix = mel.run_decoder(ids, prompt="")
    h.remove()
    assert isinstance(seen[0], tuple)
    hidden = block_output(seen[0])
    assert prefix == mel.model.config.chroma_length + 1  # null chroma + the empty prompt's </s>
    assert hidden.shape == (1, prefix + ids.shape[1], mel.hidden_size)
    assert mel.run_decoder(ids, prompt=None) == 0  # unconditional: no prefix
    loaded = load_model(str(mel.save_pretrained(tmp_path / "mel")))
    assert loaded.is_melody and loaded.fingerprint() == mel.fingerprint()


# --------------------------------------------------------------------------- names and the bundled model
REPO = Path(__file__).resolve().parents[2]
BUNDLED_DIR = REPO / "models" / "musicgen-mini"
needs_bundled = pytest.mark.skipif(
    not (BUNDLED_DIR / "config.json").is_file(),
    reason="models/musicgen-mini is not in this checkout",
)


def test_resolve_name_maps_every_alias() -> None:
    from musicrfm.models import BUNDLED_NAMES, resolve_name
    from musicrfm.models.loader import HUB_NAMES

    for name in (*BUNDLED_NAMES, None, "", "  mini "):
        assert resolve_name(name) == "mini"
    assert resolve_name("musicgen-small") == "facebook/musicgen-small"
    for short, hub_id in HUB_NAMES.items():
        assert resolve_name(short) == hub_id and hub_id.startswith("facebook/")
    for other in ("facebook/musicgen-small", "random:tiny", "/some/folder", "user/fine-tune"):
        assert resolve_name(other) == other


@needs_bundled
@pytest.mark.parametrize("name", [*models.BUNDLED_NAMES, None])
def test_every_bundled_name_loads_the_bundled_model(name: str | None) -> None:
    adapter = load_model(name)
    assert adapter.model_id == models.BUNDLED_MODEL_NAME == "musicgen-mini"
    assert adapter.source == "bundled"
    assert adapter.local_path == BUNDLED_DIR.resolve()
    assert adapter.tokenizer is not None
    assert type(adapter.model).__name__ == "MusicgenForConditionalGeneration"


def test_missing_bundled_model_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        models, "bundled_model_dirs", lambda folder="musicgen-mini": [tmp_path / "nope"]
    )
    with pytest.raises(ModelError) as exc:
        load_model("musicgen-mini")
    text = str(exc.value)
    assert "musicrfm mini train" in text and "MUSICRFM_MINI_MODEL" in text
    assert str(tmp_path / "nope") in text and "--model" in text


def test_a_loaded_adapter_passes_through(tiny: MusicGenAdapter) -> None:
    from musicrfm.models import ModelAdapter

    assert isinstance(tiny, ModelAdapter)
    assert load_model(tiny) is tiny
    assert load_model(tiny, device="cpu", dtype="bf16") is tiny  # options ignored: already loaded
    with pytest.raises(ConfigError, match="cannot load a model from a int"):
        load_model(3)  # type: ignore[arg-type]


def test_protocol_lists_what_capture_and_steering_use() -> None:
    """Every ``adapter.<name>`` that capture and steering read is part of `ModelAdapter`."""
    import re

    import musicrfm
    from musicrfm.models import ModelAdapter

    src = Path(musicrfm.__file__).resolve().parent
    used: set[str] = set()
    for pkg in ("capture", "steering"):
        for path in (src / pkg).rglob("*.py"):
            # `adapter.x` / `view.adapter.x`, not the module path `models.adapter.ModelAdapter`
            used |= set(re.findall(r"(?<![\w])(?<!models\.)adapter\.([a-z_]\w*)", path.read_text()))
            used |= set(re.findall(r"getattr\(view\.adapter, \"(\w+)\"", path.read_text()))
    members = set(dir(ModelAdapter)) | set(ModelAdapter.__annotations__)
    assert used and used <= members, f"missing from ModelAdapter: {sorted(used - members)}"


@needs_bundled
def test_importing_musicrfm_models_lets_stock_from_pretrained_load_the_bundled_model() -> None:
    """In fresh interpreters: stock from_pretrained fails on the bundled folder until
    ``import musicrfm.models`` has registered the codecs (so it is the import that does it)."""
    import subprocess
    import sys

    load = (
        "from transformers import MusicgenForConditionalGeneration as M\n"
        f"m = M.from_pretrained({str(BUNDLED_DIR)!r})\n"
        "print('codec', type(m.audio_encoder).__name__)\n"
    )
    without = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, timeout=300
    )
    assert without.returncode != 0 and "musicrfm_" in without.stderr
    with_import = subprocess.run(
        [sys.executable, "-c", "import musicrfm.models\n" + load],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert with_import.returncode == 0, with_import.stderr[-2000:]
    assert "codec HarmonicCodecModel" in with_import.stdout


def test_register_codecs_is_idempotent() -> None:
    from transformers import AutoConfig, AutoModel

    from musicrfm.models import register_codecs
    from musicrfm.models.codecs.harmonic import HARMONIC_MODEL_TYPE, HarmonicCodecModel
    from musicrfm.models.codecs.spectral import MODEL_TYPE, SpectralCodecModel

    for _ in range(3):
        register_codecs()
    for model_type, cls in (
        (MODEL_TYPE, SpectralCodecModel),
        (HARMONIC_MODEL_TYPE, HarmonicCodecModel),
    ):
        config = AutoConfig.for_model(model_type)
        assert type(AutoModel.from_config(config)) is cls


def test_the_polyphonic_testbed_has_its_own_bundled_name(tmp_path, monkeypatch) -> None:
    """`mini-poly` / `musicgen-mini-poly` name the second bundled model; when its folder is
    missing the error says how to train it (the default model's env override does not apply)."""
    import pytest

    from musicrfm.errors import ModelError
    from musicrfm.models import (
        POLY_MODEL_NAME,
        bundled_model_dirs,
        load_model,
        loader,
        resolve_name,
    )

    assert resolve_name("mini-poly") == resolve_name(POLY_MODEL_NAME) == "mini-poly"
    monkeypatch.setenv("MUSICRFM_MINI_MODEL", str(tmp_path))
    assert all(d.name == POLY_MODEL_NAME for d in bundled_model_dirs(POLY_MODEL_NAME))
    monkeypatch.setattr(loader, "bundled_model_dirs", lambda folder: [tmp_path / folder])
    with pytest.raises(ModelError, match="--data strikes --codec polyphonic"):
        load_model("mini-poly")


# ----------------------------------------------------------------------------- issue 22
@pytest.mark.parametrize("device", ["tpu", "foo", "cuda:x", "cuda:99"])
def test_a_device_that_is_not_here_is_one_model_error(device: str) -> None:
    with pytest.raises(ModelError, match=repr(device)):
        models.check_device(device)
    with pytest.raises(ModelError, match=repr(device)):
        load_model("random:tiny", device=device)
    assert models.check_device("cpu") == torch.device("cpu")


def test_pickle_weights_are_refused_unless_the_user_opts_in(
    tiny: MusicGenAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder holding only pytorch_model.bin: loading it would unpickle (run code)."""
    folder = tiny.save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    monkeypatch.delenv(models.PICKLE_ENV, raising=False)
    with pytest.raises(ModelError, match="only pickle weights \\(pytorch_model.bin\\).*save_pretr"):
        load_model(str(folder))
    assert models.pickle_allowed() is False
    monkeypatch.setenv(models.PICKLE_ENV, "1")
    assert models.pickle_allowed() is True
    with pytest.raises(ModelError, match="cannot load the model in"):  # opted in: torch tries
        load_model(str(folder))


def test_quiet_loads_restore_transformers_settings() -> None:
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    with models._quiet_transformers(warnings=False, progress=False):
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert not hf_logging.is_progress_bar_enabled()
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == (verbosity, bar)


def test_the_bundled_model_loads_without_config_warnings_or_a_bar(capfd) -> None:
    load_model("mini", progress=False)
    err = capfd.readouterr().err
    assert "Model config" not in err and "Loading weights" not in err


def test_the_beat_testbed_has_its_own_bundled_name(tmp_path, monkeypatch) -> None:
    """`mini-beat` / `musicgen-mini-beat` name the third bundled model; a missing folder says
    how to train it."""
    from musicrfm.errors import ModelError
    from musicrfm.models import BEAT_MODEL_NAME, load_model, loader, resolve_name

    assert resolve_name("mini-beat") == resolve_name(BEAT_MODEL_NAME) == "mini-beat"
    monkeypatch.setattr(loader, "bundled_model_dirs", lambda folder: [tmp_path / folder])
    with pytest.raises(ModelError, match="--codec polyphonic_onsets"):
        load_model("mini-beat")


@needs_bundled
def test_a_bundled_folder_given_by_path_is_the_bundled_model(tmp_path) -> None:
    """`--model models/musicgen-mini` and `--model mini` are one model (one model_id), so
    directions made with either spelling fit the other, in any checkout; a copy elsewhere is a
    local model of its own."""
    import shutil

    by_path = load_model(str(BUNDLED_DIR))
    assert by_path.model_id == load_model("mini").model_id == "musicgen-mini"
    assert by_path.source == "bundled"
    copy = tmp_path / "my-mini"
    shutil.copytree(BUNDLED_DIR, copy)
    other = load_model(str(copy))
    assert other.model_id == str(copy.resolve()) and other.source == "local"
