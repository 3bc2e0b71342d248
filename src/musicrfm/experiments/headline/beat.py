"""The beat headline (`musicrfm mini headline --concept beats`): an exact tempo from onset pulses.

A tempo regression direction on mean-pooled features does not steer the testbed's tempo (see
`headline.tempo`): the model copies its period from the previous inter-onset interval. What its
frames do carry is whether a strike is about to come. So a binary probe is trained on per-frame
features (`musicrfm.capture.frames`: a frame is ``onset`` when the clip's audio has an onset
within frames t-3..t+1), and its ``onset`` direction is pulsed on the beats of the target tempo
(`musicrfm.steering.progressions.BeatPulse`, what ``musicrfm generate --bpm 100`` compiles with
onset directions): φ = 1 on a pulse, 0 half a beat away, each pulse half a beat before its beat
(the model strikes about half a beat after the push).

Measured for each target BPM, on the same (prompt, seed) pairs: the share of clips whose
detected tempo is within 4% of the target (Wilson 95% CI) at every η0 of the grid; unsteered
clips against the same target; at the smallest η0 reaching the gate (else the best) random and
orthogonal directions of equal norm pulsed the same way (should stay at the unsteered share)
and the sign-flipped onset direction (should not beat it); prompt adherence by the reference
timbre judge, steered at that η0 against unsteered.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.experiments.demo.report import json_default
from musicrfm.experiments.demo.stages import (
    Job,
    sampling_options,
    tempo_dataset,
)
from musicrfm.experiments.headline.config import HeadlineConfig, _items
from musicrfm.experiments.headline.tempo import generate_and_judge

log = logging.getLogger(__name__)

BEAT_TOLERANCE = 0.04
"""A clip plays the target tempo when its detected BPM is within 4% of it (the codec gate's)."""
DEFAULT_BPMS = (80.0, 120.0, 160.0)
DEFAULT_RELATIVE_COEFS = (0.1, 0.2, 0.3)


def learn_onset_directions(
    adapter: Any, cfg: HeadlineConfig, work: Path, seed: int, device: str, progress: bool
) -> tuple[Any, Any, Any]:
    """Strike clips at every testbed tempo -> per-frame features -> onset labels from each clip's
    audio -> one binary probe per layer (classes none / onset), norms of the frames recorded so
    that η0 can be given relative ("0.2x")."""
    import soundfile as sf

    from musicrfm.capture.extract import extract_features
    from musicrfm.capture.frames import frame_feature_set, onset_window_labels
    from musicrfm.probes.directions import record_activation_norms
    from musicrfm.probes.training import train_directions

    dataset = tempo_dataset(adapter, work, cfg.data.clips_per_class, seed, progress)
    features = extract_features(
        adapter, dataset, pooling="mean", prompt="", keep_frames=True,
        cache_dir=work / "features", progress=progress,
    )  # fmt: skip
    labels = []
    for i, row in features.rows.iterrows():
        wave, sr = sf.read(Path(dataset.root) / row["path"], dtype="float32", always_2d=False)
        n = int(features.frame_offsets[i + 1] - features.frame_offsets[i])
        labels.append(onset_window_labels(wave, sr, adapter.frame_rate, n))
    frames = frame_feature_set(features, labels, seed=seed,
                               per_class=frame_caps(cfg.data.clips_per_class))  # fmt: skip
    trained = train_directions(
        frames, label_column="label", concept="onsets", task="binary", budget=cfg.data.budget,
        components=cfg.data.components, seed=seed, device=device, progress=progress,
    )  # fmt: skip
    record_activation_norms(trained.directions, frames.features)
    return dataset, frames, trained


def load_onset_directions(path: str | os.PathLike[str], adapter: Any) -> Any:
    """Saved onset directions for ``adapter`` (a ConfigError unless they hold an ``onset`` class
    of this model's layers and width, with the activation norm a relative η0 needs)."""
    from musicrfm.errors import ConfigError
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.compile import check_compatible

    cd = ConceptDirections.load(path)
    if "onset" not in cd.classes:
        raise ConfigError(f"{path}: not onset directions (classes {cd.classes}); the beat "
                          "headline writes them to OUT/directions/onsets")  # fmt: skip
    check_compatible(cd, adapter, strict=False)
    cd.require_activation_norm(path)
    return cd


def frame_caps(clips_per_tempo: int) -> dict[str, int]:
    """Frames per class and split the onset probe is trained on: 1500 / 400 / 400 (the kernel
    solve is cubic in them), fewer for a few clips a tempo (a quick run)."""
    train = min(1500, 100 * int(clips_per_tempo))
    return {"train": train, "val": max(20, train * 4 // 15), "test": max(20, train * 4 // 15)}


def beat_plan(cd: Any, bpm: float, coef: float, seconds: float, cfg: HeadlineConfig) -> Any:
    """The onset direction pulsed on the beats of ``bpm`` (`generate --bpm`'s compiler)."""
    from musicrfm.steering.plan import compile_progression
    from musicrfm.steering.progressions import make_progression

    prog = make_progression(bpm=bpm, steer_beat=True, seconds=seconds)
    return compile_progression(prog, [cd], coef, **cfg.plan_options())


def beat_jobs(cd: Any, cfg: HeadlineConfig, bpms: tuple[float, ...], coefs: tuple[float, ...],
              seed: int) -> list[Job]:  # fmt: skip
    """Unsteered, then each target tempo at every η0, all on the same (prompt, seed) pairs."""
    items = _items(cfg.data.prompt_texts(), cfg.clips, seed)
    jobs = [Job("unsteered", 0.0, None, items, "none")]
    for bpm in bpms:
        for c in coefs:
            jobs.append(Job("onset", c, beat_plan(cd, bpm, c, cfg.data.seconds, cfg), items,
                            f"{bpm:g}"))  # fmt: skip
    return jobs


def beat_control_jobs(cd: Any, cfg: HeadlineConfig, best: dict[float, float], seed: int) -> list:
    """At each tempo's chosen η0: random / orthogonal directions of equal norm and the flipped
    onset direction, pulsed on the same beats."""
    from musicrfm.experiments.controls import control_directions

    items = _items(cfg.data.prompt_texts(), cfg.clips, seed)
    jobs = []
    for k, (bpm, coef) in enumerate(best.items()):
        for kind in cfg.controls:
            ctl = control_directions(cd, kind, target="onset", seed=seed + k)
            plan = beat_plan(ctl, bpm, coef, cfg.data.seconds, cfg)
            jobs.append(Job(kind, coef, plan, items, f"{bpm:g}"))
    return jobs


def within(bpm: Any, target: float, tolerance: float = BEAT_TOLERANCE) -> np.ndarray:
    """0/1 per clip: detected BPM within ``tolerance`` of ``target`` (a silent clip misses)."""
    b = np.asarray(bpm, dtype=np.float64)
    return (np.isfinite(b) & (np.abs(b / target - 1.0) <= tolerance)).astype(float)


def beat_table(frame: pd.DataFrame, bpms: tuple[float, ...]) -> pd.DataFrame:
    """One row per (target BPM, condition, η0): hits within 4% with a Wilson CI, median BPM,
    adherence; the unsteered clips are scored against every target."""
    from musicrfm.evaluation.metrics.stats import wilson_interval

    rows = []
    base = frame[frame["condition"] == "unsteered"]
    for bpm in bpms:
        groups = [(("unsteered", 0.0), base)]
        steered = frame[(frame["condition"] != "unsteered") & (frame["target"] == f"{bpm:g}")]
        groups += list(steered.groupby(["condition", "coef"], sort=False))
        for (cond, coef), g in groups:
            hits = within(g["bpm"], bpm)
            est = wilson_interval(int(hits.sum()), len(hits))
            row = {"bpm": bpm, "condition": cond, "coef": float(coef), "hit_rate": est.value,
                   "ci_low": est.low, "ci_high": est.high, "n": est.n,
                   "median_bpm": float(np.nanmedian(g["bpm"])) if g["bpm"].notna().any() else None}  # fmt: skip
            if "instrument_match" in g:
                row["adherence"] = float(g["instrument_match"].astype(float).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def best_beat_coefs(table: pd.DataFrame, gate: float) -> dict[float, float]:
    """Per target tempo: the smallest η0 whose hit rate reaches the gate, else the best one."""
    best = {}
    for bpm, g in table[table["condition"] == "onset"].groupby("bpm", sort=False):
        passing = g[g["hit_rate"] >= gate].sort_values("coef")
        pick = passing.iloc[0] if len(passing) else g.sort_values("hit_rate").iloc[-1]
        best[float(bpm)] = float(pick["coef"])
    return best


def beat_verdict(frame: pd.DataFrame, best: dict[float, float], cfg: HeadlineConfig) -> dict:
    """Per target tempo: the gate at the chosen η0, each control against unsteered (Newcombe's
    interval of the difference; the flip must not be above it), adherence change."""
    from musicrfm.evaluation.metrics.stats import proportion_difference

    out: dict[str, Any] = {"tempos": {}}
    ok = True
    base = frame[frame["condition"] == "unsteered"]
    for bpm, coef in best.items():
        sel = frame[(frame["target"] == f"{bpm:g}") & np.isclose(frame["coef"], coef)]
        steer = sel[sel["condition"] == "onset"]
        hits = within(steer["bpm"], bpm)
        base_hits = within(base["bpm"], bpm)
        rec: dict[str, Any] = {"coef": coef, "hit_rate": float(hits.mean()),
                               "unsteered_hit_rate": float(base_hits.mean()),
                               "reached_gate": bool(hits.mean() >= cfg.accuracy_gate),
                               "controls": {}}  # fmt: skip
        good = rec["reached_gate"]
        for kind in cfg.controls:
            c = sel[sel["condition"] == kind]
            if not len(c):
                continue
            d = proportion_difference(within(c["bpm"], bpm), base_hits)
            # the flip must not be above unsteered; random / orthogonal must be at it
            fine = d.low <= 0 if kind == "flip" else d.low <= 0 <= d.high
            rec["controls"][kind] = {"hit_rate": float(within(c["bpm"], bpm).mean()),
                                     "difference": [d.value, d.low, d.high],
                                     "consistent_with_baseline": bool(fine)}  # fmt: skip
            good = good and fine
        if "instrument_match" in steer:
            change = float(steer["instrument_match"].astype(float).mean()
                           - base["instrument_match"].astype(float).mean())  # fmt: skip
            rec["adherence_change"] = change
            rec["adherence_kept"] = bool(change >= -cfg.adherence_tolerance)
            good = good and rec["adherence_kept"]
        rec["passed"] = bool(good)
        out["tempos"][f"{bpm:g}"] = rec
        ok = ok and good
    out["passed"] = bool(ok)
    out["adherence_kept"] = all(r.get("adherence_kept", True) for r in out["tempos"].values())
    return out


def run_beat_headline(
    *,
    model: Any = "mini-beat",
    out: str | os.PathLike[str] = "headline-beats",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: HeadlineConfig | None = None,
    bpms: tuple[float, ...] = DEFAULT_BPMS,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    directions: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Measure the beat headline; writes ``headline.json``, ``headline.md``, ``results.csv``,
    ``beats.png`` and ``directions/onsets`` into ``out`` and returns the JSON record.

    ``directions``: onset directions saved by an earlier run (or bundled with the model), used
    instead of training them again (the ~5 min of strike clips, features and probes), so that
    runs that only change the plan (η0, layers, weighting, gate) steer with the same direction."""
    from musicrfm.experiments.demo.config import default_work_dir
    from musicrfm.models import load_model

    cfg = config or HeadlineConfig(concept="beats", relative_coefs=DEFAULT_RELATIVE_COEFS)
    cfg = replace(cfg, targets=tuple(f"{b:g}" for b in bpms))
    cfg.plan_options()  # a bad layer spec, weighting or gate fails here, before any work
    if directions is not None and cfg.data.instrument_check and not cfg.instrument_reference:
        from musicrfm.errors import ConfigError

        raise ConfigError(
            "saved onset directions come without the strike set the note-set instrument "
            "classifier is fitted on: judge with the reference judge (no --note-set-classifier)"
        )
    out, work_dir = Path(out), Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = load_model(model, device=device)
    from musicrfm.experiments.headline.run import check_judge

    check_judge(cfg, adapter)
    if directions is not None:
        dataset, frames, cd = None, None, load_onset_directions(directions, adapter)
        val, test = np.asarray(cd.scores)[:, 0].tolist(), cd.meta.get("test_scores")
        test = None if test is None else np.asarray(test, dtype=float)[:, 0].tolist()
    else:
        dataset, frames, trained = learn_onset_directions(
            adapter, cfg, work_dir, seed, device, progress
        )
        cd = trained.directions
        val = np.asarray(trained.val_scores)[:, 0].tolist()
        test = np.asarray(trained.test_scores)[:, 0].tolist()
    scale = float(cd.activation_norm())
    coefs = tuple(round(r * scale, 4) for r in cfg.relative_coefs)
    out.mkdir(parents=True, exist_ok=True)
    cd.save(out / "directions" / "onsets")
    timings["learn"] = time.perf_counter() - t

    t = time.perf_counter()

    def controls_for(frame: pd.DataFrame) -> list[Job]:
        best = best_beat_coefs(beat_table(frame, bpms), cfg.accuracy_gate)
        return beat_control_jobs(cd, cfg, best, seed)

    frame, inst = generate_and_judge(
        adapter, dataset, beat_jobs(cd, cfg, bpms, coefs, seed), controls_for, cfg, out,
        work_dir, seed, progress,
    )  # fmt: skip
    timings["generate"] = time.perf_counter() - t  # and judge
    best = best_beat_coefs(beat_table(frame, bpms), cfg.accuracy_gate)  # onset rows only
    table = beat_table(frame, bpms)
    verdict = beat_verdict(frame, best, cfg)
    record = {
        "overall": verdict,
        "rows": table.to_dict(orient="records"),
        "probe_auc": {"val": val, "test": test},
        "settings": {
            "model_id": str(adapter.model_id), "bpms": list(bpms), "coefs": list(coefs),
            "relative_coefs": list(cfg.relative_coefs), "activation_scale": scale,
            "tolerance": BEAT_TOLERANCE,
            "frames": None if frames is None else {"rows": len(frames),
                                                   "onset_rate": frames.meta["onset_rate"]},
            "directions": None if directions is None else str(directions),
            "sampling": sampling_options(adapter), "instrument_classifier": inst, "seed": seed,
            "config": json.loads(json.dumps(asdict(cfg), default=list)),
            "command": command or f"musicrfm mini headline --concept beats --seed {seed}",
        },
        "timings": timings,
    }  # fmt: skip
    record = json.loads(json.dumps(record, default=json_default))
    write_beat_report(record, frame, table, out)
    return record


def write_beat_report(record: dict[str, Any], frame: pd.DataFrame, table: pd.DataFrame,
                      out: Path) -> None:  # fmt: skip
    """headline.json, headline.md, results.csv and beats.png (hit rate against η0 per tempo)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from musicrfm.experiments.report.tables import to_markdown

    (out / "headline.json").write_text(json.dumps(record, indent=2))
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    v = record["overall"]
    lines = ["# Beat headline: onset pulses on the beat grid", "",
             f"`{record['settings']['command']}`", "", to_markdown(table), ""]  # fmt: skip
    for bpm, r in v["tempos"].items():
        ctl = {k: round(c["hit_rate"], 3) for k, c in r["controls"].items()}
        lines.append(
            f"- {bpm} BPM: η0 {r['coef']:.3f}, within 4% {r['hit_rate']:.3f} (unsteered "
            f"{r['unsteered_hit_rate']:.3f}), controls {ctl}, adherence change "
            f"{r.get('adherence_change', float('nan')):+.3f}, passed {r['passed']}"
        )
    lines.append(f"- passed: {v['passed']}; adherence kept: {v['adherence_kept']}")
    (out / "headline.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for bpm, g in table.groupby("bpm", sort=False):
        curve = g[g["condition"].isin(["unsteered", "onset"])].sort_values("coef")
        ax.errorbar(curve["coef"], curve["hit_rate"],
                    yerr=[curve["hit_rate"] - curve["ci_low"], curve["ci_high"] - curve["hit_rate"]],
                    marker="o", capsize=3, label=f"{bpm:g} BPM")  # fmt: skip
        for _, r in g[~g["condition"].isin(["unsteered", "onset"])].iterrows():
            ax.plot([r["coef"]], [r["hit_rate"]], "x", color="grey")
    ax.axhline(0.8, ls="--", color="k", lw=0.8)
    ax.set_xlabel("η0 of the onset pulses (x: random / orthogonal / flipped at the chosen η0)")
    ax.set_ylabel("clips within 4% of the target BPM")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "beats.png", dpi=120)
    plt.close(fig)
