"""Exact chords per bar and an exact tempo at once: `generate --chords "C G Am F" --bpm 100`
with chord-quality and onset directions, on musicgen-mini-beat.

Conditions on 8 prompts x 2 seeds (the demo's prompts), 4 bars of 2/4 at 100 BPM (4.8 s):
unsteered; the chord qualities alone (quality part, 0.3x, as the demo's progression); the
qualities plus the bundled onset directions pulsed on the same grid (both 0.3x, one plan, what
`musicrfm generate --chords ... --bpm 100 --directions CHORDS ONSETS --chord-parts quality
--coef 0.3x` compiles), and with the onset part at 0.15x; the beat alone. Per bar: the chord detector's quality against the text (bars trimmed by
0.15 s); per clip: the tempo detector's BPM within 4% of 100.

    python docs/results/progressions-testbed/chords_and_beat.py CHORD_DIRS OUT.json [ROOT_DIRS] [--beat-coefs ...] [--seeds ...]
(CHORD_DIRS: chord-quality directions of the beat testbed, e.g. a demo run's
demo-report/directions/chords; with ROOT_DIRS, chord-root directions, both parts are steered
(root + quality), e.g. the bundled models/musicgen-mini-beat/directions/chords and chord-roots)
"""

from __future__ import annotations

import json

import numpy as np
import torch

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.metrics.stats import wilson_interval
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import bar_scores, judge_bars
from musicrfm.experiments.demo.stages import sampling_options
from musicrfm.models import load_model
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import SteeringPlan, compile_progression
from musicrfm.steering.progressions import make_progression

ONSETS = "models/musicgen-mini-beat/directions/onsets"
CHORDS, BPM, COEF, SEEDS = "C G Am F", 100.0, "0.3x", (0, 1000)
BEAT_COEFS = ("0.3x", "0.15x")  # the onset part's η0 (one plan: the chords' directions + it)


def main(
    chord_dirs: str, out: str, root_dirs: str | None = None, beat_coefs=BEAT_COEFS, seeds=SEEDS
) -> None:
    torch.set_num_threads(1)
    adapter = load_model("mini-beat")
    prompts = DemoConfig().prompt_texts()
    parts = "quality" if root_dirs is None else "root,quality"
    chords_only = make_progression(chords=CHORDS, bpm=BPM, beats_per_bar=2, parts=parts)
    beat = make_progression(bpm=BPM, steer_beat=True, seconds=chords_only.seconds)
    chords = compile_progression(
        chords_only, [chord_dirs, *([root_dirs] if root_dirs else [])], COEF
    )
    plans = {"unsteered": None, "chords": chords}
    for bc in beat_coefs:
        pulses = compile_progression(beat, [ONSETS], bc)
        plans[f"chords + beat {bc}"] = SteeringPlan([*chords.directions, *pulses.directions])
    plans["beat 0.3x alone"] = compile_progression(beat, [ONSETS], "0.3x")
    result = {"chords": CHORDS, "bpm": BPM, "coef": COEF, "seeds": seeds, "parts": parts,
              "directions": [chord_dirs, root_dirs], "conditions": {}}  # fmt: skip
    for name, plan in plans.items():
        bars, hits = [], []
        for seed in seeds:
            for c in generate(adapter, prompts, plan=plan, seconds=chords_only.seconds, seed=seed,
                              batch=len(prompts), **sampling_options(adapter)):  # fmt: skip
                y = np.asarray(c.audio, dtype=np.float32).reshape(-1)
                bars.append(judge_bars(y, c.sample_rate, chords_only))
                b = det.detect(y, c.sample_rate, "tempos").details.get("bpm", np.nan)
                hits.append(bool(np.isfinite(b) and abs(b / BPM - 1) <= 0.04))
        scores = bar_scores(bars, 0)
        tempo = wilson_interval(int(sum(hits)), len(hits))
        scores["tempo_within_4pct"] = {"value": tempo.value, "ci": [tempo.low, tempo.high],
                                       "n": tempo.n}  # fmt: skip
        scores.pop("detected")
        result["conditions"][name] = scores
        print(name, json.dumps({k: scores[k] for k in ("quality", "chord", "tempo_within_4pct")}),
              flush=True)  # fmt: skip
    with open(out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chord_dirs")
    ap.add_argument("out")
    ap.add_argument("root_dirs", nargs="?", default=None)
    ap.add_argument("--beat-coefs", nargs="+", default=list(BEAT_COEFS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    a = ap.parse_args()
    main(a.chord_dirs, a.out, a.root_dirs, tuple(a.beat_coefs), tuple(a.seeds))
