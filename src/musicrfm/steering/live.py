"""Live values a running generation reads at every decoder step (the studio's knobs).

A `LiveControl` holds the coefficient η0 of each direction of a compiled plan as it may change
*during* a generation, a stop flag, and optional callbacks. The steering hooks
(:mod:`musicrfm.steering.hooks`) read it at the start of every forward call, so a coefficient
set from another thread (a slider in the browser) takes effect from the next decoder step. The
step at which each change took effect is recorded (`LiveControl.events`), so that a clip whose
knobs moved while it played can be generated again exactly: `LiveControl.replay(events)` applies
the same changes at the same steps.

A control is attached to whatever generates inside ``with live_control(control):`` —
`apply_plan` picks it up — so `musicrfm.steering.generate` and its sidecars need no new argument
and the studio runs the very code path of ``musicrfm generate``. Without a control, nothing of
this module runs and generation is unchanged to the sample.

The new coefficient of direction m replaces η0_m in the sum of SPEC §2.4 exactly as a plan
compiled with that coefficient would (the hook rebuilds the row η0·w·q in float64 and casts it
once), so the steps after a change are computed as `generate` with the new plan computes them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError

TokenTap = Callable[[int, np.ndarray], None]
"""``tap(position, ids)``: the decoder input ids (B·K, S) of positions ``position ..``."""


class GenerationStopped(Exception):
    """Raised inside ``model.generate`` by the hooks when `LiveControl.stop` was called; the
    hooks are removed as on any exception. ``step``: the decoder step it stopped at."""

    def __init__(self, step: int) -> None:
        super().__init__(f"generation stopped at step {step}")
        self.step = int(step)


@dataclass(frozen=True, order=True)
class LiveEvent:
    """Direction ``direction``'s coefficient became ``coef`` from decoder step ``step`` on."""

    step: int
    direction: int
    coef: float

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "direction": self.direction, "coef": self.coef}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LiveEvent:
        return cls(int(d["step"]), int(d["direction"]), float(d["coef"]))


class LiveControl:
    """Coefficients, stop flag and callbacks of one running generation (see the module doc).

    ``on_tokens(position, ids)`` receives the decoder input ids of every forward call (what a
    streaming decoder needs); ``on_step(step)`` is called once per forward call. Both run on the
    generating thread; `set_coef` and `stop` may be called from any thread.
    """

    def __init__(
        self,
        *,
        on_tokens: TokenTap | None = None,
        on_step: Callable[[int], None] | None = None,
        replay: Iterable[LiveEvent] = (),
    ) -> None:
        self.on_tokens = on_tokens
        self.on_step = on_step
        self.events: list[LiveEvent] = []
        self._lock = threading.Lock()
        self._pending: dict[int, float] = {}
        self._planned = sorted(replay)
        self._stop = threading.Event()
        self.step = -1  # the last step a forward call started at

    @classmethod
    def replay(cls, events: Iterable[LiveEvent | Mapping[str, Any]], **kw: Any) -> LiveControl:
        """A control that makes the recorded changes at their recorded steps."""
        evs = [e if isinstance(e, LiveEvent) else LiveEvent.from_dict(e) for e in events]
        return cls(replay=evs, **kw)

    # ------------------------------------------------------------ any thread
    def set_coef(self, direction: int, coef: float) -> None:
        """From the next decoder step on, direction ``direction`` is added with ``coef``."""
        value = float(coef)
        if not math.isfinite(value):
            raise ConfigError(f"a live coefficient must be finite, got {coef!r}")
        with self._lock:
            self._pending[int(direction)] = value

    def stop(self) -> None:
        """End the generation at the next decoder step (`GenerationStopped` is raised there)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------ the generating thread
    def take(self, step: int) -> dict[int, float]:
        """The changes to apply from ``step`` on: replayed events due by then, then whatever
        `set_coef` left since the last call."""
        out: dict[int, float] = {}
        while self._planned and self._planned[0].step <= step:
            e = self._planned.pop(0)
            out[e.direction] = e.coef
        with self._lock:
            out.update(self._pending)
            self._pending.clear()
        return out

    def record(self, step: int, direction: int, coef: float) -> None:
        self.events.append(LiveEvent(int(step), int(direction), float(coef)))


_CURRENT: contextvars.ContextVar[LiveControl | None] = contextvars.ContextVar(
    "musicrfm_live_control", default=None
)


def current_live() -> LiveControl | None:
    """The control attached by the innermost `live_control` block of this thread, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def live_control(control: LiveControl) -> Iterator[LiveControl]:
    """Attach ``control`` to every `apply_plan` (hence every `generate`) inside the block."""
    token = _CURRENT.set(control)
    try:
        yield control
    finally:
        _CURRENT.reset(token)
