"""A stricter reading of the crossfades' thirds than `mini schedules` reports.

`schedules.json` names the class with the highest mean probability in a third, which for the
chord detector is often "major" when a lone note sounds (the unsteered clips of the beat
testbed "end on major" 11/12 while they play single notes). This script re-reads each run's
crossfade and unsteered clips with the same per-window trace and reports, per third, the mean
probability of A / B and the share of clips whose windows are *decided* A / B (the detector's
window label, "none" included) in the majority of that third's sounding windows.

    python docs/results/schedules-testbed-beat/thirds_control.py RUN_FOLDER [RUN_FOLDER ...]

prints a Markdown table and writes thirds_control.json into each run folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicrfm.evaluation.detectors.base import SILENT
from musicrfm.experiments.schedules.readers import concept_classes, read_trace


def third_stats(folder: Path) -> dict:
    rec = json.loads((folder / "schedules.json").read_text())
    cfg = rec["settings"]["config"]
    concept, seconds = rec["concept"], float(cfg["data"]["seconds"])
    a, b = rec["crossfade"]["a"], rec["crossfade"]["b"]
    classes = concept_classes(concept)
    frame = pd.read_csv(folder / "results.csv")
    out = {"run": folder.name, "concept": concept, "a": a, "b": b}
    for cond in ("crossfade", "unsteered"):
        rows = frame[frame["condition"] == cond]
        pa, pb, dec_a, dec_b, top_b = [], [], [], [], []
        for path in rows["audio_path"]:
            y, sr = sf.read(folder / path, dtype="float32")
            y = y if y.ndim == 1 else y.mean(1)
            tr = read_trace(concept, y, sr, window_s=cfg["window_s"], hop_s=cfg["hop_s"],
                            interval_mode=cfg["interval_mode"])  # fmt: skip
            t = np.asarray(tr.times)
            sounding = np.asarray([lab != SILENT for lab in tr.labels], dtype=bool)
            first, last = (t < seconds / 3) & sounding, (t >= 2 * seconds / 3) & sounding
            labels = np.asarray(tr.labels)
            pa.append(float(tr.probs[first, classes.index(a)].mean()) if first.any() else 0.0)
            pb.append(float(tr.probs[last, classes.index(b)].mean()) if last.any() else 0.0)
            dec_a.append(bool(first.any() and (labels[first] == a).mean() > 0.5))
            dec_b.append(bool(last.any() and (labels[last] == b).mean() > 0.5))
            # the report's own reading (highest mean probability), to check the re-read
            top_b.append(bool(last.any() and classes[int(np.argmax(tr.probs[last].mean(0)))] == b))
        out[cond] = {"n": len(rows), "mean_p_a_first": float(np.mean(pa)),
                     "mean_p_b_last": float(np.mean(pb)), "decided_a_first": int(sum(dec_a)),
                     "decided_b_last": int(sum(dec_b)), "top_b_last": int(sum(top_b))}  # fmt: skip
    (folder / "thirds_control.json").write_text(json.dumps(out, indent=2))
    return out


def main(folders: list[str]) -> None:
    print("| run | crossfade | mean P(A), first third | A decided in first third | "
          "mean P(B), last third | B decided in last third |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for f in folders:
        s = third_stats(Path(f))
        x, u = s["crossfade"], s["unsteered"]
        print(f"| {s['run']} | {s['a']} -> {s['b']} | {x['mean_p_a_first']:.2f} (unsteered "
              f"{u['mean_p_a_first']:.2f}) | {x['decided_a_first']}/{x['n']} (unsteered "
              f"{u['decided_a_first']}/{u['n']}) | {x['mean_p_b_last']:.2f} (unsteered "
              f"{u['mean_p_b_last']:.2f}) | {x['decided_b_last']}/{x['n']} (unsteered "
              f"{u['decided_b_last']}/{u['n']}) |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
