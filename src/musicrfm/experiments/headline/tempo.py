"""The tempo headline (`musicrfm mini headline --concept tempos`): a signed regression direction.

A tempo direction is one unit vector per layer whose sign follows the BPM (probes are signed by
their correlation with the label), so η0 > 0 ('faster') should raise the detected tempo and
η0 < 0 ('slower') lower it. What is measured, on the same prompts and seeds as an unsteered
baseline: the median detected BPM at every signed η0 of the grid, its change relative to the
unsteered median with a bootstrap 95% CI, whether the medians rise monotonically with η0, and
at the best η0 each way the controls: random and orthogonal directions of equal norm (should
leave the tempo where it was) and the sign-flipped 'faster' direction (should slow it down).
Prompt adherence by the reference timbre judge, as for the notes headline.

The probes are trained on strike clips (notes, intervals and triads struck on the beat at 60-180
BPM, :func:`musicrfm.synth.strikes.tempo_specs`) drawn with another seed than the recipe's
training clips: the click tracks of the synthetic ``tempos`` concept are no sound the testbed
model was trained on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from musicrfm.experiments.demo.report import json_default
from musicrfm.experiments.demo.stages import (
    Job,
    auto_coefs,
    generate_all,
    instrument_adherence,
    sampling_options,
    tempo_dataset,
)
from musicrfm.experiments.headline.config import HeadlineConfig, _items

if TYPE_CHECKING:
    from musicrfm.experiments.pairs.config import PairsConfig

log = logging.getLogger(__name__)

TEMPO_CHANGE_GATE = 0.20
"""The issue's bar: the best η0 moves the median detected BPM by at least 20% each way."""


def learn_tempo_direction(
    adapter: Any, cfg: HeadlineConfig | PairsConfig, work: Path, seed: int, device: str,
    progress: bool,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Tempo dataset -> mean-pooled features -> one regression direction per layer. Only
    ``cfg.data`` is read (clips a tempo, budget, components), so `musicrfm mini pairs` trains
    its tempo part with this very function and its own config."""
    from musicrfm.capture.extract import extract_features
    from musicrfm.probes.training import train_directions

    dataset = tempo_dataset(adapter, work, cfg.data.clips_per_class, seed, progress)
    features = extract_features(
        adapter, dataset, pooling="mean", prompt="", cache_dir=work / "features",
        progress=progress,
    )  # fmt: skip
    trained = train_directions(
        features, label_column="label", concept="tempos", task="regression",
        budget=cfg.data.budget, components=cfg.data.components, seed=seed, device=device,
        progress=progress,
    )  # fmt: skip
    return dataset, features, trained


def tempo_jobs(cd: Any, cfg: HeadlineConfig, coefs: tuple[float, ...], seed: int) -> list[Job]:
    """The unsteered baseline, and 'faster' / 'slower' at every η0 on its first ``clips``
    (prompt, seed) pairs."""
    from musicrfm.steering.plan import SteeringPlan

    base = _items(cfg.data.prompt_texts(), cfg.baseline_clips, seed)
    jobs = [Job("unsteered", 0.0, None, base, "value")]
    for c in coefs:
        for word, sign in (("faster", 1.0), ("slower", -1.0)):
            plan = SteeringPlan.single(cd, word, c, **cfg.plan_options())
            jobs.append(Job(word, sign * c, plan, base[: cfg.clips], word))
    return jobs


def tempo_control_jobs(cd: Any, cfg: HeadlineConfig, best: dict[str, float], seed: int) -> list:
    """At the best η0 each way: random and orthogonal directions of equal norm, and the 'faster'
    direction with its sign flipped (it should slow the music down)."""
    from musicrfm.experiments.controls import control_directions
    from musicrfm.steering.plan import SteeringPlan

    paired = _items(cfg.data.prompt_texts(), cfg.clips, seed)
    jobs = []
    for word in ("faster", "slower"):
        coef = abs(best[word])
        for kind in ("random", "orthogonal"):
            ctl = control_directions(cd, kind, target="value", seed=seed + (word == "slower"))
            plan = SteeringPlan.single(ctl, word, coef, **cfg.plan_options())
            jobs.append(Job(f"{kind} ({word})", best[word], plan, paired, word))
    flip = control_directions(cd, "flip", target="value", seed=seed)
    plan = SteeringPlan.single(flip, "faster", abs(best["faster"]), **cfg.plan_options())
    jobs.append(Job("flip (faster)", best["faster"], plan, paired, "faster"))
    return jobs


def detect_bpm(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The tempo detector's BPM per clip: NaN when silent or without a pulse (fewer than
    ``MIN_PULSE_ONSETS`` onsets: a held note, which the beat tracker still gives a BPM);
    ``no_pulse`` marks those, so that tables can say how many were dropped."""
    from musicrfm.evaluation import detectors as det

    rows = []
    for rec in records:
        audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
        d = det.detect(audio, rec["_sr"], "tempos")
        row = {k: v for k, v in rec.items() if not k.startswith("_")}
        pulse = not d.silent and bool(d.details["pulse"])
        row["bpm"] = float(d.details.get("bpm", np.nan)) if pulse else np.nan
        row["onsets"] = int(d.details.get("onsets", 0)) if not d.silent else 0
        row["no_pulse"] = not d.silent and not pulse
        row["correct"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def generate_and_judge(
    adapter: Any, dataset: Any, jobs: list[Job], controls_for: Any, cfg: HeadlineConfig,
    out: Path, work: Path, seed: int, progress: bool,
) -> tuple[pd.DataFrame, dict[str, Any]]:  # fmt: skip
    """Generate ``jobs``, read every clip's BPM, then generate the control jobs that
    ``controls_for(frame)`` picks from those readings; prompt adherence of every clip by the
    reference timbre judge when ``cfg.data.instrument_check``. Returns (per-clip frame, judge
    report). The tempo and beat headlines both run this way."""
    from musicrfm.experiments.headline.run import judge_folders

    records = generate_all(adapter, jobs, cfg.data, out / "audio", progress, "tempos")
    frame = detect_bpm(records)
    controls = generate_all(adapter, controls_for(frame), cfg.data, out / "audio", progress, "tempos")  # fmt: skip
    records += controls
    frame = pd.concat([frame, detect_bpm(controls)], ignore_index=True)
    inst: dict[str, Any] = {}
    if cfg.data.instrument_check:
        frame, inst = instrument_adherence(
            dataset, frame, records, seed, adapter=adapter, reference=cfg.instrument_reference,
            judge_folders=judge_folders(adapter, work, cfg.judge), progress=progress,
        )  # fmt: skip
    return frame, inst


def median_change(bpm: np.ndarray, base: np.ndarray, seed: int, n_boot: int = 2000) -> dict:
    """Median BPM, and its change relative to the baseline's median, with a bootstrap 95% CI
    (both samples resampled). No finite BPM on either side (every clip a held note) gives
    NaN figures with ``n`` 0."""
    bpm, base = bpm[np.isfinite(bpm)], base[np.isfinite(base)]
    if len(bpm) == 0 or len(base) == 0:
        return {"median_bpm": float("nan"), "change": float("nan"),
                "change_ci": [float("nan"), float("nan")], "n": int(len(bpm))}  # fmt: skip
    rng = np.random.default_rng(seed)
    a = np.median(bpm[rng.integers(0, len(bpm), (n_boot, len(bpm)))], axis=1)
    b = np.median(base[rng.integers(0, len(base), (n_boot, len(base)))], axis=1)
    rel = a / b - 1
    lo, hi = np.quantile(rel, [0.025, 0.975])
    return {"median_bpm": float(np.median(bpm)), "change": float(np.median(bpm) / np.median(base) - 1),
            "change_ci": [float(lo), float(hi)], "n": int(len(bpm))}  # fmt: skip


def tempo_table(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One row per (condition, signed η0): median BPM, relative change and CI, adherence."""
    base = frame.loc[frame["condition"] == "unsteered", "bpm"].to_numpy(float)
    rows = []
    for (cond, coef), g in frame.groupby(["condition", "coef"], sort=False):
        row = {"condition": cond, "coef": float(coef),
               **median_change(g["bpm"].to_numpy(float), base, seed)}  # fmt: skip
        if "no_pulse" in g:
            row["no_pulse"] = float(g["no_pulse"].astype(float).mean())
        if "instrument_match" in g:
            row["adherence"] = float(g["instrument_match"].astype(float).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def best_coefs(table: pd.DataFrame, gate: float) -> dict[str, float]:
    """Each way, the smallest |η0| whose median change reaches the gate, else the largest
    change in that direction."""
    best = {}
    for word, sign in (("faster", 1.0), ("slower", -1.0)):
        rows = table[table["condition"] == word].copy()
        rows["signed"] = sign * rows["change"]
        passing = rows[rows["signed"] >= gate].sort_values("coef", key=np.abs)
        pick = (
            passing.iloc[0]
            if len(passing)
            else rows.sort_values("signed", na_position="first").iloc[-1]
        )
        best[word] = float(pick["coef"])
    return best


def tempo_verdict(table: pd.DataFrame, best: dict[str, float], cfg: HeadlineConfig) -> dict:
    """The criteria, each with what was measured."""
    unsteered = table[table["condition"] == "unsteered"].iloc[0]
    steered = table[table["condition"].isin(["faster", "slower"])]
    curve = pd.concat([steered, unsteered.to_frame().T]).sort_values("coef")
    medians = curve["median_bpm"].astype(float).to_numpy()
    monotone = bool(np.all(np.diff(medians) >= 0))
    out: dict[str, Any] = {"monotone": monotone, "medians_by_signed_coef": dict(
        zip(curve["coef"].astype(float), medians.tolist()))}  # fmt: skip
    ok = monotone
    for word, sign in (("faster", 1.0), ("slower", -1.0)):
        row = table[(table["condition"] == word) & (table["coef"] == best[word])].iloc[0]
        moved = (
            sign * row["change"] >= TEMPO_CHANGE_GATE
            and sign * row["change_ci"][0 if sign > 0 else 1] > 0
        )
        adherence = row.get("adherence", np.nan) - unsteered.get("adherence", np.nan)
        kept = bool(adherence >= -cfg.adherence_tolerance) if np.isfinite(adherence) else None
        controls = {}
        for kind in ("random", "orthogonal"):
            c = table[table["condition"] == f"{kind} ({word})"]
            if len(c):
                lo, hi = c.iloc[0]["change_ci"]
                controls[kind] = {"change": float(c.iloc[0]["change"]), "ci": [lo, hi],
                                  "consistent_with_baseline": bool(lo <= 0 <= hi)}  # fmt: skip
        out[word] = {"coef": best[word], "change": float(row["change"]),
                     "change_ci": row["change_ci"], "moved_20pct": bool(moved),
                     "adherence_change": float(adherence), "adherence_kept": kept,
                     "controls": controls}  # fmt: skip
        ok = ok and moved and kept is not False
        ok = ok and all(v["consistent_with_baseline"] for v in controls.values())
    flip = table[table["condition"] == "flip (faster)"]
    if len(flip):
        slows = bool(flip.iloc[0]["change_ci"][1] < 0)
        out["flip"] = {"change": float(flip.iloc[0]["change"]),
                       "ci": flip.iloc[0]["change_ci"], "slows_down": slows}  # fmt: skip
        ok = ok and slows
    out["passed"] = bool(ok)
    return out


def run_tempo_headline(
    *,
    model: Any = "mini",
    out: str | os.PathLike[str] = "headline-tempo",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: HeadlineConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Measure the tempo headline; writes ``headline.json``, ``headline.md``, ``results.csv``
    and ``tempo.png`` into ``out`` and returns the JSON record."""
    from musicrfm.experiments.demo.config import default_work_dir
    from musicrfm.models import load_model

    cfg = replace(config or HeadlineConfig(concept="tempos"), targets=("faster", "slower"))
    out, work_dir = Path(out), Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = load_model(model, device=device)
    from musicrfm.experiments.headline.run import check_judge

    check_judge(cfg, adapter)
    dataset, features, trained = learn_tempo_direction(
        adapter, cfg, work_dir, seed, device, progress
    )
    timings["learn"] = time.perf_counter() - t
    cd = trained.directions
    coefs, scale = auto_coefs(features, replace(cfg.data, relative_coefs=cfg.relative_coefs))
    out.mkdir(parents=True, exist_ok=True)
    cd.save(out / "directions" / "tempos")

    t = time.perf_counter()

    def controls_for(frame: pd.DataFrame) -> list[Job]:
        best = best_coefs(tempo_table(frame, seed), TEMPO_CHANGE_GATE)
        return tempo_control_jobs(cd, cfg, best, seed)

    frame, inst = generate_and_judge(
        adapter, dataset, tempo_jobs(cd, cfg, coefs, seed), controls_for, cfg, out, work_dir,
        seed, progress,
    )  # fmt: skip
    timings["generate"] = time.perf_counter() - t  # and judge
    best = best_coefs(tempo_table(frame, seed), TEMPO_CHANGE_GATE)  # the controls' rows aside
    table = tempo_table(frame, seed)
    verdict = tempo_verdict(table, best, cfg)
    record = {
        "overall": verdict,
        "rows": table.to_dict(orient="records"),
        "probe_r2": {"val": trained.val_scores[:, 0].tolist(), "test": trained.test_scores[:, 0].tolist()},
        "settings": {
            "model_id": str(adapter.model_id), "coefs": list(coefs),
            "relative_coefs": list(cfg.relative_coefs), "activation_scale": scale,
            "sampling": sampling_options(adapter), "instrument_classifier": inst, "seed": seed,
            "config": json.loads(json.dumps(asdict(cfg), default=list)),
            "command": command or f"musicrfm mini headline --concept tempos --seed {seed}",
        },
        "timings": timings,
    }  # fmt: skip
    record = json.loads(json.dumps(record, default=json_default))
    _write(record, frame, table, out)
    return record


def _write(record: dict[str, Any], frame: pd.DataFrame, table: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from musicrfm.experiments.report.tables import to_markdown

    (out / "headline.json").write_text(json.dumps(record, indent=2))
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    shown = table.copy()
    shown["change_ci"] = [f"[{a:+.3f}, {b:+.3f}]" for a, b in shown["change_ci"]]
    v = record["overall"]
    lines = [
        "# Tempo headline",
        "",
        f"`{record['settings']['command']}`",
        "",
        to_markdown(shown),
        "",
        f"- monotone over the signed η0 grid: {v['monotone']}",
        *(f"- {w}: best η0 {v[w]['coef']:+.3f}, change {v[w]['change']:+.3f} "
          f"[{v[w]['change_ci'][0]:+.3f}, {v[w]['change_ci'][1]:+.3f}], >= 20%: "
          f"{v[w]['moved_20pct']}, adherence change {v[w]['adherence_change']:+.3f}, controls "
          f"{ {k: c['consistent_with_baseline'] for k, c in v[w]['controls'].items()} }"
          for w in ("faster", "slower")),
        f"- flip of 'faster': {v.get('flip')}",
        f"- passed: {v['passed']}",
    ]  # fmt: skip
    (out / "headline.md").write_text("\n".join(lines) + "\n")
    curve = table[table["condition"].isin(["unsteered", "faster", "slower"])].sort_values("coef")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    lo = [
        r["median_bpm"] / (1 + r["change"]) * (1 + r["change_ci"][0]) for _, r in curve.iterrows()
    ]
    hi = [
        r["median_bpm"] / (1 + r["change"]) * (1 + r["change_ci"][1]) for _, r in curve.iterrows()
    ]
    ax.fill_between(curve["coef"], lo, hi, alpha=0.25, label="95% CI")
    ax.plot(curve["coef"], curve["median_bpm"], "o-", label="median detected BPM")
    for _, r in table[~table["condition"].isin(["unsteered", "faster", "slower"])].iterrows():
        ax.plot([r["coef"]], [r["median_bpm"]], "x", label=r["condition"])
    ax.set_xlabel("signed η0 (> 0: faster, < 0: slower)")
    ax.set_ylabel("BPM")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "tempo.png", dpi=120)
    plt.close(fig)
