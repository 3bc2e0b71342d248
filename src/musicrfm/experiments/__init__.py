"""Stage 7, experiments: whole-pipeline runs that produce results and reports.

- :mod:`.controls` -- causal control directions at equal norm (random, sign-flipped, orthogonal,
  other class);
- :mod:`.report` -- tables, figures and HTML pages with audio players;
- :mod:`.demo` -- `musicrfm demo`: the method end to end on the bundled model in minutes;
- :mod:`.headline` -- steering toward every pitch class with controls and CIs;
- :mod:`.sweep` -- configurable sweeps (concepts x targets x η0 x ablations) and their reports.
"""
