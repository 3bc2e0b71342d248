"""The recipe that trains the bundled mini MusicGen (`musicrfm mini train`).

Stages, each cached in a work folder so that an interrupted run resumes where it stopped:

1. render one-note clips (12 tonal GM programs x MIDI 48-83 x 2 velocities, 4 s at 16 kHz),
   split them by (program, note) into train / held-out, and with ``two_note_clips``, add a
   two-note copy of every training clip;
2. fit the spectral codec's residual k-means codebooks on the training clips' log-mel frames;
3. encode every clip to 4 x 200 codes;
4. train a tiny T5 text encoder + `MusicgenForCausalLM` decoder (delay pattern, BOS first, exactly
   the layout `generate` uses) on captions naming instrument and register, with caption dropout
   so that classifier-free guidance works; seeded per step, checkpoints in safetensors;
5. assemble a `MusicgenForConditionalGeneration`, `save_pretrained` it with the tokenizer, and
   write the model card. `musicrfm.mini.gates` then measures the quality gates.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError, ModelError
from musicrfm.files import cache_dir
from musicrfm.mini.data import split_clips, with_melodies, with_second_notes
from musicrfm.synth.notes import TRAIN_PROGRAMS, NoteClip, caption_for, note_grid, render_clips

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything the recipe depends on (recorded in the work folder and the model card)."""

    steps: int = 5000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 150
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    caption_dropout: float = 0.2  # whole caption dropped -> unconditional rows for CFG
    register_dropout: float = 0.2  # register words dropped -> instrument-only prompts work
    # decoder
    hidden_size: int = 192
    num_layers: int = 6
    num_heads: int = 4
    ffn_dim: int = 768
    dropout: float = 0.1
    # data
    programs: tuple[int, ...] = TRAIN_PROGRAMS
    seconds: float = 4.0
    low_note: int = 48
    high_note: int = 83
    velocities: tuple[int, ...] = (70, 100)
    # (repeats, gate) rhythms each training (program, note, velocity) is rendered with; more than
    # one makes timing independent of the instrument and note, so the decoder cannot just replay.
    # Measured in session 6: with these four rhythms and melody copies the held-out loss ends at
    # 3.5 (one rhythm, one note: 10.3) and random/orthogonal controls stay at baseline for 12/12
    # notes, so this is the bundled model's recipe (records without the field: ((4, 0.9),))
    rhythms: tuple[tuple[int, float], ...] = ((4, 0.9), (2, 0.9), (8, 0.5), (1, 1.0))
    # add a two-note copy (pitch changes half-way, caption "..., two notes") of every training
    # clip, so the decoder has to keep the instrument while the pitch moves (`--two-notes`).
    # Measured in session 4: gates pass and steered clips sound cleaner, but the pooled
    # hit-rate/adherence trade-off of the headline stayed the same, so the bundled model is
    # still the one-note recipe (notes/LEARNINGS.md)
    two_note_clips: bool = False
    # add a melody copy (a random note per strike, caption "..., melody") of every training
    # clip (`--melodies`, the default): pitch becomes a per-strike choice independent of the
    # instrument (records without the field: False)
    melody_clips: bool = True
    holdout: float = 0.08
    # codec: "harmonic" (codebook 0 is the MIDI note, the others the note-relative harmonic
    # amplitudes), so that a push toward a note need not move the instrument, or "spectral"
    # (log-mel k-means; codes are joint pitch x timbre spectra). Measured in session 7: the
    # harmonic model reaches 0.8 on every note at 0.05-0.1x the activation norm with prompt
    # adherence 0.98 -> 0.97, where the spectral one lost 0.22 (records without the field:
    # spectral)
    codec: str = "harmonic"
    codec_iters: int = 20
    # bookkeeping
    checkpoint_every: int = 250
    eval_every: int = 250
    threads: int = 1  # more threads are far slower on a shared, loaded CPU
    guidance_scale: float = 3.0
    top_k: int = 50
    temperature: float = 0.5  # measured: clearer pitch than 1.0 on the partly trained model
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config recorded in a work folder or model card (JSON lists back to tuples)."""
        from musicrfm.synth.notes import INSTRUMENTS

        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and k != "extra"}
        # fields added after a record was written take the value of the recipe it was made by
        known = {"rhythms": ((4, 0.9),), "melody_clips": False, "codec": "spectral", **known}
        cfg = cls(**known)
        cfg.velocities = tuple(cfg.velocities)
        cfg.rhythms = tuple((int(r), float(g)) for r, g in cfg.rhythms)
        # records written before `programs` existed were trained on every INSTRUMENTS program
        cfg.programs = tuple(raw.get("programs", tuple(INSTRUMENTS)))
        return cfg

    @property
    def frames(self) -> int:
        return int(round(self.seconds * 50))


# Settings that may change on --resume: the step budget and generation-only defaults.
_FREE_ON_RESUME = {"steps", "temperature", "top_k", "guidance_scale"}


def default_work_dir(out: Path) -> Path:
    """``mini-work/<name of out>`` under the cache root (:func:`musicrfm.files.cache_root`)."""
    return cache_dir("mini-work") / out.resolve().name


# --------------------------------------------------------------------------- data + codec stages
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

    train_clips, hold_clips = _grid(cfg)
    codec_dir, codes_path = work / "codec", work / "codes.safetensors"
    if (codec_dir / "config.json").exists():
        codec = load_codec(codec_dir)
        log.info("codec loaded from %s", codec_dir)
    else:
        t0 = time.time()
        audio = torch.from_numpy(render_clips(train_clips, seconds=cfg.seconds, progress=True))
        codec = new_codec(cfg.codec)
        feats = torch.cat([codec.fit_features(audio[i : i + 64]) for i in range(0, len(audio), 64)])
        codec.fit_codebooks(feats, iters=cfg.codec_iters, seed=cfg.seed)
        _atomic_save_pretrained(codec, codec_dir)
        log.info("codec fitted on %d clips in %.0f s", len(train_clips), time.time() - t0)
    if codes_path.exists():
        codes = load_file(codes_path)
    else:
        codes = {}
        for name, clips in (("train", train_clips), ("holdout", hold_clips)):
            audio = torch.from_numpy(render_clips(clips, seconds=cfg.seconds))
            parts = [
                codec.encode(audio[i : i + 64, None]).audio_codes[0]
                for i in range(0, len(audio), 64)
            ]
            codes[name] = torch.cat(parts).to(torch.int16).contiguous()
        tmp = codes_path.with_suffix(".tmp")
        save_file(codes, tmp)
        tmp.replace(codes_path)
        log.info("encoded %d + %d clips", len(train_clips), len(hold_clips))
    return codec, train_clips, hold_clips, codes["train"].long(), codes["holdout"].long()


CODECS = ("spectral", "harmonic")


def new_codec(name: str):
    """An unfitted codec of the recipe's kind (``TrainConfig.codec``)."""
    from musicrfm.models.codecs.harmonic import HarmonicCodecConfig, HarmonicCodecModel
    from musicrfm.models.codecs.spectral import SpectralCodecConfig, SpectralCodecModel

    if name == "spectral":
        return SpectralCodecModel(SpectralCodecConfig())
    if name == "harmonic":
        return HarmonicCodecModel(HarmonicCodecConfig())
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


# --------------------------------------------------------------------------- model
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


def _captions(clips: list[NoteClip], rng: np.random.Generator, cfg: TrainConfig) -> list[str]:
    out = []
    for c in clips:
        register = None if rng.random() < cfg.register_dropout else c.register
        out.append(
            caption_for(
                c.instrument, register, two_notes=c.second_note is not None,
                melody=c.melody is not None,
            )
        )  # fmt: skip
    return out


def _tokenize(tokenizer, captions: list[str], drop: np.ndarray | None = None):
    enc = tokenizer(captions, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].clone()
    if drop is not None:
        mask[drop] = 0  # MusicGen's unconditional rows: zero hidden states, zero mask
    return enc["input_ids"], mask


def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (
        cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


# --------------------------------------------------------------------------- checkpoints
def _save_checkpoint(model, opt, step: int, history: list, folder: Path, seconds: float) -> None:
    import torch
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state, seen = {}, set()
    for k, v in model.state_dict().items():
        if "audio_encoder" in k or v.data_ptr() in seen:  # codec is fixed; tied weights once
            continue
        seen.add(v.data_ptr())
        state[k] = v.detach().contiguous()
    save_file(state, tmp / "model.safetensors")
    opt_tensors, opt_meta = {}, {"param_groups": opt.state_dict()["param_groups"]}
    for pid, st in opt.state_dict()["state"].items():
        for name, val in st.items():
            opt_tensors[f"{pid}.{name}"] = torch.as_tensor(val).contiguous()
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    meta = {"step": step, "history": history, "opt": opt_meta, "seconds": round(seconds, 1)}
    (tmp / "state.json").write_text(json.dumps(meta))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def _load_checkpoint(model, opt, folder: Path) -> tuple[int, list, float]:
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"text_encoder.encoder.embed_tokens.weight", "text_encoder.shared.weight"}
    if unexpected or any("audio_encoder" not in m and m not in tied for m in missing):
        raise ModelError(f"checkpoint {folder} does not match the model: {unexpected or missing}")
    meta = json.loads((folder / "state.json").read_text())
    tensors = load_file(folder / "optimizer.safetensors")
    opt_state: dict[int, dict] = {}
    for key, val in tensors.items():
        pid, name = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = val
    opt.load_state_dict({"state": opt_state, "param_groups": meta["opt"]["param_groups"]})
    return int(meta["step"]), list(meta["history"]), float(meta.get("seconds", 0.0))


# --------------------------------------------------------------------------- training
def train(
    out: str | Path,
    *,
    config: TrainConfig | None = None,
    work_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Run the whole recipe and write the model folder ``out``; returns its path."""
    import torch
    from tqdm.auto import tqdm

    from musicrfm.mini.text import build_tokenizer

    cfg = config or TrainConfig()
    out = Path(out)
    work = Path(work_dir) if work_dir else default_work_dir(out)
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "train_config.json"
    cfg_json = json.dumps(asdict(cfg), indent=2, sort_keys=True)
    if cfg_path.exists() and cfg_path.read_text() != cfg_json:
        # an old record reads with the recipe it was made by (e.g. no `codec` field: spectral)
        old = json.loads(
            json.dumps(asdict(TrainConfig.from_record(json.loads(cfg_path.read_text()))))
        )
        new = json.loads(json.dumps(asdict(cfg)))
        changed = sorted(k for k, v in new.items() if k not in _FREE_ON_RESUME and old.get(k) != v)
        if resume and not changed:
            # Only the step budget or generation defaults changed: continue (the cosine
            # schedule stretches to the new budget).
            log.warning("resuming with --steps %d (was %d)", cfg.steps, old["steps"])
        elif resume:
            raise ConfigError(
                f"--resume with different settings than the run in {work} "
                f"({', '.join(f'{k}: {old.get(k)!r} -> {new[k]!r}' for k in changed)}); "
                "use the same options or another --work-dir"
            )
        else:
            shutil.rmtree(work)
            work.mkdir(parents=True)
    elif cfg_path.exists() and not resume:
        for name in ("checkpoint",):
            if (work / name).exists():
                shutil.rmtree(work / name)
    cfg_path.write_text(cfg_json)
    torch.set_num_threads(cfg.threads)
    t_start = time.time()

    codec, train_clips, hold_clips, train_codes, hold_codes = prepare_codec_and_codes(cfg, work)
    tokenizer = build_tokenizer()
    model = build_model(cfg, codec, tokenizer)
    model.freeze_audio_encoder()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    pad = codec.config.codebook_size
    step, history, prior_seconds = 0, [], 0.0
    ckpt = work / "checkpoint"
    if resume and (ckpt / "state.json").exists():
        step, history, prior_seconds = _load_checkpoint(model, opt, ckpt)
        log.info("resumed from step %d", step)
    n_dec = sum(p.numel() for p in model.decoder.parameters())
    n_all = sum(p.numel() for p in params)
    log.info("decoder %.2fM parameters, trainable %.2fM", n_dec / 1e6, n_all / 1e6)

    hold_idx = np.arange(min(64, len(hold_clips)))
    hold_ids, hold_mask = _tokenize(
        tokenizer, [c.caption for c in (hold_clips[i] for i in hold_idx)]
    )

    bar = tqdm(total=cfg.steps, initial=step, desc="train", disable=not progress, mininterval=10)
    model.train()
    while step < cfg.steps:
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        idx = rng.integers(0, len(train_clips), cfg.batch_size)
        clips = [train_clips[i] for i in idx]
        drop = rng.random(cfg.batch_size) < cfg.caption_dropout
        ids, mask = _tokenize(tokenizer, _captions(clips, rng, cfg), drop)
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        loss = batch_loss(model, ids, mask, train_codes[torch.as_tensor(idx)], pad)
        if not torch.isfinite(loss):
            raise ModelError(f"non-finite loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        record: dict[str, float] = {}
        if step % 50 == 0:
            record = {"step": step, "loss": loss.item(), "lr": _lr(step, cfg)}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            with torch.no_grad():
                val = batch_loss(
                    model, hold_ids, hold_mask, hold_codes[torch.as_tensor(hold_idx)], pad
                )
            model.train()
            record.update({"step": step, "loss": loss.item(), "val_loss": val.item()})
        if record:
            record["elapsed_s"] = round(prior_seconds + time.time() - t_start, 1)
            history.append(record)
            log.info("step %s", json.dumps(record))
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _save_checkpoint(model, opt, step, history, ckpt, prior_seconds + time.time() - t_start)
    bar.close()
    model.eval()
    train_seconds = time.time() - t_start
    info = {
        "train_config": asdict(cfg),
        "history": history,
        "train_seconds_this_run": round(train_seconds, 1),
        "train_seconds_total": round(prior_seconds + train_seconds, 1),
        "decoder_parameters": n_dec,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "train_clips": len(train_clips),
        "holdout_clips": len(hold_clips),
    }
    save_model(model, tokenizer, out, info)
    return out


def save_model(model, tokenizer, out: Path, info: dict) -> None:
    """Write config + safetensors + tokenizer + training record (atomically) into ``out``."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(info, indent=2))
    for extra in tmp.glob("*.bin"):
        raise ModelError(f"unexpected pickle file {extra} in the model folder")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("model written to %s", out)


def export_checkpoint(work_dir: str | Path, out: str | Path) -> Path:
    """Assemble the model folder ``out`` from a work folder's codec and latest checkpoint.

    Useful to look at a run before it ends (the run itself is not disturbed).
    """
    from musicrfm.mini.text import build_tokenizer

    work, out = Path(work_dir), Path(out)
    ckpt = work / "checkpoint"
    if not (ckpt / "state.json").exists() or not (work / "codec" / "config.json").exists():
        raise ModelError(f"no checkpoint in {work}; start `musicrfm mini train` first")
    raw = json.loads((work / "train_config.json").read_text())
    cfg = TrainConfig.from_record(raw)
    tokenizer = build_tokenizer()
    model = build_model(cfg, load_codec(work / "codec"), tokenizer)
    opt = _dummy_optimizer(model)
    step, history, seconds = _load_checkpoint(model, opt, ckpt)
    model.eval()
    info = {
        "train_config": asdict(cfg),
        "history": history,
        "checkpoint_step": step,
        "train_seconds_total": seconds,
        "decoder_parameters": sum(p.numel() for p in model.decoder.parameters()),
        "total_parameters": sum(p.numel() for p in model.parameters()),
    }
    save_model(model, tokenizer, out, info)
    return out


def _dummy_optimizer(model):
    import torch

    model.freeze_audio_encoder()
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], betas=(0.9, 0.95))
