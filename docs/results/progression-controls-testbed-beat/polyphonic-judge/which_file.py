"""Which direction file moves the timbre: a chord quality or a chord root, each alone at 0.15x on
4 s clips (8 prompts x seeds 2000 3000), heard by the polyphonic judge (output: which_file.txt).

    python docs/results/progression-controls-testbed-beat/polyphonic-judge/which_file.py
"""

from __future__ import annotations

import collections
from pathlib import Path

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import SteeringPlan

BUNDLE = "models/musicgen-mini-beat"
CASES = (("major-only", "chords", "major"), ("minor-only", "chords", "minor"),
         ("root-C-only", "chord-roots", "C"), ("root-A-only", "chord-roots", "A"))  # fmt: skip


def main() -> None:
    model = load_model("mini-beat")
    judge = find_reference_judge(model, [Path(BUNDLE) / "judges" / "polyphonic"])
    prompts = DemoConfig().prompt_texts()
    for name, folder, target in CASES:
        cd = ConceptDirections.load(f"{BUNDLE}/directions/{folder}")
        plan = SteeringPlan.single(cd, target, "0.15x")
        clips = generate(model, prompts, plan=plan, seed=[2000, 3000], seconds=4.0, batch=2)
        adh = prompt_adherence(judge[0], [c.audio for c in clips], clips[0].sample_rate,
                               [c.prompt for c in clips])  # fmt: skip
        heard = dict(collections.Counter(adh["predicted"]))
        print(name, "adherence", adh["match"].mean(), heard, flush=True)


if __name__ == "__main__":
    main()
