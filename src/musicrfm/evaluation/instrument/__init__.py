"""Offline prompt-adherence proxy: an instrument/timbre classifier trained on the synthetic set.

CLAP needs a checkpoint that cannot be downloaded here; this classifier needs nothing but the
synthetic dataset. It answers "does the prompted instrument survive steering?": train it on
rendered clips (labels: GM ``instrument_family`` by default, or ``program_name``), then compare
its prediction on steered and unsteered generations with the instrument named in the prompt
(:func:`instrument_from_prompt`).

Model: standardised timbre statistics (MFCCs and deltas, spectral centroid/bandwidth/roll-off/
flatness/contrast, zero-crossing rate; :data:`FEATURE_NAMES`) into a multinomial logistic
regression (``model="logistic"``, default) or a small ReLU MLP (``model="mlp"``); scikit-learn
is used for fitting only. Saved as plain arrays in ``.safetensors`` plus a JSON
sidecar -- no pickle -- and predicted with numpy alone.

Modules: :mod:`.features` (the timbre statistics), :mod:`.classifier` (the fitted model, its
files), :mod:`.training` (fitting; the one implementation), :mod:`.prompts` (prompt adherence).
"""

from __future__ import annotations

from musicrfm.evaluation.instrument.classifier import FORMAT, InstrumentClassifier
from musicrfm.evaluation.instrument.features import FEATURE_NAMES, N_MFCC, instrument_features
from musicrfm.evaluation.instrument.prompts import (
    PROMPT_WORDS,
    instrument_from_prompt,
    prompt_adherence,
)
from musicrfm.evaluation.instrument.training import (
    fit_instrument_classifier,
    train_instrument_classifier,
)

__all__ = [
    "FEATURE_NAMES",
    "FORMAT",
    "N_MFCC",
    "PROMPT_WORDS",
    "InstrumentClassifier",
    "fit_instrument_classifier",
    "instrument_features",
    "instrument_from_prompt",
    "prompt_adherence",
    "train_instrument_classifier",
]
