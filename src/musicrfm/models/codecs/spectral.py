"""A spectral audio codec with EnCodec's interface, registered as a `transformers` model.

Why not a neural codec: a ~1M-parameter `EncodecModel` trained for 14 CPU minutes kept the pitch
class of only 10% of reconstructions (issue 7). This codec keeps pitch by construction:

    audio (16 kHz) -> |STFT| (n_fft 1024, hop 320 = 50 Hz) -> 128 log-mel bands
      -> 4 residual k-means codebooks of 512 (fitted on training clips) -> codes (K=4, T)
    codes -> summed centroids -> mel -> linear magnitude (non-negative least squares)
      -> phase by Griffin-Lim (fast variant, 32 iterations) -> audio

`SpectralCodecModel.encode/decode/forward` take and return exactly what
`MusicgenForConditionalGeneration` passes to and reads from `EncodecModel` (`audio_codes` of shape
(chunks=1, batch, K, T), `audio_scales` = [None], `audio_values` (batch, 1, samples)).
`musicrfm.models.codecs.register_codecs` (called by the loader, and on importing
`musicrfm.models`) registers the config and model with `AutoConfig`/`AutoModel`, so a MusicGen
folder whose `audio_encoder` has ``model_type="musicrfm_spectral_codec"`` loads with the stock
`MusicgenForConditionalGeneration.from_pretrained`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.encodec.modeling_encodec import (
    EncodecDecoderOutput,
    EncodecEncoderOutput,
    EncodecOutput,
)

from musicrfm.models.codecs.quantize import (
    fit_residual_codebooks,
    residual_dequantize,
    residual_quantize,
)

log = logging.getLogger(__name__)

MODEL_TYPE = "musicrfm_spectral_codec"


class CodecConfigProperties:
    """What MusicGen and EnCodec users read off a codec config, derived from its fields
    (``sampling_rate``, ``hop_length``, ``num_codebooks``, ``codebook_size``)."""

    sampling_rate: int
    hop_length: int
    num_codebooks: int
    codebook_size: int
    min_quantizers = 1  # the fewest codebooks that still carry sound

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)

    @property
    def num_quantizers(self) -> int:
        return self.num_codebooks

    @property
    def codebook_nbits(self) -> int:
        return math.ceil(math.log2(self.codebook_size))

    @property
    def target_bandwidths(self) -> list[float]:
        """kbps for ``min_quantizers``..K codebooks (EnCodec's ``bandwidth`` picks one)."""
        per_q = self.frame_rate * self.codebook_nbits / 1000.0
        return [round(per_q * q, 6) for q in range(self.min_quantizers, self.num_codebooks + 1)]

    @property
    def chunk_length(self) -> int | None:
        return None

    @property
    def chunk_stride(self) -> int | None:
        return None


class SpectralCodecConfig(CodecConfigProperties, PretrainedConfig):
    """Configuration of the spectral codec (the attributes MusicGen and EnCodec users read).

    Parameters
    ----------
    sampling_rate: audio rate in Hz.
    hop_length: samples per code frame (``frame_rate = sampling_rate / hop_length``).
    n_fft: STFT size (Hann window of the same length).
    n_mels: mel bands (the dimension the codebooks quantise).
    f_min, f_max: mel filterbank range in Hz (``f_max`` None: Nyquist).
    num_codebooks: residual codebooks (``num_quantizers``).
    codebook_size: entries per codebook (a power of two).
    griffin_lim_iters: phase-recovery iterations at decode time.
    griffin_lim_momentum: fast Griffin-Lim momentum (0 = classic Griffin-Lim).
    log_floor: floor added to mel magnitudes before the log.
    """

    model_type = MODEL_TYPE

    sampling_rate: int = 16_000
    hop_length: int = 320
    n_fft: int = 1024
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    num_codebooks: int = 4
    codebook_size: int = 512
    griffin_lim_iters: int = 32
    griffin_lim_momentum: float = 0.99
    log_floor: float = 1e-4
    audio_channels: int = 1
    normalize: bool = False
    chunk_length_s: float | None = None
    overlap: float | None = None

    @property
    def codebook_dim(self) -> int:
        return self.n_mels

    @property
    def hidden_size(self) -> int:
        return self.n_mels


def mel_filterbank(
    sampling_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Slaney-style triangular mel filters, (n_mels, n_fft // 2 + 1), area-normalised."""
    f_max = sampling_rate / 2 if f_max is None else f_max

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        lin = f / (200.0 / 3)
        log_part = 15.0 + torch.log(torch.clamp(f, min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
        return torch.where(f >= 1000.0, log_part, lin)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        lin = m * (200.0 / 3)
        log_part = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (m - 15.0))
        return torch.where(m >= 15.0, log_part, lin)

    fft_freqs = torch.linspace(0, sampling_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz = mel_to_hz(mels)
    fdiff = hz[1:] - hz[:-1]
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    weights *= (2.0 / (hz[2 : n_mels + 2] - hz[:n_mels]))[:, None]
    return weights.float()


class EncodecInterface:
    """EnCodec's ``encode``/``decode``/``forward`` on top of ``codes_from_audio`` and
    ``audio_from_codes`` (what `MusicgenForConditionalGeneration` calls on its audio encoder)."""

    config: Any
    codebooks: nn.Parameter  # (K residual codebooks, size, feature dim): fitted, never trained

    @torch.no_grad()
    def fit_codebooks(
        self, features: torch.Tensor, *, iters: int = 25, seed: int = 0, max_points: int = 200_000
    ) -> list[float]:
        """Fit the residual codebooks on (N, dim) feature frames (``fit_features``): one
        k-means per stage on what the earlier ones left; returns the residual MSE per stage."""
        k, size, dim = self.codebooks.shape
        books, errors = fit_residual_codebooks(
            features.reshape(-1, dim), k, size, iters=iters, seed=seed, max_points=max_points
        )
        self.codebooks.data.copy_(books)
        return errors

    def _init_weights(self, module: nn.Module) -> None:  # centroids come from fit_codebooks
        return

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.config.hop_length)

    # ---------------------------------------------------------------- EnCodec interface
    def _num_quantizers(self, bandwidth: float | None) -> int:
        if bandwidth is None or bandwidth <= 0:
            return self.config.num_codebooks
        per_q = self.config.frame_rate * self.config.codebook_nbits / 1000.0
        wanted = math.floor(bandwidth / per_q + 1e-6)
        return int(min(self.config.num_codebooks, max(self.config.min_quantizers, wanted)))

    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        bandwidth: float | None = None,
        return_dict: bool | None = None,
    ):
        """(B, 1, samples) audio -> audio_codes (1, B, K, T), audio_scales [None]."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_values.ndim == 2:
            input_values = input_values[:, None]
        if input_values.shape[1] != 1:
            raise ValueError(
                f"expected mono audio (B, 1, samples), got {tuple(input_values.shape)}"
            )
        audio = input_values[:, 0]
        if padding_mask is not None:
            audio = audio * padding_mask.reshape(audio.shape[0], -1)[..., : audio.shape[-1]].to(
                audio.dtype
            )
        with torch.no_grad():
            codes = self.codes_from_audio(audio, self._num_quantizers(bandwidth))
        codes = codes[None]
        scales = [None]
        if not return_dict:
            return (codes, scales, 0)
        return EncodecEncoderOutput(audio_codes=codes, audio_scales=scales, last_frame_pad_length=0)

    def decode(
        self,
        audio_codes: torch.Tensor,
        audio_scales: list | torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        last_frame_pad_length: int | None = 0,
    ):
        """audio_codes (1, B, K, T) -> audio_values (B, 1, T * hop_length)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if audio_codes.ndim == 4:
            if audio_codes.shape[0] != 1:
                raise ValueError(f"expected one chunk of codes, got {audio_codes.shape[0]}")
            audio_codes = audio_codes[0]
        if last_frame_pad_length:
            audio_codes = audio_codes[..., :-last_frame_pad_length]
        with torch.no_grad():
            audio = self.audio_from_codes(audio_codes)
        audio = audio[:, None]
        if padding_mask is not None and padding_mask.shape[-1] < audio.shape[-1]:
            audio = audio[..., : padding_mask.shape[-1]]
        if not return_dict:
            return (audio,)
        return EncodecDecoderOutput(audio_values=audio)

    def forward(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        bandwidth: float | None = None,
        audio_codes: torch.Tensor | None = None,
        audio_scales: list | torch.Tensor | None = None,
        return_dict: bool | None = None,
        last_frame_pad_length: int | None = 0,
    ):
        """Encode (unless codes are given) then decode, like `EncodecModel.forward`."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if audio_codes is None:
            enc = self.encode(input_values, padding_mask, bandwidth, return_dict=True)
            audio_codes, audio_scales = enc.audio_codes, enc.audio_scales
        values = self.decode(audio_codes, audio_scales, padding_mask, return_dict=True).audio_values
        if not return_dict:
            return (audio_codes, values)
        return EncodecOutput(audio_codes=audio_codes, audio_values=values)


class SpectralCodecModel(EncodecInterface, PreTrainedModel):
    """Log-mel + residual k-means codec; EnCodec's ``encode``/``decode``/``forward`` signatures."""

    config_class = SpectralCodecConfig
    config: SpectralCodecConfig
    base_model_prefix = "spectral_codec"
    main_input_name = "input_values"
    _no_split_modules: list[str] = []

    def __init__(self, config: SpectralCodecConfig) -> None:
        super().__init__(config)
        k, size, dim = config.num_codebooks, config.codebook_size, config.n_mels
        # Centroids: fitted by `fit_codebooks`, stored in safetensors (a parameter, never trained).
        self.codebooks = nn.Parameter(torch.zeros(k, size, dim), requires_grad=False)
        self._dsp_cache: dict[str, torch.Tensor] = {}
        self.post_init()

    # ---------------------------------------------------------------- analysis / synthesis
    def _dsp(self, name: str) -> torch.Tensor:
        """Fixed DSP tensors (mel filters, window), built on first use on the codebooks' device.

        Not buffers: `from_pretrained` builds modules on the meta device, and these are derived
        from the config alone.
        """
        device = self.codebooks.device
        key = f"{name}@{device}"
        if key not in self._dsp_cache:
            cfg = self.config
            if name == "mel_fb":
                value = mel_filterbank(
                    cfg.sampling_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max
                )
            else:
                value = torch.hann_window(cfg.n_fft)
            self._dsp_cache[key] = value.to(device)
        return self._dsp_cache[key]

    @property
    def mel_fb(self) -> torch.Tensor:
        return self._dsp("mel_fb")

    @property
    def window(self) -> torch.Tensor:
        return self._dsp("window")

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) audio -> (B, T, n_mels) log-mel magnitudes, T = ceil(samples / hop)."""
        cfg = self.config
        spec = torch.stft(
            audio.float(),
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        ).abs()
        spec = spec[..., : self.num_frames(audio.shape[-1])] / self.window.sum() * 2
        mel = torch.matmul(self.mel_fb, spec)
        return torch.log(mel + cfg.log_floor).transpose(1, 2)

    def mel_to_magnitude(self, logmel: torch.Tensor, iters: int = 20) -> torch.Tensor:
        """(B, T, n_mels) log-mel -> (B, F, T) non-negative linear magnitude (projected NNLS)."""
        mel = torch.clamp(torch.exp(logmel) - self.config.log_floor, min=0.0).transpose(1, 2)
        fb = self.mel_fb
        pinv = torch.linalg.pinv(fb)
        mag = torch.clamp(torch.matmul(pinv, mel), min=0.0)
        # A few multiplicative updates for min ||fb @ mag - mel||^2 with mag >= 0.
        fbt_mel = torch.matmul(fb.T, mel)
        fbt_fb = fb.T @ fb
        for _ in range(iters):
            denom = torch.matmul(fbt_fb, mag) + 1e-9
            mag = mag * (fbt_mel / denom)
        return mag

    def griffin_lim(self, magnitude: torch.Tensor, length: int) -> torch.Tensor:
        """(B, F, T) magnitude -> (B, length) audio; fast Griffin-Lim, seeded (deterministic)."""
        cfg = self.config
        mag = magnitude * self.window.sum() / 2
        gen = torch.Generator(device="cpu").manual_seed(0)
        angles = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=gen)).to(mag.device)
        stft_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=self.window, center=True)
        total = (mag.shape[-1]) * cfg.hop_length
        prev = torch.zeros_like(angles)
        for _ in range(cfg.griffin_lim_iters):
            inverse = torch.istft(mag * angles, length=total, **stft_kw)
            rebuilt = torch.stft(inverse, return_complex=True, **stft_kw)[..., : mag.shape[-1]]
            angles = (
                rebuilt - cfg.griffin_lim_momentum * prev if cfg.griffin_lim_momentum else rebuilt
            )
            prev = rebuilt
            angles = angles / (angles.abs() + 1e-16)
        audio = torch.istft(mag * angles, length=total, **stft_kw)
        return audio[..., :length]

    # ---------------------------------------------------------------- quantisation
    def quantize(self, features: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """(B, T, D) features -> (B, K, T) codes by greedy residual nearest-centroid search."""
        q = self.config.num_codebooks if num_quantizers is None else num_quantizers
        return residual_quantize(features, self.codebooks[:q])

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K', T) codes -> (B, T, D) summed centroids (K' <= K)."""
        return residual_dequantize(codes, self.codebooks)

    # ---------------------------------------------------------------- codec contract
    def codes_from_audio(self, audio: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """(B, samples) audio -> (B, K', T) codes."""
        return self.quantize(self.log_mel(audio), num_quantizers)

    def audio_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K', T) codes -> (B, T * hop_length) audio."""
        return self.griffin_lim(
            self.mel_to_magnitude(self.dequantize(codes)), codes.shape[-1] * self.config.hop_length
        )

    def fit_features(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) audio -> (B * T, D) frames the codebooks are fitted on."""
        return self.log_mel(audio).reshape(-1, self.config.n_mels)

    # ---------------------------------------------------------------- fitting
