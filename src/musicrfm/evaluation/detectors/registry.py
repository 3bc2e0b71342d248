"""The detector registry: one :class:`Detector` record per concept.

A record says everything the rest of the package needs to know about a detector: its concept
name and aliases, the detect function, how a detected label is matched against a target (and
with which options a results row scores it), how a target names a column of the detector's
probabilities, whether its per-window trace can be refined, its label set, which details go
into a results row and how the CLI prints it. The sweep config, sweep scoring and
``musicrfm evaluate`` read these records, so adding a detector is one
:func:`register_detector` call next to its detect function (see :mod:`.notes` for an example).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import SILENT, Detection
from musicrfm.evaluation.frontend import load_audio


def _same_text(detected: str, target: Any) -> bool:
    return str(detected).lower() == str(target).lower()


def _lower(target: Any) -> str:
    return str(target).lower()


@dataclass(frozen=True)
class Detector:
    """One registered detector.

    name: the canonical concept ("notes"); ``aliases`` are other names for it ("note").
    detect: ``detect(audio, sr, **options) -> Detection``.
    labels: the classes its ``Detection.probs`` / ``trace_probs`` refer to (empty when it has no
      distribution, e.g. tempo in BPM).
    match: ``match(detected_label, target, **options) -> bool`` (never called on ``SILENT``).
    score_options: the ``match`` options a results row uses (tempo: octave errors forgiven).
    target_key: the class name a target refers to in ``labels`` (notes: 'Db' -> 'C#').
    windowed: ``detect`` takes ``window_s``/``hop_s`` for its per-window trace, so a finer trace
      can be asked for (schedules, crossfades).
    row_details: ``Detection.details`` keys copied into a results row.
    value_key: the row detail that is the detector's numeric reading (tempo: ``bpm``): what a
      clip steered 'faster' / 'slower' is judged on; None for a detector without one.
    describe: a short text of the details worth printing after the label (the CLI).
    """

    name: str
    detect: Callable[..., Detection]
    aliases: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    match: Callable[..., bool] = _same_text
    score_options: Mapping[str, Any] = field(default_factory=dict)
    target_key: Callable[[Any], str] = _lower
    windowed: bool = True
    row_details: tuple[str, ...] = ()
    value_key: str | None = None
    describe: Callable[[Detection], str] | None = None

    def __call__(self, audio: Any, sr: int, **options: Any) -> Detection:
        return self.detect(audio, sr, **options)


DETECTORS: dict[str, Detector] = {}
"""name -> record, in registration order (the built-ins: notes, chords, intervals, tempos)."""
_ALIASES: dict[str, str] = {}


def register_detector(detector: Detector, *, replace: bool = False) -> Detector:
    """Add ``detector`` to the registry (ConfigError when a name or alias is taken, unless
    ``replace``); returns it."""
    names = (detector.name, *detector.aliases)
    if not replace:
        taken = [n for n in names if n in DETECTORS or n in _ALIASES]
        if taken:
            raise ConfigError(f"detector name(s) {', '.join(taken)} already registered")
    elif detector.name in DETECTORS:
        unregister_detector(detector.name)
    DETECTORS[detector.name] = detector
    for alias in detector.aliases:
        _ALIASES[alias] = detector.name
    return detector


def unregister_detector(name: str) -> Detector:
    """Remove a detector (by name or alias) and its aliases; returns the record."""
    record = get_detector(name)
    del DETECTORS[record.name]
    for alias in record.aliases:
        _ALIASES.pop(alias, None)
    return record


def concepts() -> tuple[str, ...]:
    """The registered concept names, in registration order."""
    return tuple(DETECTORS)


def find_detector(concept: str) -> Detector | None:
    """The record for a concept name or alias (exact spelling), or None."""
    return DETECTORS.get(_ALIASES.get(concept, concept))


def get_detector(concept: str) -> Detector:
    """The record for a concept name or alias; ConfigError for concepts without a detector."""
    record = find_detector(concept)
    if record is None:
        raise ConfigError(f"no detector for concept {concept!r}; known: {', '.join(DETECTORS)}")
    return record


def concept_name(concept: str) -> str:
    """Canonical concept name ('note' -> 'notes'); ConfigError for concepts without a detector."""
    return get_detector(concept).name


def detect(audio: Any, sr: int, concept: str, **options: Any) -> Detection:
    """Run the detector for ``concept`` ("notes", "chords", "intervals", "tempos", ...)."""
    return get_detector(concept).detect(audio, sr, **options)


def detect_file(path: str | Path, concept: str, **options: Any) -> Detection:
    """Load ``path`` and run the detector for ``concept``."""
    y, sr = load_audio(path)
    return detect(y, sr, concept, **options)


def label_matches(concept: str, detected: str, target: Any, **options: Any) -> bool:
    """Whether a detected label counts as hitting ``target`` for ``concept``.

    Notes compare pitch classes (flats accepted), chords compare qualities, intervals compare
    absolute semitones, tempos use :func:`~.tempo.tempo_match` (``options`` pass through to the
    detector's ``match``; none means its strictest rule).
    """
    record = get_detector(concept)
    if detected == SILENT:
        return False
    return record.match(detected, target, **options)


def target_index(concept: str, classes: tuple[str, ...], target: Any) -> int | None:
    """The column of ``target`` in a detection's ``classes`` (None when it is not one)."""
    key = get_detector(concept).target_key(target)
    return classes.index(key) if key in classes else None


def score_detection(
    d: Detection, concept: str, target: Any, *, match_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`score`'s row from a :class:`Detection` already computed. ``target`` None: no
    per-clip answer (``correct`` False, ``target_prob`` NaN), e.g. a clip steered 'faster',
    which is judged against other clips later."""
    record = get_detector(concept)
    options = dict(record.score_options if match_options is None else match_options)
    target_prob = float("nan")
    if target is not None and d.probs is not None and d.classes:
        k = target_index(record.name, d.classes, str(target))
        if k is not None:
            target_prob = float(d.probs[k])
    row: dict[str, Any] = {
        "label": d.label,
        "confidence": float(d.confidence),
        "correct": target is not None and label_matches(record.name, d.label, target, **options),
        "silent": d.silent,
        "target_prob": target_prob,
    }
    for key in record.row_details:
        if key in d.details:
            row[key] = d.details[key]
    return row


def score(
    audio: Any,
    sr: int,
    concept: str,
    target: Any,
    *,
    match_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One results-table row for a generated clip steered toward ``target``.

    Keys: ``label``, ``confidence``, ``correct`` (:func:`label_matches` with the detector's
    ``score_options`` -- tempo forgives octave errors -- or ``match_options``), ``silent`` and
    ``target_prob`` (the detector's probability of the target class, NaN where it has no
    distribution), plus the detector's ``row_details`` (``root``/``bpm``/``semitones``/...)
    when present. ``options`` go to the detector.
    """
    d = detect(audio, sr, concept, **options)
    return score_detection(d, concept, target, match_options=match_options)
