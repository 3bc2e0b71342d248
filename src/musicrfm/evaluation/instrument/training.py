"""Fitting the instrument classifier: on a labelled dataset folder, or on clips and labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError, DatasetError
from musicrfm.evaluation.instrument.classifier import InstrumentClassifier
from musicrfm.evaluation.instrument.features import instrument_features


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
    _check_model(model)  # before any audio is read
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
    from musicrfm.evaluation.frontend import load_audio

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
    _check_model(model)
    if len(audio) != len(labels):
        raise ConfigError(f"{len(audio)} clips but {len(labels)} labels")
    y = np.asarray([str(v) for v in labels])
    _check_classes(y, label)
    clips = list(audio)
    x = np.stack([instrument_features(a, sr) for a, sr in clips])
    x_aug = (
        None
        if augment is None
        else np.stack([instrument_features(a, sr) for a, sr in augment(clips)])
    )
    fit = _Fit(
        classes=tuple(sorted(set(y))),
        label=label,
        model=model,
        C=C,
        hidden_sizes=hidden_sizes,
        alpha=alpha,
        seed=seed,
    )
    report = _held_out_report(fit, x, x_aug, y, test_fraction)
    clf = fit(*_with_augmented(x, x_aug, y, np.arange(len(y))))
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


def _check_model(model: str) -> None:
    if model not in ("logistic", "mlp"):
        raise ConfigError(f"model must be 'logistic' or 'mlp', got {model!r}")


def _check_classes(y: np.ndarray, label: str) -> None:
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise DatasetError(f"need at least 2 {label} classes to train, found {len(counts)}")
    if counts.min() < 2:
        rare = ", ".join(counts[counts < 2].index)
        raise DatasetError(f"{label} class(es) {rare} have fewer than 2 clips; render more")


def _with_augmented(
    x: np.ndarray, x_aug: np.ndarray | None, y: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``idx``, and their transformed copies when there are any."""
    if x_aug is None:
        return x[idx], y[idx]
    return np.concatenate([x[idx], x_aug[idx]]), np.concatenate([y[idx], y[idx]])


@dataclass(frozen=True)
class _Fit:
    """One fitting recipe: ``fit(features, labels)`` standardises the features and fits the
    logistic regression or the MLP (scikit-learn), as an :class:`InstrumentClassifier`."""

    classes: tuple[str, ...]
    label: str
    model: str
    C: float
    hidden_sizes: tuple[int, ...]
    alpha: float
    seed: int

    def __call__(self, xs: np.ndarray, ys: np.ndarray) -> InstrumentClassifier:
        mean = xs.mean(axis=0)
        scale = xs.std(axis=0)
        scale[scale < 1e-9] = 1.0
        z = (xs - mean) / scale
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        if self.model == "mlp":
            from sklearn.neural_network import MLPClassifier

            net = MLPClassifier(
                self.hidden_sizes, alpha=self.alpha, max_iter=2000, random_state=self.seed
            )
            net.fit(z, ys)
            layers = [(w.T.copy(), b.copy()) for w, b in zip(net.coefs_[:-1], net.intercepts_[:-1])]
            fitted_classes = list(net.classes_)
            coef, intercept = net.coefs_[-1].T, net.intercepts_[-1]
        else:
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=self.C, max_iter=5000, random_state=self.seed)
            lr.fit(z, ys)
            fitted_classes = list(lr.classes_)
            coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: sigmoid(w.x + b) == softmax over logits (0, w.x + b)
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        order = [fitted_classes.index(c) for c in self.classes]
        return InstrumentClassifier(
            classes=self.classes,
            coef=coef[order].astype(np.float64),
            intercept=intercept[order].astype(np.float64),
            mean=mean,
            scale=scale,
            label_column=self.label,
            hidden=layers,
        )


def _held_out_report(
    fit: _Fit, x: np.ndarray, x_aug: np.ndarray | None, y: np.ndarray, test_fraction: float
) -> dict[str, Any]:
    """Sizes, and (when a stratified split leaves enough rows) the held-out accuracy with a
    bootstrap 95% CI, the confusion table and the accuracy on transformed test clips."""
    from sklearn.model_selection import train_test_split

    from musicrfm.evaluation.metrics.stats import bootstrap_ci

    classes = fit.classes
    n_test = max(len(classes), int(round(test_fraction * len(y))))
    report: dict[str, Any] = {"label": fit.label, "classes": list(classes), "n": len(y)}
    if not (0 < test_fraction < 1 and n_test < len(y) - len(classes)):
        return report
    i_tr, i_te = train_test_split(
        np.arange(len(y)), test_size=n_test, stratify=y, random_state=fit.seed
    )
    held = fit(*_with_augmented(x, x_aug, y, i_tr))
    x_te, y_te = x[i_te], y[i_te]
    pred = np.array(held.classes)[held.predict_proba_features(x_te).argmax(axis=1)]
    est = bootstrap_ci((pred == y_te).astype(float), seed=fit.seed)
    if x_aug is not None:
        pred_aug = held.predict_proba_features(x_aug[i_te]).argmax(axis=1)
        report["test_accuracy_augmented"] = float(np.mean(np.array(held.classes)[pred_aug] == y_te))
    report.update(
        n_train=len(i_tr),
        n_test=len(y_te),
        test_accuracy=est.value,
        test_ci=[est.low, est.high],
        confusion=pd.crosstab(pd.Series(y_te, name="truth"), pd.Series(pred, name="predicted")),
    )
    return report
