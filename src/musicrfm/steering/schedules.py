"""Time schedules φ(t) for steering: pure functions of the generation step t = 0, 1, 2, ...

A `Schedule` is a small frozen description (kind + parameters) that can be written to TOML/JSON,
evaluated at a step (`schedule(t)`) or over a whole generation at once (`schedule.values(n)`).
The paper's forms (SPEC §2.4, horizon T in steps, t' = t - start):

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

Times (``start``, ``duration``, ``period``, keyframe times) are in steps, or in seconds when
``unit="seconds"``; `resolve` converts them with the model's frame rate (MusicGen: 50 steps/s).
``duration=None`` means "the whole generation" (the horizon given to `resolve`, else 1500 steps,
the paper's T). Step t is the decoder position: t = 0 is the BOS/prefill step, and with the
KV cache each later forward call feeds exactly one new position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError

PAPER_HORIZON = 1500
KINDS = (
    "constant",
    "linear-rise",
    "linear-decay",
    "exp-decay",
    "logistic-rise",
    "sine",
    "keyframes",
    "callable",
)
_ALIASES = {
    "const": "constant",
    "none": "constant",
    "rise": "linear-rise",
    "linear": "linear-rise",
    "decay": "linear-decay",
    "exp": "exp-decay",
    "exponential-decay": "exp-decay",
    "logistic": "logistic-rise",
    "sigmoid": "logistic-rise",
    "sin": "sine",
    "piecewise": "keyframes",
    "keys": "keyframes",
}
UNITS = ("steps", "seconds")


def _finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(float(value)):
        raise ConfigError(f"schedule {name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Schedule:
    """φ(t) ∈ [0, 1] as a function of the generation step. See the module docstring."""

    kind: str = "constant"
    start: float = 0.0
    duration: float | None = None
    unit: str = "steps"
    value: float = 1.0
    rate: float = 0.998
    steepness: float = 0.133
    period: float | None = None
    phase: float = 0.0
    points: tuple[tuple[float, float], ...] = ()
    fn: Callable[[int], float] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        kind = _ALIASES.get(str(self.kind).lower(), str(self.kind).lower())
        object.__setattr__(self, "kind", kind)
        if kind not in KINDS:
            raise ConfigError(f"unknown schedule {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.unit not in UNITS:
            raise ConfigError(f"schedule unit must be 'steps' or 'seconds', got {self.unit!r}")
        for name in ("start", "duration", "value", "rate", "steepness", "period", "phase"):
            _finite(name, getattr(self, name))
        if self.start < 0:
            raise ConfigError(f"schedule start must be >= 0, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"schedule duration must be > 0, got {self.duration}")
        if not 0.0 <= self.value <= 1.0:
            raise ConfigError(f"constant schedule value must be in [0, 1], got {self.value}")
        if kind == "exp-decay" and not 0.0 < self.rate <= 1.0:
            raise ConfigError(f"exp-decay rate must be in (0, 1], got {self.rate}")
        if kind == "logistic-rise" and self.steepness <= 0:
            raise ConfigError(f"logistic steepness must be > 0, got {self.steepness}")
        if self.period is not None and self.period <= 0:
            raise ConfigError(f"sine period must be > 0, got {self.period}")
        pts = tuple((float(t), float(v)) for t, v in self.points)
        object.__setattr__(self, "points", pts)
        if kind == "keyframes":
            if not pts:
                raise ConfigError("a keyframes schedule needs at least one (time, value) point")
            for t, v in pts:
                _finite("keyframe time", t)
                _finite("keyframe value", v)
                if t < 0:
                    raise ConfigError(f"keyframe times must be >= 0, got {t}")
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"keyframe values must be in [0, 1], got {v}")
            times = [t for t, _ in pts]
            if any(b <= a for a, b in zip(times, times[1:])):
                raise ConfigError(f"keyframe times must be strictly increasing, got {times}")
        if kind == "callable" and not callable(self.fn):
            raise ConfigError("a 'callable' schedule needs fn=<function of the step>")

    # ------------------------------------------------------------------ resolution
    def resolve(self, *, frame_rate: float | None = None, horizon: int | None = None) -> Schedule:
        """The same schedule in steps, with ``duration`` filled in (horizon, else 1500)."""
        scale = 1.0
        if self.unit == "seconds":
            if frame_rate is None or not frame_rate > 0:
                raise ConfigError("a schedule in seconds needs the model's frame rate")
            scale = float(frame_rate)
        duration = self.duration * scale if self.duration is not None else None
        if duration is None and self.kind != "constant":  # a constant with no duration never ends
            duration = float(horizon) if horizon else float(PAPER_HORIZON)
        return replace(
            self,
            unit="steps",
            start=self.start * scale,
            duration=duration,
            period=self.period * scale if self.period is not None else None,
            points=tuple((t * scale, v) for t, v in self.points),
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
        s = self if self.duration is not None or self.kind == "constant" else self.resolve()
        return float(s._eval(np.asarray([float(t)]))[0])

    def _eval(self, t: np.ndarray) -> np.ndarray:
        T = math.inf if self.duration is None else float(self.duration)  # resolved
        u = t - self.start
        k = self.kind
        if k == "constant":
            return np.where((u >= 0) & (u < T), self.value, 0.0)
        if k == "linear-rise":
            return np.clip(u / T, 0.0, 1.0)
        if k == "linear-decay":
            return 1.0 - np.clip(u / T, 0.0, 1.0)
        if k == "exp-decay":
            return np.power(self.rate, np.maximum(u, 0.0))
        if k == "logistic-rise":
            z = -(u - T / 2.0) / (T * self.steepness)
            return 1.0 / (1.0 + np.exp(np.minimum(z, 700.0)))
        if k == "sine":
            period = self.period if self.period is not None else T
            return 0.5 * (1.0 + np.sin(2.0 * math.pi * u / period + self.phase))
        if k == "keyframes":
            xs = np.asarray([p[0] for p in self.points])
            ys = np.asarray([p[1] for p in self.points])
            return np.interp(t, xs, ys)
        # callable
        assert self.fn is not None
        out = np.empty_like(t)
        for i, ti in enumerate(t):
            try:
                out[i] = float(self.fn(int(ti)))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"schedule callable failed at step {int(ti)}: {exc}") from exc
        return out

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """Only the fields that matter for this kind (TOML/JSON friendly)."""
        if self.kind == "callable":
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
        extra = {
            "constant": ("value",),
            "exp-decay": ("rate",),
            "logistic-rise": ("steepness",),
            "sine": ("period", "phase"),
        }.get(self.kind, ())
        for name in extra:
            v = getattr(self, name)
            if v is not None and v != getattr(Schedule, name):
                d[name] = v
        if self.kind == "keyframes":
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
        known = {f for f in cls.__dataclass_fields__ if f != "fn"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"unknown schedule field(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}"
            )
        kw = dict(d)
        for k in ("start", "duration", "period"):
            if isinstance(kw.get(k), str):
                t, unit = parse_time(kw[k])
                kw[k] = t
                if unit == "seconds":
                    kw["unit"] = "seconds"
        if "points" in kw:
            kw["points"] = tuple(tuple(p) for p in kw["points"])
        return cls(**kw)


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

    All times of one spec must use the same unit (steps or seconds).
    """
    kind, _, rest = str(spec).partition(":")
    kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if kind not in KINDS or kind == "callable":
        raise ConfigError(
            f"unknown schedule {spec!r}; valid: {', '.join(k for k in KINDS if k != 'callable')}"
        )
    units: set[str] = set()
    kw: dict[str, Any] = {}
    points: list[tuple[float, float]] = []
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, val = item.partition("=")
        if not eq:
            raise ConfigError(f"schedule option {item!r} must look like name=value")
        key = key.strip()
        if kind == "keyframes":
            t, unit = parse_time(key)
            if t != 0:  # 0 is 0 in any unit
                units.add(unit)
            points.append((t, _float(val, "keyframe value")))
        elif key in {"start", "duration", "period"}:
            t, unit = parse_time(val)
            if t != 0:
                units.add(unit)
            kw[key] = t
        elif key in {"value", "rate", "steepness", "phase"}:
            kw[key] = _float(val, key)
        else:
            raise ConfigError(f"unknown option {key!r} for schedule {kind!r}")
    if len(units) > 1:
        raise ConfigError(f"schedule {spec!r} mixes steps and seconds; use one unit")
    if units == {"seconds"}:
        kw["unit"] = "seconds"
    if kind == "keyframes":
        kw["points"] = tuple(points)
    return Schedule(kind, **kw)


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
