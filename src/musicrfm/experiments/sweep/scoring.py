"""Scoring a condition's clips: the concept detector (clip label and per-window trace),
prompt adherence, CLAP similarity and the paper's probe accuracy, one row per clip.

Every metric but the detector is optional and records why it is missing instead of failing, so
one bad clip or checkpoint does not stop a long sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from musicrfm.experiments.sweep.assets import ConceptAssets
from musicrfm.experiments.sweep.config import SweepConfig
from musicrfm.experiments.sweep.grid import Condition
from musicrfm.probes.directions import CHANGE_WORDS

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def _evaluate(
    cfg: SweepConfig,
    cond: Condition,
    clips: Sequence[tuple[str, int, Path]],
    assets: Mapping[str, ConceptAssets],
    model: ModelAdapter,
    classifier: Any,
    out: Path,
) -> list[dict[str, Any]]:
    from musicrfm.evaluation import detectors as det

    spec = cfg.concepts[cond.concept]
    audios, srs = [], []
    for _, _, path in clips:
        y, sr = det.load_audio(path)
        audios.append(y)
        srs.append(sr)
    sr = srs[0]
    backend, embed = _embed(cfg, model, audios, sr)
    rows = []
    for (prompt, seed, path), y, emb in zip(clips, audios, embed):
        row: dict[str, Any] = {
            **cond.key(),
            "detector": spec.detector,
            "prompt": prompt,
            "seed": int(seed),
            "audio_path": str(path.relative_to(out)),
            "embedding": [float(v) for v in emb],
            "embedding_backend": backend,
        }
        try:
            d = det.detect(y, sr, spec.detector)
            scored = _score(d, spec.detector, cond.target)
        except Exception as e:  # an unusable clip is a miss, recorded with its reason
            log.warning("detector failed on %s: %s", path, e)
            d = None
            scored = {
                "label": "error",
                "confidence": 0.0,
                "correct": False,
                "silent": False,
                "target_prob": float("nan"),
                "error": str(e),
            }
        row.update(scored)
        if cond.kind == "multi" and d is not None and cond.target.lower() not in CHANGE_WORDS:
            same = [t.target for t in cond.terms if t.concept == cond.concept]
            row["correct"] = any(det.label_matches(spec.detector, d.label, t) for t in same)
        if d is not None:
            row.update(_trace(_fine_trace(y, sr, d, cond, spec.detector), cond, spec.detector))
        rows.append(row)
    if classifier is not None:
        from musicrfm.evaluation.instrument import prompt_adherence

        adh = prompt_adherence(classifier, audios, sr, [c[0] for c in clips])
        for row, (_, a) in zip(rows, adh.iterrows()):
            row.update(
                instrument_expected=a["expected"],
                instrument_predicted=a["predicted"],
                instrument_match=a["match"],
            )
    if cfg.clap_checkpoint:
        from musicrfm.evaluation.metrics import clap_similarity

        sims = clap_similarity(audios, sr, [c[0] for c in clips], checkpoint=cfg.clap_checkpoint)
        for row, s in zip(rows, np.asarray(sims).ravel()):
            row["clap"] = float(s)
    a = assets[cond.concept]
    if cfg.probe_accuracy and a.probe is not None:
        _probe_rows(rows, a, [c[2] for c in clips], model, cond)
        if cond.kind in ("schedule", "crossfade"):
            _probe_traces(rows, a, audios, sr, model, cond, cfg.seconds)
    return rows


def _embed(
    cfg: SweepConfig, model: ModelAdapter, audios: list[Any], sr: int
) -> tuple[str, np.ndarray]:
    """FD/MMD embeddings of a condition's clips on the configured back-end (``embedding`` in the
    config: ``"activations"`` -- MusicGen pooled activations, the default when a model is at
    hand -- ``"activations:<layer>"`` or ``"mfcc"``); the back-end's name goes in every row."""
    from musicrfm.evaluation.metrics import make_embedding

    backend = make_embedding(cfg.embedding, model)
    return str(getattr(backend, "name", "custom")), backend.embed(audios, sr)


def _score(d: Any, detector: str, target: str) -> dict[str, Any]:
    """Like `detectors.score`, from a Detection already computed. A change target ('faster',
    'slower') has no per-clip answer: ``correct`` is decided against the unsteered clips once
    they are all in (:func:`musicrfm.experiments.sweep.run.score_changes`)."""
    from musicrfm.evaluation import detectors as det

    change = str(target).lower() in CHANGE_WORDS
    return det.score_detection(d, detector, None if change else target)


def _fine_trace(y: Any, sr: int, d: Any, cond: Condition, detector: str) -> Any:
    """For schedules and crossfades: the detector again with windows of 1/8 of the clip (at
    most 1 s), so the trace can follow the schedule; the clip-level label stays the default.
    Detectors whose trace has no window options (``windowed=False``: tempo) keep theirs."""
    if cond.kind not in ("schedule", "crossfade"):
        return d
    from musicrfm.evaluation import detectors as det

    if not det.get_detector(detector).windowed:
        return d
    seconds = float(np.asarray(y).shape[-1]) / float(sr)
    window = min(1.0, max(seconds / 8.0, 0.1))
    try:
        return det.detect(y, sr, detector, window_s=window, hop_s=window / 2)
    except Exception as e:  # keep the default trace
        log.debug("fine trace failed: %s", e)
        return d


def _trace(d: Any, cond: Condition, detector: str) -> dict[str, Any]:
    """The detector's per-window probability of the target (and, for crossfades, of A)."""
    from musicrfm.evaluation import detectors as det

    out: dict[str, Any] = {"trace_times": [float(t) for t in d.times]}
    if d.trace_probs is None or not d.classes:
        out["trace_target"] = [] if d.trace_values is None else [float(v) for v in d.trace_values]
        return out

    def col(target: str) -> list[float]:
        k = det.target_index(detector, d.classes, target)
        return [] if k is None else [float(v) for v in d.trace_probs[:, k]]

    out["trace_target"] = col(cond.target)
    if cond.kind == "crossfade":
        a = cond.terms[0].target
        out["trace_a"] = col(a)
        labels = list(d.trace_labels)
        if labels:  # label_matches counts SILENT as a miss
            out["start_correct"] = det.label_matches(detector, labels[0], a)
            out["end_correct"] = det.label_matches(detector, labels[-1], cond.target)
    return out


def _probe_rows(
    rows: list[dict[str, Any]],
    a: ConceptAssets,
    paths: list[Path],
    model: ModelAdapter,
    cond: Condition,
) -> None:
    """The paper's probe accuracy: the multiclass RFM probe on the clip's own activations."""
    from musicrfm.capture.extract import extract_features

    frame = pd.DataFrame({"path": [str(p) for p in paths]})
    prompt = a.directions.meta.get("prompt", "")
    try:
        feats = extract_features(model, frame, prompt=prompt, use_cache=False, progress=False)
        X = feats.layer(int(a.probe_layer))  # features hold every model layer, 0-based
        proba = a.probe.predict_proba(X).cpu().numpy()
    except Exception as e:  # probe accuracy is a secondary metric: record why it is missing
        log.warning("probe accuracy unavailable for %s: %s", cond.label(), e)
        for r in rows:
            r["probe_error"] = str(e)
        return
    classes = a.probe_classes or a.directions.classes
    targets = {t.target for t in cond.terms if t.concept == cond.concept} or {cond.target}
    for r, p in zip(rows, proba):
        k = int(np.argmax(p))
        r["probe_label"] = classes[k] if k < len(classes) else str(k)
        r["probe_correct"] = r["probe_label"] in targets
        r["probe_target_prob"] = (
            float(p[classes.index(cond.target)]) if cond.target in classes else float("nan")
        )


def _probe_traces(
    rows: list[dict[str, Any]],
    a: ConceptAssets,
    audios: list[Any],
    sr: int,
    model: ModelAdapter,
    cond: Condition,
    seconds: float,
) -> None:
    """The multiclass probe's softmax over its classes along each clip's time windows (the
    paper's Figure 1), with P(target) (and, for crossfades, P(A)) in the detector trace's format."""
    from musicrfm.evaluation.activations import probe_trace, trace_window

    classes = a.probe_classes or list(a.directions.classes)
    window = trace_window(float(seconds))
    wanted = {"probe_trace_target": cond.target}
    if cond.kind == "crossfade":
        wanted["probe_trace_a"] = cond.terms[0].target
    for r, y in zip(rows, audios):
        try:
            times, probs = probe_trace(model, a.probe, int(a.probe_layer), y, sr, window)
        except Exception as e:  # a secondary figure: record why it is missing
            log.warning("probe trace unavailable for %s: %s", cond.label(), e)
            r["probe_trace_error"] = str(e)
            continue
        r["probe_trace_times"] = [float(t) for t in times]
        r["probe_trace_probs"] = [[float(v) for v in row] for row in probs]  # (windows, classes)
        r["probe_trace_classes"] = (
            list(classes)
            if len(classes) == probs.shape[1]
            else [str(k) for k in range(len(probs[0]))]
        )
        for column, target in wanted.items():
            k = classes.index(target) if target in classes else None
            r[column] = [] if k is None else [float(v) for v in probs[:, k]]
