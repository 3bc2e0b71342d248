"""Chords per bar and the tempo at once, with and without steering only the codebooks that carry
them (session 22): the plan `chords_and_beat.toml` (root 0.3x, quality 0.3x, onset pulses 0.45x
on `C G Am F` at 100 BPM in 2/4, chosen on other seeds in session 17) as it is, and with
`codebooks = [0, 1, 4]` (notes and onsets steered; the timbre codebooks 2-3 from the unsteered
copy). 8 prompts x 8 seeds (n = 64 a condition). Per clip: root + quality per bar, the tempo
(a pulse and within 4% of 100 BPM), prompt adherence by the progressions judge, paired against
unsteered.

    OMP_NUM_THREADS=1 python docs/results/progressions-testbed/chords_beat_codebooks.py OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors.tempo import NO_PULSE
from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.evaluation.metrics.stats import bootstrap_ci, wilson_interval
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import judge_bars
from musicrfm.models import load_model
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import SteeringPlan
from musicrfm.steering.progressions import make_progression

HERE = Path(__file__).parent
BPM = 100.0
SEEDS = (2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000)
JUDGE = "models/musicgen-mini-beat/judges/progressions"


def _ci(values: list[float]) -> dict:
    est = bootstrap_ci(np.asarray(values, float), seed=0)
    return {"value": est.value, "ci": [est.low, est.high], "n": int(est.n)}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    t0 = time.time()
    model = load_model("mini-beat")
    judge = find_reference_judge(model, [Path(JUDGE)])
    if judge is None:
        raise SystemExit(f"{JUDGE}: no judge for this codec")
    prompts = DemoConfig().prompt_texts()
    prog = make_progression(chords="C G Am F", bpm=BPM, beats_per_bar=2)
    plan = SteeringPlan.load(HERE / "chords_and_beat.toml")
    plans = {"unsteered": None, "chords + beat": plan,
             "chords + beat, codebooks 0 1 4": replace(plan, codebooks=[0, 1, 4])}  # fmt: skip
    result: dict = {"plan": "chords_and_beat.toml", "seeds": list(SEEDS), "prompts": prompts,
                    "seconds": prog.seconds, "judge": JUDGE, "conditions": {}}  # fmt: skip
    per: dict[str, dict] = {}
    for name, p in plans.items():
        clips = generate(model, prompts, plan=p, seed=list(SEEDS), seconds=prog.seconds, batch=8)
        bars, tempo = [], []
        for c in clips:
            y = np.asarray(c.audio, dtype=np.float32).reshape(-1)
            bars.append(float(np.mean([b["chord_ok"] for b in judge_bars(y, c.sample_rate, prog)])))
            d = det.detect(y, c.sample_rate, "tempos")
            bpm = d.details.get("bpm", np.nan)
            tempo.append(
                float(d.label != NO_PULSE and np.isfinite(bpm) and abs(bpm / BPM - 1) <= 0.04)
            )
        adh = prompt_adherence(judge[0], [c.audio for c in clips], clips[0].sample_rate,
                               [c.prompt for c in clips])["match"].astype(float).tolist()  # fmt: skip
        per[name] = {"bars": bars, "tempo": tempo, "adherence": adh}
        hits = int(sum(tempo))
        w = wilson_interval(hits, len(tempo))
        s = {"bars": _ci(bars), "tempo_within_4pct": {"value": w.value, "ci": [w.low, w.high], "n": w.n},
             "adherence": _ci(adh), "per_clip": per[name]}  # fmt: skip
        s["joint"] = _ci([float(b >= 0.75 and t) for b, t in zip(bars, tempo)])
        if name != "unsteered":
            s["adherence_change"] = _ci(
                list(np.array(adh) - np.array(per["unsteered"]["adherence"]))
            )
        result["conditions"][name] = s
        print(name, {k: round(s[k]["value"], 3) for k in ("bars", "tempo_within_4pct", "joint", "adherence")},
              s.get("adherence_change", {}).get("ci"), round(time.time() - t0), "s", flush=True)  # fmt: skip
        result["wall_s"] = time.time() - t0
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
