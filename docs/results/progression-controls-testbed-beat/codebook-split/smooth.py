"""Is the choir the note codes' flicker? The generated codes of unsteered and steered (0.15x,
no split) `C G Am F` clips (seed 2000, the demo's 8 prompts), short runs of codebooks 0 / 1, and
the judge on the same codes decoded after a mode filter over W frames of codebooks 0-1 (session
22).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/codebook-split/smooth.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import judge_bars
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

torch.set_num_threads(1)
B = "models/musicgen-mini-beat"
m = load_model("mini-beat")
K = m.num_codebooks
judge = find_reference_judge(m, [Path(B) / "judges" / "polyphonic"])[0]
prompts = DemoConfig().prompt_texts()
prog = make_progression(chords="C G Am F", bpm="120")
dirs = [ConceptDirections.load(f"{B}/directions/{d}") for d in ("chords", "chord-roots")]


def run(plan, seeds):
    rec = []
    h = m.model.decoder.register_forward_pre_hook(
        lambda mod, a, kw: rec.append(kw["input_ids"][:, -1].clone()), with_kwargs=True
    )
    try:
        clips = generate(m, prompts, plan=plan, seed=seeds, seconds=prog.seconds, batch=8)
    finally:
        h.remove()
    x = torch.stack(rec).reshape(len(rec), -1, K)[:, : len(prompts)]
    F = len(rec) - K - 1
    codes = torch.stack([x[torch.arange(F) + k + 1, :, k] for k in range(K)], -1).permute(1, 2, 0)
    return clips, codes


def short_runs(c, k, n=3):
    out = []
    for row in c[:, k].tolist():
        runs = [len(list(g)) for _, g in __import__("itertools").groupby(row)]
        out.append(sum(r < n for r in runs))
    return out


def mode_filter(c, w):
    c = c.clone()
    T = c.shape[-1]
    for k in (0, 1):
        src = c[:, k].clone()
        for t in range(T):
            win = src[:, max(0, t - w // 2) : t + w // 2 + 1]
            c[:, k, t] = torch.mode(win, dim=1).values
    return c


def adh(audio):
    return float(prompt_adherence(judge, audio, m.sample_rate, prompts)["match"].mean())


res = {}
for name, coef in (("unsteered", None), ("steered 0.15x", "0.15x")):
    plan = None if coef is None else compile_progression(prog, dirs, coef)
    clips, codes = run(plan, [2000])
    row = {
        "adherence": adh([c.audio for c in clips]),
        "short cb0 runs": short_runs(codes, 0),
        "short cb1 runs": short_runs(codes, 1),
    }
    dec = m.decode_codes(codes)
    row["decoded codes adherence"] = adh(list(dec))
    for w in (5, 9, 17):
        sm = m.decode_codes(mode_filter(codes, w))
        bars = [judge_bars(a, m.sample_rate, prog) for a in sm]
        row[f"mode {w}"] = {
            "adherence": adh(list(sm)),
            "chord": float(np.mean([b["chord_ok"] for cl in bars for b in cl])),
            "short cb1": short_runs(mode_filter(codes, w), 1),
        }
    print(name, json.dumps(row), flush=True)
