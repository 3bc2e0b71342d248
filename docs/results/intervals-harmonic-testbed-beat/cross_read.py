"""Read an interval headline's clips again in the other interval mode.

`mini headline --concept intervals --interval-mode harmonic` judges with
`detect_interval(mode="harmonic")`, `--interval-mode melodic` (or no mode) with the default,
melodic one; this reads every clip in the other mode and prints, per condition and η0 (pooled
over the 12 targets), the hit rate in each reading and the commonest labels of the other one,
and writes cross_read.json (needs the run's audio/ folder, so run it before deleting that).

    python docs/results/intervals-harmonic-testbed-beat/cross_read.py RUN_FOLDER
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import soundfile as sf

from musicrfm.evaluation import detectors as det


def main(folder: Path) -> None:
    frame = pd.read_csv(folder / "results.csv")
    settings = json.loads((folder / "headline.json").read_text())["settings"]
    mode = settings.get("interval_mode") or "melodic"  # the run's reading
    other = "melodic" if mode == "harmonic" else "harmonic"
    options = {"mode": "harmonic"} if other == "harmonic" else {}  # melodic: the default
    labels = []
    for path in frame["audio_path"]:
        y, sr = sf.read(folder / path, dtype="float32")
        labels.append(det.detect(y if y.ndim == 1 else y.mean(1), sr, "intervals", **options).label)
    frame["other_label"] = labels
    frame["other_hit"] = [
        det.label_matches("intervals", str(m), str(t)) for m, t in zip(labels, frame["target"])
    ]
    out = []
    for (cond, coef), g in frame.groupby(["condition", "coef"], sort=False):
        row = {
            "condition": cond,
            "coef": float(coef),
            "n": len(g),
            f"{mode}_hit_rate": float(g["correct"].astype(bool).mean()),
            f"{other}_hit_rate": float(g["other_hit"].mean()),
            f"{other}_labels": dict(Counter(map(str, g["other_label"])).most_common(4)),
        }
        if cond == "unsteered":  # the baseline's target is nominal: show what it plays
            row[f"{mode}_labels"] = dict(Counter(map(str, g["label"])).most_common(4))
        out.append(row)
        print(row)
    (folder / "cross_read.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
