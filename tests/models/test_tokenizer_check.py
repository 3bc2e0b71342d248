"""A checkpoint without a usable tokenizer is refused, in one line, before its weights load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from musicrfm.errors import ModelError
from musicrfm.models import MusicGenAdapter, load_model, random_model
from musicrfm.models.hub import place_in_hub_cache
from musicrfm.models.loader import TOKENIZER_PROBES, tokenizer_problem

T5_BASE_VOCAB = 32128  # musicgen-small/-medium/-large's text encoder (t5-base)
WORDS = [
    "a",
    "an",
    "the",
    "and",
    "of",
    "with",
    "low",
    "middle",
    "high",
    "register",
    "warm",
    "bright",
    "soft",
    "loud",
    "slow",
    "fast",
    "deep",
    "solo",
    "duet",
    "song",
    "tune",
    "beat",
    "bass",
    "lead",
    "pad",
    "synth",
    "organ",
    "violin",
    "flute",
    "choir",
    "trumpet",
    "clarinet",
    "marimba",
    "vibraphone",
]


def _word_tokenizer(words: list[str], *, first_id: int = 3):  # noqa: ANN202
    """A real word-level fast tokenizer over ``words`` (ids from ``first_id``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab.update({w: first_id + i for i, w in enumerate(dict.fromkeys(words))})
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


PROBE_WORDS = [w for p in TOKENIZER_PROBES for w in p.replace(",", " , ").split()]


@pytest.fixture(scope="module")
def t5_shaped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MusicGen whose text encoder has t5-base's vocabulary, saved without tokenizer
    files: what a user gets from a checkpoint folder that lacks them."""
    torch.set_num_threads(1)
    adapter = random_model("tiny", seed=0)
    adapter.model.text_encoder.resize_token_embeddings(T5_BASE_VOCAB, mean_resizing=False)
    folder = tmp_path_factory.mktemp("t5shaped") / "model"
    adapter.model.save_pretrained(folder)  # the model only: no tokenizer files
    assert not any("token" in p.name for p in folder.iterdir())
    assert json.loads((folder / "config.json").read_text())["text_encoder"]["vocab_size"] == (
        T5_BASE_VOCAB
    )
    return folder


def test_byte_level_and_real_vocabularies_pass() -> None:
    from transformers import ByT5Tokenizer

    assert tokenizer_problem(ByT5Tokenizer(), 384) is None
    assert tokenizer_problem(_word_tokenizer(WORDS + PROBE_WORDS), 384) is None


def test_each_kind_of_degenerate_tokenizer_is_named() -> None:
    # every probe word unknown: distinct prompts collapse onto the same ids
    assert "identical token ids" in tokenizer_problem(_word_tokenizer(WORDS), None)
    # distinct ids, but most words are <unk>
    few = _word_tokenizer(WORDS + ["piano", "guitar", "drums"])
    assert "unknown token '<unk>'" in tokenizer_problem(few, None)
    # almost no vocabulary beyond the special tokens
    assert "vocabulary has 8 tokens" in tokenizer_problem(_word_tokenizer(WORDS[:5]), None)
    # ids the text encoder has no embedding for
    high = _word_tokenizer(WORDS + PROBE_WORDS, first_id=400)
    assert tokenizer_problem(high, None) is None
    assert "the text encoder has 384 embeddings" in tokenizer_problem(high, 384)

    def broken(_text: str) -> dict:
        raise ValueError("no vocab file")

    assert "fails on the prompt" in tokenizer_problem(broken, None)


def test_a_folder_without_tokenizer_files_is_refused_in_one_line(t5_shaped: Path) -> None:
    from transformers import AutoTokenizer

    # what transformers alone gives this folder: 104 tokens, "piano" and "guitar" both <unk>
    degenerate = AutoTokenizer.from_pretrained(str(t5_shaped))
    ids = [degenerate(p)["input_ids"] for p in ("acoustic piano", "electric guitar")]
    assert len(degenerate) < 200 and ids[0] == ids[1]
    with pytest.raises(ModelError) as exc:
        load_model(str(t5_shaped))
    text = str(exc.value)
    assert "\n" not in text and "has no usable tokenizer" in text and str(t5_shaped) in text
    assert "save_pretrained" in text and "require_tokenizer=False" in text
    # opting out loads it for unconditional use; a prompt then fails with the same reason
    adapter = load_model(str(t5_shaped), require_tokenizer=False)
    assert adapter.tokenizer is None
    with pytest.raises(ModelError, match="no tokenizer available.*vocabulary has"):
        adapter.tokenize(["acoustic piano"])


def test_the_refusal_comes_before_the_weights_load(t5_shaped: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(t5_shaped, tmp_path / "damaged"))
    (folder / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="has no usable tokenizer"):
        load_model(str(folder))
    with pytest.raises(ModelError, match="cannot load the model in"):  # the weights, when asked
        load_model(str(folder), require_tokenizer=False)


def test_a_saved_word_tokenizer_makes_the_folder_usable(t5_shaped: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(t5_shaped, tmp_path / "with-tokenizer"))
    _word_tokenizer(WORDS + PROBE_WORDS).save_pretrained(folder)
    adapter = load_model(str(folder))
    a, b = adapter.tokenize(["acoustic piano", "electric guitar"])["input_ids"].tolist()
    assert a != b and 2 not in a + b


def test_a_hub_id_without_tokenizer_is_refused_offline(
    t5_shaped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    place_in_hub_cache(t5_shaped, "facebook/musicgen-small", cache_dir=cache)
    for name in ("facebook/musicgen-small", "musicgen-small"):
        with pytest.raises(ModelError, match="facebook/musicgen-small has no usable tokenizer"):
            load_model(name)


def test_a_byte_level_text_encoder_needs_no_tokenizer_files(tmp_path: Path) -> None:
    """A ByT5-shaped text encoder (vocab 384, as the random and bundled models have) gets the
    byte-level tokenizer even without files, and it passes the check."""
    folder = random_model("tiny", seed=0).save_pretrained(tmp_path / "tiny")
    for f in folder.iterdir():
        if "token" in f.name:
            f.unlink()
    adapter = load_model(str(folder))
    assert type(adapter.tokenizer).__name__ == "ByT5Tokenizer"
    assert tokenizer_problem(adapter.tokenizer, 384) is None


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["musicgen-mini", "musicgen-mini-poly"])
def test_the_bundled_models_tokenizers_pass(name: str) -> None:
    if not (REPO / "models" / name / "config.json").is_file():
        pytest.skip(f"models/{name} is not in this checkout")
    adapter: MusicGenAdapter = load_model(name, progress=False)
    vocab = adapter.model.config.text_encoder.vocab_size
    assert tokenizer_problem(adapter.tokenizer, vocab) is None
