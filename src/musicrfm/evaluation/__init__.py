"""Evaluation that a sceptical reviewer accepts: measuring tools only (detectors, judges, metrics).

Nothing here imports from :mod:`musicrfm.experiments` or later stages. Modules (import what you
need; heavy dependencies load lazily):

- :mod:`.detectors` -- pitch class, chord quality/root, interval and tempo detectors that do not
  use MusicGen, one module per concept, each a registered :class:`~.detectors.Detector` record
  (:mod:`.detectors.registry`); each returns a :class:`~.detectors.Detection` (label,
  confidence, time trace). ``detectors.score(audio, sr, concept, target)`` gives one
  results-table row.
- :mod:`.frontend` -- audio loading/resampling, CQT/chroma and pluggable pitch trackers.
- :mod:`.signals` -- reference signals with known content (tones, chords, click tracks).
- :mod:`.validation` -- the detector-accuracy table on a labelled (synthetic) dataset.
- :mod:`.metrics` -- accuracy with bootstrap CIs, Fréchet distance, MMD, embeddings, CLAP.
- :mod:`.activations` -- MusicGen pooled activations as an FD/MMD embedding; probe traces.
- :mod:`.instrument` -- the offline prompt-adherence proxy (instrument/timbre classifier).
- :mod:`.judges` -- the saved reference timbre judge, built on :mod:`.instrument`.
"""
