"""The demo's stages as functions: note set, directions, generation jobs, detection, tables.

Shared by :mod:`musicrfm.experiments.headline`, which runs the same pipeline for every pitch class.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError, ModelError
from musicrfm.experiments.demo.config import (
    CONTROL_LABELS,
    DemoConfig,
    log_stage,
    progress_bar,
)
from musicrfm.theory import PITCH_CLASSES

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- stages
def learn_note_directions(
    adapter: ModelAdapter,
    cfg: DemoConfig,
    work: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    timings: dict[str, float] | None = None,
    concept: str = "notes",
    interval_mode: str | None = None,
) -> tuple[Any, Any, Any]:
    """Stages 2-4: synthesise the training set (the note set, or ``concept``'s clips on the
    same programs), extract pooled features, train one direction per class. Returns (dataset,
    features, TrainResult); the first two are cached in ``work``. ``interval_mode``: strike
    interval clips of that mode only (:func:`strike_dataset`)."""
    from musicrfm.capture.extract import extract_features
    from musicrfm.probes.training import train_directions

    timings = {} if timings is None else timings
    if cfg.train_set not in TRAIN_SETS:
        raise ConfigError(f"unknown training set {cfg.train_set!r}; valid: {', '.join(TRAIN_SETS)}")
    if concept == "tempo_bins":  # always strike clips: the synthetic click tracks are no music
        t = log_stage(2, f"rendering strike clips at 60-180 BPM, slow / medium / fast, into {work}")
        dataset = tempo_bin_dataset(adapter, cfg, work, seed, progress)
    elif cfg.train_set == "strikes":
        t = log_stage(
            2, f"rendering strike {concept} clips ({cfg.clips_per_class} per class) into {work}"
        )
        dataset = strike_dataset(adapter, cfg, work, seed, progress, concept, interval_mode)
    elif concept == "notes":
        t = log_stage(2, f"synthesising {12 * cfg.clips_per_class} one-note clips into {work}")
        dataset = note_dataset(adapter, cfg, work, seed, progress)
        counts = dataset.rows["label"].astype(str).value_counts()
        if len(counts) < 12:
            raise ModelError(f"the note set has only {len(counts)} pitch classes: {dict(counts)}")
    else:
        t = log_stage(
            2, f"synthesising {concept} clips ({cfg.clips_per_class} per class) into {work}"
        )
        dataset = concept_dataset(adapter, cfg, work, seed, progress, concept)
    timings["synthesise"] = time.perf_counter() - t

    t = log_stage(3, f"extracting features of {len(dataset)} clips (mean pooling, empty prompt)")
    features = extract_features(
        adapter, dataset, pooling="mean", prompt="", cache_dir=work / "features",
        progress=progress,
    )  # fmt: skip
    timings["extract"] = time.perf_counter() - t

    t = log_stage(
        4,
        f"training {concept} directions ({features.num_layers} layers, one per class + multiclass)",
    )
    trained = train_directions(
        features, label_column="label", concept=concept, task="binary", budget=cfg.budget,
        components=cfg.components, seed=seed, device=device, progress=progress,
    )  # fmt: skip
    timings["train"] = time.perf_counter() - t
    return dataset, features, trained


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def note_dataset(
    adapter: ModelAdapter, cfg: DemoConfig, work: Path, seed: int, progress: bool
) -> Any:
    from musicrfm.synth import generate_dataset
    from musicrfm.synth.notes import TRAIN_PROGRAMS

    sr = int(adapter.sample_rate)
    octs = "-".join(str(o) for o in cfg.octaves)
    folder = work / f"notes_{sr}hz_oct{octs}_{cfg.clips_per_class}pc_seed{seed}"
    return generate_dataset(
        "notes",
        folder,
        programs=list(TRAIN_PROGRAMS),
        octaves=list(cfg.octaves),
        limit_per_class=cfg.clips_per_class,
        seed=seed,
        sample_rate=sr,
        duration=4.0,
        progress=progress,
    )


TRAIN_SETS = ("synthetic", "strikes")
# the recipe draws its grid with the training seed; directions (strike sets, the tempo headline's
# set) draw theirs with this offset, so they see other octaves and tempos of the same items
STRIKE_GRID_SEED_OFFSET = 17


# a headline's interval mode -> the strike clips' interval modes it keeps
STRIKE_INTERVAL_MODES = {"harmonic": ("harmonic",), "melodic": ("up", "down")}


def strike_dataset(
    adapter: ModelAdapter,
    cfg: DemoConfig,
    work: Path,
    seed: int,
    progress: bool,
    concept: str,
    interval_mode: str | None = None,
) -> Any:
    """``cfg.clips_per_class`` strike clips of each of ``concept``'s classes (a seeded draw from
    :func:`musicrfm.synth.strikes.strike_grid`, every program, tempo and inversion mixed),
    rendered at the model's rate: what the polyphonic testbed was trained on, drawn with
    another seed than its recipe (other octaves and tempos for the same items).

    ``interval_mode`` (intervals only): "harmonic" keeps the clips whose two notes sound
    together, "melodic" those played one after another (up or down); None keeps all three."""
    from musicrfm.synth.generate import render_specs
    from musicrfm.synth.strikes import strike_grid, strike_spec

    if interval_mode is not None and (
        concept != "intervals" or interval_mode not in STRIKE_INTERVAL_MODES
    ):
        raise ConfigError(f"interval mode {interval_mode!r} needs concept intervals and one of "
                          f"{', '.join(STRIKE_INTERVAL_MODES)}")  # fmt: skip
    keep = STRIKE_INTERVAL_MODES.get(interval_mode or "")
    grid_seed = seed + STRIKE_GRID_SEED_OFFSET
    grid = [
        c for c in strike_grid(seed=grid_seed)
        if c.concept == concept and (keep is None or c.interval_mode in keep)
    ]  # fmt: skip
    if not grid:
        raise ConfigError(f"strike clips have no concept {concept!r}; they have notes, "
                          "intervals and chords")  # fmt: skip
    rng = np.random.default_rng(grid_seed)
    by_class: dict[str, list[int]] = {}
    for i, c in enumerate(grid):
        by_class.setdefault(str(c.label), []).append(i)
    chosen = sorted(
        int(i)
        for idx in by_class.values()
        for i in rng.choice(idx, min(cfg.clips_per_class, len(idx)), replace=False)
    )
    sr = int(adapter.sample_rate)
    mode = "" if interval_mode is None else f"_{interval_mode}"  # its own cache folder
    folder = work / f"strike_{concept}{mode}_{sr}hz_{cfg.clips_per_class}pc_seed{seed}"
    return render_specs(
        [strike_spec(grid[i]) for i in chosen], folder,
        name=f"strike-{concept}{mode.replace('_', '-')}-{cfg.clips_per_class}", sample_rate=sr,
        seed=grid_seed,
        workers=1, progress=progress,
    )  # fmt: skip


def tempo_dataset(adapter: Any, work: Path, per_tempo: int, seed: int, progress: bool) -> Any:
    """``per_tempo`` strike clips at each testbed tempo (every concept and program mixed),
    rendered at the model's rate into ``work``; labels are BPM."""
    from musicrfm.synth.generate import render_specs
    from musicrfm.synth.strikes import TEMPOS, strike_grid, tempo_specs

    rng = np.random.default_rng(seed + STRIKE_GRID_SEED_OFFSET)
    grid = strike_grid(seed=seed + STRIKE_GRID_SEED_OFFSET)
    chosen = []
    for bpm in TEMPOS:
        idx = [i for i, c in enumerate(grid) if c.bpm == bpm]
        chosen += [
            grid[i] for i in sorted(rng.choice(idx, min(per_tempo, len(idx)), replace=False))
        ]
    sr = int(adapter.sample_rate)
    folder = work / f"strike_tempos_{sr}hz_{per_tempo}pt_seed{seed}"
    return render_specs(
        tempo_specs(chosen), folder, name=f"strike-tempos-{per_tempo}", sample_rate=sr,
        seed=seed, workers=1, progress=progress,
    )  # fmt: skip


def tempo_bin_dataset(
    adapter: ModelAdapter, cfg: DemoConfig, work: Path, seed: int, progress: bool
) -> Any:
    """The tempo set (:func:`tempo_dataset`, about ``cfg.clips_per_class`` clips a bin) with
    each clip labelled slow / medium / fast (:data:`~musicrfm.evaluation.detectors.tempo.
    TEMPO_BINS`), the BPM kept in a ``bpm`` column: the classification form of tempo."""
    from musicrfm.evaluation.detectors.tempo import tempo_bin
    from musicrfm.synth.dataset import SynthDataset

    dataset = tempo_dataset(adapter, work, max(2, cfg.clips_per_class // 4), seed, progress)
    rows = dataset.rows.copy()
    rows["bpm"] = rows["label"].astype(float)
    rows["label"] = [tempo_bin(b) for b in rows["bpm"]]
    return SynthDataset(dataset.root, rows, dict(dataset.meta))


def concept_dataset(
    adapter: ModelAdapter, cfg: DemoConfig, work: Path, seed: int, progress: bool, concept: str
) -> Any:
    """``concept``'s synthetic clips (chords, intervals...) on the prompt instruments' programs,
    ``cfg.clips_per_class`` per class, at the model's sample rate."""
    from musicrfm.synth import generate_dataset
    from musicrfm.synth.notes import TRAIN_PROGRAMS

    sr = int(adapter.sample_rate)
    folder = work / f"{concept}_{sr}hz_{cfg.clips_per_class}pc_seed{seed}"
    return generate_dataset(
        concept, folder, programs=list(TRAIN_PROGRAMS), limit_per_class=cfg.clips_per_class,
        seed=seed, sample_rate=sr, duration=4.0, progress=progress,
    )  # fmt: skip


def auto_coefs(features: Any, cfg: DemoConfig) -> tuple[tuple[float, ...], float]:
    """η0 values: given, or ``relative_coefs`` x the median norm of the pooled activations (over
    clips and layers) -- a direction is a unit vector, so its strength only means something
    relative to the size of the residual stream it is added to."""
    scale = float(features.features.norm(dim=-1).median())
    if cfg.coefs is not None:
        return tuple(float(c) for c in cfg.coefs), scale
    return tuple(round(r * scale, 3) for r in cfg.relative_coefs), scale


@dataclass
class Job:
    condition: str
    coef: float
    plan: Any  # SteeringPlan or None
    items: list[tuple[str, int]]
    target: str
    kind: str = "steady"  # or "crossfade"


def demo_jobs(cd: Any, cfg: DemoConfig, coefs: Sequence[float], seed: int, target: str, b: str):
    from musicrfm.experiments.controls import control_directions
    from musicrfm.steering.plan import SteeringPlan

    prompts = cfg.prompt_texts()
    seeds = [seed + 1000 * k for k in range(cfg.seeds_per_prompt)]
    items = [(p, s) for s in seeds for p in prompts]
    top = max(coefs, key=abs)
    jobs = [Job("unsteered", 0.0, None, items, target)]
    for c in coefs:
        jobs.append(Job("concept", c, SteeringPlan.single(cd, target, c), items, target))
    for kind in cfg.controls:
        # random/orthogonal: a different random direction for each generation seed, so the
        # control's estimate averages over directions instead of resting on a single draw
        draws = range(len(seeds)) if kind in ("random", "orthogonal") else [0]
        for k in draws:
            ctl = control_directions(cd, kind, target=target, seed=seed + k)
            sub = items if len(draws) == 1 else [(p, seeds[k]) for p in prompts]
            jobs.append(Job(kind, top, SteeringPlan.single(ctl, target, top), sub, target))
    if cfg.crossfade_clips > 0:
        n_p = len(prompts)
        xf_items = [
            (prompts[i % n_p], seed + 7 + 1000 * (i // n_p)) for i in range(cfg.crossfade_clips)
        ]
        plan = SteeringPlan.crossfade(cd, target, b, top)
        jobs.append(Job("crossfade", top, plan, xf_items, f"{target}->{b}", "crossfade"))
    return jobs


def sampling_options(adapter: ModelAdapter) -> dict[str, float]:
    """Guidance scale, temperature and top-k from the model's own generation config (the mini
    model recommends its own; MusicGen's hub checkpoints ship guidance 3, top-k 250, T=1)."""
    gc = getattr(getattr(adapter, "model", None), "generation_config", None)
    out: dict[str, float] = {}
    for key in ("guidance_scale", "temperature", "top_k"):
        value = getattr(gc, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def generate_all(
    adapter: ModelAdapter,
    jobs: list[Job],
    cfg: DemoConfig,
    audio_dir: Path,
    progress: bool,
    concept: str = "notes",
) -> list[dict[str, Any]]:
    """Generate every job's clips (of ``concept``'s targets) and write them as FLAC + JSON
    sidecars.

    Items are generated in chunks that share one seed (a chunk's sampling stream is seeded with
    it), and every condition uses the same chunks, so the sampling noise is paired across
    conditions: differences come from the steering alone.
    """
    from musicrfm.steering.generation import generate

    total = sum(len(j.items) for j in jobs)
    records: list[dict[str, Any]] = []
    audio_dir.mkdir(parents=True, exist_ok=True)
    with progress_bar(total, "generate", progress) as bar:
        for job in jobs:
            tag = job.condition if job.coef == 0 else f"{job.condition}_{job.coef:g}"
            by_seed: dict[int, list[str]] = {}
            for prompt, s in job.items:
                by_seed.setdefault(s, []).append(prompt)
            for s, prompts in by_seed.items():
                for start in range(0, len(prompts), cfg.batch):
                    chunk = prompts[start : start + cfg.batch]
                    results = generate(
                        adapter, chunk, plan=job.plan, seconds=cfg.seconds, seed=s,
                        batch=len(chunk), **sampling_options(adapter),
                    )  # fmt: skip
                    for prompt, r in zip(chunk, results):
                        path = audio_dir / f"{tag}_{len(records):03d}.flac"
                        r.save(path)
                        records.append(
                            {
                                "condition": job.condition,
                                "kind": job.kind,
                                "concept": concept,
                                "target": job.target,
                                "coef": job.coef,
                                "prompt": prompt,
                                "seed": s,
                                "audio_path": str(path),
                                "_audio": r.audio,
                                "_sr": r.sample_rate,
                            }
                        )
                    bar.update(len(chunk))
    return records


def detect_notes(
    records: list[dict[str, Any]],
    progress: bool,
    concept: str = "notes",
    options: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Detector label/confidence/target probability per clip (the note detector, or
    ``concept``'s, given ``options``: e.g. an interval mode); crossfade traces kept aside."""
    from musicrfm.evaluation import detectors as det

    record = det.get_detector(concept)
    n_classes = len(record.labels) or 1
    rows, traces = [], []
    with progress_bar(len(records), "detect", progress) as bar:
        for rec in records:
            audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
            crossfade = rec["kind"] == "crossfade"
            opts = {**(options or {}), **({"window_s": 0.5, "hop_s": 0.25} if crossfade else {})}
            d = det.detect(audio, rec["_sr"], concept, **opts)
            first = rec["target"].split("->")[0]
            probs = d.probs if d.probs is not None else np.full(n_classes, np.nan)
            ti = det.target_index(concept, record.labels, first) if record.labels else None
            row = {k: v for k, v in rec.items() if not k.startswith("_")}
            row.update(
                label=d.label,
                confidence=float(d.confidence),
                target_prob=float(probs[ti]) if ti is not None else float("nan"),
                correct=det.label_matches(concept, d.label, first) if not crossfade else np.nan,
                probs=probs.tolist(),
                **{k: d.details[k] for k in record.row_details if k in d.details},
            )
            rows.append(row)
            if crossfade:
                traces.append(d)
            bar.update(1)
    return pd.DataFrame(rows), {"detections": traces}


def crossfade_summary(dets: list[Any], a: str, b: str, seconds: float) -> dict[str, Any]:
    """Mean detector probability of A and B per window, and how often the clip starts on A and
    ends on B."""
    dets = [d for d in dets if d.trace_probs is not None and len(d.times)]
    if not dets:
        return {"n": 0}
    n_win = min(len(d.times) for d in dets)
    ia, ib = PITCH_CLASSES.index(a), PITCH_CLASSES.index(b)
    pa = np.stack([d.trace_probs[:n_win, ia] for d in dets])
    pb = np.stack([d.trace_probs[:n_win, ib] for d in dets])
    starts_a = np.mean([d.trace_labels[0] == a for d in dets])
    ends_b = np.mean([d.trace_labels[n_win - 1] == b for d in dets])
    return {
        "a": a,
        "b": b,
        "n": len(dets),
        "times": dets[0].times[:n_win].tolist(),
        "prob_a": pa.mean(0).tolist(),
        "prob_b": pb.mean(0).tolist(),
        "prob_a_sd": pa.std(0).tolist(),
        "prob_b_sd": pb.std(0).tolist(),
        "starts_on_a": float(starts_a),
        "ends_on_b": float(ends_b),
        "seconds": seconds,
    }


def instrument_adherence(
    dataset: Any,
    frame: pd.DataFrame,
    records: list[dict],
    seed: int,
    adapter: ModelAdapter | None = None,
    *,
    reference: bool = False,
    judge_folders: Sequence[Path] = (),
    judge: tuple[Any, dict[str, Any]] | None = None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Prompt adherence: does the offline timbre classifier hear the prompted instrument family?

    The classifier is fitted on the training set's clips (the note set, or the concept's set:
    any clip names its program) and, with ``adapter``, also on their codec round trips: generated
    audio always comes out of the codec, and a classifier that only heard clean renders mistakes
    codec colouring for another instrument.

    ``reference=True`` fits a small MLP on :func:`reference_instrument_clips` (every prompt
    instrument at every note of the three registers, in four rhythms) and their codec round
    trips instead: slower (minutes), but it tells the instruments apart far more reliably
    (bundled model: 0.995 of held-out codec round trips, against 0.889). It is taken from the
    first of ``judge_folders`` that holds one fitted for this codec, else fitted and saved into
    the first (:func:`musicrfm.evaluation.judges.reference_judge`). ``judge`` (classifier, report):
    a reference judge already at hand, used as is."""
    from musicrfm.evaluation.instrument import prompt_adherence, train_instrument_classifier
    from musicrfm.evaluation.judges import codec_round_trip, reference_judge

    if judge is not None:
        clf, report = judge
    elif reference:
        if adapter is None:
            raise ModelError("the reference timbre judge is fitted on the model's codec: pass it")

        clf, report = reference_judge(adapter, judge_folders, progress=progress)
    else:
        augment = codec_round_trip(adapter) if adapter is not None else None
        clf, report = train_instrument_classifier(
            dataset, concepts=tuple(dataset.concepts), seed=seed, augment=augment
        )
    adh = prompt_adherence(
        clf,
        [r["_audio"][0] if r["_audio"].ndim == 2 else r["_audio"] for r in records],
        records[0]["_sr"],
        [r["prompt"] for r in records],
    )
    frame = frame.copy()
    frame["instrument_expected"] = adh["expected"].to_numpy()
    frame["instrument_predicted"] = adh["predicted"].to_numpy()
    frame["instrument_match"] = adh["match"].to_numpy()
    by_reference = reference or judge is not None
    info = {
        "classifier": "reference (MLP)" if by_reference else "note set (logistic)",
        "classifier_test_accuracy": report.get("test_accuracy"),
        "classifier_test_accuracy_through_codec": report.get("test_accuracy_augmented"),
        "classifier_n_test": report.get("n_test"),
        "classes": report.get("classes"),
    }
    if by_reference:  # which recipe: notes only, or also intervals and triads
        info["polyphonic"] = bool(report.get("polyphonic", False))
    return frame, info


def judge_adherence(
    adapter: ModelAdapter, dataset: Any, frame: pd.DataFrame, records: list[dict], seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Prompt adherence of the steady clips, by the reference judge when the model's folder
    carries one for its codec (`musicrfm mini judge`; fitting one here would take longer than
    the whole demo), else by the note-set classifier."""
    steady = [r for r in records if r["kind"] == "steady"]
    part, info = instrument_adherence(
        dataset, frame[frame["kind"] == "steady"], steady, seed, adapter=adapter,
        judge=saved_judge(adapter),
    )  # fmt: skip
    return pd.concat([part, frame[frame["kind"] != "steady"]], ignore_index=True), info


def saved_judge(adapter: ModelAdapter) -> tuple[Any, dict[str, Any]] | None:
    """The reference timbre judge saved in the model's folder for its codec, or None."""
    from musicrfm.evaluation.judges import find_reference_judge, model_folder

    folder = model_folder(adapter)
    return find_reference_judge(adapter, [folder] if folder is not None else [])


def summarize(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from musicrfm.evaluation.metrics import bootstrap_ci
    from musicrfm.experiments.report.tables import compare_conditions

    steady = frame[frame["kind"] == "steady"].copy()
    steady["correct"] = steady["correct"].astype(bool)
    order = {c: i for i, c in enumerate(["unsteered", "concept", *CONTROL_LABELS])}
    rows = []
    for (cond, coef), g in steady.groupby(["condition", "coef"], sort=False):
        est = bootstrap_ci(g["correct"].to_numpy(float), seed=seed)
        row = {
            "condition": cond,
            "coef": float(coef),
            "accuracy": est.value,
            "ci_low": est.low,
            "ci_high": est.high,
            "n": est.n,
            "target_prob": float(g["target_prob"].mean()),
            "silent": int((g["label"] == "silent").sum()),
            "detected": ", ".join(f"{k} {v}" for k, v in g["label"].value_counts().items()),
        }
        if "instrument_match" in g and g["instrument_match"].notna().any():
            m = bootstrap_ci(g["instrument_match"].dropna().to_numpy(float), seed=seed)
            row.update(adherence=m.value, adherence_ci_low=m.low, adherence_ci_high=m.high)
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary = summary.sort_values(
        ["condition", "coef"], key=lambda s: s.map(order) if s.name == "condition" else s
    ).reset_index(drop=True)
    # concept at its strongest η0 against every control and the unsteered baseline
    top = steady.loc[steady["condition"] == "concept", "coef"].abs().max()
    ref = steady[(steady["condition"] == "concept") & (steady["coef"].abs() == top)]
    others = steady[steady["condition"] != "concept"]
    both = pd.concat([ref, others]).assign(group="all")
    comp = compare_conditions(both, reference="concept", by=("concept",), seed=seed)
    if len(comp):
        comp.insert(1, "concept_coef", float(ref["coef"].iloc[0]))
    return summary, comp
