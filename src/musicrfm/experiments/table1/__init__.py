"""The paper's classification table (Table 1) measured on any model: `musicrfm table1`.

For every concept: synthesise its clips (the project's SynTheory-equivalent generator, at the
model's sample rate), extract every layer's features twice (mean pooling, the paper's default,
and last-token pooling, its ablation), train the RFM probes on each (``train_directions``), and
the baselines on the mean-pooled features (``compare_probes``: ridge, logistic, difference of
means, 2-layer MLP) on exactly the same rows and splits. A cell of the table is a method's test
score at the layer its validation score picks (``tables.table_from_scores``): multiclass accuracy,
R^2 for tempo. Datasets, features and per-concept scores are cached in the work folder, so an
interrupted run resumes where it stopped.

Modules: :mod:`.config` (``Table1Config``, the layout, the paper's numbers), :mod:`.run`
(``run_table1`` and its stages), :mod:`.table` (the cells), :mod:`.report` (the files).
"""

from __future__ import annotations

from musicrfm.experiments.table1.config import (
    CONCEPT_ORDER,
    PAPER_TABLE1,
    ROWS,
    Table1Config,
    parse_concept_list,
)
from musicrfm.experiments.table1.report import table_markdown, write_report
from musicrfm.experiments.table1.run import Table1Result, run_table1
from musicrfm.experiments.table1.table import accuracy_intervals, build_table1, chosen_layers

__all__ = [
    "CONCEPT_ORDER",
    "PAPER_TABLE1",
    "ROWS",
    "Table1Config",
    "Table1Result",
    "accuracy_intervals",
    "build_table1",
    "chosen_layers",
    "parse_concept_list",
    "run_table1",
    "table_markdown",
    "write_report",
]
