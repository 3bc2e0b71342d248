"""Concept directions: unit vectors per layer and class, with the scores and metadata to use them.

Saved as `<name>.safetensors` + `<name>.json` (never pickle). Layers are numbered 0..L-1 from
the bottom: vectors for layer i are added to the output of decoder block i.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from musicrfm.errors import CompatibilityError, ConfigError

LAYER_CONVENTION = "decoder_block_output_0_based"
FORMAT_VERSION = 1


@dataclass
class ConceptDirections:
    """Directions for one concept.

    vectors: (num_layers, num_classes, k, hidden_size) unit vectors, component 0 = top eigenvector.
    eigenvalues: (num_layers, num_classes, k) AGOP eigenvalues, descending along k.
    scores: (num_layers, num_classes) per-layer validation score, higher is better
        (AUC for classification, R^2 for regression); drives layer weighting.
    classes: class names (e.g. "C", "C#", ...); regression concepts use ["value"].
    layers: the model layer index of each entry along the first axis (0-based).
    meta: model_id, num_layers (of the model), hidden_size, layer_convention, pooling, prompt,
        score_name, hyper-parameters, library version, ...
    """

    concept: str
    classes: list[str]
    vectors: torch.Tensor
    scores: torch.Tensor
    layers: list[int]
    eigenvalues: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 4:
            raise ConfigError(
                "vectors must be (layers, classes, components, hidden); "
                f"got shape {tuple(self.vectors.shape)}"
            )
        n_layers, n_classes = self.vectors.shape[:2]
        if len(self.layers) != n_layers:
            raise ConfigError(f"{len(self.layers)} layer indices for {n_layers} layers of vectors")
        if len(self.classes) != n_classes:
            raise ConfigError(f"{len(self.classes)} class names for {n_classes} classes of vectors")
        if tuple(self.scores.shape) != (n_layers, n_classes):
            raise ConfigError(
                f"scores must be ({n_layers}, {n_classes}); got {tuple(self.scores.shape)}"
            )
        self.layers = [int(i) for i in self.layers]
        self.classes = [str(c) for c in self.classes]

    @property
    def hidden_size(self) -> int:
        return int(self.vectors.shape[-1])

    @property
    def num_components(self) -> int:
        return int(self.vectors.shape[2])

    def class_index(self, name: str) -> int:
        """Position of a class, with an error listing the valid names."""
        try:
            return self.classes.index(str(name))
        except ValueError:
            raise ConfigError(
                f"unknown class {name!r} for concept {self.concept!r}; valid: {', '.join(self.classes)}"
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write `path.safetensors` and `path.json` (path may be given with or without suffix)."""
        base = Path(path)
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "vectors": self.vectors.contiguous().float(),
            "scores": self.scores.contiguous().float(),
        }
        if self.eigenvalues is not None:
            tensors["eigenvalues"] = self.eigenvalues.contiguous().float()
        tmp = base.with_name(base.name + ".safetensors.tmp")
        save_file(tensors, str(tmp))
        tmp.replace(base.with_name(base.name + ".safetensors"))
        header = {
            "format_version": FORMAT_VERSION,
            "concept": self.concept,
            "classes": self.classes,
            "layers": self.layers,
            "layer_convention": LAYER_CONVENTION,
            "meta": self.meta,
        }
        base.with_name(base.name + ".json").write_text(json.dumps(header, indent=2, default=str))
        return base

    @classmethod
    def load(cls, path: str | Path) -> ConceptDirections:
        base = Path(path)
        if base.is_dir():
            found = sorted(base.glob("*.safetensors"))
            if len(found) != 1:
                raise ConfigError(f"{base} holds {len(found)} direction files; name one of them")
            base = found[0]
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        st, js = base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")
        if not st.exists() or not js.exists():
            raise ConfigError(
                f"direction files not found: need {st.name} and {js.name} in {st.parent}"
            )
        header = json.loads(js.read_text())
        if header.get("layer_convention") != LAYER_CONVENTION:
            raise CompatibilityError(
                f"{js} uses layer convention {header.get('layer_convention')!r}, expected {LAYER_CONVENTION!r}"
            )
        tensors = load_file(str(st))
        return cls(
            concept=header["concept"],
            classes=header["classes"],
            vectors=tensors["vectors"],
            scores=tensors["scores"],
            layers=header["layers"],
            eigenvalues=tensors.get("eigenvalues"),
            meta=header.get("meta", {}),
        )
