"""What a Table 1 run is measured on, and the table's fixed layout (columns, rows, the paper's
own numbers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from musicrfm.errors import ConfigError
from musicrfm.files import cache_dir
from musicrfm.synth.concepts import get_concept
from musicrfm.synth.notes import TRAIN_PROGRAMS

# the paper's column order and headers; tempo is a regression, scored by R^2
CONCEPT_ORDER = (
    "notes",
    "intervals",
    "scales",
    "chords",
    "progressions",
    "time_signatures",
    "tempos",
)
COLUMN_LABELS = {
    "notes": "Notes",
    "intervals": "Intervals",
    "scales": "Scales",
    "chords": "Chords",
    "progressions": "Prog.",
    "time_signatures": "Time Sig.",
    "tempos": "Tempos (R²)",
    "Avg.": "Avg.",
}
# (key, label) of the table's rows, in order; "mean"/"last" is the pooling of the features
ROWS = (
    ("rfm_mean", "RFM (mean-pooled)"),
    ("rfm_last", "RFM (last token)"),
    ("ridge", "Linear probe (ridge)"),
    ("logistic", "Logistic probe"),
    ("mean_difference", "Difference of means"),
    ("mlp", "2-layer MLP probe"),
)
ROW_LABELS = dict(ROWS)
# Table 1 of the paper (MusicGen-large, full SynTheory; /work/shared/reference/MusicRFM-paper.txt
# lines 231-236). Its "Syntheory FFN" is the SynTheory study's 2-layer MLP probe.
PAPER_TABLE1 = {
    "rfm_mean": (0.850, 0.975, 0.956, 0.984, 0.943, 0.900, 0.985, 0.942),
    "rfm_last": (0.734, 0.743, 0.546, 0.866, 0.811, 0.771, 0.959, 0.776),
    "ridge": (0.761, 0.618, 0.158, 0.834, 0.725, 0.729, 0.972, 0.685),
    "mlp": (0.866, 0.972, 0.905, 0.989, 0.901, 0.905, 0.965, 0.929),
}
PAPER_MODEL = "MusicGen-large, full SynTheory (the paper's Table 1)"
# 70/15/15 stratified with rounding half up leaves a class >= 1 val and >= 1 test clip from 6 on
MIN_CLIPS_PER_CLASS = 6
POOLINGS = ("mean", "last")
TEMPO_RANGE = (50, 210)


@dataclass(frozen=True)
class Table1Config:
    """What a table is measured on; stored in its JSON so a rerun can rebuild it."""

    concepts: tuple[str, ...] = CONCEPT_ORDER
    clips_per_class: int = 8
    seed: int = 0
    budget: str = "fast"
    programs: tuple[int, ...] | None = tuple(TRAIN_PROGRAMS)  # None: SynTheory's 92
    tempo_step: int = 1  # BPMs 50, 50 + step, ... 210; each BPM is a class of the synth set
    octaves: tuple[int, ...] | None = None  # notes only: SynTheory octaves (midi // 12); None: all
    seconds: float = 4.0
    device: str = "cpu"
    workers: int = 1  # render processes

    def __post_init__(self) -> None:
        object.__setattr__(self, "concepts", parse_concept_list(self.concepts))
        if self.clips_per_class < MIN_CLIPS_PER_CLASS:
            raise ConfigError(
                f"clips per class must be >= {MIN_CLIPS_PER_CLASS} (every class needs a "
                f"validation and a test clip under the 70/15/15 split), got {self.clips_per_class}"
            )
        if self.octaves is not None and not self.octaves:
            raise ConfigError("octaves is empty; leave it out for all octaves")
        if self.tempo_step < 1:
            raise ConfigError(f"tempo step must be >= 1 BPM, got {self.tempo_step}")
        if self.budget not in ("fast", "paper"):
            raise ConfigError(f"unknown budget {self.budget!r}; valid: fast, paper")


def parse_concept_list(concepts: str | Iterable[str]) -> tuple[str, ...]:
    """Concept names (or aliases, e.g. chord_progressions), comma-separated or a list, as the
    canonical names in the paper's column order; an unknown name lists the valid ones."""
    items = concepts.split(",") if isinstance(concepts, str) else list(concepts)
    names = {get_concept(str(c).strip()).name for c in items if str(c).strip()}
    if not names:
        raise ConfigError(f"no concept given; valid: {', '.join(CONCEPT_ORDER)}")
    return tuple(c for c in CONCEPT_ORDER if c in names)


def default_work_dir() -> Path:
    """``table1`` under the cache root (honours ``MUSICRFM_CACHE_DIR``)."""
    return cache_dir("table1")


def task_name(task: str) -> str:
    return "regression" if task == "regression" else "classification"
