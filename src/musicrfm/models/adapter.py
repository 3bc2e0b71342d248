"""What capture and steering need from a model: the `ModelAdapter` Protocol, and helpers.

A model family joins MusicRFM by implementing `ModelAdapter` (``musicgen.MusicGenAdapter`` is
the one there is) and adding its loading to :mod:`musicrfm.models.loader`. Capture, steering and
generation talk to the Protocol only, never to ``transformers`` internals.

Position convention (used by feature capture and steering alike)
-----------------------------------------------------------------
The decoder sees the codes as ``generate`` lays them out: position 0 is the BOS step, and
codebook ``k`` of frame ``t`` sits at position ``t + delay[k] + 1`` (``delay[k] = k`` for mono
models). Generation step ``i`` feeds position ``i``; the hidden state of every decoder block at
position ``i`` is what generation computes at step ``i``. Frame ``t`` is *entered* at position
``t + 1`` (its first codebook), so the frame mask of a clip with ``T`` frames selects positions
``1..T``: the BOS position (identical for every clip) and the ``max_delay`` tail positions (which
only carry leftovers of the last frames) are excluded from pooling.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from musicrfm.errors import ConfigError, ModelError

POSITION_CONVENTION = "frame_t_at_position_t+1_bos_at_0_delay_tail_excluded"
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


class DecoderInputs(NamedTuple):
    """Decoder inputs laid out as in generation.

    input_ids: (B * K, S) long, the shape MusicGen's decoder takes.
    attention_mask: (B, S) long, 1 on each clip's own layout (positions ``0 .. T_b + max_delay``),
        0 on batch padding. Causal attention makes right padding harmless, so it may be omitted.
    frame_mask: (B, S) bool, True at positions ``1 .. T_b`` (see the module docstring).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    frame_mask: torch.Tensor


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32" | "fp16" | "bf16" | torch.dtype`` -> torch.dtype (ConfigError otherwise)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ConfigError(f"unsupported dtype {dtype}; use float32, float16 or bfloat16")
        return dtype
    key = str(dtype).lower().replace("torch.", "")
    if key not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16")
    return _DTYPES[key]


def resolve_device(device: str | torch.device) -> torch.device:
    """Check that the device exists here; "cuda" without a GPU is a ModelError, not a crash."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {device!r} asked for, but CUDA is not available here; use --device cpu"
        )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ModelError(
            f"device {device!r} asked for, but MPS is not available here; use --device cpu"
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ModelError(f"unsupported device {device!r}; use cpu, cuda or mps")
    return dev


def block_output(output: Any) -> torch.Tensor:
    """The hidden-state tensor of a decoder block's output.

    Recent ``transformers`` return a bare tensor from ``MusicgenDecoderLayer`` and a tuple
    ``(hidden, attn_weights)`` from ``MusicgenMelodyDecoderLayer``: ``output[0]`` on the bare
    tensor would silently take batch row 0, so never index a tensor.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"unexpected decoder block output of type {type(output).__name__}")


@runtime_checkable
class ModelAdapter(Protocol):
    """A loaded text-to-music decoder with a codec, as capture and steering see it.

    Layers are decoder blocks 0..L-1 from the bottom; block i's output is layer i everywhere.
    Who uses what: capture (:mod:`musicrfm.capture.extract`) encodes audio, lays the codes out
    (`decoder_input_from_codes`), conditions on a prompt, runs the bare decoder (`run_decoder`)
    and hooks `decoder_layers`; steering (:mod:`musicrfm.steering`) hooks `decoder_layers` and
    `decoder_base`, tokenises prompts, calls ``model.generate`` and converts seconds to steps
    with `frame_rate` and `max_delay`; both record `info()`. The codec round trip, `codec` and
    `local_path` serve evaluation (judges) and the mini model's gates.
    """

    model: nn.Module  # the transformers model (``generate``, ``generation_config``)
    model_id: str
    revision: str | None
    source: str  # "bundled", "local", "hub" or "random"
    local_path: Path | None  # the folder it was loaded from (None: hub or in memory)
    tokenizer: Any  # None when the model has none (text prompts then fail in `tokenize`)
    delays: list[int]

    @property
    def decoder_base(self) -> nn.Module: ...  # embeddings, blocks, final norm (no LM heads)

    @property
    def decoder_lm(self) -> nn.Module: ...  # the decoder with its LM heads: returns the logits

    @property
    def decoder_layers(self) -> nn.ModuleList: ...

    @property
    def codec(self) -> nn.Module: ...  # EnCodec-style ``encode``/``decode``

    @property
    def num_layers(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    @property
    def num_codebooks(self) -> int: ...

    @property
    def max_delay(self) -> int: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def frame_rate(self) -> float: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def layer_index(self, index: int) -> int: ...

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]: ...

    def conditioning(self, prompt: str | None, batch_size: int) -> tuple[dict[str, Any], int]: ...

    def encode_audio(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode_codes(self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None) -> Any: ...

    def round_trip(
        self, clips: Sequence[tuple[np.ndarray, int]], *, batch: int = 16
    ) -> list[np.ndarray]: ...

    def decoder_input_from_codes(
        self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None
    ) -> DecoderInputs: ...

    def run_decoder(
        self,
        input_ids: torch.Tensor,
        *,
        prompt: str | None = "",
        attention_mask: torch.Tensor | None = None,
    ) -> int: ...

    def fingerprint(self) -> str: ...

    def info(self) -> dict[str, Any]: ...
