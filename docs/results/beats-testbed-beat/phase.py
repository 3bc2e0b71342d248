"""Where the strikes land against the beat grid they were pulsed on, for each pulse lead.

For every target tempo and lead (the pulses come that fraction of a beat early:
`BeatPulse(lead=...)`), 8 prompts x 2 seeds of 4 s on musicgen-mini-beat with its bundled onset
directions at 0.3x: the detected tempo within 4% of the target, and the phase of every onset
(librosa, 32 ms window) in beats after the nearest grid beat: circular mean, resultant length R
(1 = every onset at the same phase) and the share within 1/8 beat of a grid beat.

    python docs/results/beats-testbed-beat/phase.py phase.json 0 0.5
    SEEDS="2000 3000" python docs/results/beats-testbed-beat/phase.py phase-fresh.json 0 0.5
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from musicrfm.evaluation import detectors as det
from musicrfm.experiments.demo.config import PROMPT_INSTRUMENTS
from musicrfm.experiments.demo.stages import sampling_options
from musicrfm.models import load_model
from musicrfm.models.codecs.polyphonic import onset_frames
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import SteeringPlan
from musicrfm.steering.progressions import ONSET_CLASS, BeatPulse

ONSETS = "models/musicgen-mini-beat/directions/onsets"
SECONDS, COEF, BPMS = 4.0, "0.3x", (80.0, 120.0, 160.0)
SEEDS = tuple(int(s) for s in os.environ.get("SEEDS", "0 1000").split())


def phases(y: np.ndarray, sr: int, bpm: float) -> np.ndarray:
    hop = sr // 50
    t = onset_frames(y, sr, hop) * hop / sr
    return ((t * bpm / 60.0 + 0.5) % 1.0) - 0.5  # beats after the nearest beat, in [-0.5, 0.5)


def main(out: str, leads: list[float]) -> None:
    torch.set_num_threads(1)
    adapter = load_model("mini-beat")
    prompts = [p + ", middle register" for p in PROMPT_INSTRUMENTS[:8]]
    result = []
    for lead in leads:
        for bpm in BPMS:
            sched = BeatPulse(bpm, SECONDS, lead=lead).schedules()[ONSET_CLASS]
            plan = SteeringPlan.single(ONSETS, ONSET_CLASS, COEF, schedule=sched)
            ph, hits = [], []
            for seed in SEEDS:
                for r in generate(adapter, prompts, plan=plan, seconds=SECONDS, seed=seed,
                                  batch=len(prompts), **sampling_options(adapter)):  # fmt: skip
                    y = np.asarray(r.audio, dtype=np.float32).reshape(-1)
                    b = det.detect(y, r.sample_rate, "tempos").details.get("bpm", np.nan)
                    hits.append(bool(np.isfinite(b) and abs(b / bpm - 1) <= 0.04))
                    ph.append(phases(y, r.sample_rate, bpm))
            p = np.concatenate(ph)
            z = np.exp(2j * np.pi * p).mean()
            row = {"lead": lead, "bpm": bpm, "clips": len(hits), "within_4pct": float(np.mean(hits)),
                   "onsets": int(len(p)), "mean_phase_beats": float(np.angle(z) / (2 * np.pi)),
                   "resultant_R": float(abs(z)), "on_beat_share": float(np.mean(np.abs(p) <= 0.125))}  # fmt: skip
            print(row, flush=True)
            result.append(row)
    with open(out, "w") as f:
        json.dump({"coef": COEF, "seconds": SECONDS, "seeds": SEEDS, "rows": result}, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [float(x) for x in sys.argv[2:]] or [0.0, 0.5])
