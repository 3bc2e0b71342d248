"""`musicrfm demo`: the whole method, end to end, offline, in a few minutes on a CPU.

Stages (each logged as ``stage i/7``; the long ones show a progress bar):

1. load the model (default: the bundled ``musicgen-mini``; any MusicGen hub id or folder works);
2. synthesise a small note set: tonal GM programs the mini model was trained on, middle
   registers, the same number of clips for each of the 12 pitch classes (cached in ``work``);
3. extract the decoder's per-layer features (mean pooling, empty prompt; cached in ``work``);
4. train note directions: 12 one-vs-rest RFM probes per layer + a multiclass probe (fast budget);
5. generate clips from instrument prompts, the same prompts and seeds for every condition
   (a paired design): unsteered; steered toward the target note at each η0; causal controls at
   equal norm, schedule and layer weights (random, sign-flipped, ...; see
   :mod:`musicrfm.evaluation.controls`); and a crossfade from the target to a second note;
6. evaluate every clip with the independent chroma note detector (it never sees MusicGen), and
   the prompted instrument with the offline timbre classifier (prompt adherence);
7. write the report folder: ``index.html`` (audio players, figures, tables), ``results.csv``
   (one row per clip), ``summary.csv/.md`` (accuracy with bootstrap 95% CI and n per condition),
   ``controls.csv/.md`` (concept minus each control, with CIs), figures and the directions.

``run_demo(...)`` returns a :class:`DemoResult` (tables and paths); it logs and never prints.
"""

from __future__ import annotations

import html
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# instruments named in the prompts: the captions the mini model was trained on
# (musicrfm.mini.data.TRAIN_PROGRAMS, in that order)
PROMPT_INSTRUMENTS = (
    "acoustic piano",
    "vibraphone",
    "marimba",
    "church organ",
    "nylon guitar",
    "violin",
    "choir",
    "trumpet",
    "clarinet",
    "flute",
    "square lead",
    "warm pad",
)
CONTROL_LABELS = {
    "random": "random direction",
    "flip": "sign-flipped direction",
    "orthogonal": "orthogonal direction",
    "other_class": "other note's direction",
}
STAGES = 7


@dataclass(frozen=True)
class DemoConfig:
    """What the demo does. :meth:`quick` is the reduced run used in CI."""

    # G -> D#: on the bundled mini model (2300 steps) only some note directions steer reliably:
    # a 12-note sweep at η0 = 1x (8 clips each, seed 11) hit A, A#, B, D#, F#, G 8/8, C 7/8,
    # D 4/8, E, G# 2/8, C# 1/8, F 0/8 (F lands on F#). Chosen after that sweep; --target changes it.
    target: str = "G"
    crossfade_to: str | None = "D#"  # None: the note a tritone away from the target
    clips_per_class: int = 24  # training clips per pitch class
    # SynTheory octaves 4-6 = MIDI 48-83, the mini model's low, middle and high registers
    octaves: tuple[int, ...] = (4, 5, 6)
    prompts: tuple[str, ...] = PROMPT_INSTRUMENTS[:8]
    register: str | None = "middle"  # appended to prompts as ", middle register"
    seeds_per_prompt: int = 4
    crossfade_clips: int = 8
    coefs: tuple[float, ...] | None = None  # None: relative_coefs x typical activation norm
    relative_coefs: tuple[float, ...] = (0.5, 1.0)
    controls: tuple[str, ...] = ("random", "flip", "orthogonal")
    seconds: float = 4.0
    budget: str = "fast"
    components: int = 4
    batch: int = 16
    instrument_check: bool = True
    examples_per_condition: int = 4

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A reduced run (CI): fewer training clips and generations, one η0."""
        base = cls(
            clips_per_class=12,
            prompts=PROMPT_INSTRUMENTS[:12],
            seeds_per_prompt=1,
            crossfade_clips=4,
            relative_coefs=(1.0,),
            seconds=3.0,
            instrument_check=False,
            examples_per_condition=2,
            controls=("random", "flip"),
        )
        return replace(base, **changes)


@dataclass
class DemoResult:
    """What a demo run measured and wrote.

    summary: one row per condition (and η0): accuracy, ci_low, ci_high, n, mean detector
    probability of the target, prompt adherence. comparisons: concept minus each other condition
    at the concept's strongest η0 (difference with a bootstrap 95% CI). results: one row per clip.
    files: name -> path of everything written. timings: seconds per stage.
    """

    out: Path
    html: Path
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    results: pd.DataFrame
    crossfade: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))

    def accuracy(self, condition: str, coef: float | None = None) -> dict[str, Any]:
        """The summary row of ``condition`` (at ``coef``; default: the strongest η0 it was run at)."""
        rows = self.summary[self.summary["condition"] == condition]
        if rows.empty:
            raise ConfigError(
                f"no condition {condition!r}; have {', '.join(self.summary['condition'].unique())}"
            )
        if coef is None:
            row = rows.loc[rows["coef"].abs().idxmax()]
        else:
            row = rows.loc[(rows["coef"] - coef).abs().idxmin()]
        return row.to_dict()

    @property
    def beats_controls(self) -> bool:
        """True when the concept direction's accuracy (strongest η0) exceeds every control and
        the unsteered baseline with a bootstrap 95% interval of the difference above zero."""
        return bool(len(self.comparisons)) and bool(self.comparisons["specific"].all())


# --------------------------------------------------------------------------- helpers
def default_work_dir() -> Path:
    """``$MUSICRFM_CACHE_DIR/demo`` or ``~/.cache/musicrfm/demo``."""
    base = os.environ.get("MUSICRFM_CACHE_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "musicrfm"
    return (root / "demo").expanduser()


def _pc(name: str) -> str:
    from musicrfm.theory import pitch_class, pitch_class_name

    return pitch_class_name(pitch_class(name))


def _load(model: Any, device: str) -> Any:
    from musicrfm.models import MusicGenAdapter, bundled_model_dirs, load_model

    if isinstance(model, MusicGenAdapter):
        return model
    name = "mini" if model in (None, "", "mini", "default") else str(model)
    try:
        return load_model(name, device=device)
    except ModelError as exc:
        if name != "mini":
            raise
        raise ModelError(
            "the bundled model musicgen-mini is missing (looked in "
            + ", ".join(str(d) for d in bundled_model_dirs())
            + "). Train it once with `musicrfm mini train --out models/musicgen-mini` "
            "(about 1-2 h on 2 CPU cores), set MUSICRFM_MINI_MODEL to a trained copy, or run the "
            "demo on another model with --model (a hub id such as facebook/musicgen-small, or a "
            f"local folder). ({exc})"
        ) from None


def _stage(i: int, text: str) -> float:
    log.info("stage %d/%d: %s", i, STAGES, text)
    return time.perf_counter()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not enabled, leave=False)


# --------------------------------------------------------------------------- stages
def learn_note_directions(
    adapter: Any,
    cfg: DemoConfig,
    work: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    timings: dict[str, float] | None = None,
) -> tuple[Any, Any, Any]:
    """Stages 2-4: synthesise the note set, extract pooled features, train the 12 note
    directions. Returns (dataset, features, TrainResult); the first two are cached in ``work``."""
    from musicrfm.capture import extract_features
    from musicrfm.probes import train_directions

    timings = {} if timings is None else timings
    t = _stage(2, f"synthesising {12 * cfg.clips_per_class} one-note clips into {work}")
    dataset = _dataset(adapter, cfg, work, seed, progress)
    counts = dataset.rows["label"].astype(str).value_counts()
    if len(counts) < 12:
        raise ModelError(f"the note set has only {len(counts)} pitch classes: {dict(counts)}")
    timings["synthesise"] = time.perf_counter() - t

    t = _stage(3, f"extracting features of {len(dataset)} clips (mean pooling, empty prompt)")
    features = extract_features(
        adapter, dataset, pooling="mean", prompt="", cache_dir=work / "features",
        progress=progress,
    )  # fmt: skip
    timings["extract"] = time.perf_counter() - t

    t = _stage(
        4, f"training note directions ({features.num_layers} layers x 12 notes + multiclass)"
    )
    trained = train_directions(
        features, label_column="label", concept="notes", task="binary", budget=cfg.budget,
        components=cfg.components, seed=seed, device=device, progress=progress,
    )  # fmt: skip
    timings["train"] = time.perf_counter() - t
    return dataset, features, trained


def _dataset(adapter: Any, cfg: DemoConfig, work: Path, seed: int, progress: bool) -> Any:
    from musicrfm.mini.data import TRAIN_PROGRAMS
    from musicrfm.synth import generate_dataset

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


def _auto_coefs(features: Any, cfg: DemoConfig) -> tuple[tuple[float, ...], float]:
    """η0 values: given, or ``relative_coefs`` x the median norm of the pooled activations (over
    clips and layers) -- a direction is a unit vector, so its strength only means something
    relative to the size of the residual stream it is added to."""
    scale = float(features.features.norm(dim=-1).median())
    if cfg.coefs is not None:
        return tuple(float(c) for c in cfg.coefs), scale
    return tuple(round(r * scale, 3) for r in cfg.relative_coefs), scale


@dataclass
class _Job:
    condition: str
    coef: float
    plan: Any  # SteeringPlan or None
    items: list[tuple[str, int]]
    target: str
    kind: str = "steady"  # or "crossfade"


def _jobs(cd: Any, cfg: DemoConfig, coefs: Sequence[float], seed: int, target: str, b: str):
    from musicrfm.evaluation.controls import control_directions
    from musicrfm.steering import SteeringPlan

    suffix = f", {cfg.register} register" if cfg.register else ""
    prompts = [p + suffix for p in cfg.prompts]
    seeds = [seed + 1000 * k for k in range(cfg.seeds_per_prompt)]
    items = [(p, s) for s in seeds for p in prompts]
    top = max(coefs, key=abs)
    jobs = [_Job("unsteered", 0.0, None, items, target)]
    for c in coefs:
        jobs.append(_Job("concept", c, SteeringPlan.single(cd, target, c), items, target))
    for kind in cfg.controls:
        # random/orthogonal: a different random direction for each generation seed, so the
        # control's estimate averages over directions instead of resting on a single draw
        draws = range(len(seeds)) if kind in ("random", "orthogonal") else [0]
        for k in draws:
            ctl = control_directions(cd, kind, target=target, seed=seed + k)
            sub = items if len(draws) == 1 else [(p, seeds[k]) for p in prompts]
            jobs.append(_Job(kind, top, SteeringPlan.single(ctl, target, top), sub, target))
    if cfg.crossfade_clips > 0:
        n_p = len(prompts)
        xf_items = [
            (prompts[i % n_p], seed + 7 + 1000 * (i // n_p)) for i in range(cfg.crossfade_clips)
        ]
        plan = SteeringPlan.crossfade(cd, target, b, top)
        jobs.append(_Job("crossfade", top, plan, xf_items, f"{target}->{b}", "crossfade"))
    return jobs


def sampling_options(adapter: Any) -> dict[str, float]:
    """Guidance scale, temperature and top-k from the model's own generation config (the mini
    model recommends its own; MusicGen's hub checkpoints ship guidance 3, top-k 250, T=1)."""
    gc = getattr(getattr(adapter, "model", None), "generation_config", None)
    out: dict[str, float] = {}
    for key in ("guidance_scale", "temperature", "top_k"):
        value = getattr(gc, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def _generate_all(
    adapter: Any, jobs: list[_Job], cfg: DemoConfig, audio_dir: Path, progress: bool
) -> list[dict[str, Any]]:
    """Generate every job's clips and write them as FLAC + JSON sidecars.

    Items are generated in chunks that share one seed (a chunk's sampling stream is seeded with
    it), and every condition uses the same chunks, so the sampling noise is paired across
    conditions: differences come from the steering alone.
    """
    from musicrfm.generate import generate

    total = sum(len(j.items) for j in jobs)
    records: list[dict[str, Any]] = []
    audio_dir.mkdir(parents=True, exist_ok=True)
    with _progress(total, "generate", progress) as bar:
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
                                "concept": "notes",
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


def _evaluate(records: list[dict[str, Any]], progress: bool) -> tuple[pd.DataFrame, dict]:
    """Detector label/confidence/target probability per clip; crossfade traces kept aside."""
    from musicrfm.evaluation.detectors import detect_note

    rows, traces = [], []
    with _progress(len(records), "detect", progress) as bar:
        for rec in records:
            audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
            crossfade = rec["kind"] == "crossfade"
            opts = {"window_s": 0.5, "hop_s": 0.25} if crossfade else {}
            d = detect_note(audio, rec["_sr"], **opts)
            first = rec["target"].split("->")[0]
            probs = d.probs if d.probs is not None else np.full(12, np.nan)
            row = {k: v for k, v in rec.items() if not k.startswith("_")}
            row.update(
                label=d.label,
                confidence=float(d.confidence),
                target_prob=float(probs[PITCH_CLASSES.index(first)]),
                correct=bool(d.label == first) if not crossfade else np.nan,
                probs=probs.tolist(),
            )
            rows.append(row)
            if crossfade:
                traces.append(d)
            bar.update(1)
    return pd.DataFrame(rows), {"detections": traces}


def _crossfade_summary(dets: list[Any], a: str, b: str, seconds: float) -> dict[str, Any]:
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


def _instrument(
    dataset: Any, frame: pd.DataFrame, records: list[dict], seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Prompt adherence: does the offline timbre classifier hear the prompted instrument family?"""
    from musicrfm.evaluation.instrument import prompt_adherence, train_instrument_classifier

    clf, report = train_instrument_classifier(
        dataset, concepts=("notes",), limit_per_class=12, seed=seed
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
    info = {
        "classifier_test_accuracy": report.get("test_accuracy"),
        "classifier_n_test": report.get("n_test"),
        "classes": report.get("classes"),
    }
    return frame, info


def _summarize(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from musicrfm.evaluation.metrics import bootstrap_ci
    from musicrfm.evaluation.report import compare_conditions

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


# --------------------------------------------------------------------------- figures
def _plot_conditions(summary: pd.DataFrame, path: Path, target: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    labels, colors = [], []
    palette = {"unsteered": "#888888", "concept": "#1f77b4"}
    for _, r in summary.iterrows():
        name = r["condition"] if r["condition"] != "concept" else f"{target} direction"
        labels.append(f"{name}\nη0={r['coef']:g}" if r["coef"] else name)
        colors.append(palette.get(r["condition"], "#d62728"))
    x = np.arange(len(summary))
    acc = summary["accuracy"].to_numpy()
    err = np.vstack([acc - summary["ci_low"].to_numpy(), summary["ci_high"].to_numpy() - acc])
    ax.bar(x, acc, color=colors, alpha=0.85)
    ax.errorbar(x, acc, yerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1)
    for xi, a, hi, n in zip(x, acc, summary["ci_high"], summary["n"]):
        ax.annotate(f"{a:.2f}\nn={n}", (xi, max(a, hi)), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=7)  # fmt: skip
    ax.axhline(1 / 12, color="grey", linestyle=":", linewidth=1, label="chance (1/12)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel(f"share of clips detected as {target}")
    ax.set_title("Target-note accuracy by condition (independent detector, 95% bootstrap CI)")
    ax.legend(fontsize=7, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _plot_crossfade(xf: dict[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.subplots()
    t = np.asarray(xf["times"])
    for key, name, color in (("a", xf["a"], "#1f77b4"), ("b", xf["b"], "#d62728")):
        m, sd = np.asarray(xf[f"prob_{key}"]), np.asarray(xf[f"prob_{key}_sd"])
        ax.plot(t, m, marker="o", color=color, label=f"P({name}) detected")
        ax.fill_between(t, np.clip(m - sd, 0, 1), np.clip(m + sd, 0, 1), color=color, alpha=0.15)
    twin = ax.twinx()
    s = np.linspace(0, xf["seconds"], 50)
    twin.plot(
        s, 1 - s / xf["seconds"], "--", color="#1f77b4", alpha=0.5, label=f"schedule {xf['a']}"
    )
    twin.plot(s, s / xf["seconds"], "--", color="#d62728", alpha=0.5, label=f"schedule {xf['b']}")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("schedule φ(t)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("detector probability (mean ± sd)")
    ax.set_title(f"Crossfade {xf['a']} → {xf['b']}: detector trace over time (n={xf['n']} clips)")
    lines = ax.get_legend_handles_labels()
    lines2 = twin.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------- report
def _audio_cell(path: str, out: Path, caption: str) -> str:
    rel = Path(os.path.relpath(path, out)).as_posix()
    return (
        f"<figure><audio controls preload='none' src='{html.escape(rel)}'></audio>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")


def _write_report(
    out: Path,
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    comp: pd.DataFrame,
    xf: dict[str, Any],
    settings: dict[str, Any],
    timings: dict[str, float],
    figures: dict[str, Path],
) -> Path:
    from musicrfm.evaluation.report import specificity_statement, write_html

    target = settings["target"]
    rel = {k: Path(os.path.relpath(v, out)).as_posix() for k, v in figures.items()}
    c = summary[summary["condition"] == "concept"].iloc[-1]
    u = summary[summary["condition"] == "unsteered"].iloc[0]
    headline = (
        f"<p class='note'>Steering {html.escape(settings['model_id'])} toward the note "
        f"<b>{target}</b> at η0={c['coef']:g}: the independent chroma detector hears {target} in "
        f"<b>{c['accuracy']:.2f}</b> [{c['ci_low']:.2f}, {c['ci_high']:.2f}] of n={c['n']} clips, "
        f"against {u['accuracy']:.2f} [{u['ci_low']:.2f}, {u['ci_high']:.2f}] unsteered "
        f"(chance 1/12 = 0.083). Intervals are 95% percentile-bootstrap CIs.</p>"
    )
    statement = specificity_statement(comp.rename(columns={"concept_coef": "coef"}))
    how = (
        "<ul>"
        f"<li>Training data: {settings['train_clips']} synthetic one-note clips "
        f"({settings['clips_per_class']} per pitch class, {len(settings['programs'])} GM programs, "
        f"MIDI {settings['midi_range']}), rendered offline.</li>"
        f"<li>Features: output of each of the {settings['num_layers']} decoder blocks, mean-pooled "
        "over the clip, empty text prompt.</li>"
        f"<li>Directions: top AGOP eigenvector of one-vs-rest RFM probes per layer and note "
        f"(budget '{settings['budget']}'); validation AUC of the {target}-vs-rest probe per layer: "
        f"{', '.join(f'{s:.2f}' for s in settings['target_auc_per_layer'])}; multiclass probe "
        f"best validation accuracy {settings['multiclass_val_accuracy']:.2f} (chance 0.083).</li>"
        f"<li>Steering: the unit direction × η0 added to every decoder block's output at every "
        f"step (uniform layer weights, gate p=1). η0 values {settings['coefs']}"
        + (
            f" = {settings['relative_coefs']} × the median norm of the pooled activations "
            f"({settings['activation_scale']:.1f})"
            if settings["relative_coefs"]
            else f" (given; median activation norm {settings['activation_scale']:.1f})"
        )
        + ".</li>"
        f"<li>Generation: prompts {', '.join(settings['prompts'])}; "
        f"{settings['seeds_per_prompt']} seed(s) each, {settings['seconds']:g} s clips, sampling "
        f"{settings['sampling'] or 'defaults'} (the model's generation config); the same "
        "prompts and seeds in every condition.</li>"
        "<li>Controls: the same plan with the target's vectors replaced at equal norm "
        f"({', '.join(CONTROL_LABELS.get(k, k) for k in settings['controls'])}); random and "
        "orthogonal controls draw a new direction for each generation seed.</li>"
        "</ul>"
    )
    sections = [
        ("Result", headline + f"<p><b>{html.escape(statement)}</b></p>"),
        (
            "Target accuracy by condition",
            f"<img src='{rel['conditions']}' alt='accuracy by condition'>" + _table_html(summary),
        ),
        ("Causal controls (concept minus control, 95% bootstrap CI)", _table_html(comp)),
    ]
    if "coef_sweep" in rel:
        sections.append(("Accuracy vs η0", f"<img src='{rel['coef_sweep']}' alt='sweep'>"))
    if xf.get("n"):
        xf_rows = frame[frame["kind"] == "crossfade"]
        cells = "".join(
            _audio_cell(p, out, f"{pr} → detected {lab}")
            for p, pr, lab in zip(xf_rows["audio_path"], xf_rows["prompt"], xf_rows["label"])
        )
        sections.append(
            (
                f"Crossfade {xf['a']} → {xf['b']}",
                f"<img src='{rel['crossfade']}' alt='crossfade trace'>"
                f"<p>First window detected as {xf['a']} in {xf['starts_on_a']:.2f} of clips; last "
                f"window detected as {xf['b']} in {xf['ends_on_b']:.2f} (n={xf['n']}). The two "
                "directions are added with a linear decay and a linear rise over the whole clip "
                "at the strongest η0 (SteeringPlan.crossfade). Note: a model trained only on "
                "single sustained notes (like the bundled mini model) has never heard a note "
                "change mid-clip and tends to hold the note it started with.</p>" + cells,
            )
        )
    panels = "".join(
        f"<img src='{rel[k]}' width='520' alt='{k}'>" for k in ("panel_unsteered", "panel_concept")
        if k in rel
    )  # fmt: skip
    sections.append(("Spectrogram and chroma (same prompt and seed)", panels))
    listen = []
    steady = frame[frame["kind"] == "steady"]
    for (cond, coef), g in steady.groupby(["condition", "coef"], sort=False):
        cells = "".join(
            _audio_cell(p, out, f"{pr} → {lab}")
            for p, pr, lab in list(zip(g["audio_path"], g["prompt"], g["label"]))[
                : settings["examples_per_condition"]
            ]
        )
        listen.append(f"<h3>{html.escape(str(cond))} (η0={coef:g})</h3>{cells}")
    sections.append(("Listen", "".join(listen)))
    sections.append(("How this was made", how))
    runtime = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    sections.append(
        (
            "Reproduce",
            f"<pre>{html.escape(settings['command'])}</pre><p>Runtime: {runtime} "
            f"(total {sum(timings.values()):.0f} s). Every clip's JSON sidecar holds its full "
            "plan, seed and model info. Per-clip results: <a href='results.csv'>results.csv</a>; "
            "summary: <a href='summary.csv'>summary.csv</a>.</p>",
        )
    )
    return write_html(out / "index.html", title="MusicRFM demo", sections=sections)


# --------------------------------------------------------------------------- main
def run_demo(
    *,
    model: Any = "mini",
    out: str | os.PathLike[str] = "demo-report",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    target: str | None = None,
    quick: bool = False,
    config: DemoConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
) -> DemoResult:
    """Run the demo and write the report; see the module docstring for the stages.

    Parameters
    ----------
    model: "mini" (bundled, default), a hub id, a local folder, ``random:tiny``, or an adapter.
    out: report folder (created; files in it are overwritten).
    work: cache for the synthetic dataset and the features (default :func:`default_work_dir`).
    seed: seeds the dataset sample, probe splits, controls and generation.
    target: the note to steer toward (default ``config.target``, "G").
    quick: the reduced CI run (:meth:`DemoConfig.quick`); ignored when ``config`` is given.
    config: full control over sizes, prompts, η0, controls.
    """
    import torch

    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    if target is not None:
        cfg = replace(cfg, target=target)
    tgt = _pc(cfg.target)
    b = (
        _pc(cfg.crossfade_to)
        if cfg.crossfade_to
        else PITCH_CLASSES[(PITCH_CLASSES.index(tgt) + 6) % 12]
    )
    if b == tgt:
        b = PITCH_CLASSES[(PITCH_CLASSES.index(tgt) + 6) % 12]
        log.warning("the crossfade needs two different notes; using %s -> %s", tgt, b)
    unknown = [k for k in cfg.controls if k not in CONTROL_LABELS]
    if unknown:
        raise ConfigError(f"unknown control(s) {unknown}; valid: {', '.join(CONTROL_LABELS)}")
    if cfg.clips_per_class < 6:
        raise ConfigError(
            f"clips_per_class must be at least 6 (train/val/test splits), got {cfg.clips_per_class}"
        )
    if not cfg.prompts or cfg.seeds_per_prompt < 1:
        raise ConfigError("the demo needs at least one prompt and one seed per prompt")
    out = Path(out)
    work_dir = Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}

    t = _stage(1, f"loading model {model if isinstance(model, str) else type(model).__name__}")
    adapter = _load(model, device)
    timings["load"] = time.perf_counter() - t

    dataset, features, trained = learn_note_directions(
        adapter, cfg, work_dir, seed=seed, device=device, progress=progress, timings=timings
    )
    cd = trained.directions
    coefs, scale = _auto_coefs(features, cfg)
    out.mkdir(parents=True, exist_ok=True)
    cd.save(out / "directions" / "notes")

    t = _stage(5, "generating unsteered, steered, control and crossfade clips")
    jobs = _jobs(cd, cfg, coefs, seed, tgt, b)
    torch.manual_seed(seed)
    records = _generate_all(adapter, jobs, cfg, out / "audio", progress)
    timings["generate"] = time.perf_counter() - t

    t = _stage(6, f"evaluating {len(records)} clips with the independent note detector")
    frame, extra = _evaluate(records, progress)
    xf = _crossfade_summary(extra["detections"], tgt, b, cfg.seconds)
    inst_info: dict[str, Any] = {}
    if cfg.instrument_check:
        steady = [r for r in records if r["kind"] == "steady"]
        part, inst_info = _instrument(dataset, frame[frame["kind"] == "steady"], steady, seed)
        frame = pd.concat([part, frame[frame["kind"] != "steady"]], ignore_index=True)
    summary, comp = _summarize(frame, seed)
    timings["evaluate"] = time.perf_counter() - t

    t = _stage(7, f"writing the report to {out}")
    files = _write_outputs(out, frame, summary, comp, xf, tgt)
    mc = trained.multiclass_scores
    settings = {
        "model_id": str(adapter.model_id),
        "num_layers": int(adapter.num_layers),
        "hidden_size": int(adapter.hidden_size),
        "target": tgt,
        "crossfade_to": b,
        "coefs": list(coefs),
        "relative_coefs": list(cfg.relative_coefs) if cfg.coefs is None else None,
        "activation_scale": scale,
        "train_clips": len(dataset),
        "midi_range": f"{12 * min(cfg.octaves)}-{12 * max(cfg.octaves) + 11}",
        "programs": sorted(int(p) for p in dataset.rows["program"].unique()),
        "target_auc_per_layer": cd.scores[:, cd.class_index(tgt)].tolist(),
        "multiclass_val_accuracy": max(
            (v["val_accuracy"] for v in mc.values()), default=float("nan")
        ),
        "prompts": [p for p in cfg.prompts],
        "sampling": sampling_options(adapter),
        "seed": seed,
        "quick": bool(quick and config is None),
        "command": command
        or f"musicrfm demo --seed {seed} --target {tgt}" + (" --quick" if quick else ""),
        "instrument": inst_info,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k
            in (
                "clips_per_class",
                "seeds_per_prompt",
                "seconds",
                "budget",
                "controls",
                "examples_per_condition",
            )
        },
    }
    figures = {
        k: v for k, v in files.items() if k.startswith(("panel", "conditions", "crossfade", "coef"))
    }
    timings["report"] = 0.0
    html_path = _write_report(out, frame, summary, comp, xf, settings, timings, figures)
    timings["report"] = time.perf_counter() - t
    # rewrite with the final timing included
    html_path = _write_report(out, frame, summary, comp, xf, settings, timings, figures)
    files["html"] = html_path
    (out / "demo.json").write_text(
        json.dumps({"settings": settings, "timings": timings, "crossfade": xf,
                    "summary": summary.to_dict(orient="records"),
                    "controls": comp.to_dict(orient="records")}, indent=2, default=_json_default)
    )  # fmt: skip
    files["json"] = out / "demo.json"
    log.info("demo finished in %.0f s: %s", sum(timings.values()), html_path)
    return DemoResult(out, html_path, summary, comp, frame, xf, settings, timings, files)


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (Path,)):
        return str(v)
    if isinstance(v, pd.DataFrame):
        return v.to_dict(orient="records")
    return str(v)


def _write_outputs(
    out: Path, frame: pd.DataFrame, summary: pd.DataFrame, comp: pd.DataFrame, xf: dict, tgt: str
) -> dict[str, Path]:
    from musicrfm.evaluation.report import plot_accuracy_vs_coef, plot_audio_panels, write_table

    files: dict[str, Path] = {}
    per_clip = frame.drop(columns=["probs"], errors="ignore")
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    files["results"] = out / "results.csv"
    csv, md = write_table(
        summary, out, "summary", title="Target-note accuracy by condition (95% bootstrap CI)"
    )
    files.update(summary_csv=csv, summary_md=md)
    if len(comp):
        csv, md = write_table(
            comp, out, "controls", title="Concept minus each control (95% bootstrap CI)"
        )
        files.update(controls_csv=csv, controls_md=md)
    fig = out / "figures"
    files["conditions"] = _plot_conditions(summary, fig / "accuracy_by_condition.png", tgt)
    if summary["condition"].eq("concept").sum() > 1:
        sweep = summary.assign(concept="notes", condition=summary["condition"])
        files["coef_sweep"] = plot_accuracy_vs_coef(
            sweep, fig / "accuracy_vs_coef.png", chance={"notes": 1 / 12}
        )
    if xf.get("n"):
        files["crossfade"] = _plot_crossfade(xf, fig / "crossfade_trace.png")
    steady = frame[frame["kind"] == "steady"]
    first = steady.iloc[0]
    top = steady.loc[steady["condition"] == "concept", "coef"].max()
    pair = {
        "panel_unsteered": steady[(steady["condition"] == "unsteered") & (steady["prompt"] == first["prompt"]) & (steady["seed"] == first["seed"])],
        "panel_concept": steady[(steady["condition"] == "concept") & (steady["coef"] == top) & (steady["prompt"] == first["prompt"]) & (steady["seed"] == first["seed"])],
    }  # fmt: skip
    import soundfile as sf

    for key, rows in pair.items():
        if rows.empty:
            continue
        r = rows.iloc[0]
        y, sr = sf.read(r["audio_path"], dtype="float32")
        title = f"{r['condition']} (η0={r['coef']:g}) — {r['prompt']} — detected {r['label']}"
        files[key] = plot_audio_panels(y, sr, fig / f"{key}.png", title=title)
    return files
