"""A signed tempo direction from the beat phase (issue 17, experiment on musicgen-mini-beat).

Why: the mean-pooled BPM regression does not steer the testbed's tempo (the model copies its
period from the previous inter-onset interval), but every frame's hidden state knows how far
into the beat it is (codebook 4 of the testbed codec counts frames since the last onset). A
per-frame *regression* direction on that phase, pushed at a constant η0, might say "the next
strike is due" (η0 > 0: strike sooner, faster) or "a strike just happened" (η0 < 0: slower).

Labels per decoder frame t, from librosa's onsets of the clip's own audio (the recipe of
`capture.frames.onset_window_labels`), frames before the first / after the last onset dropped:

- ``phase``: frames since the last onset / the clip's median inter-onset interval, in [0, 1]
- ``since``: frames since the last onset (not normalised)
- ``until``: minus the frames until the next onset (sign reversed, so that a larger label is
  also "the next strike is near" and η0 > 0 should be 'faster' for every label)

One regression RFM per layer (`train_directions(task="regression")`, signed by the label's
correlation), trained on frames of strike clips at 60-180 BPM (clips split 70/15/15 by clip);
η0 relative to the median per-frame activation norm (`record_activation_norms`). Steering,
BPM reading, bootstrap medians, controls and verdict are the tempo headline's own
(`experiments.headline.tempo`); prompt adherence by the reference timbre judge.

Run (from the repo root, on 2 shared cores)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_CACHE_DIR=/tmp/s18/numba-45 nice -n 5 \\
      .venv/bin/python docs/results/tempo-phase-testbed-beat/phase_tempo.py --label phase \\
      --out /tmp/s18/h45/phase
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
LABELS = ("phase", "since", "until")


def frame_labels(wave: np.ndarray, sr: int, frame_rate: float, n: int, kind: str) -> np.ndarray:
    """(n,) float label per frame (NaN where undefined: before the first or after the last
    onset, or a clip with fewer than 3 onsets)."""
    from musicrfm.models.codecs.polyphonic import onset_frames

    hop = int(round(sr / frame_rate))
    on = onset_frames(np.asarray(wave, dtype=np.float32).reshape(-1), sr, hop, pad=4)
    on = np.unique(on[on < n])
    out = np.full(n, np.nan)
    if len(on) < 3:
        return out
    t = np.arange(n)
    last = np.searchsorted(on, t, side="right") - 1  # index of the last onset <= t
    nxt = np.searchsorted(on, t, side="left")  # index of the first onset >= t
    if kind in ("phase", "since"):
        ok = last >= 0
        since = np.where(ok, t - on[np.clip(last, 0, None)], np.nan)
        if kind == "since":
            return since
        ioi = float(np.median(np.diff(on)))
        return np.where(ok, np.clip(since / ioi, 0.0, 1.0), np.nan)
    ok = nxt < len(on)
    return np.where(ok, -(on[np.clip(nxt, None, len(on) - 1)] - t), np.nan)


def frame_regression_set(features: Any, labels: list[np.ndarray], seed: int,
                         caps: dict[str, int]) -> Any:  # fmt: skip
    """A FeatureSet of frames (rows: label, split by clip, clip, frame), at most ``caps[split]``
    frames a split drawn uniformly from the frames with a label."""
    from musicrfm.capture.features import FeatureSet
    from musicrfm.capture.frames import clip_splits

    split = clip_splits(len(features), seed)
    offsets = features.frame_offsets.tolist()
    parts = []
    for i, lab in enumerate(labels):
        t = min(offsets[i + 1] - offsets[i], len(lab))
        parts.append(pd.DataFrame({"label": lab[:t], "split": split[i], "clip": i,
                                   "frame": np.arange(t), "at": offsets[i] + np.arange(t)}))  # fmt: skip
    table = pd.concat(parts, ignore_index=True)
    table = table[np.isfinite(table["label"])].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for s, cap in caps.items():
        idx = np.flatnonzero(table["split"] == s)
        keep += rng.choice(idx, min(cap, len(idx)), replace=False).tolist()
    keep_idx = np.sort(np.asarray(keep))
    frames = features.frames[:, torch.from_numpy(table["at"].to_numpy()[keep_idx])].contiguous()
    rows = table.drop(columns="at").iloc[keep_idx].reset_index(drop=True)
    meta = {**features.meta, "concept": "tempos", "pooling": "frame"}
    return FeatureSet(features=frames, rows=rows, meta=meta)


def onset_rate(records: list[dict[str, Any]], frame_rate: float) -> list[float]:
    """Onsets per second of every generated clip (librosa, the labels' recipe): a second reading
    of 'faster' that does not depend on the tempo detector's periodicity."""
    from musicrfm.models.codecs.polyphonic import onset_frames

    out = []
    for rec in records:
        audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
        sr = int(rec["_sr"])
        on = onset_frames(
            np.asarray(audio, dtype=np.float32), sr, int(round(sr / frame_rate)), pad=4
        )
        out.append(len(on) / (len(audio) / sr))
    return out


def onset_summary(frame: pd.DataFrame, seed: int, n_boot: int = 2000) -> list[dict[str, Any]]:
    """Per (condition, η0): mean onsets per second with the bootstrap 95% CI of its ratio to the
    unsteered mean, and the share of held clips (<= 2 onsets in 4 s, where the tempo detector
    still reports a BPM although nothing repeats)."""
    base = frame.loc[frame["condition"] == "unsteered", "onsets_per_s"].to_numpy(float)
    rng = np.random.default_rng(seed)
    b = base[rng.integers(0, len(base), (n_boot, len(base)))].mean(axis=1)
    rows = []
    for (cond, coef), g in frame.groupby(["condition", "coef"], sort=False):
        x = g["onsets_per_s"].to_numpy(float)
        a = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
        lo, hi = np.quantile(a / b - 1, [0.025, 0.975])
        rows.append({"condition": cond, "coef": float(coef), "n": len(x),
                     "mean_onsets_per_s": float(x.mean()),
                     "change": float(x.mean() / base.mean() - 1), "change_ci": [float(lo), float(hi)],
                     "held_share": float((x <= 0.5).mean())})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", choices=LABELS, default="phase")
    ap.add_argument("--model", default="mini-beat")
    ap.add_argument("--out", required=True, help="run folder (audio, directions, everything)")
    ap.add_argument("--seed", type=int, default=0, help="strike clips, splits and probes")
    ap.add_argument("--gen-seed", type=int, default=None,
                    help="(prompt, seed) pairs of the generations (default --seed); another "
                    "value is a fresh-seed check, written as LABEL-seedN.*")  # fmt: skip
    ap.add_argument("--per-tempo", type=int, default=12, help="strike clips per testbed tempo")
    ap.add_argument("--train-frames", type=int, default=3000)
    ap.add_argument("--relative-coefs", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--baseline-clips", type=int, default=96)
    ap.add_argument("--no-adherence", action="store_true")
    ap.add_argument("--results", default=str(HERE), help="where the JSON / CSV / figure go")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from the JSON")
    args = ap.parse_args(argv)
    gen_seed = args.seed if args.gen_seed is None else args.gen_seed
    name = args.label if args.gen_seed is None else f"{args.label}-seed{args.gen_seed}"
    if args.replot:
        record = json.loads((Path(args.results) / f"{name}.json").read_text())
        clips = pd.read_csv(Path(args.results) / f"{name}-clips.csv")
        record["onset_rows"] = onset_summary(clips, args.seed)
        (Path(args.results) / f"{name}.json").write_text(json.dumps(record, indent=2))
        plot(pd.DataFrame(record["rows"]), record, Path(args.results) / f"{name}.png")
        return record

    import soundfile as sf

    from musicrfm.capture.extract import extract_features
    from musicrfm.experiments.demo.config import default_work_dir
    from musicrfm.experiments.demo.stages import sampling_options, tempo_dataset
    from musicrfm.experiments.headline.config import HeadlineConfig
    from musicrfm.experiments.headline.tempo import (
        TEMPO_CHANGE_GATE,
        best_coefs,
        generate_and_judge,
        tempo_control_jobs,
        tempo_jobs,
        tempo_table,
        tempo_verdict,
    )  # fmt: skip
    from musicrfm.models import load_model
    from musicrfm.probes.directions import record_activation_norms
    from musicrfm.probes.training import train_directions

    out, work = Path(args.out), default_work_dir()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    adapter = load_model(args.model, device="cpu")
    dataset = tempo_dataset(adapter, work, args.per_tempo, args.seed, True)
    feats = extract_features(adapter, dataset, pooling="mean", prompt="", keep_frames=True,
                             cache_dir=work / "features", progress=True)  # fmt: skip
    labels = []
    for i, row in feats.rows.iterrows():
        wave, sr = sf.read(Path(dataset.root) / row["path"], dtype="float32", always_2d=False)
        n = int(feats.frame_offsets[i + 1] - feats.frame_offsets[i])
        labels.append(frame_labels(wave, sr, adapter.frame_rate, n, args.label))
    # how the label relates to the clip's tempo (a raw 'since' is also a tempo label)
    clip_bpm = feats.rows["label"].astype(float).to_numpy()
    per_clip_mean = np.array([np.nanmean(x) if np.isfinite(x).any() else np.nan for x in labels])
    ok = np.isfinite(per_clip_mean)
    label_vs_bpm = float(np.corrcoef(clip_bpm[ok], per_clip_mean[ok])[0, 1])
    cap = args.train_frames
    frames = frame_regression_set(feats, labels, args.seed,
                                  {"train": cap, "val": cap * 4 // 15, "test": cap * 4 // 15})  # fmt: skip
    trained = train_directions(frames, label_column="label", concept="tempos",
                               task="regression", budget="fast", components=4, seed=args.seed,
                               device="cpu", progress=True)  # fmt: skip
    cd = trained.directions
    record_activation_norms(cd, frames.features)
    cd.meta["frame_label"] = args.label
    cd.save(out / "directions" / "tempos")
    scale = float(cd.activation_norm())
    coefs = tuple(round(r * scale, 4) for r in args.relative_coefs)
    timings["learn"] = time.perf_counter() - t0

    cfg = HeadlineConfig(concept="tempos", targets=("faster", "slower"),
                         relative_coefs=tuple(args.relative_coefs), clips=args.clips,
                         baseline_clips=args.baseline_clips)  # fmt: skip
    cfg = replace(cfg, data=replace(cfg.data, instrument_check=not args.no_adherence))

    def controls_for(frame: pd.DataFrame) -> list:
        best = best_coefs(tempo_table(frame, args.seed), TEMPO_CHANGE_GATE)
        return tempo_control_jobs(cd, cfg, best, gen_seed)

    t0 = time.perf_counter()
    frame, inst = generate_and_judge(adapter, dataset, tempo_jobs(cd, cfg, coefs, gen_seed),
                                     controls_for, cfg, out, work, args.seed, True)  # fmt: skip
    timings["generate_and_judge"] = time.perf_counter() - t0
    # onsets per second of every clip, read back from the written audio
    recs = []
    for p in frame["audio_path"]:
        a, s = sf.read(p, dtype="float32", always_2d=False)
        recs.append({"_audio": a, "_sr": s})
    frame["onsets_per_s"] = onset_rate(recs, adapter.frame_rate)
    table = tempo_table(frame, args.seed)
    rates = frame.groupby(["condition", "coef"], sort=False)["onsets_per_s"].median()
    table["median_onsets_per_s"] = [float(rates[(c, k)]) for c, k in zip(table["condition"], table["coef"])]  # fmt: skip
    table["relative_coef"] = table["coef"] / scale
    best = best_coefs(table, TEMPO_CHANGE_GATE)
    verdict = tempo_verdict(table, best, cfg)
    command = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 5 .venv/bin/python " + " ".join(
        [str(Path(__file__).relative_to(Path.cwd()) if Path.cwd() in Path(__file__).parents else __file__), *(argv if argv is not None else sys.argv[1:])])  # fmt: skip
    record = {
        "label": args.label,
        "overall": verdict,
        "rows": table.to_dict(orient="records"),
        "probe_r2": {
            "val": trained.val_scores[:, 0].tolist(),
            "test": trained.test_scores[:, 0].tolist(),
        },  # fmt: skip
        "onset_rows": onset_summary(frame, args.seed),
        "label_vs_clip_bpm_corr": label_vs_bpm,
        "settings": {
            "model_id": str(adapter.model_id),
            "coefs": list(coefs),
            "relative_coefs": list(args.relative_coefs),
            "activation_scale": scale,
            "per_tempo": args.per_tempo,
            "strike_clips": len(feats),
            "frames": {s: int((frames.rows["split"] == s).sum()) for s in ("train", "val", "test")},
            "clips": args.clips,
            "baseline_clips": args.baseline_clips,
            "sampling": sampling_options(adapter),
            "instrument_classifier": inst,
            "seed": args.seed,
            "gen_seed": gen_seed,
            "command": command,
        },  # fmt: skip
        "timings": timings,
    }
    from musicrfm.experiments.demo.report import json_default

    record = json.loads(json.dumps(record, default=json_default))
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    (res / f"{name}.json").write_text(json.dumps(record, indent=2))
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(p).name for p in frame["audio_path"]]
    per_clip.to_csv(res / f"{name}-clips.csv", index=False)
    plot(table, record, res / f"{name}.png")
    shutil.copy(res / f"{name}.json", out / "result.json")
    return record


def plot(table: pd.DataFrame, record: dict[str, Any], path: Path) -> None:
    """Median detected BPM (95% bootstrap CI) and median onsets/s against the signed relative
    η0, the unsteered median's CI as a band, controls as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = table[table["condition"] == "unsteered"].iloc[0]
    bmed = base["median_bpm"]
    curve = table[table["condition"].isin(["unsteered", "faster", "slower"])].sort_values("coef")
    x = curve["relative_coef"].to_numpy(float)
    med = curve["median_bpm"].to_numpy(float)
    lo = np.array([bmed * (1 + c[0]) for c in curve["change_ci"]])
    hi = np.array([bmed * (1 + c[1]) for c in curve["change_ci"]])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.8))
    ax.axhspan(bmed * (1 + base["change_ci"][0]), bmed * (1 + base["change_ci"][1]),
               color="grey", alpha=0.2, label=f"unsteered 95% CI (n={base['n']})")  # fmt: skip
    ax.axhline(bmed * 1.2, ls=":", color="k", lw=0.8)
    ax.axhline(bmed * 0.8, ls=":", color="k", lw=0.8, label="±20% of unsteered")
    ax.errorbar(x, med, yerr=[med - lo, hi - med], marker="o", capsize=3,
                label=f"steered median BPM (n={int(curve['n'].iloc[0])}/η0)")  # fmt: skip
    others = table[~table["condition"].isin(["unsteered", "faster", "slower"])]
    for (_, r), m in zip(others.iterrows(), "xX+P*"):
        ax.plot([r["relative_coef"]], [r["median_bpm"]], m, ms=8, label=r["condition"])
    ax.set_xlabel("signed η0 / per-frame activation norm (> 0: 'faster')")
    ax.set_ylabel("median detected BPM")
    ax.set_title(f"label '{record['label']}': monotone {record['overall']['monotone']}, "
                 f"passed {record['overall']['passed']}", fontsize=9)  # fmt: skip
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    ons = pd.DataFrame(record["onset_rows"])
    ons = ons[ons["condition"].isin(["unsteered", "faster", "slower"])].sort_values("coef")
    obase = ons[ons["condition"] == "unsteered"].iloc[0]
    omean = ons["mean_onsets_per_s"].to_numpy(float)
    olo = np.array([obase["mean_onsets_per_s"] * (1 + c[0]) for c in ons["change_ci"]])
    ohi = np.array([obase["mean_onsets_per_s"] * (1 + c[1]) for c in ons["change_ci"]])
    ax2.axhspan(olo[ons["condition"].to_numpy() == "unsteered"][0],
                ohi[ons["condition"].to_numpy() == "unsteered"][0], color="grey", alpha=0.2,
                label="unsteered 95% CI")  # fmt: skip
    ax2.errorbar(ons["coef"].to_numpy(float) / record["settings"]["activation_scale"], omean,
                 yerr=[omean - olo, ohi - omean], marker="o", capsize=3,
                 label="steered (bootstrap 95% CI)")  # fmt: skip
    ax2.set_xlabel("signed η0 / per-frame activation norm")
    ax2.set_ylabel("mean onsets per second (librosa)")
    ax2.legend(fontsize=7)
    fig.suptitle("\n".join(textwrap.wrap(record["settings"]["command"], 190)), fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
