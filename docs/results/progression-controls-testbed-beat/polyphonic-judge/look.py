"""Look at the choir: log-mel spectrograms of `C G Am F` clips, unsteered against steered at
0.15x (bundled chords + chord-roots directions), for three prompts at seed 2000, with what the
polyphonic judge hears in each and the strong-onset count of the tempo detector.

    python docs/results/progression-controls-testbed-beat/polyphonic-judge/look.py OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import librosa
import matplotlib
import numpy as np

from musicrfm.evaluation.detectors.tempo import detect_tempo
from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.models import load_model
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

BUNDLE = Path("models/musicgen-mini-beat")
PROMPTS = ["marimba, middle register", "acoustic piano, middle register",
           "nylon guitar, middle register"]  # fmt: skip


def main(out: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = load_model("mini-beat")
    judge = find_reference_judge(model, [BUNDLE / "judges" / "polyphonic"])
    prog = make_progression(chords="C G Am F", bpm="120")
    plan = compile_progression(prog, [BUNDLE / "directions" / "chords",
                                      BUNDLE / "directions" / "chord-roots"], "0.15x")  # fmt: skip
    rows = {}
    for name, p in (("unsteered", None), ("steered 0.15x", plan)):
        clips = generate(model, PROMPTS, plan=p, seed=2000, seconds=prog.seconds, batch=3)
        heard = prompt_adherence(judge[0], [c.audio for c in clips], clips[0].sample_rate,
                                 [c.prompt for c in clips])  # fmt: skip
        rows[name] = [(c, str(h), detect_tempo(c.audio, c.sample_rate).details.get("onsets"))
                      for c, h in zip(clips, heard["predicted"])]  # fmt: skip
    fig, axes = plt.subplots(len(PROMPTS), 2, figsize=(12, 2.6 * len(PROMPTS)), squeeze=False)
    summary = []
    for j, (name, clips) in enumerate(rows.items()):
        for i, (c, heard, onsets) in enumerate(clips):
            mel = librosa.feature.melspectrogram(y=np.asarray(c.audio, float).reshape(-1), sr=c.sample_rate,
                                                 n_mels=64, fmax=c.sample_rate / 2)  # fmt: skip
            ax = axes[i][j]
            ax.imshow(librosa.power_to_db(mel, ref=np.max), origin="lower", aspect="auto",
                      extent=[0, mel.shape[-1] * 512 / c.sample_rate, 0, 64], cmap="magma")  # fmt: skip
            for bar in np.arange(0, prog.seconds + 1e-6, 2.0):
                ax.axvline(bar, color="w", lw=0.6, ls="--")
            ax.set_title(f"{name}: '{c.prompt.split(',')[0]}' heard as {heard}, "
                         f"{onsets} strong onsets", fontsize=9)  # fmt: skip
            ax.set_ylabel("mel band")
            summary.append({"condition": name, "prompt": c.prompt, "heard": heard,
                            "strong_onsets": onsets})  # fmt: skip
    for ax in axes[-1]:
        ax.set_xlabel("seconds (dashed: bar lines, C G Am F)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
