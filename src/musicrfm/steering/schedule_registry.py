"""The registry of schedule kinds: one `ScheduleKind` record per kind, and the paper's kinds.

A kind is everything `musicrfm.steering.schedules.Schedule`, `parse_schedule` and the CLI help
need to know about it: name, aliases, parameters with their defaults, φ(t), its checks and a help
line. Adding a kind is one `register_schedule(ScheduleKind(...))` call (plus its test); the
formulas of the built-in kinds are listed in :mod:`musicrfm.steering.schedules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError

COMMON_FIELDS = ("start", "duration", "unit")  # every kind has these

# φ and checks receive a `musicrfm.steering.schedules.Schedule` (not imported here: it reads
# this registry); ``Any`` below stands for it.
Phi = Callable[[Any, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ScheduleKind:
    """One kind of schedule: everything `Schedule`, `parse_schedule` and the CLI need.

    phi(s, t): φ at the steps ``t`` (float64 array) of ``s``, a resolved schedule of this kind
    (in steps; ``s.horizon`` is T, ``s.<param>`` its parameters). params: the kind's own
    parameters and their defaults (None: unset); time_params: those of them that are times
    (converted with the frame rate like ``start``). check(s): raise ConfigError for impossible
    parameters (finiteness is checked for every kind). spec: the CLI form shown in help (default:
    the name). endless: ``duration=None`` never ends (instead of lasting the whole generation).
    keyframes: the kind takes ``points`` (CLI: ``time=value`` items). saveable: False for kinds
    that cannot be written as a CLI spec or to a file (Python callables).
    """

    name: str
    phi: Phi
    help: str
    aliases: tuple[str, ...] = ()
    params: Mapping[str, float | None] = field(default_factory=dict)
    time_params: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None
    spec: str | None = None
    endless: bool = False
    keyframes: bool = False
    saveable: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))
        clash = set(self.params) & {*COMMON_FIELDS, "points", "fn", "kind"}
        if clash:
            raise ConfigError(f"schedule {self.name!r}: parameter names {sorted(clash)} are taken")
        bad = set(self.time_params) - set(self.params)
        if bad:
            raise ConfigError(f"schedule {self.name!r}: time parameters {sorted(bad)} undeclared")


_KINDS: dict[str, ScheduleKind] = {}
_NAMES: dict[str, str] = {}  # name or alias (lower case) -> name


def register_schedule(kind: ScheduleKind) -> ScheduleKind:
    """Add a kind (its name and aliases must be new); returns it."""
    names = [kind.name.lower(), *(a.lower() for a in kind.aliases)]
    taken = [n for n in names if n in _NAMES]
    if taken:
        raise ConfigError(f"schedule name(s) {taken} already registered")
    _KINDS[kind.name.lower()] = kind
    _NAMES.update(dict.fromkeys(names, kind.name.lower()))
    return kind


def unregister_schedule(name: str) -> None:
    """Remove a kind and its aliases (tests, plugins)."""
    kind = _KINDS.pop(canonical_kind(name))
    for alias, target in list(_NAMES.items()):
        if target == kind.name.lower():
            del _NAMES[alias]


def schedule_kinds(*, saveable: bool | None = None) -> list[ScheduleKind]:
    """The registered kinds in registration order (``saveable=True``: only those with a spec)."""
    return [k for k in _KINDS.values() if saveable is None or k.saveable == saveable]


def canonical_kind(name: str) -> str:
    """The registered name for a name or alias (any case); ConfigError listing the valid ones."""
    key = str(name).strip().lower()
    if key not in _NAMES:
        valid = ", ".join(k.name for k in schedule_kinds(saveable=True))
        raise ConfigError(f"unknown schedule {name!r}; valid: {valid}")
    return _NAMES[key]


def find_kind(name: str) -> ScheduleKind | None:
    """The kind for a name or alias (any case), None when there is none."""
    return _KINDS.get(_NAMES.get(str(name).strip().lower(), ""))


def get_kind(name: str) -> ScheduleKind:
    return _KINDS[canonical_kind(name)]


def check_finite(name: str, value: float | None) -> None:
    """A schedule number: None, or a finite int/float (a string from a plan file is refused)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"schedule {name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"schedule {name} must be a finite number, got {value!r}")


# ---------------------------------------------------------------------- the paper's kinds
def _constant(s: Any, t: np.ndarray) -> np.ndarray:
    u = t - s.start
    return np.where((u >= 0) & (u < s.horizon), s.value, 0.0)


def _linear_rise(s: Any, t: np.ndarray) -> np.ndarray:
    return np.clip((t - s.start) / s.horizon, 0.0, 1.0)


def _linear_decay(s: Any, t: np.ndarray) -> np.ndarray:
    return 1.0 - np.clip((t - s.start) / s.horizon, 0.0, 1.0)


def _exp_decay(s: Any, t: np.ndarray) -> np.ndarray:
    return np.power(s.rate, np.maximum(t - s.start, 0.0))


def _logistic_rise(s: Any, t: np.ndarray) -> np.ndarray:
    T = s.horizon
    z = -((t - s.start) - T / 2.0) / (T * s.steepness)
    return 1.0 / (1.0 + np.exp(np.minimum(z, 700.0)))


def _sine(s: Any, t: np.ndarray) -> np.ndarray:
    period = s.period if s.period is not None else s.horizon
    return 0.5 * (1.0 + np.sin(2.0 * math.pi * (t - s.start) / period + s.phase))


def _keyframes(s: Any, t: np.ndarray) -> np.ndarray:
    xs = np.asarray([p[0] for p in s.points])
    ys = np.asarray([p[1] for p in s.points])
    return np.interp(t, xs, ys)


def _callable(s: Any, t: np.ndarray) -> np.ndarray:
    assert s.fn is not None
    out = np.empty_like(t)
    for i, ti in enumerate(t):
        try:
            out[i] = float(s.fn(int(ti)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"schedule callable failed at step {int(ti)}: {exc}") from exc
    return out


def _check_value(s: Any) -> None:
    if not 0.0 <= s.value <= 1.0:
        raise ConfigError(f"constant schedule value must be in [0, 1], got {s.value}")


def _check_rate(s: Any) -> None:
    if not 0.0 < s.rate <= 1.0:
        raise ConfigError(f"exp-decay rate must be in (0, 1], got {s.rate}")


def _check_steepness(s: Any) -> None:
    if s.steepness <= 0:
        raise ConfigError(f"logistic steepness must be > 0, got {s.steepness}")


def _check_period(s: Any) -> None:
    if s.period is not None and s.period <= 0:
        raise ConfigError(f"sine period must be > 0, got {s.period}")


def _check_points(s: Any) -> None:
    if not s.points:
        raise ConfigError("a keyframes schedule needs at least one (time, value) point")
    for t, v in s.points:
        check_finite("keyframe time", t)
        check_finite("keyframe value", v)
        if t < 0:
            raise ConfigError(f"keyframe times must be >= 0, got {t}")
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"keyframe values must be in [0, 1], got {v}")
    times = [t for t, _ in s.points]
    if any(b <= a for a, b in zip(times, times[1:])):
        raise ConfigError(f"keyframe times must be strictly increasing, got {times}")


def _check_fn(s: Any) -> None:
    if not callable(s.fn):
        raise ConfigError("a 'callable' schedule needs fn=<function of the step>")


for _kind in (
    ScheduleKind(
        "constant", _constant, "value (default 1) from start, for duration (or forever)",
        aliases=("const", "none"), params={"value": 1.0}, check=_check_value, endless=True,
    ),
    ScheduleKind(
        "linear-rise", _linear_rise, "0 -> 1 linearly over the window",
        aliases=("rise", "linear"),
    ),
    ScheduleKind(
        "linear-decay", _linear_decay, "1 -> 0 linearly over the window",
        aliases=("decay",),
    ),
    ScheduleKind(
        "exp-decay", _exp_decay, "rate ** (t - start) (paper: rate 0.998)",
        aliases=("exp", "exponential-decay"), params={"rate": 0.998}, check=_check_rate,
        spec="exp-decay[:rate=0.998]",
    ),
    ScheduleKind(
        "logistic-rise", _logistic_rise, "S-curve 0 -> 1 over the window (paper: steepness 0.133)",
        aliases=("logistic", "sigmoid"), params={"steepness": 0.133}, check=_check_steepness,
    ),
    ScheduleKind(
        "sine", _sine, "(1 + sin(2 pi t / period + phase)) / 2",
        aliases=("sin",), params={"period": None, "phase": 0.0}, time_params=("period",),
        check=_check_period, spec="sine[:period=4s]",
    ),
    ScheduleKind(
        "keyframes", _keyframes, "piecewise linear through time=value points",
        aliases=("piecewise", "keys"), check=_check_points, keyframes=True,
        spec="keyframes:0=0,5s=1,10s=0",
    ),
    ScheduleKind(
        "callable", _callable, "a Python fn(step) -> [0, 1] (cannot be saved)",
        check=_check_fn, saveable=False,
    ),
):  # fmt: skip
    register_schedule(_kind)
del _kind


def help_lines(width: int = 24, indent: int = 0) -> list[str]:
    """``spec  help`` lines for every saveable kind (the CLI's), the help in a column ``width``
    wide after the spec (on the next line when the spec is longer)."""
    pad = " " * indent
    lines = []
    for k in schedule_kinds(saveable=True):
        spec = k.spec or k.name
        if len(spec) < width:
            lines.append(f"{pad}{spec:<{width}}{k.help}")
        else:
            lines += [pad + spec, pad + " " * width + k.help]
    return lines
