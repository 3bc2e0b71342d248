"""What the polyphonic judge hears on rendered progressions C G Am F (root position, octave 3,
2 s a chord) on the demo prompts' instruments, clean and through the testbed codec (session 22).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/codebook-split/real_prog.py

With HIGH=1 in the environment the roots are C4 G3 A3 F4, where the steered testbed plays them.
"""

import os
from pathlib import Path

import numpy as np
import torch

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.models import load_model
from musicrfm.synth.strikes import StrikeClip

torch.set_num_threads(1)
m = load_model("mini-beat")
judge = find_reference_judge(m, [Path("models/musicgen-mini-beat/judges/polyphonic")])[0]
prompts = DemoConfig().prompt_texts()
PROG = {
    "acoustic piano": 0,
    "vibraphone": 11,
    "marimba": 12,
    "church organ": 19,
    "nylon guitar": 24,
    "violin": 40,
    "choir": 52,
    "trumpet": 56,
}

CH = (
    [(60, "major"), (55, "major"), (57, "minor"), (65, "major")]
    if os.environ.get("HIGH")
    else [(48, "major"), (55, "major"), (57, "minor"), (53, "major")]
)
sr = m.sample_rate
for name, bpm, seconds in (
    ("struck 120", 120, 2.0),
    ("one strike per chord, held", 30, 2.0),
    ("single chord C struck", 120, 8.0),
):
    audios = []
    for p in prompts:
        prog = PROG[p.split(",")[0]]
        chords = CH if seconds == 2.0 else CH[:1]
        parts = [
            StrikeClip.triad(prog, r, q, bpm=bpm, gate=1.0 if bpm == 30 else 0.9).render(
                sampling_rate=sr, seconds=seconds
            )
            for r, q in chords
        ]
        audios.append((np.concatenate(parts), sr))
    clean = prompt_adherence(judge, [a for a, _ in audios], sr, prompts)
    rt = m.round_trip(audios)
    codec = prompt_adherence(judge, rt, sr, prompts)
    print(
        name,
        "clean",
        clean["match"].mean(),
        list(clean["predicted"]),
        "| codec",
        codec["match"].mean(),
        list(codec["predicted"]),
        flush=True,
    )
