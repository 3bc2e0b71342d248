"""`musicrfm reproduce`: the paper's protocol (``protocol.toml``) run end to end on a model.

- :mod:`.protocol` -- the protocol file: every value with the paper section it comes from;
- :mod:`.plan` -- options, sample sizes under ``--scale``, the steering sweeps, the plan and its
  measured-cost estimate;
- :mod:`.run` -- the stages (synthesise, extract, train, Table 1, sweeps), resumable;
- :mod:`.tables` -- the paper's tables, ours beside the paper's numbers (Markdown + JSON).
"""

from __future__ import annotations

from musicrfm.experiments.reproduce.plan import (
    DEFAULT_TABLES,
    Plan,
    ReproduceOptions,
    build_plan,
    parse_tables,
)
from musicrfm.experiments.reproduce.protocol import Protocol, load_protocol
from musicrfm.experiments.reproduce.run import (
    Prepared,
    ReproduceResult,
    prepare_reproduce,
    run_reproduce,
)

__all__ = [
    "DEFAULT_TABLES",
    "Plan",
    "Prepared",
    "Protocol",
    "ReproduceOptions",
    "ReproduceResult",
    "build_plan",
    "load_protocol",
    "parse_tables",
    "prepare_reproduce",
    "run_reproduce",
]
