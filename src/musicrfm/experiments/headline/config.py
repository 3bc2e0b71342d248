"""What the headline measures (:class:`HeadlineConfig`) and the generation jobs of its two phases:
the direction of every target at each η0, then the controls at the η0 chosen for it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import PROMPT_INSTRUMENTS, DemoConfig
from musicrfm.experiments.demo.stages import Job
from musicrfm.experiments.headline.matching import hits
from musicrfm.theory import PITCH_CLASSES

SAME_AS_BASELINE = ("random", "orthogonal", "other_class")
# classification concepts with a synthetic training set and a detector
HEADLINE_CONCEPTS = (
    "notes", "chords", "intervals", "scales", "progressions", "time_signatures", "tempo_bins",
)  # fmt: skip
"""tempo_bins: tempo's classification form (slow / medium / fast strike clips)."""
INTERVAL_MODES = ("harmonic", "melodic")
"""How an intervals headline hears its clips (and, with strike clips, what it trains on):
``harmonic``, two notes together; ``melodic``, one after another (up or down)."""


@dataclass(frozen=True)
class HeadlineConfig:
    """What the headline measures. ``data`` sets the training set, features, prompts and batch.

    ``concept``: notes (the 12 pitch classes), or any classification concept with a detector
    and a synthetic dataset (chords: the four qualities; intervals: their sizes); ``targets``
    None means every class of the trained directions."""

    targets: tuple[str, ...] | None = PITCH_CLASSES
    concept: str = "notes"
    # the bundled (harmonic-codec) model reaches 0.8 between 0.05x and 0.1x the activation norm
    # for every note; the spectral-codec models needed 0.1x-0.3x (--relative-coefs)
    relative_coefs: tuple[float, ...] = (0.03, 0.05, 0.07, 0.1, 0.15)
    clips: int = 24  # per target and condition
    # The unsteered model plays some notes only ~3% of the time (3 of 96 clips), and a rate that
    # low can be shown to drop only with many clips: 0/24 flip hits against 3/96 is what a 3%
    # rate gives half the time. So the flip gets more clips (None: as many as ``clips``), and
    # the baseline, which every target shares, is larger too.
    flip_clips: int | None = 96
    baseline_clips: int = 192
    controls: tuple[str, ...] = ("random", "orthogonal", "flip")
    accuracy_gate: float = 0.8
    adherence_tolerance: float = 0.02
    layers: str = "all"  # layer spec of the plans, as `musicrfm generate --layers` takes it
    rows: str = "both"  # guidance rows steered (steering.ROWS)
    gate: float = 1.0  # p of the per-step Bernoulli gate (SPEC §2.4; 1 = every step)
    # layer weighting of every plan (paper Table 8): uniform, linear[:w0] or exp[:kappa[:w0]],
    # as `musicrfm generate --layers` spells it; applied after ``layers`` (it overrides one there;
    # None: whatever ``layers`` says, uniform by default)
    weighting: str | None = None
    # the codebooks every plan steers (`SteeringPlan.codebooks`; None: all, one decoder pass)
    codebooks: tuple[int, ...] | None = None
    # adherence from the reference instrument classifier (every prompt instrument x note x four
    # rhythms, + codec round trips; demo.stages.instrument_adherence), not the note-set one
    instrument_reference: bool = True
    # a folder holding a saved reference judge (`musicrfm mini judge --out DIR [--polyphonic]`):
    # adherence is judged by that one alone, not the work cache's or the model folder's, so two
    # judges can be compared on the same clips (the same seed regenerates them)
    judge: str | None = None
    # intervals only: None keeps the original reading (the detector's default, melodic mode, on
    # a strike set of harmonic and melodic clips mixed); "harmonic" / "melodic" read the clips in
    # that mode and train on strike clips of that mode only (detect_options)
    interval_mode: str | None = None
    data: DemoConfig = field(default_factory=lambda: DemoConfig(prompts=PROMPT_INSTRUMENTS))

    @classmethod
    def quick(cls, **changes: Any) -> HeadlineConfig:
        """Two targets (notes; every class of another concept), one η0, a few clips: checks the
        pipeline, not the model."""
        notes = changes.get("concept", "notes") == "notes"
        base = cls(
            targets=("C", "G") if notes else None,
            relative_coefs=(1.0,),
            clips=4,
            baseline_clips=8,
            flip_clips=None,
            instrument_reference=False,
            data=DemoConfig.quick(),
        )
        return replace(base, **changes)

    def validate(self) -> None:
        if self.targets is not None and not self.targets:
            raise ConfigError("the headline needs at least one target")
        if self.concept not in HEADLINE_CONCEPTS:
            raise ConfigError(
                f"the headline steers {', '.join(HEADLINE_CONCEPTS)}, not {self.concept!r} (tempo "
                "is a regression: `musicrfm mini headline --concept tempos` measures faster / "
                "slower, or use `musicrfm sweep` with targets 'faster' / 'slower')"
            )
        if self.clips < 2 or self.baseline_clips < max(self.clips, self.n_flip_clips):
            raise ConfigError(
                f"need clips >= 2 and baseline_clips >= clips and flip_clips (the controls reuse "
                f"the baseline's prompts and seeds), got clips {self.clips}, flip_clips "
                f"{self.n_flip_clips}, baseline_clips {self.baseline_clips}"
            )
        if self.n_flip_clips < 2:
            raise ConfigError(f"need flip_clips >= 2, got {self.n_flip_clips}")
        unknown = [k for k in self.controls if k not in (*SAME_AS_BASELINE, "flip")]
        if unknown:
            raise ConfigError(f"unknown control(s) {unknown}; valid: random, orthogonal, flip")
        if not self.relative_coefs or any(not np.isfinite(c) for c in self.relative_coefs):
            raise ConfigError(f"relative_coefs must be finite numbers, got {self.relative_coefs}")
        check_interval_mode(self.interval_mode, self.concept)
        self.plan_options()  # a bad layer spec or rows value fails here, before any work

    @property
    def n_flip_clips(self) -> int:
        return self.clips if self.flip_clips is None else self.flip_clips

    def detect_options(self) -> dict[str, Any]:
        """Options of the concept's detector for every clip (the interval mode; none else)."""
        return {} if self.interval_mode is None else {"mode": self.interval_mode}

    def plan_options(self) -> dict[str, Any]:
        """Keyword arguments every plan of the headline (directions and controls) gets."""
        from musicrfm.steering.plan import SteeringDirection

        d = SteeringDirection("x", layers=self.layers, rows=self.rows, gate=self.gate)
        if self.weighting is not None:
            for key, value in parse_weighting(self.weighting).items():
                setattr(d, key, value)
        return {
            k: v
            for k, v in asdict(d).items()
            if k in ("layers", "top_k", "weighting", "w0", "kappa", "rows", "gate")
        } | ({} if self.codebooks is None else {"codebooks": list(self.codebooks)})


def parse_weighting(spec: str) -> dict[str, Any]:
    """``uniform``, ``linear[:w0]`` or ``exp[:kappa[:w0]]`` -> the plan's weighting fields (a
    ConfigError for anything else, layers or top-K included: those go to ``layers``)."""
    from musicrfm.steering.plan import WEIGHTINGS, SteeringDirection, parse_layers

    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"weighting must be uniform, linear[:w0] or exp[:kappa[:w0]], got {spec!r}"
        )
    try:
        fields = parse_layers(spec.strip())
    except ConfigError as exc:
        raise ConfigError(f"weighting {spec!r}: {exc}") from None
    if set(fields) - {"weighting", "w0", "kappa"} or "weighting" not in fields:
        raise ConfigError(
            f"weighting must be one of {', '.join(WEIGHTINGS)} (uniform, linear[:w0], "
            f"exp[:kappa[:w0]]), got {spec!r}; layers and top:K go to --layers"
        )
    SteeringDirection("x", **fields)  # a bad kappa / w0 fails here
    return fields


def check_interval_mode(mode: str | None, concept: str) -> None:
    """A ConfigError unless ``mode`` is None, or one of :data:`INTERVAL_MODES` for intervals."""
    if mode is None:
        return
    if mode not in INTERVAL_MODES:
        raise ConfigError(f"interval mode must be one of {', '.join(INTERVAL_MODES)}, got {mode!r}")
    if concept != "intervals":
        raise ConfigError(f"an interval mode is for --concept intervals, not {concept!r}")


def _items(prompts: list[str], n: int, seed: int) -> list[tuple[str, int]]:
    """n (prompt, seed) pairs cycling through the prompts; a new seed after each full cycle."""
    return [(prompts[i % len(prompts)], seed + 1000 * (i // len(prompts))) for i in range(n)]


def direction_jobs(cd: Any, cfg: HeadlineConfig, coefs: tuple[float, ...], seed: int) -> list[Job]:
    """Phase 1: the unsteered baseline, and each target's direction at every η0. Steered clips
    reuse the baseline's first ``clips`` (prompt, seed) pairs, so sampling noise is paired."""
    from musicrfm.steering.plan import SteeringPlan

    base = _items(cfg.data.prompt_texts(), cfg.baseline_clips, seed)
    jobs = [Job("unsteered", 0.0, None, base, cfg.targets[0])]
    for target in cfg.targets:
        for c in coefs:
            plan = SteeringPlan.single(cd, target, c, **cfg.plan_options())
            jobs.append(Job("concept", c, plan, base[: cfg.clips], target))
    return jobs


def control_jobs(cd: Any, cfg: HeadlineConfig, chosen: dict[str, float], seed: int) -> list[Job]:
    """Phase 2: each target's controls at the η0 chosen for its direction (equal norm, layers and
    schedule), on the same (prompt, seed) pairs as the steered clips."""
    from musicrfm.experiments.controls import control_directions
    from musicrfm.steering.plan import SteeringPlan

    paired = _items(cfg.data.prompt_texts(), max(cfg.clips, cfg.n_flip_clips), seed)
    jobs = []
    for i, target in enumerate(cfg.targets):
        for kind in cfg.controls:
            ctl = control_directions(cd, kind, target=target, seed=seed + 101 * i)
            coef = chosen[target]
            plan = SteeringPlan.single(ctl, target, coef, **cfg.plan_options())
            n = cfg.n_flip_clips if kind == "flip" else cfg.clips
            jobs.append(Job(kind, coef, plan, paired[:n], target))
    return jobs


def choose_coefs(frame: pd.DataFrame, cfg: HeadlineConfig) -> dict[str, float]:
    """Per target, the smallest η0 whose hit rate reaches the gate, else the best one."""
    chosen = {}
    for target in cfg.targets:
        steered = frame[(frame["condition"] == "concept") & (frame["target"] == target)]
        if steered.empty:
            raise ConfigError(f"no steered clips for {target}")
        rates = pd.Series(hits(steered, target, cfg.concept), index=steered.index)
        rates = rates.groupby(steered["coef"]).mean()
        passing = [c for c in sorted(rates.index, key=abs) if rates[c] >= cfg.accuracy_gate]
        chosen[target] = float(passing[0] if passing else rates.idxmax())
    return chosen
