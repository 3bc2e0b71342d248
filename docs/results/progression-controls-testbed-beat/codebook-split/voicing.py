"""The chords the steered testbed plays: per bar the commonest (bass, notes above) of steered
(0.15x) and unsteered `C G Am F` clips, re-encoded by the codec (seed 2000, first 3 prompts).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/codebook-split/voicing.py
"""

import collections

import numpy as np
import torch

from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.models import load_model
from musicrfm.models.codecs.polyphonic import UPPER_SETS
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

torch.set_num_threads(1)
B = "models/musicgen-mini-beat"
m = load_model("mini-beat")
prompts = DemoConfig().prompt_texts()
prog = make_progression(chords="C G Am F", bpm="120")
dirs = [ConceptDirections.load(f"{B}/directions/{d}") for d in ("chords", "chord-roots")]
plan = compile_progression(prog, dirs, "0.15x")
s = generate(m, prompts, plan=plan, seed=[2000], seconds=prog.seconds, batch=8)
u = generate(m, prompts, plan=None, seed=[2000], seconds=prog.seconds, batch=8)
for name, clips in (("steered", s), ("unsteered", u)):
    c, _ = m.encode_audio([x.audio.reshape(-1) for x in clips])
    T = c.shape[-1]
    per = T // 4
    for i in range(3):
        row = []
        for b in range(4):
            seg = c[i, :, b * per : (b + 1) * per]
            top = collections.Counter(zip(seg[0].tolist(), seg[1].tolist())).most_common(2)
            row.append([(bb, UPPER_SETS[t], n) for (bb, t), n in top])
        print(name, prompts[i].split(",")[0], row)
    # mean loudness
    print(name, "rms", [round(float(np.sqrt(np.mean(x.audio**2))), 3) for x in clips])
