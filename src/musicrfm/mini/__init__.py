"""Stage 8, mini: the recipe that trains the bundled models and measures them.

- :mod:`.data` -- the clips the recipe renders (instruments, registers, rhythms, captions);
- :mod:`.text` -- the small byte-level text encoder;
- :mod:`.train` -- training (seeded, resumable) and export;
- :mod:`.gates` -- the quality gates and :mod:`.card` the model card.

The codecs the models need at load time live in :mod:`musicrfm.models.codecs`, and the steering
headline (an experiment that runs on any model) in :mod:`musicrfm.experiments.headline`.
"""
