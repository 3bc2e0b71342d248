"""Schedules φ(t): the paper's formulas, windows in steps and seconds, and impossible parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicrfm.errors import ConfigError
from musicrfm.steering.schedule_registry import (
    ScheduleKind,
    canonical_kind,
    register_schedule,
    schedule_kinds,
    unregister_schedule,
)
from musicrfm.steering.schedules import (
    PAPER_HORIZON,
    Schedule,
    constant,
    exp_decay,
    from_callable,
    keyframes,
    linear_decay,
    linear_rise,
    logistic_rise,
    parse_schedule,
    parse_time,
    sine,
)

T = 100


def test_paper_formulas() -> None:
    t = np.arange(3 * T)
    np.testing.assert_allclose(linear_rise(duration=T).values(3 * T), np.clip(t / T, 0, 1))
    np.testing.assert_allclose(linear_decay(duration=T).values(3 * T), 1 - np.clip(t / T, 0, 1))
    np.testing.assert_allclose(exp_decay(0.998).values(3 * T), 0.998**t)
    np.testing.assert_allclose(
        logistic_rise(duration=T).values(3 * T), 1 / (1 + np.exp(-(t - T / 2) / (T * 0.133)))
    )
    np.testing.assert_allclose(
        sine(period=T).values(3 * T), 0.5 * (1 + np.sin(2 * math.pi * t / T)), atol=1e-12
    )
    assert np.all(constant().values(3 * T) == 1.0)


def test_default_horizon_is_the_generation_or_the_papers() -> None:
    assert linear_rise().values(50)[-1] == pytest.approx(49 / 50)  # horizon = the n asked for
    assert linear_rise().resolve().duration == PAPER_HORIZON
    assert linear_rise()(750) == pytest.approx(0.5)  # paper's T = 1500


def test_start_offsets_and_windows() -> None:
    v = linear_rise(start=10, duration=20).values(40)
    assert v[10] == 0 and v[20] == pytest.approx(0.5) and v[30] == 1 and v[39] == 1
    w = constant(0.5, start=3, duration=4).values(10)
    assert w.tolist() == [0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0, 0]
    assert exp_decay(0.5, start=2).values(5).tolist() == [1, 1, 1, 0.5, 0.25]


def test_seconds_are_converted_with_the_frame_rate() -> None:
    s = linear_rise(start=1.0, duration=2.0, unit="seconds")
    v = s.values(200, frame_rate=50)
    assert v[50] == 0 and v[100] == pytest.approx(0.5) and v[150] == 1
    with pytest.raises(ConfigError, match="frame rate"):
        s.values(10)
    k = keyframes([(0, 0), (1, 1), (2, 0)], unit="seconds").values(101, frame_rate=50)
    assert k[25] == pytest.approx(0.5) and k[50] == 1 and k[100] == 0


def test_keyframes_interpolate_and_hold() -> None:
    v = keyframes([(10, 0.2), (20, 1.0), (30, 0.0)]).values(40)
    assert v[0] == pytest.approx(0.2) and v[15] == pytest.approx(0.6)
    assert v[25] == pytest.approx(0.5) and v[39] == 0


def test_callable_schedules_are_checked() -> None:
    s = from_callable(lambda t: 1.0 if t % 2 else 0.0)
    assert s.values(4).tolist() == [0, 1, 0, 1]
    with pytest.raises(ConfigError, match="in \\[0, 1\\]"):
        from_callable(lambda t: float("nan")).values(3)
    with pytest.raises(ConfigError, match="in \\[0, 1\\]"):
        from_callable(lambda t: 2.0).values(3)
    with pytest.raises(ConfigError, match="cannot be saved"):
        s.to_dict()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "exp-decay", "rate": 0.0},
        {"kind": "exp-decay", "rate": 1.5},
        {"kind": "linear-rise", "duration": 0},
        {"kind": "linear-rise", "duration": -5},
        {"kind": "linear-rise", "start": -1},
        {"kind": "linear-rise", "start": float("nan")},
        {"kind": "logistic-rise", "steepness": 0},
        {"kind": "sine", "period": -1},
        {"kind": "constant", "value": 1.5},
        {"kind": "keyframes", "points": ()},
        {"kind": "keyframes", "points": ((5, 0), (2, 1))},
        {"kind": "keyframes", "points": ((0, 0), (2, 3))},
        {"kind": "wobble"},
        {"kind": "linear-rise", "unit": "beats"},
        {"kind": "callable"},
    ],
)
def test_impossible_parameters_raise(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        Schedule(**kwargs)


def test_parse_cli_specs() -> None:
    assert parse_schedule("linear-rise") == Schedule("linear-rise")
    s = parse_schedule("linear-rise:start=2s,duration=6s")
    assert (s.kind, s.start, s.duration, s.unit) == ("linear-rise", 2.0, 6.0, "seconds")
    assert parse_schedule("exp:rate=0.995").rate == 0.995
    assert parse_schedule("keyframes:0=0,5s=1,10s=0").points == ((0, 0), (5, 1), (10, 0))
    assert parse_time("2.5s") == (2.5, "seconds") and parse_time("120") == (120.0, "steps")
    for bad in ("nope", "linear-rise:start", "linear-rise:start=2s,duration=10", "sine:foo=1"):
        with pytest.raises(ConfigError):
            parse_schedule(bad)


@pytest.mark.parametrize(
    "s",
    [
        constant(0.5, start=3, duration=4),
        linear_rise(start=1, duration=2, unit="seconds"),
        exp_decay(0.99),
        logistic_rise(steepness=0.2),
        sine(period=30, phase=1.0),
        keyframes([(0, 0), (5, 1)]),
    ],
)
def test_dict_round_trip(s: Schedule) -> None:
    assert Schedule.from_dict(s.to_dict()) == s
    assert Schedule.from_dict({"kind": "linear-rise", "duration": "2s"}).unit == "seconds"
    with pytest.raises(ConfigError, match="unknown schedule field"):
        Schedule.from_dict({"kind": "sine", "speed": 2})


# ------------------------------------------------------------------------------ the registry
@pytest.fixture
def square():
    """A new kind, registered for one test: one record, nothing else to touch."""

    def phi(s: Schedule, t: np.ndarray) -> np.ndarray:
        period = s.period if s.period is not None else s.horizon
        return np.where(((t - s.start) % period) < s.duty * period, 1.0, 0.0)

    def check(s: Schedule) -> None:
        if not 0.0 < s.duty < 1.0:
            raise ConfigError(f"square duty must be in (0, 1), got {s.duty}")

    kind = register_schedule(
        ScheduleKind(
            "square", phi, "on for duty of every period", aliases=("pulse",),
            params={"period": None, "duty": 0.5}, time_params=("period",), check=check,
            spec="square[:period=1s,duty=0.5]",
        )
    )  # fmt: skip
    yield kind
    unregister_schedule("square")


def test_a_registered_kind_is_accepted_everywhere(square) -> None:
    from musicrfm.commands.generate import epilog

    s = parse_schedule("pulse:period=4,duty=0.25")
    assert s == Schedule("square", period=4, duty=0.25) and s.kind == "square"
    assert s.values(8).tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    assert Schedule("square").duty == 0.5  # defaults from the record
    secs = parse_schedule("square:period=1s")
    assert secs.unit == "seconds" and secs.resolve(frame_rate=50).period == 50
    assert Schedule.from_dict(s.to_dict()) == s
    assert Schedule.from_dict({"kind": "square", "period": "2s"}).unit == "seconds"
    with pytest.raises(ConfigError, match="duty"):
        parse_schedule("square:duty=1.5")
    with pytest.raises(ConfigError, match="valid: .*duty"):
        parse_schedule("square:rate=0.5")
    with pytest.raises(ConfigError, match="square"):  # the valid kinds listed include it
        parse_schedule("wobble")
    assert "square[:period=1s,duty=0.5]" in epilog() and "on for duty" in epilog()
    assert "square" in [k.name for k in schedule_kinds()]


def test_registry_rejects_clashes_and_unknown_options(square) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_schedule(ScheduleKind("square", square.phi, "again"))
    with pytest.raises(ConfigError, match="already registered"):
        register_schedule(ScheduleKind("wave", square.phi, "x", aliases=("sin",)))
    with pytest.raises(ConfigError, match="taken"):
        ScheduleKind("bad", square.phi, "x", params={"start": 0.0})
    with pytest.raises(ConfigError, match="unknown option"):
        Schedule("linear-rise", rate=0.5)  # a parameter of another kind
    assert canonical_kind("SIGMOID") == "logistic-rise"


def test_unregistered_kinds_are_gone() -> None:
    assert "square" not in [k.name for k in schedule_kinds()]
    with pytest.raises(ConfigError, match="unknown schedule"):
        parse_schedule("pulse")
