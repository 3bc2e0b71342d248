"""What the demo does and what it returns: settings, constants, small helpers.

The demo loads its model with :func:`musicrfm.models.load_model` (which also says how to get
the bundled model when it is missing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.files import cache_dir

log = logging.getLogger(__name__)


# instruments named in the prompts: the captions the mini model was trained on
# (musicrfm.mini.data.TRAIN_PROGRAMS, in that order)
PROMPT_INSTRUMENTS = (
    "acoustic piano",
    "vibraphone",
    "marimba",
    "church organ",
    "nylon guitar",
    "violin",
    "choir",
    "trumpet",
    "clarinet",
    "flute",
    "square lead",
    "warm pad",
)
CONTROL_LABELS = {
    "random": "random direction",
    "flip": "sign-flipped direction",
    "orthogonal": "orthogonal direction",
    "other_class": "other note's direction",
}
STAGES = 7
TESTBED_MODEL = "musicgen-mini-beat"  # the model of the second part, the pair and the beat


@dataclass(frozen=True)
class DemoConfig:
    """What the demo does. :meth:`quick` is the reduced run used in CI."""

    # G -> D#. `musicrfm mini headline` on the bundled model: every pitch class reaches >= 0.83
    # (G 0.88 at 0.07x the median activation norm, n=24); see models/musicgen-mini/README.md.
    target: str = "G"
    crossfade_to: str | None = "D#"  # None: the note a tritone away from the target
    clips_per_class: int = 24  # training clips per pitch class
    # SynTheory octaves 4-6 = MIDI 48-83, the mini model's low, middle and high registers
    octaves: tuple[int, ...] = (4, 5, 6)
    prompts: tuple[str, ...] = PROMPT_INSTRUMENTS[:8]
    register: str | None = "middle"  # appended to prompts as ", middle register"
    seeds_per_prompt: int = 4
    crossfade_clips: int = 8
    coefs: tuple[float, ...] | None = None  # None: relative_coefs x typical activation norm
    # on the bundled mini model 0.07x-0.1x the median norm steers >= 0.8 and keeps the
    # instrument; the crossfade needs 0.15x to move the held note (G -> D#: 5/8 end on D#,
    # 1/8 at 0.1x). Real MusicGen checkpoints may need more: --coefs
    relative_coefs: tuple[float, ...] = (0.1, 0.15)
    controls: tuple[str, ...] = ("random", "flip", "orthogonal")
    seconds: float = 4.0
    budget: str = "fast"
    components: int = 4
    # where directions are learned: "synthetic" (the SynTheory-style set of the concept) or
    # "strikes" (the polyphonic testbed's own kind of clip: strike_grid notes, intervals or
    # triads on a seed other than the recipe's; a model trained on strikes steers chord
    # qualities from them that the synthetic chord set's directions do not move)
    train_set: str = "synthetic"
    batch: int = 16
    instrument_check: bool = True
    examples_per_condition: int = 4
    # the second part (experiments.demo.part): one class of another concept, by default one
    # chord quality on the testbed that plays a beat (part_model None: no second part, no pair;
    # skipped with a notice when that model is not in the checkout). `musicrfm mini headline
    # --concept chords --train-set strikes` on it (docs/results/chords-testbed-beat/): every
    # quality reaches >= 0.94, augmented 16/16 at 0.1x (unsteered 0.06). Any concept with a
    # training set and a detector: `musicrfm demo --part intervals:P5` (tempos: faster / slower)
    part_model: str | None = "musicgen-mini-beat"
    part_concept: str = "chords"
    part_target: str = "augmented"
    part_relative_coef: float = 0.1
    part_seeds_per_prompt: int = 2
    # where the part's (and the pair's) directions are learned: "strikes" (the testbeds' own
    # kind of clip; chord qualities steer from them, the synthetic chord set's directions move
    # only augmented and major) for concepts strike clips have (notes, intervals, chords), the
    # concept's synthetic set for the others
    part_train_set: str = "strikes"
    # with a chords part: four chords from text, one a bar (2/4), judged bar by bar
    # (experiments.demo.progression), compiled by `generate --chords`'s compiler: root + quality
    # from the model's bundled directions/chords and directions/chord-roots when it has both
    # (the beat testbed does: docs/results/roots-testbed-beat/), else the quality part alone
    # from the part's directions (C G Am F 0.95 [0.91, 1.00] quality per bar at 0.3x against
    # 0.14 unsteered, docs/results/progressions-testbed/results-beat.json); None: no progression
    progression: str | None = "C G Am F"
    progression_bpm: float = 120.0
    progression_relative_coef: float = 0.3
    # two concepts at once on the part's model (experiments.demo.pair, the `mini pairs` code):
    # a note and a chord quality, each from its own strike-clip directions, in one plan of two
    # directions; joint success (both right in one clip) against each alone, unsteered and the
    # controls. docs/results/pairs-testbed-beat/: A + diminished at 0.2x each, joint 11/12
    # (unsteered 0/12). FIRST+SECOND: note + chord quality; None: no pair. pair_model None: the
    # part's model (the beat testbed when there is no part)
    pair: str | None = "A+diminished"
    pair_model: str | None = None
    pair_relative_coefs: tuple[float, float] = (0.2, 0.2)
    pair_clips: int = 16
    pair_controls: tuple[str, ...] = ("random",)
    # an exact tempo (experiments.demo.beat): the beat testbed's bundled onset directions
    # (models/musicgen-mini-beat/directions/onsets, no training) pulsed on the beats of each
    # tempo at 0.3x, slower and faster than the unsteered ~121 BPM; share of clips within 4% of
    # the target against unsteered and a random direction of equal norm pulsed the same way
    # (docs/results/beats-testbed-beat/). None: no beat. beat_model None: the part's model
    # (the beat testbed when there is no part)
    beat_bpms: tuple[float, ...] | None = (80.0, 160.0)
    beat_model: str | None = None
    beat_relative_coef: float = 0.3
    beat_seeds_per_prompt: int = 2
    beat_controls: tuple[str, ...] = ("random",)

    def prompt_texts(self) -> list[str]:
        """The prompts as given to the model: instrument, then ", <register> register" if set."""
        suffix = f", {self.register} register" if self.register else ""
        return [p + suffix for p in self.prompts]

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A reduced run (CI): fewer training clips and generations, one η0."""
        base = cls(
            clips_per_class=12,
            prompts=PROMPT_INSTRUMENTS[:12],
            seeds_per_prompt=1,
            crossfade_clips=4,
            relative_coefs=(0.3,),
            seconds=3.0,
            instrument_check=False,
            examples_per_condition=2,
            controls=("random", "flip"),
            part_model=None,
            pair=None,
            beat_bpms=None,
        )
        return replace(base, **changes)


@dataclass
class DemoResult:
    """What a demo run measured and wrote.

    summary: one row per condition (and η0): accuracy, ci_low, ci_high, n, mean detector
    probability of the target, prompt adherence. comparisons: concept minus each other condition
    at the concept's strongest η0 (difference with a bootstrap 95% CI). results: one row per clip.
    files: name -> path of everything written. timings: seconds per stage.
    """

    out: Path
    html: Path
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    results: pd.DataFrame
    crossfade: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Wall time of the whole run (the stages overlap with ``workers=2``)."""
        return float(self.settings.get("wall_seconds", sum(self.timings.values())))

    def accuracy(self, condition: str, coef: float | None = None) -> dict[str, Any]:
        """The summary row of ``condition`` (at ``coef``; default: the strongest η0 it was run at)."""
        rows = self.summary[self.summary["condition"] == condition]
        if rows.empty:
            raise ConfigError(
                f"no condition {condition!r}; have {', '.join(self.summary['condition'].unique())}"
            )
        if coef is None:
            row = rows.loc[rows["coef"].abs().idxmax()]
        else:
            row = rows.loc[(rows["coef"] - coef).abs().idxmin()]
        return row.to_dict()

    @property
    def beats_controls(self) -> bool:
        """True when the concept direction's accuracy (strongest η0) exceeds every control and
        the unsteered baseline with a bootstrap 95% interval of the difference above zero."""
        return bool(len(self.comparisons)) and bool(self.comparisons["specific"].all())


# --------------------------------------------------------------------------- helpers
def default_work_dir() -> Path:
    """``demo`` under the cache root (:func:`musicrfm.files.cache_root`)."""
    return cache_dir("demo")


def note_name(name: str) -> str:
    from musicrfm.theory import pitch_class, pitch_class_name

    return pitch_class_name(pitch_class(name))


def bundled_directions(adapter: Any, name: str, what: str, hint: str) -> Path:
    """``<model folder>/directions/<name>`` (without suffix) of ``adapter``: directions that
    travel with a bundled model, so the demo uses them without training. A ModelError naming
    ``what`` is missing (and ``hint``, how to make it) when the model has no local folder or the
    folder has no ``directions/<name>.safetensors``."""
    from musicrfm.errors import ModelError
    from musicrfm.evaluation.judges import model_folder

    folder = model_folder(adapter)
    if folder is None:
        raise ModelError(
            f"{adapter.model_id} has no local folder, so no bundled {what} "
            f"(directions/{name}.safetensors)"
        )
    path = folder / "directions" / name
    if not path.with_name(name + ".safetensors").is_file():
        raise ModelError(f"{folder} has no bundled {what} (directions/{name}.safetensors; {hint})")
    return path


def log_stage(i: int, text: str) -> float:
    log.info("stage %d/%d: %s", i, STAGES, text)
    return time.perf_counter()


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not enabled, leave=False)
