"""One decoder pass over a batch of codes, every block's output pooled on the fly.

Codes are laid out as in generation (BOS step + codebook delay pattern) and run through ONE
forward of the bare decoder (no LM heads, no KV cache, no ``output_hidden_states``) with forward
hooks on every decoder block that pool each block's output over the clip's valid positions. Only
the pooled (L, B, d) result (and, with ``keep_frames``, the valid per-frame rows) leaves the hooks.

Which positions are pooled (see :mod:`musicrfm.models.adapter`): for a clip with ``T`` codec frames,
positions ``1..T`` -- position ``t + 1`` is the generation step at which frame ``t`` enters
(its first codebook). Position 0 (BOS, the same for every clip) and the ``max_delay`` tail
positions are left out; padding from shorter clips in the batch never reaches them because
attention is causal. The decoder is only run up to position ``T_max``: later positions would not
be pooled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from musicrfm.capture.options import POOLINGS
from musicrfm.errors import ConfigError
from musicrfm.models import MusicGenAdapter, block_output

LAYER_CONVENTION = "decoder_block_output_0_based"
CAPTURE_VERSION = 1  # bump when what is computed changes: invalidates old caches


@contextlib.contextmanager
def block_hooks(
    adapter: MusicGenAdapter, fn: Callable[[int, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``fn(layer, hidden)`` with every decoder block's output tensor while active."""
    handles = [
        layer.register_forward_hook(lambda _m, _i, out, idx=idx: fn(idx, block_output(out)))
        for idx, layer in enumerate(adapter.decoder_layers)
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class BatchFeatures:
    pooled: torch.Tensor  # (L, B, d) float32, CPU
    lengths: list[int]  # valid frames per clip
    frames: torch.Tensor | None = None  # (L, sum(lengths), d) float32, CPU
    extra: dict[str, Any] = field(default_factory=dict)


@torch.inference_mode()
def capture_codes(
    adapter: MusicGenAdapter,
    codes: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    *,
    pooling: str = "mean",
    prompt: str | None = "",
    keep_frames: bool = False,
) -> BatchFeatures:
    """One decoder forward over a batch of codes (B, K, T); pooled block outputs (L, B, d)."""
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    inputs = adapter.decoder_input_from_codes(codes, frame_mask)
    pos_mask = inputs.frame_mask
    lengths = pos_mask.sum(-1)
    if int(lengths.min()) < 1:
        raise ConfigError("every clip needs at least one valid frame")
    run_len = int(lengths.max()) + 1  # positions 0..T_max; later ones are never pooled
    b = pos_mask.shape[0]
    k = adapter.num_codebooks
    ids = inputs.input_ids.view(b, k, -1)[:, :, :run_len].reshape(b * k, run_len)
    pos_mask = pos_mask[:, :run_len].to(adapter.device)
    lengths = lengths.to(adapter.device)
    _, prefix = adapter.conditioning(prompt, b)
    weights = pos_mask.float() / lengths[:, None].float()
    rows = torch.arange(b, device=adapter.device)
    pooled = torch.empty(adapter.num_layers, b, adapter.hidden_size, dtype=torch.float32)
    frames: list[torch.Tensor] | None = [] if keep_frames else None

    def on_block(layer: int, hidden: torch.Tensor) -> None:
        h = hidden[:, prefix : prefix + run_len]
        if pooling == "mean":
            hf = h if h.dtype == torch.float32 else h.float()
            out = torch.einsum("bsd,bs->bd", hf, weights)
        elif pooling == "last":
            out = h[rows, lengths].float()
        else:
            out = h.masked_fill(~pos_mask[..., None], float("-inf")).amax(dim=1).float()
        pooled[layer] = out.cpu()
        if frames is not None:
            frames.append(h[pos_mask].float().cpu())  # (sum lengths, d), clip-major

    with block_hooks(adapter, on_block):
        adapter.run_decoder(ids, prompt=prompt)
    stacked = torch.stack(frames) if frames else None
    return BatchFeatures(pooled=pooled, lengths=[int(x) for x in lengths.tolist()], frames=stacked)


def pooled_reference(hidden: torch.Tensor, pos_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool one layer's (B, S, d) states over ``pos_mask`` (B, S): a plain reference for tests."""
    out = []
    for b in range(hidden.shape[0]):
        rows = hidden[b][pos_mask[b]]
        out.append(
            rows.mean(0) if pooling == "mean" else rows[-1] if pooling == "last" else rows.amax(0)
        )
    return torch.stack(out)
