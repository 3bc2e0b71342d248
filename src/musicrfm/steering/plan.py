"""Steering plans: what to add during generation, as data that loads from and saves to TOML/JSON.

(Over 400 lines on purpose: `SteeringDirection`'s fields, their checks and their file form are
one thing, and the layer-spec parser the sweeps share sits beside the field it fills.)

Kept apart from the hooks (:mod:`musicrfm.steering.hooks`) and from compilation
(:mod:`musicrfm.steering.compile`) so that a plan can be built, checked and written without
touching a model. Every number of a direction (coef, w0, kappa, gate, component weights) is
checked here, once, when the `SteeringDirection` is built. TOML is written by
:mod:`musicrfm.steering.toml_writer`.

A plan file holds ``format_version``, optional ``seed`` and ``name``, any number of
``[[direction]]`` tables (the fields of `SteeringDirection`), and optionally a ``[sequence]``
table (or several, as ``[[sequence]]``): a note sequence on a beat grid that loads as one
keyframed direction per note (:mod:`musicrfm.steering.sequence`), after the ``[[direction]]``
ones::

    [sequence]
    notes = "C E | G"        # spaces between notes, '|' between bars (or "C E G": a bar each)
    bpm = 120                # or a linear ramp "90..130" (the grid only; tempo is not steered)
    beats_per_note = 4       # or bars_per_note = 1 (default: one bar); not with '|'
    beats_per_bar = 4        # default 4
    fade_beats = 0.25        # crossfade at each boundary, centred on it (default 0.25)
    directions = "dirs/notes"   # relative to the plan file
    coef = 0.5               # (or "0.1x": relative) and any other direction field (layers, ...)
                             # except target and schedule, which the sequence sets

``coef`` is η0, in the units of the residual stream (the paper's absolute form), or relative to
the activations the directions were trained on: ``"0.1x"`` is 0.1 × their median norm
(``ConceptDirections.activation_norm``), resolved when the direction is built (its files are
read then). Plans save the form they were given; sidecars also record the absolute ``eta0``.

A plan is always saved in its compiled form (``[[direction]]`` tables with keyframes);
``musicrfm.steering.sequence.sequence_table`` writes the ``[sequence]`` form.

A ``[progression]`` table (or several, ``[[progression]]``) is a chord progression, a note
sequence and/or a tempo curve on one grid (:mod:`musicrfm.steering.progressions`), loaded after
the ``[sequence]`` ones::

    [progression]
    chords = "C G | Am F"    # or notes = "C E G" (then beats_per_note / bars_per_note)
    bpm = 100                # or "90..130": also steered when tempo directions are given
    bars_per_chord = 1       # default one bar; not with '|'
    parts = ["root", "quality"]   # default both
    tempo_reference = 110    # steer the tempo relative to this (default: a ramp's middle)
    directions = ["dirs/chords", "dirs/chord-roots", "dirs/tempo"]   # recognised by content
    coef = "0.1x"            # and any other direction field except target and schedule
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.files import read_config, write_text_atomic
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.schedules import Schedule, constant
from musicrfm.steering.toml_writer import dumps_toml

WEIGHTINGS = ("uniform", "linear", "exponential")
# Which classifier-free-guidance rows a direction is added to, as (conditional, unconditional)
# gains. "contrast" subtracts it from the unconditional rows only: with guidance g the sampled
# logits u + g(c - u) then move toward the concept by about (g - 1)·η0 while the
# prompt-conditioned rows stay exactly as the prompt made them.
ROW_GAINS: dict[str, tuple[float, float]] = {
    "both": (1.0, 1.0),
    "conditional": (1.0, 0.0),
    "unconditional": (0.0, 1.0),
    "contrast": (0.0, -1.0),
}
ROWS = tuple(ROW_GAINS)
PLAN_FORMAT_VERSION = 1


def _check_finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


_RELATIVE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*[x×]\s*$")


# `--directions hf:OWNER/NAME` (or `directions = "hf:..."` in a plan): a direction bundle shared
# with `ConceptDirections.save_pretrained(..., push_to_hub=True)`, read through the hub cache.
HUB_PREFIX = "hf:"


def is_hub_source(source: Any) -> bool:
    """Whether a directions source names a hub bundle (``hf:owner/name``), not a path."""
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def relative_coef(value: Any) -> float | None:
    """The multiplier of a relative η0 (``"0.1x"`` or ``"0.1×"`` -> 0.1), None for an absolute
    one; a string that is neither a number nor ``<number>x`` is a ConfigError."""
    if not isinstance(value, str):
        return None
    m = _RELATIVE.match(value)
    if m:
        return float(m.group(1))
    try:
        float(value)
    except ValueError:
        raise ConfigError(
            f"coef must be a number (η0) or relative like '0.1x' (0.1 × the median activation "
            f"norm), got {value!r}"
        ) from None
    return None


def _check_int(name: str, value: Any) -> int:
    """An integer field of a plan (TOML gives strings and floats too): a ConfigError otherwise."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def parse_layers(spec: str | int | Sequence[int] | None) -> dict[str, Any]:
    """Layer selection/weighting from a CLI spec → SteeringDirection fields.

    ``all``; ``top:8`` (the 8 best layers, uniform); ``3,5,7`` or ``0-11`` (explicit, negatives
    allowed); ``uniform``; ``linear[:w0]``; ``exp[:kappa[:w0]]`` (e.g. ``exp:0.95``). Parts can be
    joined with ``+``: ``top:12+exp:0.95``.
    """
    out: dict[str, Any] = {}
    if spec is None:
        return out
    if isinstance(spec, int) and not isinstance(spec, bool):
        return {"layers": [int(spec)]}
    if not isinstance(spec, str):
        try:
            items = list(spec)
        except TypeError:
            raise ConfigError(
                f"layers must be a spec like 'all', 'top:8' or '0-11', or a list of layer "
                f"numbers; got {spec!r}"
            ) from None
        return {"layers": [_check_int("a layer", x) for x in items]}
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
                    if m and int(m.group(1)) > int(m.group(2)):
                        raise ConfigError(
                            f"layer range {item.strip()!r} is empty (it counts down); write "
                            f"{m.group(2)}-{m.group(1)}"
                        )
                    if m:
                        layers.extend(range(int(m.group(1)), int(m.group(2)) + 1))
                    else:
                        layers.append(int(item))
                out["layers"] = layers
        except ConfigError:
            raise
        except (ValueError, IndexError):
            raise ConfigError(
                f"cannot read layer spec {part!r}; use all, top:K, 3,5,7, 0-11, linear, exp:0.95"
            ) from None
    return out


def _component(value: Any) -> int | dict[int, float]:
    """A direction's ``component``: an eigenvector index, or {index: weight} (a table, or a
    list of [index, weight] pairs as plan files store it)."""
    what = "component must be an eigenvector index (0, 1, ...) or a mix like [[0, 1], [1, 0.5]]"
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            raise ConfigError(f"{what}; got {value!r}")
        pairs = [tuple(p) for p in value]
    else:
        try:
            return _check_int("component", value)
        except ConfigError:
            raise ConfigError(f"{what}; got {value!r}") from None
    try:
        comp = {_check_int("component", k): _check_finite("component weight", v) for k, v in pairs}
    except ConfigError as exc:
        raise ConfigError(f"{what}; got {value!r} ({exc})") from None
    if isinstance(value, Mapping) and (not comp or all(v == 0 for v in comp.values())):
        raise ConfigError("a component combination needs at least one non-zero weight")
    return comp


@dataclass
class SteeringDirection:
    """One term of the steering sum (see the module docstring).

    directions: ConceptDirections, or a path to them (loaded on first use; at once for a
    relative coef). target: class name (may be omitted when the directions have a single class).
    coef: η0 (negative steers away), or relative, "0.1x" (see the module docstring); after
    construction always the absolute η0 (`relative` keeps the multiplier).
    component: index, or {index: weight} combined and re-normalised. layers: "all" or explicit
    0-based indices (negatives count from the top);
    top_k: keep the K best-scoring of those. weighting: uniform (w0), linear (w0·ŝ) or
    exponential (w0·ŝ^(1/κ)), ŝ = per-layer scores min-max normalised over the directions' layers.
    schedule: φ(t). gate: p of the Bernoulli gate (1 = always on). rows: the guidance rows
    it is added to (`ROW_GAINS`): "both" (default), "conditional", "unconditional", or
    "contrast" (subtracted from the unconditional rows only).
    """

    directions: ConceptDirections | str | Path
    target: str | None = None
    coef: float | str = 0.3
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
            self.layers = parse_layers(self.layers)["layers"]
        if not isinstance(self.layers, str) and not self.layers:
            raise ConfigError("an explicit layer list must not be empty")
        for name in ("weighting", "rows"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a name, got {getattr(self, name)!r}")
        if self.target is not None and not isinstance(self.target, str):
            if isinstance(self.target, bool) or not isinstance(self.target, (int, float)):
                raise ConfigError(f"target must be a class name, got {self.target!r}")
            self.target = str(self.target)
        self._relative = relative_coef(self.coef)
        if self._relative is not None:
            self._relative = _check_finite("coefficient (coef)", self._relative)
        else:
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
            raise ConfigError(f"rows must be one of {', '.join(ROWS)}; got {self.rows!r}")
        if self.top_k is not None:
            self.top_k = _check_int("top_k", self.top_k)
            if self.top_k < 1:
                raise ConfigError(f"top_k must be >= 1, got {self.top_k}")
        self.component = _component(self.component)
        if any(k < 0 for k in self.components()):
            raise ConfigError("component indices must be >= 0")
        self.schedule = Schedule.from_dict(self.schedule)
        self._loaded: ConceptDirections | None = (
            self.directions if isinstance(self.directions, ConceptDirections) else None
        )
        if self._relative is not None:
            self.coef = self._relative * self._norm_of(self.load())

    @property
    def relative(self) -> float | None:
        """The multiplier when coef was given relative (``"0.1x"``), else None."""
        return self._relative

    def _norm_of(self, cd: ConceptDirections) -> float:
        norm = cd.activation_norm()
        if norm is None:
            raise ConfigError(
                f"coef {self._relative:g}x is relative to the activation norm the directions "
                f"{self.source or cd.concept!r} were trained on, but they do not record it "
                "(trained before it was recorded, or not by `musicrfm train`): train them again, "
                "or give an absolute coef"
            )
        return norm

    def components(self) -> dict[int, float]:
        """{eigenvector index: weight} (a single index has weight 1)."""
        c = self.component
        return dict(c) if isinstance(c, Mapping) else {int(c): 1.0}

    @property
    def source(self) -> str | None:
        return None if isinstance(self.directions, ConceptDirections) else str(self.directions)

    def load(self) -> ConceptDirections:
        if self._loaded is None:
            source = str(self.directions)
            if source.startswith(HUB_PREFIX):  # a shared bundle: through the hub cache
                cd = ConceptDirections.from_pretrained(source[len(HUB_PREFIX) :])
            else:
                cd = ConceptDirections.load(self.directions)  # type: ignore[arg-type]
            self._check_digest(cd)
            self._loaded = cd
        return self._loaded

    def _check_digest(self, cd: ConceptDirections) -> None:
        expect = getattr(self, "_expect_digest", None)
        if expect and directions_digest(cd) != expect:
            raise CompatibilityError(
                f"directions at {self.directions} changed since this plan was recorded "
                "(content digest differs)"
            )

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
        if self._relative is None:
            d["coef"] = self.coef
        else:
            d["coef"] = f"{self._relative:g}x"
            if not strict:
                d["eta0"] = self.coef  # the absolute η0 it resolved to
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
        d.pop("eta0", None)  # a sidecar's record of a relative coef; resolved again from it
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
        if not isinstance(src, (str, os.PathLike, ConceptDirections)):
            raise ConfigError(f"directions must be a path to direction files, got {src!r}")
        if base_dir is not None and not os.path.isabs(str(src)) and not is_hub_source(src):
            d["directions"] = str(base_dir / str(src))
        if isinstance(d.get("schedule"), Mapping):
            d["schedule"] = Schedule.from_dict(d["schedule"])
        out = cls(**d)
        out._expect_digest = digest
        if out._loaded is not None and out.source is not None:  # read early for a relative coef
            out._check_digest(out._loaded)
        return out


def check_codebooks(codebooks: Any) -> list[int]:
    """A plan's ``codebooks``: distinct codebook indices >= 0, sorted (one line if not)."""
    if isinstance(codebooks, (str, bytes)) or not isinstance(codebooks, Sequence):
        raise ConfigError(
            f"codebooks must be a list of codebook indices, e.g. [0, 1]; got {codebooks!r}"
        )
    out = [_check_int("a codebook index", k) for k in codebooks]
    if not out or any(k < 0 for k in out) or len(set(out)) != len(out):
        raise ConfigError(
            f"codebooks must be distinct indices 0, 1, ... (at least one), got {list(codebooks)}"
        )
    return sorted(out)


def directions_digest(cd: ConceptDirections) -> str:
    h = hashlib.sha256()
    h.update(cd.vectors.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(cd.scores.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(json.dumps([cd.concept, cd.classes, cd.layers]).encode())
    return h.hexdigest()


@dataclass
class SteeringPlan:
    """Directions to add during generation, and the gate seed (None: the generation seed).

    codebooks: the codebooks whose predictions the steering reaches (None: all). The others are
    predicted by an unsteered copy of each decoder call, in the same batch (twice the decoder's
    work): on a codec whose codebooks separate the concept from the timbre, the timbre then
    follows the prompt (docs/results/progression-controls-testbed-beat/codebook-split/).
    """

    directions: list[SteeringDirection] = field(default_factory=list)
    seed: int | None = None
    name: str | None = None
    codebooks: list[int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.directions, SteeringDirection):
            self.directions = [self.directions]
        self.directions = list(self.directions)
        if self.seed is not None:
            self.seed = _check_int("the plan's seed", self.seed)
        if self.codebooks is not None:
            self.codebooks = check_codebooks(self.codebooks)

    @property
    def is_empty(self) -> bool:
        """True when nothing would be added (no direction, or every coefficient is 0)."""
        return all(d.coef == 0 for d in self.directions)

    def __add__(self, other: SteeringPlan) -> SteeringPlan:
        return SteeringPlan(
            self.directions + other.directions,
            seed=self.seed,
            name=self.name,
            codebooks=self.codebooks,
        )

    # ----------------------------------------------------------------- one-liners
    @classmethod
    def single(
        cls,
        directions: ConceptDirections | str | Path,
        target: str | None = None,
        coef: float | str = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """One direction: ``SteeringPlan.single(dirs, "D", 0.5, weighting="exponential")``."""
        seed, codebooks = kw.pop("seed", None), kw.pop("codebooks", None)
        return cls(
            [SteeringDirection(directions, target=target, coef=coef, **kw)],
            seed=seed,
            codebooks=codebooks,
        )

    @classmethod
    def multi(
        cls,
        directions: ConceptDirections | str | Path,
        targets: Mapping[str, float] | Sequence[str],
        coef: float | str = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """Several classes at once: ``multi(dirs, {"C": .3, "E": .3, "G": .3})`` or
        ``multi(dirs, ["C", "E", "G"], coef=0.3)``; other keywords apply to every direction."""
        seed, codebooks = kw.pop("seed", None), kw.pop("codebooks", None)
        items = targets.items() if isinstance(targets, Mapping) else [(t, coef) for t in targets]
        return cls(
            [SteeringDirection(directions, target=t, coef=c, **kw) for t, c in items],
            seed=seed,
            codebooks=codebooks,
        )

    @classmethod
    def crossfade(
        cls,
        directions: ConceptDirections | str | Path,
        a: str,
        b: str,
        coef: float | str = 0.3,
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

    @classmethod
    def from_sequence(
        cls,
        sequence: Any,
        directions: ConceptDirections | str | Path,
        coef: float | str = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """A note sequence (a `musicrfm.steering.sequence.NoteSequence` or its text, e.g.
        ``"C E | G"``) as one keyframed direction per note: ``from_sequence("C E G", dirs, 0.5,
        layers="exp:0.95")``. ``seed`` and ``name`` go to the plan, the other keywords to every
        direction."""
        from musicrfm.steering.sequence import NoteSequence, note_directions

        seed, name = kw.pop("seed", None), kw.pop("name", None)
        if not isinstance(sequence, NoteSequence):
            sequence = NoteSequence(sequence)
        known = set(SteeringDirection.__dataclass_fields__)
        unknown = set(kw) - known
        if unknown:
            raise ConfigError(
                f"unknown direction field(s) {sorted(unknown)} for a note sequence; valid: "
                f"{', '.join(sorted(known - {'directions', 'target', 'schedule', 'name'}))}"
            )
        items = note_directions(sequence, directions, coef, **kw)
        return cls([SteeringDirection(**x) for x in items], seed=seed, name=name)

    @classmethod
    def from_progression(
        cls,
        progression: Any,
        directions: Any,
        coef: float | str = 0.3,
        **kw: Any,
    ) -> SteeringPlan:
        """`compile_progression` as a classmethod."""
        return compile_progression(progression, directions, coef, **kw)

    # ----------------------------------------------------------------- files
    def to_dict(self, *, strict: bool = True, relative_to: Path | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"format_version": PLAN_FORMAT_VERSION}
        if self.name:
            d["name"] = self.name
        if self.seed is not None:
            d["seed"] = self.seed
        if self.codebooks is not None:
            d["codebooks"] = list(self.codebooks)
        d["direction"] = [
            x.to_dict(strict=strict, relative_to=relative_to) for x in self.directions
        ]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: Path | None = None) -> SteeringPlan:
        d = dict(d)
        version = _check_int("format_version", d.pop("format_version", PLAN_FORMAT_VERSION))
        if version > PLAN_FORMAT_VERSION:
            raise CompatibilityError(
                f"plan format {version} is newer than this musicrfm ({PLAN_FORMAT_VERSION})"
            )
        items = d.pop("direction", d.pop("directions", []))
        if isinstance(items, Mapping):
            items = [items]
        sequences = d.pop("sequence", [])
        if isinstance(sequences, Mapping):
            sequences = [sequences]
        for name, tables in (("[[direction]]", items), ("[[sequence]]", sequences)):
            if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
                raise ConfigError(
                    f"{name} must be tables of fields (e.g. [[direction]] then directions = ..."
                    f"), got {tables!r}"
                )
        unknown = set(d) - {"seed", "name", "codebooks", "progression"}
        if unknown:
            raise ConfigError(
                f"unknown plan field(s) {sorted(unknown)}; valid: seed, name, codebooks, "
                "[[direction]], [sequence], [progression]"
            )
        directions = [SteeringDirection.from_dict(x, base_dir=base_dir) for x in items]
        if sequences:
            from musicrfm.steering.sequence import split_table

            for table in sequences:
                seq, fields = split_table(table, base_dir=base_dir)
                src, coef = fields.pop("directions"), fields.pop("coef", 0.3)
                directions += cls.from_sequence(seq, src, coef, **fields).directions
        progressions = d.pop("progression", [])
        if isinstance(progressions, Mapping):
            progressions = [progressions]
        if not isinstance(progressions, list) or not all(
            isinstance(t, Mapping) for t in progressions
        ):
            raise ConfigError(f"[progression] must be tables of fields, got {progressions!r}")
        for table in progressions:
            from musicrfm.steering.progressions import split_progression_table

            prog, sources, fields = split_progression_table(table, base_dir=base_dir)
            coef = fields.pop("coef", 0.3)
            directions += compile_progression(prog, sources, coef, **fields).directions
        name = d.get("name")
        return cls(
            directions,
            seed=d.get("seed"),
            name=None if name is None else str(name),
            codebooks=d.get("codebooks"),
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
        return write_text_atomic(path, text)

    @classmethod
    def load(cls, path: str | Path) -> SteeringPlan:
        """A plan file; one with nothing to steer (no [[direction]] or [sequence]) is refused,
        since generating with it would silently be unsteered."""
        path = Path(path)
        plan = cls.from_dict(read_config(path, what="plan"), base_dir=path.parent)
        if not plan.directions:
            raise ConfigError(
                f"plan {path} has no [[direction]] or [sequence] table: it would steer nothing "
                "(leave out --plan for unsteered clips)"
            )
        return plan


def compile_progression(
    progression: Any,
    directions: Any,
    coef: float | str = 0.3,
    **kw: Any,
) -> SteeringPlan:
    """A chord progression, note sequence or tempo curve as one keyframed plan: chord roots, then
    qualities (or notes), then the tempo (:mod:`musicrfm.steering.progressions`).

    progression: a `Progression`, a `ChordProgression`, or chord text (``"C G Am F"``, 120 BPM,
    a bar each). directions: the direction files (or `ConceptDirections`) to take each part
    from, recognised by what they hold; a part without them is an error naming what to train.
    ``seed``, ``name`` and ``codebooks`` go to the plan, ``parts`` picks the chord parts, the
    other keywords
    (layers, gate, rows, ...) to every direction. E.g. ``compile_progression(make_progression(
    chords="C G Am F", bpm=100), ["dirs/chords", "dirs/chord-roots"], "0.1x")``.
    """
    from musicrfm.steering.progressions import ChordProgression, Progression, parse_parts

    seed, name = kw.pop("seed", None), kw.pop("name", None)
    parts, codebooks = kw.pop("parts", None), kw.pop("codebooks", None)
    if isinstance(progression, str):
        progression = ChordProgression(progression)
    if isinstance(progression, ChordProgression):
        progression = Progression(chords=progression, parts=parse_parts(parts))
    elif parts is not None:  # a copy: the caller's progression keeps its own parts
        progression = replace(progression, parts=parse_parts(parts))
    if not isinstance(progression, Progression):
        kind = type(progression).__name__
        raise ConfigError(f"compile_progression takes a Progression or chord text, got {kind}")
    known = set(SteeringDirection.__dataclass_fields__)
    unknown = set(kw) - known
    if unknown:
        raise ConfigError(
            f"unknown direction field(s) {sorted(unknown)} for a progression; valid: "
            f"{', '.join(sorted(known - {'directions', 'target', 'schedule', 'name'}))}"
        )
    items = progression.directions_for(directions, coef, **kw)
    return SteeringPlan(
        [SteeringDirection(**x) for x in items], seed=seed, name=name, codebooks=codebooks
    )
