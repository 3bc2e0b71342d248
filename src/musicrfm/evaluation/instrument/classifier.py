"""The fitted instrument classifier: numpy prediction, safetensors + JSON files (no pickle)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.evaluation.detectors.base import Detection, check_silence
from musicrfm.evaluation.frontend import SAMPLE_RATE, prepare_audio
from musicrfm.evaluation.instrument.features import FEATURE_NAMES, instrument_features

FORMAT = "musicrfm.instrument-classifier/1"


@dataclass
class InstrumentClassifier:
    """A fitted softmax classifier over standardised timbre features.

    ``hidden`` holds (weight (out, in), bias (out,)) ReLU layers applied before the softmax
    layer ``coef``/``intercept``; empty for the logistic model.
    """

    classes: tuple[str, ...]
    coef: np.ndarray  # (classes, last hidden size or features)
    intercept: np.ndarray  # (classes,)
    mean: np.ndarray  # (features,)
    scale: np.ndarray  # (features,)
    label_column: str = "instrument_family"
    meta: dict[str, Any] = field(default_factory=dict)
    hidden: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        k, d = len(self.classes), len(FEATURE_NAMES)
        width = d
        bad_layers = []
        for i, (w, b) in enumerate(self.hidden):
            if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
                bad_layers.append(f"layer{i} {w.shape}/{b.shape} after width {width}")
            width = w.shape[0]
        shapes = {
            "coef": (self.coef.shape, (k, width)),
            "intercept": (self.intercept.shape, (k,)),
            "mean": (self.mean.shape, (d,)),
            "scale": (self.scale.shape, (d,)),
        }
        bad = bad_layers + [
            f"{n} {got} != {want}" for n, (got, want) in shapes.items() if tuple(got) != want
        ]
        if bad:
            raise CompatibilityError(f"instrument classifier arrays do not fit: {'; '.join(bad)}")

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(features) - self.mean) / self.scale
        for w, b in self.hidden:
            z = np.maximum(z @ w.T + b, 0.0)
        logits = z @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_proba(self, audios: Sequence[Any], sr: int) -> np.ndarray:
        """(clips, classes) probabilities."""
        if not len(audios):
            return np.zeros((0, len(self.classes)))
        return self.predict_proba_features(np.stack([instrument_features(a, sr) for a in audios]))

    def predict(self, audios: Sequence[Any], sr: int) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(audios, sr).argmax(axis=1)]

    def classify(
        self, audio: Any, sr: int, *, silence_db: float = -60.0, on_silent: str = "label"
    ) -> Detection:
        """One clip as a :class:`Detection` (concept "instrument"; "silent" for silent audio)."""
        y = prepare_audio(audio, sr)
        silent = check_silence(y, "instrument", silence_db, on_silent)
        if silent is not None:
            return silent
        p = self.predict_proba_features(instrument_features(y, SAMPLE_RATE))[0]
        best = int(np.argmax(p))
        return Detection(
            concept="instrument",
            label=self.classes[best],
            confidence=float(p[best]),
            classes=self.classes,
            probs=p,
            details={"label_column": self.label_column},
        )

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json``; returns the safetensors path."""
        from safetensors.numpy import save_file

        from musicrfm.files import write_atomic, write_json_atomic

        base = Path(path)
        if base.suffix in (".safetensors", ".json"):
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "coef": self.coef.astype(np.float64),
            "intercept": self.intercept.astype(np.float64),
            "mean": self.mean.astype(np.float64),
            "scale": self.scale.astype(np.float64),
        }
        for i, (w, b) in enumerate(self.hidden):
            tensors[f"hidden{i}.weight"] = w.astype(np.float64)
            tensors[f"hidden{i}.bias"] = b.astype(np.float64)
        target = base.with_suffix(".safetensors")
        write_atomic(target, lambda tmp: save_file(tensors, str(tmp)))
        from musicrfm import __version__

        sidecar = {
            "format": FORMAT,
            "classes": list(self.classes),
            "label_column": self.label_column,
            "features": list(FEATURE_NAMES),
            "sample_rate": SAMPLE_RATE,
            "library_version": __version__,
            **self.meta,
        }
        write_json_atomic(base.with_suffix(".json"), sidecar, default=str)
        return target

    @classmethod
    def load(cls, path: str | Path) -> InstrumentClassifier:
        """Read a classifier written by :meth:`save` (give either file or the common stem)."""
        from safetensors.numpy import load_file

        base = Path(path)
        if base.suffix in (".safetensors", ".json"):
            base = base.with_suffix("")
        weights, side = base.with_suffix(".safetensors"), base.with_suffix(".json")
        if not weights.is_file() or not side.is_file():
            raise ConfigError(
                f"no instrument classifier at {base} (need {weights.name} and {side.name})"
            )
        try:
            meta = json.loads(side.read_text())
            arrays = load_file(str(weights))
        except Exception as exc:
            raise CompatibilityError(f"cannot read instrument classifier {base}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise CompatibilityError(
                f"{side} is not an instrument classifier (format {meta.get('format')!r})"
            )
        if tuple(meta.get("features", ())) != FEATURE_NAMES:
            raise CompatibilityError(f"{side} was trained on different features; retrain it")
        extra = {
            k: v
            for k, v in meta.items()
            if k not in ("format", "classes", "label_column", "features")
        }
        return cls(
            classes=tuple(meta["classes"]),
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            mean=arrays["mean"],
            scale=arrays["scale"],
            label_column=meta.get("label_column", "instrument_family"),
            meta=extra,
            hidden=[
                (arrays[f"hidden{i}.weight"], arrays[f"hidden{i}.bias"])
                for i in range(sum(1 for key in arrays if key.endswith(".weight")))
            ],
        )
