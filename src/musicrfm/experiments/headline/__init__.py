"""The steering headline, measured for every pitch class with controls, adherence and CIs.

For each of the 12 pitch classes the note direction (trained exactly as in the demo) is applied
at a grid of η0, and the smallest η0 that reaches the gate (else the best) is chosen; random and
orthogonal directions at equal norm and the sign-flipped direction are then applied at that η0;
all on the same prompts and seeds as one unsteered baseline. (The choice uses the same clips
that report the hit rate: with a grid of a few η0 the optimism this adds is small, and the
controls are run at the chosen η0 after it is fixed.) The
independent note detector labels every clip and the offline timbre classifier checks that the
prompted instrument is still heard. Criteria (issue 7):

* the hit rate reaches ``accuracy_gate`` (0.8) at some η0, for every pitch class;
* prompt adherence at those η0 stays within ``adherence_tolerance`` (0.02) of unsteered
  (pooled over the targets; the CI of the difference is reported too);
* random and orthogonal hit rates are indistinguishable from the baseline's for that pitch class
  (95% CI of the difference contains zero; whether the rate lies inside the baseline's own CI,
  the literal reading, is reported beside it);
* the sign-flipped direction lowers the detector's probability of the target below the
  baseline's: for every pitch class the mean is lower, and pooled over the pitch classes the
  whole 95% CI of the difference is below zero. Whether each pitch class's own CI is below zero
  is reported beside it, but is not asked of every one, because it cannot always be had: the
  unsteered model plays some notes in 2-3% of clips (a floor the flip cannot go far below: 0/96
  flip hits against 5/192 baseline hits is a one-sided Fisher p of 0.13), and the chroma
  detector credits a note with the overtones of others (E gets 0.3-0.4 of a clip on A or C,
  where E's flip sends the model). The flip still gets more clips than the other controls
  (``flip_clips``), so that the per-class CIs mean something.

The modules, in the order a run uses them:

- :mod:`.config` -- :class:`HeadlineConfig` and the generation jobs of both phases;
- :mod:`.tables` -- the per-target table, the verdict and their Markdown;
- :mod:`.figures` -- the bar chart per pitch class and the hit-rate / adherence trade-off;
- :mod:`.run` -- :func:`run_headline`, which measures it all and writes the report folder.
"""

from musicrfm.experiments.headline.config import HeadlineConfig
from musicrfm.experiments.headline.run import run_headline
from musicrfm.experiments.headline.tables import headline_table, tradeoff_table, verdict_lines

__all__ = ["HeadlineConfig", "headline_table", "run_headline", "tradeoff_table", "verdict_lines"]
