"""What the schedules experiment measures (:class:`SchedulesConfig`) and the paper's five
schedules stretched over one clip (:func:`paper_schedules`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import PROMPT_INSTRUMENTS, DemoConfig
from musicrfm.experiments.demo.stages import TRAIN_SETS
from musicrfm.experiments.schedules.readers import INTERVAL_MODES, class_name
from musicrfm.steering.plan import relative_coef
from musicrfm.steering.schedules import PAPER_HORIZON, Schedule

# the paper's five forms (SPEC §2.4), in the order the report shows them
SCHEDULES = ("linear-rise", "linear-decay", "exp-decay", "logistic-rise", "sine")
# the ones whose per-window target probability should follow φ(t) with r >= the gate
MONOTONE = ("linear-rise", "linear-decay", "exp-decay", "logistic-rise")
PAPER_DECAY_RATE = 0.998  # per step, over the paper's 1500-step horizon


def paper_schedules(seconds: float, frame_rate: float) -> dict[str, Schedule]:
    """The five paper schedules over a clip of ``seconds``, in seconds (so φ(t) is aligned with
    audio time). Exponential decay keeps the paper's overall shape: its per-step rate is chosen
    so that φ falls over the clip as 0.998 ** t falls over the paper's 1500 steps (to ~0.05);
    sine makes one full period over the clip; the logistic keeps its steepness 0.133 T."""
    if not seconds > 0 or not frame_rate > 0:
        raise ConfigError(f"need seconds > 0 and a frame rate > 0, got {seconds}, {frame_rate}")
    steps = seconds * frame_rate
    rate = PAPER_DECAY_RATE ** (PAPER_HORIZON / steps)
    return {
        "linear-rise": Schedule("linear-rise", duration=seconds, unit="seconds"),
        "linear-decay": Schedule("linear-decay", duration=seconds, unit="seconds"),
        "exp-decay": Schedule("exp-decay", unit="seconds", rate=rate),
        "logistic-rise": Schedule("logistic-rise", duration=seconds, unit="seconds"),
        "sine": Schedule("sine", period=seconds, unit="seconds"),
    }


# what the release follows: 1 - φ(t), or how far φ has fallen from its peak so far
RELEASE_SHAPES = ("complement", "drop")


def release_schedule(
    schedule: Schedule, seconds: float, frame_rate: float, shape: str = "complement"
) -> Schedule | None:
    """The release's schedule over a clip of ``seconds``, as keyframes on the step grid (exact
    at every generation step; held after the clip's last step). ``complement``: 1 - φ(t);
    ``drop``: max φ(s≤t) - φ(t), how far φ has fallen from its peak so far (0 all along a rise,
    1 - φ along a decay from 1). None when it is 0 at every step (nothing to add). Steps where
    it is linear in between are dropped, so a linear decay's release is two points."""
    if not seconds > 0 or not frame_rate > 0:
        raise ConfigError(f"need seconds > 0 and a frame rate > 0, got {seconds}, {frame_rate}")
    if shape not in RELEASE_SHAPES:
        raise ConfigError(
            f"release shape must be one of {', '.join(RELEASE_SHAPES)}, got {shape!r}"
        )
    n = int(np.ceil(seconds * frame_rate)) + 1  # the steps `scoring.phi_at` evaluates
    phi = schedule.values(n, frame_rate=frame_rate, horizon=n)
    top = 1.0 if shape == "complement" else np.maximum.accumulate(phi)
    values = np.clip(top - phi, 0.0, 1.0)
    if not values.any():
        return None
    keep = [0]
    for i in range(1, n - 1):
        if abs(values[i - 1] + values[i + 1] - 2 * values[i]) > 1e-9:  # a bend: keep it
            keep.append(i)
    keep.append(n - 1)
    return Schedule("keyframes", points=[(float(i), float(values[i])) for i in keep])


def parse_coef(text: str | float) -> tuple[float | None, float | None]:
    """``"0.15x"`` -> (0.15, None) (relative to the median activation norm); ``"2.5"`` ->
    (None, 2.5) (an absolute η0); anything else is a one-line ConfigError."""
    if isinstance(text, (int, float)):
        return None, float(text)
    rel = relative_coef(text)
    if rel is not None:
        return rel, None
    return None, float(text)  # relative_coef has already rejected non-numbers


@dataclass(frozen=True)
class SchedulesConfig:
    """What the experiment does.

    concept: ``notes`` (the default), ``chords`` (chord quality) or ``intervals``; the
    directions are learned on that concept's clips (``data.train_set``) and the clips read with its
    detector (:mod:`.readers`). target: the class steered toward under every schedule.
    crossfade: (A, B) of the A→B crossfade (for intervals, a glide). interval_mode: how an
    interval is heard (``harmonic``: two notes together; ``melodic``: one after another). coef: η0 at φ = 1, relative (``"0.15x"``: 0.15 × the median activation norm; the
    demo's crossfade strength on the bundled model) or absolute. clips: clips per schedule (the
    same prompts x seeds for every schedule, the unsteered control and the crossfade).
    window_s/hop_s: the note detector's trace windows. gate: the correlation the monotone
    schedules must reach; crossfade_gate: the share of clips that must start on A and end on B.
    data: note set, prompts, batch, clip length (``data.seconds``) and where the directions are
    learned (``data.train_set``: ``synthetic``, the concept's SynTheory-style set, or
    ``strikes``, the polyphonic testbed's own strike clips). release: r of the release, an
    option beside the paper's schedules: while the target runs at η0·φ(t), the same direction
    negated runs at η0·r·(1 - φ(t)) (:func:`release_schedule`), so a falling φ pushes away
    from the target; 0 (the default) adds nothing. The crossfade is left as it is.
    release_shape: ``complement`` (1 - φ(t), the default) or ``drop`` (max φ(s≤t) - φ(t): only
    a φ that has fallen from its peak releases, so a rise gets no release)."""

    target: str = "G"
    crossfade: tuple[str, str] = ("C", "G")
    concept: str = "notes"
    interval_mode: str = "harmonic"
    coef: str | float = "0.15x"
    clips: int = 12
    window_s: float = 0.5
    hop_s: float = 0.25
    gate: float = 0.7
    crossfade_gate: float = 0.8
    schedules: tuple[str, ...] = SCHEDULES
    sample_seed: int | None = None  # seed of the clips' (prompt, seed) pairs; None: the run's seed
    release: float = 0.0  # r: the target negated at η0·r·(1 - φ(t)) beside it (0: no release)
    release_shape: str = "complement"  # or "drop": max φ(s≤t) - φ(t) instead of 1 - φ(t)
    unsteered_control: bool = True
    data: DemoConfig = field(
        default_factory=lambda: DemoConfig(prompts=PROMPT_INSTRUMENTS[:8], seconds=5.0)
    )

    @property
    def seconds(self) -> float:
        return float(self.data.seconds)

    @property
    def train_set(self) -> str:
        return str(self.data.train_set)

    def with_changes(self, **changes: Any) -> SchedulesConfig:
        """A copy with fields changed (``seconds`` and ``train_set`` go into ``data``)."""
        data = {k: changes.pop(k) for k in ("seconds", "train_set") if k in changes}
        data = {k: v for k, v in data.items() if v is not None}
        if "seconds" in data:
            data["seconds"] = float(data["seconds"])
        cfg = replace(self, **changes)
        return replace(cfg, data=replace(cfg.data, **data)) if data else cfg

    def validate(self) -> None:
        """One-line ConfigErrors for impossible settings."""
        if self.clips < 2:
            raise ConfigError(
                f"--clips must be at least 2 (a correlation needs a CI), got {self.clips}"
            )
        if not self.seconds > 0:
            raise ConfigError(f"--seconds must be > 0, got {self.seconds}")
        if not 0 < self.hop_s <= self.window_s:
            raise ConfigError(f"need 0 < hop_s <= window_s, got {self.hop_s}, {self.window_s}")
        if self.seconds < 3 * self.window_s:
            raise ConfigError(
                f"--seconds {self.seconds:g} is too short for {self.window_s:g} s windows: each "
                f"third of the clip needs a window (at least {3 * self.window_s:g} s)"
            )
        unknown = [s for s in self.schedules if s not in SCHEDULES]
        if unknown or not self.schedules:
            raise ConfigError(f"unknown schedule(s) {unknown}; valid: {', '.join(SCHEDULES)}")
        names = [class_name(self.concept, c) for c in (self.target, *self.crossfade)]
        if len(names) != 3 or names[1] == names[2]:
            raise ConfigError(f"the crossfade needs two different classes, got {self.crossfade}")
        if self.interval_mode not in INTERVAL_MODES:
            raise ConfigError(
                f"interval mode must be one of {', '.join(INTERVAL_MODES)}, "
                f"got {self.interval_mode!r}"
            )
        if self.train_set not in TRAIN_SETS:
            raise ConfigError(
                f"unknown training set {self.train_set!r}; valid: {', '.join(TRAIN_SETS)}"
            )
        parse_coef(self.coef)
        r = self.release
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
            raise ConfigError(
                f"--release must be a finite number >= 0 (0: no release), got {self.release!r}"
            )
        if self.release_shape not in RELEASE_SHAPES:
            raise ConfigError(
                f"--release-shape must be one of {', '.join(RELEASE_SHAPES)}, "
                f"got {self.release_shape!r}"
            )

    def canonical(self) -> SchedulesConfig:
        """The same settings with target and crossfade in the concept's class names."""
        return replace(
            self,
            target=class_name(self.concept, self.target),
            crossfade=tuple(class_name(self.concept, c) for c in self.crossfade),
        )
