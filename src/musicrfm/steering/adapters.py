"""The model steering talks to: a `musicrfm.models.adapter.ModelAdapter`.

Steering, compilation and generation use the adapter Protocol only (decoder_layers, decoder_base,
num_layers, hidden_size, frame_rate, max_delay, info, ...). A bare transformers
``MusicgenForConditionalGeneration`` / ``MusicgenMelodyForConditionalGeneration`` is wrapped in a
`musicrfm.models.MusicGenAdapter` (which puts it in eval mode); anything else is a ModelError.
"""

from __future__ import annotations

from torch import nn

from musicrfm.errors import ModelError
from musicrfm.models.adapter import ModelAdapter


def as_adapter(model: ModelAdapter | nn.Module) -> ModelAdapter:
    """``model`` itself when it is a ModelAdapter, else a MusicGenAdapter around a bare model."""
    if isinstance(model, ModelAdapter):
        return model
    from transformers import (
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    from musicrfm.models import MusicGenAdapter

    if isinstance(
        model, (MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration)
    ):
        cfg = model.config
        model_id = getattr(cfg, "_name_or_path", None) or getattr(model, "name_or_path", None)
        return MusicGenAdapter(model, model_id=str(model_id or ""))
    raise ModelError(
        f"cannot steer a {type(model).__name__}: pass a model adapter (musicrfm.models.load_model "
        "/ random_model / MusicGenAdapter) or a full MusicgenForConditionalGeneration / "
        "MusicgenMelodyForConditionalGeneration (a decoder alone, e.g. MusicgenForCausalLM, "
        "has no text encoder or codec to generate with)"
    )
