"""The mini model: a tiny T5 text encoder and a `MusicgenForCausalLM` decoder around the codec,
and the training loss on the delay pattern `generate` uses."""

from __future__ import annotations

from musicrfm.mini.config import TrainConfig


def build_model(cfg: TrainConfig, codec, tokenizer):
    """A fresh `MusicgenForConditionalGeneration` (seeded) around ``codec``."""
    import torch
    from transformers import (
        GenerationConfig,
        MusicgenDecoderConfig,
        MusicgenForCausalLM,
        MusicgenForConditionalGeneration,
    )

    from musicrfm.mini.text import build_text_encoder

    k, vocab = codec.config.num_codebooks, codec.config.codebook_size
    text = build_text_encoder(len(tokenizer), seed=cfg.seed)
    dec_cfg = MusicgenDecoderConfig(
        vocab_size=vocab,
        max_position_embeddings=1024,
        num_hidden_layers=cfg.num_layers,
        ffn_dim=cfg.ffn_dim,
        num_attention_heads=cfg.num_heads,
        hidden_size=cfg.hidden_size,
        dropout=cfg.dropout,
        num_codebooks=k,
        audio_channels=1,
        pad_token_id=vocab,
        bos_token_id=vocab,
        decoder_start_token_id=vocab,
        is_decoder=True,
        add_cross_attention=True,
        activation_function="gelu",
    )
    torch.manual_seed(cfg.seed + 1)
    decoder = MusicgenForCausalLM(dec_cfg)
    model = MusicgenForConditionalGeneration(
        text_encoder=text, audio_encoder=codec, decoder=decoder
    )
    # Composing the model replaces the sub-models' configs with copies that carry no attention
    # implementation; in transformers 5 the decoder's self-attention then ignores the causal
    # mask and training sees future codes. Set it again, as from_pretrained does.
    model.decoder.set_attn_implementation("sdpa")
    model.text_encoder.set_attn_implementation("sdpa")
    model.generation_config = GenerationConfig(
        do_sample=True,
        guidance_scale=cfg.guidance_scale,
        top_k=cfg.top_k,
        temperature=cfg.temperature,
        max_new_tokens=cfg.frames + k - 1,
        decoder_start_token_id=vocab,
        pad_token_id=vocab,
        bos_token_id=vocab,
    )
    model.config.decoder_start_token_id = vocab
    model.config.pad_token_id = vocab
    return model


def delayed_sequences(codes, pad: int):
    """(B, K, T) codes -> (B, K, T + K) in generation's layout: BOS, then codebook k delayed by k."""
    import torch

    b, k, t = codes.shape
    seq = torch.full((b, k, t + k), pad, dtype=torch.long)
    for i in range(k):
        seq[:, i, i + 1 : i + 1 + t] = codes[:, i]
    return seq


def batch_loss(model, text_ids, text_mask, codes, pad: int):
    """Mean cross-entropy over the non-pad targets of the delayed layout."""
    import torch.nn.functional as F

    seq = delayed_sequences(codes, pad)
    inp, tgt = seq[..., :-1], seq[..., 1:]
    b, k, t = inp.shape
    out = model(
        input_ids=text_ids,
        attention_mask=text_mask,
        decoder_input_ids=inp.reshape(b * k, t),
    )
    logits = out.logits.reshape(b, k, t, -1)
    tgt = tgt.masked_fill(tgt == pad, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
