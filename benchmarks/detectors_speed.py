"""Detector speed: clips per second per core, on 4-s and 30-s full mixes (issue 19).

Measured in process CPU time (``time.process_time``, one BLAS/OpenMP thread), so a machine
shared with other jobs gives the same figure as an idle one; wall time would not. Each detector
and back-end runs on ``--clips`` mixes per length after one warm-up call (imports, numba), with
the CQT memo cleared before every call (in real use detectors of one clip share one analysis;
here each pays for its own, the worst case).

    .venv/bin/python benchmarks/detectors_speed.py [--clips 3] [--json out.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

CASES = (
    ("notes", {}),
    ("chords", {}),
    ("keys", {}),
    ("keys", {"backend": "essentia"}),
    ("lead", {"backend": "salience"}),
    ("lead", {"backend": "basic-pitch"}),
    ("tempos", {"backend": "librosa"}),
    ("tempos", {"backend": "essentia"}),
    ("time_signatures", {}),
    ("progressions", {}),
    ("intervals", {"mode": "melodic"}),
    ("intervals", {"mode": "mix", "tracker": "salience"}),
    ("intervals", {"mode": "mix", "tracker": "basic-pitch"}),
)


def mixes(seconds: float, count: int) -> list[np.ndarray]:
    """``count`` TimGM6mb mixes cut (or tiled) to ``seconds``."""
    from musicrfm.synth import arrangements as arr
    from musicrfm.synth.render import find_soundfont

    out = []
    for i in range(count):
        a = arr.arrangement(100 + i)
        y = arr.mix(a, arr.TrackRenderer(find_soundfont(), "tinysoundfont", a.duration + 0.1))
        n = int(seconds * arr.SAMPLE_RATE)
        out.append(np.resize(y, n).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    from musicrfm.evaluation import detectors as det
    from musicrfm.evaluation import frontend

    warm = mixes(4.0, 1)[0]
    results = []
    for seconds in (4.0, 30.0):
        clips = mixes(seconds, args.clips)
        for concept, options in CASES:
            det.detect(warm, det.SAMPLE_RATE, concept, **options)  # imports, numba, models
            cpu = 0.0
            for y in clips:
                frontend._MEMO.clear()
                start = time.process_time()
                det.detect(y, det.SAMPLE_RATE, concept, **options)
                cpu += time.process_time() - start
            cpu /= len(clips)
            shown = [str(options[k]) for k in ("backend", "tracker") if k in options]
            if options.get("mode") == "mix":
                shown.insert(0, "mix")
            name = concept + (f" ({', '.join(shown)})" if shown else "")
            results.append({"detector": name, "seconds": seconds, "cpu_s_per_clip": round(cpu, 3),
                            "clips_per_s_per_core": round(1.0 / cpu, 2)})  # fmt: skip
            print(
                f"{name:28s} {seconds:4.0f} s clips: {cpu:7.3f} CPU s/clip, {1 / cpu:7.2f} clips/s/core"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
