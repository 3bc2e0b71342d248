"""Stages 1-3 of the mini recipe: the training and held-out clips, the codec fitted on the
training clips, and every clip encoded to codes (both cached in the work folder)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from musicrfm.errors import ConfigError
from musicrfm.mini.config import TrainConfig
from musicrfm.mini.data import split_clips, with_melodies, with_second_notes
from musicrfm.synth.notes import NoteClip, note_grid, render_clips
from musicrfm.synth.strikes import StrikeClip, split_strikes, strike_grid

log = logging.getLogger(__name__)

DATA = ("notes", "strikes")


def recipe_clips(
    cfg: TrainConfig,
) -> tuple[list[NoteClip | StrikeClip], list[NoteClip | StrikeClip]]:
    """The recipe's (training, held-out) clips for ``cfg.data``: note clips or strike clips."""
    if cfg.data == "notes":
        return _grid(cfg)
    if cfg.data == "strikes":
        clips = strike_grid(
            list(cfg.programs), note_range=(cfg.low_note, cfg.high_note), seed=cfg.seed
        )
        return split_strikes(clips, holdout=cfg.holdout, seed=cfg.seed)
    raise ConfigError(f"unknown recipe data {cfg.data!r}; choose one of {', '.join(DATA)}")


def _grid(cfg: TrainConfig) -> tuple[list[NoteClip], list[NoteClip]]:
    pairs = note_grid(
        list(cfg.programs), low=cfg.low_note, high=cfg.high_note, velocities=(cfg.velocities[0],)
    )
    train_pairs, hold_pairs = split_clips(pairs, holdout=cfg.holdout, seed=cfg.seed)

    def expand(ps: list[NoteClip]) -> list[NoteClip]:
        return [
            NoteClip(p.program, p.midi_note, v, r, g)
            for p in ps
            for v in cfg.velocities
            for r, g in cfg.rhythms
        ]

    train = expand(train_pairs)
    held = {(c.program, c.midi_note) for c in hold_pairs}  # never heard, not even as a later note
    if cfg.two_note_clips:
        train += with_second_notes(
            train, low=cfg.low_note, high=cfg.high_note, seed=cfg.seed, exclude=held
        )
    if cfg.melody_clips:
        one_note = [c for c in train if c.second_note is None]
        train += with_melodies(
            one_note, low=cfg.low_note, high=cfg.high_note, seed=cfg.seed + 1, exclude=held
        )
    return train, expand(hold_pairs)


def prepare_codec_and_codes(cfg: TrainConfig, work: Path):
    """Stages 1-3: returns (codec, train clips, held-out clips, train codes, held-out codes)."""
    import torch
    from safetensors.torch import load_file, save_file

    train_clips, hold_clips = recipe_clips(cfg)
    codec_dir, codes_path = work / "codec", work / "codes.safetensors"
    if (codec_dir / "config.json").exists():
        codec = load_codec(codec_dir)
        log.info("codec loaded from %s", codec_dir)
    else:
        t0 = time.time()
        fit_clips = _fit_subset(train_clips, cfg)
        audio = torch.from_numpy(render_clips(fit_clips, seconds=cfg.seconds, progress=True))
        codec = new_codec(cfg.codec)
        feats = torch.cat(
            [codec.fit_features(audio[i : i + 64]) for i in _batches(len(audio), "analyse")]
        )
        codec.fit_codebooks(feats, iters=cfg.codec_iters, seed=cfg.seed)
        _atomic_save_pretrained(codec, codec_dir)
        log.info("codec fitted on %d clips in %.0f s", len(fit_clips), time.time() - t0)
    if codes_path.exists():
        codes = load_file(codes_path)
    else:
        codes = {}
        for name, clips in (("train", train_clips), ("holdout", hold_clips)):
            audio = torch.from_numpy(render_clips(clips, seconds=cfg.seconds))
            parts = [
                codec.encode(audio[i : i + 64, None]).audio_codes[0]
                for i in _batches(len(audio), f"encode {name}")
            ]
            codes[name] = torch.cat(parts).to(torch.int16).contiguous()
        tmp = codes_path.with_suffix(".tmp")
        save_file(codes, tmp)
        tmp.replace(codes_path)
        log.info("encoded %d + %d clips", len(train_clips), len(hold_clips))
    return codec, train_clips, hold_clips, codes["train"].long(), codes["holdout"].long()


def _fit_subset(clips: list, cfg: TrainConfig) -> list:
    """The training clips the codebooks are fitted on: all, or a seeded subset of
    ``cfg.codec_fit_clips`` in their original order."""
    import numpy as np

    n = cfg.codec_fit_clips
    if n is None or n >= len(clips):
        return clips
    keep = np.sort(np.random.default_rng(cfg.seed).choice(len(clips), n, replace=False))
    return [clips[i] for i in keep]


def _batches(n: int, what: str) -> Iterable[int]:
    """Starts of 64-clip batches, with a progress bar (the polyphonic codec takes minutes)."""
    from tqdm.auto import tqdm

    return tqdm(range(0, n, 64), desc=what, mininterval=10)


CODECS = ("spectral", "harmonic", "polyphonic", "polyphonic_onsets")


def new_codec(name: str):
    """An unfitted codec of the recipe's kind (``TrainConfig.codec``)."""
    from musicrfm.models.codecs.harmonic import HarmonicCodecConfig, HarmonicCodecModel
    from musicrfm.models.codecs.polyphonic import PolyphonicCodecConfig, PolyphonicCodecModel
    from musicrfm.models.codecs.spectral import SpectralCodecConfig, SpectralCodecModel

    if name == "spectral":
        return SpectralCodecModel(SpectralCodecConfig())
    if name == "harmonic":
        return HarmonicCodecModel(HarmonicCodecConfig())
    if name == "polyphonic":
        return PolyphonicCodecModel(PolyphonicCodecConfig())
    if name == "polyphonic_onsets":  # + an onset-stage codebook (session 14)
        return PolyphonicCodecModel(PolyphonicCodecConfig(onset_codebook=True, num_codebooks=5))
    raise ConfigError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")


def load_codec(folder: Path):
    """A fitted codec folder, whichever kind its config names."""
    from transformers import AutoModel

    from musicrfm.models import register_codecs

    register_codecs()

    return AutoModel.from_pretrained(folder)


def _atomic_save_pretrained(model, folder: Path) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
