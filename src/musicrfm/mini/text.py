"""The mini model's text side: a byte-level tokenizer (no download) and a tiny T5 encoder."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoderSize:
    """Size of the tiny T5 encoder (defaults: ~0.3M parameters)."""

    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 256
    d_kv: int = 32
    dropout: float = 0.1


def build_tokenizer():
    """`ByT5Tokenizer` built in code: bytes are the vocabulary, so nothing is downloaded."""
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer(extra_ids=0)


def build_text_encoder(vocab_size: int, size: TextEncoderSize | None = None, seed: int = 0):
    """A randomly initialised `T5EncoderModel` (seeded) for a byte vocabulary of ``vocab_size``."""
    import torch
    from transformers import T5Config, T5EncoderModel

    size = size or TextEncoderSize()
    config = T5Config(
        vocab_size=vocab_size,
        d_model=size.d_model,
        d_kv=size.d_kv,
        d_ff=size.d_ff,
        num_layers=size.num_layers,
        num_decoder_layers=0,
        num_heads=size.num_heads,
        dropout_rate=size.dropout,
        feed_forward_proj="relu",
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
        tie_word_embeddings=False,
        attn_implementation="sdpa",  # as from_pretrained would set it
    )
    torch.manual_seed(seed)
    return T5EncoderModel(config)
