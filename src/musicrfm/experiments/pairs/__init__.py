"""Two concepts at once, measured: plans of two directions trained separately (each with its
own η0, schedule and gate), judged by the concepts' detectors for joint success (both right in
the same clip), cross-talk (one steered alone, the other against unsteered), the controls
(random / orthogonal at equal norm, sign flip) and a conflict case (two targets of one concept
at once: what the clips are heard as, what the plan validator says). A part may steer tempo
('faster' / 'slower' with the tempo headline's signed direction; right when the detected BPM is
past 1.2x / 0.8x the unsteered median); the conflict case stays note/chord-only.

- :mod:`.config` -- :class:`PartSpec`, :class:`PairsConfig`;
- :mod:`.scoring` -- hits, joint rates, cross-talk, controls, conflict outcomes (pure);
- :mod:`.tables`, :mod:`.figures` -- the Markdown tables and the figure;
- :mod:`.run` -- :func:`run_pairs`, which measures it all and writes the report folder.
"""

from musicrfm.experiments.pairs.config import PairsConfig, PartSpec, parse_pair
from musicrfm.experiments.pairs.run import run_pairs

__all__ = ["PairsConfig", "PartSpec", "parse_pair", "run_pairs"]
