"""`musicrfm sweep`: concepts x targets x η0 x prompts x seeds, with controls and ablations.

- :mod:`.config` -- the sweep file (TOML) and its checks;
- :mod:`.grid` -- the conditions a config expands to;
- :mod:`.assets` -- features and directions per concept (trained or loaded);
- :mod:`.run` -- generation of every condition, resumable;
- :mod:`.scoring` -- detectors, probe accuracy, embeddings per clip;
- :mod:`.tables` -- the paper's tables (with Fréchet distance, MMD, CLAP);
- :mod:`.figures` -- CI bands, traces and per-layer scores;
- :mod:`.report` -- the HTML page that puts them together.
"""
