"""Steering sweeps with causal controls: config -> grid of conditions -> cached audio -> results.

The config format is described in :mod:`musicrfm.experiments.sweep.config`, the grid in
:mod:`musicrfm.experiments.sweep.grid`, the directions and probes in
:mod:`musicrfm.experiments.sweep.assets` and the per-clip metrics in
:mod:`musicrfm.experiments.sweep.scoring`; this module runs a sweep and caches it.

Each condition (one plan x prompts x seeds) is identified by a hash; its clips live in
``audio/<generation hash>/`` (reused by any condition with the same plan and options), its results
in ``conditions/<condition id>.json``, written atomically once the condition is fully generated
and evaluated. Re-running a sweep skips finished conditions and reuses any clip already on disk,
so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from musicrfm.capture.distributed import World, device_for, local, world
from musicrfm.errors import ConfigError
from musicrfm.experiments.controls import control_directions
from musicrfm.experiments.sweep.assets import ConceptAssets, prepare_concepts
from musicrfm.experiments.sweep.config import (
    SweepConfig,
    check_target,
    load_config,
    parse_config,
)
from musicrfm.experiments.sweep.grid import Condition, expand_conditions
from musicrfm.experiments.sweep.scoring import _evaluate
from musicrfm.files import write_text_atomic
from musicrfm.probes.directions import CHANGE_WORDS, ConceptDirections

log = logging.getLogger(__name__)

SWEEP_FORMAT_VERSION = 1


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def build_plan(
    cond: Condition,
    assets: Mapping[str, ConceptAssets],
    control_seed: int,
    *,
    relative: bool = False,
) -> Any:
    """The SteeringPlan of a condition (None when unsteered).

    ``relative``: each term's η0 multiplies the median activation norm of its concept's own
    directions (a control keeps that absolute η0, so it is steered at equal strength)."""
    from musicrfm.steering.plan import SteeringDirection, SteeringPlan
    from musicrfm.steering.schedules import parse_schedule

    if not cond.terms:
        return None
    dirs = []
    for term in cond.terms:
        cd = assets[term.concept].directions
        check_target(cd, term.target, cond.label())
        coef = term.coef
        if relative:
            coef = SteeringDirection(cd, target=term.target, coef=f"{term.coef!r}x").coef
        if term.control is not None:
            cd = control_directions(cd, term.control, target=term.target, seed=control_seed)
        opts = dict(term.options)
        if isinstance(opts.get("schedule"), str):
            opts["schedule"] = parse_schedule(opts["schedule"])
        dirs.append(SteeringDirection(cd, target=term.target, coef=coef, **opts))
    return SteeringPlan(dirs)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ============================================================================ running
@dataclass
class SweepRun:
    """What `run_sweep` did."""

    out: Path
    conditions: int
    finished: int
    skipped: int
    generated_clips: int
    reused_clips: int
    results: pd.DataFrame


def _model_info(model: ModelAdapter) -> dict[str, Any]:
    info = dict(model.info()) if hasattr(model, "info") else {}
    return {k: info.get(k) for k in ("model_id", "revision", "fingerprint", "dtype")}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def read_record(path: Path) -> dict[str, Any] | None:
    """A finished condition's record, or None when it is unreadable or cut short (a disk that
    filled up, a copy that stopped): such a condition is not done and is run again."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("rows"), list):
        return None
    if not all(isinstance(r, dict) for r in rec["rows"]):
        return None
    return rec


def run_sweep(
    config: SweepConfig | str | Path | Mapping[str, Any],
    out: str | Path,
    *,
    model: ModelAdapter | None = None,
    directions: Mapping[str, ConceptDirections] | None = None,
    on_condition: Callable[[Condition, int], None] | None = None,
    progress: bool = False,
) -> SweepRun:
    """Run (or resume) a sweep into ``out``; returns the results of every finished condition.

    model: an already loaded adapter (default: ``load_model(config.model)``).
    directions: in-memory ConceptDirections per concept name (override the config's sources).
    on_condition: called as ``on_condition(condition, n_finished)`` after each condition is
        written (tests use it to simulate a crash).
    """
    if isinstance(config, (str, Path)):
        cfg = load_config(config)
    elif isinstance(config, SweepConfig):
        cfg = config
    else:
        cfg = parse_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:  # set for the sweep only, restored afterwards
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            return _run(cfg, out, model, directions, on_condition, progress)
        finally:
            torch.set_num_threads(threads)
    return _run(cfg, out, model, directions, on_condition, progress)


def _run(
    cfg: SweepConfig,
    out: Path,
    model: ModelAdapter,
    directions: Mapping[str, ConceptDirections] | None,
    on_condition: Callable[[Condition, int], None] | None,
    progress: bool,
) -> SweepRun:
    for what, path in (
        ("clap_checkpoint", cfg.clap_checkpoint),
        ("instrument_classifier", cfg.instrument_classifier),
    ):
        if path and not (Path(path).exists() or Path(path + ".safetensors").exists()):
            raise ConfigError(f"{what} not found: {path} (fix the path or remove the key)")
    w = world()
    if model is None:
        from musicrfm.models import load_model

        model = load_model(
            cfg.model, device=device_for(cfg.device), dtype=cfg.dtype, progress=progress and w.main
        )
    assets = prepare_concepts(cfg, model, out, directions)
    conditions = _defined_conditions(expand_conditions(cfg), assets)
    minfo = _model_info(model)
    gen_opts = {"seconds": cfg.seconds, **cfg.generation}
    if w.main:
        _write_sweep_info(out, cfg, model, minfo, assets, len(conditions))
    classifier = None
    if cfg.instrument_classifier:
        from musicrfm.evaluation.instrument import InstrumentClassifier

        classifier = InstrumentClassifier.load(cfg.instrument_classifier)
    # every plan is built (and so checked) before anything is generated
    relative = cfg.coef_unit == "relative"
    plans = [build_plan(c, assets, cfg.control_seed, relative=relative) for c in conditions]
    plan_dicts = [p.to_dict(strict=False) if p is not None else None for p in plans]
    hashes = [
        _condition_hashes(cfg, c, pd_, minfo, gen_opts) for c, pd_ in zip(conditions, plan_dicts)
    ]
    todo = w.broadcast(_conditions_to_run(out, [cid for _, cid in hashes]) if w.main else None)
    mine = _my_conditions(todo, [g for g, _ in hashes], w)
    iterator: Any = mine
    if progress and w.main:
        from tqdm.auto import tqdm

        iterator = tqdm(mine, desc="sweep", unit="condition")
    finished = generated = reused = 0
    for i in iterator:
        cond, plan, plan_dict = conditions[i], plans[i], plan_dicts[i]
        ghash, cid = hashes[i]
        with local():  # a condition is one rank's: what it extracts, it extracts alone
            clips, n_new = _clips(model, cfg, plan, out / "audio" / ghash)
            rows = _evaluate(cfg, cond, clips, assets, model, classifier, out)
        generated += n_new
        reused += len(clips) - n_new
        for r in rows:
            r.update(condition_id=cid, generation_hash=ghash, **_plan_columns(cond))
        record = {"condition": cond.key(), "plan": plan_dict, "rows": rows}
        record_path = out / "conditions" / f"{cid}.json"
        _atomic_write(record_path, json.dumps(record, default=_json_default) + "\n")
        finished += 1
        log.info("finished %s (%d clips, %d new)", cond.label(), len(clips), n_new)
        if on_condition is not None:
            on_condition(cond, finished)
    if w.distributed:
        counts = w.all_gather((finished, generated, reused))
        finished, generated, reused = (sum(c[k] for c in counts) for k in range(3))
        _check_shared(out, [hashes[i][1] for i in todo])
    skipped = len(conditions) - len(todo)
    results = load_results(out)
    return SweepRun(out, len(conditions), finished, skipped, generated, reused, results)


def _conditions_to_run(out: Path, cids: list[str]) -> list[int]:
    """Positions of the conditions without a usable record (each condition id once)."""
    todo: list[int] = []
    seen: set[str] = set()
    for i, cid in enumerate(cids):
        record_path = out / "conditions" / f"{cid}.json"
        if cid in seen:
            continue
        seen.add(cid)
        if record_path.is_file():
            if read_record(record_path) is not None:
                continue
            log.warning(
                "condition record %s is damaged or cut short; running it again", record_path
            )
        todo.append(i)
    return todo


def _my_conditions(todo: list[int], ghashes: list[str], w: World) -> list[int]:
    """This rank's share of ``todo``, in grid order: conditions that generate the same audio
    (one generation hash) stay together, and those groups go round robin to the ranks, so one
    audio folder is written by one process, in the order one process writes it."""
    groups: dict[str, int] = {}
    for i in todo:
        groups.setdefault(ghashes[i], len(groups))
    return [i for i in todo if w.owns(groups[ghashes[i]])]


def _check_shared(out: Path, cids: list[str]) -> None:
    """Every rank's records are visible here, or the sweep folder is not shared between nodes."""
    missing = [c for c in cids if not (out / "conditions" / f"{c}.json").is_file()]
    if missing:
        raise ConfigError(
            f"{len(missing)} condition records written by other processes are not in {out}: "
            "a sweep run over several nodes needs its --out folder on a filesystem every node "
            "shares"
        )


def _defined_conditions(
    conditions: list[Condition], assets: Mapping[str, ConceptAssets]
) -> list[Condition]:
    """The grid without the 'other class' control of regression concepts (tempo): a regression
    has one direction, so there is no other class to steer toward."""
    regression = {n for n, a in assets.items() if a.directions.is_regression}
    keep = [c for c in conditions if not (c.condition == "other_class" and c.concept in regression)]
    if len(keep) < len(conditions):
        log.info(
            "no 'other_class' control for regression concept(s) %s", ", ".join(sorted(regression))
        )
    return keep


def _write_sweep_info(
    out: Path,
    cfg: SweepConfig,
    model: ModelAdapter,
    minfo: dict[str, Any],
    assets: Mapping[str, Any],
    n_conditions: int,
) -> None:
    """``sweep.json``: the config, the model, and per concept its classes, layers and scores."""
    _atomic_write(
        out / "sweep.json",
        json.dumps(
            {
                "format_version": SWEEP_FORMAT_VERSION,
                "config": cfg.to_dict(),
                "model": minfo,
                "frame_rate": float(getattr(model, "frame_rate", 0) or 50.0),
                "concepts": {
                    n: {
                        "classes": a.directions.classes,
                        "layers": a.directions.layers,
                        "probe_layer": a.probe_layer,
                        "score_name": a.directions.meta.get("score_name", "score"),
                        "layer_scores": [float(x) for x in a.directions.scores.mean(1)],
                        "detector": cfg.concepts[n].detector,
                    }
                    for n, a in assets.items()
                },
                "conditions": n_conditions,
            },
            indent=2,
            default=str,
        ),
    )


def _condition_hashes(
    cfg: SweepConfig,
    cond: Condition,
    plan_dict: dict[str, Any] | None,
    minfo: dict[str, Any],
    gen_opts: dict[str, Any],
) -> tuple[str, str]:
    """(generation hash, condition id): the first names the audio folder (clips shared by
    conditions that generate the same), the second the condition's record."""
    # the content digest identifies the directions; their file path does not (moving the
    # sweep or its config must not invalidate the cache)
    plan_key = copy.deepcopy(plan_dict)
    for item in (plan_key or {}).get("direction", []):
        item.pop("directions", None)
    ghash = _hash(
        {
            "model": minfo,
            "generation": gen_opts,
            "plan": plan_key,
            "prompts": cfg.prompts,
            "seeds": cfg.seeds,
        }
    )
    cid = _hash(
        {
            "g": ghash,
            **cond.key(),
            "probe": cfg.probe_accuracy,
            "clf": cfg.instrument_classifier,
            "clap": cfg.clap_checkpoint,
        }
    )
    return ghash, cid


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _plan_columns(cond: Condition) -> dict[str, Any]:
    opts = cond.terms[0].options if cond.terms else {}
    return {
        f"plan_{k}": (str(opts[k]) if k in opts else None)
        for k in ("layers", "top_k", "weighting", "kappa", "gate", "schedule")
    }


def _clips(
    model: ModelAdapter, cfg: SweepConfig, plan: Any, folder: Path
) -> tuple[list[tuple[str, int, Path]], int]:
    """Audio for every prompt x seed of a plan: reused from ``folder`` or generated there."""
    from musicrfm.steering.generation import generate

    items = [(p, s) for p in cfg.prompts for s in cfg.seeds]
    paths = [
        folder / f"clip_{i:03d}_p{cfg.prompts.index(p)}_s{s}.wav" for i, (p, s) in enumerate(items)
    ]
    missing = [
        i for i, p in enumerate(paths) if not (p.is_file() and p.with_suffix(".json").is_file())
    ]
    if missing:
        # generate prompt by prompt so that each clip depends only on its own prompt and seed
        by_prompt: dict[str, list[int]] = {}
        for i in missing:
            by_prompt.setdefault(items[i][0], []).append(i)
        for prompt, idx in by_prompt.items():
            results = generate(
                model,
                [prompt],
                plan=plan,
                seconds=cfg.seconds,
                seed=[items[i][1] for i in idx],
                **cfg.generation,
            )
            for i, r in zip(idx, results):
                r.save(paths[i])
    return [(p, s, path) for (p, s), path in zip(items, paths)], len(missing)


def load_results(out: str | Path) -> pd.DataFrame:
    """Every finished condition's rows (one per clip) as a DataFrame (``embedding`` as arrays)."""
    out = Path(out)
    rows = []
    for path in sorted((out / "conditions").glob("*.json")):
        rec = read_record(path)
        if rec is None:
            log.warning(
                "skipping damaged condition record %s (run the sweep again to redo it)", path
            )
            continue
        rows.extend(rec["rows"])
    frame = score_changes(_one_row_per_clip(pd.DataFrame(rows), out))
    if "embedding" in frame.columns:
        frame["embedding"] = frame["embedding"].map(np.asarray)
    return frame


def _one_row_per_clip(frame: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Rows of one clip written by two condition records (a grid run twice into one folder
    with different condition names) kept once, with a warning: counted twice, they made every
    interval of that cell too narrow (session 14)."""
    if frame.empty or "audio_path" not in frame.columns:
        return frame
    key = [c for c in ("audio_path", "target", "prompt", "seed") if c in frame.columns]
    dup = frame.duplicated(key, keep="last")
    if dup.any():
        log.warning(
            "%s: %d clip rows appear in more than one condition record; each clip is counted "
            "once (remove the stale records under conditions/ to silence this)",
            out,
            dup.sum(),
        )
    return frame[~dup].reset_index(drop=True)


def _is_true(value: Any) -> bool:
    """A ``pulse`` cell read back from a CSV ('True') or a row (True); NaN (no reading) is not."""
    return str(value).strip().lower() in ("true", "1", "1.0")


def score_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """``correct`` for clips steered up or down a regression concept ('faster'/'slower'): the
    detected value is above (below) the median of the concept's unsteered clips, so unsteered
    clips score about 0.5 and a working direction well above. The value is the row detail the
    concept's detector names as its numeric reading (``Detector.value_key``; tempo: ``bpm``)."""
    from musicrfm.evaluation import detectors as det

    if frame.empty or "target" not in frame.columns:
        return frame
    change = frame["target"].astype(str).str.lower().map(CHANGE_WORDS)
    if change.isna().all():
        return frame
    frame = frame.copy()
    frame["baseline_median"] = np.nan
    for concept in frame.loc[change.notna(), "concept"].unique():
        rows = (frame["concept"] == concept) & change.notna()
        detector = str(frame.loc[rows, "detector"].iloc[0])
        key = det.get_detector(detector).value_key
        if key is None or key not in frame.columns:
            log.warning(
                "the %s detector has no numeric reading to judge 'faster'/'slower' by", detector
            )
            continue
        values = pd.to_numeric(frame[key], errors="coerce")
        if "pulse" in frame.columns:  # a held note's BPM means nothing: neither faster nor slower
            values = values.where(frame["pulse"].map(_is_true))
        base = values[(frame["concept"] == concept) & (frame["condition"] == "unsteered")]
        median = float(base.median()) if base.notna().any() else float("nan")
        if not np.isfinite(median):
            log.warning("no unsteered %s clips to compare 'faster'/'slower' against", concept)
        frame.loc[rows, "baseline_median"] = median
        frame.loc[rows, "correct"] = (change[rows] * (values[rows] - median) > 0).to_numpy()
    return frame
