"""Embedding back-ends for FD/MMD: anything with ``embed(audios, sr) -> (n, d) array``.

The default, when a model is at hand, is MusicGen pooled activations
(:class:`musicrfm.evaluation.activations.ActivationEmbedding`, middle decoder layer);
:class:`MFCCEmbedding` needs no weights. :func:`make_embedding` picks one by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from musicrfm.errors import ConfigError

if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


class EmbeddingBackend(Protocol):
    """Turns audio clips into fixed-size vectors for FD/MMD."""

    name: str

    def embed(self, audios: Sequence[Any], sr: int) -> np.ndarray: ...


@dataclass
class MFCCEmbedding:
    """Mean and standard deviation of 20 MFCCs and their deltas (80 dims). Offline, no weights."""

    n_mfcc: int = 20
    name: str = "mfcc"

    def embed(self, audios: Sequence[Any], sr: int) -> np.ndarray:
        import librosa

        from musicrfm.evaluation.frontend import SAMPLE_RATE, prepare_audio

        out = []
        for audio in audios:
            y = prepare_audio(audio, sr)
            m = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=self.n_mfcc)
            frames = m.shape[1]
            width = min(9, frames if frames % 2 else frames - 1)
            d = librosa.feature.delta(m, width=width) if width >= 3 else np.zeros_like(m)
            out.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
        return np.stack(out) if out else np.zeros((0, 4 * self.n_mfcc))


def make_embedding(
    spec: str | None = None, adapter: ModelAdapter | None = None
) -> EmbeddingBackend:
    """The FD/MMD back-end named by ``spec``: ``"mfcc"``, ``"activations"`` (MusicGen pooled
    activations of ``adapter``, middle layer) or ``"activations:<layer>"``. The default (None or
    ``""``) is the activations back-end when a model is at hand, MFCC otherwise."""
    name = (spec or ("activations" if adapter is not None else "mfcc")).strip().lower()
    if name == "mfcc":
        return MFCCEmbedding()
    kind, _, layer = name.partition(":")
    if kind == "activations":
        if adapter is None:
            raise ConfigError("the 'activations' embedding needs a loaded model")
        from musicrfm.evaluation.activations import ActivationEmbedding

        try:
            return ActivationEmbedding(adapter, layer=int(layer) if layer else None)
        except ValueError:
            raise ConfigError(f"bad embedding layer in {spec!r}; use activations:<int>") from None
    raise ConfigError(f"unknown embedding {spec!r}; use mfcc, activations or activations:<layer>")
