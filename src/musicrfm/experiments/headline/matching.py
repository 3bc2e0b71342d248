"""Whether a clip hit its target, as the concept's detector judges it (one rule for the
choice of η0, the tables and the verdict)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def hits(frame: pd.DataFrame, target: str, concept: str = "notes") -> np.ndarray:
    """1.0 where the detector's label hits ``target`` (as the concept's detector matches it:
    pitch classes for notes, qualities for chords, sizes for intervals), else 0.0."""
    from musicrfm.evaluation import detectors as det

    return np.asarray(
        [float(det.label_matches(concept, str(label), target)) for label in frame["label"]]
    )


def prob_column(concept: str, target: str) -> int | None:
    """Where ``target`` sits in the detector's probability vector (None: no distribution, as
    for intervals; then the flip is judged by its hit rate alone)."""
    from musicrfm.evaluation import detectors as det

    labels = det.get_detector(concept).labels
    return det.target_index(concept, labels, target) if labels else None
