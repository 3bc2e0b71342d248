"""What the polyphonic judge hears in the progression clips (C G Am F, 120 BPM, the bundled
chords + chord-roots directions), unsteered and steered at 0.15x / 0.1x, clip by clip.

    python docs/results/progression-controls-testbed-beat/polyphonic-judge/what_judge_hears.py OUT.json
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

BUNDLE = "models/musicgen-mini-beat"


def main(out: Path) -> None:
    model = load_model("mini-beat")
    judge = find_reference_judge(model, [Path(BUNDLE) / "judges" / "polyphonic"])
    prompts = DemoConfig().prompt_texts()
    prog = make_progression(chords="C G Am F", bpm="120")
    dirs = [ConceptDirections.load(f"{BUNDLE}/directions/{d}") for d in ("chords", "chord-roots")]
    result = {}
    for name, coef in (("unsteered", None), ("steered-0.15x", "0.15x"), ("steered-0.1x", "0.1x")):
        plan = None if coef is None else compile_progression(prog, dirs, coef)
        clips = generate(model, prompts, plan=plan, seed=[2000, 3000], seconds=prog.seconds,
                         batch=2)  # fmt: skip
        adh = prompt_adherence(judge[0], [c.audio for c in clips], clips[0].sample_rate,
                               [c.prompt for c in clips])  # fmt: skip
        rows = list(zip([c.prompt for c in clips], adh["expected"], adh["predicted"], adh["match"]))
        result[name] = rows
        print(name, dict(collections.Counter(adh["predicted"])), flush=True)
    out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
