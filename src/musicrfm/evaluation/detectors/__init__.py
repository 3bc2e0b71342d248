"""Model-independent detectors: pitch class, chord, interval, tempo, lead melody, key, scale
mode, meter and chord progression.

None of these use MusicGen, so they can judge steered generations without the circularity of a
probe trained on the model's own activations. Every detector takes mono or multi-channel audio
at any sample rate (resampled to :data:`SAMPLE_RATE`) and returns a :class:`Detection`: a label,
a confidence in [0, 1], and a trace over overlapping time windows so schedules and crossfades
can be followed.

One module per concept (:mod:`.notes`, :mod:`.chords`, :mod:`.intervals`, :mod:`.tempo`,
:mod:`.lead`, :mod:`.keys` (keys and scales), :mod:`.meters`, :mod:`.progressions`), each
registering a :class:`Detector` record in :mod:`.registry`; :func:`detect`, :func:`score`,
:func:`label_matches` and the sweep and CLI read the records. To add a detector, write its
detect function and one :func:`register_detector` call (and import its module here).

Bad input policy
----------------
* Empty audio, non-finite samples, a non-positive sample rate or an unreadable file raise
  :class:`~musicrfm.errors.AudioError` (these are bugs upstream, never a measurement).
* Silent audio (RMS below ``silence_db``, default -60 dBFS) is a *measurement*: the detector
  returns ``label == SILENT`` with confidence 0, so a sweep counts a silent generation as a miss
  instead of crashing. Pass ``on_silent="raise"`` to get an :class:`AudioError` instead.
  Silent windows inside a clip get the trace label ``SILENT``.

Pitch trackers are pluggable (:func:`register_pitch_tracker`, in :mod:`..frontend`, re-exported
here with the audio helpers): ``cqt`` and ``pyin`` need no weights, ``crepe`` wraps torchcrepe
where it imports. Reference signals for tests live in :mod:`..signals`.
"""

from __future__ import annotations

# The built-in detectors register themselves on import, in this order (`concepts()`).
from musicrfm.evaluation.detectors.notes import detect_note

# isort: split
from musicrfm.evaluation.detectors.chords import (
    CHORD_INTERVALS,
    CHORD_QUALITIES,
    NO_CHORD,
    chord_templates,
    detect_chord,
)

# isort: split
from musicrfm.evaluation.detectors.intervals import detect_interval

# isort: split
from musicrfm.evaluation.detectors.tempo import (
    MIN_PULSE_ONSETS,
    NO_PULSE,
    OCTAVE_FACTORS,
    detect_tempo,
    tempo_match,
)

# isort: split
from musicrfm.evaluation.detectors.lead import LEAD_BACKENDS, detect_lead, lead_track

# isort: split
from musicrfm.evaluation.detectors.keys import KEY_NAMES, NO_KEY, detect_key, detect_scale

# isort: split
from musicrfm.evaluation.detectors.meters import METER_LABELS, detect_meter

# isort: split
from musicrfm.evaluation.detectors.progressions import detect_progression

# isort: split
from musicrfm.evaluation.detectors.base import (
    SILENT,
    Detection,
    check_silence,
    normalize_pitch_class,
)
from musicrfm.evaluation.detectors.registry import (
    DETECTORS,
    Detector,
    concept_name,
    concepts,
    detect,
    detect_file,
    find_detector,
    get_detector,
    label_matches,
    register_detector,
    score,
    score_detection,
    target_index,
    unregister_detector,
)
from musicrfm.evaluation.frontend import (
    HOP,
    SAMPLE_RATE,
    CQTPeakTracker,
    PitchTrack,
    PitchTracker,
    PyinTracker,
    TorchcrepeTracker,
    chromagram,
    cqt36,
    frame_db,
    get_pitch_tracker,
    load_audio,
    prepare_audio,
    register_pitch_tracker,
    rms_db,
)
from musicrfm.evaluation.signals import click_track, harmonic_tone, note_sequence
from musicrfm.theory import PITCH_CLASSES

CONCEPTS = concepts()
"""The built-in detectors' concepts; :func:`concepts` also lists detectors registered later."""

__all__ = [
    "CHORD_INTERVALS",
    "CHORD_QUALITIES",
    "CONCEPTS",
    "DETECTORS",
    "HOP",
    "KEY_NAMES",
    "LEAD_BACKENDS",
    "METER_LABELS",
    "NO_KEY",
    "NO_CHORD",
    "MIN_PULSE_ONSETS",
    "NO_PULSE",
    "OCTAVE_FACTORS",
    "PITCH_CLASSES",
    "SAMPLE_RATE",
    "SILENT",
    "CQTPeakTracker",
    "Detection",
    "Detector",
    "PitchTrack",
    "PitchTracker",
    "PyinTracker",
    "TorchcrepeTracker",
    "check_silence",
    "chord_templates",
    "chromagram",
    "click_track",
    "concept_name",
    "concepts",
    "cqt36",
    "detect",
    "detect_chord",
    "detect_file",
    "detect_interval",
    "detect_key",
    "detect_lead",
    "detect_meter",
    "detect_progression",
    "detect_scale",
    "detect_note",
    "detect_tempo",
    "find_detector",
    "frame_db",
    "get_detector",
    "get_pitch_tracker",
    "harmonic_tone",
    "label_matches",
    "lead_track",
    "load_audio",
    "note_sequence",
    "normalize_pitch_class",
    "prepare_audio",
    "register_detector",
    "register_pitch_tracker",
    "rms_db",
    "score",
    "score_detection",
    "target_index",
    "tempo_match",
    "unregister_detector",
]
