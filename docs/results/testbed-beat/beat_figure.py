"""The figure docs/figures/testbed-beat-unsteered.png: unsteered clips of the two strike testbeds
(same prompts, seed 3), CQT with librosa's onsets. Run from the repository root:
    OMP_NUM_THREADS=1 .venv/bin/python docs/results/testbed-beat/beat_figure.py
"""

import librosa
import librosa.display
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from musicrfm.mini.gates import generate_clips  # noqa: E402
from musicrfm.models.codecs.polyphonic import onset_frames  # noqa: E402
from musicrfm.models.loader import load_model  # noqa: E402

PROMPTS = ["acoustic piano", "marimba", "violin", "nylon guitar"]
MODELS = [
    ("musicgen-mini-poly (session 10)", "mini-poly"),
    ("musicgen-mini-beat (session 14, onset codebook)", "mini-beat"),
]


def main() -> None:
    torch.set_num_threads(1)
    fig, axes = plt.subplots(2, 4, figsize=(16, 6), sharey=True)
    fmin = librosa.midi_to_hz(36)
    for r, (name, model) in enumerate(MODELS):
        gen = generate_clips(load_model(model), PROMPTS, seed=3, frames=200)
        for c, (y, prompt) in enumerate(zip(gen, PROMPTS)):
            cqt = np.abs(librosa.cqt(y, sr=16000, hop_length=256, fmin=fmin, n_bins=72))
            ax = axes[r, c]
            librosa.display.specshow(
                librosa.amplitude_to_db(cqt, ref=np.max), sr=16000, hop_length=256,
                x_axis="time", y_axis="cqt_note", fmin=fmin, ax=ax,
            )  # fmt: skip
            for f in onset_frames(y, 16000, 320):
                ax.axvline(f * 320 / 16000, color="w", lw=0.8, alpha=0.7)
            ax.set_title(f"{prompt}\n{name}", fontsize=9)
            ax.label_outer()
    fig.suptitle("Unsteered 4-s clips, same prompts and seed; white lines = detected onsets")
    fig.tight_layout()
    fig.savefig("docs/figures/testbed-beat-unsteered.png", dpi=70)


if __name__ == "__main__":
    main()
