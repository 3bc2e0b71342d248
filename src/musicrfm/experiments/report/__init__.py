"""Reports from a results table: CSV + Markdown tables, figures, and an HTML page with audio.

The input is one row per generated clip. Columns used (others are carried along):

``condition``  what was applied: "concept", "unsteered", "random", "sign_flip", "orthogonal", ...
``concept``    notes / chords / intervals / tempos
``target``     the class steered toward
``coef``       the steering strength eta0
``seed``       generation seed
``label``      the detector's label; ``confidence`` its confidence
``correct``    optional; computed from label/target with :func:`detectors.label_matches` if absent
``audio_path`` optional; enables audio players, spectrogram/chroma panels and traces

- :mod:`.tables` -- accuracy and control tables (CSV + Markdown) and the specificity sentence;
- :mod:`.figures` -- accuracy vs η0, detector traces, spectrogram/chroma panels;
- :mod:`.page` -- the HTML page (:func:`write_html`) and :func:`build_report`, which writes all
  of it for a results table.

Every accuracy carries a bootstrap 95% CI and its n. Figures use matplotlib's object API
(no pyplot state), so building reports is safe in any process.
"""

from musicrfm.experiments.report.figures import plot_accuracy_vs_coef, plot_audio_panels, plot_trace
from musicrfm.experiments.report.page import build_report, write_html
from musicrfm.experiments.report.tables import (
    accuracy_table,
    compare_conditions,
    specificity_statement,
    to_markdown,
    with_correct,
    write_table,
)

__all__ = [
    "accuracy_table",
    "build_report",
    "compare_conditions",
    "plot_accuracy_vs_coef",
    "plot_audio_panels",
    "plot_trace",
    "specificity_statement",
    "to_markdown",
    "with_correct",
    "write_html",
    "write_table",
]
