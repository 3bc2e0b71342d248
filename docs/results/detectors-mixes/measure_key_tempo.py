"""Key and tempo-confidence figures on mix sets (issue 19, set v2): accuracy and calibration.

For every clip of each set folder (``musicrfm evaluate mixes`` output): the key detector as it
is now and as it was before the last-chord cue (``last`` weight 0, tonic temperature 0.5), and
the librosa tempo detector with its confidence now (octave evidence) and before (regularity x
distance of the off-beat ratio from 0.6, recomputed from ``details``). Writes ``summary.csv``
(k, n, accuracy, Wilson 95% per set and variant), ``per_clip.csv`` and, through
``musicrfm.evaluation.validation``'s calibration code, ``calibration.csv`` / ``.png``:

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/detectors-mixes/measure_key_tempo.py \
        --out OUT SET_DIR [SET_DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors.keys import TONIC_WEIGHTS
from musicrfm.evaluation.validation import (
    _relative_key,
    calibration,
    plot_calibration,
    wilson_interval,
)

BEFORE = {"tonic_weights": {**TONIC_WEIGHTS, "last": 0.0}, "tonic_temperature": 0.5}
"""The key detector before the last-chord cue (the seed-3 set-v1 figures were made with it)."""


def set_name(folder: Path) -> str:
    meta = json.loads((folder / "dataset.json").read_text())
    version = meta.get("set_version", 1)
    return f"v{version} seed {meta['seed']} {Path(meta['soundfont']).stem}"


def clip_rows(name: str, row: pd.Series, y: np.ndarray, sr: int) -> list[dict]:
    out = []
    for variant, options in (("now", {}), ("before last-chord cue", BEFORE)):
        d = det.detect_key(y, sr, **options)
        for task, ok in (
            ("key", d.label == row["key"]),
            ("key up to relative", d.label in (row["key"], _relative_key(row["key"]))),
        ):
            out.append(
                {
                    "set": name,
                    "path": row["path"],
                    "concept": "mixes",
                    "task": task,
                    "detector": f"key profiles, {variant} ({name})",
                    "truth": row["key"],
                    "predicted": d.label,
                    "confidence": d.confidence,
                    "correct": bool(ok),
                }
            )
    t = det.detect_tempo(y, sr)
    bpm = float(t.details["bpm"])
    ok = det.tempo_match(bpm, float(row["bpm"]))
    ratio, regularity = t.details.get("offbeat_ratio"), t.details.get("regularity", 0.0)
    old = 0.0 if ratio is None else regularity * float(np.clip(abs(ratio - 0.6) / 0.6, 0, 1))
    for variant, conf in (("now", t.confidence), ("before", old)):
        out.append(
            {
                "set": name,
                "path": row["path"],
                "concept": "mixes",
                "task": "bpm within 4%",
                "detector": f"librosa, confidence {variant} ({name})",
                "truth": row["bpm"],
                "predicted": round(bpm, 2),
                "confidence": conf,
                "correct": bool(ok),
                "octave_evidence": t.details.get("octave_evidence"),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=None, help="first N clips of each set")
    args = parser.parse_args()
    for folder in args.sets:
        if not (folder / "manifest.csv").is_file():
            raise SystemExit(
                f"error: {folder} has no manifest.csv (make it: musicrfm evaluate mixes)"
            )
    rows: list[dict] = []
    for folder in args.sets:
        name = set_name(folder)
        manifest = pd.read_csv(folder / "manifest.csv")
        for _, row in manifest.head(args.limit).iterrows():
            y, sr = det.load_audio(folder / row["path"])
            rows.extend(clip_rows(name, row, y, sr))
    per = pd.DataFrame(rows)
    summary = []
    for (name, task, detector), g in per.groupby(["set", "task", "detector"], sort=False):
        if "confidence before" in detector:
            continue  # same labels as "confidence now"
        k, n = int(g["correct"].sum()), len(g)
        low, high = wilson_interval(k, n)
        label = detector.split(" (")[0]
        summary.append(
            {"set": name, "task": task, "detector": label, "k": k, "n": n,
             "accuracy": round(k / n, 4), "ci_low": round(low, 4), "ci_high": round(high, 4)}
        )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(summary).to_csv(args.out / "summary.csv", index=False)
    per.to_csv(args.out / "per_clip.csv", index=False)
    # reliability of set-v2 clips, seeds pooled, one panel per task, variant and soundfont
    shown = per[(per["task"] != "key up to relative") & per["set"].str.startswith("v2 ")].copy()
    soundfont = shown["set"].str.split(" ").str[-1]
    shown["detector"] = shown["detector"].str.split(" \\(").str[0] + " (" + soundfont + ")"
    curve = calibration(shown)
    curve.to_csv(args.out / "calibration.csv", index=False)
    plot_calibration(curve, args.out / "calibration.png")
    print(pd.DataFrame(summary).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
