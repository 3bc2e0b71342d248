"""One generation in flight: its live control, its audio chunks as they are decoded, its end.

The page's player fetches ``/studio/stream/<run id>`` (see :mod:`musicrfm.studio.server`) and
plays the chunks as they arrive; the Generate handler creates the run under the id the page
chose (unguessable: `new_run_id`), so the stream can be opened before the run exists. Live
knobs reach the run through the browser session's state (`Run.set_strength`).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Mapping

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.steering.live import LiveControl

RUN_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def new_run_id() -> str:
    return secrets.token_urlsafe(16)


class Run:
    """A generation's chunks (float32 mono at ``sample_rate``), live control and outcome."""

    def __init__(self, run_id: str, sample_rate: int) -> None:
        if not RUN_ID.match(str(run_id)):
            raise ConfigError("bad run id")
        self.id = run_id
        self.sample_rate = int(sample_rate)
        self.live = LiveControl()
        self.created = time.monotonic()
        self.first_chunk_at: float | None = None
        self.finished_at: float | None = None
        self._chunks: list[np.ndarray] = []
        self._cond = threading.Condition()
        self._knobs: dict[str, list[tuple[int, float]]] = {}
        self.finished = False
        self.stopped = False

    # ------------------------------------------------------------ live knobs
    def bind(self, knobs: Mapping[str, list[tuple[int, float]]]) -> None:
        """Which plan directions each knob drives, and η0 per unit of its strength."""
        self._knobs = {k: list(v) for k, v in knobs.items()}

    def set_strength(self, knob: str, value: float) -> bool:
        """Move a knob while the run plays; False when this run has no such knob."""
        if self.finished or knob not in self._knobs:
            return False
        for m, per_unit in self._knobs[knob]:
            self.live.set_coef(m, float(value) * per_unit)
        return True

    def stop(self) -> None:
        self.live.stop()

    # ------------------------------------------------------------ audio
    def push(self, chunk: np.ndarray) -> None:
        with self._cond:
            if self.first_chunk_at is None:
                self.first_chunk_at = time.monotonic()
            self._chunks.append(chunk)
            self._cond.notify_all()

    def close(self, *, stopped: bool = False) -> None:
        with self._cond:
            self.finished = True
            self.finished_at = time.monotonic()
            self.stopped = stopped
            self._cond.notify_all()

    def chunks_since(self, index: int, timeout: float = 0.0) -> tuple[list[np.ndarray], bool]:
        """Chunks from ``index`` on (waiting up to ``timeout`` for one), and whether the run is
        over."""
        with self._cond:
            if len(self._chunks) <= index and not self.finished and timeout > 0:
                self._cond.wait(timeout)
            return self._chunks[index:], self.finished

    @property
    def samples(self) -> int:
        with self._cond:
            return sum(len(c) for c in self._chunks)


class RunRegistry:
    """The runs of every session, by id; old ones are dropped (they hold their audio)."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def add(self, run: Run) -> Run:
        with self._lock:
            if run.id in self._runs:
                raise ConfigError("this run id is taken; press Generate again")
            self._runs[run.id] = run
            while len(self._runs) > self.keep:
                self._runs.pop(next(iter(self._runs)))
        return run

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)
