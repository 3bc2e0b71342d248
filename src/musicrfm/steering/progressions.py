"""Chord progressions, note sequences and tempo curves from text → keyframed directions (pure).

Why one module: a musician asks for "C G Am F at 100 BPM", or "C E G", or "90 → 130 BPM", and
each is a set of directions switched on and off along one beat grid. The grid is
:mod:`musicrfm.steering.sequence`'s (`NoteSequence`: tokens separated by spaces, one per bar of
``beats_per_bar`` = 4 beats by default, ``|`` for bar lines, a ``fade_beats`` linear crossfade
centred on every boundary, ``bpm`` constant or a linear-in-time ramp); this module adds

- **chords**: ``"C G Am F"`` (one chord per bar, or per ``bars_per_chord`` bars; ``"C G | Am F"``
  puts two chords in a bar). Each chord is a root and a triad quality (`musicrfm.spelling.
  parse_chord`: C, Cm, C:min, Cmin, Cdim, C°, Caug, C+, sharps and flats; sevenths such as C7
  or Cm7 are taken as their triad, with a notice returned to the caller). The progression
  compiles to two keyframed families on the same grid: the chord-root directions (one per
  distinct root) and the chord-quality directions (one per distinct quality), each at full
  strength during its chords and crossfading at the bar lines. A part that does not change
  between two chords (C → Cm keeps the root C) is held through the bar line, not faded.
- **tempo curves**: ``bpm = "90..130"`` with a tempo (regression) direction steers the tempo along
  the curve. The direction has no calibration from BPM to η0, so the curve is steered relative
  to a *reference* tempo: φ(t) = |bpm(t) − reference| / (the curve's largest deviation), through
  the direction's ``faster`` target above the reference and ``slower`` below it, so ``coef`` is
  the η0 at the curve's largest deviation. The reference defaults to the middle of a ramp
  (90..130: slower fading out until 110, then faster rising to full at 130); a constant tempo
  needs one (e.g. the model's unsteered tempo), or there is nothing to steer toward.
- **beat pulses**: ``bpm`` with *onset* directions (a binary probe on per-frame features: is
  there an onset within a few frames? `musicrfm mini headline --concept beats` trains them)
  pulses the onset direction on every beat of the grid: φ = 1 on a beat, falling linearly to 0
  half a beat away (a triangle wave), so the model strikes on the grid at exactly that tempo
  (a ramp too). Unlike a tempo direction it needs no reference tempo: the grid is the target.

Directions are recognised by what they hold (`direction_role`): triad-quality classes are chord
qualities, a regression is tempo, classes ``onset`` / ``none`` are onsets (the beat), pitch classes trained on a ``root`` label (``musicrfm train
--label-column root``) are chord roots, other pitch classes are notes. A part without directions
is an error naming the ``musicrfm train`` command that makes them (`TRAIN_HINTS`).

A plan file's ``[progression]`` table (`split_progression_table` reads it, `progression_table`
writes it) holds the progression fields (``chords``, ``bpm``, ``bars_per_chord``, ...), the
direction files (``directions``, recognised by what they hold) and any other direction field.
``beat = true`` pulses the onset directions on the beats of ``bpm`` (default: on exactly when
onset directions are among ``directions``; ``true`` without them is an error naming what to
train). ``seconds`` is the tempo curve's / beat pulses' length: needed without chords or notes,
and with them it replaces the grid's length (the studio pulses over its whole clip).
``coef`` is one η0 for every direction, or a table by role, ``coef = {quality = 0.9, root =
0.8, beat = 2.7}``, when the parts steer at different strengths (the studio's chord and beat
sliders).

This module returns `SteeringDirection` keyword arguments (`progression_directions`) instead of
importing the plan module, which reads its ``[progression]`` tables through it (an import back
would be a cycle): `musicrfm.steering.plan.compile_progression` (and its classmethod form
`SteeringPlan.from_progression`) builds the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.spelling import CHORD_FORMS, parse_chord
from musicrfm.steering.schedules import Schedule
from musicrfm.steering.sequence import (
    DEFAULT_BEATS_PER_BAR,
    DEFAULT_BPM,
    DEFAULT_FADE_BEATS,
    RESERVED_FIELDS,
    NoteSequence,
    Tempo,
    _positive,
    _tokens,
    class_resolver,
    parse_notes,
)
from musicrfm.theory import CHORD_QUALITIES, PITCH_CLASSES, pitch_class_name

CHORDS_FORMS = (
    "chords separated by spaces, e.g. 'C G Am F' (one chord per bar, or per --bars-per-chord), "
    "or bars separated by '|', e.g. 'C G | Am F' (the chords of a bar share it)"
)
PARTS = ("root", "quality")
"""The parts of a chord a progression steers (both by default)."""
ROLES = ("quality", "root", "notes", "tempo", "beat")
TRAIN_HINTS: dict[str, str] = {
    "quality": "musicrfm synth chords --out data/chords && musicrfm extract --data data/chords "
    "--model MODEL --out feats/chords && musicrfm train --features feats/chords --out dirs/chords",
    "root": "musicrfm train --features feats/chords --label-column root --where inversion=root "
    "--concept chord-roots --out dirs/chord-roots (features of `musicrfm synth chords`; root "
    "position: there the root is the bass)",
    "notes": "musicrfm train --features feats/notes --concept notes --out dirs/notes",
    "tempo": "musicrfm synth tempos --out data/tempos && musicrfm extract --data data/tempos "
    "--model MODEL --out feats/tempos && musicrfm train --features feats/tempos --out dirs/tempo",
    "beat": "musicrfm mini headline --model MODEL --concept beats --out beats-report (writes "
    "beats-report/directions/onsets)",
}
"""The command that trains each role's directions (named by the error when they are missing)."""
ROLE_NAMES = {
    "quality": "chord-quality directions (classes major, minor, augmented, diminished)",
    "root": "chord-root directions (pitch classes trained on the chords' root label)",
    "notes": "note directions (pitch classes)",
    "tempo": "tempo directions (a regression on BPM)",
    "beat": "onset directions (classes onset / none, from per-frame features)",
}
# the fields of a [progression] table that describe it; the others are direction fields
PROGRESSION_FIELDS = (
    "chords",
    "notes",
    "bpm",
    "bars_per_chord",
    "beats_per_note",
    "bars_per_note",
    "beats_per_bar",
    "fade_beats",
    "parts",
    "tempo_reference",
    "seconds",
    "beat",
    "directions",
)


# ---------------------------------------------------------------------- chords
@dataclass(frozen=True)
class Chord:
    """One chord symbol as written, its root pitch class, its triad quality, and the notice of
    what was dropped to make it a triad (a seventh), if anything."""

    text: str
    root: int
    quality: str
    notice: str | None = None

    @property
    def root_name(self) -> str:
        return pitch_class_name(self.root)

    @property
    def name(self) -> str:
        """``"A:minor"``: the chord detector's label form."""
        return f"{self.root_name}:{self.quality}"


def parse_chord_symbol(text: str) -> Chord:
    """A chord symbol (``Am``, ``C:min``, ``F#dim``, ``Bb+``, ``G7``...) → `Chord`; anything else
    is a ConfigError showing the accepted forms."""
    root, quality, notice = parse_chord(text)
    return Chord(str(text).strip(), root, quality, notice)


def _check_chords_text(text: str, bars_per_chord: float | None) -> str:
    """The progression text, checked with chord wording before the grid reads it."""
    if isinstance(text, (list, tuple)):
        text = " ".join(str(x) for x in text)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"empty chord progression; use {CHORDS_FORMS}")
    text = text.strip()
    if "|" in text:
        if bars_per_chord is not None:
            raise ConfigError(
                f"chord progression {text!r} marks its bars with '|', so every bar lasts one bar "
                "and its chords share it: drop bars_per_chord"
            )
        bars = text.split("|")
        bars = bars[1:] if bars and not bars[0].strip() else bars
        bars = bars[:-1] if bars and not bars[-1].strip() else bars
        for i, group in enumerate(bars):
            if not _tokens(group):
                raise ConfigError(
                    f"chord progression {text!r}: bar {i + 1} is empty; use {CHORDS_FORMS}"
                )
    for token in _tokens(text.replace("|", " ")):
        try:
            parse_chord_symbol(token)
        except ConfigError:
            raise ConfigError(
                f"chord progression {text!r}: unknown chord {token!r}; accepted forms: "
                f"{CHORD_FORMS}"
            ) from None
    return text


@dataclass(frozen=True)
class ChordSpan:
    """One chord of a progression and its span in beats."""

    chord: Chord
    start: float
    end: float


@dataclass(frozen=True)
class ChordProgression:
    """Chord text on a beat grid (see the module docstring); `keyframes` compiles one part."""

    chords: str
    bpm: Tempo | str | float = DEFAULT_BPM
    bars_per_chord: float | None = None
    beats_per_bar: float = DEFAULT_BEATS_PER_BAR
    fade_beats: float = DEFAULT_FADE_BEATS

    def __post_init__(self) -> None:
        if self.bars_per_chord is not None:
            object.__setattr__(
                self, "bars_per_chord", _positive("bars_per_chord", self.bars_per_chord)
            )
        object.__setattr__(self, "chords", _check_chords_text(self.chords, self.bars_per_chord))
        spans = parse_notes(
            self.chords, bars_per_note=self.bars_per_chord, beats_per_bar=self.beats_per_bar
        )
        fade = _positive("fade_beats", self.fade_beats)
        shortest = min(s.beats for s in spans)
        if not fade < shortest:
            raise ConfigError(
                f"fade_beats ({fade:g}) must be shorter than the shortest chord of "
                f"{self.chords!r} ({shortest:g} beats)"
            )
        # the grid: the sequence machinery, its tokens chord symbols
        grid = NoteSequence(
            self.chords,
            bpm=self.bpm,
            bars_per_note=self.bars_per_chord,
            beats_per_bar=self.beats_per_bar,
            fade_beats=fade,
        )
        object.__setattr__(self, "bpm", grid.tempo)
        object.__setattr__(self, "beats_per_bar", grid.beats_per_bar)
        object.__setattr__(self, "fade_beats", fade)
        object.__setattr__(self, "_grid", grid)

    @property
    def grid(self) -> NoteSequence:
        return self._grid  # type: ignore[attr-defined]

    @property
    def tempo(self) -> Tempo:
        return self.grid.tempo

    def spans(self) -> list[ChordSpan]:
        """Every chord as written, with its span in beats."""
        return [ChordSpan(parse_chord_symbol(s.note), s.start, s.end) for s in self.grid.spans()]

    @property
    def notices(self) -> list[str]:
        """What was changed to make triads (``G7 taken as its triad (G major)``), once each."""
        out: list[str] = []
        for s in self.spans():
            if s.chord.notice and s.chord.notice not in out:
                out.append(s.chord.notice)
        return out

    @property
    def seconds(self) -> float:
        return self.grid.seconds

    def bar_lines(self) -> np.ndarray:
        """The times (s) of the bar lines from the first downbeat to the end (inclusive)."""
        bars = int(np.ceil(self.grid.total_beats / self.beats_per_bar - 1e-9))
        return self.grid.beat_seconds(np.arange(bars + 1) * self.beats_per_bar)

    def chord_at_bars(self) -> list[list[Chord]]:
        """The chords sounding in each bar (one, or several with ``|`` or short chords)."""
        bar, out = self.beats_per_bar, []
        bars = int(np.ceil(self.grid.total_beats / bar - 1e-9))
        spans = self.spans()
        for i in range(bars):
            lo, hi = i * bar, (i + 1) * bar
            out.append([s.chord for s in spans if s.start < hi and s.end > lo])
        return out

    def keyframes(self, part: str, resolve: Any = None) -> dict[str, list[tuple[float, float]]]:
        """{class: [(seconds, value), ...]} of one part (``root`` or ``quality``), classes in
        order of first appearance; ``resolve`` maps the part's name (``"A"``, ``"minor"``) to the
        directions' class name (default: unchanged)."""
        pick = _part_of(part)
        name = (lambda s: resolve(pick(s))) if resolve is not None else pick
        return self.grid.keyframes(name)

    def schedules(self, part: str, resolve: Any = None) -> dict[str, Schedule]:
        """{class: its keyframes schedule (in seconds)} of one part."""
        return {
            k: Schedule("keyframes", points=pts, unit="seconds")
            for k, pts in self.keyframes(part, resolve).items()
        }

    def describe(self) -> str:
        return f"chords {self.chords!r} at {self.tempo.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """The progression fields of a ``[progression]`` table (defaults left out)."""
        d: dict[str, Any] = {"chords": self.chords, "bpm": self.tempo.to_value()}
        if self.bars_per_chord is not None:
            d["bars_per_chord"] = self.bars_per_chord
        if self.beats_per_bar != DEFAULT_BEATS_PER_BAR:
            d["beats_per_bar"] = self.beats_per_bar
        if self.fade_beats != DEFAULT_FADE_BEATS:
            d["fade_beats"] = self.fade_beats
        return d


def _part_of(part: str) -> Any:
    if part == "root":
        return lambda token: parse_chord_symbol(token).root_name
    if part == "quality":
        return lambda token: parse_chord_symbol(token).quality
    raise ConfigError(f"unknown chord part {part!r}; valid: {', '.join(PARTS)}")


def parse_parts(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"root,quality"`` / ``["quality"]`` → the chord parts to steer (default both)."""
    if value is None:
        return PARTS
    items = re.split(r"[\s,+]+", value.strip()) if isinstance(value, str) else list(value)
    parts = tuple(dict.fromkeys(str(p).strip().lower() for p in items if str(p).strip()))
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ConfigError(f"chord parts must be root and/or quality, got {value!r}")
    return parts


# ---------------------------------------------------------------------- tempo curves
@dataclass(frozen=True)
class TempoCurve:
    """A tempo (constant or a ramp) steered over ``seconds`` relative to ``reference`` BPM (see
    the module docstring); `keyframes` gives the ``faster`` / ``slower`` schedules."""

    bpm: Tempo | str | float
    seconds: float
    reference: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bpm", Tempo.parse(self.bpm))
        object.__setattr__(self, "seconds", _positive("tempo curve length (s)", self.seconds))
        tempo: Tempo = self.bpm  # type: ignore[assignment]
        if self.reference is None:
            if tempo.constant:
                raise ConfigError(
                    f"a constant tempo ({tempo.describe()}) steers a tempo direction only "
                    "relative to a reference tempo (e.g. the model's unsteered tempo): give "
                    "tempo_reference / --tempo-reference, or a ramp such as 90..130"
                )
            reference = (tempo.start + float(tempo.end)) / 2.0  # type: ignore[arg-type]
        else:
            reference = _positive("tempo_reference", self.reference)
        object.__setattr__(self, "reference", float(reference))
        if self.scale == 0:
            raise ConfigError(
                f"tempo {tempo.describe()} is the reference tempo ({reference:g} BPM): "
                "nothing to steer"
            )

    @property
    def tempo(self) -> Tempo:
        return self.bpm  # type: ignore[return-value]

    @property
    def scale(self) -> float:
        """The curve's largest deviation from the reference (BPM): φ = 1 there."""
        ref = float(self.reference)  # type: ignore[arg-type]
        return max(abs(self.tempo.start - ref), abs(float(self.tempo.end) - ref))  # type: ignore[arg-type]

    def bpm_at(self, seconds: Any) -> np.ndarray:
        """The target tempo at times (s): linear over the curve, then held."""
        t = np.clip(np.asarray(seconds, dtype=np.float64) / self.seconds, 0.0, 1.0)
        return self.tempo.start + (float(self.tempo.end) - self.tempo.start) * t  # type: ignore[arg-type]

    def keyframes(self) -> dict[str, list[tuple[float, float]]]:
        """{"slower"/"faster": [(seconds, value), ...]}, only the ones that are ever > 0."""
        ref, scale = float(self.reference), self.scale  # type: ignore[arg-type]
        b0, b1 = self.tempo.start, float(self.tempo.end)  # type: ignore[arg-type]
        times = [0.0, self.seconds]
        if (b0 - ref) * (b1 - ref) < 0:  # the curve crosses the reference
            times.insert(1, self.seconds * (ref - b0) / (b1 - b0))
        out: dict[str, list[tuple[float, float]]] = {}
        for target, sign in (("slower", -1.0), ("faster", 1.0)):
            pts = [
                (float(t), max(0.0, min(1.0, float(sign * (self.bpm_at(t) - ref) / scale))))
                for t in times
            ]
            if any(v > 0 for _, v in pts):
                out[target] = pts
        return out

    def schedules(self) -> dict[str, Schedule]:
        return {
            k: Schedule("keyframes", points=pts, unit="seconds")
            for k, pts in self.keyframes().items()
        }

    def describe(self) -> str:
        return f"tempo {self.tempo.describe()} (reference {self.reference:g} BPM)"


# ---------------------------------------------------------------------- beat pulses
ONSET_CLASS = "onset"
DEFAULT_BEAT_LEAD = 0.5  # fraction of a beat the pulses come early (BeatPulse: why)
"""The class of onset directions that marks a frame near an onset (the other is ``none``)."""


@dataclass(frozen=True)
class BeatPulse:
    """Onset directions pulsed on the beats of ``bpm`` over ``seconds`` (see the module
    docstring): φ = 1 on every pulse, 0 half a beat away, linear in between. ``lead``: the
    pulses come this fraction of a beat before their beats (0 <= lead < 1). Half a beat by
    default: on the beat testbed pulses on the beats made it strike halfway between them
    (mean phase -0.46..+0.47 beat, 8-18% of onsets within 1/8 beat of a beat), half a beat
    early on them (-0.01..+0.15 beat, 42-73%; docs/results/beats-testbed-beat/phase.json)."""

    bpm: Tempo | str | float
    seconds: float
    lead: float = DEFAULT_BEAT_LEAD

    def __post_init__(self) -> None:
        object.__setattr__(self, "bpm", Tempo.parse(self.bpm))
        object.__setattr__(self, "seconds", _positive("beat pulse length (s)", self.seconds))
        lead = float(self.lead)
        if not 0.0 <= lead < 1.0:
            raise ConfigError(
                f"beat pulse lead must be a fraction of a beat in [0, 1), got {self.lead}"
            )
        object.__setattr__(self, "lead", lead)

    @property
    def tempo(self) -> Tempo:
        return self.bpm  # type: ignore[return-value]

    def beat_times(self) -> np.ndarray:
        """The beats (s) from 0 to ``seconds``; a ramp spans the whole length."""
        t = self.tempo
        total = self.seconds * (t.start + float(t.end)) / 120.0  # type: ignore[arg-type]
        times = t.seconds_at(np.arange(int(np.floor(total)) + 1), total)
        return times[times <= self.seconds + 1e-9]

    def pulse_times(self) -> np.ndarray:
        """Where φ = 1: each beat ``lead`` of a beat early, from the pulse before 0 to the one
        after the clip (the keyframes keep what falls inside)."""
        beats = self.beat_times()
        gap_end = 60.0 / float(self.tempo.end)  # type: ignore[arg-type]
        gap_start = 60.0 / self.tempo.start
        around = np.concatenate([[beats[0] - gap_start], beats, [beats[-1] + gap_end]])
        gaps = np.diff(around)
        return around[1:] - self.lead * gaps

    def keyframes(self) -> list[tuple[float, float]]:
        """[(seconds, φ), ...] from 0: 1 on each pulse, 0 halfway between two, linear in
        between, so φ is 0 wherever no pulse is near."""
        peaks = self.pulse_times()
        xs: list[float] = [float(peaks[0] - (peaks[1] - peaks[0]) / 2.0)]
        ys: list[float] = [0.0]
        for i, b in enumerate(peaks):
            if i > 0:
                xs.append(float((peaks[i - 1] + b) / 2.0))
                ys.append(0.0)
            xs.append(float(b))
            ys.append(1.0)
        xs.append(float(peaks[-1] + (peaks[-1] - peaks[-2]) / 2.0))
        ys.append(0.0)
        last = self.seconds + (60.0 / float(self.tempo.end)) / 2.0  # type: ignore[arg-type]
        pts = [(0.0, float(np.interp(0.0, xs, ys)))]
        pts += [(x, y) for x, y in zip(xs, ys) if 1e-9 < x <= last + 1e-9]
        if pts[-1][1] != 0.0:
            pts.append((float(pts[-1][0] + 60.0 / float(self.tempo.end) / 2.0), 0.0))  # type: ignore[arg-type]
        return pts

    def schedules(self) -> dict[str, Schedule]:
        return {ONSET_CLASS: Schedule("keyframes", points=self.keyframes(), unit="seconds")}

    def describe(self) -> str:
        return f"beat pulses at {self.tempo.describe()}"


# ---------------------------------------------------------------------- directions
def direction_role(cd: Any) -> str:
    """What a set of `ConceptDirections` steers: ``quality``, ``root``, ``notes``, ``tempo`` or
    ``beat`` (see the module docstring); a ConfigError names the roles for anything else."""
    classes = set(cd.classes)
    if cd.is_regression:
        return "tempo"
    if ONSET_CLASS in classes and classes <= {ONSET_CLASS, "none"}:
        return "beat"
    if classes and classes <= set(CHORD_QUALITIES):
        return "quality"
    if classes and classes <= set(PITCH_CLASSES):
        label = str(cd.meta.get("label_column") or "")
        return "root" if "root" in label or "root" in str(cd.concept) else "notes"
    raise ConfigError(
        f"directions {cd.concept!r} (classes {', '.join(cd.classes[:6])}) are none of "
        f"{'; '.join(ROLE_NAMES.values())}"
    )


def direction_roles(sources: Sequence[Any] | Any) -> dict[str, Any]:
    """{role: source} of direction files or `ConceptDirections` (one source per role)."""
    from musicrfm.probes.directions import ConceptDirections

    if isinstance(sources, (str, Path, ConceptDirections)):
        sources = [sources]
    out: dict[str, Any] = {}
    for src in sources:
        cd = src if isinstance(src, ConceptDirections) else ConceptDirections.load(src)
        role = direction_role(cd)
        if role in out:
            raise ConfigError(
                f"two sets of {ROLE_NAMES[role]} given ({_name(out[role])}, {_name(src)}): pass one"
            )
        out[role] = src
    return out


def _name(src: Any) -> str:
    return str(src) if isinstance(src, (str, Path)) else f"in-memory {src.concept!r}"


def missing_role(role: str, what: str) -> ConfigError:
    """The error for a part without directions: what is needed and how to train it."""
    return ConfigError(f"{what} needs {ROLE_NAMES[role]}; train them: {TRAIN_HINTS[role]}")


@dataclass
class Progression:
    """What one progression steers: chords and/or notes on a grid, and/or a tempo curve, and/or
    beat pulses.

    The unit a ``[progression]`` table, the ``generate`` flags and the studio describe; it
    compiles to direction keyword arguments with `directions_for`.
    """

    chords: ChordProgression | None = None
    notes: NoteSequence | None = None
    tempo: TempoCurve | None = None
    parts: tuple[str, ...] = PARTS
    beat: BeatPulse | None = None
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.chords is not None and self.notes is not None:
            raise ConfigError("a progression plays chords or notes, not both")
        if all(x is None for x in (self.chords, self.notes, self.tempo, self.beat)):
            raise ConfigError("a progression needs chords, notes, a tempo curve or beat pulses")
        self.parts = parse_parts(self.parts)
        if self.chords is not None and not self.notices:
            self.notices = self.chords.notices

    def directions_for(
        self, sources: Sequence[Any] | Any, coef: float | str = 0.3, **fields: Any
    ) -> list[dict[str, Any]]:
        """The `SteeringDirection` keyword arguments: chord roots, then qualities (or the notes),
        then the tempo, each with ``coef`` and the other direction ``fields``."""
        reserved = sorted(set(fields) & set(RESERVED_FIELDS))
        if reserved:
            raise ConfigError(
                f"a progression sets {', '.join(reserved)} itself (keyframed directions on its "
                "grid); drop them"
            )
        roles = direction_roles(sources)
        by_role = _coef_by_role(coef)
        used: list[str] = []
        out: list[dict[str, Any]] = []

        def add(role: str, schedules: Mapping[str, Schedule]) -> None:
            used.append(role)
            if by_role is not None and role not in by_role:
                raise ConfigError(
                    f"coef = {{...}} gives no η0 for the {role} part ({ROLE_NAMES[role]}) of "
                    f"{self.describe()}; add {role} = ... to it"
                )
            c = coef if by_role is None else by_role[role]
            for target, sched in schedules.items():
                out.append(
                    {"directions": roles[role], "target": target, "coef": c,
                     "schedule": sched, **fields}
                )  # fmt: skip

        if self.chords is not None:
            for part in self.parts:
                if part not in roles:
                    raise missing_role(part, f"chords {self.chords.chords!r} ({part} part)")
                res = class_resolver(roles[part])
                try:
                    scheds = self.chords.schedules(part, res)
                except ConfigError as exc:
                    raise ConfigError(f"chord progression {self.chords.chords!r}: {exc}") from None
                add(part, scheds)
        if self.notes is not None:
            if "notes" not in roles:
                raise missing_role("notes", f"notes {self.notes.notes!r}")
            add("notes", self.notes.schedules(class_resolver(roles["notes"])))
        if self.tempo is not None:
            if "tempo" not in roles:
                raise missing_role("tempo", f"steering {self.tempo.describe()}")
            add("tempo", self.tempo.schedules())
        if self.beat is not None:
            if "beat" not in roles:
                raise missing_role("beat", self.beat.describe())
            add("beat", self.beat.schedules())
        unused = [r for r in roles if r not in used]
        if unused:
            names = ", ".join(_name(roles[r]) for r in unused)
            kinds = ", ".join(ROLE_NAMES[r] for r in unused)
            verb = "is" if len(unused) == 1 else "are"
            only = f" (parts: {', '.join(self.parts)})" if self.parts != PARTS else ""
            raise ConfigError(
                f"{names} ({kinds}) {verb} not used by {self.describe()}{only}: leave "
                f"{'it' if len(unused) == 1 else 'them'} out"
            )
        extra = sorted(set(by_role or ()) - set(used))
        if extra:
            raise ConfigError(
                f"coef = {{...}} names {', '.join(extra)}, which {self.describe()} does not steer "
                f"(it steers {', '.join(used)})"
            )
        return out

    def describe(self) -> str:
        parts = []
        if self.chords is not None:
            parts.append(self.chords.describe())
        if self.notes is not None:
            parts.append(self.notes.describe())
        if self.tempo is not None:
            parts.append(self.tempo.describe())
        if self.beat is not None:
            parts.append(self.beat.describe())
        return " + ".join(parts)

    @property
    def seconds(self) -> float:
        grid = self.chords or self.notes or self.tempo or self.beat
        return float(grid.seconds)  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        """The progression fields of a ``[progression]`` table (defaults left out): what
        `split_progression_table` reads back into an equal progression, given the same
        directions. Its beat pulses keep their default lead (the table has no field for it)."""
        if self.beat is not None and self.beat.lead != DEFAULT_BEAT_LEAD:
            raise ConfigError(
                f"a [progression] table holds beat pulses with the default lead "
                f"({DEFAULT_BEAT_LEAD:g} beat) only, not {self.beat.lead:g}"
            )
        grid = self.chords or self.notes
        d: dict[str, Any] = grid.to_dict() if grid is not None else {}
        timed = self.tempo or self.beat
        if timed is not None:
            d["bpm"] = timed.tempo.to_value()
            if grid is None or abs(timed.seconds - grid.seconds) > 1e-9:
                d["seconds"] = float(timed.seconds)
        if self.chords is not None and self.parts != PARTS:
            d["parts"] = list(self.parts)
        if self.tempo is not None:
            d["tempo_reference"] = float(self.tempo.reference)  # type: ignore[arg-type]
        if self.beat is not None:
            d["beat"] = True
        return d


def make_progression(
    *,
    chords: str | None = None,
    notes: str | None = None,
    bpm: Tempo | str | float | None = None,
    bars_per_chord: float | None = None,
    beats_per_note: float | None = None,
    bars_per_note: float | None = None,
    beats_per_bar: float | None = None,
    fade_beats: float | None = None,
    parts: str | Sequence[str] | None = None,
    steer_tempo: bool = False,
    tempo_reference: float | None = None,
    seconds: float | None = None,
    steer_beat: bool = False,
    span_seconds: float | None = None,
) -> Progression:
    """A `Progression` from its fields as the CLI and plan files give them. ``steer_tempo``:
    also steer the tempo along ``bpm`` (over the grid's length, or ``seconds`` without one);
    ``steer_beat``: pulse onset directions on the beats of ``bpm`` (the same length).
    ``span_seconds``: that length even with a grid (a plan table's ``seconds``; the CLI's
    ``--seconds`` is the clip's and leaves the pulses on the chords' grid)."""
    grid_kw: dict[str, Any] = {}
    if bpm is not None:
        grid_kw["bpm"] = Tempo.parse(bpm)
    if beats_per_bar is not None:
        grid_kw["beats_per_bar"] = beats_per_bar
    if fade_beats is not None:
        grid_kw["fade_beats"] = fade_beats
    if chords is not None and (beats_per_note is not None or bars_per_note is not None):
        raise ConfigError("chords take bars_per_chord (beats/bars per note are for notes)")
    if notes is not None and bars_per_chord is not None:
        raise ConfigError(
            "notes take beats_per_note or bars_per_note (bars_per_chord is for chords)"
        )
    prog_chords = (
        ChordProgression(chords, bars_per_chord=bars_per_chord, **grid_kw)
        if chords is not None
        else None
    )
    prog_notes = (
        NoteSequence(notes, beats_per_note=beats_per_note, bars_per_note=bars_per_note, **grid_kw)
        if notes is not None
        else None
    )
    if chords is None and notes is None:
        given = {
            "bars_per_chord": bars_per_chord,
            "beats_per_note": beats_per_note,
            "bars_per_note": bars_per_note,
            "beats_per_bar": beats_per_bar,
            "fade_beats": fade_beats,
        }
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise ConfigError(f"{', '.join(extra)} set the grid of chords or notes: give them too")
    tempo = beat = None
    grid = prog_chords or prog_notes
    length = grid.seconds if grid is not None else seconds
    if span_seconds is not None:
        length = _positive("seconds", span_seconds)
    if steer_tempo or steer_beat:
        what = "steering the tempo" if steer_tempo else "beat pulses"
        if bpm is None:
            raise ConfigError(f"{what} needs bpm (a tempo such as 100, or a ramp such as 90..130)")
        if length is None:
            raise ConfigError(f"{what} without chords or notes needs its length: seconds")
    if steer_tempo:
        tempo = TempoCurve(bpm, length, tempo_reference)  # type: ignore[arg-type]
    elif tempo_reference is not None:
        raise ConfigError("tempo_reference needs tempo directions (the tempo is not steered)")
    if steer_beat:
        beat = BeatPulse(bpm, length)  # type: ignore[arg-type]
    return Progression(prog_chords, prog_notes, tempo, parse_parts(parts), beat=beat)


def split_progression_table(
    table: Mapping[str, Any], *, base_dir: Path | None = None
) -> tuple[Progression, list[Any], dict[str, Any]]:
    """A plan file's ``[progression]`` table → (the progression, its direction sources, the
    direction fields: coef, layers, ...). Relative paths are read against ``base_dir``; the
    tempo is steered when one of the sources is tempo directions."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[progression] must be a table, got {type(table).__name__}")
    src = table.get("directions")
    if src is None or src == []:
        raise ConfigError(
            "a [progression] needs directions = ['<chord-quality dirs>', '<chord-root dirs>', ...]"
        )
    sources = [src] if isinstance(src, (str, Path)) else list(src)
    if not all(isinstance(s, (str, Path)) for s in sources):
        raise ConfigError(f"[progression] directions must be paths, got {src!r}")
    sources = [
        str(base_dir / str(s))
        if base_dir is not None and not Path(str(s)).is_absolute()
        else str(s)
        for s in sources
    ]
    spec = {k: v for k, v in table.items() if k in PROGRESSION_FIELDS and k != "directions"}
    fields = {k: v for k, v in table.items() if k not in PROGRESSION_FIELDS}
    roles = direction_roles(sources)
    beat = spec.pop("beat", "beat" in roles)
    if not isinstance(beat, bool):
        raise ConfigError(f"[progression] beat must be true or false, got {beat!r}")
    prog = make_progression(**spec, steer_tempo="tempo" in roles, steer_beat=beat,
                            span_seconds=spec.get("seconds"))  # fmt: skip
    if beat and "beat" not in roles:
        raise missing_role("beat", f"[progression] beat = true ({prog.beat.describe()})")  # type: ignore[union-attr]
    return prog, sources, fields


def progression_table(
    progression: Progression, sources: Sequence[str | Path], coef: Any = 0.3, **fields: Any
) -> dict[str, Any]:
    """The ``[progression]`` table of a progression, its direction files and direction fields
    (``coef``: one η0, or {role: η0}; see the module docstring): what a plan file holds."""
    if isinstance(coef, Mapping):
        coef = {str(k): v if isinstance(v, str) else float(v) for k, v in coef.items()}
    elif not isinstance(coef, str):
        coef = float(coef)
    srcs = [str(s) for s in sources]
    return {**progression.to_dict(), "directions": srcs, "coef": coef, **fields}


def _coef_by_role(coef: Any) -> dict[str, Any] | None:
    """A ``coef = {role: η0}`` table, checked (None for one η0 for every direction)."""
    if not isinstance(coef, Mapping):
        return None
    bad = sorted(str(k) for k in coef if k not in ROLES)
    if bad or not coef:
        raise ConfigError(
            f"coef by role takes the roles {', '.join(ROLES)} (e.g. coef = {{quality = 0.9, "
            f"beat = 2.7}}), got {', '.join(bad) or 'an empty table'}"
        )
    return dict(coef)


def progression_directions(
    progression: Progression,
    sources: Sequence[Any] | Any,
    coef: float | str = 0.3,
    **fields: Any,
) -> list[dict[str, Any]]:
    """`Progression.directions_for`, as a function (what the plan module calls)."""
    return progression.directions_for(sources, coef, **fields)
