"""Time schedules φ(t) for steering: pure functions of the generation step t = 0, 1, 2, ...

A `Schedule` is a small frozen description (kind + parameters) that can be written to TOML/JSON,
evaluated at a step (`schedule(t)`) or over a whole generation at once (`schedule.values(n)`).
Every kind is one `ScheduleKind` record in a registry (:mod:`musicrfm.steering.schedule_registry`:
name, aliases, parameters and their defaults, φ, a help line); `parse_schedule`, `Schedule` and
the CLI help read the registry, so a new kind is one `register_schedule(ScheduleKind(...))` call. The paper's forms (SPEC §2.4,
horizon T in steps, t' = t - start):

=================  =========================================================
``constant``        ``value`` inside ``[start, start + duration)``, 0 outside
``linear-rise``     ``clip(t'/T, 0, 1)``
``linear-decay``    ``1 - clip(t'/T, 0, 1)``
``exp-decay``       ``rate ** max(t', 0)``  (paper: rate λ = 0.998)
``logistic-rise``   ``1 / (1 + exp(-(t' - T/2) / (T * steepness)))``  (paper: 0.133)
``sine``            ``(1 + sin(2π t' / period + phase)) / 2``  (period defaults to T)
``keyframes``       piecewise-linear through ``points`` [(t, value), ...], held outside
``callable``        any ``fn(t) -> float`` (not serialisable)
=================  =========================================================

Times (``start``, ``duration``, a kind's time parameters such as ``period``, keyframe times) are
in steps, or in seconds when ``unit="seconds"``; `resolve` converts them with the model's frame
rate (MusicGen: 50 steps/s). ``duration=None`` means "the whole generation" (the horizon given to
`resolve`, else 1500 steps, the paper's T). Step t is the decoder position: t = 0 is the
BOS/prefill step, and with the KV cache each later forward call feeds exactly one new position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.steering.schedule_registry import (
    COMMON_FIELDS,
    ScheduleKind,
    check_finite,
    find_kind,
    get_kind,
    schedule_kinds,
)

PAPER_HORIZON = 1500
UNITS = ("steps", "seconds")


# ---------------------------------------------------------------------- Schedule
@dataclass(frozen=True, init=False)
class Schedule:
    """φ(t) ∈ [0, 1] as a function of the generation step. See the module docstring.

    ``Schedule(kind, start=..., duration=..., unit=..., <the kind's parameters>...)``; the kind's
    parameters are read as attributes (``Schedule("exp-decay").rate``).
    """

    kind: str
    start: float
    duration: float | None
    unit: str
    params: tuple[tuple[str, float | None], ...]
    points: tuple[tuple[float, float], ...]
    fn: Callable[[int], float] | None = field(compare=False, repr=False)

    def __init__(
        self,
        kind: str = "constant",
        *,
        start: float = 0.0,
        duration: float | None = None,
        unit: str = "steps",
        points: Sequence[tuple[float, float]] = (),
        fn: Callable[[int], float] | None = None,
        params: Mapping[str, float | None] | Sequence[tuple[str, float | None]] = (),
        **options: float | None,
    ) -> None:
        spec = get_kind(kind)
        given = {**dict(params), **options}
        unknown = set(given) - set(spec.params)
        if unknown:
            valid = ", ".join([*COMMON_FIELDS, *spec.params]) + (
                ", points" if spec.keyframes else ""
            )
            raise ConfigError(
                f"unknown option(s) {sorted(unknown)} for schedule {spec.name!r}; valid: {valid}"
            )
        values = tuple((k, given.get(k, d)) for k, d in spec.params.items())
        for name, value in (
            ("kind", spec.name),
            ("start", start),
            ("duration", duration),
            ("unit", unit),
            ("params", values),
            ("points", _points(points)),
            ("fn", fn),
        ):
            object.__setattr__(self, name, value)
        self._validate(spec)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and name != "params":
            for key, value in self.__dict__.get("params", ()):
                if key == name:
                    return value
        raise AttributeError(f"a {self.__dict__.get('kind')!r} schedule has no {name!r}")

    def _validate(self, spec: ScheduleKind) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"schedule unit must be 'steps' or 'seconds', got {self.unit!r}")
        for name, value in (("start", self.start), ("duration", self.duration), *self.params):
            check_finite(name, value)
        if self.start < 0:
            raise ConfigError(f"schedule start must be >= 0, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"schedule duration must be > 0, got {self.duration}")
        if self.points and not spec.keyframes:
            raise ConfigError(f"schedule {spec.name!r} takes no points")
        if spec.check is not None:
            spec.check(self)

    @property
    def spec(self) -> ScheduleKind:
        """This schedule's registered kind."""
        return get_kind(self.kind)

    @property
    def horizon(self) -> float:
        """T in steps (inf when there is no duration); meaningful after `resolve`."""
        return math.inf if self.duration is None else float(self.duration)

    def replace(self, **changes: Any) -> Schedule:
        """A copy with some fields or parameters changed."""
        kw: dict[str, Any] = {
            "start": self.start,
            "duration": self.duration,
            "unit": self.unit,
            "points": self.points,
            "fn": self.fn,
            "params": dict(self.params),
        }
        for key, value in changes.items():
            if key in kw and key != "params":
                kw[key] = value
            else:
                kw["params"][key] = value
        return Schedule(changes.get("kind", self.kind), **kw)

    # ------------------------------------------------------------------ resolution
    def resolve(self, *, frame_rate: float | None = None, horizon: int | None = None) -> Schedule:
        """The same schedule in steps, with ``duration`` filled in (horizon, else 1500)."""
        scale = 1.0
        if self.unit == "seconds":
            if frame_rate is None or not frame_rate > 0:
                raise ConfigError("a schedule in seconds needs the model's frame rate")
            scale = float(frame_rate)
        spec = self.spec
        duration = self.duration * scale if self.duration is not None else None
        if duration is None and not spec.endless:
            duration = float(horizon) if horizon else float(PAPER_HORIZON)
        times = {
            k: v * scale if v is not None else None for k, v in self.params if k in spec.time_params
        }
        return self.replace(
            unit="steps",
            start=self.start * scale,
            duration=duration,
            points=tuple((t * scale, v) for t, v in self.points),
            **times,
        )

    # ------------------------------------------------------------------ evaluation
    def values(self, n: int, *, frame_rate: float | None = None, horizon: int | None = None):
        """φ(0), ..., φ(n-1) as a float64 array (validated: finite)."""
        s = self.resolve(frame_rate=frame_rate, horizon=horizon or n)
        t = np.arange(int(n), dtype=np.float64)
        out = s._eval(t)
        bad = ~np.isfinite(out) | (out < 0.0) | (out > 1.0)
        if bad.any():
            step = int(np.argmax(bad))
            raise ConfigError(
                f"schedule {s.describe()} gives {out[step]!r} at step {step}; values must be in [0, 1]"
            )
        return out

    def __call__(self, t: int) -> float:
        """φ(t) for one step (durations in seconds need `resolve` first)."""
        if self.unit != "steps":
            raise ConfigError(
                "call resolve(frame_rate=...) before evaluating a schedule in seconds"
            )
        s = self if self.duration is not None or self.spec.endless else self.resolve()
        return float(s._eval(np.asarray([float(t)]))[0])

    def _eval(self, t: np.ndarray) -> np.ndarray:
        return self.spec.phi(self, t)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """Only the fields that matter for this kind (TOML/JSON friendly)."""
        spec = self.spec
        if not spec.saveable:
            raise ConfigError(
                "a schedule given as a Python callable cannot be saved; use keyframes instead"
            )
        d: dict[str, Any] = {"kind": self.kind}
        if self.start:
            d["start"] = self.start
        if self.duration is not None:
            d["duration"] = self.duration
        if self.unit != "steps":
            d["unit"] = self.unit
        for name, v in self.params:
            if v is not None and v != spec.params[name]:
                d[name] = v
        if spec.keyframes:
            d["points"] = [[t, v] for t, v in self.points]
        return d

    def describe(self) -> str:
        try:
            return ", ".join(f"{k}={v}" for k, v in self.to_dict().items())
        except ConfigError:
            return f"callable {getattr(self.fn, '__name__', 'fn')}"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str | Schedule | Callable[[int], float]) -> Schedule:
        if isinstance(d, Schedule):
            return d
        if isinstance(d, str):
            return parse_schedule(d)
        if callable(d):
            return cls(kind="callable", fn=d)
        if not isinstance(d, dict):
            raise ConfigError(
                f"a schedule must be a table/dict or a string, got {type(d).__name__}"
            )
        kw = dict(d)
        spec = get_kind(kw.pop("kind", "constant"))
        known = {*COMMON_FIELDS, *spec.params, *(("points",) if spec.keyframes else ())}
        unknown = set(kw) - known
        if unknown:
            raise ConfigError(
                f"unknown schedule field(s) {sorted(unknown)} for {spec.name!r}; "
                f"valid: {', '.join(sorted(known))}"
            )
        units = set()
        for k in ("start", "duration", *spec.time_params):
            if isinstance(kw.get(k), str):
                t, unit = parse_time(kw[k])
                kw[k] = t
                if unit == "seconds":
                    kw["unit"] = "seconds"
        if "points" in kw:
            # keyframe times may be written as the CLI takes them: "0.5s" (seconds) or steps
            pts = []
            for point in _point_list(kw["points"]):
                t, v = point
                if isinstance(t, str):
                    t, unit = parse_time(t)
                    if t != 0:
                        units.add(unit)
                pts.append((t, v))
            if units == {"seconds", "steps"} or (
                units == {"seconds"} and kw.get("unit") == "steps"
            ):
                raise ConfigError(f"keyframe points {kw['points']!r} mix steps and seconds")
            if units == {"seconds"}:
                kw["unit"] = "seconds"
            kw["points"] = tuple(pts)
        return cls(spec.name, **kw)


def _point_list(points: Any) -> list[tuple[Any, Any]]:
    """Keyframe points as written: a list of [time, value] pairs, or a ConfigError."""
    if isinstance(points, (str, bytes, Mapping)) or not hasattr(points, "__iter__"):
        raise ConfigError(f"keyframe points must be a list of [time, value] pairs, got {points!r}")
    out = []
    for p in points:
        if isinstance(p, (str, bytes, Mapping)) or not hasattr(p, "__len__") or len(p) != 2:
            raise ConfigError(
                f'keyframe point {p!r} must be a [time, value] pair, e.g. [0, 0] or ["2s", 1]'
            )
        out.append((p[0], p[1]))
    return out


def _points(points: Any) -> tuple[tuple[float, float], ...]:
    """Keyframe points as (time, value) floats; anything else is a ConfigError."""
    out = []
    for t, v in _point_list(points):
        check_finite("keyframe time", t)
        check_finite("keyframe value", v)
        out.append((float(t), float(v)))
    return tuple(out)


# ---------------------------------------------------------------------- constructors
def constant(
    value: float = 1.0, *, start: float = 0.0, duration: float | None = None, unit: str = "steps"
) -> Schedule:
    return Schedule("constant", start=start, duration=duration, unit=unit, value=value)


def linear_rise(
    *, start: float = 0.0, duration: float | None = None, unit: str = "steps"
) -> Schedule:
    return Schedule("linear-rise", start=start, duration=duration, unit=unit)


def linear_decay(
    *, start: float = 0.0, duration: float | None = None, unit: str = "steps"
) -> Schedule:
    return Schedule("linear-decay", start=start, duration=duration, unit=unit)


def exp_decay(rate: float = 0.998, *, start: float = 0.0, unit: str = "steps") -> Schedule:
    return Schedule("exp-decay", start=start, unit=unit, rate=rate)


def logistic_rise(
    *,
    start: float = 0.0,
    duration: float | None = None,
    steepness: float = 0.133,
    unit: str = "steps",
) -> Schedule:
    return Schedule("logistic-rise", start=start, duration=duration, unit=unit, steepness=steepness)


def sine(
    *, period: float | None = None, phase: float = 0.0, start: float = 0.0, unit: str = "steps"
) -> Schedule:
    return Schedule("sine", start=start, period=period, phase=phase, unit=unit)


def keyframes(points: Sequence[tuple[float, float]], *, unit: str = "steps") -> Schedule:
    return Schedule("keyframes", points=tuple(points), unit=unit)


def from_callable(fn: Callable[[int], float]) -> Schedule:
    return Schedule("callable", fn=fn)


# ---------------------------------------------------------------------- parsing
_TIME = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|sec|steps?)?\s*$")


def parse_time(text: str | float | int) -> tuple[float, str]:
    """'2.5s' -> (2.5, 'seconds'); '120' or 120 -> (120.0, 'steps')."""
    if isinstance(text, (int, float)):
        return float(text), "steps"
    m = _TIME.match(str(text))
    if not m:
        raise ConfigError(f"cannot read time {text!r}; use steps (e.g. 120) or seconds (e.g. 2.5s)")
    unit = "seconds" if m.group(2) in {"s", "sec"} else "steps"
    return float(m.group(1)), unit


def parse_schedule(spec: str) -> Schedule:
    """Parse a CLI spec, e.g. ``linear-rise``, ``linear-rise:start=2s,duration=6s``,
    ``exp-decay:rate=0.995``, ``sine:period=4s``, ``keyframes:0=0,5s=1,10s=0``.

    The options are ``start``, ``duration`` and the kind's parameters (`ScheduleKind.params`);
    all times of one spec must use the same unit (steps or seconds).
    """
    name, _, rest = str(spec).partition(":")
    kind = find_kind(name)
    if kind is None or not kind.saveable:
        valid = ", ".join(k.name for k in schedule_kinds(saveable=True))
        raise ConfigError(f"unknown schedule {spec!r}; valid: {valid}")
    times = {"start", "duration", *kind.time_params}
    units: set[str] = set()
    kw: dict[str, Any] = {}
    points: list[tuple[float, float]] = []
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, val = item.partition("=")
        if not eq:
            raise ConfigError(f"schedule option {item!r} must look like name=value")
        key = key.strip()
        if kind.keyframes:
            t, unit = parse_time(key)
            if t != 0:  # 0 is 0 in any unit
                units.add(unit)
            points.append((t, _float(val, "keyframe value")))
        elif key in times:
            t, unit = parse_time(val)
            if t != 0:
                units.add(unit)
            kw[key] = t
        elif key in kind.params:
            kw[key] = _float(val, key)
        else:
            valid = ", ".join(sorted(times | set(kind.params)))
            raise ConfigError(f"unknown option {key!r} for schedule {kind.name!r}; valid: {valid}")
    if len(units) > 1:
        raise ConfigError(f"schedule {spec!r} mixes steps and seconds; use one unit")
    if units == {"seconds"}:
        kw["unit"] = "seconds"
    if kind.keyframes:
        kw["points"] = tuple(points)
    return Schedule(kind.name, **kw)


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
