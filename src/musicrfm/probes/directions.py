"""Concept directions: unit vectors per layer and class, with the scores and metadata to use them.

Saved as `<name>.safetensors` + `<name>.json` (never pickle); `save_pretrained` /
`from_pretrained` / `push_to_hub` write, read and upload a bundle folder or hub repo with a
model card (:mod:`musicrfm.probes.pretrained`). Layers are numbered 0..L-1 from the bottom:
vectors for layer i are added to the output of decoder block i.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.files import save_tensors_atomic, write_text_atomic
from musicrfm.spelling import class_spellings

log = logging.getLogger(__name__)

LAYER_CONVENTION = "decoder_block_output_0_based"
# Targets of a regression direction (tempo): which way to push the label (the sign of η0).
CHANGE_WORDS = {
    "faster": 1.0,
    "up": 1.0,
    "higher": 1.0,
    "slower": -1.0,
    "down": -1.0,
    "lower": -1.0,
}
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

    @property
    def is_regression(self) -> bool:
        """One direction toward higher values of a numeric label (tempo), not one per class."""
        return self.meta.get("task") == "regression" or list(self.classes) == ["value"]

    def class_index(self, name: str) -> int:
        """Position of a class as users write it (``Db`` for ``C#``, ``Cm`` or ``min`` for
        ``minor``, ``5`` or ``perfect fourth`` for ``P4``; ``faster``/``slower`` for a
        regression's one direction), with an error listing the valid names."""
        if str(name) in self.classes:
            return self.classes.index(str(name))
        change = CHANGE_WORDS.get(str(name).strip().lower())
        if self.is_regression and change is not None:
            return 0
        if change is not None:
            raise ConfigError(
                f"target {name!r} pushes a regression (e.g. tempo) direction up or down, but the "
                f"{self.concept!r} directions are classes: use one of {', '.join(self.classes)}"
            )
        for spelled in class_spellings(str(name)):
            if spelled in self.classes:
                return self.classes.index(spelled)
        if self.is_regression:
            raise ConfigError(
                f"{name!r} is not a class: the {self.concept!r} directions are a regression "
                "(one direction, 'value', toward higher values of the label, e.g. a faster "
                "tempo); steer with target 'faster' or 'slower' (or 'value' and the sign of coef)"
            )
        raise ConfigError(
            f"unknown class {name!r} for concept {self.concept!r}; valid: {', '.join(self.classes)}"
        )

    def activation_norm(self) -> float | None:
        """The median norm of the pooled block outputs these directions were trained on, over
        clips and layers (``meta["activation_norm"]``, `record_activation_norms`): the unit of a
        relative η0 (``0.1x`` = 0.1 × it). None when the file predates it."""
        value = self.meta.get("activation_norm")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        return float(value) if ok else None

    def require_activation_norm(self, source: object) -> float:
        """The activation norm, or a ConfigError naming ``source``: saved directions steered at
        a relative η0 (``0.3x``) need it, and should fail before a model loads."""
        norm = self.activation_norm()
        if norm is None:
            raise ConfigError(f"{source}: no activation norm recorded (the unit of a relative η0)")
        return norm

    def sign_of(self, target: str | None) -> float:
        """-1 for a regression steered down (``slower``, ``down``, ``lower``), else +1: the
        sign η0 is applied with."""
        if target is None or not self.is_regression:
            return 1.0
        return float(CHANGE_WORDS.get(str(target).strip().lower(), 1.0))

    # ------------------------------------------------------------------ compatibility
    def check_compatible(self, model_info: dict[str, Any]) -> None:
        """Raise CompatibilityError naming every difference from a model's info dict.

        Compared: model_id (when both sides know it), hidden_size and num_layers (and that every
        stored layer exists in the model). A different hub snapshot of the same model (``revision``
        on both sides) is a warning, not an error: the weights may have changed, or only a file
        beside them.
        """
        rev_mine, rev_theirs = self.meta.get("model_revision"), model_info.get("revision")
        if rev_mine and rev_theirs and str(rev_mine) != str(rev_theirs):
            log.warning(
                "directions for concept %r were trained on revision %s of the model, which is now "
                "at revision %s: if its weights changed, train them again",
                self.concept, str(rev_mine)[:12], str(rev_theirs)[:12],
            )  # fmt: skip
        problems = []
        mine, theirs = self.meta.get("model_id"), model_info.get("model_id")
        if mine and theirs and str(mine) != str(theirs):
            problems.append(f"model_id: directions were trained on {mine!r}, model is {theirs!r}")
        h = model_info.get("hidden_size")
        if h is not None and int(h) != self.hidden_size:
            problems.append(f"hidden_size: directions have {self.hidden_size}, model has {int(h)}")
        n_mine, n_model = self.meta.get("num_layers"), model_info.get("num_layers")
        if n_model is not None:
            if n_mine is not None and int(n_mine) != int(n_model):
                problems.append(
                    f"num_layers: directions were trained on {int(n_mine)} layers, model has {int(n_model)}"
                )
            outside = [i for i in self.layers if i >= int(n_model)]
            if outside:
                problems.append(f"layers {outside} do not exist in a {int(n_model)}-layer model")
        if problems:
            raise CompatibilityError(
                f"directions for concept {self.concept!r} do not fit this model: "
                + "; ".join(problems)
            )

    # ------------------------------------------------------------------ selection
    def _replace(self, **changes: Any) -> ConceptDirections:
        fields = dict(
            concept=self.concept,
            classes=list(self.classes),
            vectors=self.vectors,
            scores=self.scores,
            layers=list(self.layers),
            eigenvalues=self.eigenvalues,
            meta=dict(self.meta),
        )
        fields.update(changes)
        return ConceptDirections(**fields)

    def select_classes(self, names: str | Iterable[str]) -> ConceptDirections:
        """Keep the named classes (in the given order)."""
        names = [names] if isinstance(names, str) else list(names)
        idx = [self.class_index(n) for n in names]
        return self._replace(
            classes=[self.classes[i] for i in idx],
            vectors=self.vectors[:, idx],
            scores=self.scores[:, idx],
            eigenvalues=None if self.eigenvalues is None else self.eigenvalues[:, idx],
        )

    def select_components(self, components: int | Sequence[int]) -> ConceptDirections:
        """Keep the first n components (an int) or the listed component indices."""
        k = self.num_components
        idx = (
            list(range(components)) if isinstance(components, int) else [int(c) for c in components]
        )
        if not idx or any(not 0 <= c < k for c in idx):
            raise ConfigError(
                f"components {idx} out of range: these directions have {k} (0..{k - 1})"
            )
        return self._replace(
            vectors=self.vectors[:, :, idx],
            eigenvalues=None if self.eigenvalues is None else self.eigenvalues[:, :, idx],
        )

    def select_layers(self, layers: int | Iterable[int]) -> ConceptDirections:
        """Keep the given model layers (0-based; negative counts from the model's top)."""
        layers = [layers] if isinstance(layers, int) else list(layers)
        n_model = int(self.meta.get("num_layers") or (max(self.layers) + 1))
        pos = []
        for layer in layers:
            j = int(layer) + n_model if int(layer) < 0 else int(layer)
            if j not in self.layers:
                raise ConfigError(
                    f"layer {layer} not in these directions; available: {self.layers}"
                )
            pos.append(self.layers.index(j))
        return self._replace(
            vectors=self.vectors[pos],
            scores=self.scores[pos],
            layers=[self.layers[p] for p in pos],
            eigenvalues=None if self.eigenvalues is None else self.eigenvalues[pos],
        )

    def for_layer(self, layer: int, cls: str | None = None, component: int = 0) -> torch.Tensor:
        """One unit vector (hidden,) for a model layer, class (default: the first) and component."""
        c = 0 if cls is None else self.class_index(cls)
        return self.select_layers(layer).vectors[0, c, component]

    # ------------------------------------------------------------------ arithmetic
    def _check_same_frame(self, other: ConceptDirections) -> None:
        if not isinstance(other, ConceptDirections):
            raise ConfigError(f"cannot combine directions with {type(other).__name__}")
        if other.vectors.shape != self.vectors.shape or other.layers != self.layers:
            raise ConfigError(
                "directions must have the same layers, classes, components and hidden size to be "
                f"combined: {tuple(self.vectors.shape)} layers {self.layers} vs "
                f"{tuple(other.vectors.shape)} layers {other.layers}"
            )
        for key in ("model_id", "hidden_size"):
            a, b = self.meta.get(key), other.meta.get(key)
            if a is not None and b is not None and a != b:
                raise CompatibilityError(
                    f"cannot combine directions with different {key}: {a!r} vs {b!r}"
                )

    def _combined(
        self, vectors: torch.Tensor, op: str, other: ConceptDirections | None
    ) -> ConceptDirections:
        meta = dict(self.meta)
        meta["derived"] = {
            "op": op,
            "from": [self.concept] + ([other.concept] if other is not None else []),
        }
        concept = self.concept if other is None else f"{self.concept}{op}{other.concept}"
        classes = list(self.classes)
        if other is not None and other.classes != self.classes:
            classes = [f"{a}{op}{b}" for a, b in zip(self.classes, other.classes)]
        scores = self.scores if other is None else torch.minimum(self.scores, other.scores)
        return self._replace(
            concept=concept,
            classes=classes,
            vectors=vectors,
            scores=scores,
            eigenvalues=None,
            meta=meta,
        )

    def add(self, other: ConceptDirections) -> ConceptDirections:
        """Elementwise sum (not re-normalised; see ``normalized``); scores = the minimum of both."""
        self._check_same_frame(other)
        return self._combined(self.vectors + other.vectors, "+", other)

    def subtract(self, other: ConceptDirections) -> ConceptDirections:
        self._check_same_frame(other)
        return self._combined(self.vectors - other.vectors, "-", other)

    def scale(self, factor: float) -> ConceptDirections:
        """Multiply every vector by a number (scores and eigenvalues' order are unchanged)."""
        out = self._combined(self.vectors * float(factor), "*", None)
        out.meta["derived"]["factor"] = float(factor)
        out.eigenvalues = self.eigenvalues
        return out

    def negate(self) -> ConceptDirections:
        return self.scale(-1.0)

    def normalized(self) -> ConceptDirections:
        """Every vector rescaled to unit norm (zero vectors stay zero)."""
        norms = self.vectors.norm(dim=-1, keepdim=True)
        return self._replace(
            vectors=self.vectors / torch.where(norms > 0, norms, torch.ones_like(norms))
        )

    def __add__(self, other: ConceptDirections) -> ConceptDirections:
        return self.add(other)

    def __sub__(self, other: ConceptDirections) -> ConceptDirections:
        return self.subtract(other)

    def __mul__(self, factor: float) -> ConceptDirections:
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return self.scale(factor)

    __rmul__ = __mul__

    def __truediv__(self, factor: float) -> ConceptDirections:
        if not isinstance(factor, (int, float)):
            return NotImplemented
        return self.scale(1.0 / factor)

    def __neg__(self) -> ConceptDirections:
        return self.negate()

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
        save_tensors_atomic(base.with_name(base.name + ".safetensors"), tensors)
        header = {
            "format_version": FORMAT_VERSION,
            "concept": self.concept,
            "classes": self.classes,
            "layers": self.layers,
            "layer_convention": LAYER_CONVENTION,
            "meta": self.meta,
        }
        write_text_atomic(
            base.with_name(base.name + ".json"), json.dumps(header, indent=2, default=str)
        )
        return base

    @classmethod
    def load(cls, path: str | Path) -> ConceptDirections:
        """Read `save`'s two files; a missing, truncated or damaged one is one error naming the
        file and what to do (they are written by ``musicrfm train``: train again)."""
        base = Path(path)
        if base.is_dir():
            found = sorted(base.glob("*.safetensors"))
            if len(found) != 1:
                names = ", ".join(f.stem for f in found)
                raise ConfigError(
                    f"{base} holds {len(found)} direction files{': ' + names if names else ''}; "
                    "name one of them"
                )
            base = found[0]
        if base.suffix in {".safetensors", ".json"}:
            base = base.with_suffix("")
        st, js = base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")
        if not st.exists() or not js.exists():
            raise ConfigError(
                f"direction files not found: need {st.name} and {js.name} in {st.parent}"
            )
        header = _read_header(js)
        if header.get("layer_convention") != LAYER_CONVENTION:
            raise CompatibilityError(
                f"{js} uses layer convention {header.get('layer_convention')!r}, expected {LAYER_CONVENTION!r}"
            )
        try:
            tensors = load_file(str(st))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for damage
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _damaged(st, f"not a readable safetensors file ({first})") from None
        for name in ("vectors", "scores"):
            if name not in tensors:
                raise _damaged(st, f"it has no {name!r} tensor")
        try:
            return cls(
                concept=header["concept"],
                classes=header["classes"],
                vectors=tensors["vectors"],
                scores=tensors["scores"],
                layers=header["layers"],
                eigenvalues=tensors.get("eigenvalues"),
                meta=header.get("meta", {}),
            )
        except ConfigError as exc:
            raise _damaged(st, f"{exc} (the two files do not belong together)") from None

    # ------------------------------------------------------------------ bundles (hub)
    def save_pretrained(
        self,
        folder: str | Path,
        *,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **hub_kwargs: Any,
    ) -> Path:
        """Write a bundle folder (``directions.safetensors`` + ``.json`` + a model card,
        README.md: model, concept, classes, per-layer scores, how to use); with
        ``push_to_hub`` also upload it to ``repo_id`` (`push_to_hub`)."""
        from musicrfm.probes.pretrained import save_pretrained

        out = save_pretrained(self, folder, repo_id=repo_id)
        if push_to_hub:
            if not repo_id:
                raise ConfigError("push_to_hub needs repo_id (owner/name)")
            self.push_to_hub(repo_id, **hub_kwargs)
        return out

    def push_to_hub(self, repo_id: str, **hub_kwargs: Any) -> str:
        """Upload a bundle to the hub repo ``repo_id`` (created if missing; needs network and a
        token); returns the commit URL. Options: private, token, revision, commit_message."""
        from musicrfm.probes.pretrained import push_to_hub

        return push_to_hub(self, repo_id, **hub_kwargs)

    @classmethod
    def from_pretrained(
        cls,
        repo_id_or_dir: str | Path,
        *,
        revision: str | None = None,
        model: Any = None,
        **hub_kwargs: Any,
    ) -> ConceptDirections:
        """Read a bundle from a folder or a hub repo id (through the hub cache; offline with
        ``HF_HUB_OFFLINE=1`` when cached); checked against ``model`` (an adapter or its info
        dict) as `check_compatible` does. Options: cache_dir, token."""
        from musicrfm.probes.pretrained import resolve_bundle

        where, origin = resolve_bundle(repo_id_or_dir, revision=revision, **hub_kwargs)
        cd = cls.load(where)
        cd.meta["bundle"] = origin
        if model is not None:
            cd.check_compatible(model.info() if hasattr(model, "info") else dict(model))
        return cd


def record_activation_norms(directions: ConceptDirections, features: torch.Tensor) -> None:
    """Store in ``directions.meta`` the norms of the pooled features (layers, clips, hidden) they
    were trained on: ``activation_norm``, the median over clips and layers (what a relative η0
    such as ``0.1x`` multiplies, as the demo's 0.1× norm), and ``activation_norms``, the median
    per layer. A direction is a unit vector, so η0 means something only next to these."""
    norms = features.detach().float().norm(dim=-1)  # (layers, clips)
    directions.meta["activation_norm"] = float(norms.median())
    directions.meta["activation_norms"] = [float(x) for x in norms.median(dim=1).values]


def _damaged(path: Path, what: str) -> CompatibilityError:
    return CompatibilityError(
        f"direction file {path} is damaged: {what}; train the directions again "
        "(`musicrfm train`) or restore both files"
    )


def _read_header(js: Path) -> dict[str, Any]:
    """A direction file's JSON header, with the fields `load` needs checked."""
    try:
        header = json.loads(js.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(js, f"not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _damaged(js, "it is not a JSON object")
    for name, kind in (("concept", str), ("classes", list), ("layers", list)):
        if not isinstance(header.get(name), kind):
            raise _damaged(js, f"no {name!r} ({kind.__name__}) field")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in header["layers"]):
        raise _damaged(js, "'layers' must be layer numbers")
    if not isinstance(header.get("meta", {}), dict):
        raise _damaged(js, "'meta' must be an object")
    return header
