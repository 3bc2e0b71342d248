"""Does the reference timbre judge (prompt adherence) hear the instrument of a chord as well as
of a single note? It was fitted on single notes only (`evaluation.judges.reference_instrument_clips`),
while steered chord clips play triads. Renders held-out-style strike clips (one note, harmonic
interval, triad) on every prompt instrument, through the model's codec, and reports the judge's
family accuracy per kind with Wilson 95% CIs.

    python docs/results/judge-polyphony-testbed-beat/judge_check.py OUT.json [--per-kind N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from musicrfm import theory
from musicrfm.evaluation.judges import codec_round_trip, find_reference_judge, model_folder
from musicrfm.evaluation.metrics import wilson_interval
from musicrfm.models import load_model
from musicrfm.synth.strikes import render_strikes, strike_grid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default="models/musicgen-mini-beat")
    ap.add_argument("--per-kind", type=int, default=96)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    adapter = load_model(args.model)
    clf, report = find_reference_judge(adapter, [model_folder(adapter)])
    sr = int(adapter.sample_rate)
    rng = np.random.default_rng(args.seed)
    grid = strike_grid(seed=args.seed, interval_modes=("harmonic",))
    kinds = {"note": [c for c in grid if len(c.notes) == 1],
             "harmonic interval": [c for c in grid if len(c.notes) == 2],
             "triad": [c for c in grid if len(c.notes) == 3]}  # fmt: skip
    rows, result = [], {"model": args.model, "judge_report": report, "kinds": {}}
    for kind, clips in kinds.items():
        pick = [clips[i] for i in rng.choice(len(clips), size=args.per_kind, replace=False)]
        audio = [(render_strikes(c, sampling_rate=sr), sr) for c in pick]
        coded = codec_round_trip(adapter)(audio)
        want = [theory.instrument_family(c.program) for c in pick]
        cell = {}
        for name, clips_ in (("clean", audio), ("codec", coded)):
            hits = [clf.classify(a, s).label == w for (a, s), w in zip(clips_, want)]
            k, n = int(sum(hits)), len(hits)
            est = wilson_interval(k, n)
            cell[name] = {"correct": k, "n": n, "accuracy": k / n, "ci": [est.low, est.high]}
        result["kinds"][kind] = cell
        rows.append(
            f"{kind}: clean {cell['clean']['accuracy']:.3f}, codec {cell['codec']['accuracy']:.3f}"
        )
    args.out.write_text(json.dumps(result, indent=2))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
