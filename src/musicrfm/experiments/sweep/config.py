"""Sweep configs: read and validate the TOML/JSON file that describes a steering sweep.

A sweep config (TOML or JSON) names a model, the concepts (directions, or features / a dataset
to train them from), targets, an η0 grid, prompts, seeds, the base plan options, ablations
(top-K, layer weighting, gate p, schedules), multi-direction combinations, crossfades and the
causal controls (:mod:`musicrfm.experiments.controls`). Example::

    model = "random:tiny"            # anything musicrfm.models.load_model accepts
    seconds = 1.0
    prompts = ["a piano melody"]
    seeds = [0, 1, 2]
    coefs = [0.15, 0.3, 0.6]         # the η0 grid (unsteered clips are always generated);
                                      # or relative: ["0.05x", "0.1x"] = × the directions'
                                      # median activation norm (then every coef is relative)
    controls = ["random", "flip", "orthogonal", "other_class"]

    [plan]                            # base options of every steered condition
    layers = "all"                    # or "top:8", "0-11", ...
    weighting = "exponential"         # uniform / linear / exponential
    kappa = 0.95
    gate = 0.3
    schedule = "constant"             # any musicrfm.steering.schedules.parse_schedule spec

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

Parsing lives apart from running (:mod:`musicrfm.experiments.sweep.run`) so that a config can be
checked without a model; the grid it describes is expanded by :mod:`musicrfm.experiments.sweep.grid`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors import registry as detector_registry
from musicrfm.experiments.controls import CONTROL_KINDS
from musicrfm.files import read_config
from musicrfm.steering.plan import relative_coef

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
    "embedding",
}
GENERATION_KEYS = ("guidance_scale", "temperature", "top_k", "top_p", "batch")


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
    # "relative": every η0 of the sweep (coefs, ablation_coef, multi and crossfade coefs) is a
    # multiple of the median activation norm its concept's directions were trained on
    coef_unit: str = "absolute"
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
    embedding: str | None = None  # FD/MMD back-end: "activations[:layer]" (default) or "mfcc"
    base_dir: Path = field(default_factory=Path.cwd)

    def to_dict(self) -> dict[str, Any]:
        d = {k: copy.deepcopy(getattr(self, k)) for k in TOP_KEYS if k != "concepts"}
        if self.coef_unit == "relative":  # written as given, so the file parses to this again
            d["coefs"] = [f"{c!r}x" for c in self.coefs]
            if self.ablation_coef is not None:
                d["ablation_coef"] = f"{self.ablation_coef!r}x"
            for item in [it for m in d["multi"] for it in m] + d["crossfades"]:
                if "coef" in item:
                    item["coef"] = f"{item['coef']!r}x"
        d["concepts"] = {
            n: {k: v for k, v in vars(c).items() if v not in (None, {}, [])}
            for n, c in self.concepts.items()
        }
        return d


def __getattr__(name: str) -> Any:
    if name == "DETECTOR_CONCEPTS":  # the registered detectors, read when asked (PEP 562)
        return detector_registry.concepts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def canonical_concept(name: str) -> str:
    """The detector concept for a config name ('note' -> 'notes'); ConfigError when no detector
    is registered for it (:mod:`musicrfm.evaluation.detectors.registry`)."""
    record = detector_registry.find_detector(str(name).lower())
    if record is None:
        raise ConfigError(
            f"unknown concept {name!r} in the sweep config: no independent detector exists for it; "
            f"known concepts: {', '.join(detector_registry.concepts())} (set `detector = ...` in "
            f"[concepts.{name}] to use one of them)"
        )
    return record.name


def _resolve(base: Path, p: Any) -> str | None:
    if p is None:
        return None
    path = Path(str(p)).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _coef_list(value: Any, name: str, unit: str | None) -> tuple[list[float], str]:
    """η0 values as floats and their unit ("absolute" numbers, or "relative" ``"0.1x"``
    strings); every η0 of one sweep has the unit of its ``coefs`` (``unit``), so that its tables
    compare like with like."""
    items = value if isinstance(value, (list, tuple)) else [value]
    relative = [relative_coef(v) for v in items]
    units = {"absolute" if r is None else "relative" for r in relative}
    if len(units) > 1 or (unit is not None and units != {unit}):
        want = unit or "one unit"
        raise ConfigError(
            f"{name} mixes absolute η0 numbers and relative '0.1x' values; give every η0 of "
            f"the sweep in {want} (the unit of `coefs`)"
        )
    values = [r if r is not None else v for r, v in zip(relative, items)]
    return _num_list(values, name), units.pop() if units else (unit or "absolute")


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
    concepts = _parse_concepts(data.get("concepts"), base)
    controls = list(data.get("controls", CONTROL_KINDS))
    bad = [c for c in controls if c not in CONTROL_KINDS]
    if bad:
        raise ConfigError(f"unknown control(s) {bad}; valid: {', '.join(CONTROL_KINDS)}")
    prompts = data.get("prompts", [""])
    prompts = [prompts] if isinstance(prompts, str) else [str(p) for p in prompts]
    if not prompts:
        raise ConfigError("prompts must not be empty")
    plan = _table(data, "plan", PLAN_KEYS)
    ablations = {k: list(v) for k, v in dict(data.get("ablations") or {}).items()}
    bad = set(ablations) - {"top_k", "weighting", "gate", "schedules"}
    if bad:
        raise ConfigError(
            f"[ablations] has unknown key(s) {sorted(bad)}; valid: top_k, weighting, gate, schedules"
        )
    multi = _parse_multi(data.get("multi") or [], concepts)
    crossfades = _parse_crossfades(data.get("crossfades") or [], concepts)
    generation = _table(data, "generation", GENERATION_KEYS)
    embedding = _parse_embedding(data.get("embedding"))
    seconds = _num_list(data.get("seconds", 1.0), "seconds")[0]
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    coefs, unit = _coef_list(data.get("coefs", [0.15, 0.3, 0.45, 0.6]), "coefs", None)
    ablation_coef = data.get("ablation_coef")
    if ablation_coef is not None:
        ablation_coef = _coef_list(ablation_coef, "ablation_coef", unit)[0][0]
    for where, items in [(f"[[multi]] #{i + 1}", m) for i, m in enumerate(multi)] + [
        (f"[[crossfades]] #{i + 1}", [c]) for i, c in enumerate(crossfades)
    ]:
        for item in items:
            if "coef" in item:
                item["coef"] = _coef_list(item["coef"], f"{where} coef", unit)[0][0]
    return SweepConfig(
        model=str(data.get("model", "mini")),
        prompts=prompts,
        seeds=_num_list(data.get("seeds", [0]), "seeds", int),
        coefs=[c for c in coefs if c != 0],
        coef_unit=unit,
        concepts=concepts,
        controls=controls,
        control_seed=_num_list(data.get("control_seed", 0), "control_seed", int)[0],
        seconds=seconds,
        plan=plan,
        ablations=ablations,
        ablation_coef=ablation_coef,
        multi=multi,
        crossfades=crossfades,
        generation=generation,
        device=str(data.get("device", "cpu")),
        dtype=str(data.get("dtype", "float32")),
        name=str(data.get("name", "sweep")),
        instrument_classifier=_resolve(base, data.get("instrument_classifier")),
        clap_checkpoint=_resolve(base, data.get("clap_checkpoint")),
        probe_accuracy=bool(data.get("probe_accuracy", True)),
        threads=None if data.get("threads") is None else _threads(data["threads"]),
        embedding=embedding,
        base_dir=base,
    )


def _threads(value: Any) -> int:
    threads = _num_list(value, "threads", int)[0]
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {value!r}")
    return threads


def _parse_concepts(raw: Any, base: Path) -> dict[str, ConceptSpec]:
    if not raw or not isinstance(raw, Mapping):
        raise ConfigError("the sweep config needs a [concepts.<name>] table per concept")
    return {str(name): _parse_concept(str(name), spec, base) for name, spec in raw.items()}


def _parse_concept(name: str, spec: Any, base: Path) -> ConceptSpec:
    """One [concepts.<name>] table; its detector comes from the registry."""
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
    return ConceptSpec(
        name=name,
        detector=detector,
        targets=targets,
        directions=_resolve(base, spec.get("directions")),
        features=_resolve(base, spec.get("features")),
        dataset=_resolve(base, spec.get("dataset")),
        label_column=str(spec.get("label_column", "label")),
        probes=_resolve(base, spec.get("probes")),
        train=dict(spec.get("train") or {}),
    )


def _table(data: Mapping[str, Any], key: str, valid: tuple[str, ...]) -> dict[str, Any]:
    """The [key] table, checked against its ``valid`` keys."""
    table = dict(data.get(key) or {})
    bad = set(table) - set(valid)
    if bad:
        raise ConfigError(f"[{key}] has unknown key(s) {sorted(bad)}; valid: {', '.join(valid)}")
    return table


def _parse_multi(raw: list[Any], concepts: Mapping[str, ConceptSpec]) -> list[list[dict[str, Any]]]:
    multi = []
    for i, m in enumerate(raw):
        items = list((m or {}).get("directions") or [])
        if len(items) < 2:
            raise ConfigError(
                f"[[multi]] #{i + 1} needs directions = [ {{concept, target, coef}}, ...] (2+)"
            )
        for it in items:
            _check_ref(concepts, it.get("concept"), it.get("target"), f"[[multi]] #{i + 1}")
        multi.append([dict(it) for it in items])
    return multi


def _parse_crossfades(raw: list[Any], concepts: Mapping[str, ConceptSpec]) -> list[dict[str, Any]]:
    crossfades = []
    for i, c in enumerate(raw):
        c = dict(c)
        for key in ("a", "b"):
            _check_ref(concepts, c.get("concept"), c.get(key), f"[[crossfades]] #{i + 1}")
        crossfades.append(c)
    return crossfades


def _parse_embedding(embedding: Any) -> str | None:
    if embedding is None:
        return None
    embedding = str(embedding)
    if embedding != "mfcc" and not embedding.startswith("activations"):
        raise ConfigError(
            f"unknown embedding {embedding!r}; valid: 'activations', 'activations:<layer>', 'mfcc'"
        )
    return embedding


def _check_ref(concepts: Mapping[str, ConceptSpec], concept: Any, target: Any, where: str) -> None:
    if concept is None or target is None:
        raise ConfigError(f"{where}: each direction needs concept = ... and a target/class")
    if str(concept) not in concepts:
        canonical_concept(str(concept))  # a clear message for concepts without a detector
        raise ConfigError(
            f"{where}: concept {concept!r} is not defined; add [concepts.{concept}] "
            f"(defined: {', '.join(concepts)})"
        )


def check_target(cd: Any, target: str, where: str) -> None:
    """A ConfigError, before anything is generated, when ``target`` is not something ``cd``
    can steer toward; its message says what to use instead (the valid classes, or 'faster' /
    'slower' for a regression such as tempo)."""
    try:
        cd.class_index(target)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | Path) -> SweepConfig:
    """Read a ``.toml`` or ``.json`` sweep config (paths inside are relative to its folder)."""
    path = Path(path)
    data = read_config(path, what="sweep config")
    return parse_config(data, base_dir=path.parent.resolve())
