"""What the page asks for, checked, and the steering plan it compiles to.

A `Request` is the page's controls as values: prompt, sampling, seed, up to `MAX_KNOBS` knobs
(bundle, class, signed strength in activation-norm units), one note sequence or chord
progression with its own strength, the BPM played as onset pulses (`BeatLine`, with onset
directions) at its own strength, and the layer/gate/rows/schedule settings every knob shares.
`Request.plan` builds the same `SteeringPlan` the CLI builds from the same settings
(`SteeringPlan.multi`-style directions, `SteeringPlan.from_sequence` for notes: the compiler of ``generate --notes``;
`musicrfm.steering.progressions` for chords and beat pulses: the compiler of ``generate
--chords`` and of ``generate --bpm`` with onset directions), and
says which plan directions each live knob drives. Bad input is one `ConfigError` line the page
shows; nothing here raises anything else for a user's mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.studio.bundles import Bundle

MAX_KNOBS = 3
SAFE_STRENGTH = 0.15  # README: adherence holds to ~0.1x norm on the bundled model, drops past 0.15x
MAX_STRENGTH = 1.0
MAX_SECONDS = 30.0
MAX_PROMPT = 500
SEQUENCE_KNOB = "sequence"
BEAT_KNOB = "beat"


def number(name: str, value: Any, *, low: float, high: float) -> float:
    """A finite number within [low, high], or a ConfigError saying which control is wrong."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if not low <= v <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {v:g}")
    return v


def strength(name: str, value: Any) -> float:
    return number(name, value, low=-MAX_STRENGTH, high=MAX_STRENGTH)


@dataclass(frozen=True)
class Knob:
    """One live strength: ``strength`` × the bundle's activation scale toward ``target``."""

    bundle: str
    target: str
    strength: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", strength(f"strength of {self.target}", self.strength))


@dataclass(frozen=True)
class NoteLine:
    """A note sequence ("C E | G") on a BPM grid, steered with one live strength."""

    notes: str
    bundle: str
    strength: float
    bpm: str = "120"
    beats_per_note: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", strength("sequence strength", self.strength))

    def sequence(self) -> Any:
        from musicrfm.steering.sequence import NoteSequence

        tempo = parse_bpm(self.bpm)
        return NoteSequence(self.notes, bpm=tempo, beats_per_note=self.beats_per_note)


@dataclass(frozen=True)
class ChordLine:
    """A chord progression ("C G Am F", a bar each, or ``bars_per_chord``) on a BPM grid,
    compiled as ``generate --chords`` compiles it, steered with the sequence knob's strength."""

    chords: str
    strength: float
    bpm: str = "120"
    bars_per_chord: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", strength("progression strength", self.strength))

    def directions(
        self, bundles: Mapping[str, Bundle], common: Mapping[str, Any]
    ) -> tuple[list[Any], list[float]]:
        """(SteeringDirection per chord part and class, η0 per unit strength of each): the
        chord parts the loaded chord-root / chord-quality bundles cover."""
        from musicrfm.steering.plan import SteeringDirection
        from musicrfm.steering.progressions import PARTS, make_progression, missing_role

        by_role = chord_bundles(bundles)
        if not by_role:
            raise missing_role("root", f"chords {self.chords!r}")
        parts = [p for p in PARTS if p in by_role]
        prog = make_progression(chords=self.chords, bpm=str(self.bpm).strip() or "120",
                                bars_per_chord=self.bars_per_chord, parts=parts)  # fmt: skip
        by_path = {str(b.path): b for b in by_role.values()}
        out, per_unit = [], []
        for kw in prog.directions_for([str(by_role[p].path) for p in parts], 1.0, **common):
            b = by_path[str(kw["directions"])]
            out.append(SteeringDirection(**{**kw, "coef": b.coef(self.strength, kw["target"])}))
            per_unit.append(b.coef(1.0, kw["target"]))
        return out, per_unit


@dataclass(frozen=True)
class BeatLine:
    """The BPM played: onset directions pulsed on its beats over the clip, compiled as ``generate
    --bpm B --directions <onsets>`` compiles them, steered with its own live strength."""

    bpm: str = "120"
    strength: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", strength("beat strength", self.strength))

    def directions(
        self, bundles: Mapping[str, Bundle], common: Mapping[str, Any], seconds: float
    ) -> tuple[list[Any], list[float]]:
        """(SteeringDirection of the pulses, η0 per unit strength): the loaded onset bundle's
        ``onset`` class keyframed on the beats of the BPM over ``seconds``."""
        from musicrfm.steering.plan import SteeringDirection
        from musicrfm.steering.progressions import make_progression, missing_role

        b = bundles_by_role(bundles).get("beat")
        if b is None:
            raise missing_role(
                "beat", f"playing the BPM {str(self.bpm).strip() or '120'} (onset pulses)"
            )
        tempo = parse_bpm(self.bpm)
        prog = make_progression(bpm=tempo, steer_beat=True, seconds=seconds)
        out, per_unit = [], []
        for kw in prog.directions_for([str(b.path)], 1.0, **common):
            out.append(SteeringDirection(**{**kw, "coef": b.coef(self.strength, kw["target"])}))
            per_unit.append(b.coef(1.0, kw["target"]))
        return out, per_unit


def parse_bpm(bpm: Any) -> Any:
    """The page's BPM box (empty: 120) as a `Tempo`; one line for anything else."""
    from musicrfm.steering.sequence import BPM_FORMS, Tempo

    try:
        return Tempo.parse(str(bpm).strip() or "120")
    except ConfigError:
        raise ConfigError(f"cannot read BPM {bpm!r}; use {BPM_FORMS}") from None


def bundles_by_role(bundles: Mapping[str, Bundle]) -> dict[str, Bundle]:
    """{role: the first loaded bundle of it} (`direction_role`: root, quality, notes, tempo,
    beat); bundles of no role are left out."""
    from musicrfm.steering.progressions import direction_role

    out: dict[str, Bundle] = {}
    for b in bundles.values():
        try:
            out.setdefault(direction_role(b.directions), b)
        except ConfigError:
            continue
    return out


def beat_bundle(bundles: Mapping[str, Bundle]) -> Bundle | None:
    """The first loaded bundle of onset directions, or None."""
    return bundles_by_role(bundles).get("beat")


def chord_bundles(bundles: Mapping[str, Bundle]) -> dict[str, Bundle]:
    """{"root" | "quality": bundle} of the loaded bundles that steer a chord part."""
    return {r: b for r, b in bundles_by_role(bundles).items() if r in ("root", "quality")}


@dataclass(frozen=True)
class Request:
    """One clip's settings (see the module docstring)."""

    prompt: str
    seconds: float = 4.0
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    guidance_scale: float = 3.0
    knobs: tuple[Knob, ...] = ()
    notes: NoteLine | None = None
    chords: ChordLine | None = None
    beat: BeatLine | None = None
    layers: str = "all"
    gate: float = 1.0
    rows: str = "both"
    schedule: str = "constant"
    slots: tuple[str, ...] = field(default=(), compare=False)  # knob names, in order

    def __post_init__(self) -> None:
        prompt = str(self.prompt or "").strip()
        if not prompt:
            raise ConfigError("write a prompt first (e.g. 'acoustic piano, middle register')")
        if len(prompt) > MAX_PROMPT:
            raise ConfigError(f"the prompt is {len(prompt)} characters; at most {MAX_PROMPT}")
        object.__setattr__(self, "prompt", prompt)
        object.__setattr__(
            self, "seconds", number("seconds", self.seconds, low=0.5, high=MAX_SECONDS)
        )
        seed = number("seed", self.seed, low=0, high=2**31 - 1)
        if seed != int(seed):
            raise ConfigError(f"seed must be a whole number, got {self.seed!r}")
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "top_k", int(number("top-k", self.top_k, low=0, high=100_000)))
        object.__setattr__(self, "gate", number("gate", self.gate, low=0.0, high=1.0))
        if len(self.knobs) > MAX_KNOBS:
            raise ConfigError(f"at most {MAX_KNOBS} knobs")
        if self.notes is not None and self.chords is not None:
            raise ConfigError("play a note sequence or a chord progression, not both")
        self.options()  # checks temperature, top-p, guidance

    def options(self) -> Any:
        from musicrfm.steering.generation import GenerationOptions

        return GenerationOptions(
            seconds=self.seconds,
            guidance_scale=number("guidance scale", self.guidance_scale, low=0, high=20),
            temperature=number("temperature", self.temperature, low=0, high=10),
            top_k=self.top_k,
            top_p=number("top-p", self.top_p, low=0, high=1),
        )

    @property
    def steered(self) -> bool:
        lines = (self.notes, self.chords, self.beat)
        return bool(self.knobs) or any(x is not None for x in lines)

    def unsteered(self) -> Request:
        return replace(self, knobs=(), notes=None, chords=None, beat=None, slots=())

    def with_strength(self, value: float) -> Request:
        """The same request with the first knob (or the sequence) at ``value``."""
        if self.knobs:
            first = replace(self.knobs[0], strength=value)
            return replace(self, knobs=(first, *self.knobs[1:]))
        if self.notes is not None:
            return replace(self, notes=replace(self.notes, strength=value))
        if self.chords is not None:
            return replace(self, chords=replace(self.chords, strength=value))
        if self.beat is not None:
            return replace(self, beat=replace(self.beat, strength=value))
        raise ConfigError(
            "the strength grid needs a knob with a class, a note sequence, chords or the beat"
        )

    # ------------------------------------------------------------ the plan
    def plan(self, bundles: Mapping[str, Bundle]) -> tuple[Any, dict[str, list[tuple[int, float]]]]:
        """(SteeringPlan or None, {knob name: [(direction index, η0 per unit strength)]}):
        the plan, and how each live knob's strength maps to its directions' coefficients."""
        from musicrfm.steering.plan import SteeringDirection, SteeringPlan, parse_layers
        from musicrfm.steering.schedules import parse_schedule

        if not self.steered:
            return None, {}
        common = dict(gate=self.gate, rows=self.rows, **parse_layers(self.layers or "all"))
        schedule = parse_schedule(self.schedule or "constant")
        directions: list[Any] = []
        live: dict[str, list[tuple[int, float]]] = {}
        names = self.slots or tuple(f"knob{i}" for i in range(len(self.knobs)))
        for name, knob in zip(names, self.knobs):
            b = bundle_named(bundles, knob.bundle)
            target = b.classes[b.directions.class_index(knob.target)]
            live[name] = [(len(directions), b.coef(1.0, knob.target))]
            directions.append(
                SteeringDirection(
                    str(b.path),
                    target=target,
                    coef=b.coef(knob.strength, knob.target),
                    schedule=schedule,
                    **common,
                )
            )
        if self.notes is not None:
            b = bundle_named(bundles, self.notes.bundle)
            seq = SteeringPlan.from_sequence(
                self.notes.sequence(), str(b.path), b.coef(self.notes.strength, None), **common
            )
            live[SEQUENCE_KNOB] = [
                (len(directions) + i, b.scale) for i in range(len(seq.directions))
            ]
            directions += seq.directions
        if self.chords is not None:
            chord_dirs, per_unit = self.chords.directions(bundles, common)
            live[SEQUENCE_KNOB] = [(len(directions) + i, u) for i, u in enumerate(per_unit)]
            directions += chord_dirs
        if self.beat is not None:
            beat_dirs, per_unit = self.beat.directions(bundles, common, self.seconds)
            live[BEAT_KNOB] = [(len(directions) + i, u) for i, u in enumerate(per_unit)]
            directions += beat_dirs
        return SteeringPlan(directions), live


def bundle_named(bundles: Mapping[str, Bundle], name: str) -> Bundle:
    if name not in bundles:
        raise ConfigError(f"unknown direction bundle {name!r}; loaded: {', '.join(bundles)}")
    return bundles[name]


def knob_choices(bundles: Mapping[str, Bundle]) -> list[str]:
    """The page's knob targets: ``bundle:class`` for every class of every bundle."""
    return [f"{b.name}:{c}" for b in bundles.values() for c in b.classes]


def parse_choice(choice: str | None, bundles: Mapping[str, Bundle]) -> tuple[str, str] | None:
    """``bundle:class`` -> (bundle, class); empty -> None; anything else a ConfigError."""
    if not choice or choice == "—":
        return None
    name, sep, target = str(choice).rpartition(":")
    if not sep:
        raise ConfigError(f"pick a knob target as bundle:class, got {choice!r}")
    b = bundle_named(bundles, name)
    return b.name, b.classes[b.directions.class_index(target)]


def keyframe_spec(text: str, unit: str, bpm: str, beats_per_bar: float = 4.0) -> str:
    """The schedule editor's keyframes ``time=value, ...`` (seconds or bars) as a schedule spec
    ``keyframes:0=0,1.5s=1`` (bars are converted at the BPM field's tempo)."""
    from musicrfm.steering.schedules import parse_time

    text = str(text or "").strip()
    if not text:
        return "constant"
    scale = 1.0
    if unit == "bars":
        tempo = number("BPM (for bars)", (str(bpm).strip() or "120"), low=1, high=1000)
        scale = beats_per_bar * 60.0 / tempo
    items = []
    for item in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        key, eq, val = item.partition("=")
        if not eq:
            raise ConfigError(f"keyframe {item!r} must look like time=value, e.g. 1.5=0.8")
        t, _ = parse_time(key.strip().rstrip("s") if unit == "seconds" else key.strip())
        items.append(f"{t * scale:g}s={number('keyframe value', val, low=0, high=1):g}")
    return "keyframes:" + ",".join(items)
