"""`musicrfm mini schedules`: learn a concept's directions (notes by default; chord qualities or
intervals), steer under each paper schedule and an A→B crossfade, read the concept detector's
per-window trace (:mod:`.readers`) and write the report folder."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import default_work_dir
from musicrfm.experiments.demo.report import json_default
from musicrfm.experiments.demo.stages import Job, generate_all, learn_note_directions
from musicrfm.experiments.schedules.config import (
    MONOTONE,
    SchedulesConfig,
    paper_schedules,
    parse_coef,
    release_schedule,
)
from musicrfm.experiments.schedules.readers import concept_classes, named_classes, read_trace
from musicrfm.experiments.schedules.scoring import (
    crossfade_verdict,
    mean_trace,
    phi_at,
    schedule_verdict,
    third_labels,
    trace_correlation,
)

RESULT_NAME = "schedules"
RELEASE_NOTES = {
    "complement": "1 - φ(t) of each schedule (keyframes on the step grid), the target negated; "
    "the crossfade has none",
    "drop": "max φ(s<=t) - φ(t) of each schedule, how far φ has fallen from its peak (keyframes "
    "on the step grid; none for a rise), the target negated; the crossfade has none",
}


def run_schedules(
    *,
    model: Any = "mini",
    out: str | os.PathLike[str] = "schedules-report",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: SchedulesConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    directions: Any = None,
) -> dict[str, Any]:
    """Measure every schedule and the crossfade; write ``schedules.json``, ``schedules.md``,
    ``results.csv`` and ``schedules.png`` into ``out``. Returns the JSON record.

    ``model``: a loaded `ModelAdapter` or anything :func:`musicrfm.models.load_model` takes.
    ``directions``: `ConceptDirections` of ``config.concept`` to use instead of learning them
    as the demo does (a relative coef then needs their recorded activation norm)."""
    from musicrfm.models import load_model

    cfg = config or SchedulesConfig()
    cfg.validate()
    cfg = cfg.canonical()
    out, work_dir = Path(out), Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = model if hasattr(model, "frame_rate") else load_model(model, device=device)
    timings["load"] = time.perf_counter() - t
    if directions is None:
        _, features, trained = learn_note_directions(
            adapter, cfg.data, work_dir, seed=seed, device=device, progress=progress,
            timings=timings, concept=cfg.concept,
        )  # fmt: skip
        directions = trained.directions
        scale: float | None = float(features.features.norm(dim=-1).median())
    else:
        scale = directions.activation_norm()
    relative, absolute = parse_coef(cfg.coef)
    if relative is not None and scale is None:
        raise ConfigError(
            f"coef {cfg.coef} is relative, but the given directions record no activation norm"
        )
    eta = round(relative * scale, 3) if relative is not None else float(absolute)
    directions = named_classes(directions, cfg.concept)  # strike intervals: "7" -> "P5"
    out.mkdir(parents=True, exist_ok=True)
    missing = [c for c in (cfg.target, *cfg.crossfade) if c not in directions.classes]
    if missing:
        raise ConfigError(
            f"the {cfg.concept} directions have no class {', '.join(missing)}; they have "
            f"{', '.join(directions.classes)}"
        )
    directions.save(out / "directions" / cfg.concept)

    frame_rate = float(adapter.frame_rate)
    scheds = {
        k: v for k, v in paper_schedules(cfg.seconds, frame_rate).items() if k in cfg.schedules
    }
    jobs = _jobs(directions, cfg, scheds, eta, seed, frame_rate)
    t = time.perf_counter()
    records = generate_all(adapter, jobs, cfg.data, out / "audio", progress)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    rows, traces = _detect(records, cfg)
    record = _score(rows, traces, cfg, scheds, frame_rate, seed)
    timings["evaluate"] = time.perf_counter() - t
    record["settings"] = {
        "model_id": str(adapter.model_id),
        "concept": cfg.concept,
        "train_set": cfg.train_set,
        "frame_rate": frame_rate,
        "coef": cfg.coef,
        "eta0": eta,
        "activation_scale": scale,
        "schedules": {k: s.describe() for k, s in scheds.items()},
        "release": cfg.release,
        "release_eta": round(eta * cfg.release, 3),
        "release_shape": cfg.release_shape,
        "release_schedule": RELEASE_NOTES[cfg.release_shape] if cfg.release else None,
        "seed": seed,
        "config": json.loads(json.dumps(asdict(cfg), default=list)),
        "command": command or f"musicrfm mini schedules --seed {seed}",
    }
    record["timings"] = timings
    record = json.loads(json.dumps(record, default=json_default))  # plain JSON types
    _write_report(record, pd.DataFrame(rows), out)
    return record


def clip_items(cfg: SchedulesConfig, seed: int) -> list[tuple[str, int]]:
    """The (prompt, seed) pairs every condition generates: prompts in turn, a new seed per round."""
    prompts = cfg.data.prompt_texts()
    seed = seed if cfg.sample_seed is None else cfg.sample_seed
    return [
        (prompts[i % len(prompts)], seed + 1000 * (i // len(prompts))) for i in range(cfg.clips)
    ]


def schedule_plan(directions: Any, cfg: SchedulesConfig, schedule: Any, eta: float,
                  frame_rate: float) -> Any:  # fmt: skip
    """The plan of one schedule: the target at η0·φ(t), and with ``cfg.release`` r > 0 the same
    direction negated at η0·r·ρ(t) (the release; ρ = 1 - φ, or φ's drop from its peak with
    ``release_shape="drop"``). r = 0, or a ρ that is 0 throughout, is the one-direction plan."""
    from musicrfm.steering.plan import SteeringDirection, SteeringPlan

    plan = SteeringPlan.single(directions, cfg.target, eta, schedule=schedule)
    rho = (
        release_schedule(schedule, cfg.seconds, frame_rate, cfg.release_shape)
        if cfg.release
        else None
    )
    if rho is not None:
        plan.directions.append(
            SteeringDirection(
                directions,
                target=cfg.target,
                coef=-eta * cfg.release,
                schedule=rho,
                name="release",
            )
        )
    return plan


def _jobs(
    directions: Any, cfg: SchedulesConfig, scheds: dict, eta: float, seed: int,
    frame_rate: float,
) -> list[Job]:  # fmt: skip
    from musicrfm.steering.plan import SteeringPlan

    items = clip_items(cfg, seed)
    jobs = [
        Job(
            name,
            eta,
            schedule_plan(directions, cfg, s, eta, frame_rate),
            items,
            cfg.target,
            "schedule",
        )  # fmt: skip
        for name, s in scheds.items()
    ]
    if cfg.unsteered_control:
        jobs.append(Job("unsteered", 0.0, None, items, cfg.target, "unsteered"))
    a, b = cfg.crossfade
    plan = SteeringPlan.crossfade(directions, a, b, eta, duration=cfg.seconds, unit="seconds")
    jobs.append(Job("crossfade", eta, plan, items, f"{a}->{b}", "crossfade"))
    return jobs


def _detect(records: list[dict[str, Any]], cfg: SchedulesConfig) -> tuple[list[dict], list[Any]]:
    """The concept detector's clip label and per-window trace of every clip."""
    rows, traces = [], []
    for rec in records:
        audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
        tr = read_trace(cfg.concept, audio, rec["_sr"], window_s=cfg.window_s, hop_s=cfg.hop_s,
                        interval_mode=cfg.interval_mode)  # fmt: skip
        row = {k: v for k, v in rec.items() if not k.startswith("_")}
        row["label"] = tr.label
        rows.append(row)
        traces.append(tr)
    return rows, traces


def _score(
    rows: list[dict], traces: list[Any], cfg: SchedulesConfig, scheds: dict, frame_rate: float,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Per schedule: the correlations and their verdict, the unsteered control's correlation
    with the same φ, and the mean traces; the crossfade's thirds and verdict."""
    classes = concept_classes(cfg.concept)
    ti = classes.index(cfg.target)
    by_cond: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_cond.setdefault(row["condition"], []).append(i)

    def sounding(idx: list[int]) -> list[int]:
        return [i for i in idx if traces[i].sounding]

    def target_prob(i: int) -> np.ndarray:
        return traces[i].probs[:, ti]

    base = sounding(by_cond.get("unsteered", []))
    summary, curves = [], {}
    times_all = [traces[i].times for i in sounding([j for v in by_cond.values() for j in v])]
    times = times_all[0][: min(len(t) for t in times_all)] if times_all else np.zeros(0)
    for name, sched in scheds.items():
        idx = by_cond.get(name, [])
        rs = []
        for i in idx:
            d = traces[i]
            if not d.sounding:
                rs.append(float("nan"))  # a silent clip: no trace
                continue
            phi = phi_at(sched, d.times, frame_rate, cfg.seconds)
            rs.append(trace_correlation(phi, target_prob(i), d.labels))
            rows[i]["r"] = rs[-1]
        verdict = schedule_verdict(rs, monotone=name in MONOTONE, gate=cfg.gate, seed=seed)
        phi_t = phi_at(sched, times, frame_rate, cfg.seconds)
        mean, sd = mean_trace([target_prob(i) for i in sounding(idx)]) if sounding(idx) else (
            np.full(len(times), np.nan), np.full(len(times), np.nan))  # fmt: skip
        entry = {
            "schedule": name,
            **verdict,
            "r_of_mean_trace": trace_correlation(phi_t, mean[: len(times)]),
        }
        if base:
            ctl = [
                trace_correlation(
                    phi_at(sched, traces[i].times, frame_rate, cfg.seconds),
                    target_prob(i),
                    traces[i].labels,
                )  # fmt: skip
                for i in base
            ]
            c = schedule_verdict(ctl, monotone=False, gate=cfg.gate, seed=seed)
            entry.update(unsteered_r=c["r_mean"], unsteered_ci_low=c["r_ci_low"],
                         unsteered_ci_high=c["r_ci_high"])  # fmt: skip
        summary.append(entry)
        curves[name] = {"phi": phi_t.tolist(), "mean": mean[: len(times)].tolist(),
                        "sd": sd[: len(times)].tolist()}  # fmt: skip
    if base:
        m, s = mean_trace([target_prob(i) for i in base])
        curves["unsteered"] = {"mean": m[: len(times)].tolist(), "sd": s[: len(times)].tolist()}

    a, b = cfg.crossfade
    starts, ends, pa, pb = [], [], [], []
    for i in by_cond.get("crossfade", []):
        d = traces[i]
        if not d.sounding:
            starts.append("silent")
            ends.append("silent")
            continue
        first, last = third_labels(d.times, d.probs, d.labels, cfg.seconds, classes)
        starts.append(first)
        ends.append(last)
        rows[i].update(start_label=first, end_label=last)
        pa.append(d.probs[:, classes.index(a)])
        pb.append(d.probs[:, classes.index(b)])
    crossfade = (
        crossfade_verdict(starts, ends, a, b, gate=cfg.crossfade_gate) if starts else {"n": 0}
    )
    if starts and base:
        # the same thirds of the unsteered clips: how often A and B are heard anyway
        thirds = [third_labels(traces[i].times, traces[i].probs, traces[i].labels, cfg.seconds,
                               classes) for i in base]  # fmt: skip
        ctl = crossfade_verdict([f for f, _ in thirds], [e for _, e in thirds], a, b,
                                gate=cfg.crossfade_gate)  # fmt: skip
        crossfade["unsteered"] = {k: ctl[k] for k in ctl if k.startswith(("starts", "ends", "n"))}
    if pa:
        rise = paper_schedules(cfg.seconds, frame_rate)["linear-rise"]
        phi_b = phi_at(rise, times, frame_rate, cfg.seconds)
        curves["crossfade"] = {
            "a": mean_trace(pa)[0][: len(times)].tolist(),
            "b": mean_trace(pb)[0][: len(times)].tolist(),
            "phi_a": (1 - phi_b).tolist(),
            "phi_b": phi_b.tolist(),
        }
    monotone = [e for e in summary if e["monotone"]]
    overall = {
        "monotone_passed": all(e["passed"] for e in monotone) if monotone else None,
        "monotone_passed_count": sum(bool(e["passed"]) for e in monotone),
        "monotone_count": len(monotone),
        "crossfade_passed": crossfade.get("passed"),
    }
    overall["passed"] = bool(overall["monotone_passed"] is not False and crossfade.get("passed"))
    return {
        "overall": overall,
        "schedules": summary,
        "crossfade": crossfade,
        "traces": {"times": np.asarray(times).tolist(), **curves},
        "target": cfg.target,
        "concept": cfg.concept,
    }


def _write_report(record: dict[str, Any], frame: pd.DataFrame, out: Path) -> None:
    """``schedules.json``, ``schedules.md``, ``results.csv`` and ``schedules.png``."""
    from musicrfm.experiments.schedules.figures import plot_schedules
    from musicrfm.experiments.schedules.tables import schedules_markdown

    (out / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2))
    (out / f"{RESULT_NAME}.md").write_text(schedules_markdown(record))
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    plot_schedules(record, out / f"{RESULT_NAME}.png")
