"""Stage 3, capture: audio in, per-layer activations out, exactly as generation computes them.

- :mod:`.audio` -- reading and checking audio files (mono, resampled, peak-normalised);
- :mod:`.extract` -- `extract_features`: one decoder pass per batch with BOS and delay pattern,
  every block's output pooled over the valid frames;
- :mod:`.features` -- `FeatureSet`, what capture hands to the probes (and its files on disk);
- :mod:`.cache` -- the content-addressed feature cache.
"""
