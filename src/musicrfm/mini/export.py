"""What the mini recipe writes: resumable checkpoints (safetensors, no pickle) and the model
folder (`save_pretrained` + tokenizer + training record), also from a run still in progress."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

from musicrfm.errors import ModelError
from musicrfm.mini.codes import load_codec
from musicrfm.mini.config import TrainConfig
from musicrfm.mini.model import build_model

log = logging.getLogger(__name__)


def save_checkpoint(model, opt, step: int, history: list, folder: Path, seconds: float) -> None:
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


def load_checkpoint(model, opt, folder: Path) -> tuple[int, list, float]:
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
    step, history, seconds = load_checkpoint(model, opt, ckpt)
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
