"""CLAP text-audio similarity from a local laion-clap checkpoint (never downloaded)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import AudioError, ConfigError, ModelError


class ClapScorer:
    """CLAP text-audio cosine similarity from a local laion-clap checkpoint.

    The checkpoint is never downloaded: pass the path of a ``.pt`` file (e.g.
    ``music_audioset_epoch_15_esc_90.14.pt``). Raises ConfigError when no path is given or the
    file does not exist, and ModelError when ``laion_clap`` is not installed (``pip install
    laion-clap``). ``backend`` may be any object with ``embed_audio(list of 48 kHz mono arrays)``
    and ``embed_text(list of str)`` returning (n, d) arrays, which replaces laion-clap.
    """

    SAMPLE_RATE = 48000

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        amodel: str = "HTSAT-base",
        enable_fusion: bool = False,
        device: str = "cpu",
        backend: Any = None,
    ) -> None:
        if backend is not None:
            self._backend = backend
            return
        if checkpoint is None or str(checkpoint) == "":
            raise ConfigError(
                "CLAP similarity needs a local checkpoint: pass --clap-checkpoint PATH "
                "(a laion-clap .pt file; nothing is downloaded)"
            )
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ConfigError(f"CLAP checkpoint not found: {path}")
        try:
            import laion_clap
        except ImportError as exc:
            raise ModelError(
                "CLAP similarity needs the laion_clap package (`pip install laion-clap`); "
                "it is an optional dependency and is not installed"
            ) from exc
        try:
            model = laion_clap.CLAP_Module(
                enable_fusion=enable_fusion, amodel=amodel, device=device
            )
            model.load_ckpt(str(path))
        except Exception as exc:  # checkpoint/architecture mismatch surfaces as many types
            raise ModelError(f"cannot load CLAP checkpoint {path}: {exc}") from exc
        self._backend = _LaionBackend(model)

    def similarity(self, audios: Sequence[Any], sr: int, texts: Sequence[str] | str) -> np.ndarray:
        """Cosine similarity of each clip with its text (one text broadcasts to all clips)."""
        from musicrfm.evaluation.frontend import prepare_audio

        if isinstance(texts, str):
            texts = [texts] * len(audios)
        if len(texts) != len(audios):
            raise ConfigError(f"{len(audios)} clips but {len(texts)} texts")
        if not len(audios):
            return np.zeros(0)
        clips = [prepare_audio(a, sr, target_sr=self.SAMPLE_RATE) for a in audios]
        if any(np.sqrt(np.mean(c.astype(np.float64) ** 2)) == 0 for c in clips):
            raise AudioError("CLAP similarity got a digitally silent clip")
        a = np.asarray(self._backend.embed_audio(clips), dtype=np.float64)
        t = np.asarray(self._backend.embed_text(list(texts)), dtype=np.float64)
        a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-12
        t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
        return (a * t).sum(axis=1)


class _LaionBackend:
    def __init__(self, model: Any) -> None:
        self.model = model

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        length = max(len(c) for c in clips)
        batch = np.stack([np.pad(c, (0, length - len(c))) for c in clips])
        return np.asarray(self.model.get_audio_embedding_from_data(x=batch, use_tensor=False))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.get_text_embedding(texts, use_tensor=False))


def clap_similarity(
    audios: Sequence[Any], sr: int, texts: Sequence[str] | str, *, checkpoint: str | Path | None
) -> np.ndarray:
    """One-shot :class:`ClapScorer` similarity (loads the checkpoint each call)."""
    return ClapScorer(checkpoint).similarity(audios, sr, texts)
