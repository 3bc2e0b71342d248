"""A harmonic audio codec whose first codebook is the pitch and whose others are the timbre.

Why: the spectral codec's codes are k-means centroids of whole log-mel frames, so each code is a
joint (pitch x timbre) spectrum, and a push toward a note also pushes toward the instruments whose
spectra the note's centroids were fitted on (issue 7: six sessions of recipes and steering
variants sat on one hit-rate / prompt-adherence curve). Here the two are separate tokens:

    audio (16 kHz) -> YIN f0 per frame (50 Hz) -> nearest MIDI note  = codebook 0 (token = MIDI)
                   -> |STFT| (n_fft 2048) at harmonics 1..H of that note -> log amplitudes
                   -> residual k-means (codebooks 1..K-1, fitted on training clips)
    codes -> note f0 + summed timbre centroids -> additive synthesis of H harmonics -> audio

The timbre codes are relative to the note (harmonic number, not frequency), so "a trumpet" is the
same codes on every note and a pitch token can change while they stay. Low-level frames (below
``voicing_db`` of the clip's loudest) keep the last voiced note, so decays and silences do not
jump between random pitch tokens. Monophonic by construction (one f0 per frame): chords and
noise are outside what it can represent, which is why it is an option of the mini recipe, not a
replacement for EnCodec on real music.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from musicrfm.models.codecs.quantize import (
    residual_dequantize,
    residual_quantize,
)
from musicrfm.models.codecs.spectral import CodecConfigProperties, EncodecInterface

log = logging.getLogger(__name__)

HARMONIC_MODEL_TYPE = "musicrfm_harmonic_codec"


class HarmonicCodecConfig(CodecConfigProperties, PretrainedConfig):
    """Configuration of the harmonic codec.

    Parameters
    ----------
    sampling_rate: audio rate in Hz.
    hop_length: samples per code frame (``frame_rate = sampling_rate / hop_length``).
    n_fft: STFT and YIN frame size.
    harmonics: harmonic amplitudes per frame (the timbre vector's dimension).
    f_min, f_max: YIN search range in Hz.
    voicing_db: frames this far below the clip's loudest keep the previous note.
    num_codebooks: 1 pitch codebook + ``num_codebooks - 1`` residual timbre codebooks.
    codebook_size: entries per codebook (the pitch codebook uses MIDI 0..127 of them).
    log_floor: floor added to harmonic amplitudes before the log.
    """

    model_type = HARMONIC_MODEL_TYPE

    sampling_rate: int = 16_000
    hop_length: int = 320
    n_fft: int = 2048
    harmonics: int = 40
    f_min: float = 60.0
    f_max: float = 2000.0
    voicing_db: float = -40.0
    num_codebooks: int = 4
    codebook_size: int = 512
    log_floor: float = 1e-4
    audio_channels: int = 1
    normalize: bool = False
    chunk_length_s: float | None = None
    overlap: float | None = None

    min_quantizers = 2  # one pitch codebook alone carries no sound

    @property
    def codebook_dim(self) -> int:
        return self.harmonics

    @property
    def hidden_size(self) -> int:
        return self.harmonics


def midi_to_hz(midi: torch.Tensor) -> torch.Tensor:
    return 440.0 * torch.pow(2.0, (midi.double() - 69.0) / 12.0)


def _upsample(frames: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """(..., T) frame values (frame t at sample t * hop) -> (..., length), linear in between."""
    pos = torch.arange(length, device=frames.device, dtype=torch.float64) / hop
    i0 = pos.floor().long().clamp(max=frames.shape[-1] - 1)
    i1 = (i0 + 1).clamp(max=frames.shape[-1] - 1)
    frac = (pos - i0.double()).clamp(0.0, 1.0).to(frames.dtype)
    return frames[..., i0] * (1 - frac) + frames[..., i1] * frac


class HarmonicCodecModel(EncodecInterface, PreTrainedModel):
    """Pitch token + residual k-means of harmonic log-amplitudes; EnCodec's interface."""

    config_class = HarmonicCodecConfig
    config: HarmonicCodecConfig
    base_model_prefix = "harmonic_codec"
    main_input_name = "input_values"
    _no_split_modules: list[str] = []

    def __init__(self, config: HarmonicCodecConfig) -> None:
        super().__init__(config)
        k, size, dim = config.num_codebooks - 1, config.codebook_size, config.harmonics
        if k < 1:
            raise ValueError("the harmonic codec needs num_codebooks >= 2 (pitch + timbre)")
        # Timbre centroids: fitted by `fit_codebooks`, stored in safetensors, never trained.
        self.codebooks = nn.Parameter(torch.zeros(k, size, dim), requires_grad=False)
        self.post_init()

    # ---------------------------------------------------------------- analysis
    def analyse(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, samples) audio -> MIDI notes (B, T) and harmonic log-amplitudes (B, T, H)."""
        import librosa

        cfg = self.config
        t = self.num_frames(audio.shape[-1])
        notes, timbre = [], []
        window_sum = np.hanning(cfg.n_fft).sum()
        for y in audio.detach().float().cpu().numpy():
            if not np.any(y):
                notes.append(np.full(t, 60))
                timbre.append(np.full((t, cfg.harmonics), math.log(cfg.log_floor)))
                continue
            f0 = librosa.yin(
                y, fmin=cfg.f_min, fmax=cfg.f_max, sr=cfg.sampling_rate,
                frame_length=cfg.n_fft, hop_length=cfg.hop_length, center=True,
            )[:t]  # fmt: skip
            spec = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length))[:, :t]
            spec = spec * 2 / window_sum
            level = 10 * np.log10(np.maximum((spec**2).sum(0), 1e-20))
            voiced = level > level.max() + cfg.voicing_db
            midi = np.clip(np.round(librosa.hz_to_midi(f0)), 0, 127).astype(np.int64)
            midi = _hold_last_voiced(midi, voiced)
            notes.append(midi)
            timbre.append(self._harmonic_log_amps(spec, midi))
        return (
            torch.from_numpy(np.stack(notes)).to(audio.device),
            torch.from_numpy(np.stack(timbre)).float().to(audio.device),
        )

    def _harmonic_log_amps(self, spec: np.ndarray, midi: np.ndarray) -> np.ndarray:
        """(F, T) magnitude, (T,) notes -> (T, H) log amplitude at each harmonic (peak of 3 bins)."""
        cfg = self.config
        f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
        h = np.arange(1, cfg.harmonics + 1)[None, :]
        freqs = f0[:, None] * h  # (T, H)
        bins = np.round(freqs / (cfg.sampling_rate / cfg.n_fft)).astype(np.int64)
        cols = np.arange(spec.shape[1])[:, None]
        top = spec.shape[0] - 1
        peak = np.max([spec[np.clip(bins + d, 0, top), cols] for d in (-1, 0, 1)], axis=0)  # (T, H)
        peak = np.where(freqs < cfg.sampling_rate / 2, peak, 0.0)
        return np.log(peak + cfg.log_floor)

    # ---------------------------------------------------------------- synthesis
    def synthesize(self, notes: torch.Tensor, timbre: torch.Tensor, length: int) -> torch.Tensor:
        """MIDI notes (B, T), harmonic log-amplitudes (B, T, H) -> (B, length) audio."""
        cfg = self.config
        f0 = _upsample(midi_to_hz(notes.float()), cfg.hop_length, length)  # (B, n) float64
        phase = torch.cumsum(2 * math.pi * f0 / cfg.sampling_rate, dim=-1)
        amps = torch.clamp(torch.exp(timbre.float()) - cfg.log_floor, min=0.0).transpose(1, 2)
        out = torch.zeros(notes.shape[0], length, device=notes.device)
        for h in range(cfg.harmonics):
            a = _upsample(amps[:, h], cfg.hop_length, length)
            a = torch.where(f0 * (h + 1) < cfg.sampling_rate / 2, a, torch.zeros_like(a))
            out = out + a * torch.sin((h + 1) * phase).float()
        return out

    # ---------------------------------------------------------------- codec contract
    def codes_from_audio(self, audio: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """(B, samples) audio -> (B, K', T) codes: the MIDI note, then the timbre codes."""
        notes, timbre = self.analyse(audio)
        codes = residual_quantize(timbre, self.codebooks[: max(1, num_quantizers - 1)])
        return torch.cat([notes[:, None], codes], dim=1)

    def audio_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K', T) codes -> (B, T * hop_length) audio."""
        notes = codes[:, 0].clamp(0, 127)
        timbre = residual_dequantize(codes[:, 1:], self.codebooks)
        return self.synthesize(notes, timbre, codes.shape[-1] * self.config.hop_length)

    def fit_features(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) audio -> (B * T, H) harmonic log-amplitude frames."""
        return self.analyse(audio)[1].reshape(-1, self.config.harmonics)


def _hold_last_voiced(midi: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Unvoiced frames take the previous voiced frame's note (the first voiced one at the start)."""
    if not voiced.any():
        return np.full_like(midi, int(np.median(midi)))
    idx = np.where(voiced, np.arange(len(midi)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.argmax(voiced))
    return midi[idx]
