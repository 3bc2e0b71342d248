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

This module is step 4 (the loop); the settings are :mod:`.config`, steps 1-3 :mod:`.codes`, the
model :mod:`.model`, and checkpoints and step 5 :mod:`.export`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from musicrfm.errors import ConfigError, ModelError
from musicrfm.mini.codes import prepare_codec_and_codes
from musicrfm.mini.config import TrainConfig, default_work_dir
from musicrfm.mini.export import load_checkpoint, save_checkpoint, save_model
from musicrfm.mini.model import batch_loss, build_model
from musicrfm.synth.notes import NoteClip, caption_for
from musicrfm.synth.strikes import StrikeClip

log = logging.getLogger(__name__)

# Settings that may change on --resume: the step budget, the thread count (speed only) and
# generation-only defaults.
_FREE_ON_RESUME = {"steps", "threads", "temperature", "top_k", "guidance_scale"}


def _captions(
    clips: list[NoteClip | StrikeClip], rng: np.random.Generator, cfg: TrainConfig
) -> list[str]:
    """Training captions: instrument and (unless dropped) register; a note clip's two-note or
    melody copy says so, a strike clip never names its notes, chord, interval or tempo."""
    out = []
    for c in clips:
        register = None if rng.random() < cfg.register_dropout else c.register
        if isinstance(c, NoteClip):
            two, melody = c.second_note is not None, c.melody is not None
            out.append(caption_for(c.instrument, register, two_notes=two, melody=melody))
        else:
            out.append(caption_for(c.instrument, register))
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
    work = _prepare_work(cfg, Path(work_dir) if work_dir else default_work_dir(out), resume)
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
        step, history, prior_seconds = load_checkpoint(model, opt, ckpt)
        log.info("resumed from step %d", step)
    n_dec = sum(p.numel() for p in model.decoder.parameters())
    n_all = sum(p.numel() for p in params)
    log.info("decoder %.2fM parameters, trainable %.2fM", n_dec / 1e6, n_all / 1e6)

    hold_idx = np.arange(min(64, len(hold_clips)))
    hold_ids, hold_mask = _tokenize(
        tokenizer, [c.caption for c in (hold_clips[i] for i in hold_idx)]
    )
    held_out = (hold_ids, hold_mask, hold_codes[torch.as_tensor(hold_idx)])

    bar = tqdm(total=cfg.steps, initial=step, desc="train", disable=not progress, mininterval=10)
    model.train()
    while step < cfg.steps:
        loss = _train_step(model, opt, params, tokenizer, train_clips, train_codes, step, pad, cfg)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        record = _step_record(model, loss, step, held_out, pad, cfg)
        if record:
            record["elapsed_s"] = round(prior_seconds + time.time() - t_start, 1)
            history.append(record)
            log.info("step %s", json.dumps(record))
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(model, opt, step, history, ckpt, prior_seconds + time.time() - t_start)
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


def _prepare_work(cfg: TrainConfig, work: Path, resume: bool) -> Path:
    """The work folder, with the config recorded: a run with other settings is refused on
    ``resume`` (unless only the step budget, threads or generation defaults changed) and starts afresh
    without it; a run with the same settings keeps its cached stages, and its checkpoint only
    on ``resume``."""
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
    return work


def _train_step(model, opt, params, tokenizer, clips, codes, step: int, pad: int, cfg: TrainConfig):
    """One seeded optimiser step on a random batch (seeded by (seed, step), so a resumed run
    draws the same batches); returns the batch loss."""
    import torch

    rng = np.random.default_rng([cfg.seed, step])
    torch.manual_seed(cfg.seed * 1_000_003 + step)
    idx = rng.integers(0, len(clips), cfg.batch_size)
    batch = [clips[i] for i in idx]
    drop = rng.random(cfg.batch_size) < cfg.caption_dropout
    ids, mask = _tokenize(tokenizer, _captions(batch, rng, cfg), drop)
    for group in opt.param_groups:
        group["lr"] = _lr(step, cfg)
    loss = batch_loss(model, ids, mask, codes[torch.as_tensor(idx)], pad)
    if not torch.isfinite(loss):
        raise ModelError(f"non-finite loss at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    return loss


def _step_record(model, loss, step: int, held_out: tuple, pad: int, cfg: TrainConfig) -> dict:
    """What the history keeps after ``step`` (now counted from 1): loss and learning rate every
    50 steps, and the held-out loss every ``eval_every`` and at the end; else empty."""
    import torch

    record: dict[str, float] = {}
    if step % 50 == 0:
        record = {"step": step, "loss": loss.item(), "lr": _lr(step, cfg)}
    if step % cfg.eval_every == 0 or step == cfg.steps:
        model.eval()
        with torch.no_grad():
            val = batch_loss(model, *held_out, pad)
        model.train()
        record.update({"step": step, "loss": loss.item(), "val_loss": val.item()})
    return record
