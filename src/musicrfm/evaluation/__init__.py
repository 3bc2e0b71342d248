"""Evaluation that a sceptical reviewer accepts: independent detectors, metrics, reports.

Modules (import what you need; heavy dependencies load lazily):

- :mod:`.detectors` -- pitch class, chord quality/root, interval and tempo detectors that do not
  use MusicGen; each returns a :class:`~.detectors.Detection` (label, confidence, time trace).
  ``detectors.score(audio, sr, concept, target)`` gives one results-table row.
- :mod:`.frontend` -- audio loading/resampling, CQT/chroma and pluggable pitch trackers.
- :mod:`.signals` -- reference signals with known content (tones, chords, click tracks).
- :mod:`.validation` -- the detector-accuracy table on a labelled (synthetic) dataset.
- :mod:`.metrics` -- accuracy with bootstrap CIs, Fréchet distance, MMD, CLAP similarity.
- :mod:`.instrument` -- the offline prompt-adherence proxy (instrument/timbre classifier).
- :mod:`.report` -- CSV/Markdown tables, figures and an HTML page with audio players.
"""
