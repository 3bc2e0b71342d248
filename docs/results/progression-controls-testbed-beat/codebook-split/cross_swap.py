"""Which codes of a steered progression clip make the judge hear a choir? Codes swapped between
steered `C G Am F` clips (0.15x, every codebook steered, seed 2000, the demo's 8 prompts) and the
codes of the same progression rendered on each prompt's instrument (struck on the beat, root
position, octave 3; its bars line up with the steered clip's: 2 s a chord). Session 22.

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/codebook-split/cross_swap.py OUT.json
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import judge_bars
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression
from musicrfm.synth.strikes import StrikeClip

B = "models/musicgen-mini-beat"
PROGRAMS = {"acoustic piano": 0, "vibraphone": 11, "marimba": 12, "church organ": 19,
            "nylon guitar": 24, "violin": 40, "choir": 52, "trumpet": 56}  # fmt: skip
CHORDS = [(48, "major"), (55, "major"), (57, "minor"), (53, "major")]
PARTS = {"notes": [0, 1], "timbre": [2, 3], "onsets": [4]}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    m = load_model("mini-beat")
    judge = find_reference_judge(m, [Path(B) / "judges" / "polyphonic"])[0]
    prompts = DemoConfig().prompt_texts()
    prog = make_progression(chords="C G Am F", bpm="120")
    dirs = [ConceptDirections.load(f"{B}/directions/{d}") for d in ("chords", "chord-roots")]
    plan = compile_progression(prog, dirs, "0.15x")
    steered = generate(m, prompts, plan=plan, seed=[2000], seconds=prog.seconds, batch=8)
    sr = m.sample_rate
    rendered = [
        np.concatenate([StrikeClip.triad(PROGRAMS[p.split(",")[0]], r, q).render(
            sampling_rate=sr, seconds=2.0) for r, q in CHORDS])
        for p in prompts
    ]  # fmt: skip
    cs, _ = m.encode_audio([c.audio.reshape(-1) for c in steered])
    cr, _ = m.encode_audio(rendered)
    t = min(cs.shape[-1], cr.shape[-1])
    cs, cr = cs[..., :t], cr[..., :t]

    def judged(codes: torch.Tensor) -> dict:
        audio = list(m.decode_codes(codes))
        adh = prompt_adherence(judge, audio, sr, prompts)
        bars = [judge_bars(a, sr, prog) for a in audio]
        return {"adherence": float(adh["match"].mean()), "heard": list(adh["predicted"]),
                "chord": float(np.mean([b["chord_ok"] for c in bars for b in c]))}  # fmt: skip

    result = {"steered (re-encoded)": judged(cs), "rendered (re-encoded)": judged(cr)}
    for part, ks in PARTS.items():
        mixed = cr.clone()
        mixed[:, ks] = cs[:, ks]
        result[f"rendered with the steered {part}"] = judged(mixed)
    for key, row in result.items():
        print(f"{key}: adherence {row['adherence']:.3f} chord {row['chord']:.2f} {row['heard']}")
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
