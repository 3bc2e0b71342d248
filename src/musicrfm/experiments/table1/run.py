"""`run_table1`: per concept, synthesise, extract (two poolings), train and score; then the
table and its report. Each stage's output is cached in the work folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from musicrfm.errors import DatasetError
from musicrfm.experiments.table1.config import (
    CONCEPT_ORDER,
    PAPER_MODEL,
    PAPER_TABLE1,
    POOLINGS,
    TEMPO_RANGE,
    Table1Config,
    default_work_dir,
    task_name,
)
from musicrfm.experiments.table1.report import write_report
from musicrfm.experiments.table1.table import (
    accuracy_intervals,
    build_table1,
    chosen_layers,
    table_records,
)
from musicrfm.files import write_json_atomic, write_text_atomic
from musicrfm.synth.concepts import get_concept

if TYPE_CHECKING:
    from musicrfm.capture.features import FeatureSet
    from musicrfm.models.adapter import ModelAdapter
    from musicrfm.probes.training import TrainResult

log = logging.getLogger(__name__)


@dataclass
class Table1Result:
    """The table (rows = ROWS labels, columns = concepts + Avg.) and what backs it."""

    table: pd.DataFrame
    scores: pd.DataFrame  # per layer: pooling, concept, layer, method, metric, val, test
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)


def run_table1(
    model: str | os.PathLike[str] | ModelAdapter = "mini",
    *,
    out: str | os.PathLike[str] = "table1-report",
    work: str | os.PathLike[str] | None = None,
    config: Table1Config | None = None,
    progress: bool = True,
    command: str | None = None,
) -> Table1Result:
    """Measure Table 1 on ``model`` and write it to ``out``: table1.md / .csv / .json,
    layer_scores.csv and one per-layer plot per concept and split in plots/."""
    from musicrfm.models import load_model

    cfg = config or Table1Config()
    t_run = time.perf_counter()
    work = Path(work) if work is not None else default_work_dir()
    t = time.perf_counter()
    adapter = load_model(model, device=cfg.device)
    load_s = time.perf_counter() - t
    parts, concepts_info = [], {}
    for i, concept in enumerate(cfg.concepts, 1):
        log.info("table1 [%d/%d] %s", i, len(cfg.concepts), concept)
        scores, info = measure_concept(adapter, concept, cfg, work, progress=progress)
        parts.append(scores)
        concepts_info[concept] = info
    scores = pd.concat(parts, ignore_index=True)
    table = build_table1(scores)
    summary = {
        "model": adapter.info()["model_id"],
        "model_info": {k: v for k, v in adapter.info().items() if not isinstance(v, list)},
        "command": command,
        "settings": asdict(cfg),
        "work": str(work),
        "metric": {c: ("r2" if c == "tempos" else "accuracy") for c in cfg.concepts},
        "table": table_records(table),
        "chosen_layers": chosen_layers(scores),
        "ci95": accuracy_intervals(table, {c: i["n"]["test"] for c, i in concepts_info.items()}),
        "paper_table1": {
            "model": PAPER_MODEL,
            "rows": {k: dict(zip([*CONCEPT_ORDER, "Avg."], v)) for k, v in PAPER_TABLE1.items()},
        },
        "concepts": concepts_info,
        "seconds": {"load_model": round(load_s, 2), "total": 0.0},
    }
    summary["seconds"]["total"] = round(time.perf_counter() - t_run, 2)
    paths = write_report(Path(out), table, scores, summary)
    return Table1Result(table=table, scores=scores, summary=summary, paths=paths)


def measure_concept(
    adapter: ModelAdapter, concept: str, cfg: Table1Config, work: Path, *, progress: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One concept's per-layer scores (both poolings, every method) and its n and wall times."""
    from musicrfm.capture.extract import extract_features

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    dataset = concept_dataset(adapter, concept, cfg, work / "datasets", progress=progress)
    seconds["synthesise"] = time.perf_counter() - t
    features = {}
    for pooling in POOLINGS:
        t = time.perf_counter()
        features[pooling] = extract_features(
            adapter, dataset, pooling=pooling, prompt="", cache_dir=work / "features",
            progress=progress,
        )  # fmt: skip
        seconds[f"extract_{pooling}"] = time.perf_counter() - t
    if list(features["mean"].rows["path"]) != list(features["last"].rows["path"]):
        raise DatasetError(f"{concept}: the two poolings kept different clips; re-extract")
    cached = (
        work / "scores" / f"{_slug(adapter.info()['model_id'])}_{concept}_{_key(features, cfg)}"
    )
    if cached.with_suffix(".csv").is_file() and cached.with_suffix(".json").is_file():
        log.info("%s: probe scores from the cache (%s)", concept, cached.name)
        scores = pd.read_csv(cached.with_suffix(".csv"))
        info = json.loads(cached.with_suffix(".json").read_text())
        info["scores_cached"] = True
    else:
        scores, info = probe_scores(features["mean"], features["last"], concept, cfg, progress)
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cached.with_suffix(".csv"), scores.to_csv(index=False))
        write_json_atomic(cached.with_suffix(".json"), info)
        info["scores_cached"] = False
    info["seconds"] = {**{k: round(v, 2) for k, v in seconds.items()}, **info["seconds"]}
    info["clips_rendered"] = len(dataset)
    return scores, info


def concept_dataset(
    adapter: ModelAdapter, concept: str, cfg: Table1Config, root: Path, *, progress: bool = True
) -> Any:
    """The concept's synthetic clips at the model's sample rate, ``clips_per_class`` per class
    (per BPM for tempos), in a folder named by every option (so a folder is never reused for
    other options, and a rerun resumes it)."""
    from musicrfm.synth import generate_dataset

    sr = int(adapter.sample_rate)
    c = get_concept(concept)
    labels = None
    if concept == "tempos":
        labels = [str(b) for b in range(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1, cfg.tempo_step)]
    programs = list(cfg.programs) if cfg.programs is not None and c.uses_programs else None
    octaves = list(cfg.octaves) if cfg.octaves is not None and c.uses_octaves else None
    named = [programs, labels] + ([octaves] if octaves is not None else [])
    tag = hashlib.sha256(json.dumps(named).encode()).hexdigest()[:8]
    name = f"{concept}_{sr}hz_{cfg.seconds:g}s_{cfg.clips_per_class}pc_seed{cfg.seed}_{tag}"
    return generate_dataset(
        {concept: labels}, root / name, programs=programs, octaves=octaves,
        limit_per_class=cfg.clips_per_class, seed=cfg.seed, sample_rate=sr,
        duration=cfg.seconds, workers=cfg.workers, progress=progress,
    )  # fmt: skip


def probe_scores(
    mean: FeatureSet, last: FeatureSet, concept: str, cfg: Table1Config, progress: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-layer val/test scores: the RFM on both poolings, the baselines on mean-pooled
    features, all on the rows and splits ``train_directions`` draws (the same for both poolings:
    the split is seeded by the labels, which are the same rows)."""
    from musicrfm.probes.tables import compare_probes

    seconds: dict[str, float] = {}
    parts, info = [], {}
    for pooling, features in (("mean", mean), ("last", last)):
        t = time.perf_counter()
        result = _train(features, concept, cfg, progress)
        seconds[f"train_rfm_{pooling}"] = time.perf_counter() - t
        if pooling == "mean":
            info = {"task": task_name(result.task), **split_counts(result)}
            t = time.perf_counter()
            scores = compare_probes(features, result)
            seconds["baselines"] = time.perf_counter() - t
        else:
            scores = compare_probes(features, result, methods=())
        parts.append(scores.assign(pooling=pooling))
    scores = pd.concat(parts, ignore_index=True)
    scores = scores[["pooling", "concept", "layer", "method", "metric", "val", "test"]]
    info["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return scores, info


def _train(features: FeatureSet, concept: str, cfg: Table1Config, progress: bool) -> TrainResult:
    """RFM probes of every layer; a failure names the concept (and says what to raise when a
    class is too small for the split)."""
    from musicrfm.probes.training import train_directions

    try:
        return train_directions(
            features, label_column="label", concept=concept, task=_task(concept),
            budget=cfg.budget, seed=cfg.seed, device=cfg.device, progress=progress,
        )  # fmt: skip
    except DatasetError as exc:
        short = "too few samples" in str(exc)
        hint = " (silent renders are left out, so a class can fall short: raise --clips-per-class)"
        raise DatasetError(f"{concept}: {exc}{hint if short else ''}") from exc


def _task(concept: str) -> str:
    """Tempo is a regression (whatever the BPM step); every other concept is a classification,
    whose multiclass probe gives the table's RFM cell."""
    return "regression" if concept == "tempos" else "binary"


def split_counts(result: TrainResult) -> dict[str, Any]:
    """n per split of the rows the table's scores come from (the multiclass probe's rows for a
    classification, every row for a regression), and the number of classes."""
    import numpy as np

    rows = result.multiclass_rows or {
        s: np.flatnonzero(result.splits == s) for s in ("train", "val", "test")
    }
    classes = result.directions.meta.get("classes", [])
    return {
        "n": {s: int(len(r)) for s, r in rows.items()},
        "classes": len(classes) if result.task != "regression" else None,
    }


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", str(text)).strip("._") or "model"


def _key(features: dict[str, FeatureSet], cfg: Table1Config) -> str:
    """What a concept's scores depend on: the features (model fingerprint, clips, capture) and
    the training settings; a change in any gives another cache file."""
    import musicrfm

    parts = {
        p: {k: f.meta.get(k) for k in ("fingerprint", "dataset_hash", "capture_version", "options")}
        for p, f in features.items()
    }
    parts["train"] = {"budget": cfg.budget, "seed": cfg.seed, "version": musicrfm.__version__}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
