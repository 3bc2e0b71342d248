"""Fixtures shared by the steering tests: the tiny random MusicGen and three unit note
directions for it (modules that need other ones define their own, which take precedence)."""

from __future__ import annotations

import pytest
import torch

from musicrfm.probes.directions import ConceptDirections


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


@pytest.fixture(scope="module")
def dirs(adapter) -> ConceptDirections:
    g = torch.Generator().manual_seed(1)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 3, 1, d, generator=g)
    return ConceptDirections(
        "notes", ["C", "D", "E"], v / v.norm(dim=-1, keepdim=True), torch.rand(L, 3, generator=g),
        list(range(L)), meta={"model_id": adapter.model_id, "num_layers": L, "hidden_size": d},
    )  # fmt: skip
