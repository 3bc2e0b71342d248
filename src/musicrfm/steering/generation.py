"""Text prompts → audio, optionally steered by a `SteeringPlan`; audio files with JSON sidecars.

Every output gets a sidecar (`<name>.json`) with the full plan (absolute direction paths and a
digest of their contents), the model's info, the prompt, the seeds and every option, so
`reproduce(sidecar)` regenerates it bit for bit (same machine, library versions and device).

Batching: prompts × seeds are generated in chunks of ``batch`` items. With ``batch=1`` (the
default) each item draws from its own random stream, seeded with its seed. With ``batch > 1`` the
items of a chunk share one sampling stream seeded with the chunk's first seed (that is how torch
sampling works); the sidecar records the whole chunk so the output still reproduces exactly.

How clips are made travels as one frozen `GenerationOptions` (stored under the sidecar's
``"options"``; `GenerationOptions.from_dict` reads old sidecars too). The plan is compiled once
per `generate` call; each chunk only swaps in its gate seed (the plan's, else the chunk's seed).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from musicrfm.errors import ConfigError, ModelError
from musicrfm.models.adapter import ModelAdapter
from musicrfm.steering.adapters import as_adapter
from musicrfm.steering.compile import CompiledPlan, compile_plan
from musicrfm.steering.hooks import apply_plan
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


def steps_for(seconds: float, model: ModelAdapter | nn.Module) -> int:
    """Decoder steps for ``seconds`` of audio: frames + the codebook delay tail."""
    adapter = as_adapter(model)
    if not adapter.frame_rate:
        raise ModelError("the model's frame rate is unknown; cannot convert seconds to steps")
    return int(round(seconds * adapter.frame_rate)) + int(adapter.max_delay)


@dataclass(frozen=True)
class GenerationOptions:
    """How every clip of a `generate` call is made (which clips: its prompts and seeds).

    seconds: audio length; the model runs ``seconds × frame_rate + delay`` steps.
    guidance_scale: classifier-free guidance (≤ 1: off). temperature: 0 → greedy.
    top_k: 0 → off. top_p: 0 or 1 → off. batch: items per forward batch (see module doc).
    strict: require the directions' model id to match the model.

    A sidecar stores them under ``"options"`` (with the derived ``steps`` and ``do_sample``);
    `from_dict` rebuilds them from any sidecar, old ones included.
    """

    seconds: float = 5.0
    guidance_scale: float = 3.0
    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    batch: int = 1
    strict: bool = True

    DERIVED: ClassVar[tuple[str, ...]] = ("steps", "do_sample")  # written to sidecars, not read

    def __post_init__(self) -> None:
        for name in ("seconds", "guidance_scale", "temperature"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v!r}")
        if self.seconds <= 0:
            raise ConfigError(f"seconds must be > 0, got {self.seconds}")
        if self.guidance_scale < 0:
            raise ConfigError(
                f"guidance_scale must be >= 0 (1 or less: no guidance), got {self.guidance_scale}"
            )
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0: greedy), got {self.temperature}")
        if int(self.top_k) < 0:
            raise ConfigError(f"top_k must be >= 0 (0: off), got {self.top_k}")
        if self.top_p is not None and not 0.0 <= float(self.top_p) <= 1.0:
            raise ConfigError(f"top_p must be in [0, 1] (0 or 1: off), got {self.top_p}")
        if int(self.batch) < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        for name, value in (
            ("seconds", float(self.seconds)),
            ("guidance_scale", float(self.guidance_scale)),
            ("temperature", float(self.temperature)),
            ("top_k", int(self.top_k)),
            ("top_p", float(self.top_p or 0.0)),
            ("batch", int(self.batch)),
            ("strict", bool(self.strict)),
        ):
            object.__setattr__(self, name, value)

    @property
    def cfg(self) -> bool:
        """Whether the batch carries classifier-free-guidance rows."""
        return self.guidance_scale > 1

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def generate_kwargs(self, steps: int) -> dict[str, Any]:
        """The keyword arguments of the model's ``generate`` for ``steps`` steps."""
        kw: dict[str, Any] = {
            "max_new_tokens": steps,
            "do_sample": self.do_sample,
            "guidance_scale": self.guidance_scale if self.cfg else 1.0,  # <= 1: no CFG rows
        }
        if self.do_sample:
            kw.update(
                temperature=self.temperature,
                top_k=self.top_k,
                top_p=self.top_p if self.top_p != 0.0 else 1.0,
            )
        return kw

    def to_dict(self, *, steps: int | None = None) -> dict[str, Any]:
        """The fields, plus the derived ``steps`` (when given) and ``do_sample``."""
        d: dict[str, Any] = asdict(self)
        if steps is not None:
            d["steps"] = int(steps)
        d["do_sample"] = self.do_sample
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerationOptions:
        """From a sidecar's ``"options"`` (the derived keys are ignored; a missing field takes
        its default, as ``strict`` in sidecars written before it existed)."""
        d = {k: v for k, v in d.items() if k not in cls.DERIVED}
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown generation option(s) {sorted(unknown)} in this sidecar")
        return cls(**d)


def _versions() -> dict[str, str]:
    import transformers

    from musicrfm import __version__

    return {
        "musicrfm": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def generate(
    model: ModelAdapter | nn.Module,
    prompts: str | Sequence[str],
    *,
    plan: SteeringPlan | SteeringDirection | None = None,
    seed: int | Sequence[int] = 0,
    options: GenerationOptions | None = None,
    **overrides: Any,
) -> list[GenerationResult]:
    """Generate audio for each prompt and seed (prompt-major order), steered by ``plan``.

    Parameters
    ----------
    model: a `musicrfm.models.adapter.ModelAdapter` with a tokenizer (``load_model`` /
        ``random_model``).
    prompts: one prompt or a list.
    plan: `SteeringPlan` (or one `SteeringDirection`); None or coefficient 0 → plain generation.
        It is compiled (checked against the model) once for the whole call.
    seed: one seed, or several (each prompt is generated once per seed). Also the gate seed
        unless the plan fixes one.
    options: `GenerationOptions` (default: its defaults); ``overrides`` change single fields,
        e.g. ``generate(model, "x", seconds=2, temperature=0)``.

    Every check (options, plan against model) runs before the first step is generated.
    """
    adapter = as_adapter(model)
    opts = replace(options or GenerationOptions(), **overrides)
    prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
    if not prompts:
        raise ConfigError("no prompts given")
    seeds = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    if not seeds:
        raise ConfigError("no seeds given")
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    steps = steps_for(opts.seconds, adapter)
    # the plan is checked against the model and compiled once, before any generation; each
    # chunk only changes its gate seed
    compiled = compile_plan(plan, adapter, seed=seeds[0], total_steps=steps, strict=opts.strict)
    common = {
        "options": opts.to_dict(steps=steps),
        "plan": plan.to_dict(strict=False) if plan is not None else None,
        "steered_layers": compiled.steered_layers,
        "model": dict(adapter.info()),
        "versions": _versions(),
        "sample_rate": adapter.sample_rate,
    }
    items = [(p, s) for p in prompts for s in seeds]
    log.info(
        "generating %d clip(s) of %.2f s (%d steps), steering layers %s",
        len(items),
        opts.seconds,
        steps,
        compiled.steered_layers or "none",
    )
    results: list[GenerationResult] = []
    for start in range(0, len(items), opts.batch):
        chunk = items[start : start + opts.batch]
        chunk_seed = chunk[0][1]
        gate_seed = plan.seed if plan is not None and plan.seed is not None else chunk_seed
        audio = _run_chunk(
            adapter, [p for p, _ in chunk], compiled.with_seed(gate_seed), chunk_seed, steps, opts
        )
        gate = gate_seed if plan is not None else None
        results += _chunk_results(adapter, chunk, audio, chunk_seed, gate, common)
    return results


def _chunk_results(
    adapter: ModelAdapter,
    chunk: list[tuple[str, int]],
    audio: np.ndarray,
    chunk_seed: int,
    gate_seed: int | None,
    common: dict[str, Any],
) -> list[GenerationResult]:
    """One result per item of a chunk, each with its sidecar record."""
    out = []
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
            "gate_seed": gate_seed,
            **common,
            "num_samples": int(a.shape[-1]),
            "audio_sha256": _audio_digest(a),
        }
        out.append(GenerationResult(prompt, s, a, int(adapter.sample_rate), meta))
    return out


@torch.inference_mode()
def _run_chunk(
    adapter: ModelAdapter,
    prompts: list[str],
    compiled: CompiledPlan,
    seed: int,
    steps: int,
    opts: GenerationOptions,
) -> np.ndarray:
    tok = adapter.tokenize(prompts)
    with apply_plan(adapter, compiled, total_steps=steps, cfg=opts.cfg):
        torch.manual_seed(seed)
        out = adapter.model.generate(**tok, **opts.generate_kwargs(steps))
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


def reproduce(
    sidecar: str | Path | dict[str, Any], model: ModelAdapter | nn.Module | None = None
) -> GenerationResult:
    """Regenerate the clip a sidecar describes (loads the model by its id when not given: the
    bundled model's clips record ``musicgen-mini``, which `load_model` accepts)."""
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
    chunk = meta["chunk"]
    if len(set(chunk["prompts"])) == 1 and len(chunk["prompts"]) > 1:
        prompts, seeds = [chunk["prompts"][0]], chunk["seeds"]
    elif len(set(chunk["seeds"])) == 1:
        prompts, seeds = chunk["prompts"], [chunk["seeds"][0]]
    else:
        raise ConfigError("this sidecar's batch mixes prompts and seeds; regenerate the whole run")
    options = GenerationOptions.from_dict(meta["options"])
    return generate(model, prompts, plan=plan, seed=seeds, options=options)[chunk["index"]]
