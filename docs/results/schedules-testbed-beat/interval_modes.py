"""How the interval detector's mode reads a schedules run's clips, whole-clip.

`mini schedules --concept intervals --interval-mode harmonic` reads intervals as two notes
sounding together; `det.detect(audio, sr, "intervals")` with no options (what
`mini headline --concept intervals` judges by) is `detect_interval`'s default, melodic mode
(one note after another), which hears a held two-note chord as a unison ("0").

    python docs/results/schedules-testbed-beat/interval_modes.py RUN_FOLDER

prints, per condition, the whole-clip labels in each mode and writes interval_modes.json.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import soundfile as sf

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors.intervals import detect_interval


def main(folder: Path) -> None:
    frame = pd.read_csv(folder / "results.csv")
    out = {}
    for cond, rows in frame.groupby("condition", sort=False):
        harmonic, default = Counter(), Counter()
        for path in rows["audio_path"]:
            y, sr = sf.read(folder / path, dtype="float32")
            y = y if y.ndim == 1 else y.mean(1)
            harmonic[detect_interval(y, sr, mode="harmonic").label] += 1
            default[det.detect(y, sr, "intervals").label] += 1
        out[cond] = {"harmonic": dict(harmonic), "default (melodic)": dict(default)}
        print(f"{cond}: harmonic {dict(harmonic)}; default (melodic) {dict(default)}")
    (folder / "interval_modes.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
