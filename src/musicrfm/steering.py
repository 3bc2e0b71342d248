"""Steering plans and the hooks that apply them while MusicGen generates (SPEC §2.4).

At generation step t, for each decoder block ℓ (0-based, its output = the residual stream)::

    h'_{t,ℓ} = h_{t,ℓ} + Σ_m  η0_m · w_{ℓ,m} · φ_m(t) · ψ_m(t) · q_{ℓ,m}

* `SteeringDirection` describes one term m: concept directions + class + component(s) (q),
  coefficient η0, layer selection/weighting (w), schedule φ, stochastic gate p (ψ), guidance rows.
* `SteeringPlan` is a list of them plus the gate seed; it loads from / saves to TOML or JSON.
* `apply_plan(model, plan)` is a context manager installing forward hooks on the decoder blocks;
  they are always removed on exit (also on exceptions and Ctrl-C).

How a step is found: a pre-hook on block 0 reads the KV-cache length, so the positions fed by a
forward call are ``past .. past + S - 1`` and step t is decoder position t (t = 0: BOS). With the
cache each call feeds one position; the prefill (or a run with ``use_cache=False``) feeds several,
and each position gets its own φ(t)·ψ(t), so results do not depend on caching. Positions, not call
counts, are used because transformers 5.x MusicGen runs the prefill twice. The clock is the
position, so it advances on every step whether or not a gate fires. The (S, rows, layers, d)
addition is computed once per forward call by that pre-hook (for a one-position step: one matmul
into a preallocated buffer); each block's hook only adds its precomputed slice.

MusicGen-Melody prepends its condition (text + chroma) to the decoder sequence; a pre-hook on the
decoder reads its length so that step 0 is still the BOS position and the condition positions
get no addition. Blocks returning a tuple (Melody, older transformers) are handled like tensors.

Gate ψ_m(t): one Bernoulli(p_m) draw per step per direction, shared by all layers and batch rows,
from a NumPy generator seeded with (seed, m), so the same seed gives the same gate pattern.
Classifier-free guidance: MusicGen's generate stacks the conditional rows first and the
unconditional rows second; ``rows="conditional"`` steers only the first half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrfm.directions import ConceptDirections
from musicrfm.errors import CompatibilityError, ConfigError, ModelError
from musicrfm.schedules import Schedule, constant

log = logging.getLogger(__name__)

WEIGHTINGS = ("uniform", "linear", "exponential")
ROWS = ("both", "conditional")
PLAN_FORMAT_VERSION = 1


# ============================================================================ model access
@dataclass
class ModelView:
    """What steering needs from a model, for a `MusicGenAdapter` or a bare transformers model."""

    model: nn.Module
    layers: nn.ModuleList
    model_id: str | None
    num_layers: int
    hidden_size: int
    frame_rate: float | None
    num_codebooks: int | None
    adapter: Any = None
    decoder: nn.Module | None = None  # the module owning `layers` (embeddings, blocks, norm)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.layers.parameters()).dtype


def resolve_model(obj: Any) -> ModelView:
    """Accept a `musicrfm.models.MusicGenAdapter`, a `MusicgenForConditionalGeneration`
    (layers at ``model.decoder.model.decoder.layers``) or a `MusicgenForCausalLM`."""
    if isinstance(obj, ModelView):
        return obj
    if hasattr(obj, "decoder_layers") and hasattr(obj, "model"):
        layers = obj.decoder_layers
        frame_rate = getattr(obj, "frame_rate", None)
        return ModelView(
            model=obj.model,
            layers=layers,
            model_id=getattr(obj, "model_id", None),
            num_layers=int(getattr(obj, "num_layers", len(layers))),
            hidden_size=int(obj.hidden_size),
            frame_rate=float(frame_rate) if frame_rate else None,
            num_codebooks=getattr(obj, "num_codebooks", None),
            adapter=obj,
            decoder=getattr(obj, "decoder_base", None),
        )
    model = obj
    chains = (("decoder", "model", "decoder", "layers"), ("model", "decoder", "layers"))
    layers = decoder = None
    for chain in chains:
        cur, parent = model, None
        for name in chain:
            parent, cur = cur, getattr(cur, name, None)
            if cur is None:
                break
        if isinstance(cur, nn.ModuleList):
            layers, decoder = cur, parent
            break
    if layers is None:
        raise ModelError(
            f"cannot find MusicGen decoder layers in a {type(obj).__name__}; pass a "
            "MusicGenAdapter (musicrfm.models) or a MusicgenForConditionalGeneration"
        )
    cfg = getattr(model, "config", None)
    dec_cfg = getattr(cfg, "decoder", cfg)
    frame_rate = None
    audio_cfg = getattr(cfg, "audio_encoder", None)
    if audio_cfg is not None:
        with contextlib.suppress(Exception):
            frame_rate = float(audio_cfg.frame_rate)
    return ModelView(
        model=model,
        layers=layers,
        model_id=getattr(cfg, "_name_or_path", None) or getattr(model, "name_or_path", None),
        num_layers=len(layers),
        hidden_size=int(dec_cfg.hidden_size),
        frame_rate=frame_rate,
        num_codebooks=getattr(dec_cfg, "num_codebooks", None),
        decoder=decoder,
    )


# ============================================================================ plan
def _check_finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


def parse_layers(spec: str | int | Sequence[int] | None) -> dict[str, Any]:
    """Layer selection/weighting from a CLI spec → SteeringDirection fields.

    ``all``; ``top:8`` (the 8 best layers, uniform); ``3,5,7`` or ``0-11`` (explicit, negatives
    allowed); ``uniform``; ``linear[:w0]``; ``exp[:kappa[:w0]]`` (e.g. ``exp:0.95``). Parts can be
    joined with ``+``: ``top:12+exp:0.95``.
    """
    out: dict[str, Any] = {}
    if spec is None:
        return out
    if isinstance(spec, int):
        return {"layers": [int(spec)]}
    if not isinstance(spec, str):
        return {"layers": [int(x) for x in spec]}
    for part in filter(None, (p.strip() for p in spec.split("+"))):
        name, _, arg = part.partition(":")
        name = name.lower()
        args = [a for a in arg.split(":") if a] if arg else []
        try:
            if name == "all":
                out["layers"] = "all"
            elif name == "top":
                out["top_k"] = int(args[0])
            elif name == "uniform":
                out["weighting"] = "uniform"
                if args:
                    out["w0"] = float(args[0])
            elif name in {"linear", "lin"}:
                out["weighting"] = "linear"
                if args:
                    out["w0"] = float(args[0])
            elif name in {"exp", "exponential"}:
                out["weighting"] = "exponential"
                if args:
                    out["kappa"] = float(args[0])
                if len(args) > 1:
                    out["w0"] = float(args[1])
            else:
                layers: list[int] = []
                for item in part.split(","):
                    m = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*", item)
                    if m:
                        layers.extend(range(int(m.group(1)), int(m.group(2)) + 1))
                    else:
                        layers.append(int(item))
                out["layers"] = layers
        except (ValueError, IndexError):
            raise ConfigError(
                f"cannot read layer spec {part!r}; use all, top:K, 3,5,7, 0-11, linear, exp:0.95"
            ) from None
    return out


@dataclass
class SteeringDirection:
    """One term of the steering sum (see the module docstring).

    directions: ConceptDirections, or a path to them (loaded on first use).
    target: class name (may be omitted when the directions have a single class).
    coef: η0 (negative steers away). component: index, or {index: weight} combined and
    re-normalised. layers: "all" or explicit 0-based indices (negatives count from the top);
    top_k: keep the K best-scoring of those. weighting: uniform (w0), linear (w0·ŝ) or
    exponential (w0·ŝ^(1/κ)), ŝ = per-layer scores min-max normalised over the directions' layers.
    schedule: φ(t). gate: p of the Bernoulli gate (1 = always on). rows: "both" CFG halves, or
    "conditional" only.
    """

    directions: ConceptDirections | str | Path
    target: str | None = None
    coef: float = 0.3
    component: int | Mapping[int, float] = 0
    layers: str | Sequence[int] = "all"
    top_k: int | None = None
    weighting: str = "uniform"
    w0: float = 1.0
    kappa: float = 0.95
    schedule: Schedule = field(default_factory=constant)
    gate: float = 1.0
    rows: str = "both"
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.layers, str):
            # a CLI-style spec ("top:8", "0-11", "top:12+exp:0.95") may set the other fields too
            parsed = parse_layers(self.layers)
            self.layers = parsed.pop("layers", "all")
            for key, value in parsed.items():
                setattr(self, key, value)
        else:
            self.layers = [int(x) for x in self.layers]
            if not self.layers:
                raise ConfigError("an explicit layer list must not be empty")
        self.coef = _check_finite("coefficient (coef)", self.coef)
        self.w0 = _check_finite("w0", self.w0)
        self.kappa = _check_finite("kappa", self.kappa)
        self.gate = _check_finite("gate probability", self.gate)
        if not 0.0 <= self.gate <= 1.0:
            raise ConfigError(f"gate probability must be in [0, 1], got {self.gate}")
        if self.kappa <= 0:
            raise ConfigError(f"kappa must be > 0 (paper: 0.95), got {self.kappa}")
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(
                f"unknown weighting {self.weighting!r}; valid: {', '.join(WEIGHTINGS)}"
            )
        if self.rows not in ROWS:
            raise ConfigError(f"rows must be 'both' or 'conditional', got {self.rows!r}")
        if self.top_k is not None and int(self.top_k) < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        if isinstance(self.component, Mapping):
            comp = {int(k): _check_finite("component weight", v) for k, v in self.component.items()}
            if not comp or all(v == 0 for v in comp.values()):
                raise ConfigError("a component combination needs at least one non-zero weight")
            self.component = comp
        elif isinstance(self.component, (list, tuple)):
            self.component = {
                int(k): _check_finite("component weight", v) for k, v in self.component
            }
        else:
            self.component = int(self.component)
        if any(k < 0 for k in self._components()):
            raise ConfigError("component indices must be >= 0")
        self.schedule = Schedule.from_dict(self.schedule)
        self._loaded: ConceptDirections | None = (
            self.directions if isinstance(self.directions, ConceptDirections) else None
        )

    def _components(self) -> dict[int, float]:
        c = self.component
        return dict(c) if isinstance(c, Mapping) else {int(c): 1.0}

    @property
    def source(self) -> str | None:
        return None if isinstance(self.directions, ConceptDirections) else str(self.directions)

    def load(self) -> ConceptDirections:
        if self._loaded is None:
            cd = ConceptDirections.load(self.directions)  # type: ignore[arg-type]
            expect = getattr(self, "_expect_digest", None)
            if expect and directions_digest(cd) != expect:
                raise CompatibilityError(
                    f"directions at {self.directions} changed since this plan was recorded "
                    "(content digest differs)"
                )
            self._loaded = cd
        return self._loaded

    def label(self) -> str:
        if self.name:
            return self.name
        concept = (
            self._loaded.concept if self._loaded is not None else Path(str(self.directions)).name
        )
        return f"{concept}:{self.target}" if self.target is not None else concept

    def to_dict(self, *, strict: bool = True, relative_to: Path | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.name:
            d["name"] = self.name
        src = self.source
        if src is None and strict:
            raise ConfigError(
                "directions given in memory cannot be written to a plan file; save them "
                "(ConceptDirections.save) and pass the path"
            )
        if src is not None:
            if relative_to is not None:
                try:
                    src = os.path.relpath(Path(src).resolve(), relative_to.resolve())
                except ValueError:  # another drive
                    src = str(Path(src).resolve())
            elif not strict:
                src = str(Path(src).resolve())
            d["directions"] = src
        if not strict:
            cd = self._loaded
            if cd is not None:
                d["concept"] = cd.concept
                d["directions_sha256"] = directions_digest(cd)
                if src is None:
                    d["directions"] = None
        if self.target is not None:
            d["target"] = self.target
        d["coef"] = self.coef
        comp = self.component
        d["component"] = [[k, v] for k, v in comp.items()] if isinstance(comp, Mapping) else comp
        d["layers"] = self.layers if isinstance(self.layers, str) else list(self.layers)
        if self.top_k is not None:
            d["top_k"] = int(self.top_k)
        d["weighting"] = self.weighting
        if self.w0 != 1.0:
            d["w0"] = self.w0
        if self.weighting == "exponential":
            d["kappa"] = self.kappa
        d["gate"] = self.gate
        d["rows"] = self.rows
        if strict or self.schedule.kind != "callable":
            d["schedule"] = self.schedule.to_dict()
        else:
            d["schedule"] = {"kind": "callable", "description": self.schedule.describe()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: Path | None = None) -> SteeringDirection:
        d = dict(d)
        d.pop("concept", None)
        digest = d.pop("directions_sha256", None)
        if "class" in d:
            d["target"] = d.pop("class")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown direction field(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}"
            )
        src = d.get("directions")
        if src is None:
            raise ConfigError("each [[direction]] needs directions = '<path to direction files>'")
        if base_dir is not None and not os.path.isabs(str(src)):
            d["directions"] = str(base_dir / str(src))
        if isinstance(d.get("schedule"), Mapping):
            d["schedule"] = Schedule.from_dict(d["schedule"])
        out = cls(**d)
        out._expect_digest = digest
        return out


def directions_digest(cd: ConceptDirections) -> str:
    h = hashlib.sha256()
    h.update(cd.vectors.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(cd.scores.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps([cd.concept, cd.classes, cd.layers]).encode())
    return h.hexdigest()


@dataclass
class SteeringPlan:
    """Directions to add during generation, and the gate seed (None: the generation seed)."""

    directions: list[SteeringDirection] = field(default_factory=list)
    seed: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.directions, SteeringDirection):
            self.directions = [self.directions]
        self.directions = list(self.directions)
        if self.seed is not None:
            self.seed = int(self.seed)

    @property
    def is_empty(self) -> bool:
        """True when nothing would be added (no direction, or every coefficient is 0)."""
        return all(d.coef == 0 for d in self.directions)

    def __add__(self, other: SteeringPlan) -> SteeringPlan:
        return SteeringPlan(self.directions + other.directions, seed=self.seed, name=self.name)

    # ----------------------------------------------------------------- one-liners
    @classmethod
    def single(
        cls,
        directions: ConceptDirections | str | Path,
        target: str | None = None,
        coef: float = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """One direction: ``SteeringPlan.single(dirs, "D", 0.5, weighting="exponential")``."""
        seed = kw.pop("seed", None)
        return cls([SteeringDirection(directions, target=target, coef=coef, **kw)], seed=seed)

    @classmethod
    def multi(
        cls,
        directions: ConceptDirections | str | Path,
        targets: Mapping[str, float] | Sequence[str],
        coef: float = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """Several classes at once: ``multi(dirs, {"C": .3, "E": .3, "G": .3})`` or
        ``multi(dirs, ["C", "E", "G"], coef=0.3)``; other keywords apply to every direction."""
        seed = kw.pop("seed", None)
        items = targets.items() if isinstance(targets, Mapping) else [(t, coef) for t in targets]
        return cls(
            [SteeringDirection(directions, target=t, coef=c, **kw) for t, c in items], seed=seed
        )

    @classmethod
    def crossfade(
        cls,
        directions: ConceptDirections | str | Path,
        a: str,
        b: str,
        coef: float = 0.3,
        *,
        start: float = 0.0,
        duration: float | None = None,
        unit: str = "steps",
        directions_b: ConceptDirections | str | Path | None = None,
        **kw: Any,
    ) -> SteeringPlan:
        """A → B over ``[start, start + duration]`` (SPEC §2.4): A with a linear decay and B with
        the matching linear rise, so the two schedules always sum to 1. ``directions_b`` takes B
        from another concept's directions."""
        seed = kw.pop("seed", None)
        fall = Schedule("linear-decay", start=start, duration=duration, unit=unit)
        rise = Schedule("linear-rise", start=start, duration=duration, unit=unit)
        return cls(
            [
                SteeringDirection(directions, target=a, coef=coef, schedule=fall, **kw),
                SteeringDirection(
                    directions_b or directions, target=b, coef=coef, schedule=rise, **kw
                ),
            ],
            seed=seed,
        )

    # ----------------------------------------------------------------- files
    def to_dict(self, *, strict: bool = True, relative_to: Path | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"format_version": PLAN_FORMAT_VERSION}
        if self.name:
            d["name"] = self.name
        if self.seed is not None:
            d["seed"] = self.seed
        d["direction"] = [
            x.to_dict(strict=strict, relative_to=relative_to) for x in self.directions
        ]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: Path | None = None) -> SteeringPlan:
        d = dict(d)
        version = d.pop("format_version", PLAN_FORMAT_VERSION)
        if int(version) > PLAN_FORMAT_VERSION:
            raise CompatibilityError(
                f"plan format {version} is newer than this musicrfm ({PLAN_FORMAT_VERSION})"
            )
        items = d.pop("direction", d.pop("directions", []))
        if isinstance(items, Mapping):
            items = [items]
        unknown = set(d) - {"seed", "name"}
        if unknown:
            raise ConfigError(
                f"unknown plan field(s) {sorted(unknown)}; valid: seed, name, [[direction]]"
            )
        return cls(
            [SteeringDirection.from_dict(x, base_dir=base_dir) for x in items],
            seed=d.get("seed"),
            name=d.get("name"),
        )

    def save(self, path: str | Path) -> Path:
        """Write a ``.toml`` or ``.json`` plan; direction paths are stored relative to it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict(strict=True, relative_to=path.parent)
        if path.suffix.lower() == ".json":
            text = json.dumps(data, indent=2) + "\n"
        elif path.suffix.lower() == ".toml":
            text = "# musicrfm steering plan\n" + dumps_toml(data)
        else:
            raise ConfigError(f"plan files end in .toml or .json, got {path.name}")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SteeringPlan:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"plan file not found: {path}")
        text = path.read_text()
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                try:
                    import tomllib
                except ModuleNotFoundError:  # Python 3.10
                    import tomli as tomllib  # type: ignore[no-redef]
                data = tomllib.loads(text)
        except (ValueError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read plan {path}: {exc}") from exc
        return cls.from_dict(data, base_dir=path.parent)


# ---------------------------------------------------------------------------- TOML writer
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConfigError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ConfigError(f"cannot write a {type(v).__name__} to TOML")


def _toml_key(k: Any) -> str:
    k = str(k)
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for plan-shaped data (scalars, arrays, tables, arrays of tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_toml_key(k)}"
        out += f"\n[{name}]\n" + dumps_toml(v, prefix=name + ".")
    for k, items in arrays:
        name = f"{prefix}{_toml_key(k)}"
        for item in items:
            out += f"\n[[{name}]]\n" + dumps_toml(item, prefix=name + ".")
    return out


# ============================================================================ compilation
@dataclass
class CompiledPlan:
    """A plan checked against one model, as arrays. m indexes directions, ℓ model layers.

    unit: (M, L, d) float64 unit directions q (zero where a direction has no vector).
    weights: (M, L) w_{ℓ,m}; coefs: (M,) η0; schedules: resolved (in steps);
    gate_p: (M,); conditional_only: (M,) bool; seed: gate seed.
    """

    unit: torch.Tensor
    weights: np.ndarray
    coefs: np.ndarray
    schedules: list[Schedule]
    gate_p: np.ndarray
    conditional_only: np.ndarray
    seed: int
    labels: list[str]
    num_layers: int
    hidden_size: int

    @property
    def num_directions(self) -> int:
        return len(self.labels)

    @property
    def active(self) -> np.ndarray:
        """(M,) directions that can add anything (non-zero η0, some weight, p > 0)."""
        return (self.coefs != 0) & (np.abs(self.weights).sum(1) > 0) & (self.gate_p > 0)

    @property
    def steered_layers(self) -> list[int]:
        act = self.active
        if not act.any():
            return []
        return [int(i) for i in np.flatnonzero(np.abs(self.weights[act]).sum(0) > 0)]

    def schedule_values(self, n: int) -> np.ndarray:
        """(n, M) φ_m(t) for t = 0..n-1."""
        if not self.schedules:
            return np.zeros((n, 0))
        return np.stack([s.values(n) for s in self.schedules], axis=1)

    def gate_values(self, n: int) -> np.ndarray:
        """(n, M) ψ_m(t) ∈ {0, 1}: one Bernoulli(p_m) draw per step, seeded with (seed, m)."""
        cols = []
        for m, p in enumerate(self.gate_p):
            if p >= 1.0:
                cols.append(np.ones(n))
            else:
                rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, m])
                cols.append((rng.random(n) < p).astype(np.float64))
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def factors(self, n: int) -> np.ndarray:
        """(n, M) φ_m(t)·ψ_m(t)."""
        return self.schedule_values(n) * self.gate_values(n)

    def addition(self, step: int, layer: int, *, conditional: bool = True) -> torch.Tensor:
        """The exact vector added to `layer`'s output at `step` (float64), for checking."""
        f = self.factors(step + 1)[step]
        total = torch.zeros(self.hidden_size, dtype=torch.float64)
        for m in range(self.num_directions):
            if not conditional and self.conditional_only[m]:
                continue
            total += self.coefs[m] * self.weights[m, layer] * f[m] * self.unit[m, layer]
        return total


def layer_weights(
    scores: np.ndarray,
    selected: np.ndarray,
    weighting: str,
    *,
    w0: float = 1.0,
    kappa: float = 0.95,
) -> np.ndarray:
    """w_ℓ for one direction: scores (n,), selected (n,) bool. ŝ = min-max over all n scores
    (NaN counts as the worst); uniform w0, linear w0·ŝ, exponential w0·ŝ^(1/κ); 0 if unselected."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if finite.any():
        lo, hi = s[finite].min(), s[finite].max()
        shat = np.where(finite, (s - lo) / (hi - lo) if hi > lo else 1.0, 0.0)
    else:
        shat = np.zeros_like(s)
    if weighting == "uniform":
        w = np.full_like(s, w0)
    elif weighting == "linear":
        w = w0 * shat
    elif weighting == "exponential":
        w = w0 * np.power(shat, 1.0 / kappa)
    else:
        raise ConfigError(f"unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    return np.where(selected, w, 0.0)


def check_compatible(cd: ConceptDirections, view: ModelView, *, strict: bool = True) -> None:
    """Directions must come from this model: hidden size and layers always, and the model id
    too when ``strict`` (`ConceptDirections.check_compatible` does the comparison)."""
    try:
        cd.check_compatible(
            {
                "model_id": view.model_id if strict else None,
                "hidden_size": view.hidden_size,
                "num_layers": view.num_layers,
            }
        )
    except CompatibilityError as exc:
        if strict and "model_id" in str(exc):
            raise CompatibilityError(
                f"{exc} (if they really match, pass strict=False / --allow-model-mismatch)"
            ) from None
        raise


def _direction_arrays(
    d: SteeringDirection, view: ModelView, *, strict: bool
) -> tuple[torch.Tensor, np.ndarray]:
    cd = d.load()
    check_compatible(cd, view, strict=strict)
    if d.target is None:
        if len(cd.classes) != 1:
            raise ConfigError(
                f"directions {cd.concept!r} have classes {', '.join(cd.classes)}: name a target class"
            )
        ci = 0
    else:
        ci = cd.class_index(d.target)
    comps = d._components()
    for k in comps:
        if k >= cd.num_components:
            raise ConfigError(
                f"component {k} out of range: directions {cd.concept!r} keep {cd.num_components}"
            )
    vecs = cd.vectors[:, ci].detach().to("cpu", torch.float64)  # (Lc, k, d)
    v = sum(w * vecs[:, k] for k, w in comps.items())
    norms = v.norm(dim=-1, keepdim=True)
    if (norms == 0).any() or not torch.isfinite(v).all():
        raise ConfigError(f"directions {cd.concept!r}/{d.target} have a zero or non-finite vector")
    q = v / norms
    L = view.num_layers
    avail = np.asarray(cd.layers)
    scores = cd.scores[:, ci].detach().to("cpu", torch.float64).numpy()
    if d.layers == "all":
        cand = np.ones(len(avail), dtype=bool)
    else:
        cand = np.zeros(len(avail), dtype=bool)
        for raw in d.layers:
            i = raw + L if raw < 0 else raw
            if not 0 <= i < L:
                raise ConfigError(f"layer {raw} out of range for a {L}-layer model (0..{L - 1})")
            where = np.flatnonzero(avail == i)
            if not len(where):
                raise ConfigError(
                    f"directions {cd.concept!r} have no vector for layer {i} (they cover {cd.layers})"
                )
            cand[where[0]] = True
    selected = cand.copy()
    if d.top_k is not None:
        k = int(d.top_k)
        if k > int(cand.sum()):
            raise ConfigError(f"top_k={k} but only {int(cand.sum())} layers are available")
        key = np.where(np.isfinite(scores) & cand, scores, -np.inf)
        order = np.argsort(-key, kind="stable")[:k]
        selected = np.zeros_like(cand)
        selected[order] = True
    w_c = layer_weights(scores, selected, d.weighting, w0=d.w0, kappa=d.kappa)
    unit = torch.zeros(L, view.hidden_size, dtype=torch.float64)
    weights = np.zeros(L)
    unit[avail] = q
    weights[avail] = w_c
    return unit, weights


def compile_plan(
    plan: SteeringPlan | SteeringDirection | None,
    model: Any,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    strict: bool = True,
) -> CompiledPlan:
    """Validate a plan against a model and turn it into arrays. Every check happens here, before
    any hook is installed or any step generated."""
    view = resolve_model(model)
    if plan is None:
        plan = SteeringPlan()
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    units, weights, schedules = [], [], []
    for d in plan.directions:
        u, w = _direction_arrays(d, view, strict=strict)
        units.append(u)
        weights.append(w)
        sched = d.schedule.resolve(frame_rate=view.frame_rate, horizon=total_steps)
        sched.values(min(total_steps or 64, 100_000))  # validates callables/values early
        schedules.append(sched)
    L, H = view.num_layers, view.hidden_size
    gate_seed = plan.seed if plan.seed is not None else seed
    return CompiledPlan(
        unit=torch.stack(units) if units else torch.zeros(0, L, H, dtype=torch.float64),
        weights=np.stack(weights) if weights else np.zeros((0, L)),
        coefs=np.asarray([d.coef for d in plan.directions], dtype=np.float64),
        schedules=schedules,
        gate_p=np.asarray([d.gate for d in plan.directions], dtype=np.float64),
        conditional_only=np.asarray([d.rows == "conditional" for d in plan.directions], dtype=bool),
        seed=int(gate_seed),
        labels=[d.label() for d in plan.directions],
        num_layers=L,
        hidden_size=H,
    )


# ============================================================================ hooks
def _past_length(kwargs: Mapping[str, Any], args: tuple) -> int:
    for key in ("cache", "past_key_values", "past_key_value"):
        cache = kwargs.get(key)
        if cache is None:
            continue
        if hasattr(cache, "get_seq_length"):
            return int(cache.get_seq_length())
        if isinstance(cache, (tuple, list)) and cache and isinstance(cache[0], torch.Tensor):
            return int(cache[0].shape[-2])  # legacy (key, value, ...) tuple
    pos = kwargs.get("cache_position")
    if isinstance(pos, torch.Tensor) and pos.numel():
        return int(pos.reshape(-1)[0])
    return 0


class SteeringSession:
    """The hooks of one `apply_plan` block.

    ``steps`` lists the step of the first position of every forward call (negative for a melody
    condition prefix); ``layers`` the steered layers; ``compiled`` the plan as arrays.
    """

    def __init__(
        self, view: ModelView, compiled: CompiledPlan, *, cfg: bool, total_steps: int | None
    ):
        self.view = view
        self.compiled = compiled
        self.cfg = cfg
        self.steps: list[int] = []
        self.prefixed = view.decoder is not None and "Melody" in type(view.decoder).__name__
        self._prefix = 0
        self._handles: list[Any] = []
        act = compiled.active
        self.layers = compiled.steered_layers
        self._slot = {layer: j for j, layer in enumerate(self.layers)}
        device, self.dtype = view.device, view.dtype
        self.device = device
        idx = np.flatnonzero(act)
        self._idx = idx
        Ls, H = len(self.layers), compiled.hidden_size
        # W[m, j] = η0_m · w_{ℓj,m} · q_{ℓj,m}
        W = torch.zeros(len(idx), Ls, H, dtype=torch.float64)
        for a, m in enumerate(idx):
            w = torch.as_tensor(compiled.weights[m, self.layers], dtype=torch.float64)
            W[a] = compiled.coefs[m] * w[:, None] * compiled.unit[m, self.layers]
        self._W = W.reshape(len(idx), Ls * H).to(device=device, dtype=torch.float32)
        cond_only = compiled.conditional_only[idx]
        self.groups = 2 if (cfg and cond_only.any()) else 1
        self._mask = np.ones((self.groups, len(idx)))
        if self.groups == 2:
            self._mask[1] = ~cond_only
        self._table_len = 0
        self._table: torch.Tensor | None = None
        self._ensure_table(max(int(total_steps or 0), 256))
        self._buf = torch.zeros(self.groups, Ls * H, dtype=torch.float32, device=device)
        self._fast_b = -1
        self._adds: list[torch.Tensor | None] = [None] * Ls
        self._fast_adds: list[torch.Tensor] = []

    # ---------------------------------------------------------------- per step
    def _ensure_table(self, n: int) -> None:
        if n <= self._table_len:
            return
        n = max(n, 2 * self._table_len)
        f = self.compiled.factors(n)[:, self._idx]  # (n, M_act)
        table = f[:, None, :] * self._mask[None]  # (n, G, M_act)
        self._table = torch.as_tensor(table, dtype=torch.float32).to(self.device)
        self._table_len = n

    def _row_groups(self, batch: int) -> torch.Tensor:
        if batch % 2:
            raise ModelError(
                f"conditional-only steering expects classifier-free guidance rows (even batch), got {batch}"
            )
        half = batch // 2
        return torch.tensor([0] * half + [1] * half, device=self.device)

    def _prepare_fast(self, batch: int) -> None:
        Ls, H = len(self.layers), self.compiled.hidden_size
        cast = self.dtype != torch.float32
        if self.groups == 1:
            base = self._buf.view(Ls, H)
            self._rows = None
        else:
            self._rows = self._row_groups(batch)
            self._rowbuf = torch.zeros(batch, Ls * H, dtype=torch.float32, device=self.device)
            base = self._rowbuf.view(batch, Ls, H)
        self._cast = torch.zeros_like(base, dtype=self.dtype) if cast else None
        src = self._cast if cast else base
        if self.groups == 1:
            self._fast_adds = [src[j] for j in range(Ls)]
        else:
            self._fast_adds = [src[:, j].unsqueeze(1) for j in range(Ls)]
        self._fast_b = batch

    def _prefix_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """MusicGen-Melody prepends its condition (text + chroma) to the decoder sequence when
        it is given (the first call of a generation): those positions are not music steps."""
        ehs = kwargs.get("encoder_hidden_states")
        if ehs is None and len(args) > 2:
            ehs = args[2]
        if isinstance(ehs, torch.Tensor):
            self._prefix = int(ehs.shape[1])

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs.get("hidden_states")
        batch, seq = int(hidden.shape[0]), int(hidden.shape[1])
        t0 = _past_length(kwargs, args) - self._prefix
        self.steps.append(t0)
        self._ensure_table(t0 + seq)
        assert self._table is not None
        if seq == 1 and t0 >= 0:
            if batch != self._fast_b:
                self._prepare_fast(batch)
            torch.mm(self._table[t0], self._W, out=self._buf)
            if self._rows is not None:
                torch.index_select(self._buf, 0, self._rows, out=self._rowbuf)
            if self._cast is not None:
                src = self._rowbuf if self._rows is not None else self._buf
                self._cast.copy_(src.view_as(self._cast))
            self._adds = self._fast_adds  # type: ignore[assignment]
            return
        # several positions (prefill, or no KV cache): one addition per position; positions
        # before step 0 (a melody condition prefix) get none
        Ls, H = len(self.layers), self.compiled.hidden_size
        c = self._table[max(t0, 0) : max(t0 + seq, 0)]  # (S', G, M)
        if t0 < 0:
            c = torch.cat([c.new_zeros(min(-t0, seq), *c.shape[1:]), c])
        add = torch.einsum("sgm,mx->gsx", c, self._W).reshape(self.groups, seq, Ls, H)
        add = add[self._row_groups(batch)] if self.groups == 2 else add[0]
        add = add.to(self.dtype)  # (B, S, Ls, H) or (S, Ls, H)
        self._adds = [add[..., j, :] for j in range(Ls)]

    def _make_hook(self, j: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> Any:
            add = self._adds[j]
            if add is None:
                return None
            if isinstance(output, torch.Tensor):
                return output + add
            if isinstance(output, tuple):
                return (output[0] + add, *output[1:])
            if isinstance(output, list):
                return [output[0] + add, *output[1:]]
            raise ModelError(f"decoder layer {self.layers[j]} returned a {type(output).__name__}")

        return hook

    # ---------------------------------------------------------------- install / remove
    def install(self) -> None:
        if not self.layers:
            return
        try:
            if self.prefixed:
                self._handles.append(
                    self.view.decoder.register_forward_pre_hook(self._prefix_hook, with_kwargs=True)
                )
            self._handles.append(
                self.view.layers[0].register_forward_pre_hook(self._pre_hook, with_kwargs=True)
            )
            for j, layer in enumerate(self.layers):
                self._handles.append(
                    self.view.layers[layer].register_forward_hook(self._make_hook(j))
                )
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()
        self._adds = [None] * len(self.layers)


def _infer_cfg(view: ModelView) -> bool:
    gc = getattr(view.model, "generation_config", None)
    g = getattr(gc, "guidance_scale", None)
    return g is not None and g > 1


@contextlib.contextmanager
def apply_plan(
    model: Any,
    plan: SteeringPlan | SteeringDirection | None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    cfg: bool | None = None,
    strict: bool = True,
) -> Iterator[SteeringSession]:
    """Steer `model` (a MusicGenAdapter or a transformers MusicGen) inside a ``with`` block.

    seed: gate seed unless the plan sets one. total_steps: the generation length in steps (the
    horizon for schedules without a duration; default 1500). cfg: whether the batch holds
    classifier-free-guidance rows (conditional first half, unconditional second half); default:
    the model's generation_config.guidance_scale > 1. strict: also require the directions'
    model id to match. An empty plan, or one whose coefficients are all 0, installs no hook.
    """
    view = resolve_model(model)
    compiled = compile_plan(plan, view, seed=seed, total_steps=total_steps, strict=strict)
    session = SteeringSession(
        view, compiled, cfg=_infer_cfg(view) if cfg is None else bool(cfg), total_steps=total_steps
    )
    if session.layers:
        log.debug("steering layers %s with %d direction(s)", session.layers, len(session._idx))
    session.install()
    try:
        yield session
    finally:
        session.remove()
