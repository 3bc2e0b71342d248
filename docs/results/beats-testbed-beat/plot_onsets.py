"""Onset strength of clips made by `musicrfm generate --bpm N --directions .../onsets`, with the
beat grid they were pulsed on (this folder's onsets.png).

    musicrfm generate "acoustic piano, middle register" --model mini-beat --seconds 4 --seed 0 \\
        1000 -o gen/u.wav
    musicrfm generate "acoustic piano, middle register" --model mini-beat --bpm 80 \\
        --directions models/musicgen-mini-beat/directions/onsets --coef 0.3x --seconds 4 \\
        --seed 0 1000 -o gen/p80.wav      (and --bpm 160 -o gen/p160.wav)
    python docs/results/beats-testbed-beat/plot_onsets.py gen
"""

from __future__ import annotations

import sys
from pathlib import Path

import librosa
import matplotlib
import numpy as np
import soundfile as sf

from musicrfm.evaluation import detectors as det

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(folder: Path) -> None:
    rows = [("u", None, "unsteered"), ("p80", 80, "--bpm 80"), ("p160", 160, "--bpm 160")]
    fig, axes = plt.subplots(3, 2, figsize=(11, 6), sharex=True)
    for r, (tag, bpm, title) in enumerate(rows):
        for c, path in enumerate(sorted(folder.glob(f"{tag}_*.wav"))[:2]):
            y, sr = sf.read(path, dtype="float32")
            env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=320, n_fft=512)
            t = np.arange(len(env)) * 320 / sr
            ax = axes[r, c]
            ax.plot(t, env, lw=0.9)
            if bpm:
                for b in np.arange(0, 4.0 + 1e-9, 60.0 / bpm):
                    ax.axvline(b, color="tab:red", lw=0.6, alpha=0.6)
            found = det.detect(y, sr, "tempos").details.get("bpm", float("nan"))
            ax.set_title(f"{title}, seed {path.stem.split('_s')[-1]}: detected {found:.0f} BPM",
                         fontsize=9)  # fmt: skip
            ax.set_yticks([])
    for ax in axes[-1]:
        ax.set_xlabel("seconds (red: the beat grid of --bpm; the pulses peak half a beat early)")
    fig.suptitle("acoustic piano on musicgen-mini-beat: onset strength", fontsize=10)
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("onsets.png"), dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
