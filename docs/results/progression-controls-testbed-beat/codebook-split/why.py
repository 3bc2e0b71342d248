"""Why the codebook split keeps no timbre (session 22): what the judge hears clip by clip, and
codes swapped between a split clip and an unsteered one (same prompt and seed).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/codebook-split/why.py
"""

import collections
from dataclasses import replace
from pathlib import Path

import torch

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

torch.set_num_threads(1)
B = "models/musicgen-mini-beat"
m = load_model("mini-beat")
judge = find_reference_judge(m, [Path(B) / "judges" / "polyphonic"])[0]
prompts = DemoConfig().prompt_texts()
prog = make_progression(chords="C G Am F", bpm="120")
dirs = [ConceptDirections.load(f"{B}/directions/{d}") for d in ("chords", "chord-roots")]
plan = compile_progression(prog, dirs, "0.15x")
u = generate(m, prompts, plan=None, seed=[2000], seconds=prog.seconds, batch=4)
s = generate(
    m, prompts, plan=replace(plan, codebooks=[0, 1]), seed=[2000], seconds=prog.seconds, batch=4
)


def judge_of(clips_audio, ps):
    a = prompt_adherence(judge, clips_audio, m.sample_rate, ps)
    return list(a["predicted"]), a["match"].mean()


P = [c.prompt for c in u]
print("prompts", [p.split(",")[0] for p in P])
print("unsteered", judge_of([c.audio for c in u], P))
print("split", judge_of([c.audio for c in s], P))
cu, mu = m.encode_audio([c.audio.reshape(-1) for c in u])
cs, ms = m.encode_audio([c.audio.reshape(-1) for c in s])
T = min(cu.shape[-1], cs.shape[-1])
for k in range(5):
    same = (cu[:, k, :T] == cs[:, k, :T]).float().mean().item()
    print(
        "codebook",
        k,
        "same code share",
        round(same, 3),
        "distinct unsteered/split",
        len(set(cu[:, k].flatten().tolist())),
        len(set(cs[:, k].flatten().tolist())),
    )
# swap: notes (0,1) from split clip, timbre (2,3) + onset (4) from unsteered clip
sw = cu[:, :, :T].clone()
sw[:, :2] = cs[:, :2, :T]
a = m.decode_codes(sw)
print("notes from split + timbre/onsets from unsteered", judge_of(list(a), P))
sw2 = cs[:, :, :T].clone()
sw2[:, 2:4] = cu[:, 2:4, :T]
a2 = m.decode_codes(sw2)
print("split with unsteered timbre", judge_of(list(a2), P))
rt = m.decode_codes(cu[:, :, :T])
print("unsteered round trip", judge_of(list(rt), P))
# per-prompt timbre code histograms (codebook 2) overlap
for i, p in enumerate(P):
    hu = collections.Counter(cu[i, 2].tolist())
    hs = collections.Counter(cs[i, 2].tolist())
    print(p.split(",")[0], "cb2 top unsteered", hu.most_common(3), "split", hs.most_common(3))


def changes(c):
    ch = (c[:, 0, 1:] != c[:, 0, :-1]) | (c[:, 1, 1:] != c[:, 1, :-1])
    at_onset = ch & (c[:, 4, 1:] == 0)
    return ch.sum(-1).tolist(), at_onset.sum(-1).tolist(), (c[:, 4] == 0).sum(-1).tolist()


print("unsteered note changes / at onsets / onsets", changes(cu[:, :, :T]))
print("split note changes / at onsets / onsets", changes(cs[:, :, :T]))
print(
    "bass notes unsteered",
    [sorted(collections.Counter(cu[i, 0].tolist()).most_common(4)) for i in range(3)],
)
print(
    "bass notes split",
    [sorted(collections.Counter(cs[i, 0].tolist()).most_common(4)) for i in range(3)],
)
