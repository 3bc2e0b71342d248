"""Steering sweeps with causal controls: config -> grid of conditions -> cached audio -> results.

A sweep config (TOML or JSON) names a model, the concepts (directions, or features / a dataset
to train them from), targets, an η0 grid, prompts, seeds, the base plan options, ablations
(top-K, layer weighting, gate p, schedules), multi-direction combinations, crossfades and the
causal controls (:mod:`musicrfm.evaluation.controls`). Example::

    model = "random:tiny"            # anything musicrfm.models.load_model accepts
    seconds = 1.0
    prompts = ["a piano melody"]
    seeds = [0, 1, 2]
    coefs = [0.15, 0.3, 0.6]         # the η0 grid (unsteered clips are always generated)
    controls = ["random", "flip", "orthogonal", "other_class"]

    [plan]                            # base options of every steered condition
    layers = "all"                    # or "top:8", "0-11", ...
    weighting = "exponential"         # uniform / linear / exponential
    kappa = 0.95
    gate = 0.3
    schedule = "constant"             # any musicrfm.schedules.parse_schedule spec

    [concepts.notes]
    directions = "dirs/notes"         # or features = "feats/notes" / dataset = "synth/notes"
    targets = ["C", "E"]              # (+ label_column, train = {budget = "fast", ...})
    probes = "dirs/probes"            # optional; default: <directions folder>/probes

    [ablations]                       # concept direction only, at η0 = ablation_coef
    top_k = [1, 2]
    weighting = ["uniform", "linear", "exp:0.95"]
    gate = [0.3, 1.0]
    schedules = ["linear-rise", "exp-decay"]

    [[multi]]                         # several directions at once
    directions = [{concept = "notes", target = "C", coef = 0.3},
                  {concept = "notes", target = "G", coef = 0.3}]

    [[crossfades]]
    concept = "notes"
    a = "C"
    b = "G"

Each condition (one plan x prompts x seeds) is identified by a hash; its clips live in
``audio/<generation hash>/`` (reused by any condition with the same plan and options), its results
in ``conditions/<condition id>.json``, written atomically once the condition is fully generated
and evaluated. Re-running a sweep skips finished conditions and reuses any clip already on disk,
so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.directions import ConceptDirections
from musicrfm.errors import ConfigError
from musicrfm.evaluation.controls import CONTROL_KINDS, control_directions

log = logging.getLogger(__name__)

SWEEP_FORMAT_VERSION = 1
DETECTOR_CONCEPTS = ("notes", "chords", "intervals", "tempos")
_CONCEPT_ALIASES = {
    "note": "notes",
    "pitch_class": "notes",
    "chord": "chords",
    "interval": "intervals",
    "tempo": "tempos",
}
PLAN_KEYS = ("layers", "top_k", "weighting", "w0", "kappa", "gate", "schedule", "rows", "component")
TOP_KEYS = {
    "name",
    "model",
    "device",
    "dtype",
    "seconds",
    "prompts",
    "seeds",
    "coefs",
    "controls",
    "control_seed",
    "plan",
    "concepts",
    "ablations",
    "ablation_coef",
    "multi",
    "crossfades",
    "generation",
    "instrument_classifier",
    "clap_checkpoint",
    "probe_accuracy",
    "threads",
}
GENERATION_KEYS = ("guidance_scale", "temperature", "top_k", "top_p", "batch")


# ============================================================================ config
@dataclass
class ConceptSpec:
    """One concept of a sweep: where its directions come from and what to steer toward."""

    name: str
    detector: str
    targets: list[str]
    directions: str | None = None
    features: str | None = None
    dataset: str | None = None
    label_column: str = "label"
    probes: str | None = None
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepConfig:
    """A parsed, validated sweep config (see the module docstring for the file format)."""

    model: str
    prompts: list[str]
    seeds: list[int]
    coefs: list[float]
    concepts: dict[str, ConceptSpec]
    controls: list[str] = field(default_factory=lambda: list(CONTROL_KINDS))
    control_seed: int = 0
    seconds: float = 1.0
    plan: dict[str, Any] = field(default_factory=dict)
    ablations: dict[str, list[Any]] = field(default_factory=dict)
    ablation_coef: float | None = None
    multi: list[list[dict[str, Any]]] = field(default_factory=list)
    crossfades: list[dict[str, Any]] = field(default_factory=list)
    generation: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float32"
    name: str = "sweep"
    instrument_classifier: str | None = None
    clap_checkpoint: str | None = None
    probe_accuracy: bool = True
    threads: int | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    def to_dict(self) -> dict[str, Any]:
        d = {k: copy.deepcopy(getattr(self, k)) for k in TOP_KEYS if k != "concepts"}
        d["concepts"] = {
            n: {k: v for k, v in vars(c).items() if v not in (None, {}, [])}
            for n, c in self.concepts.items()
        }
        return d


def canonical_concept(name: str) -> str:
    """The detector concept for a config name ('note' -> 'notes'); ConfigError when unknown."""
    key = _CONCEPT_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DETECTOR_CONCEPTS:
        raise ConfigError(
            f"unknown concept {name!r} in the sweep config: no independent detector exists for it; "
            f"known concepts: {', '.join(DETECTOR_CONCEPTS)} (set `detector = ...` in "
            f"[concepts.{name}] to use one of them)"
        )
    return key


def _resolve(base: Path, p: Any) -> str | None:
    if p is None:
        return None
    path = Path(str(p)).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _num_list(value: Any, name: str, kind: type = float) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for v in items:
        try:
            x = kind(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must hold numbers, got {v!r}") from None
        if kind is float and not math.isfinite(x):
            raise ConfigError(f"{name} must be finite, got {v!r}")
        out.append(x)
    if not out:
        raise ConfigError(f"{name} must not be empty")
    return out


def parse_config(data: Mapping[str, Any], *, base_dir: str | Path | None = None) -> SweepConfig:
    """Validate a config mapping; relative paths are resolved against ``base_dir``."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    data = dict(data)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ConfigError(
            f"unknown sweep config key(s) {sorted(unknown)}; valid: {', '.join(sorted(TOP_KEYS))}"
        )
    concepts_raw = data.get("concepts")
    if not concepts_raw or not isinstance(concepts_raw, Mapping):
        raise ConfigError("the sweep config needs a [concepts.<name>] table per concept")
    concepts: dict[str, ConceptSpec] = {}
    for name, spec in concepts_raw.items():
        spec = dict(spec or {})
        detector = canonical_concept(spec.pop("detector", name))
        targets = spec.pop("targets", spec.pop("target", None))
        if targets is None:
            raise ConfigError(f"[concepts.{name}] needs targets = [...]")
        targets = [str(t) for t in (targets if isinstance(targets, (list, tuple)) else [targets])]
        sources = [k for k in ("directions", "features", "dataset") if spec.get(k)]
        if not sources:
            raise ConfigError(
                f"[concepts.{name}] needs directions = '<files>', features = '<FeatureSet>' or "
                "dataset = '<synthetic dataset>' to train them"
            )
        known = {"directions", "features", "dataset", "label_column", "probes", "train"}
        bad = set(spec) - known
        if bad:
            raise ConfigError(f"[concepts.{name}] has unknown key(s) {sorted(bad)}")
        concepts[str(name)] = ConceptSpec(
            name=str(name),
            detector=detector,
            targets=targets,
            directions=_resolve(base, spec.get("directions")),
            features=_resolve(base, spec.get("features")),
            dataset=_resolve(base, spec.get("dataset")),
            label_column=str(spec.get("label_column", "label")),
            probes=_resolve(base, spec.get("probes")),
            train=dict(spec.get("train") or {}),
        )
    controls = list(data.get("controls", CONTROL_KINDS))
    bad = [c for c in controls if c not in CONTROL_KINDS]
    if bad:
        raise ConfigError(f"unknown control(s) {bad}; valid: {', '.join(CONTROL_KINDS)}")
    prompts = data.get("prompts", [""])
    prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
    if not prompts:
        raise ConfigError("prompts must not be empty")
    plan = dict(data.get("plan") or {})
    bad = set(plan) - set(PLAN_KEYS)
    if bad:
        raise ConfigError(f"[plan] has unknown key(s) {sorted(bad)}; valid: {', '.join(PLAN_KEYS)}")
    ablations = {k: list(v) for k, v in dict(data.get("ablations") or {}).items()}
    bad = set(ablations) - {"top_k", "weighting", "gate", "schedules"}
    if bad:
        raise ConfigError(
            f"[ablations] has unknown key(s) {sorted(bad)}; valid: top_k, weighting, gate, schedules"
        )
    multi = []
    for i, m in enumerate(data.get("multi") or []):
        items = list((m or {}).get("directions") or [])
        if len(items) < 2:
            raise ConfigError(
                f"[[multi]] #{i + 1} needs directions = [ {{concept, target, coef}}, ...] (2+)"
            )
        for it in items:
            _check_ref(concepts, it.get("concept"), it.get("target"), f"[[multi]] #{i + 1}")
        multi.append([dict(it) for it in items])
    crossfades = []
    for i, c in enumerate(data.get("crossfades") or []):
        c = dict(c)
        for key in ("a", "b"):
            _check_ref(concepts, c.get("concept"), c.get(key), f"[[crossfades]] #{i + 1}")
        crossfades.append(c)
    generation = dict(data.get("generation") or {})
    bad = set(generation) - set(GENERATION_KEYS)
    if bad:
        raise ConfigError(
            f"[generation] has unknown key(s) {sorted(bad)}; valid: {', '.join(GENERATION_KEYS)}"
        )
    seconds = _num_list(data.get("seconds", 1.0), "seconds")[0]
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    return SweepConfig(
        model=str(data.get("model", "mini")),
        prompts=prompts,
        seeds=_num_list(data.get("seeds", [0]), "seeds", int),
        coefs=[c for c in _num_list(data.get("coefs", [0.15, 0.3, 0.45, 0.6]), "coefs") if c != 0],
        concepts=concepts,
        controls=controls,
        control_seed=int(data.get("control_seed", 0)),
        seconds=seconds,
        plan=plan,
        ablations=ablations,
        ablation_coef=(None if data.get("ablation_coef") is None else float(data["ablation_coef"])),
        multi=multi,
        crossfades=crossfades,
        generation=generation,
        device=str(data.get("device", "cpu")),
        dtype=str(data.get("dtype", "float32")),
        name=str(data.get("name", "sweep")),
        instrument_classifier=_resolve(base, data.get("instrument_classifier")),
        clap_checkpoint=_resolve(base, data.get("clap_checkpoint")),
        probe_accuracy=bool(data.get("probe_accuracy", True)),
        threads=None if data.get("threads") is None else int(data["threads"]),
        base_dir=base,
    )


def _check_ref(concepts: Mapping[str, ConceptSpec], concept: Any, target: Any, where: str) -> None:
    if concept is None or target is None:
        raise ConfigError(f"{where}: each direction needs concept = ... and a target/class")
    if str(concept) not in concepts:
        canonical_concept(str(concept))  # a clear message for concepts without a detector
        raise ConfigError(
            f"{where}: concept {concept!r} is not defined; add [concepts.{concept}] "
            f"(defined: {', '.join(concepts)})"
        )


def load_config(path: str | Path) -> SweepConfig:
    """Read a ``.toml`` or ``.json`` sweep config (paths inside are relative to its folder)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep config not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
    elif path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
    else:
        raise ConfigError(f"sweep configs end in .toml or .json, got {path.name}")
    return parse_config(data, base_dir=path.parent.resolve())


# ============================================================================ conditions
@dataclass
class Term:
    """One direction of a condition's plan."""

    concept: str
    target: str
    coef: float
    control: str | None = None  # None: the concept direction itself
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Condition:
    """One cell of the sweep grid: a plan (list of terms; empty = unsteered) x prompts x seeds."""

    kind: str  # main / unsteered / top_k / weighting / gate / schedule / multi / crossfade
    condition: str  # "concept", "unsteered" or a control kind
    concept: str
    target: str
    coef: float
    variant: str
    terms: list[Term] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.kind}/{self.concept}/{self.target}/{self.condition}/{self.variant}/η0={self.coef:g}"

    def key(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "condition": self.condition,
            "concept": self.concept,
            "target": self.target,
            "coef": self.coef,
            "variant": self.variant,
        }


def _variant_name(options: Mapping[str, Any]) -> str:
    parts = []
    for k in PLAN_KEYS:
        if k in options:
            parts.append(f"{k}={options[k]}")
    return ",".join(parts) or "default"


def _ablation_options(axis: str, value: Any) -> dict[str, Any]:
    if axis == "top_k":
        return {"top_k": int(value)}
    if axis == "gate":
        return {"gate": float(value)}
    if axis == "schedules":
        return {"schedule": str(value)}
    # weighting: "uniform", "linear[:w0]", "exp[:kappa]" (musicrfm.steering.parse_layers syntax)
    from musicrfm.steering import parse_layers

    parsed = parse_layers(str(value))
    parsed.pop("layers", None)
    if "weighting" not in parsed:
        raise ConfigError(f"ablation weighting {value!r}: use uniform, linear or exp:<kappa>")
    return parsed


def expand_conditions(cfg: SweepConfig) -> list[Condition]:
    """The grid: per concept x target x η0 the concept direction and each control; unsteered
    baselines; ablations; multi-direction combinations and crossfades."""
    base = dict(cfg.plan)
    base_variant = _variant_name(base)
    out: list[Condition] = []
    abl_coef = cfg.ablation_coef if cfg.ablation_coef is not None else max(cfg.coefs)
    for name, spec in cfg.concepts.items():
        for target in spec.targets:
            out.append(Condition("unsteered", "unsteered", name, target, 0.0, "unsteered"))
            for coef in cfg.coefs:
                for cond in ["concept", *cfg.controls]:
                    ctl = None if cond == "concept" else cond
                    out.append(
                        Condition(
                            "main",
                            cond,
                            name,
                            target,
                            coef,
                            base_variant,
                            [Term(name, target, coef, ctl, base)],
                        )
                    )
            for axis, values in cfg.ablations.items():
                for value in values:
                    opts = {**base, **_ablation_options(axis, value)}
                    kind = "schedule" if axis == "schedules" else axis
                    out.append(
                        Condition(
                            kind,
                            "concept",
                            name,
                            target,
                            abl_coef,
                            str(value),
                            [Term(name, target, abl_coef, None, opts)],
                        )
                    )
    for items in cfg.multi:
        terms = [
            Term(str(it["concept"]), str(it["target"]), float(it.get("coef", abl_coef)), None, base)
            for it in items
        ]
        variant = "+".join(f"{t.concept}:{t.target}@{t.coef:g}" for t in terms)
        for t in terms:
            out.append(Condition("multi", "concept", t.concept, t.target, t.coef, variant, terms))
    for cf in cfg.crossfades:
        coef = float(cf.get("coef", abl_coef))
        a, b, concept = str(cf["a"]), str(cf["b"]), str(cf["concept"])
        fall = {**base, "schedule": "linear-decay"}
        rise = {**base, "schedule": "linear-rise"}
        terms = [Term(concept, a, coef, None, fall), Term(concept, b, coef, None, rise)]
        out.append(Condition("crossfade", "concept", concept, b, coef, f"{a}->{b}", terms))
    return out


# ============================================================================ directions
@dataclass
class ConceptAssets:
    directions: ConceptDirections
    probe: Any = None  # musicrfm.rfm.RFM (multiclass) or None
    probe_classes: list[str] | None = None
    probe_layer: int | None = None


def _load_probe(folder: Path) -> tuple[Any, list[str], int] | None:
    index = folder / "index.json"
    if not index.is_file():
        return None
    from musicrfm.rfm import RFM

    info = json.loads(index.read_text())
    scores = {int(k): v for k, v in (info.get("scores") or {}).items()}
    layers = [int(x) for x in info.get("layers") or scores]
    if not layers:
        return None
    best = max(layers, key=lambda i: scores.get(i, {}).get("val_accuracy", 0.0))
    found = sorted(folder.glob(f"*_multiclass_layer{best:02d}.safetensors"))
    if not found:
        log.warning("probe index lists layer %d but no file in %s", best, folder)
        return None
    return RFM.load(found[0]), [str(c) for c in info.get("classes") or []], best


def save_train_result(result: Any, out: Path) -> Path:
    """Write a TrainResult as `musicrfm train` does: directions + probes/ with index.json."""
    d = result.directions
    stem = re.sub(r"[^\w.-]+", "_", d.concept).strip("._") or "directions"
    base = d.save(out / stem)
    if result.multiclass_probes:
        probe_dir = out / "probes"
        for layer, probe in result.multiclass_probes.items():
            probe.save(probe_dir / f"{stem}_multiclass_layer{layer:02d}")
        (probe_dir / "index.json").write_text(
            json.dumps(
                {
                    "concept": d.concept,
                    "classes": d.meta.get("classes"),
                    "layers": sorted(result.multiclass_probes),
                    "scores": result.multiclass_scores,
                    "model_id": d.meta.get("model_id"),
                },
                indent=2,
            )
        )
    return base


def prepare_concepts(
    cfg: SweepConfig,
    model: Any,
    out: Path,
    directions: Mapping[str, ConceptDirections] | None = None,
) -> dict[str, ConceptAssets]:
    """Load (or train and save under ``out/directions/<concept>``) each concept's directions."""
    assets: dict[str, ConceptAssets] = {}
    for name, spec in cfg.concepts.items():
        probe = None
        if directions and name in directions:
            cd = directions[name]
        elif spec.directions:
            cd = ConceptDirections.load(spec.directions)
            folder = Path(spec.directions)
            folder = folder if folder.is_dir() else folder.parent
            probe = _load_probe(Path(spec.probes) if spec.probes else folder / "probes")
        else:
            target_dir = out / "directions" / name
            found = sorted(target_dir.glob("*.safetensors"))
            if found:  # trained by an earlier (interrupted) run of this sweep
                cd = ConceptDirections.load(found[0])
            else:
                cd = _train(spec, model, target_dir)
            probe = _load_probe(target_dir / "probes")
        if spec.probes and probe is None and not (directions and name in directions):
            probe = _load_probe(Path(spec.probes))
        for t in spec.targets:
            cd.class_index(t)  # ConfigError listing the valid classes
        a = ConceptAssets(cd)
        if probe is not None:
            a.probe, a.probe_classes, a.probe_layer = probe
        assets[name] = a
    return assets


def _train(spec: ConceptSpec, model: Any, folder: Path) -> ConceptDirections:
    from musicrfm.features import FeatureSet, extract_features
    from musicrfm.probes import train_directions

    if spec.features:
        feats = FeatureSet.load(spec.features)
    else:
        feats = extract_features(model, spec.dataset, progress=False)
    options = {"budget": "fast", "progress": False, **spec.train}
    result = train_directions(feats, label_column=spec.label_column, concept=spec.name, **options)
    save_train_result(result, folder)
    log.info("trained directions for %s -> %s", spec.name, folder)
    return result.directions


def build_plan(cond: Condition, assets: Mapping[str, ConceptAssets], control_seed: int) -> Any:
    """The SteeringPlan of a condition (None when unsteered)."""
    from musicrfm.schedules import parse_schedule
    from musicrfm.steering import SteeringDirection, SteeringPlan

    if not cond.terms:
        return None
    dirs = []
    for term in cond.terms:
        cd = assets[term.concept].directions
        if term.control is not None:
            cd = control_directions(cd, term.control, target=term.target, seed=control_seed)
        opts = dict(term.options)
        if isinstance(opts.get("schedule"), str):
            opts["schedule"] = parse_schedule(opts["schedule"])
        dirs.append(SteeringDirection(cd, target=term.target, coef=term.coef, **opts))
    return SteeringPlan(dirs)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ============================================================================ running
@dataclass
class SweepRun:
    """What `run_sweep` did."""

    out: Path
    conditions: int
    finished: int
    skipped: int
    generated_clips: int
    reused_clips: int
    results: pd.DataFrame


def _model_info(model: Any) -> dict[str, Any]:
    info = dict(model.info()) if hasattr(model, "info") else {}
    return {k: info.get(k) for k in ("model_id", "revision", "fingerprint", "dtype")}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run_sweep(
    config: SweepConfig | str | Path | Mapping[str, Any],
    out: str | Path,
    *,
    model: Any = None,
    directions: Mapping[str, ConceptDirections] | None = None,
    on_condition: Callable[[Condition, int], None] | None = None,
    progress: bool = False,
) -> SweepRun:
    """Run (or resume) a sweep into ``out``; returns the results of every finished condition.

    model: an already loaded adapter (default: ``load_model(config.model)``).
    directions: in-memory ConceptDirections per concept name (override the config's sources).
    on_condition: called as ``on_condition(condition, n_finished)`` after each condition is
        written (tests use it to simulate a crash).
    """
    if isinstance(config, (str, Path)):
        cfg = load_config(config)
    elif isinstance(config, SweepConfig):
        cfg = config
    else:
        cfg = parse_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:  # set for the sweep only, restored afterwards
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            return _run(cfg, out, model, directions, on_condition, progress)
        finally:
            torch.set_num_threads(threads)
    return _run(cfg, out, model, directions, on_condition, progress)


def _run(
    cfg: SweepConfig,
    out: Path,
    model: Any,
    directions: Mapping[str, ConceptDirections] | None,
    on_condition: Callable[[Condition, int], None] | None,
    progress: bool,
) -> SweepRun:
    for what, path in (
        ("clap_checkpoint", cfg.clap_checkpoint),
        ("instrument_classifier", cfg.instrument_classifier),
    ):
        if path and not (Path(path).exists() or Path(path + ".safetensors").exists()):
            raise ConfigError(f"{what} not found: {path} (fix the path or remove the key)")
    if model is None:
        from musicrfm.models import load_model

        model = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
    assets = prepare_concepts(cfg, model, out, directions)
    conditions = expand_conditions(cfg)
    minfo = _model_info(model)
    gen_opts = {"seconds": cfg.seconds, **cfg.generation}
    _atomic_write(
        out / "sweep.json",
        json.dumps(
            {
                "format_version": SWEEP_FORMAT_VERSION,
                "config": cfg.to_dict(),
                "model": minfo,
                "frame_rate": float(getattr(model, "frame_rate", 0) or 50.0),
                "concepts": {
                    n: {
                        "classes": a.directions.classes,
                        "layers": a.directions.layers,
                        "probe_layer": a.probe_layer,
                        "score_name": a.directions.meta.get("score_name", "score"),
                        "layer_scores": [float(x) for x in a.directions.scores.mean(1)],
                        "detector": cfg.concepts[n].detector,
                    }
                    for n, a in assets.items()
                },
                "conditions": len(conditions),
            },
            indent=2,
            default=str,
        ),
    )
    classifier = None
    if cfg.instrument_classifier:
        from musicrfm.evaluation.instrument import InstrumentClassifier

        classifier = InstrumentClassifier.load(cfg.instrument_classifier)
    iterator: Any = conditions
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(conditions, desc="sweep", unit="condition")
    finished = skipped = generated = reused = 0
    for cond in iterator:
        plan = build_plan(cond, assets, cfg.control_seed)
        plan_dict = plan.to_dict(strict=False) if plan is not None else None
        # the content digest identifies the directions; their file path does not (moving the
        # sweep or its config must not invalidate the cache)
        plan_key = copy.deepcopy(plan_dict)
        for item in (plan_key or {}).get("direction", []):
            item.pop("directions", None)
        ghash = _hash(
            {
                "model": minfo,
                "generation": gen_opts,
                "plan": plan_key,
                "prompts": cfg.prompts,
                "seeds": cfg.seeds,
            }
        )
        cid = _hash(
            {
                "g": ghash,
                **cond.key(),
                "probe": cfg.probe_accuracy,
                "clf": cfg.instrument_classifier,
                "clap": cfg.clap_checkpoint,
            }
        )
        record_path = out / "conditions" / f"{cid}.json"
        if record_path.is_file():
            skipped += 1
            continue
        clips, n_new = _clips(model, cfg, plan, out / "audio" / ghash)
        generated += n_new
        reused += len(clips) - n_new
        rows = _evaluate(cfg, cond, clips, assets, model, classifier, out)
        for r in rows:
            r.update(condition_id=cid, generation_hash=ghash, **_plan_columns(cond))
        record = {"condition": cond.key(), "plan": plan_dict, "rows": rows}
        _atomic_write(record_path, json.dumps(record, default=_json_default) + "\n")
        finished += 1
        log.info("finished %s (%d clips, %d new)", cond.label(), len(clips), n_new)
        if on_condition is not None:
            on_condition(cond, finished)
    results = load_results(out)
    return SweepRun(out, len(conditions), finished, skipped, generated, reused, results)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _plan_columns(cond: Condition) -> dict[str, Any]:
    opts = cond.terms[0].options if cond.terms else {}
    return {
        f"plan_{k}": (str(opts[k]) if k in opts else None)
        for k in ("layers", "top_k", "weighting", "kappa", "gate", "schedule")
    }


def _clips(
    model: Any, cfg: SweepConfig, plan: Any, folder: Path
) -> tuple[list[tuple[str, int, Path]], int]:
    """Audio for every prompt x seed of a plan: reused from ``folder`` or generated there."""
    from musicrfm.generate import generate

    items = [(p, s) for p in cfg.prompts for s in cfg.seeds]
    paths = [
        folder / f"clip_{i:03d}_p{cfg.prompts.index(p)}_s{s}.wav" for i, (p, s) in enumerate(items)
    ]
    missing = [
        i for i, p in enumerate(paths) if not (p.is_file() and p.with_suffix(".json").is_file())
    ]
    if missing:
        # generate prompt by prompt so that each clip depends only on its own prompt and seed
        by_prompt: dict[str, list[int]] = {}
        for i in missing:
            by_prompt.setdefault(items[i][0], []).append(i)
        for prompt, idx in by_prompt.items():
            results = generate(
                model,
                [prompt],
                plan=plan,
                seconds=cfg.seconds,
                seed=[items[i][1] for i in idx],
                **cfg.generation,
            )
            for i, r in zip(idx, results):
                r.save(paths[i])
    return [(p, s, path) for (p, s), path in zip(items, paths)], len(missing)


def _evaluate(
    cfg: SweepConfig,
    cond: Condition,
    clips: Sequence[tuple[str, int, Path]],
    assets: Mapping[str, ConceptAssets],
    model: Any,
    classifier: Any,
    out: Path,
) -> list[dict[str, Any]]:
    from musicrfm.evaluation import detectors as det
    from musicrfm.evaluation.metrics import MFCCEmbedding

    spec = cfg.concepts[cond.concept]
    audios, srs = [], []
    for _, _, path in clips:
        y, sr = det.load_audio(path)
        audios.append(y)
        srs.append(sr)
    sr = srs[0]
    embed = MFCCEmbedding().embed(audios, sr)
    rows = []
    for (prompt, seed, path), y, emb in zip(clips, audios, embed):
        row: dict[str, Any] = {
            **cond.key(),
            "detector": spec.detector,
            "prompt": prompt,
            "seed": int(seed),
            "audio_path": str(path.relative_to(out)),
            "embedding": [float(v) for v in emb],
        }
        try:
            d = det.detect(y, sr, spec.detector)
            scored = _score(d, spec.detector, cond.target)
        except Exception as e:  # an unusable clip is a miss, recorded with its reason
            log.warning("detector failed on %s: %s", path, e)
            d = None
            scored = {
                "label": "error",
                "confidence": 0.0,
                "correct": False,
                "silent": False,
                "target_prob": float("nan"),
                "error": str(e),
            }
        row.update(scored)
        if cond.kind == "multi" and d is not None:
            same = [t.target for t in cond.terms if t.concept == cond.concept]
            row["correct"] = any(det.label_matches(spec.detector, d.label, t) for t in same)
        if d is not None:
            row.update(_trace(_fine_trace(y, sr, d, cond, spec.detector), cond, spec.detector))
        rows.append(row)
    if classifier is not None:
        from musicrfm.evaluation.instrument import prompt_adherence

        adh = prompt_adherence(classifier, audios, sr, [c[0] for c in clips])
        for row, (_, a) in zip(rows, adh.iterrows()):
            row.update(
                instrument_expected=a["expected"],
                instrument_predicted=a["predicted"],
                instrument_match=a["match"],
            )
    if cfg.clap_checkpoint:
        from musicrfm.evaluation.metrics import clap_similarity

        sims = clap_similarity(audios, sr, [c[0] for c in clips], checkpoint=cfg.clap_checkpoint)
        for row, s in zip(rows, np.asarray(sims).ravel()):
            row["clap"] = float(s)
    a = assets[cond.concept]
    if cfg.probe_accuracy and a.probe is not None:
        _probe_rows(rows, a, [c[2] for c in clips], model, cond)
    return rows


def _score(d: Any, detector: str, target: str) -> dict[str, Any]:
    """Like `detectors.score`, from a Detection already computed."""
    from musicrfm.evaluation import detectors as det

    options = {"factors": det.OCTAVE_FACTORS} if detector == "tempos" else {}
    prob = float("nan")
    if d.probs is not None and d.classes:
        key = det.normalize_pitch_class(str(target)) if detector == "notes" else str(target).lower()
        if key in d.classes:
            prob = float(d.probs[d.classes.index(key)])
    row = {
        "label": d.label,
        "confidence": float(d.confidence),
        "correct": det.label_matches(detector, d.label, target, **options),
        "silent": d.silent,
        "target_prob": prob,
    }
    for key in ("root", "bpm", "semitones", "direction"):
        if key in d.details:
            row[key] = d.details[key]
    return row


def _fine_trace(y: Any, sr: int, d: Any, cond: Condition, detector: str) -> Any:
    """For schedules and crossfades: the detector again with windows of 1/8 of the clip (at
    most 1 s), so the trace can follow the schedule; the clip-level label stays the default."""
    if cond.kind not in ("schedule", "crossfade") or detector == "tempos":
        return d
    from musicrfm.evaluation import detectors as det

    seconds = float(np.asarray(y).shape[-1]) / float(sr)
    window = min(1.0, max(seconds / 8.0, 0.1))
    try:
        return det.detect(y, sr, detector, window_s=window, hop_s=window / 2)
    except Exception as e:  # keep the default trace
        log.debug("fine trace failed: %s", e)
        return d


def _trace(d: Any, cond: Condition, detector: str) -> dict[str, Any]:
    """The detector's per-window probability of the target (and, for crossfades, of A)."""
    from musicrfm.evaluation import detectors as det

    out: dict[str, Any] = {"trace_times": [float(t) for t in d.times]}
    if d.trace_probs is None or not d.classes:
        out["trace_target"] = [] if d.trace_values is None else [float(v) for v in d.trace_values]
        return out

    def col(target: str) -> list[float]:
        key = det.normalize_pitch_class(target) if detector == "notes" else target.lower()
        if key not in d.classes:
            return []
        return [float(v) for v in d.trace_probs[:, d.classes.index(key)]]

    out["trace_target"] = col(cond.target)
    if cond.kind == "crossfade":
        a = cond.terms[0].target
        out["trace_a"] = col(a)
        labels = list(d.trace_labels)
        if labels:
            out["start_correct"] = (
                det.label_matches(detector, labels[0], a) if labels[0] != det.SILENT else False
            )
            out["end_correct"] = (
                det.label_matches(detector, labels[-1], cond.target)
                if labels[-1] != det.SILENT
                else False
            )
    return out


def _probe_rows(
    rows: list[dict[str, Any]], a: ConceptAssets, paths: list[Path], model: Any, cond: Condition
) -> None:
    """The paper's probe accuracy: the multiclass RFM probe on the clip's own activations."""
    from musicrfm.features import extract_features

    frame = pd.DataFrame({"path": [str(p) for p in paths]})
    prompt = a.directions.meta.get("prompt", "")
    try:
        feats = extract_features(model, frame, prompt=prompt, use_cache=False, progress=False)
        X = feats.layer(int(a.probe_layer))  # features hold every model layer, 0-based
        proba = a.probe.predict_proba(X).cpu().numpy()
    except Exception as e:  # probe accuracy is a secondary metric: record why it is missing
        log.warning("probe accuracy unavailable for %s: %s", cond.label(), e)
        for r in rows:
            r["probe_error"] = str(e)
        return
    classes = a.probe_classes or a.directions.classes
    targets = {t.target for t in cond.terms if t.concept == cond.concept} or {cond.target}
    for r, p in zip(rows, proba):
        k = int(np.argmax(p))
        r["probe_label"] = classes[k] if k < len(classes) else str(k)
        r["probe_correct"] = r["probe_label"] in targets
        r["probe_target_prob"] = (
            float(p[classes.index(cond.target)]) if cond.target in classes else float("nan")
        )


def load_results(out: str | Path) -> pd.DataFrame:
    """Every finished condition's rows (one per clip) as a DataFrame (``embedding`` as arrays)."""
    out = Path(out)
    rows = []
    for path in sorted((out / "conditions").glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("skipping unreadable condition record %s", path)
            continue
        rows.extend(rec.get("rows", []))
    frame = pd.DataFrame(rows)
    if "embedding" in frame.columns:
        frame["embedding"] = frame["embedding"].map(np.asarray)
    return frame
