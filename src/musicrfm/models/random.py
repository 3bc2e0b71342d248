"""Config-built MusicGen models with seeded random weights, for offline tests and benchmarks.

Use :func:`musicrfm.models.random_model`; this module holds the size presets and the builder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from musicrfm.errors import ConfigError
from musicrfm.models.adapter import resolve_device, resolve_dtype
from musicrfm.models.musicgen import MusicGenAdapter

SIZES: dict[str, dict[str, Any]] = {
    # a few blocks, hidden 64: builds in well under a second
    "tiny": {
        "decoder": {
            "num_hidden_layers": 4,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "ffn_dim": 128,
            "vocab_size": 64,
            "num_codebooks": 4,
            "max_position_embeddings": 512,
        },
        "codec": {
            "num_filters": 4,
            "hidden_size": 16,
            "num_lstm_layers": 1,
            "codebook_size": 64,
            "target_bandwidths": [1.2],  # 4 codebooks x 6 bits x 50 Hz
        },
        "text": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 4},
        "chroma_length": 8,
    },
    # exactly musicgen-small's decoder (and its 32 kHz EnCodec's shapes); smaller text encoder
    "small": {
        "decoder": {
            "num_hidden_layers": 24,
            "hidden_size": 1024,
            "num_attention_heads": 16,
            "ffn_dim": 4096,
            "vocab_size": 2048,
            "num_codebooks": 4,
            "max_position_embeddings": 2048,
        },
        "codec": {
            "num_filters": 64,
            "hidden_size": 128,
            "num_lstm_layers": 2,
            "codebook_size": 2048,
            "target_bandwidths": [2.2],  # 4 codebooks x 11 bits x 50 Hz
        },
        "text": {"d_model": 768, "d_kv": 64, "d_ff": 1024, "num_layers": 1, "num_heads": 12},
        "chroma_length": 235,
    },
}


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def build_random_model(
    size: str = "tiny",
    *,
    seed: int = 0,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    melody: bool = False,
    num_layers: int | None = None,
) -> MusicGenAdapter:
    """See :func:`musicrfm.models.random_model`."""
    from transformers import ByT5Tokenizer, EncodecConfig, T5Config

    base = size
    if size.endswith("-melody"):
        base, melody = size[: -len("-melody")], True
    if base not in SIZES:
        raise ConfigError(f"unknown random model size {size!r}; use one of {', '.join(SIZES)}")
    spec = SIZES[base]
    torch_dtype = resolve_dtype(dtype)
    dev = resolve_device(device)
    dec_kwargs = dict(spec["decoder"])
    if num_layers is not None:
        dec_kwargs["num_hidden_layers"] = int(num_layers)
    special = dec_kwargs["vocab_size"]
    dec_kwargs.update(pad_token_id=special, bos_token_id=special, dropout=0.0, audio_channels=1)
    codec_cfg = EncodecConfig(
        sampling_rate=32000,
        upsampling_ratios=[8, 5, 4, 4],
        audio_channels=1,
        normalize=False,
        use_causal_conv=False,
        chunk_length_s=None,
        **spec["codec"],
    )
    text_cfg = T5Config(
        vocab_size=384, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **spec["text"]
    )
    with _quiet_transformers(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build(text_cfg, codec_cfg, dec_kwargs, melody, spec["chroma_length"])
        model.config.decoder_start_token_id = special
        model.config.pad_token_id = special
        _calibrate_codebooks(model.audio_encoder, seed)
    gen = model.generation_config
    gen.decoder_start_token_id = special
    gen.bos_token_id = special
    gen.pad_token_id = special
    gen.do_sample = True
    gen.top_k = 250
    gen.max_length = 1500
    gen.guidance_scale = 3.0
    model = model.to(device=dev, dtype=torch_dtype).eval()
    suffix = "-melody" if melody else ""
    layers = f"-L{num_layers}" if num_layers is not None else ""
    return MusicGenAdapter(
        model,
        model_id=f"random:{base}{suffix}{layers}:seed{seed}",
        tokenizer=ByT5Tokenizer(),
        source="random",
    )


def _build(
    text_cfg: Any, codec_cfg: Any, dec_kwargs: dict[str, Any], melody: bool, chroma_length: int
) -> nn.Module:
    """The MusicGen (or MusicGen-Melody) of these configs, with freshly drawn weights."""
    from transformers import (
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
    )

    if melody:
        config = MusicgenMelodyConfig(
            text_encoder=text_cfg,
            audio_encoder=codec_cfg,
            decoder=MusicgenMelodyDecoderConfig(**dec_kwargs),
            num_chroma=12,
            chroma_length=chroma_length,
        )
        return MusicgenMelodyForConditionalGeneration(config)
    config = MusicgenConfig(
        text_encoder=text_cfg, audio_encoder=codec_cfg, decoder=MusicgenDecoderConfig(**dec_kwargs)
    )
    return MusicgenForConditionalGeneration(config)


@torch.no_grad()
def _calibrate_codebooks(codec: nn.Module, seed: int) -> None:
    """Give a random EnCodec usable codebooks (zeros by default: every code would be 0).

    Each residual quantizer's codebook is drawn from the residuals it sees on seeded calibration
    audio (tones + noise), plus a little noise: a one-pass k-means++-free initialisation that makes
    codes depend on the audio.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    sr = codec.config.sampling_rate
    t = torch.arange(sr // 2) / sr
    freqs = 55.0 * 2 ** (torch.rand(4, 1, generator=gen) * 6)
    audio = 0.5 * torch.sin(2 * torch.pi * freqs * t) + 0.05 * torch.randn(
        4, t.numel(), generator=gen
    )
    emb = codec.encoder(audio[:, None, :])  # (B, D, T)
    residual = emb.transpose(1, 2).reshape(-1, emb.shape[1])
    for layer in codec.quantizer.layers:
        book = layer.codebook
        n = book.embed.shape[0]
        pick = torch.randint(0, residual.shape[0], (n,), generator=gen)
        scale = residual.std().clamp_min(1e-6)
        book.embed.copy_(
            residual[pick] + 0.1 * scale * torch.randn(book.embed.shape, generator=gen)
        )
        book.embed_avg.copy_(book.embed)
        residual = residual - book.decode(book.encode(residual))
