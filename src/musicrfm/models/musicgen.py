"""MusicGen and MusicGen-Melody behind one thin adapter.

(Over 400 lines on purpose: it is one class, the only place that knows transformers' MusicGen
internals, and it reads best whole.)

Everything else in MusicRFM talks to :class:`MusicGenAdapter`, never to ``transformers``
internals. The adapter knows the decoder blocks (where probes read and steering hooks write),
the codec (always used through its EnCodec-style ``encode``/``decode`` methods), the text
encoder and the codebook delay pattern.

It implements :class:`musicrfm.models.adapter.ModelAdapter`; positions follow the convention
written there. Loading lives in :mod:`musicrfm.models.loader`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrfm.errors import ConfigError, ModelError
from musicrfm.models.adapter import POSITION_CONVENTION, DecoderInputs

log = logging.getLogger(__name__)


class MusicGenAdapter:
    """A loaded MusicGen (or MusicGen-Melody) model and what the rest of MusicRFM needs to know."""

    def __init__(
        self,
        model: nn.Module,
        *,
        model_id: str,
        revision: str | None = None,
        tokenizer: Any = None,
        tokenizer_error: str | None = None,
        source: str = "local",
        local_path: Path | None = None,
    ) -> None:
        from transformers import (
            MusicgenForConditionalGeneration,
            MusicgenMelodyForConditionalGeneration,
        )

        if not isinstance(
            model, (MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration)
        ):
            raise ModelError(
                f"{model_id}: expected a MusicGen or MusicGen-Melody text-to-music model, got "
                f"{type(model).__name__} (decoder-only checkpoints have no codec; load the full model)"
            )
        self.model = model.eval()
        self.model_id = model_id
        self.revision = revision
        self.tokenizer = tokenizer
        self._tokenizer_error = tokenizer_error
        self.source = source
        self.local_path = local_path  # the folder it was loaded from (None: hub or in memory)
        self.is_melody = isinstance(model, MusicgenMelodyForConditionalGeneration)
        self._conditioning_cache: dict[Any, tuple[dict[str, torch.Tensor], int]] = {}
        self._fingerprint: str | None = None
        dec_cfg = self.model.config.decoder
        self.audio_channels = int(getattr(dec_cfg, "audio_channels", 1))
        k = int(dec_cfg.num_codebooks)
        if self.audio_channels == 2:
            self.delays = [c // 2 for c in range(k)]
        else:
            self.delays = list(range(k))

    # ----------------------------------------------------------------- structure
    @property
    def decoder_base(self) -> nn.Module:
        """The bare transformer decoder (embeddings, blocks, final LayerNorm; no LM heads)."""
        return self.model.decoder.model.decoder

    @property
    def decoder_lm(self) -> nn.Module:
        """The decoder with its LM heads (one per codebook): what returns the logits."""
        return self.model.decoder

    @property
    def decoder_layers(self) -> nn.ModuleList:
        """Decoder blocks 0..L-1; block i's output is layer i everywhere in MusicRFM."""
        return self.decoder_base.layers

    @property
    def codec(self) -> nn.Module:
        return self.model.audio_encoder

    @property
    def num_layers(self) -> int:
        return len(self.decoder_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.decoder.hidden_size)

    @property
    def num_codebooks(self) -> int:
        return int(self.model.config.decoder.num_codebooks)

    @property
    def codebook_size(self) -> int:
        return int(self.model.config.decoder.vocab_size)

    @property
    def max_delay(self) -> int:
        return max(self.delays)

    @property
    def sample_rate(self) -> int:
        return int(self.codec.config.sampling_rate)

    @property
    def frame_rate(self) -> float:
        cfg = self.codec.config
        rate = getattr(cfg, "frame_rate", None)
        if rate is None:
            rate = cfg.sampling_rate / int(np.prod(cfg.upsampling_ratios))
        return float(rate)

    @property
    def bos_token_id(self) -> int:
        """The decoder start token (what ``generate`` puts at position 0 and in the delay gaps)."""
        return _bos_token_id(self.model, default=self.codebook_size)

    @property
    def pad_token_id(self) -> int:
        return _pad_token_id(self.model, default=self.codebook_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.decoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.decoder.parameters()).dtype

    def layer_index(self, index: int) -> int:
        """Convert a possibly negative layer index to 0-based, with a clear error."""
        n = self.num_layers
        if not -n <= int(index) < n:
            raise ConfigError(
                f"layer {index} out of range for a model with {n} layers (0..{n - 1})"
            )
        return int(index) % n

    # ----------------------------------------------------------------- text
    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise prompts for the text encoder (padded batch, on the model's device)."""
        if self.tokenizer is None:
            raise ModelError(
                f"{self.model_id}: no tokenizer available"
                + (f" ({self._tokenizer_error})" if self._tokenizer_error else "")
                + "; save one next to the model (tokenizer.save_pretrained) or use prompt=None"
            )
        enc = self.tokenizer(list(prompts), padding=True, return_tensors="pt")
        return {
            "input_ids": enc["input_ids"].to(self.device),
            "attention_mask": enc["attention_mask"].to(self.device),
        }

    @torch.inference_mode()
    def conditioning(self, prompt: str | None, batch_size: int) -> tuple[dict[str, Any], int]:
        """Decoder keyword arguments that condition on ``prompt``, and the prefix length.

        Mirrors what ``forward``/``generate`` do with a text prompt: text encoder, optional
        projection, masking. ``prompt=None`` is the null condition (what classifier-free guidance
        uses for its unconditional rows). For MusicGen-Melody the condition is a prefix of
        ``prefix_length`` positions (null chroma + text) prepended to the decoder sequence; for
        MusicGen it is cross-attention and the prefix length is 0.
        """
        key = (prompt,)
        if key not in self._conditioning_cache:
            self._conditioning_cache[key] = self._build_conditioning(prompt)
        kwargs, prefix = self._conditioning_cache[key]
        out = {
            name: value.expand(batch_size, *value.shape[1:]) if value is not None else None
            for name, value in kwargs.items()
        }
        return out, prefix

    def _build_conditioning(self, prompt: str | None) -> tuple[dict[str, Any], int]:
        model = self.model
        dec_hidden = self.hidden_size
        text_cfg = model.config.text_encoder
        if prompt is None:
            states = None
            mask = None
        else:
            tok = self.tokenize([prompt])
            mask = tok["attention_mask"]
            states = model.text_encoder(
                input_ids=tok["input_ids"], attention_mask=mask
            ).last_hidden_state
            if text_cfg.hidden_size != dec_hidden and hasattr(model, "enc_to_dec_proj"):
                states = model.enc_to_dec_proj(states)
            states = states * mask[..., None].to(states.dtype)
        if not self.is_melody:
            if states is None:  # null condition, as get_unconditional_inputs + forward produce
                states = torch.zeros(1, 1, dec_hidden, device=self.device, dtype=self.dtype)
                mask = torch.zeros(1, 1, dtype=torch.long, device=self.device)
            return {"encoder_hidden_states": states, "encoder_attention_mask": mask}, 0
        if states is None:  # unconditional melody generation has no prefix at all
            return {}, 0
        cfg = model.config
        chroma = torch.zeros(1, 1, cfg.num_chroma, device=self.device, dtype=self.dtype)
        chroma[:, :, 0] = 1
        if cfg.num_chroma != dec_hidden:
            chroma = model.audio_enc_to_dec_proj(chroma)
        chroma = chroma.repeat(1, cfg.chroma_length, 1)[:, : cfg.chroma_length]
        prefix = torch.cat([chroma, states], dim=1)
        return {"encoder_hidden_states": prefix}, int(prefix.shape[1])

    # ----------------------------------------------------------------- audio codes
    @torch.inference_mode()
    def encode_audio(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mono waveforms at ``sample_rate`` -> codes (B, K, T) long and frame mask (B, T) bool.

        Clips of equal length are encoded together; clips of different lengths are encoded in
        separate codec calls, so a clip's codes never depend on what it is batched with (the
        codec's convolutions and LSTM would otherwise see the zero padding). Shorter clips are
        right-padded with ``pad_token_id`` and masked.
        """
        if len(waves) == 0:
            raise ConfigError("encode_audio needs at least one waveform")
        arrays = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(arrays):
            if w.size == 0:
                raise ConfigError(f"waveform {i} is empty")
            groups.setdefault(w.size, []).append(i)
        codec_dtype = next(self.codec.parameters()).dtype
        per_clip: list[torch.Tensor | None] = [None] * len(arrays)
        for _, idx in groups.items():
            x = torch.from_numpy(np.stack([arrays[i] for i in idx]))[:, None, :]
            codes = self._codes_of(self.codec.encode(x.to(device=self.device, dtype=codec_dtype)))
            for j, i in enumerate(idx):
                per_clip[i] = codes[j]
        lengths = [int(c.shape[-1]) for c in per_clip]  # type: ignore[union-attr]
        t_max = max(lengths)
        codes_out = torch.full(
            (len(arrays), self.num_codebooks, t_max), self.pad_token_id, dtype=torch.long
        )
        mask = torch.zeros(len(arrays), t_max, dtype=torch.bool)
        for i, c in enumerate(per_clip):
            codes_out[i, :, : lengths[i]] = c.long().cpu()  # type: ignore[union-attr]
            mask[i, : lengths[i]] = True
        return codes_out.to(self.device), mask.to(self.device)

    def _codes_of(self, out: Any) -> torch.Tensor:
        """The (B, K, T) codes in a codec's ``encode`` output, checked against the decoder."""
        codes = out.audio_codes if hasattr(out, "audio_codes") else out[0]
        if codes.ndim == 4:
            if codes.shape[0] != 1:
                raise ModelError(
                    f"{self.model_id}: the codec returned {codes.shape[0]} chunks; MusicGen needs "
                    "an unchunked codec (chunk_length_s=None)"
                )
            codes = codes[0]
        if self.audio_channels == 2 and codes.shape[1] == self.num_codebooks // 2:
            codes = codes.repeat_interleave(2, dim=1)  # mono audio into a stereo model
        if codes.shape[1] != self.num_codebooks:
            raise ModelError(
                f"{self.model_id}: the codec gives {codes.shape[1]} codebooks but the decoder "
                f"expects {self.num_codebooks}"
            )
        return codes

    @torch.inference_mode()
    def decode_codes(self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None) -> Any:
        """Codes (B, K, T) -> float32 audio, (B, samples) for mono models, (B, 2, samples) stereo.

        With ``frame_mask`` the result is a list of per-clip arrays trimmed to their valid frames.
        """
        codes = torch.as_tensor(codes).to(self.device).long()
        if codes.ndim == 2:
            codes = codes[None]
        if frame_mask is not None:  # padded frames may hold pad ids the codec does not know
            valid = torch.as_tensor(frame_mask, device=codes.device).bool()[:, None, :]
            codes = torch.where(valid, codes, torch.zeros_like(codes))

        def _dec(c: torch.Tensor) -> torch.Tensor:
            out = self.codec.decode(c[None], [None])
            values = out.audio_values if hasattr(out, "audio_values") else out[0]
            return values.float()

        if self.audio_channels == 2:
            audio = torch.stack([_dec(codes[:, ::2])[:, 0], _dec(codes[:, 1::2])[:, 0]], dim=1)
        else:
            audio = _dec(codes)[:, 0]
        audio_np = audio.cpu().numpy()
        if frame_mask is None:
            return audio_np
        hop = self.sample_rate / self.frame_rate
        lengths = torch.as_tensor(frame_mask).sum(-1).tolist()
        return [a[..., : int(round(n * hop))] for a, n in zip(audio_np, lengths)]

    def round_trip(
        self, clips: Sequence[tuple[np.ndarray, int]], *, batch: int = 16
    ) -> list[np.ndarray]:
        """Each (audio, sample rate) clip encoded and decoded by the codec, at the codec's rate:
        what the clip can sound like when this model generates it (float32, mono: (samples,))."""
        import librosa

        sr = self.sample_rate
        waves = [
            a if int(s) == sr else librosa.resample(np.asarray(a), orig_sr=int(s), target_sr=sr)
            for a, s in clips
        ]
        out: list[np.ndarray] = []
        for i in range(0, len(waves), batch):
            codes, mask = self.encode_audio(waves[i : i + batch])
            out.extend(
                np.asarray(w, dtype=np.float32).reshape(-1) for w in self.decode_codes(codes, mask)
            )
        return out

    def decoder_input_from_codes(
        self, codes: torch.Tensor, frame_mask: torch.Tensor | None = None
    ) -> DecoderInputs:
        """Lay codes out as ``generate`` does: BOS step + codebook delay pattern.

        codes: (B, K, T); frame_mask: (B, T) bool with each clip's valid frames first (default:
        all valid). Returns :class:`DecoderInputs` of length ``S = T + max_delay + 1``: codebook
        ``k`` of frame ``t`` at position ``t + delay[k] + 1``; every other position of a clip's own
        layout holds the decoder start token, as in ``generate``'s delay-pattern mask; positions
        past a shorter clip's layout hold ``pad_token_id`` with attention mask 0. Position ``i``
        of the result is generation step ``i``.
        """
        codes = torch.as_tensor(codes)
        if codes.ndim != 3 or codes.shape[1] != self.num_codebooks:
            raise ConfigError(
                f"codes must be (batch, {self.num_codebooks}, frames); got {tuple(codes.shape)}"
            )
        b, k, t = codes.shape
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=codes.device)
        frame_mask = torch.as_tensor(frame_mask, device=codes.device).bool()
        lengths = frame_mask.sum(-1)
        expected = torch.arange(t, device=codes.device)[None, :] < lengths[:, None]
        if not torch.equal(expected, frame_mask):
            raise ConfigError("frame_mask must mark each clip's valid frames first (right padding)")
        s = t + self.max_delay + 1
        ids = torch.full((b, k, s), self.pad_token_id, dtype=torch.long, device=codes.device)
        pos = torch.arange(s, device=codes.device)
        own = pos[None, :] < (lengths[:, None] + self.max_delay + 1)  # (B, S): clip's own layout
        ids[own[:, None, :].expand(b, k, s)] = self.bos_token_id
        for cb, d in enumerate(self.delays):
            seg = ids[:, cb, d + 1 : d + 1 + t]
            ids[:, cb, d + 1 : d + 1 + t] = torch.where(frame_mask, codes[:, cb].long(), seg)
        pos_mask = (pos[None, :] >= 1) & (pos[None, :] <= lengths[:, None])
        return DecoderInputs(ids.reshape(b * k, s), own.long(), pos_mask)

    @torch.inference_mode()
    def run_decoder(
        self,
        input_ids: torch.Tensor,
        *,
        prompt: str | None = "",
        attention_mask: torch.Tensor | None = None,
    ) -> int:
        """One teacher-forced forward of the bare decoder (no LM heads, no KV cache).

        Read block outputs with forward hooks on :attr:`decoder_layers`. Returns the prefix length
        (MusicGen-Melody's condition positions that precede position 0 in the block outputs).
        """
        batch = input_ids.shape[0] // self.num_codebooks
        cond, prefix = self.conditioning(prompt, batch)
        if attention_mask is not None and prefix:
            attention_mask = torch.cat(
                [attention_mask.new_ones(batch, prefix), attention_mask], dim=1
            )
        self.decoder_base(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask,
            use_cache=False,
            **cond,
        )
        return prefix

    # ----------------------------------------------------------------- metadata
    def fingerprint(self) -> str:
        """A short hash of the weights (sampled values of every tensor) and the config."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.model)
        return self._fingerprint

    def info(self) -> dict[str, Any]:
        """Metadata for files and compatibility checks."""
        return {
            "model_id": self.model_id,
            "revision": self.revision,
            "source": self.source,
            "model_class": type(self.model).__name__,
            "is_melody": self.is_melody,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "audio_channels": self.audio_channels,
            "delays": list(self.delays),
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "bos_token_id": self.bos_token_id,
            "pad_token_id": self.pad_token_id,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "layer_convention": "decoder_block_output_0_based",
            "position_convention": POSITION_CONVENTION,
            "fingerprint": self.fingerprint(),
        }

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the model (and its tokenizer) so that ``load_model(folder)`` gives it back."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        return folder

    def __repr__(self) -> str:
        return (
            f"MusicGenAdapter({self.model_id!r}, layers={self.num_layers}, hidden={self.hidden_size}, "
            f"codebooks={self.num_codebooks}, sr={self.sample_rate}, device={self.device}, "
            f"dtype={str(self.dtype).replace('torch.', '')})"
        )


def _bos_token_id(model: nn.Module, *, default: int) -> int:
    """The first decoder start / BOS id set in the generation config or the model config."""
    gen = getattr(model, "generation_config", None)
    for value in (
        getattr(gen, "decoder_start_token_id", None),
        getattr(model.config, "decoder_start_token_id", None),
        getattr(gen, "bos_token_id", None),
        model.config.decoder.bos_token_id,
    ):
        if value is not None:
            return int(value if not isinstance(value, (list, tuple)) else value[0])
    return default


def _pad_token_id(model: nn.Module, *, default: int) -> int:
    gen = getattr(model, "generation_config", None)
    value = getattr(gen, "pad_token_id", None)
    if value is None:
        value = model.config.decoder.pad_token_id
    return int(value if value is not None else default)


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's config and weights (sampled values of every tensor)."""
    h = hashlib.sha256()
    config = _stable_config(model.config.to_dict())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        sample = torch.cat([flat[:64], flat[-64:], flat[:: max(1, flat.numel() // 64)]])
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(sample.float().cpu().numpy().tobytes())
    return h.hexdigest()[:20]


_VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "_commit_hash",
    "dtype",
    "torch_dtype",
    "transformers_version",
    "architectures",
    "_attn_implementation_autoset",
}


def _stable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict without the keys that change on save/load or with the dtype."""
    return {
        k: _stable_config(v) if isinstance(v, dict) else v
        for k, v in config.items()
        if k not in _VOLATILE_CONFIG_KEYS
    }
