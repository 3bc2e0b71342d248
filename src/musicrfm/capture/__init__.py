"""Stage 3, capture: audio in, per-layer activations out, exactly as generation computes them.

- :mod:`.audio` -- reading and checking audio files (mono, resampled, peak-normalised);
- :mod:`.clips` -- `read_clip_table`: a dataset folder, manifest or DataFrame -> labelled clips;
- :mod:`.options` -- `CaptureOptions`: pooling, prompt, batching, length limits (no torch);
- :mod:`.decoder` -- `capture_codes`: one decoder pass with BOS and delay pattern, every block's
  output pooled over the valid frames;
- :mod:`.runner` -- the capture loop: batches by length, shards, skipped files, resuming;
- :mod:`.extract` -- `extract_features`: the entry point (clip table + cache key + runner);
- :mod:`.features` -- `FeatureSet`, what capture hands to the probes (and its files on disk);
- :mod:`.cache` -- the content-addressed feature cache (and its in-memory stand-in).
- :mod:`.distributed` -- rank and world size from `accelerate launch` / `torchrun` and the few
  collectives extraction, probe training and sweeps share their work with (no torch on import).
"""
