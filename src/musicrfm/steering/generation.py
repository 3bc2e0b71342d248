"""Text prompts → audio, optionally steered by a `SteeringPlan`; audio files with JSON sidecars.

Every output gets a sidecar (`<name>.json`) with the full plan (absolute direction paths and a
digest of their contents), the model's info, the prompt, the seeds and every option, so
`reproduce(sidecar)` regenerates it bit for bit (same machine, library versions and device).

Batching: prompts × seeds are generated in chunks of ``batch`` items. With ``batch=1`` (the
default) each item draws from its own random stream, seeded with its seed. With ``batch > 1`` the
items of a chunk share one sampling stream seeded with the chunk's first seed (that is how torch
sampling works); the sidecar records the whole chunk so the output still reproduces exactly.
The steering gate is not shared that way: each clip's gate mask is drawn with its own gate seed
(the plan's, else the clip's seed), the mask it gets alone (`CompiledPlan.with_seeds`).

How clips are made travels as one frozen `GenerationOptions` (stored under the sidecar's
``"options"``; `GenerationOptions.from_dict` reads old sidecars too). The plan is compiled once
per `generate` call; each chunk only swaps in its clips' gate seeds. A sidecar records its
clip's ``gate_seed`` and, for a steered chunk of several clips, every clip's (``chunk.gate_seeds``);
a sidecar of several clips without it was made when a chunk shared its first clip's mask, and
`reproduce` regenerates it so.

`prepare_generation` does every check (options, seeds, length against the model's position
table, the plan against the model) and returns a `GenerationRun` that generates one chunk at a
time; `generate_files` uses it to save each clip as soon as its chunk is done and to skip clips
already on disk from the same command (same sidecar record), so an interrupted run resumes.
Sidecars record the torch thread count (``torch_threads``); `reproduce` sets it, because float
reductions, and so sampled tokens, can depend on it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from musicrfm.errors import ConfigError, ModelError
from musicrfm.files import check_writable, write_atomic
from musicrfm.models.adapter import ModelAdapter
from musicrfm.steering.adapters import as_adapter
from musicrfm.steering.compile import CompiledPlan, compile_plan
from musicrfm.steering.hooks import apply_plan
from musicrfm.steering.live import LiveControl, live_control
from musicrfm.steering.plan import SteeringDirection, SteeringPlan

log = logging.getLogger(__name__)

AUDIO_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
# seeds torch.manual_seed accepts
SEED_RANGE = (-(2**63), 2**64 - 1)
# sidecar fields that describe the file, not how the clip was made (left out of `recipe`)
OUTPUT_FIELDS = ("created", "num_samples", "audio_sha256", "audio_file", "audio_format")


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
        fmt = audio_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(
            path,
            lambda tmp: sf.write(
                str(tmp), self.audio.T, self.sample_rate, format=fmt[0], subtype=fmt[1]
            ),
        )
        meta = dict(self.meta, audio_file=path.name, audio_format=f"{fmt[0]}/{fmt[1]}")
        text = json.dumps(meta, indent=2, default=str) + "\n"
        write_atomic(path.with_suffix(".json"), lambda tmp: tmp.write_text(text))
        return path


def audio_format(path: str | Path) -> tuple[str, str]:
    """(soundfile format, subtype) for an output path; any other suffix is a ConfigError."""
    fmt = AUDIO_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"output must end in {' or '.join(AUDIO_FORMATS)}, got {Path(path).name} "
            "(convert afterwards for other formats)"
        )
    return fmt


def _audio_digest(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def steps_for(seconds: float, model: ModelAdapter | nn.Module) -> int:
    """Decoder steps for ``seconds`` of audio: frames + the codebook delay tail."""
    adapter = as_adapter(model)
    if not adapter.frame_rate:
        raise ModelError("the model's frame rate is unknown; cannot convert seconds to steps")
    return int(round(seconds * adapter.frame_rate)) + int(adapter.max_delay)


def max_steps(model: ModelAdapter | nn.Module) -> int | None:
    """The most decoder steps the model has positions for (its decoder's
    ``max_position_embeddings``), or None when its config does not say."""
    hf = getattr(as_adapter(model), "model", None)
    config = getattr(getattr(hf, "config", None), "decoder", None)
    limit = getattr(config, "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def check_length(seconds: float, model: ModelAdapter | nn.Module) -> int:
    """The steps for ``seconds`` (`steps_for`), or a ConfigError when they exceed the model's
    position table (`max_steps`): found before hours of generation, not after."""
    adapter = as_adapter(model)
    steps = steps_for(seconds, adapter)
    limit = max_steps(adapter)
    if limit is not None and steps > limit:
        longest = (limit - int(adapter.max_delay)) / float(adapter.frame_rate)
        raise ConfigError(
            f"{seconds:g} s needs {steps} decoder steps, but {adapter.model_id} has positions "
            f"for {limit} (at most {longest:.2f} s); ask for {longest:.2f} s or less"
        )
    return steps


def check_seeds(seeds: Sequence[Any]) -> list[int]:
    """Seeds as ints in the range torch accepts; anything else is a ConfigError."""
    out = []
    for s in seeds:
        whole = isinstance(s, (int, np.integer)) or (isinstance(s, float) and s.is_integer())
        if isinstance(s, bool) or not whole:
            raise ConfigError(f"a seed must be an integer, got {s!r}")
        if not SEED_RANGE[0] <= int(s) <= SEED_RANGE[1]:
            raise ConfigError(f"seed {s} is out of range; use 0 .. {SEED_RANGE[1]}")
        out.append(int(s))
    if not out:
        raise ConfigError("no seeds given")
    return out


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


@dataclass
class GenerationRun:
    """A checked `generate` call (see `prepare_generation`), generated one chunk at a time so
    that each clip can be saved as soon as it is made."""

    adapter: ModelAdapter
    plan: SteeringPlan | None
    options: GenerationOptions
    steps: int
    compiled: CompiledPlan
    items: list[tuple[str, int]]
    common: dict[str, Any]

    def chunks(self) -> list[list[tuple[str, int]]]:
        """The (prompt, seed) items, cut into the chunks that share a forward batch."""
        b = self.options.batch
        return [self.items[i : i + b] for i in range(0, len(self.items), b)]

    def gate_seeds(self, chunk: list[tuple[str, int]]) -> list[int]:
        """Each item's gate seed: the plan's when it fixes one, else the item's own seed."""
        plan = self.plan
        if plan is not None and plan.seed is not None:
            return [int(plan.seed)] * len(chunk)
        return [s for _, s in chunk]

    def records(self, chunk: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """The sidecar `recipe` of each item of a chunk, known before it is generated."""
        gates = self.gate_seeds(chunk) if self.plan is not None else None
        return [
            recipe(_item_meta(chunk, i, chunk[0][1], gates, self.common)) for i in range(len(chunk))
        ]

    def run(
        self, chunk: list[tuple[str, int]], *, gate_seeds: Sequence[int] | None = None
    ) -> list[GenerationResult]:
        """Generate one chunk; one result per item. gate_seeds: each item's (default:
        `gate_seeds`; `reproduce` passes an old sidecar's shared one)."""
        gates = list(gate_seeds) if gate_seeds is not None else self.gate_seeds(chunk)
        if len(gates) != len(chunk):
            raise ConfigError(f"{len(gates)} gate seeds for a chunk of {len(chunk)} clips")
        audio = _run_chunk(
            self.adapter,
            [p for p, _ in chunk],
            self.compiled.with_seeds(gates),
            chunk[0][1],
            self.steps,
            self.options,
        )
        recorded = gates if self.plan is not None else None
        return _chunk_results(self.adapter, chunk, audio, chunk[0][1], recorded, self.common)


def prepare_generation(
    model: ModelAdapter | nn.Module,
    prompts: str | Sequence[str],
    *,
    plan: SteeringPlan | SteeringDirection | None = None,
    seed: int | Sequence[int] = 0,
    options: GenerationOptions | None = None,
    **overrides: Any,
) -> GenerationRun:
    """Every check of a `generate` call (options, seeds, the length against the model, the plan
    against the model, compiled once), without generating anything. Arguments as `generate`."""
    adapter = as_adapter(model)
    opts = replace(options or GenerationOptions(), **overrides)
    prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
    if not prompts:
        raise ConfigError("no prompts given")
    seeds = check_seeds([seed] if isinstance(seed, (int, np.integer)) else list(seed))
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    steps = check_length(opts.seconds, adapter)
    # the plan is checked against the model and compiled once, before any generation; each
    # chunk only changes its clips' gate seeds
    compiled = compile_plan(plan, adapter, seed=seeds[0], total_steps=steps, strict=opts.strict)
    common = {
        "options": opts.to_dict(steps=steps),
        "plan": plan.to_dict(strict=False) if plan is not None else None,
        "steered_layers": compiled.steered_layers,
        "model": dict(adapter.info()),
        "versions": _versions(),
        "sample_rate": adapter.sample_rate,
        "torch_threads": torch.get_num_threads(),
        "strength": strengths(plan),
    }
    for row in common["strength"]:
        if row["relative"] is not None:
            log.info(
                "%s: η0 %.4g = %.3g× the median activation norm (%.4g) of its training features",
                row["direction"],
                row["eta0"],
                row["relative"],
                row["activation_norm"],
            )
    items = [(p, s) for p in prompts for s in seeds]
    log.info(
        "generating %d clip(s) of %.2f s (%d steps), steering layers %s",
        len(items),
        opts.seconds,
        steps,
        compiled.steered_layers or "none",
    )
    return GenerationRun(adapter, plan, opts, steps, compiled, items, common)


def strengths(plan: SteeringPlan | None) -> list[dict[str, Any]]:
    """Each direction's η0 both ways: absolute, and relative to the median activation norm of
    the features its directions were trained on (None when they do not record it), so a sidecar
    says what ``--coef 0.5`` meant on this model."""
    rows = []
    for d in plan.directions if plan is not None else []:
        norm = d.load().activation_norm()
        rows.append(
            {
                "direction": d.label(),
                "eta0": d.coef,
                "relative": d.coef / norm if norm else None,
                "activation_norm": norm,
            }
        )
    return rows


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
    seed: one seed, or several (each prompt is generated once per seed). Each clip's seed is
        also its gate seed unless the plan fixes one (whatever the batch).
    options: `GenerationOptions` (default: its defaults); ``overrides`` change single fields,
        e.g. ``generate(model, "x", seconds=2, temperature=0)``.

    Every check (options, plan against model) runs before the first step is generated
    (`prepare_generation`); `generate_files` saves each clip as it is made instead.
    """
    run = prepare_generation(model, prompts, plan=plan, seed=seed, options=options, **overrides)
    return [r for chunk in run.chunks() for r in run.run(chunk)]


def _item_meta(
    chunk: list[tuple[str, int]],
    i: int,
    chunk_seed: int,
    gate_seeds: Sequence[int] | None,
    common: dict[str, Any],
) -> dict[str, Any]:
    """The sidecar record of item ``i`` of a chunk, before its audio exists. A steered chunk of
    several clips records every clip's gate seed (``chunk.gate_seeds``): that tells `reproduce`
    the masks were drawn per clip (older sidecars lack it: one mask, the first clip's)."""
    prompt, s = chunk[i]
    record = {
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
        "gate_seed": gate_seeds[i] if gate_seeds is not None else None,
        **common,
    }
    if gate_seeds is not None and len(chunk) > 1:
        record["chunk"]["gate_seeds"] = [int(g) for g in gate_seeds]
    return record


def _chunk_results(
    adapter: ModelAdapter,
    chunk: list[tuple[str, int]],
    audio: np.ndarray,
    chunk_seed: int,
    gate_seeds: Sequence[int] | None,
    common: dict[str, Any],
) -> list[GenerationResult]:
    """One result per item of a chunk, each with its sidecar record."""
    out = []
    for i, (prompt, s) in enumerate(chunk):
        a = audio[i]
        meta = {
            **_item_meta(chunk, i, chunk_seed, gate_seeds, common),
            "num_samples": int(a.shape[-1]),
            "audio_sha256": _audio_digest(a),
        }
        out.append(GenerationResult(prompt, s, a, int(adapter.sample_rate), meta))
    return out


def recipe(meta: Mapping[str, Any]) -> dict[str, Any]:
    """How a clip was made: its sidecar record without the fields that describe the file
    (`OUTPUT_FIELDS`), as JSON would give it back (so a record and a sidecar compare equal)."""
    kept = {k: v for k, v in meta.items() if k not in OUTPUT_FIELDS}
    return json.loads(json.dumps(kept, default=str))


def finished_output(path: str | Path, record: Mapping[str, Any]) -> bool | None:
    """Whether ``path`` already holds the clip ``record`` (a `GenerationRun.records` entry)
    describes: True when its sidecar has the same recipe and the audio file is whole; False
    when something else is there (it will be overwritten); None when nothing is there."""
    import soundfile as sf

    path = Path(path)
    side = path.with_suffix(".json")
    if not path.exists() and not side.exists():
        return None
    try:
        meta = json.loads(side.read_text())
        if recipe(meta) != record:
            return False
        return int(sf.info(str(path)).frames) == int(meta["num_samples"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, sf.LibsndfileError):
        return False


def generate_files(
    model: ModelAdapter | nn.Module,
    prompts: str | Sequence[str],
    output: str | Path,
    *,
    plan: SteeringPlan | SteeringDirection | None = None,
    seed: int | Sequence[int] = 0,
    options: GenerationOptions | None = None,
    resume: bool = True,
    **overrides: Any,
) -> Iterator[tuple[Path, GenerationResult | None]]:
    """Generate like `generate` and save each clip (audio + sidecar, `output_paths`) as soon as
    its chunk is done, yielding ``(path, result)``. With ``resume``, a chunk whose clips are all
    on disk from the same command (`finished_output`) is not generated again: it yields
    ``(path, None)``. Another clip at a path is overwritten, with a warning. The outputs are
    checked (format, folder, free space) before the first step."""
    run = prepare_generation(model, prompts, plan=plan, seed=seed, options=options, **overrides)
    paths = output_paths_for(run.items, output)
    samples = int(round(run.options.seconds * run.adapter.sample_rate))
    channels = int(getattr(run.adapter, "audio_channels", 1) or 1)
    check_outputs(paths, need_bytes=len(paths) * (samples * channels * 4 + 16_384))
    where = iter(paths)
    for chunk in run.chunks():
        chunk_paths = [next(where) for _ in chunk]
        found = [finished_output(p, r) for p, r in zip(chunk_paths, run.records(chunk))]
        if resume and all(found):
            for path in chunk_paths:
                yield path, None
            continue
        for path, state in zip(chunk_paths, found):
            if state is False:
                log.warning("overwriting %s (made with other settings)", path)
        for path, result in zip(chunk_paths, run.run(chunk)):
            yield result.save(path), result


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
    return output_paths_for([(r.prompt, r.seed) for r in results], output)


def output_paths_for(items: Sequence[tuple[str, int]], output: str | Path) -> list[Path]:
    """`output_paths` for (prompt, seed) items, known before anything is generated. An
    existing folder is a folder whatever its name."""
    output = Path(output)
    as_folder = not output.suffix or output.is_dir()
    if len(items) == 1 and not as_folder:
        return [output]
    folder, stem, suffix = (
        (output, "", ".wav") if as_folder else (output.parent, output.stem + "_", output.suffix)
    )
    paths = []
    for i, (prompt, seed) in enumerate(items):
        slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40] or "prompt"
        paths.append(folder / f"{stem}{i:03d}_{slug}_s{seed}{suffix}")
    return paths


def check_outputs(paths: Sequence[Path], *, need_bytes: int = 0) -> None:
    """Fail before generating, not after: every path must end in .wav/.flac, and its folder
    must be writable with ``need_bytes`` free (`musicrfm.files.check_writable`)."""
    for path in paths:
        audio_format(path)
    for folder in sorted({Path(p).parent for p in paths}):
        check_writable(folder, what="output folder", folder=True, need_bytes=need_bytes)
    for path in paths:
        if Path(path).is_dir():
            raise ConfigError(f"output {path} is a folder; give a file name or another folder")


def write_results(results: Sequence[GenerationResult], output: str | Path) -> list[Path]:
    """Save every result (audio + sidecar); returns the audio paths."""
    return [r.save(p) for r, p in zip(results, output_paths(results, output))]


def load_sidecar(path: str | Path) -> dict[str, Any]:
    """A generation sidecar, checked (`check_sidecar`): a missing, damaged or foreign file is one
    ConfigError naming it."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise ConfigError(f"sidecar not found: {path}")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"sidecar {path} is damaged (not JSON: {exc}); it cannot be reproduced"
        ) from None
    if not isinstance(meta, dict) or meta.get("kind") != "musicrfm.generation":
        raise ConfigError(f"{path} is not a musicrfm generation sidecar")
    check_sidecar(meta, path)
    return meta


def check_sidecar(meta: Mapping[str, Any], path: str | Path = "this sidecar") -> None:
    """The fields `reproduce` reads, with the types it needs; a ConfigError names the first one
    missing or wrong (a sidecar edited by hand, or cut short)."""

    def bad(what: str) -> ConfigError:
        return ConfigError(
            f"sidecar {path} is damaged: {what}; regenerate the clip (or restore the file)"
        )

    model, chunk = meta.get("model"), meta.get("chunk")
    if not isinstance(model, Mapping) or not isinstance(model.get("model_id"), str):
        raise bad("no model.model_id")
    if not isinstance(chunk, Mapping):
        raise bad("no chunk record")
    prompts, seeds, index = chunk.get("prompts"), chunk.get("seeds"), chunk.get("index")
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise bad("chunk.prompts must be a list of prompts")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) for x in seeds):
        raise bad("chunk.seeds must be a list of integer seeds")
    if len(prompts) != len(seeds):
        raise bad(f"chunk has {len(prompts)} prompts for {len(seeds)} seeds")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(seeds):
        raise bad(f"chunk.index {index!r} is not an item of its chunk")
    # the clip's own prompt and seed (what the output is named by) must be its chunk item's:
    # a hand-edited seed would otherwise be ignored without a word
    if meta.get("prompt") != prompts[index]:
        raise bad(f"prompt {meta.get('prompt')!r} is not chunk item {index}'s {prompts[index]!r}")
    if isinstance(meta.get("seed"), bool) or meta.get("seed") != seeds[index]:
        raise bad(f"seed {meta.get('seed')!r} is not chunk item {index}'s {seeds[index]!r}")
    gate, gates = meta.get("gate_seed"), chunk.get("gate_seeds")
    if gate is not None and (isinstance(gate, bool) or not isinstance(gate, int)):
        raise bad(f"gate_seed must be an integer, got {gate!r}")
    if gates is not None and (
        not isinstance(gates, list)
        or len(gates) != len(seeds)
        or not all(isinstance(g, int) and not isinstance(g, bool) for g in gates)
        or gates[index] != gate
    ):
        raise bad(
            f"chunk.gate_seeds must list an integer gate seed per clip, with {gate!r} at {index}"
        )
    if not isinstance(meta.get("options"), Mapping):
        raise bad("no options record")
    if meta.get("plan") is not None and not isinstance(meta["plan"], Mapping):
        raise bad("plan must be a table")
    threads = meta.get("torch_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise bad(f"torch_threads must be an integer, got {threads!r}")
    try:
        GenerationOptions.from_dict(meta["options"])
    except (TypeError, ValueError) as exc:
        raise bad(f"options: {exc}") from None


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch CPU threads (None: as they are), restored afterwards."""
    if not count:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def reproduce(
    sidecar: str | Path | dict[str, Any], model: ModelAdapter | nn.Module | None = None
) -> GenerationResult:
    """Regenerate the clip a sidecar describes (loads the model by its id when not given: the
    bundled model's clips record ``musicgen-mini``, which `load_model` accepts), with the torch
    thread count the sidecar records (``torch_threads``; sidecars older than it run with the
    current count, see `reproduce_note`). Live knob changes a studio take recorded
    (``live.events``) are replayed at the steps they took effect at."""
    meta = sidecar if isinstance(sidecar, dict) else load_sidecar(sidecar)
    check_sidecar(meta)
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
    events = (meta.get("live") or {}).get("events") or []
    replay = live_control(LiveControl.replay(events)) if events else contextlib.nullcontext()
    with torch_threads(meta.get("torch_threads")), replay:
        run = prepare_generation(model, prompts, plan=plan, seed=seeds, options=options)
        return run.run(run.items, gate_seeds=sidecar_gate_seeds(meta))[chunk["index"]]


def sidecar_gate_seeds(meta: Mapping[str, Any]) -> list[int] | None:
    """The gate seed of each clip of a sidecar's chunk: ``chunk.gate_seeds`` when recorded;
    without it (a clip alone, or a chunk made when its clips shared one mask) every clip gets
    the sidecar's ``gate_seed``; None when it records none (unsteered)."""
    chunk = meta["chunk"]
    if chunk.get("gate_seeds") is not None:
        return [int(g) for g in chunk["gate_seeds"]]
    gate = meta.get("gate_seed")
    return None if gate is None else [int(gate)] * len(chunk["seeds"])


def reproduce_note(meta: Mapping[str, Any], result: GenerationResult) -> str:
    """Why a reproduced clip may differ from its sidecar's: what the sidecar records that this
    run does not match (library versions, device, dtype), or what it does not record."""
    notes = []
    then, now = meta.get("versions") or {}, result.meta.get("versions") or {}
    changed = [f"{k} {then[k]} -> {now.get(k)}" for k in then if then[k] != now.get(k)]
    if changed:
        notes.append("library versions differ (" + ", ".join(changed) + ")")
    for key in ("device", "dtype"):
        a, b = (meta.get("model") or {}).get(key), result.meta["model"].get(key)
        if a is not None and a != b:
            notes.append(f"it was made on {key} {a}, this run used {b}")
    if meta.get("torch_threads") is None:
        notes.append(
            "the sidecar does not record the torch thread count it was made with (written "
            "before musicrfm recorded it): try --threads with that count"
        )
    return "; ".join(notes) or "same versions, device and thread count: a nondeterministic kernel?"
