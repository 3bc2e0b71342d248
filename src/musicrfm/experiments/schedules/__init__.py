"""Steering over time, measured: each of the paper's five schedules (linear rise, linear decay,
exponential decay, logistic rise, sine) applied to one direction (a note, a chord quality or an
interval) over a whole clip, judged by that concept's per-window trace (the correlation of the
target's probability with φ(t)), and an A→B crossfade (an interval glide for intervals) judged by
the class heard in the first and last third.

- :mod:`.readers` -- each concept's classes, spellings and per-window trace;
- :mod:`.config` -- :class:`SchedulesConfig` and the schedules stretched over one clip;
- :mod:`.scoring` -- φ at the detector's windows, correlations, verdicts (pure functions);
- :mod:`.tables`, :mod:`.figures` -- the Markdown tables and the trace figure;
- :mod:`.run` -- :func:`run_schedules`, which measures it all and writes the report folder.
"""

from musicrfm.experiments.schedules.config import SCHEDULES, SchedulesConfig, paper_schedules
from musicrfm.experiments.schedules.run import run_schedules

__all__ = ["SCHEDULES", "SchedulesConfig", "paper_schedules", "run_schedules"]
