"""Metrics: target accuracy with bootstrap CIs, Fréchet distance, MMD, CLAP similarity.

Every number that goes into a table or a figure should be an :class:`Estimate` (value, 95%
interval, n), so the report can always say how many generations are behind it.

Embedding back-ends for FD/MMD are pluggable (:class:`EmbeddingBackend`): anything with
``embed(audios, sr) -> (n, d) array``. The default, when a model is at hand, is MusicGen pooled
activations (:class:`musicrfm.evaluation.activations.ActivationEmbedding`, middle decoder layer);
:class:`MFCCEmbedding` needs no weights. :func:`make_embedding` picks one by name.

One module per kind: :mod:`.stats` (estimates, bootstrap and score intervals, accuracy tables),
:mod:`.distances` (FD, MMD), :mod:`.embeddings` (FD/MMD back-ends), :mod:`.clap`.
"""

from __future__ import annotations

from musicrfm.evaluation.metrics.clap import ClapScorer, clap_similarity
from musicrfm.evaluation.metrics.distances import (
    bootstrap_distance,
    frechet_distance,
    median_bandwidth,
    mmd_rbf,
)
from musicrfm.evaluation.metrics.embeddings import EmbeddingBackend, MFCCEmbedding, make_embedding
from musicrfm.evaluation.metrics.stats import (
    Estimate,
    bootstrap_ci,
    bootstrap_difference,
    grouped_accuracy,
    proportion_difference,
    target_accuracy,
    wilson_interval,
)

__all__ = [
    "ClapScorer",
    "EmbeddingBackend",
    "Estimate",
    "MFCCEmbedding",
    "bootstrap_ci",
    "bootstrap_difference",
    "bootstrap_distance",
    "clap_similarity",
    "frechet_distance",
    "grouped_accuracy",
    "make_embedding",
    "median_bandwidth",
    "mmd_rbf",
    "proportion_difference",
    "target_accuracy",
    "wilson_interval",
]
