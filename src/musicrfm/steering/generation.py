"""Text prompts → audio, optionally steered by a `SteeringPlan`; audio files with JSON sidecars.

Every output gets a sidecar (`<name>.json`) with the full plan (absolute direction paths and a
digest of their contents), the model's info, the prompt, the seeds and every option, so
`reproduce(sidecar)` regenerates it bit for bit (same machine, library versions and device).

Batching: prompts × seeds are generated in chunks of ``batch`` items. With ``batch=1`` (the
default) each item draws from its own random stream, seeded with its seed. With ``batch > 1`` the
items of a chunk share one sampling stream seeded with the chunk's first seed (that is how torch
sampling works); the sidecar records the whole chunk so the output still reproduces exactly.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicrfm.errors import ConfigError, ModelError
from musicrfm.steering.hooks import apply_plan, compile_plan, resolve_model
from musicrfm.steering.plan import SteeringDirection, SteeringPlan

log = logging.getLogger(__name__)

AUDIO_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}


@dataclass
class GenerationResult:
    """One generated clip. audio: (channels, samples) float32 at ``sample_rate``."""

    prompt: str
    seed: int
    audio: np.ndarray
    sample_rate: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.audio.shape[-1] / float(self.sample_rate)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.wav as 32-bit float, .flac as 24-bit) and ``path`` with .json."""
        import soundfile as sf

        path = Path(path)
        fmt = AUDIO_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"output must end in .wav or .flac, got {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        sf.write(str(tmp), self.audio.T, self.sample_rate, format=fmt[0], subtype=fmt[1])
        tmp.replace(path)
        meta = dict(self.meta, audio_file=path.name, audio_format=f"{fmt[0]}/{fmt[1]}")
        side = path.with_suffix(".json")
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
        tmp.replace(side)
        return path


def _audio_digest(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def steps_for(seconds: float, model: Any) -> int:
    """Decoder steps for ``seconds`` of audio: frames + the codebook delay tail."""
    view = resolve_model(model)
    if view.frame_rate is None:
        raise ModelError("the model's frame rate is unknown; cannot convert seconds to steps")
    delay = getattr(view.adapter, "max_delay", None)
    if delay is None:
        delay = (view.num_codebooks or 1) - 1
    return int(round(seconds * view.frame_rate)) + int(delay)


def _check_options(
    seconds: float,
    guidance_scale: float,
    temperature: float,
    top_k: int,
    top_p: float | None,
    batch: int,
) -> None:
    for name, v in (
        ("seconds", seconds),
        ("guidance_scale", guidance_scale),
        ("temperature", temperature),
    ):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    if guidance_scale < 0:
        raise ConfigError(
            f"guidance_scale must be >= 0 (1 or less: no guidance), got {guidance_scale}"
        )
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    if int(top_k) < 0:
        raise ConfigError(f"top_k must be >= 0 (0: off), got {top_k}")
    if top_p is not None and not 0.0 <= float(top_p) <= 1.0:
        raise ConfigError(f"top_p must be in [0, 1] (0 or 1: off), got {top_p}")
    if int(batch) < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")


def _versions() -> dict[str, str]:
    import transformers

    from musicrfm import __version__

    return {
        "musicrfm": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def _model_info(view: Any) -> dict[str, Any]:
    if view.adapter is not None and hasattr(view.adapter, "info"):
        return dict(view.adapter.info())
    return {
        "model_id": view.model_id,
        "num_layers": view.num_layers,
        "hidden_size": view.hidden_size,
        "frame_rate": view.frame_rate,
    }


def generate(
    model: Any,
    prompts: str | Sequence[str],
    *,
    plan: SteeringPlan | SteeringDirection | None = None,
    seconds: float = 5.0,
    seed: int | Sequence[int] = 0,
    guidance_scale: float = 3.0,
    temperature: float = 1.0,
    top_k: int = 250,
    top_p: float | None = 0.0,
    batch: int = 1,
    strict: bool = True,
) -> list[GenerationResult]:
    """Generate audio for each prompt and seed (prompt-major order), steered by ``plan``.

    Parameters
    ----------
    model: a `musicrfm.models.MusicGenAdapter` (it supplies the tokenizer).
    prompts: one prompt or a list.
    plan: `SteeringPlan` (or one `SteeringDirection`); None or coefficient 0 → plain generation.
    seconds: audio length; the model runs ``seconds × frame_rate + delay`` steps.
    seed: one seed, or several (each prompt is generated once per seed). Also the gate seed
        unless the plan fixes one.
    guidance_scale: classifier-free guidance (≤ 1: off). temperature: 0 → greedy.
    top_k: 0 → off. top_p: 0 or 1 → off. batch: items per forward batch (see module doc).
    strict: require the directions' model id to match the model.

    Every check (options, plan against model) runs before the first step is generated.
    """
    view = resolve_model(model)
    if view.adapter is None or not hasattr(view.adapter, "tokenize"):
        raise ModelError(
            "generate() needs a MusicGenAdapter (musicrfm.models.load_model / random_model)"
        )
    adapter = view.adapter
    prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
    if not prompts:
        raise ConfigError("no prompts given")
    seeds = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    if not seeds:
        raise ConfigError("no seeds given")
    _check_options(seconds, guidance_scale, temperature, top_k, top_p, batch)
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    steps = steps_for(seconds, view)
    # validate the plan against the model now (errors before any generation)
    compiled = compile_plan(plan, view, seed=seeds[0], total_steps=steps, strict=strict)
    cfg = guidance_scale > 1
    do_sample = temperature > 0
    gen_kwargs: dict[str, Any] = {
        "max_new_tokens": steps,
        "do_sample": do_sample,
        "guidance_scale": float(guidance_scale) if cfg else 1.0,  # <= 1: no CFG rows
    }
    if do_sample:
        gen_kwargs.update(
            temperature=float(temperature),
            top_k=int(top_k),
            top_p=float(top_p) if top_p not in (None, 0, 0.0) else 1.0,
        )
    options = {
        "seconds": float(seconds),
        "steps": steps,
        "guidance_scale": float(guidance_scale),
        "temperature": float(temperature),
        "top_k": int(top_k),
        "top_p": float(top_p or 0.0),
        "batch": int(batch),
        "do_sample": do_sample,
        "strict": bool(strict),
    }
    plan_dict = plan.to_dict(strict=False) if plan is not None else None
    info = _model_info(view)
    versions = _versions()
    items = [(p, s) for p in prompts for s in seeds]
    results: list[GenerationResult] = []
    log.info(
        "generating %d clip(s) of %.2f s (%d steps), steering layers %s",
        len(items),
        seconds,
        steps,
        compiled.steered_layers or "none",
    )
    for start in range(0, len(items), int(batch)):
        chunk = items[start : start + int(batch)]
        chunk_seed = chunk[0][1]
        audio = _run_chunk(
            adapter, view, [p for p, _ in chunk], plan, chunk_seed, steps, cfg, gen_kwargs, strict
        )
        gate_seed = plan.seed if plan is not None and plan.seed is not None else chunk_seed
        for i, (prompt, s) in enumerate(chunk):
            a = audio[i]
            meta = {
                "kind": "musicrfm.generation",
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "prompt": prompt,
                "seed": s,
                "chunk": {
                    "prompts": [p for p, _ in chunk],
                    "seeds": [x for _, x in chunk],
                    "index": i,
                    "rng_seed": chunk_seed,
                },
                "gate_seed": gate_seed if plan is not None else None,
                "options": options,
                "plan": plan_dict,
                "steered_layers": compiled.steered_layers,
                "model": info,
                "versions": versions,
                "sample_rate": adapter.sample_rate,
                "num_samples": int(a.shape[-1]),
                "audio_sha256": _audio_digest(a),
            }
            results.append(GenerationResult(prompt, s, a, int(adapter.sample_rate), meta))
    return results


@torch.inference_mode()
def _run_chunk(
    adapter: Any,
    view: Any,
    prompts: list[str],
    plan: SteeringPlan | None,
    seed: int,
    steps: int,
    cfg: bool,
    gen_kwargs: dict[str, Any],
    strict: bool,
) -> np.ndarray:
    tok = adapter.tokenize(prompts)
    with apply_plan(view, plan, seed=seed, total_steps=steps, cfg=cfg, strict=strict):
        torch.manual_seed(seed)
        out = view.model.generate(**tok, **gen_kwargs)
    if not isinstance(out, torch.Tensor):  # return_dict_in_generate set in the config
        out = out.sequences
    return out.detach().float().cpu().numpy()


def output_paths(results: Sequence[GenerationResult], output: str | Path) -> list[Path]:
    """One result → ``output``; several → ``<stem>_<prompt>_s<seed><suffix>`` next to it
    (or inside ``output`` when it is a folder / has no suffix: .wav)."""
    output = Path(output)
    if len(results) == 1 and output.suffix:
        return [output]
    folder, stem, suffix = (
        (output.parent, output.stem + "_", output.suffix) if output.suffix else (output, "", ".wav")
    )
    paths = []
    for i, r in enumerate(results):
        slug = re.sub(r"[^a-z0-9]+", "-", r.prompt.lower()).strip("-")[:40] or "prompt"
        paths.append(folder / f"{stem}{i:03d}_{slug}_s{r.seed}{suffix}")
    return paths


def write_results(results: Sequence[GenerationResult], output: str | Path) -> list[Path]:
    """Save every result (audio + sidecar); returns the audio paths."""
    return [r.save(p) for r, p in zip(results, output_paths(results, output))]


def load_sidecar(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path.with_suffix(".json")
    if not path.exists():
        raise ConfigError(f"sidecar not found: {path}")
    meta = json.loads(path.read_text())
    if meta.get("kind") != "musicrfm.generation":
        raise ConfigError(f"{path} is not a musicrfm generation sidecar")
    return meta


def reproduce(sidecar: str | Path | dict[str, Any], model: Any = None) -> GenerationResult:
    """Regenerate the clip a sidecar describes (loads the model by its id when not given)."""
    meta = sidecar if isinstance(sidecar, dict) else load_sidecar(sidecar)
    if model is None:
        from musicrfm.models import load_model

        info = meta["model"]
        model = load_model(
            info["model_id"], device=info.get("device", "cpu"), dtype=info.get("dtype", "float32")
        )
    plan = None
    if meta.get("plan") is not None:
        if any(d.get("directions") is None for d in meta["plan"].get("direction", [])):
            raise ConfigError(
                "this sidecar's plan used in-memory directions; it cannot be replayed"
            )
        plan = SteeringPlan.from_dict(meta["plan"])
    o, chunk = meta["options"], meta["chunk"]
    if len(set(chunk["prompts"])) == 1 and len(chunk["prompts"]) > 1:
        prompts, seeds = [chunk["prompts"][0]], chunk["seeds"]
    elif len(set(chunk["seeds"])) == 1:
        prompts, seeds = chunk["prompts"], [chunk["seeds"][0]]
    else:
        raise ConfigError("this sidecar's batch mixes prompts and seeds; regenerate the whole run")
    results = generate(
        model,
        prompts,
        plan=plan,
        seconds=o["seconds"],
        seed=seeds,
        guidance_scale=o["guidance_scale"],
        temperature=o["temperature"],
        top_k=o["top_k"],
        top_p=o["top_p"],
        batch=o["batch"],
        strict=o.get("strict", True),
    )
    return results[chunk["index"]]
