"""`musicrfm mini pairs`: learn each part's directions separately, write one two-direction plan
file per pair, generate with it (and with each direction alone, the controls, the conflict
case and unsteered, all on the same prompts and seeds), judge every clip and write the report."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import default_work_dir
from musicrfm.experiments.demo.report import json_default
from musicrfm.experiments.demo.stages import Job, generate_all, learn_note_directions
from musicrfm.experiments.pairs.config import PairsConfig
from musicrfm.experiments.pairs.scoring import (
    ALONE,
    JOINT,
    UNSTEERED,
    adherence_change,
    conflict_summary,
    control_rows,
    crosstalk_rows,
    pair_rows,
    pair_verdict,
    tempo_labels,
    tempo_rows,
    tempo_threshold,
)
from musicrfm.experiments.schedules.run import clip_items  # the same (prompt, seed) draw

RESULT_NAME = "pairs"
WINDOW_S, HOP_S = 0.5, 0.25  # the note detector's trace windows (the conflict case reads them)


def run_pairs(
    *,
    model: Any = "mini",
    out: str | os.PathLike[str] = "pairs-report",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: PairsConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    directions: dict[str, Any] | None = None,
    judge: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Measure every pair, the controls and the conflict case; write ``pairs.json``,
    ``pairs.md``, ``results.csv``, ``pairs.png`` and the plan files (``plans/*.toml``) into
    ``out``. Returns the JSON record.

    ``directions``: {concept: ConceptDirections} to use instead of training them (each must
    record its activation norm for a relative coef). ``judge``: a folder with a saved timbre
    judge for this codec to judge adherence by (``mini judge --out DIR --polyphonic``) instead of
    the model folder's; checked before any clip is generated."""
    from musicrfm.models import load_model

    cfg = (config or PairsConfig()).normalized()
    cfg.validate()
    out, work_dir = Path(out), Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = model if hasattr(model, "frame_rate") else load_model(model, device=device)
    timings["load"] = time.perf_counter() - t
    saved_judge = _judge(adapter, judge)
    concepts = (cfg.first.concept, cfg.second.concept)
    t = time.perf_counter()
    dirs = dict(directions or {})
    for concept in concepts:
        if concept not in dirs:
            dirs[concept] = learn_part_directions(
                adapter, concept, cfg, work_dir, seed=seed, device=device, progress=progress
            )
    timings["directions"] = time.perf_counter() - t
    paths = {c: dirs[c].save(out / "directions" / c) for c in concepts}
    frame_rate = float(adapter.frame_rate)
    total_steps = int(math.ceil(cfg.data.seconds * frame_rate))

    jobs, plans = _jobs(dirs, paths, cfg, out, seed)
    validator = _validate_plans(plans, adapter, total_steps)
    t = time.perf_counter()
    records = generate_all(adapter, jobs, cfg.data, out / "audio", progress)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    frame, traces = detect_all(records, concepts, cfg)
    adherence_info = _adherence(adapter, frame, records, seed, saved_judge)
    if adherence_info is not None:
        frame, adherence_info = adherence_info
    record = score(frame, traces, cfg, seed=seed)
    timings["evaluate"] = time.perf_counter() - t
    record["plans"] = {
        name: {"file": Path(os.path.relpath(p, out)).as_posix(), "validator": validator[name]}
        for name, p in plans.items()
    }
    record["settings"] = {
        "model_id": str(adapter.model_id),
        "frame_rate": frame_rate,
        "parts": {
            k: {
                **asdict(part),
                "eta0": _eta(plans, i),
                "activation_norm": dirs[part.concept].activation_norm(),
            }  # fmt: skip
            for i, (k, part) in enumerate((("first", cfg.first), ("second", cfg.second)))
        },
        "adherence_judge": adherence_info,
        "detectors": {
            "notes": f"detect_note(window_s={WINDOW_S}, hop_s={HOP_S})",
            "chords": "detect_chord (quality = label, root = details['root'])",
            "tempos": "detect_tempo (details['bpm'], as the tempo headline's detect_bpm) against "
            f"the unsteered median: faster >= {1 + cfg.tempo_change:g}x, slower <= "
            f"{1 - cfg.tempo_change:g}x",
            "beats": "detect_tempo's BPM within 4% of the part's target tempo",
        },
        "seed": seed,
        "config": json.loads(json.dumps(asdict(cfg), default=list)),
        "command": command or f"musicrfm mini pairs --seed {seed}",
    }
    record["timings"] = timings
    record = json.loads(json.dumps(record, default=json_default))  # plain JSON types
    _write_report(record, frame, out)
    return record


def learn_part_directions(
    adapter: Any, concept: str, cfg: PairsConfig, work: Path, *, seed: int, device: str,
    progress: bool,
) -> Any:  # fmt: skip
    """One part's directions, trained as the demo and the headline train them (cached set and
    features in ``work``): notes on the note set; chord qualities on the chord set; chord roots
    on the chord set's ``root`` column; tempo as the tempo headline's regression direction on
    strike clips at 60-180 BPM (whatever the training set). Each records its activation norm
    (for "0.1x")."""
    from musicrfm.experiments.headline.beat import learn_onset_directions
    from musicrfm.experiments.headline.tempo import learn_tempo_direction
    from musicrfm.probes.directions import record_activation_norms
    from musicrfm.probes.training import train_directions

    if concept == "beats":
        _, features, trained = learn_onset_directions(adapter, cfg, work, seed, device, progress)  # type: ignore[arg-type]
        cd = trained.directions
    elif concept == "tempos":
        _, features, trained = learn_tempo_direction(adapter, cfg, work, seed, device, progress)
        cd = trained.directions
    elif concept == "notes":
        _, features, trained = learn_note_directions(
            adapter, cfg.data, work, seed=seed, device=device, progress=progress
        )
        cd = trained.directions
    else:
        data = replace(cfg.data, clips_per_class=cfg.chord_clips())
        _, features, trained = learn_note_directions(
            adapter, data, work / "chords", seed=seed, device=device, progress=progress,
            concept="chords",
        )  # fmt: skip
        cd = trained.directions
        if concept == "chord-roots":
            cd = train_directions(
                features, label_column="root", concept="chord-roots", task="binary",
                budget=data.budget, components=data.components, seed=seed,
                device=device, progress=progress,
            ).directions  # fmt: skip
            cd.meta["label_column"] = "root"
    record_activation_norms(cd, features.features)
    return cd


def pair_plan(paths: dict[str, Path], cfg: PairsConfig, pair: tuple[str, str]) -> Any:
    """The two-direction plan of a pair: each part from its own direction files, with its own
    coef, schedule and gate."""
    from musicrfm.steering.plan import SteeringPlan

    parts = (cfg.first, cfg.second)
    return SteeringPlan(
        [
            part_direction(str(paths[p.concept]), p, t, cfg.data.seconds)
            for p, t in zip(parts, pair)
        ],
        name="+".join(pair),
    )


def part_direction(source: Any, part: Any, target: str, seconds: float) -> Any:
    """One part's `SteeringDirection`. A beats part is its onset direction pulsed on the beats
    of the target BPM (the keyframes `generate --bpm` compiles; its own schedule is ignored)."""
    from musicrfm.steering.plan import SteeringDirection

    fields = part.plan_fields()
    if part.concept == "beats":
        from musicrfm.steering.progressions import ONSET_CLASS, BeatPulse

        fields["schedule"] = BeatPulse(float(target), seconds).schedules()[ONSET_CLASS]
        return SteeringDirection(source, target=ONSET_CLASS, **fields)
    return SteeringDirection(source, target=target, **fields)


def _jobs(
    dirs: dict[str, Any], paths: dict[str, Path], cfg: PairsConfig, out: Path, seed: int
) -> tuple[list[Job], dict[str, Path]]:
    """Every condition's job, and the plan files written (pair or conflict name -> path). The
    joint plan is generated from its file as a user would load it."""
    from musicrfm.experiments.controls import control_directions
    from musicrfm.steering.plan import SteeringDirection, SteeringPlan

    items = clip_items(cfg, seed)
    jobs = [Job(UNSTEERED, 0.0, None, items, "", UNSTEERED)]
    plans: dict[str, Path] = {}
    concepts = (cfg.first.concept, cfg.second.concept)
    for i, pair in enumerate(cfg.pairs):
        name = "+".join(pair)
        path = pair_plan(paths, cfg, pair).save(out / "plans" / f"{_safe(name)}.toml")
        plans[name] = path
        joint = SteeringPlan.load(path)
        eta = float(joint.directions[0].coef)
        jobs.append(Job(JOINT, eta, joint, items, name, JOINT))
        for k, cond in enumerate(ALONE):
            jobs.append(Job(cond, eta, SteeringPlan([joint.directions[k]]), items, name, cond))
        for kind in cfg.controls:
            parts = []
            for k, d in enumerate(joint.directions):
                ctl = control_directions(dirs[concepts[k]], kind, target=d.target, seed=seed + 101 * i + k)  # fmt: skip
                parts.append(SteeringDirection(ctl, target=d.target, coef=float(d.coef),
                                               schedule=d.schedule, gate=d.gate))  # fmt: skip
            jobs.append(Job(f"joint-{kind}", eta, SteeringPlan(parts), items, name, "control"))
    if cfg.conflict is not None:
        a, b = cfg.conflict
        first = cfg.first
        plan = SteeringPlan(
            [SteeringDirection(str(paths[first.concept]), target=t, **first.plan_fields())
             for t in (a, b)], name=f"conflict {a}+{b}",
        )  # fmt: skip
        name = f"conflict {a}+{b}"
        path = plan.save(out / "plans" / f"conflict-{_safe(a)}+{_safe(b)}.toml")
        plans[name] = path
        both = SteeringPlan.load(path)
        eta = float(both.directions[0].coef)
        jobs.append(Job("conflict-both", eta, both, items, name, "conflict"))
        for k, t in enumerate((a, b)):
            jobs.append(Job(f"conflict-{t}", eta, SteeringPlan([both.directions[k]]), items, name, "conflict"))  # fmt: skip
    return jobs, plans


def _safe(name: str) -> str:
    return name.replace("#", "sharp").replace(" ", "-")


def _eta(plans: dict[str, Path], k: int) -> float | None:
    from musicrfm.steering.plan import SteeringPlan

    for name, path in plans.items():
        if not name.startswith("conflict"):
            return float(SteeringPlan.load(path).directions[k].coef)
    return None


def _validate_plans(plans: dict[str, Path], adapter: Any, total_steps: int) -> dict[str, Any]:
    """What the plan validator (`compile_plan`, which `generate` runs) says of each plan file:
    its warnings (contradictory targets of one concept at once) and the directions it steers."""
    from musicrfm.steering.compile import compile_plan
    from musicrfm.steering.plan import SteeringPlan

    out = {}
    for name, path in plans.items():
        compiled = compile_plan(SteeringPlan.load(path), adapter, total_steps=total_steps)
        out[name] = {
            "directions": list(compiled.labels),
            "eta0": [float(c) for c in compiled.coefs],
            "gate": [float(g) for g in compiled.gate_p],
            "schedules": [s.describe() for s in compiled.schedules],
            "warnings": list(compiled.conflicts),
        }
    return out


def detect_all(
    records: list[dict[str, Any]], concepts: tuple[str, str], cfg: PairsConfig
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """Per clip: the note detector's label (and per-window trace labels) when a part or the
    conflict case steers notes, the chord detector's quality and root when a part steers
    chords, and the tempo detector's BPM (``bpm``, NaN when silent) and its ``tempo`` label
    against the unsteered clips' median when a part steers tempo. Returns the per-clip frame
    and {row: trace labels}."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.experiments.headline.tempo import detect_bpm

    want_notes = "notes" in concepts or cfg.conflict is not None
    want_chords = bool({"chords", "chord-roots"} & set(concepts))
    rows, traces = [], {}
    for i, rec in enumerate(records):
        audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
        row = {k: v for k, v in rec.items() if not k.startswith("_")}
        row["pair"] = rec["target"]
        if want_notes:
            d = det.detect(audio, rec["_sr"], "notes", window_s=WINDOW_S, hop_s=HOP_S)
            row["note"] = d.label
            traces[i] = [str(x) for x in (d.trace_labels or [])]
        if want_chords:
            c = det.detect(audio, rec["_sr"], "chords")
            row["quality"] = c.label
            row["root"] = str(c.details.get("root", c.label))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "tempos" in concepts or "beats" in concepts:
        frame["bpm"] = detect_bpm(records)["bpm"].to_numpy(float) if records else []
    if "tempos" in concepts:
        frame = tempo_labels(frame, cfg.tempo_change)[0]
    if "beats" in concepts:  # the detected tempo to the nearest 5 BPM, for label shifts
        from musicrfm.evaluation.detectors.base import SILENT

        frame["beat"] = [
            f"{5 * round(b / 5):g}" if np.isfinite(b) else SILENT for b in frame["bpm"]
        ]
    return frame, traces


def _judge(adapter: Any, folder: str | os.PathLike[str] | None) -> Any:
    """The saved judge in ``folder`` (a ConfigError when it has none for this codec), or the
    model folder's (None when it has none: fitting one takes longer than this experiment)."""
    from musicrfm.evaluation.judges import find_reference_judge, model_folder, require_saved_judge

    if folder is not None:
        return require_saved_judge(adapter, folder)
    own = model_folder(adapter)
    return find_reference_judge(adapter, [own] if own is not None else [])


def _adherence(
    adapter: Any, frame: pd.DataFrame, records: list[dict], seed: int, judge: Any
) -> Any:
    """Prompt adherence by ``judge`` (from :func:`_judge`; None: not measured)."""
    from musicrfm.experiments.demo.stages import instrument_adherence

    if judge is None:
        return None
    return instrument_adherence(None, frame, records, seed, adapter=adapter, judge=judge)


def score(
    frame: pd.DataFrame, traces: dict[int, list[str]], cfg: PairsConfig, *, seed: int = 0
) -> dict[str, Any]:
    """The record's numbers from per-clip labels: per pair its rows, verdict, cross-talk,
    controls and adherence; the conflict case; the overall verdict."""
    if frame[frame["condition"] == UNSTEERED].empty:
        raise ConfigError("no unsteered clips: every comparison is against them")
    concepts = (cfg.first.concept, cfg.second.concept)
    threshold = None
    if "tempos" in concepts:
        threshold = tempo_threshold(
            frame.loc[frame["condition"] == UNSTEERED, "bpm"].to_numpy(float), cfg.tempo_change
        )
        if "tempo" not in frame:
            frame = tempo_labels(frame, cfg.tempo_change)[0]
    has_adh = "instrument_match" in frame and frame["instrument_match"].notna().any()
    base = frame[frame["condition"] == UNSTEERED]
    pairs = []
    for pair in cfg.pairs:
        name = "+".join(pair)
        rows = pair_rows(frame, pair, concepts, (UNSTEERED, *ALONE, JOINT))
        entry: dict[str, Any] = {
            "pair": name,
            "rows": rows,
            "verdict": pair_verdict(rows, joint_gate=cfg.joint_gate, alone_gate=cfg.alone_gate),
            "crosstalk": crosstalk_rows(frame, pair, concepts, seed=seed),
            "controls": control_rows(frame, pair, concepts, cfg.controls),
        }
        if threshold is not None:
            conds = (UNSTEERED, *ALONE, JOINT, *(f"joint-{k}" for k in cfg.controls))
            entry["tempo"] = tempo_rows(frame, pair, threshold, conds, seed=seed)
        if has_adh:
            for cond in (JOINT, *ALONE):
                g = frame[(frame["condition"] == cond) & (frame["pair"] == name)]
                entry.setdefault("adherence", {})[cond] = adherence_change(
                    g["instrument_match"].to_numpy(float), base["instrument_match"].to_numpy(float),
                    tolerance=cfg.adherence_tolerance, seed=seed,
                )  # fmt: skip
        pairs.append(entry)
    conflict = None
    if cfg.conflict is not None:
        a, b = cfg.conflict
        conds = {f"{a} alone": f"conflict-{a}", f"{b} alone": f"conflict-{b}",
                 f"{a} + {b}": "conflict-both", UNSTEERED: UNSTEERED}  # fmt: skip
        tr, labels = {}, {}
        for shown, cond in conds.items():
            idx = [int(i) for i in frame.index[frame["condition"] == cond]]
            tr[shown] = [traces.get(i, []) for i in idx]
            labels[shown] = [str(frame.at[i, "note"]) for i in idx] if "note" in frame else []
        conflict = {"a": a, "b": b, "rows": conflict_summary(tr, labels, a, b)}
    verdicts = [p["verdict"] for p in pairs]
    overall = {
        "pairs": len(pairs),
        "applicable": sum(v["applies"] for v in verdicts),
        "passed": sum(bool(v["passed"]) for v in verdicts),
        "all_passed": bool(all(v["passed"] for v in verdicts)),
    }
    if has_adh:
        overall["adherence_joint_within_tolerance"] = bool(
            all(p["adherence"][JOINT]["adherence_within_tolerance"] for p in pairs)
        )
    return {"overall": overall, "pairs": pairs, "conflict": conflict,
            "concepts": list(concepts), "tempo_threshold": threshold}  # fmt: skip


def _write_report(record: dict[str, Any], frame: pd.DataFrame, out: Path) -> None:
    """``pairs.json``, ``pairs.md``, ``results.csv`` and ``pairs.png``."""
    from musicrfm.experiments.pairs.figures import plot_pairs
    from musicrfm.experiments.pairs.tables import pairs_markdown

    (out / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2))
    (out / f"{RESULT_NAME}.md").write_text(pairs_markdown(record))
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    plot_pairs(record, out / f"{RESULT_NAME}.png")


def rewrite_report(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Re-derive each pair's verdict from its stored rows and rewrite ``pairs.json``, ``.md`` and
    ``.png`` of a report folder (no clip is generated or judged again): for reports written
    before a change to the verdict or the tables."""
    from musicrfm.experiments.pairs.figures import plot_pairs
    from musicrfm.experiments.pairs.tables import pairs_markdown

    folder = Path(folder)
    record = json.loads((folder / f"{RESULT_NAME}.json").read_text())
    cfg = record["settings"]["config"]
    for p in record["pairs"]:
        p["verdict"] = pair_verdict(
            p["rows"], joint_gate=cfg["joint_gate"], alone_gate=cfg["alone_gate"]
        )
    record = json.loads(json.dumps(record, default=json_default))
    (folder / f"{RESULT_NAME}.json").write_text(json.dumps(record, indent=2))
    (folder / f"{RESULT_NAME}.md").write_text(pairs_markdown(record))
    plot_pairs(record, folder / f"{RESULT_NAME}.png")
    return record
