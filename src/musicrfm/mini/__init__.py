"""Stage 8, mini: the recipe that trains the bundled models and measures them.

- :mod:`.data` -- the recipe's clip variants (two-note and melody copies) and the held-out split
  (the clips themselves: :mod:`musicrfm.synth.notes`);
- :mod:`.text` -- the small byte-level text encoder;
- :mod:`.config` -- `TrainConfig`, the recipe's settings (recorded with every model);
- :mod:`.codes` -- the clip grid, the codec fit and the codes (training stages 1-3);
- :mod:`.model` -- the MusicGen architecture the recipe builds and its loss;
- :mod:`.train` -- the training loop (seeded, resumable); :mod:`.export` checkpoints and export;
- :mod:`.gates` -- the quality gates and :mod:`.card` the model card.

The codecs the models need at load time live in :mod:`musicrfm.models.codecs`, and the steering
headline (an experiment that runs on any model) in :mod:`musicrfm.experiments.headline`.
"""
