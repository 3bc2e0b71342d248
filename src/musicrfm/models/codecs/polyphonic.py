"""A polyphonic harmonic codec: the bass note, the set of notes above it, and a shared timbre.

(Over 400 lines on purpose: the multi-f0 analysis, the token layout and the additive synthesis
are one codec whose parts must agree, and read best side by side, as in the harmonic codec.)

Why: the harmonic codec carries one note a frame, so chords and harmonic intervals are outside
what it can represent; the spectral codec's joint log-mel codes lose chords to the quantiser and
to the mel front end (notes/LEARNINGS.md, session 9b). Here the notes are tokens, as the
harmonic codec's pitch is:

    audio (16 kHz) -> |STFT| (n_fft 4096: ~3.9 Hz bins, a semitone at 130 Hz is ~2 bins)
                   -> greedy multi-f0 per frame (50 Hz): harmonic-sieve salience of every MIDI
                      note in range, pick the best, subtract its (smoothed) harmonics, repeat
                      while a note keeps ``note_ratio`` of the first one's salience (<= 3 notes)
                   -> codebook 0 = the lowest note (token = MIDI)
                      codebook 1 = the notes above it as a set of offsets 1..24 semitones:
                      0 = none, d = one note d above, 25 + pair index = two notes (301 tokens)
                   -> |STFT| (n_fft ``amp_n_fft``) at harmonics 1..H of each note; per harmonic
                      the smallest over the frame's notes (a partial shared with another note
                      reads too loud) -> log amplitudes -> residual k-means (codebooks 2..K-1)
    codes -> every note of the frame with the same harmonic amplitudes, additive synthesis

Low-level frames (below ``voicing_db`` of the clip's loudest) keep the last voiced notes, and the
note tokens are smoothed by a majority over ``smooth_frames`` frames. The timbre vector is shared
by the notes of a frame (the clips it is for play one instrument, at one velocity); its loudness
carries the rhythm. A codec for rendered testbed clips (issue 17), not for real music.

With ``onset_codebook`` the last codebook is the frames since the last onset (librosa's onset
detector on the input; ``onset_stages - 1`` = none recent), and decoding dips the sound to
silence over the ``onset_dip_ms`` before every stage-0 frame, so an onset is a token, not only a
loudness change inside the joint timbre codes: the first testbed held one sound for the whole
clip, and the rhythm it did play was lost in the timbre k-means (notes/LEARNINGS.md, session 14).
Layout then: bass, upper set, ``num_codebooks - 3`` timbre codebooks, onset stage.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from musicrfm.models.codecs.harmonic import _hold_last_voiced, _upsample, midi_to_hz
from musicrfm.models.codecs.quantize import (
    residual_dequantize,
    residual_quantize,
)
from musicrfm.models.codecs.spectral import CodecConfigProperties, EncodecInterface

log = logging.getLogger(__name__)

POLYPHONIC_MODEL_TYPE = "musicrfm_polyphonic_codec"

MAX_SPAN = 24
"""The highest upper note, in semitones above the bass."""
UPPER_SETS: tuple[tuple[int, ...], ...] = (
    ((),)
    + tuple((d,) for d in range(1, MAX_SPAN + 1))
    + tuple(itertools.combinations(range(1, MAX_SPAN + 1), 2))
)
"""Codebook 1's tokens: the offsets above the bass each one stands for (301 sets)."""
UPPER_TOKEN = {s: i for i, s in enumerate(UPPER_SETS)}
MAX_NOTES = 3


def upper_token(offsets: tuple[int, ...] | list[int]) -> int:
    """The codebook-1 token of a set of offsets above the bass (sorted, 1..24, at most two)."""
    return UPPER_TOKEN[tuple(sorted(int(d) for d in offsets))]


def notes_of(bass: int, token: int) -> tuple[int, ...]:
    """The MIDI notes a (bass, upper-set token) pair stands for, lowest first."""
    token = int(token) if 0 <= int(token) < len(UPPER_SETS) else 0
    return (int(bass),) + tuple(int(bass) + d for d in UPPER_SETS[token])


class PolyphonicCodecConfig(CodecConfigProperties, PretrainedConfig):
    """Configuration of the polyphonic codec.

    Parameters
    ----------
    sampling_rate: audio rate in Hz.
    hop_length: samples per code frame (``frame_rate = sampling_rate / hop_length``).
    n_fft: STFT size of the multi-f0 analysis (long: resolves a semitone at 130 Hz).
    amp_n_fft: STFT size the harmonic amplitudes are read from (short: keeps the strikes).
    harmonics: harmonic amplitudes per frame (the timbre vector's dimension).
    salience_harmonics: harmonics the sieve sums per candidate note.
    salience_decay: the sieve weighs harmonic h by ``h ** -salience_decay``.
    salience_power: the sieve sums magnitudes to this power.
    win_length: window of the multi-f0 STFT (<= ``n_fft``: zero-padded, finer bins).
    fundamental_ratio: a candidate counts only where its fundamental's peak is at least this
        share of its strongest harmonic's (a sub-octave of a chord explains its partials too).
    smooth_salience: the sieve reads each harmonic as at most the mean of it and its
        neighbours (a candidate whose every other harmonic is missing scores lower).
    smooth_subtraction: subtract a picked note's harmonics smoothed across harmonics (keeps
        partials shared with other notes) rather than whole.
    midi_min, midi_max: candidate notes of the multi-f0 analysis.
    note_ratio: a further note is kept while its salience is at least this share of the first's.
    smooth_frames: note tokens are the majority over this many frames (odd; 1 = none).
    voicing_db: frames this far below the clip's loudest keep the previous notes.
    num_codebooks: bass + upper set + ``num_codebooks - 2`` residual timbre codebooks.
    codebook_size: entries per codebook (>= 301 for the upper-set codebook).
    log_floor: floor added to harmonic amplitudes before the log.
    """

    model_type = POLYPHONIC_MODEL_TYPE

    sampling_rate: int = 16_000
    hop_length: int = 320
    n_fft: int = 4096
    amp_n_fft: int = 1024
    harmonics: int = 40
    salience_harmonics: int = 8
    salience_decay: float = 0.5
    salience_power: float = 1.0
    win_length: int = 2048
    fundamental_ratio: float = 0.1
    smooth_salience: bool = False
    smooth_subtraction: bool = False
    midi_min: int = 33
    midi_max: int = 108
    note_ratio: float = 0.3
    smooth_frames: int = 5
    voicing_db: float = -40.0
    num_codebooks: int = 4
    codebook_size: int = 512
    log_floor: float = 1e-4
    onset_codebook: bool = False
    onset_stages: int = 64
    onset_dip_ms: float = 15.0
    onset_no_swell: bool = True
    audio_channels: int = 1
    normalize: bool = False
    chunk_length_s: float | None = None
    overlap: float | None = None

    @property
    def min_quantizers(self) -> int:  # notes alone carry no sound
        return 4 if self.onset_codebook else 3

    @property
    def timbre_codebooks(self) -> int:
        """Residual timbre codebooks (all but the note and onset codebooks)."""
        return self.num_codebooks - 2 - int(self.onset_codebook)

    @property
    def codebook_dim(self) -> int:
        return self.harmonics

    @property
    def hidden_size(self) -> int:
        return self.harmonics


class PolyphonicCodecModel(EncodecInterface, PreTrainedModel):
    """Bass note + upper-note set + residual k-means of shared harmonic log-amplitudes."""

    config_class = PolyphonicCodecConfig
    config: PolyphonicCodecConfig
    base_model_prefix = "polyphonic_codec"
    main_input_name = "input_values"
    _no_split_modules: list[str] = []

    def __init__(self, config: PolyphonicCodecConfig) -> None:
        super().__init__(config)
        k, size, dim = config.timbre_codebooks, config.codebook_size, config.harmonics
        if k < 1:
            raise ValueError(
                f"the polyphonic codec needs num_codebooks >= {config.min_quantizers} "
                "(notes + timbre" + (" + onsets)" if config.onset_codebook else ")")
            )
        if size < len(UPPER_SETS):
            raise ValueError(f"the polyphonic codec needs codebook_size >= {len(UPPER_SETS)}")
        if config.onset_codebook and not 2 <= config.onset_stages <= size:
            raise ValueError(f"onset_stages must be within 2..{size}")
        # Timbre centroids: fitted by `fit_codebooks`, stored in safetensors, never trained.
        self.codebooks = nn.Parameter(torch.zeros(k, size, dim), requires_grad=False)
        self.post_init()

    # ---------------------------------------------------------------- analysis
    def analyse(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, samples) audio -> bass MIDI (B, T), upper-set tokens (B, T), log-amps (B, T, H)."""
        import librosa

        cfg = self.config
        t = self.num_frames(audio.shape[-1])
        basses, uppers, timbre = [], [], []
        window_sum = np.hanning(cfg.amp_n_fft).sum()
        for y in audio.detach().float().cpu().numpy():
            if not np.any(y):
                basses.append(np.full(t, 60))
                uppers.append(np.zeros(t, dtype=np.int64))
                timbre.append(np.full((t, cfg.harmonics), math.log(cfg.log_floor)))
                continue
            amp = np.abs(librosa.stft(y, n_fft=cfg.amp_n_fft, hop_length=cfg.hop_length))[:, :t]
            amp = amp * 2 / window_sum
            level = 10 * np.log10(np.maximum((amp**2).sum(0), 1e-20))
            voiced = level > level.max() + cfg.voicing_db
            long = librosa.stft(
                y, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length
            )
            long = np.abs(long)[:, :t]
            notes = self.multi_f0(long)  # (T, 3) MIDI, -1 = none
            bass, upper = _note_tokens(notes)
            token = np.where(bass >= 0, bass * len(UPPER_SETS) + upper, -1)
            token = _majority(token, cfg.smooth_frames)
            voiced &= token >= 0
            if not voiced.any():
                token = np.full(t, 60 * len(UPPER_SETS))
            token = _hold_last_voiced(token, voiced)
            if cfg.onset_codebook:  # the long window hears a new note frames early
                token = _snap_changes(token, self._onsets(y, t))
            bass, upper = token // len(UPPER_SETS), token % len(UPPER_SETS)
            basses.append(bass)
            uppers.append(upper)
            timbre.append(self._shared_log_amps(amp, bass, upper))
        return (
            torch.from_numpy(np.stack(basses)).to(audio.device),
            torch.from_numpy(np.stack(uppers)).to(audio.device),
            torch.from_numpy(np.stack(timbre)).float().to(audio.device),
        )

    def onset_stages(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) audio -> (B, T) frames since the last detected onset, capped at
        ``onset_stages - 1`` (also before the first onset and in silence)."""
        cfg = self.config
        t, cap = self.num_frames(audio.shape[-1]), cfg.onset_stages - 1
        out = np.full((audio.shape[0], t), cap, dtype=np.int64)
        for b, y in enumerate(audio.detach().float().cpu().numpy()):
            if np.any(y):
                out[b] = _frames_since(self._onsets(y, t), t, cap)
        return torch.from_numpy(out).to(audio.device)

    def _onsets(self, y: np.ndarray, t: int) -> np.ndarray:
        """Onset frames (< ``t``) of one clip (:func:`onset_frames`, padded so that a clip that
        starts on a strike has an onset at 0)."""
        onsets = onset_frames(y, self.config.sampling_rate, self.config.hop_length, pad=4)
        return onsets[onsets < t]

    def multi_f0(self, spec: np.ndarray) -> np.ndarray:
        """(F, T) magnitude of the long STFT -> (T, 3) MIDI notes by salience (-1 = none)."""
        cfg = self.config
        df = cfg.sampling_rate / cfg.n_fft
        nyq = cfg.sampling_rate / 2
        top = spec.shape[0] - 1
        spec = spec.copy()
        t = spec.shape[1]
        cols = np.arange(t)
        midi = np.arange(cfg.midi_min, cfg.midi_max + 1)
        f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
        hs = np.arange(1, cfg.salience_harmonics + 1)
        freqs = f0[:, None] * hs[None, :]  # (M, Hs)
        weight = np.where(freqs < 0.95 * nyq, hs[None, :] ** -cfg.salience_decay, 0.0)
        # bins read per (note, harmonic): within +-30 cents, at least the nearest +-1
        centre = freqs / df
        half = np.maximum(1, np.ceil(centre * (2 ** (30 / 1200) - 1))).astype(np.int64)
        nearest = np.clip(np.round(centre).astype(np.int64), 0, top)  # (M, Hs)
        # subtraction: every harmonic below Nyquist, a Hann main lobe of +-2 bins
        hsub = np.arange(1, 4 * cfg.salience_harmonics + 1)
        zoom = max(1, round(cfg.n_fft / cfg.win_length))  # bins per bin of the unpadded window
        lobe_bins = 2 * zoom + 1
        notes = np.full((t, MAX_NOTES), -1, dtype=np.int64)
        first = np.zeros(t)
        active = np.ones(t, dtype=bool)
        for k in range(MAX_NOTES):
            comp = spec**cfg.salience_power
            peaks = _window_peaks(comp, nearest, half)  # (M, Hs, T)
            real = peaks * (weight > 0)[..., None]
            if cfg.smooth_salience:
                peaks = np.minimum(peaks, _moving_mean_axis1(real))
            sal = np.einsum("mht,mh->mt", peaks, weight)  # (M, T)
            sal = np.where(real[:, 0] >= cfg.fundamental_ratio * real.max(1), sal, 0.0)
            for j in range(k):  # a note is picked once
                picked = notes[:, j] >= 0
                sal[notes[picked, j] - cfg.midi_min, cols[picked]] = 0.0
            best = sal.argmax(0)
            value = sal[best, cols]
            if k == 0:
                first = value
                keep = value > 0
            else:
                keep = active & (value >= cfg.note_ratio * first) & (value > 0)
            notes[keep, k] = midi[best[keep]]
            active = keep
            if not keep.any() or k == MAX_NOTES - 1:
                break
            # subtract the picked note's harmonics (amplitudes smoothed across harmonics)
            fsub = f0[best][:, None] * hsub[None, :]  # (T, Hsub)
            csub = fsub / df
            b0 = np.clip(np.round(csub).astype(np.int64), 0, top)
            near = np.stack(
                [spec[np.clip(b0 + d, 0, top), cols[:, None]] for d in range(-zoom, zoom + 1)]
            )
            amp = near.max(0)  # (T, Hsub)
            smooth = np.minimum(amp, _moving_mean(amp, 3)) if cfg.smooth_subtraction else amp
            smooth = np.where((fsub < nyq) & keep[:, None], smooth, 0.0)
            for d in range(-lobe_bins, lobe_bins + 1):
                b = np.clip(b0 + d, 0, top)
                lobe = _hann_lobe((b - csub) / zoom)
                spec[b, cols[:, None]] = np.maximum(0.0, spec[b, cols[:, None]] - smooth * lobe)
        return notes

    def _shared_log_amps(self, spec: np.ndarray, bass: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """(F, T) magnitude, the frame's notes -> (T, H) log amplitudes: per harmonic the smallest
        peak (of 3 bins) over the frame's notes."""
        cfg = self.config
        offsets = np.full((len(bass), MAX_NOTES), -1)
        offsets[:, 0] = 0
        for i, tok in enumerate(upper):
            for j, d in enumerate(UPPER_SETS[int(tok)]):
                offsets[i, j + 1] = d
        h = np.arange(1, cfg.harmonics + 1)[None, :]
        cols = np.arange(spec.shape[1])[:, None]
        top = spec.shape[0] - 1
        out = np.full((len(bass), cfg.harmonics), np.inf)
        for j in range(MAX_NOTES):
            present = offsets[:, j] >= 0
            f0 = 440.0 * 2.0 ** ((bass + np.maximum(offsets[:, j], 0) - 69.0) / 12.0)
            freqs = f0[:, None] * h
            bins = np.round(freqs / (cfg.sampling_rate / cfg.amp_n_fft)).astype(np.int64)
            peak = np.max([spec[np.clip(bins + d, 0, top), cols] for d in (-1, 0, 1)], axis=0)
            peak = np.where(freqs < cfg.sampling_rate / 2, peak, 0.0)
            out = np.where(present[:, None], np.minimum(out, peak), out)
        return np.log(out + cfg.log_floor)

    # ---------------------------------------------------------------- synthesis
    def synthesize(
        self, bass: torch.Tensor, upper: torch.Tensor, timbre: torch.Tensor, length: int
    ) -> torch.Tensor:
        """Bass (B, T), upper-set tokens (B, T), log-amplitudes (B, T, H) -> (B, length) audio.

        Three voices: the bass, and the first and second upper notes; a voice with no note in a
        frame keeps its last frequency at zero amplitude (so its phase stays continuous)."""
        cfg = self.config
        table = torch.tensor(
            [list(s) + [0] * (2 - len(s)) for s in UPPER_SETS], device=bass.device
        )  # (301, 2)
        present = torch.tensor(
            [[j < len(s) for j in range(2)] for s in UPPER_SETS], device=bass.device
        )
        tok = upper.clamp(0, len(UPPER_SETS) - 1)
        voices = [(bass.float(), torch.ones_like(bass, dtype=torch.float32))]
        for j in range(2):
            on = present[tok, j]
            note = (bass + table[tok, j]).float()
            voices.append((_hold_previous(note, on), on.float()))
        amps = torch.clamp(torch.exp(timbre.float()) - cfg.log_floor, min=0.0).transpose(1, 2)
        amps_up = [_upsample(amps[:, h], cfg.hop_length, length) for h in range(cfg.harmonics)]
        out = torch.zeros(bass.shape[0], length, device=bass.device)
        for note, gain in voices:
            f0 = _upsample(midi_to_hz(note.clamp(0, 127)), cfg.hop_length, length)
            g = _upsample(gain, cfg.hop_length, length)
            phase = torch.cumsum(2 * math.pi * f0 / cfg.sampling_rate, dim=-1)
            for h in range(cfg.harmonics):
                a = torch.where(f0 * (h + 1) < cfg.sampling_rate / 2, amps_up[h] * g, 0.0)
                out = out + a * torch.sin((h + 1) * phase).float()
        return out

    # ---------------------------------------------------------------- codec contract
    def codes_from_audio(self, audio: torch.Tensor, num_quantizers: int) -> torch.Tensor:
        """(B, samples) audio -> (B, K', T) codes: bass, upper set, then the timbre codes."""
        cfg = self.config
        bass, upper, timbre = self.analyse(audio)
        k = max(1, num_quantizers - 2 - int(cfg.onset_codebook))
        parts = [bass[:, None], upper[:, None], residual_quantize(timbre, self.codebooks[:k])]
        if cfg.onset_codebook:
            parts.append(self.onset_stages(audio)[:, None])
        return torch.cat(parts, dim=1)

    def audio_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K', T) codes -> (B, T * hop_length) audio."""
        bass = codes[:, 0].clamp(0, 127)
        upper = codes[:, 1].clamp(0, len(UPPER_SETS) - 1)
        cfg = self.config
        length = codes.shape[-1] * cfg.hop_length
        if not cfg.onset_codebook:
            timbre = residual_dequantize(codes[:, 2:], self.codebooks)
            return self.synthesize(bass, upper, timbre, length)
        timbre = residual_dequantize(codes[:, 2:-1], self.codebooks)
        starts = _onset_starts(codes[:, -1])
        timbre = _quiet_before(timbre, starts)
        if cfg.onset_no_swell:
            timbre = _no_swell(timbre, starts)
        audio = self.synthesize(bass, upper, timbre, length)
        return audio * self.onset_dips(codes[:, -1], length)

    def onset_dips(self, stages: torch.Tensor, length: int) -> torch.Tensor:
        """(B, T) onset stages -> (B, length) gain: a linear fade to silence over the
        ``onset_dip_ms`` before each onset frame (stage 0 after a non-zero stage) and a 2 ms
        rise after it, so every onset token is heard as an attack."""
        cfg = self.config
        dip = max(1, round(cfg.onset_dip_ms * cfg.sampling_rate / 1000))
        rise = max(1, round(0.002 * cfg.sampling_rate))
        starts = _onset_starts(stages)
        gain = torch.ones(stages.shape[0], length, device=stages.device)
        ramp_down = torch.linspace(1.0, 0.0, dip + 1, device=stages.device)[1:]
        ramp_up = torch.linspace(0.0, 1.0, rise + 1, device=stages.device)[1:]
        for b, f in torch.nonzero(starts).tolist():
            at = f * cfg.hop_length
            if at == 0:
                continue
            lo = max(0, at - dip)
            gain[b, lo:at] = torch.minimum(gain[b, lo:at], ramp_down[dip - (at - lo) :])
            hi = min(length, at + rise)
            gain[b, at:hi] = torch.minimum(gain[b, at:hi], ramp_up[: hi - at])
        return gain

    def fit_features(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, samples) audio -> (B * T, H) shared harmonic log-amplitude frames."""
        return self.analyse(audio)[2].reshape(-1, self.config.harmonics)


def _window_peaks(comp: np.ndarray, centre: np.ndarray, half: np.ndarray) -> np.ndarray:
    """(F, T) spectrum, centre bins and half-widths (M, Hs) -> (M, Hs, T): the largest value of
    bins centre +- half (clipped to the spectrum) in every frame. A sparse table of running
    maxima over 2**k bins answers each window with two lookups: the same numbers as gathering
    every bin of every window, without the (M, Hs, W, T) array."""
    top = comp.shape[0] - 1
    lo, hi = np.maximum(centre - half, 0), np.minimum(centre + half, top)
    length = hi - lo + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    table = [comp]
    while 2 ** len(table) <= length.max():
        prev, step = table[-1], 2 ** (len(table) - 1)
        nxt = prev.copy()
        nxt[:-step] = np.maximum(prev[:-step], prev[step:])
        table.append(nxt)
    out = np.empty((*centre.shape, comp.shape[1]), dtype=comp.dtype)
    for k in np.unique(level):
        sel = level == k
        a, b = lo[sel], hi[sel] - 2**k + 1
        out[sel] = np.maximum(table[k][a], table[k][b])
    return out


def onset_frames(y: np.ndarray, sr: int, hop: int, *, pad: int = 0) -> np.ndarray:
    """librosa's onset frames of one clip on a 32 ms window (its default 128 ms one smears an
    onset over frames), at least 80 ms apart (a 180 BPM beat is 333 ms). ``pad`` frames of
    silence go first, so that a sound at the very start counts as an onset (at frame 0)."""
    import librosa

    y = np.concatenate([np.zeros(pad * hop, dtype=y.dtype), y])
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop, n_fft=512)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sr, hop_length=hop, wait=4)
    return np.clip(onsets - pad, 0, None)


def _onset_starts(stages: torch.Tensor) -> torch.Tensor:
    """(B, T) onset stages -> (B, T) bool: the first frame of every run of stage 0."""
    zero = stages == 0
    return zero & torch.cat([torch.ones_like(zero[:, :1]), ~zero[:, :-1]], dim=1)


def _quiet_before(timbre: torch.Tensor, starts: torch.Tensor, frames: int = 2) -> torch.Tensor:
    """(B, T, H) log-amplitudes with the ``frames`` before each onset no louder than the frame
    before them. Why: the analysis window (64 ms) hears a strike a frame early, so without
    this the resynthesis attacks once early and again at the onset token."""
    out = timbre.clone()
    for b, f in torch.nonzero(starts).tolist():
        if f - frames - 1 < 0:
            continue
        floor = timbre[b, f - frames - 1]
        out[b, f - frames : f] = torch.minimum(timbre[b, f - frames : f], floor)
    return out


def _snap_changes(token: np.ndarray, onsets: np.ndarray, reach: int = 3) -> np.ndarray:
    """Move every change of the (bass, upper) token to the nearest onset within ``reach``
    frames, so a new note starts where its strike is heard and not where the 256 ms analysis
    window (or the majority smoothing) first sees it."""
    out = token.copy()
    if len(onsets) == 0:
        return out
    for c in np.flatnonzero(token[1:] != token[:-1]) + 1:
        o = int(onsets[np.argmin(np.abs(onsets - c))])
        if o == c or abs(o - c) > reach:
            continue
        if o < c:
            out[o:c] = token[c]
        else:
            out[c:o] = token[c - 1]
    return out


def _no_swell(timbre: torch.Tensor, starts: torch.Tensor, attack: int = 2) -> torch.Tensor:
    """(B, T, H) log-amplitudes whose frame level (mean over harmonics) never rises between two
    onsets after the first ``attack`` frames of a strike: every harmonic of a frame louder than
    the quietest frame before it (in its strike) is lowered by the excess. Why: the quantised
    (and generated) timbre codes jitter in loudness, and each jitter is heard as an onset the
    onset codebook does not have; the strikes the codec is for only decay or hold."""
    out = timbre.clone()
    t = timbre.shape[1]
    for b in range(timbre.shape[0]):
        bounds = torch.nonzero(starts[b]).flatten().tolist() + [t]
        if bounds[0] != 0:
            bounds = [0] + bounds
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            seg = timbre[b, lo + attack : hi]
            if len(seg) < 2:
                continue
            out[b, lo + attack : hi] = torch.cummin(seg, 0).values
    return out


def _frames_since(onsets: np.ndarray, t: int, cap: int) -> np.ndarray:
    """Onset frame indices -> (t,) frames since the latest onset at or before each frame,
    capped at ``cap`` (``cap`` before the first one)."""
    last = np.full(t, -1, dtype=np.int64)
    last[np.asarray(onsets, dtype=np.int64)] = np.asarray(onsets, dtype=np.int64)
    last = np.maximum.accumulate(last)
    return np.where(last >= 0, np.minimum(np.arange(t) - last, cap), cap)


def _note_tokens(notes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) picked MIDI notes (-1 = none) -> bass (T,) and upper-set token (T,).

    Notes more than 24 semitones above the lowest are dropped, and of those left the two most
    salient (picked first) are kept; a frame with no note gets -1 as its bass (held later)."""
    t = notes.shape[0]
    bass = np.full(t, -1, dtype=np.int64)
    upper = np.zeros(t, dtype=np.int64)
    for i in range(t):
        row = [int(n) for n in notes[i] if n >= 0]
        if not row:
            continue
        low = min(row)
        offs = []
        for n in row:
            d = n - low
            if 1 <= d <= MAX_SPAN and d not in offs:
                offs.append(d)
        bass[i] = low
        upper[i] = upper_token(offs[:2])
    return bass, upper


def _majority(tokens: np.ndarray, frames: int) -> np.ndarray:
    """Each frame's most common token over a centred window (ties: the frame's own)."""
    if frames <= 1:
        return tokens.copy()
    half = frames // 2
    out = tokens.copy()
    for i in range(len(tokens)):
        win = tokens[max(0, i - half) : i + half + 1]
        win = win[win >= 0]
        if len(win) == 0:
            continue
        values, counts = np.unique(win, return_counts=True)
        best = counts.max()
        if tokens[i] >= 0 and counts[values == tokens[i]].sum() == best:
            continue
        out[i] = values[np.argmax(counts)]
    return out


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Mean over ``width`` neighbouring harmonics (last axis), edges averaged over what exists."""
    pad = width // 2
    padded = np.pad(x, ((0, 0), (pad, pad)), mode="edge")
    kernel = np.ones(width) / width
    return np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, padded)


def _moving_mean_axis1(x: np.ndarray) -> np.ndarray:
    """(M, H, T): the mean of each harmonic and its two neighbours (one at the edges)."""
    pad = np.pad(x, ((0, 0), (1, 1), (0, 0)), mode="edge")
    return (pad[:, :-2] + pad[:, 1:-1] + pad[:, 2:]) / 3


def _hann_lobe(offset: np.ndarray) -> np.ndarray:
    """The Hann window's magnitude response at ``offset`` bins, normalised to 1 at 0."""
    x = np.asarray(offset, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.sinc(x) / (1 - x**2)
    val = np.where(np.abs(np.abs(x) - 1) < 1e-9, 0.5, val)
    return np.abs(np.where(np.abs(x) < 2, val, 0.0))


def _hold_previous(note: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """(B, T) notes where ``on``; elsewhere the previous on-frame's note (the first one's before)."""
    t = note.shape[-1]
    idx = torch.where(on, torch.arange(t, device=note.device), -1)
    idx = torch.cummax(idx, dim=-1).values
    first = torch.where(on.any(-1), on.float().argmax(-1), 0)
    idx = torch.where(idx < 0, first[:, None], idx)
    return torch.gather(note, -1, idx)
