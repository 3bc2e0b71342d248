"""Steering over time, measured: each of the paper's five schedules (linear rise, linear decay,
exponential decay, logistic rise, sine) applied to one note direction over a whole clip, judged
by the note detector's per-window trace (the correlation of the target's probability with
φ(t)), and a note→note crossfade judged by the note heard in the first and last third.

- :mod:`.config` -- :class:`SchedulesConfig` and the schedules stretched over one clip;
- :mod:`.scoring` -- φ at the detector's windows, correlations, verdicts (pure functions);
- :mod:`.tables`, :mod:`.figures` -- the Markdown tables and the trace figure;
- :mod:`.run` -- :func:`run_schedules`, which measures it all and writes the report folder.
"""

from musicrfm.experiments.schedules.config import SCHEDULES, SchedulesConfig, paper_schedules
from musicrfm.experiments.schedules.run import run_schedules

__all__ = ["SCHEDULES", "SchedulesConfig", "paper_schedules", "run_schedules"]
