"""What the two-concept experiment measures: the two parts of a pair (:class:`PartSpec`: a
concept with its own η0, schedule and gate), the target pairs, the controls and the conflict
case (:class:`PairsConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import PROMPT_INSTRUMENTS, DemoConfig
from musicrfm.steering.plan import relative_coef

# concepts a part can steer, with the detector that judges it: notes (note detector), chord
# quality and chord root (both read from one chord detection), tempo (the BPM detector against
# the unsteered clips' median: a signed regression direction, steered 'faster' or 'slower')
PART_CONCEPTS = ("notes", "chords", "chord-roots", "tempos", "beats")
# beats: onset directions pulsed on the beats of a target tempo (`mini headline --concept
# beats`); the target is the BPM, a clip is right within headline.beat.BEAT_TOLERANCE of it
TEMPO_PARTS = ("tempos", "beats")  # parts without a conflict case
TEMPO_TARGETS = ("faster", "slower")  # the two signs of η0 (probes.directions.CHANGE_WORDS)
TEMPO_CHANGE = 0.2  # the 20% (as the tempo headline's TEMPO_CHANGE_GATE)
CONTROLS = ("random", "orthogonal", "flip")
QUALITIES = ("major", "minor", "augmented", "diminished")
ROOT_CLIPS = 48


@dataclass(frozen=True)
class PartSpec:
    """One attribute of a pair: its concept, η0 (relative "0.1x" = 0.1 × the median norm of the
    activations its directions were trained on, or absolute), schedule (a `parse_schedule`
    spec) and gate probability. Each part's directions are trained separately."""

    concept: str
    coef: str | float = "0.1x"
    schedule: str = "constant"
    gate: float = 1.0

    def validate(self, which: str) -> None:
        from musicrfm.steering.schedules import parse_schedule

        if self.concept not in PART_CONCEPTS:
            raise ConfigError(
                f"{which} concept {self.concept!r} is not one a pair can steer; valid: "
                f"{', '.join(PART_CONCEPTS)}"
            )
        if isinstance(self.coef, str):
            relative_coef(self.coef)  # a one-line error for anything but a number or "0.1x"
        parse_schedule(self.schedule)
        if not 0 < float(self.gate) <= 1:
            raise ConfigError(f"{which} gate must be in (0, 1], got {self.gate}")

    def plan_fields(self) -> dict[str, Any]:
        """The `SteeringDirection` fields this part sets (besides directions and target)."""
        from musicrfm.steering.schedules import parse_schedule

        return {"coef": self.coef, "schedule": parse_schedule(self.schedule), "gate": self.gate}


def parse_pair(text: str) -> tuple[str, str]:
    """``"G+augmented"`` -> ("G", "augmented"); a one-line ConfigError otherwise."""
    a, plus, b = str(text).partition("+")
    if not plus or not a.strip() or not b.strip() or "+" in b:
        raise ConfigError(f"a pair is FIRST+SECOND, e.g. G+augmented, got {text!r}")
    return a.strip(), b.strip()


def check_target(concept: str, target: str) -> str:
    """The target as the detectors spell it (pitch class, quality, or faster / slower for
    tempo); a one-line error naming the valid ones."""
    from musicrfm.experiments.demo.config import note_name

    if concept == "beats":
        try:
            bpm = float(str(target).strip().lower().removesuffix("bpm").strip())
        except ValueError:
            bpm = float("nan")
        if not 20 <= bpm <= 400:
            raise ConfigError(f"{target!r} is not a beat target; give a tempo in BPM, e.g. 160")
        return f"{bpm:g}"
    if concept == "tempos":
        if str(target).strip().lower() not in TEMPO_TARGETS:
            raise ConfigError(
                f"{target!r} is not a tempo target; valid: {', '.join(TEMPO_TARGETS)}"
            )
        return str(target).strip().lower()

    if concept in ("notes", "chord-roots"):
        try:
            return note_name(target)
        except (ConfigError, ValueError, KeyError):
            raise ConfigError(
                f"{target!r} is not a pitch class (C, C#, Db, ... B) for {concept}"
            ) from None
    if str(target).lower() not in QUALITIES:
        raise ConfigError(f"{target!r} is not a chord quality; valid: {', '.join(QUALITIES)}")
    return str(target).lower()


@dataclass(frozen=True)
class PairsConfig:
    """What the experiment does.

    first/second: the two parts (concept, coef, schedule, gate). pairs: (first target, second
    target) per pair. clips: clips per condition (the same prompts x seeds for every condition
    and the unsteered clips). controls: run on the joint plan, both directions replaced at
    equal norm. conflict: two targets of the first concept at once (notes C and G), each at the
    first part's η0, beside each alone; None skips it. joint_gate/alone_gate/adherence_tolerance:
    the issue's targets (joint >= 0.7 where each alone >= 0.8; adherence within 0.02).
    tempo_change: a tempo part's clip is right when its detected BPM is at least (1 +
    tempo_change) x ('faster') or at most (1 - tempo_change) x ('slower') the median detected
    BPM of the unsteered clips (the issue's 20%). The conflict case is note/chord-only.
    data: prompts, batch, clip length, training-set size (``clips_per_class``)."""

    first: PartSpec = field(default_factory=lambda: PartSpec("notes"))
    second: PartSpec = field(default_factory=lambda: PartSpec("chords"))
    pairs: tuple[tuple[str, str], ...] = (("G", "augmented"), ("D#", "major"))
    clips: int = 16
    controls: tuple[str, ...] = CONTROLS
    conflict: tuple[str, str] | None = ("C", "G")
    joint_gate: float = 0.7
    alone_gate: float = 0.8
    adherence_tolerance: float = 0.02
    tempo_change: float = TEMPO_CHANGE
    sample_seed: int | None = None
    # chord directions' training clips a class; None: data.clips_per_class, or ROOT_CLIPS when a
    # part steers chord roots (24 a quality leaves some root out of the probes' test split)
    chord_clips_per_class: int | None = None
    data: DemoConfig = field(
        default_factory=lambda: DemoConfig(prompts=PROMPT_INSTRUMENTS[:8], seconds=4.0)
    )

    def with_changes(self, **changes: Any) -> PairsConfig:
        """A copy with fields changed (``seconds`` and ``train_set`` go into ``data``)."""
        data = {k: changes.pop(k) for k in ("seconds", "train_set") if k in changes}
        data = {k: v for k, v in data.items() if v is not None}
        if "seconds" in data:
            data["seconds"] = float(data["seconds"])
        cfg = replace(self, **changes)
        return replace(cfg, data=replace(cfg.data, **data)) if data else cfg

    def chord_clips(self) -> int:
        """Training clips a class of the chord set (both chord parts share one set)."""
        if self.chord_clips_per_class is not None:
            return int(self.chord_clips_per_class)
        roots = "chord-roots" in (self.first.concept, self.second.concept)
        return max(self.data.clips_per_class, ROOT_CLIPS) if roots else self.data.clips_per_class

    def validate(self) -> None:
        """One-line ConfigErrors for impossible settings, before any work."""
        self.first.validate("first")
        self.second.validate("second")
        if self.first.concept == self.second.concept:
            raise ConfigError(
                f"a pair steers two concepts; both parts are {self.first.concept!r} (two "
                "targets of one concept is the conflict case: --conflict)"
            )
        if self.clips < 2:
            raise ConfigError(f"--clips must be at least 2 (a rate needs a CI), got {self.clips}")
        if not self.pairs:
            raise ConfigError("give at least one pair (FIRST+SECOND)")
        for a, b in self.pairs:
            check_target(self.first.concept, a)
            check_target(self.second.concept, b)
        unknown = [k for k in self.controls if k not in CONTROLS]
        if unknown:
            raise ConfigError(f"unknown control(s) {unknown}; valid: {', '.join(CONTROLS)}")
        if not 0 < float(self.tempo_change) < 1:
            raise ConfigError(f"tempo_change must be in (0, 1), got {self.tempo_change}")
        if self.conflict is not None and self.first.concept in TEMPO_PARTS:
            raise ConfigError(
                "the conflict case (two targets of one concept at once) is note/chord-only and "
                f"the first part steers {self.first.concept}: pass --no-conflict (conflict=None)"
            )
        if self.conflict is not None:
            if len(self.conflict) != 2 or len({*self.conflict}) != 2:
                raise ConfigError(f"the conflict case needs two different targets, got {self.conflict}")  # fmt: skip
            if check_target(self.first.concept, self.conflict[0]) == check_target(
                self.first.concept, self.conflict[1]
            ):
                raise ConfigError(f"the conflict case needs two different targets, got {self.conflict}")  # fmt: skip
        if not self.data.seconds > 1.0:
            raise ConfigError(f"--seconds must be > 1 (the detectors need a clip), got {self.data.seconds}")  # fmt: skip

    def normalized(self) -> PairsConfig:
        """Targets spelled as the detectors spell them."""
        pairs = tuple(
            (check_target(self.first.concept, a), check_target(self.second.concept, b))
            for a, b in self.pairs
        )
        conflict = (
            self.conflict  # tempo: left as given, for validate's one-line refusal
            if self.conflict is None or self.first.concept in TEMPO_PARTS
            else tuple(check_target(self.first.concept, t) for t in self.conflict)
        )
        return replace(self, pairs=pairs, conflict=conflict)
