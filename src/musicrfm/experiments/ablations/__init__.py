"""The paper's ablations (Tables 8, 9, 10) and its optimum plan against this project's default at
matched hit rate, read from finished sweep folders (`musicrfm sweep`; configs under
``experiments/ablations/``).

The sweep runs the clips and writes its own bootstrap tables; this package adds what the sweep
cannot express: Wilson 95% intervals for hit rates in the paper's layout, the exact layer
weights each variant steers with, and the comparison of two plans at the η0 where each reaches
the same hit rate (:mod:`musicrfm.experiments.headline.matching`).

- :mod:`.tables` -- the per-variant tables and the matched-hit-rate table;
- :mod:`.report` -- :func:`write_ablations_report`, the report folder (JSON, CSV, Markdown, a
  figure).
"""

from musicrfm.experiments.ablations.report import write_ablations_report
from musicrfm.experiments.ablations.tables import ablation_table, cell_row, matched_table

__all__ = ["ablation_table", "cell_row", "matched_table", "write_ablations_report"]
