"""What a reproduce run will do: its options, the sizes the protocol and ``--scale`` give, the
sweep configs of the steering tables, and the plan (counts and an estimate of time and memory).

Nothing here runs a model except :func:`measure_costs`, which times a few decoder steps and one
extraction on the loaded model so the plan's estimate is for the device at hand.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicrfm.errors import ConfigError
from musicrfm.experiments.reproduce.protocol import Protocol
from musicrfm.experiments.table1.config import CONCEPT_ORDER, parse_concept_list
from musicrfm.synth.concepts import get_concept

if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter

DEFAULT_TABLES = (1, 2, 5, 6, 8, 9, 10)
STEERING_TABLES = (2, 5, 6, 8, 9, 10)
PAIR_CONCEPTS = ("notes", "chords", "intervals")
TEMPO_CLIPS_PER_BPM = 25  # SynTheory: 4,025 tempo clips over 161 BPMs
BUDGETS = ("paper", "fast")
SYNTHEORY = ("auto", "hub", "local")


@dataclass(frozen=True)
class ReproduceOptions:
    """How the protocol is run: which tables, the probe budget, the scale of every sample size,
    and the run's device; ``seconds`` / ``clip_seconds`` None take the protocol's."""

    tables: tuple[int, ...] = DEFAULT_TABLES
    budget: str = "paper"
    scale: float = 1.0
    concepts: tuple[str, ...] | None = None
    seconds: float | None = None
    clip_seconds: float | None = None
    device: str = "cpu"
    dtype: str = "float32"
    batch: int = 1
    clap_checkpoint: str | None = None
    seed: int = 0
    workers: int = 1
    controls: bool = False  # also the causal controls (ours, not a paper table)
    syntheory: str = "auto"  # the clips: SynTheory from the hub, the local generator, or auto

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ConfigError(f"unknown budget {self.budget!r}; valid: {', '.join(BUDGETS)}")
        if self.syntheory not in SYNTHEORY:
            raise ConfigError(
                f"unknown --syntheory {self.syntheory!r}; valid: {', '.join(SYNTHEORY)}"
            )
        if not (isinstance(self.scale, (int, float)) and 0 < self.scale <= 1):
            raise ConfigError(f"--scale must be in (0, 1], got {self.scale}")
        for name in ("seconds", "clip_seconds"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {v}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be at least 1, got {self.batch}")
        if not self.tables:
            raise ConfigError("no table asked for; valid: " + ",".join(map(str, DEFAULT_TABLES)))
        if self.concepts is not None:
            object.__setattr__(self, "concepts", parse_concept_list(self.concepts))


def parse_tables(text: str | Iterable[int], protocol: Protocol) -> tuple[int, ...]:
    """``"1,2,5"`` as table numbers; a table the paper lacks, or one the verb does not
    implement, is one ConfigError saying why."""
    items = text.split(",") if isinstance(text, str) else list(text)
    numbers = []
    for item in items:
        s = str(item).strip().lower().removeprefix("table")
        if not s:
            continue
        try:
            numbers.append(int(s))
        except ValueError:
            raise ConfigError(f"--tables takes table numbers such as 1,2,5; got {item!r}") from None
    for n in numbers:
        info = protocol.table(n)
        if not info.implemented:
            raise ConfigError(f"table {n} ({info.title}, {info.section}): {info.reason}")
    return tuple(sorted(set(numbers)))


# ============================================================================ sizes
def scaled(n: int | float, scale: float) -> int:
    """A sample size of the protocol under ``--scale`` (at least 1)."""
    return max(1, int(round(float(n) * scale)))


def run_concepts(options: ReproduceOptions, protocol: Protocol) -> tuple[str, ...]:
    concepts = options.concepts or tuple(protocol.value("dataset.concepts"))
    return tuple(c for c in CONCEPT_ORDER if c in concepts)


@dataclass(frozen=True)
class DataSize:
    """One concept's training clips: per class, and for tempos the BPM step."""

    concept: str
    clips_per_class: int
    tempo_step: int
    classes: int

    @property
    def clips(self) -> int:
        return self.clips_per_class * self.classes


def data_size(concept: str, options: ReproduceOptions, protocol: Protocol) -> DataSize:
    """Clips per class: the full SynTheory set (App. B) times ``--scale``, at least the
    protocol's minimum, progressions capped at App. B's 700 per class; tempos keep ~25 clips per
    BPM at full scale and thin the BPMs (every ``tempo_step``-th) as the scale shrinks."""
    low = int(protocol.value("dataset.min_clips_per_class"))
    c = get_concept(concept)
    if concept == "tempos":
        per = max(low, scaled(TEMPO_CLIPS_PER_BPM, options.scale))
        step = max(1, int(round(per / (TEMPO_CLIPS_PER_BPM * options.scale))))
        return DataSize(concept, per, step, len(range(50, 211, step)))
    per_class = protocol.value("dataset.full_size")[concept] / len(c.labels)
    if concept == "progressions":
        per_class = min(per_class, protocol.value("dataset.progressions_per_class"))
    return DataSize(concept, max(low, scaled(per_class, options.scale)), 1, len(c.labels))


def pick(items: Sequence[Any], k: int, seed: int, salt: str) -> list[Any]:
    """``k`` of ``items`` (all when k >= len), a seeded draw kept in the items' order."""
    if k >= len(items):
        return list(items)
    rng = random.Random(f"{seed}:{salt}")
    chosen = set(rng.sample(range(len(items)), k))
    return [x for i, x in enumerate(items) if i in chosen]


def steering_classes(concept: str, protocol: Protocol) -> list[str]:
    """What a concept is steered toward: its classes, or 'faster'/'slower' for tempo."""
    if concept == "tempos":
        return list(protocol.value("steering.tempo_targets"))
    return list(get_concept(concept).labels)


@dataclass(frozen=True)
class CellSize:
    """n generations of a table cell spread over ``targets``: ``prompts`` x ``seeds`` each."""

    targets: tuple[str, ...]
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]

    @property
    def per_condition(self) -> int:
        return len(self.prompts) * len(self.seeds)


def cell_size(n: int, classes: Sequence[str], protocol: Protocol, seed: int, salt: str) -> CellSize:
    """n generations spread evenly over the classes (a seeded sample of n classes when n is
    smaller), each class's share over the protocol's prompts, then seeds."""
    targets = pick(list(classes), n, seed, salt)
    per = math.ceil(n / len(targets))
    prompts = list(protocol.value("steering.prompts"))
    n_seeds = math.ceil(per / min(len(prompts), per))
    prompts = prompts[: math.ceil(per / n_seeds)]  # as few prompts as make up ``per``
    return CellSize(tuple(targets), tuple(prompts), tuple(range(seed, seed + n_seeds)))


# ============================================================================ sweep configs
def optimal_plan(protocol: Protocol) -> dict[str, Any]:
    """Table 2's steering settings (§5.1)."""
    keys = ("layers", "weighting", "w0", "kappa", "gate", "schedule", "rows")
    return {k: protocol.value(f"steering.{k}") for k in keys}


def naive_plan(protocol: Protocol) -> dict[str, Any]:
    """The ablations' base: naive steering (Tables 8-10 share its row)."""
    return {**protocol.value("ablations.base"), "rows": protocol.value("steering.rows")}


def scaled_top_k(ks: Sequence[int], layers: int, paper_layers: int) -> dict[int, int]:
    """Paper K (out of its 48 layers) -> K for a model with ``layers`` layers."""
    return {int(k): max(1, min(layers, int(round(k * layers / paper_layers)))) for k in ks}


@dataclass
class SweepSpec:
    """One sweep of the run: the tables it serves and its config (a sweep config mapping)."""

    name: str
    tables: tuple[int, ...]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def key(self) -> str:
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def folder(self, work: Path) -> Path:
        return work / "sweeps" / f"{self.name}-{self.key()}"


def sweep_specs(
    options: ReproduceOptions,
    protocol: Protocol,
    *,
    model: str,
    num_layers: int,
    directions: Mapping[str, str],
    classes: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[SweepSpec], dict[int, str]]:
    """The sweeps of the steering tables asked for, and a reason per table that cannot be
    measured with the concepts given. ``directions``: concept -> direction file (it need not
    exist yet); ``classes``: concept -> trained classes (default: the concept's labels)."""
    concepts = run_concepts(options, protocol)
    classes = {c: list((classes or {}).get(c) or steering_classes(c, protocol)) for c in concepts}
    seconds = options.seconds or float(protocol.value("steering.seconds"))
    common = {
        "model": model,
        "seconds": seconds,
        "device": options.device,
        "dtype": options.dtype,
        "controls": [],
        "control_seed": options.seed,
        "clap_checkpoint": options.clap_checkpoint,
        "probe_accuracy": True,
        "generation": {
            "guidance_scale": float(protocol.value("steering.guidance_scale")),
            "batch": options.batch,
        },
    }
    n_cell = scaled(protocol.value("evaluation.generations_per_condition"), options.scale)
    seed = options.seed
    specs: list[SweepSpec] = []
    missing: dict[int, str] = {}
    asked = set(options.tables)

    def concept_entry(c: str, targets: Sequence[str]) -> dict[str, Any]:
        return {"directions": directions[c], "targets": list(targets)}

    def one_concept(name: str, c: str, n: int, key: str, **extra: Any) -> dict[str, Any]:
        """A sweep of concept ``c`` alone at the optimal plan, ``n`` generations a cell."""
        size = cell_size(n, classes[c], protocol, seed, key)
        return {
            **common, "name": name, "prompts": list(size.prompts), "seeds": list(size.seeds),
            **extra, "plan": optimal_plan(protocol),
            "concepts": {c: concept_entry(c, size.targets)},
        }  # fmt: skip

    if 2 in asked:
        for c in concepts:
            coefs = list(protocol.value("steering.coefs"))
            cfg = one_concept(f"table2-{c}", c, n_cell, f"table2:{c}", coefs=coefs)
            specs.append(SweepSpec(f"table2-{c}", (2,), cfg))
    if 5 in asked:
        spec = _table5_spec(options, protocol, concepts, classes, common, concept_entry)
        if isinstance(spec, str):
            missing[5] = spec
        else:
            specs.append(spec)
    notes_ok = "notes" in concepts
    if 6 in asked:
        if not notes_ok:
            missing[6] = "needs notes among --concepts (§6.2 studies schedules on notes only)"
        else:
            specs.append(_table6_spec(options, protocol, classes["notes"], common, concept_entry))
    if options.controls:
        n_ctl = scaled(protocol.value("controls.generations"), options.scale)
        for c in concepts:
            cfg = one_concept(
                f"controls-{c}", c, n_ctl, f"controls:{c}",
                coefs=[float(protocol.value("controls.coef"))],
                controls=list(protocol.value("controls.kinds")),
            )  # fmt: skip
            specs.append(SweepSpec(f"controls-{c}", (), cfg))
    ablation_tables = tuple(t for t in (8, 9, 10) if t in asked)
    if ablation_tables:
        concept = str(protocol.value("ablations.concept"))
        if concept not in concepts:
            for t in ablation_tables:
                missing[t] = f"needs {concept} among --concepts (the ablations steer {concept})"
        else:
            specs.append(
                _ablation_spec(
                    options, protocol, ablation_tables, classes[concept], common,
                    concept_entry, num_layers,
                )
            )  # fmt: skip
    return specs, missing


def _table5_spec(options, protocol, concepts, classes, common, concept_entry) -> SweepSpec | str:
    pairs = [tuple(p) for p in protocol.value("tables.5.pairs") if set(p) <= set(concepts)]
    if not pairs:
        return "needs two of notes, chords, intervals among --concepts (§6.1 pairs them)"
    used = sorted({c for p in pairs for c in p}, key=CONCEPT_ORDER.index)
    n = scaled(protocol.value("tables.5.generations"), options.scale)
    prompts = list(protocol.value("steering.prompts"))[:n]
    coefs = list(protocol.value("tables.5.coefs"))
    multi, draws_per = [], 0
    for a, b in pairs:
        product = [(x, y) for x in classes[a] for y in classes[b]]
        draws = min(math.ceil(n / len(prompts)), len(product))
        draws_per = max(draws_per, draws)
        for ca in coefs:
            for cb in coefs:
                for ta, tb in pick(product, draws, options.seed, f"table5:{a}:{b}:{ca}:{cb}"):
                    multi.append(
                        {"directions": [
                            {"concept": a, "target": ta, "coef": ca},
                            {"concept": b, "target": tb, "coef": cb},
                        ]}
                    )  # fmt: skip
    seeds = list(range(options.seed, options.seed + math.ceil(n / (draws_per * len(prompts)))))
    cfg = {
        **common,
        "name": "table5",
        "prompts": prompts,
        "seeds": seeds,
        "coefs": [coefs[0]],
        "plan": optimal_plan(protocol),
        "concepts": {c: concept_entry(c, classes[c][:1]) for c in used},
        "multi": multi,
    }
    note = f"pairs {', '.join('+'.join(p) for p in pairs)}; random targets per draw"
    return SweepSpec("table5", (5,), cfg, [note])


def _table6_spec(options, protocol, notes_classes, common, concept_entry) -> SweepSpec:
    n = scaled(protocol.value("tables.6.generations"), options.scale)
    size = cell_size(n, notes_classes, protocol, options.seed, "table6")
    n_cf = scaled(protocol.value("tables.6.crossfade_pairs"), options.scale)
    ordered = [(a, b) for a in notes_classes for b in notes_classes if a != b]
    draws = min(math.ceil(n_cf / size.per_condition), len(ordered))
    coef_cf = float(protocol.value("tables.6.crossfade_coef"))
    crossfades = [
        {"concept": "notes", "a": a, "b": b, "coef": coef_cf}
        for a, b in pick(ordered, draws, options.seed, "table6:crossfade")
    ]
    coef = float(protocol.value("tables.6.coef"))
    cfg = {
        **common,
        "name": "table6",
        "prompts": list(size.prompts),
        "seeds": list(size.seeds),
        "coefs": [coef],
        "ablation_coef": coef,
        "plan": optimal_plan(protocol),
        "concepts": {"notes": concept_entry("notes", size.targets)},
        "ablations": {"schedules": list(protocol.value("tables.6.schedules"))},
        "crossfades": crossfades,
    }
    return SweepSpec("table6", (6,), cfg)


def _ablation_spec(
    options, protocol, tables, concept_classes, common, concept_entry, num_layers
) -> SweepSpec:
    concept = str(protocol.value("ablations.concept"))
    n = scaled(protocol.value("ablations.generations"), options.scale)
    size = cell_size(n, concept_classes, protocol, options.seed, "ablations")
    ablations: dict[str, list[Any]] = {}
    if 8 in tables:
        ablations["weighting"] = list(protocol.value("tables.8.variants"))
    if 9 in tables:
        ks = scaled_top_k(
            protocol.value("tables.9.top_k"), num_layers, int(protocol.value("model.layers"))
        )
        ablations["top_k"] = sorted(set(ks.values()))
    if 10 in tables:
        ablations["gate"] = [float(p) for p in protocol.value("tables.10.gate")]
    coef = float(protocol.value("ablations.coef"))
    cfg = {
        **common,
        "name": "ablations",
        "prompts": list(size.prompts),
        "seeds": list(size.seeds),
        "coefs": [coef],
        "ablation_coef": coef,
        "plan": naive_plan(protocol),
        "concepts": {concept: concept_entry(concept, size.targets)},
        "ablations": ablations,
    }
    return SweepSpec("ablations", tables, cfg)


# ============================================================================ the clips' source
@dataclass(frozen=True)
class SynthSource:
    """Where the training clips come from: ``kind`` "hub" (SynTheory, ``repo_id`` at
    ``revision``, resolving to ``commit`` when known; ``cached``: every concept already in the
    work folder) or "local" (the project's generator: musicrfm ``version``, ``spec_hash`` of its
    code). ``asked``: the --syntheory value; ``notice``: why auto did not take the hub."""

    kind: str
    asked: str = "auto"
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None
    cached: bool = False
    version: str | None = None
    spec_hash: str | None = None
    notice: str | None = None

    def describe(self) -> str:
        if self.kind == "hub":
            commit = (
                f", commit {self.commit}" if self.commit and self.commit != self.revision else ""
            )
            cached = " (from the work folder's cache)" if self.cached else ""
            return f"SynTheory from the hub: {self.repo_id} @ {self.revision}{commit}{cached}"
        return f"local generator (musicrfm {self.version}, generator spec {self.spec_hash})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.describe()}


# ============================================================================ the plan
@dataclass
class Costs:
    """Measured on the loaded model: seconds per decoder step (a CFG batch of ``batch``),
    seconds per extraction pass of one second of audio, a detector's seconds per second of audio;
    bytes of the weights and of one generation's KV cache per step; a GPU's measured peak."""

    device: str
    step_s: float
    extract_s_per_audio_s: float
    detect_s_per_audio_s: float
    weight_bytes: int
    kv_bytes_per_step: int
    measured_peak_bytes: int | None = None


@dataclass
class Plan:
    """What the run will do, counted before anything runs, and the estimate from ``costs``."""

    model: str
    tables: tuple[int, ...]
    concepts: tuple[str, ...]
    data: dict[str, DataSize]
    sweeps: list[SweepSpec]
    missing: dict[int, str]
    steps_per_clip: int
    generations: int
    evaluations: int
    probe_passes: int
    extraction_passes: int
    seconds: float
    clip_seconds: float
    batched_generations: float = 0.0  # generate calls' batches: a sweep batches one prompt's seeds
    costs: Costs | None = None
    source: SynthSource | None = None

    @property
    def clips(self) -> int:
        return sum(d.clips for d in self.data.values())

    @property
    def decoder_steps(self) -> int:
        return self.generations * self.steps_per_clip

    def estimate(self) -> dict[str, float] | None:
        """Seconds per part and peak memory (bytes), from the measured costs; None without."""
        c = self.costs
        if c is None:
            return None
        batch = max(1, int(self.sweeps[0].config["generation"]["batch"])) if self.sweeps else 1
        gen = self.batched_generations * self.steps_per_clip * c.step_s
        extract = self.extraction_passes * self.clip_seconds * c.extract_s_per_audio_s
        evaluate = (self.evaluations + self.probe_passes) * self.seconds * c.extract_s_per_audio_s
        detect = self.evaluations * self.seconds * c.detect_s_per_audio_s
        kv = c.kv_bytes_per_step * self.steps_per_clip * batch
        return {
            "generate_s": gen,
            "extract_s": extract,
            "evaluate_s": evaluate + detect,
            "total_s": gen + extract + evaluate + detect,
            "memory_bytes": float(c.weight_bytes + kv),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tables": list(self.tables),
            "concepts": list(self.concepts),
            "clips_to_synthesise": self.clips,
            "syntheory": None if self.source is None else self.source.to_dict(),
            "data": {k: {**asdict(v), "clips": v.clips} for k, v in self.data.items()},
            "sweeps": {s.name: {"tables": list(s.tables), "key": s.key()} for s in self.sweeps},
            "not_measured": {str(k): v for k, v in self.missing.items()},
            "generations": self.generations,
            "steps_per_clip": self.steps_per_clip,
            "decoder_steps": self.decoder_steps,
            "batched_generations": round(self.batched_generations, 1),
            "extraction_passes": self.extraction_passes,
            "evaluations": self.evaluations,
            "probe_passes": self.probe_passes,
            "costs": None if self.costs is None else asdict(self.costs),
            "estimate": self.estimate(),
        }

    def lines(self) -> list[str]:
        """The plan as the CLI prints it."""
        out = [
            f"plan: {self.model}, tables {', '.join(map(str, self.tables))}; concepts "
            f"{', '.join(self.concepts)}",
            f"  synthesise {self.clips:,} clips of {self.clip_seconds:g} s ("
            + ", ".join(f"{k} {v.clips:,}" for k, v in self.data.items())
            + ")",
            f"  extract: {self.extraction_passes:,} decoder passes over training clips",
            f"  generate: {self.generations:,} clips of {self.seconds:g} s = "
            f"{self.decoder_steps:,} decoder steps ({self.steps_per_clip} per clip) in "
            f"{len(self.sweeps)} sweeps, {self.batched_generations:,.0f} batches",
            f"  evaluate: {self.evaluations:,} clip scorings (detector + FD/MMD embedding pass), "
            f"{self.probe_passes:,} probe-accuracy passes",
        ]
        if self.source is not None:
            out.insert(2, f"  clips from: {self.source.describe()}")
        for n, why in sorted(self.missing.items()):
            out.append(f"  table {n}: not measured: {why}")
        est = self.estimate()
        if est is not None and self.costs is not None:
            c = self.costs
            out.append(
                f"  ESTIMATE on {c.device} (from a measured {c.step_s * 1e3:.1f} ms per decoder "
                f"step and {c.extract_s_per_audio_s * 1e3:.1f} ms per audio second extracted; "
                "probe training not included): "
                f"{_duration(est['total_s'])} (generate {_duration(est['generate_s'])}, extract "
                f"{_duration(est['extract_s'])}, evaluate {_duration(est['evaluate_s'])}); "
                f"memory ~{_size(est['memory_bytes'])} (weights {_size(c.weight_bytes)} + KV "
                "cache of one batch)"
                + (
                    f"; measured peak {_size(c.measured_peak_bytes)} during the probe"
                    if c.measured_peak_bytes
                    else ""
                )
            )
        return out


def count_generations(spec: SweepSpec) -> tuple[int, int, int]:
    """(distinct clips generated, clip scorings, probe passes) of a sweep: conditions sharing a
    plan share audio (the unsteered clips; a multi-direction entry's conditions)."""
    from musicrfm.experiments.sweep.config import parse_config
    from musicrfm.experiments.sweep.grid import expand_conditions

    cfg = parse_config(spec.config)
    conditions = expand_conditions(cfg)
    per = len(cfg.prompts) * len(cfg.seeds)
    plans = {
        json.dumps(
            [[t.concept, t.target, t.coef, t.control, t.options] for t in c.terms],
            sort_keys=True,
            default=str,
        )
        for c in conditions
    }
    probes = sum(per for c in conditions if c.concept != "tempos")
    return len(plans) * per, len(conditions) * per, probes


def build_plan(
    model: str,
    options: ReproduceOptions,
    protocol: Protocol,
    *,
    num_layers: int,
    frame_rate: float,
    max_delay: int,
    directions: Mapping[str, str],
    costs: Costs | None = None,
    source: SynthSource | None = None,
) -> Plan:
    """Count what the run will do (no model needed beyond its depth and frame rate)."""
    concepts = run_concepts(options, protocol)
    data = {c: data_size(c, options, protocol) for c in concepts}
    specs, missing = sweep_specs(
        options, protocol, model=model, num_layers=num_layers, directions=directions
    )
    gens = evals = probes = 0
    batched = 0.0
    for s in specs:
        g, e, p = count_generations(s)
        gens, evals, probes = gens + g, evals + e, probes + p
        # clips are generated prompt by prompt, so one batch holds at most that prompt's seeds
        batched += g / min(max(1, options.batch), len(s.config["seeds"]))
    seconds = options.seconds or float(protocol.value("steering.seconds"))
    clip_seconds = options.clip_seconds or float(protocol.value("dataset.clip_seconds"))
    poolings = 2 if 1 in options.tables else 1
    return Plan(
        model=model,
        tables=options.tables,
        concepts=concepts,
        data=data,
        sweeps=specs,
        missing=missing,
        steps_per_clip=int(round(seconds * frame_rate)) + int(max_delay),
        generations=gens,
        evaluations=evals,
        probe_passes=probes,
        extraction_passes=poolings * sum(d.clips for d in data.values()),
        seconds=seconds,
        clip_seconds=clip_seconds,
        batched_generations=batched,
        costs=costs,
        source=source,
    )


def measure_costs(adapter: ModelAdapter, *, batch: int = 1, work: Path) -> Costs:
    """Time a few decoder steps (two short generations, their difference), one extraction and
    one detector call on the loaded model; weights and KV-cache bytes from its shapes."""
    import numpy as np
    import soundfile as sf
    import torch

    from musicrfm.capture.extract import extract_features
    from musicrfm.evaluation import detectors as det
    from musicrfm.steering.generation import generate, steps_for

    cuda = str(adapter.device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(adapter.device)
    fr = float(adapter.frame_rate)
    short, long = 2.0 / fr, 12.0 / fr
    prompts = ["a piano"] * batch
    generate(adapter, prompts[:1], seconds=short, seed=0, strict=False)  # warm-up
    t = time.perf_counter()
    generate(adapter, prompts, seconds=short, seed=0, batch=batch, strict=False)
    t_short = time.perf_counter() - t
    t = time.perf_counter()
    generate(adapter, prompts, seconds=long, seed=0, batch=batch, strict=False)
    t_long = time.perf_counter() - t
    steps = steps_for(long, adapter) - steps_for(short, adapter)
    step_s = max(t_long - t_short, 1e-6) / max(steps, 1)
    work.mkdir(parents=True, exist_ok=True)
    sr = int(adapter.sample_rate)
    wav = work / "probe.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype("float32"), sr)
    import pandas as pd

    extract_features(adapter, pd.DataFrame({"path": [str(wav)]}), use_cache=False, progress=False)
    t = time.perf_counter()
    extract_features(adapter, pd.DataFrame({"path": [str(wav)]}), use_cache=False, progress=False)
    extract_s = time.perf_counter() - t
    tone, _ = sf.read(wav, dtype="float32")
    det.detect(tone, sr, "notes")  # warm-up: a detector may load its model on first use
    t = time.perf_counter()
    det.detect(tone, sr, "notes")
    detect_s = time.perf_counter() - t  # per second of audio: the tone is 1 s long
    params = list(adapter.model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in params)
    elem = params[0].element_size() if params else 4
    kv = 2 * int(adapter.num_layers) * 2 * int(adapter.hidden_size) * elem  # k+v, CFG's 2 rows
    peak = int(torch.cuda.max_memory_allocated(adapter.device)) if cuda else None
    return Costs(str(adapter.device), step_s, extract_s, detect_s, weight_bytes, kv, peak)


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _size(n: float | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
