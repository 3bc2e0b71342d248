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
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import CompatibilityError, ConfigError, DatasetError
from musicrfm.evaluation.detectors import SAMPLE_RATE, Detection, _check_silence, prepare_audio

log = logging.getLogger(__name__)

FORMAT = "musicrfm.instrument-classifier/1"
N_MFCC = 20
FEATURE_NAMES: tuple[str, ...] = (
    *(f"mfcc{i}_mean" for i in range(N_MFCC)),
    *(f"mfcc{i}_std" for i in range(N_MFCC)),
    *(f"dmfcc{i}_mean" for i in range(N_MFCC)),
    *(f"dmfcc{i}_std" for i in range(N_MFCC)),
    "centroid_mean",
    "centroid_std",
    "bandwidth_mean",
    "bandwidth_std",
    "rolloff_mean",
    "rolloff_std",
    "flatness_mean",
    "flatness_std",
    *(f"contrast{i}_mean" for i in range(7)),
    "zcr_mean",
    "zcr_std",
)

# words in a text prompt -> GM family (musicrfm.theory.GM_FAMILIES names)
PROMPT_WORDS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "keyboard", "harpsichord", "clavinet", "clavi"),
    "chromatic_percussion": (
        "vibraphone",
        "marimba",
        "xylophone",
        "glockenspiel",
        "celesta",
        "music box",
        "dulcimer",
        "bells",
    ),
    "organ": ("organ", "accordion", "harmonica", "bandoneon"),
    "guitar": ("guitar",),
    "bass": ("bass",),
    "strings": ("violin", "viola", "cello", "contrabass", "harp", "timpani"),
    "ensemble": ("strings", "string ensemble", "choir", "voices", "orchestra"),
    "brass": ("trumpet", "trombone", "tuba", "horn", "brass"),
    "reed": ("saxophone", "sax", "oboe", "clarinet", "bassoon", "english horn"),
    "pipe": ("flute", "piccolo", "recorder", "pan flute", "ocarina", "whistle", "shakuhachi"),
    "synth_lead": ("synth lead", "lead synth", "square lead", "saw lead"),
    "synth_pad": ("pad", "synth pad"),
    "ethnic": ("sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai"),
}


def instrument_from_prompt(prompt: str) -> str | None:
    """The GM family a text prompt names ("a calm solo cello" -> "strings"), or None.

    Longer phrases win over single words ("bass guitar" -> "bass", "string ensemble" ->
    "ensemble"); the first family found in the prompt otherwise.
    """
    text = f" {re.sub(r'[^a-z ]+', ' ', prompt.lower())} "
    best: tuple[int, int, str] | None = None
    for family, words in PROMPT_WORDS.items():
        for word in words:
            pos = text.find(f" {word} ")
            if pos < 0 and not word.endswith("s"):
                pos = text.find(f" {word}s ")
            if pos >= 0:
                key = (-len(word), pos, family)
                if best is None or key < best:
                    best = key
    if best is None:
        return None
    if best[2] == "guitar" and " bass guitar " in text:
        return "bass"
    return best[2]


def instrument_features(audio: Any, sr: int) -> np.ndarray:
    """The timbre statistics of one clip, in :data:`FEATURE_NAMES` order (float64)."""
    import librosa

    y = prepare_audio(audio, sr)
    s = SAMPLE_RATE
    mfcc = librosa.feature.mfcc(y=y, sr=s, n_mfcc=N_MFCC)
    frames = mfcc.shape[1]
    width = min(9, frames if frames % 2 else frames - 1)
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    centroid = librosa.feature.spectral_centroid(S=stft, sr=s)[0]
    bandwidth = librosa.feature.spectral_bandwidth(S=stft, sr=s)[0]
    rolloff = librosa.feature.spectral_rolloff(S=stft, sr=s)[0]
    flatness = librosa.feature.spectral_flatness(S=stft)[0]
    contrast = librosa.feature.spectral_contrast(S=stft, sr=s)
    zcr = librosa.feature.zero_crossing_rate(y)[0]
    # frequencies in kHz keep the features on comparable scales before standardisation
    return np.concatenate(
        [
            mfcc.mean(1),
            mfcc.std(1),
            delta.mean(1),
            delta.std(1),
            [centroid.mean() / 1e3, centroid.std() / 1e3],
            [bandwidth.mean() / 1e3, bandwidth.std() / 1e3],
            [rolloff.mean() / 1e3, rolloff.std() / 1e3],
            [flatness.mean(), flatness.std()],
            contrast.mean(1),
            [zcr.mean(), zcr.std()],
        ]
    ).astype(np.float64)


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
        silent = _check_silence(y, "instrument", silence_db, on_silent)
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
        tmp = target.with_name(f".{target.name}.part")
        save_file(tensors, str(tmp))
        tmp.replace(target)
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
        side = base.with_suffix(".json")
        tmp = side.with_name(f".{side.name}.part")
        tmp.write_text(json.dumps(sidecar, indent=2, default=str))
        tmp.replace(side)
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


def train_instrument_classifier(
    dataset: str | Path | Any,
    *,
    label: str = "instrument_family",
    concepts: Sequence[str] | None = ("notes", "chords"),
    limit_per_class: int | None = None,
    test_fraction: float = 0.25,
    C: float = 1.0,
    model: str = "logistic",
    hidden_sizes: tuple[int, ...] = (256, 128),
    alpha: float = 1e-3,
    seed: int = 0,
    augment: Callable[[list[tuple[np.ndarray, int]]], list[tuple[np.ndarray, int]]] | None = None,
) -> tuple[InstrumentClassifier, dict[str, Any]]:
    """Fit the classifier on a labelled dataset folder; returns it and a held-out report.

    Rows are filtered to ``concepts`` and to a non-empty ``label`` column, optionally capped at
    ``limit_per_class`` per label (seeded), then split stratified by label (``test_fraction``
    held out, seeded). The report has train/test sizes, held-out accuracy with a bootstrap 95%
    CI and the confusion table. The saved model is refitted on all rows.

    ``model="logistic"`` (inverse regularisation ``C``) or ``"mlp"`` (ReLU layers
    ``hidden_sizes``, L2 ``alpha``, Adam; seeded).

    ``augment`` maps a list of (audio, sr) to transformed copies (e.g. a codec round trip, so the
    classifier also knows what the instruments sound like after a model's codec); the copies of
    the training clips are added to the training set, and the report gives the held-out accuracy
    on transformed test clips as ``test_accuracy_augmented``.
    """
    if model not in ("logistic", "mlp"):
        raise ConfigError(f"model must be 'logistic' or 'mlp', got {model!r}")
    from musicrfm.synth import load_dataset

    ds = dataset if hasattr(dataset, "rows") else load_dataset(dataset)
    rows = ds.rows
    if label not in rows.columns:
        raise DatasetError(
            f"{ds.root} has no {label!r} column to train an instrument classifier on"
        )
    if concepts is not None and "concept" in rows.columns:
        rows = rows[rows["concept"].isin(list(concepts))]
    rows = rows[rows[label].notna()]
    if limit_per_class is not None:
        from musicrfm.evaluation.validation import sample_per_group

        rows = sample_per_group(rows, label, limit_per_class, seed)
    from musicrfm.evaluation.detectors import load_audio

    audio = [load_audio(Path(ds.root) / p) for p in rows["path"]]
    clf, report = fit_instrument_classifier(
        audio, rows[label].astype(str).tolist(), label=label, test_fraction=test_fraction, C=C,
        model=model, hidden_sizes=hidden_sizes, alpha=alpha, seed=seed, augment=augment,
    )  # fmt: skip
    clf.meta.update(trained_on=str(ds.root), concepts=list(concepts) if concepts else None)
    return clf, report


def fit_instrument_classifier(
    audio: Sequence[tuple[np.ndarray, int]],
    labels: Sequence[str],
    *,
    label: str = "instrument_family",
    test_fraction: float = 0.25,
    C: float = 1.0,
    model: str = "logistic",
    hidden_sizes: tuple[int, ...] = (256, 128),
    alpha: float = 1e-3,
    seed: int = 0,
    augment: Callable[[list[tuple[np.ndarray, int]]], list[tuple[np.ndarray, int]]] | None = None,
) -> tuple[InstrumentClassifier, dict[str, Any]]:
    """Fit the classifier on (audio, sr) clips and their labels (the ``label`` column they came
    from); see :func:`train_instrument_classifier` for the options and the report."""
    if model not in ("logistic", "mlp"):
        raise ConfigError(f"model must be 'logistic' or 'mlp', got {model!r}")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from musicrfm.evaluation.metrics import bootstrap_ci

    if len(audio) != len(labels):
        raise ConfigError(f"{len(audio)} clips but {len(labels)} labels")
    y = np.asarray([str(v) for v in labels])
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise DatasetError(f"need at least 2 {label} classes to train, found {len(counts)}")
    if counts.min() < 2:
        rare = ", ".join(counts[counts < 2].index)
        raise DatasetError(f"{label} class(es) {rare} have fewer than 2 clips; render more")
    clips = list(audio)
    x = np.stack([instrument_features(a, sr) for a, sr in clips])
    x_aug = (
        None
        if augment is None
        else np.stack([instrument_features(a, sr) for a, sr in augment(clips)])
    )
    classes = tuple(sorted(set(y)))

    def with_aug(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x_aug is None:
            return x[idx], y[idx]
        return np.concatenate([x[idx], x_aug[idx]]), np.concatenate([y[idx], y[idx]])

    def fit(xs: np.ndarray, ys: np.ndarray) -> InstrumentClassifier:
        mean = xs.mean(axis=0)
        scale = xs.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = (xs - mean) / scale
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        if model == "mlp":
            net = MLPClassifier(hidden_sizes, alpha=alpha, max_iter=2000, random_state=seed)
            net.fit(z, ys)
            layers = [(w.T.copy(), b.copy()) for w, b in zip(net.coefs_[:-1], net.intercepts_[:-1])]
            fitted_classes = list(net.classes_)
            coef, intercept = net.coefs_[-1].T, net.intercepts_[-1]
        else:
            lr = LogisticRegression(C=C, max_iter=5000, random_state=seed)
            lr.fit(z, ys)
            fitted_classes = list(lr.classes_)
            coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: sigmoid(w.x + b) == softmax over logits (0, w.x + b)
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        order = [fitted_classes.index(c) for c in classes]
        return InstrumentClassifier(
            classes=classes,
            coef=coef[order].astype(np.float64),
            intercept=intercept[order].astype(np.float64),
            mean=mean,
            scale=scale,
            label_column=label,
            hidden=layers,
        )

    n_test = max(len(classes), int(round(test_fraction * len(y))))
    report: dict[str, Any] = {"label": label, "classes": list(classes), "n": len(y)}
    if 0 < test_fraction < 1 and n_test < len(y) - len(classes):
        i_tr, i_te = train_test_split(
            np.arange(len(y)), test_size=n_test, stratify=y, random_state=seed
        )
        held = fit(*with_aug(i_tr))
        x_te, y_te = x[i_te], y[i_te]
        pred = np.array(held.classes)[held.predict_proba_features(x_te).argmax(axis=1)]
        est = bootstrap_ci((pred == y_te).astype(float), seed=seed)
        if x_aug is not None:
            pred_aug = held.predict_proba_features(x_aug[i_te]).argmax(axis=1)
            report["test_accuracy_augmented"] = float(
                np.mean(np.array(held.classes)[pred_aug] == y_te)
            )
        report.update(
            n_train=len(i_tr),
            n_test=len(y_te),
            test_accuracy=est.value,
            test_ci=[est.low, est.high],
            confusion=pd.crosstab(pd.Series(y_te, name="truth"), pd.Series(pred, name="predicted")),
        )
    clf = fit(*with_aug(np.arange(len(y))))
    clf.meta = {
        "n": int(len(y)),
        "seed": seed,
        "model": model,
        "C": C if model == "logistic" else None,
        "hidden_sizes": list(hidden_sizes) if model == "mlp" else [],
        "alpha": alpha if model == "mlp" else None,
        "augmented": augment is not None,
        "test_accuracy": report.get("test_accuracy"),
        "n_test": report.get("n_test"),
    }
    return clf, report


def prompt_adherence(
    classifier: InstrumentClassifier, audios: Sequence[Any], sr: int, prompts: Sequence[str] | str
) -> pd.DataFrame:
    """Per clip: the family the prompt names, the classifier's label and whether they agree.

    Clips whose prompt names no known instrument get a missing ``expected`` and ``match=NaN``.
    Needs a classifier trained on ``instrument_family``.
    """
    if classifier.label_column != "instrument_family":
        raise ConfigError(
            f"prompt adherence compares GM families; this classifier predicts {classifier.label_column!r}"
        )
    if isinstance(prompts, str):
        prompts = [prompts] * len(audios)
    if len(prompts) != len(audios):
        raise ConfigError(f"{len(audios)} clips but {len(prompts)} prompts")
    rows = []
    for audio, prompt in zip(audios, prompts):
        d = classifier.classify(audio, sr)
        expected = instrument_from_prompt(prompt)
        rows.append(
            {
                "prompt": prompt,
                "expected": expected,
                "predicted": d.label,
                "confidence": d.confidence,
                "match": np.nan if expected is None else float(d.label == expected),
            }
        )
    return pd.DataFrame(rows)
