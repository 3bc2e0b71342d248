"""Note sequences on a beat grid → one keyframed direction per note (pure: text in, data out).

(Just over 400 lines on purpose: the text grammar, the tempo ramp and the keyframes are one
compiler, read top to bottom.)

``"C E G"`` at 120 BPM in 4/4 is C for bar 1, E for bar 2, G for bar 3: each note's direction is
at full strength during its span and 0 elsewhere, with a short linear crossfade (``fade_beats``,
a quarter beat by default) centred on every boundary, so the two neighbours' schedules sum to 1
through it. The first note starts at full strength at t = 0; the last one fades out around the
end of its span. A note that recurs gets one direction whose keyframes cover all its spans.

Text: notes separated by spaces (or commas), one note per ``beats_per_note`` beats (default:
one bar of ``beats_per_bar`` = 4 beats; ``bars_per_note`` counts in bars). ``|`` marks bar
lines instead: every bar lasts one bar and its notes share it equally (``"C E | G"``: C and E
two beats each, then G for the whole second bar); the per-note lengths then do not apply.
Consecutive equal notes merge into one span (no fade between them).

Tempo: a constant (``120``) or a linear ramp (``"90..130"``, also ``"90-130"`` or
``[90, 130]``): the tempo moves linearly in time from the first value at the sequence's first
beat to the second at the end of its last note, so the beat positions follow the changing
tempo (after the end it holds the last value). Only the grid uses it: nothing steers the tempo.

Times come out in seconds (``unit="seconds"`` keyframe schedules), which `Schedule.resolve`
turns into generation steps with the model's frame rate, as every seconds-schedule (step =
seconds x frame rate; MusicGen's codebook 0 of frame t sits at step t + 1, 20 ms later).

Note names are resolved by the directions' own ``class_index`` (``Db`` is ``C#``), so an unknown
one is an error that lists the valid classes. :meth:`musicrfm.steering.plan.SteeringPlan.
from_sequence` builds the plan from what :func:`note_directions` returns, and plan files take a
``[sequence]`` table (documented in :mod:`musicrfm.steering.plan`). This module does not import
the plan module: the plan module reads its tables (an import the other way would be a cycle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.steering.schedules import Schedule

DEFAULT_BPM = 120.0
DEFAULT_BEATS_PER_BAR = 4.0
DEFAULT_FADE_BEATS = 0.25
BPM_FORMS = "a tempo such as 120, or a linear ramp such as 90..130 (also 90-130), in BPM > 0"
NOTES_FORMS = (
    "notes separated by spaces, e.g. 'C E G' (one note per bar, or per --beats-per-note / "
    "--bars-per-note), or bars separated by '|', e.g. 'C E | G' (the notes of a bar share it)"
)
# the fields of a [sequence] table that describe the sequence; the others are direction fields
SEQUENCE_FIELDS = ("notes", "bpm", "beats_per_note", "bars_per_note", "beats_per_bar", "fade_beats")
# direction fields a sequence sets itself
RESERVED_FIELDS = ("target", "schedule", "name", "class")

_NUMBER = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"
_RAMP = re.compile(rf"^{_NUMBER}(?:\.\.|->|-|→|to){_NUMBER}$")
_CONSTANT = re.compile(rf"^{_NUMBER}$")


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return v


# ---------------------------------------------------------------------- tempo
@dataclass(frozen=True)
class Tempo:
    """A constant tempo (``start == end``) or a ramp from ``start`` to ``end`` BPM, linear in
    time over a sequence (see the module docstring)."""

    start: float = DEFAULT_BPM
    end: float | None = None

    def __post_init__(self) -> None:
        start = _positive("bpm", self.start)
        end = start if self.end is None else _positive("bpm", self.end)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def constant(self) -> bool:
        return self.start == self.end

    @classmethod
    def parse(cls, value: Tempo | str | float | int | Sequence[float]) -> Tempo:
        """``120``, ``"120"``, ``"90..130"`` / ``"90-130"`` / ``"90->130"``, ``[90, 130]``."""
        if isinstance(value, Tempo):
            return value
        if isinstance(value, bool):
            raise ConfigError(f"cannot read bpm {value!r}; use {BPM_FORMS}")
        try:
            if isinstance(value, (int, float)):
                return cls(value)
            if isinstance(value, (list, tuple)) and len(value) in (1, 2):
                return cls(*value)
            if isinstance(value, str):
                m = _CONSTANT.match(value) or _RAMP.match(value)
                if m:
                    return cls(*(float(g) for g in m.groups()))
        except ConfigError:
            pass
        raise ConfigError(f"cannot read bpm {value!r}; use {BPM_FORMS}")

    def to_value(self) -> float | str:
        """The file form: a number, or ``"90..130"``."""
        return self.start if self.constant else f"{self.start:g}..{self.end:g}"

    def describe(self) -> str:
        return f"{self.start:g} BPM" if self.constant else f"{self.start:g}..{self.end:g} BPM"

    def phrase_seconds(self, total_beats: float) -> float:
        """How long ``total_beats`` beats last (the ramp spans them)."""
        return 120.0 * float(total_beats) / (self.start + self.end)

    def seconds_at(self, beats: Any, total_beats: float) -> np.ndarray:
        """The times (s) of beat positions (0 = the sequence's first beat) in a sequence of
        ``total_beats`` beats. With tempo b(t) = b0 + (b1 - b0) t / D over the phrase's length D,
        beat B falls where b0 t + (b1 - b0) t² / (2D) = 60 B."""
        b = np.asarray(beats, dtype=np.float64)
        b0, b1 = self.start, float(self.end)  # type: ignore[arg-type]
        if self.constant:
            return 60.0 * b / b0
        D = self.phrase_seconds(total_beats)
        a = (b1 - b0) / (2.0 * D)
        inside = np.minimum(b, total_beats)
        t = 120.0 * inside / (b0 + np.sqrt(b0 * b0 + 240.0 * a * inside))
        return np.where(b > total_beats, D + 60.0 * (b - total_beats) / b1, t)

    def bpm_at(self, seconds: Any, total_beats: float) -> np.ndarray:
        """The tempo at times (s) of a sequence of ``total_beats`` beats."""
        t = np.asarray(seconds, dtype=np.float64)
        D = self.phrase_seconds(total_beats)
        return self.start + (float(self.end) - self.start) * np.clip(t / D, 0.0, 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- notes
@dataclass(frozen=True)
class NoteSpan:
    """One note of a sequence: its name (as written, or resolved) and its span in beats."""

    note: str
    start: float
    end: float

    @property
    def beats(self) -> float:
        return self.end - self.start


def parse_notes(
    text: str | Sequence[str],
    *,
    beats_per_note: float | None = None,
    bars_per_note: float | None = None,
    beats_per_bar: float = DEFAULT_BEATS_PER_BAR,
) -> list[NoteSpan]:
    """The spans of a note text (see the module docstring), names as written."""
    bar = _positive("beats_per_bar", beats_per_bar)
    if beats_per_note is not None and bars_per_note is not None:
        raise ConfigError("give beats_per_note or bars_per_note, not both")
    if isinstance(text, (list, tuple)):
        text = " ".join(str(x) for x in text)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"empty note sequence; use {NOTES_FORMS}")
    spans: list[NoteSpan] = []
    if "|" in text:
        if beats_per_note is not None or bars_per_note is not None:
            raise ConfigError(
                f"note sequence {text!r} marks its bars with '|', so every bar lasts one bar "
                "(beats_per_bar beats) and its notes share it: drop beats_per_note/bars_per_note"
            )
        bars = text.split("|")
        # a leading or trailing bar line ("| C E | G |") is allowed
        if bars and not bars[0].strip():
            bars = bars[1:]
        if bars and not bars[-1].strip():
            bars = bars[:-1]
        for i, group in enumerate(bars):
            notes = _tokens(group)
            if not notes:
                raise ConfigError(
                    f"note sequence {text!r}: bar {i + 1} is empty; use {NOTES_FORMS}"
                )
            step = bar / len(notes)
            for j, note in enumerate(notes):
                spans.append(NoteSpan(note, i * bar + j * step, i * bar + (j + 1) * step))
    else:
        if bars_per_note is not None:
            length = _positive("bars_per_note", bars_per_note) * bar
        elif beats_per_note is not None:
            length = _positive("beats_per_note", beats_per_note)
        else:
            length = bar
        for i, note in enumerate(_tokens(text)):
            spans.append(NoteSpan(note, i * length, (i + 1) * length))
    if not spans:
        raise ConfigError(f"empty note sequence {text!r}; use {NOTES_FORMS}")
    return spans


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", text.strip()) if t]


def merge_spans(spans: Sequence[NoteSpan]) -> list[NoteSpan]:
    """Consecutive spans of the same note joined into one."""
    out: list[NoteSpan] = []
    for s in spans:
        if out and out[-1].note == s.note and out[-1].end == s.start:
            out[-1] = NoteSpan(s.note, out[-1].start, s.end)
        else:
            out.append(s)
    return out


# ---------------------------------------------------------------------- the sequence
@dataclass(frozen=True)
class NoteSequence:
    """A note text on a beat grid (see the module docstring); `keyframes` compiles it."""

    notes: str
    bpm: Tempo | str | float = DEFAULT_BPM
    beats_per_note: float | None = None
    bars_per_note: float | None = None
    beats_per_bar: float = DEFAULT_BEATS_PER_BAR
    fade_beats: float = DEFAULT_FADE_BEATS

    def __post_init__(self) -> None:
        notes = self.notes
        if isinstance(notes, (list, tuple)):
            notes = " ".join(str(x) for x in notes)
        object.__setattr__(self, "notes", str(notes).strip())
        object.__setattr__(self, "bpm", Tempo.parse(self.bpm))
        object.__setattr__(self, "beats_per_bar", _positive("beats_per_bar", self.beats_per_bar))
        object.__setattr__(self, "fade_beats", _positive("fade_beats", self.fade_beats))
        for name in ("beats_per_note", "bars_per_note"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _positive(name, getattr(self, name)))
        spans = merge_spans(self.spans())
        shortest = min(s.beats for s in spans)
        if not self.fade_beats < shortest:
            raise ConfigError(
                f"fade_beats ({self.fade_beats:g}) must be shorter than the shortest note of "
                f"{self.notes!r} ({shortest:g} beats)"
            )

    @property
    def tempo(self) -> Tempo:
        return self.bpm  # type: ignore[return-value]

    def spans(self, resolve: Callable[[str], str] | None = None) -> list[NoteSpan]:
        """The notes' spans in beats (names resolved by ``resolve``, e.g. ``Db`` -> ``C#``)."""
        spans = parse_notes(
            self.notes,
            beats_per_note=self.beats_per_note,
            bars_per_note=self.bars_per_note,
            beats_per_bar=self.beats_per_bar,
        )
        if resolve is None:
            return spans
        out = []
        for s in spans:
            try:
                name = resolve(s.note)
            except ConfigError as exc:
                raise ConfigError(f"note sequence {self.notes!r}: {exc}") from None
            out.append(NoteSpan(name, s.start, s.end))
        return out

    @property
    def total_beats(self) -> float:
        return self.spans()[-1].end

    @property
    def seconds(self) -> float:
        """How long the sequence lasts (the end of its last note)."""
        return self.tempo.phrase_seconds(self.total_beats)

    def beat_seconds(self, beats: Any) -> np.ndarray:
        """The times (s) of beat positions on this sequence's grid."""
        return self.tempo.seconds_at(beats, self.total_beats)

    def keyframes(
        self, resolve: Callable[[str], str] | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """{note: [(seconds, value), ...]}, notes in order of first appearance (see the module
        docstring for the shape)."""
        spans = merge_spans(self.spans(resolve))
        total, h = spans[-1].end, self.fade_beats / 2.0
        beats: dict[str, list[tuple[float, float]]] = {}
        for s in spans:
            pts = beats.setdefault(s.note, [])
            if s.start == 0:
                pts.append((0.0, 1.0))
            else:
                pts += [(s.start - h, 0.0), (s.start + h, 1.0)]
            pts += [(s.end - h, 1.0), (s.end + h, 0.0)]
        out = {}
        for note, pts in beats.items():
            times = self.tempo.seconds_at([b for b, _ in pts], total)
            out[note] = [(float(t), v) for t, (_, v) in zip(times, pts)]
        return out

    def schedules(self, resolve: Callable[[str], str] | None = None) -> dict[str, Schedule]:
        """{note: its keyframes schedule (in seconds)}."""
        return {
            note: Schedule("keyframes", points=pts, unit="seconds")
            for note, pts in self.keyframes(resolve).items()
        }

    def describe(self) -> str:
        return f"notes {self.notes!r} at {self.tempo.describe()}"

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The sequence fields of a ``[sequence]`` table (defaults left out)."""
        d: dict[str, Any] = {"notes": self.notes, "bpm": self.tempo.to_value()}
        if self.beats_per_note is not None:
            d["beats_per_note"] = self.beats_per_note
        if self.bars_per_note is not None:
            d["bars_per_note"] = self.bars_per_note
        if self.beats_per_bar != DEFAULT_BEATS_PER_BAR:
            d["beats_per_bar"] = self.beats_per_bar
        if self.fade_beats != DEFAULT_FADE_BEATS:
            d["fade_beats"] = self.fade_beats
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NoteSequence:
        unknown = set(d) - set(SEQUENCE_FIELDS)
        if unknown:
            raise ConfigError(
                f"unknown sequence field(s) {sorted(unknown)}; valid: {', '.join(SEQUENCE_FIELDS)}"
            )
        if "notes" not in d:
            raise ConfigError(f"a [sequence] needs notes = '...': {NOTES_FORMS}")
        return cls(**dict(d))


# ---------------------------------------------------------------------- to directions
def class_resolver(directions: Any) -> Callable[[str], str]:
    """Note name as users write it -> the directions' class name (their ``class_index``)."""
    from musicrfm.probes.directions import ConceptDirections

    cd = (
        directions
        if isinstance(directions, ConceptDirections)
        else ConceptDirections.load(directions)
    )
    return lambda name: cd.classes[cd.class_index(name)]


def note_directions(
    sequence: NoteSequence,
    directions: Any,
    coef: float = 0.3,
    *,
    resolve: Callable[[str], str] | None = None,
    **fields: Any,
) -> list[dict[str, Any]]:
    """The `SteeringDirection` keyword arguments of a sequence: one per distinct note, in order of
    first appearance, each with ``coef``, the other ``fields`` and its keyframes schedule.
    ``resolve``: note name -> class name (default: the directions' ``class_index``)."""
    reserved = sorted(set(fields) & set(RESERVED_FIELDS))
    if reserved:
        raise ConfigError(
            f"a note sequence sets {', '.join(reserved)} itself (one keyframed direction per "
            "note); drop them"
        )
    if resolve is None:
        resolve = class_resolver(directions)
    return [
        {"directions": directions, "target": note, "coef": coef, "schedule": sched, **fields}
        for note, sched in sequence.schedules(resolve).items()
    ]


def split_table(
    table: Mapping[str, Any], *, base_dir: Path | None = None
) -> tuple[NoteSequence, dict[str, Any]]:
    """A plan file's ``[sequence]`` table -> (the sequence, the direction fields: directions,
    coef, layers, ...). A relative ``directions`` path is read against ``base_dir``."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[sequence] must be a table, got {type(table).__name__}")
    seq = NoteSequence.from_dict({k: v for k, v in table.items() if k in SEQUENCE_FIELDS})
    fields = {k: v for k, v in table.items() if k not in SEQUENCE_FIELDS}
    src = fields.get("directions")
    if src is None:
        raise ConfigError("a [sequence] needs directions = '<path to the note directions>'")
    if base_dir is not None and not Path(str(src)).is_absolute():
        fields["directions"] = str(base_dir / str(src))
    return seq, fields


def sequence_table(
    sequence: NoteSequence, directions: str | Path, coef: float | str = 0.3, **fields: Any
) -> dict[str, Any]:
    """The ``[sequence]`` table of a sequence and its direction fields (for a plan file)."""
    coef_value = coef if isinstance(coef, str) else float(coef)  # "0.1x": relative
    return {**sequence.to_dict(), "directions": str(directions), "coef": coef_value, **fields}
