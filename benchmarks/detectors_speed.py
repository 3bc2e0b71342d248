"""Detector speed: clips per second per core, on 4-s and 30-s full mixes (issue 19).

Measured in process CPU time (``time.process_time``, one BLAS/OpenMP thread), so a machine
shared with other jobs gives the same figure as an idle one; wall time would not. Each detector
and back-end runs on ``--clips`` mixes per length after one warm-up call (imports, numba), with
the CQT memo cleared before every call (in real use detectors of one clip share one analysis;
here each pays for its own, the worst case).

Every case is timed twice in the same run: with the front-end as it is (the CQT's filters
built once per sample rate and tuning, chroma folded from that one CQT) and with
:func:`~musicrfm.evaluation.frontend.reference_frontend` (librosa's ``cqt`` / ``chroma_cqt``,
which rebuild the filters on every call: the front-end before issue 19's speed work). The
``x`` column is the ratio. Issue 19's target: chroma-based detectors >= 20 clips/s/core on 4-s
clips.

    .venv/bin/python benchmarks/detectors_speed.py [--clips 3] [--seconds 4 30]
        [--only notes chords keys intervals] [--json out.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from contextlib import nullcontext  # noqa: E402

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
    ("intervals", {"mode": "harmonic"}),
    ("intervals", {"mode": "mix", "tracker": "salience"}),
    ("intervals", {"mode": "mix", "tracker": "basic-pitch"}),
)
TARGET = 20.0
CHROMA_BASED = ("notes", "chords", "keys", "intervals (melodic)", "intervals (harmonic)")


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


def case_name(concept: str, options: dict) -> str:
    shown = [str(options[k]) for k in ("backend", "tracker") if k in options]
    if "mode" in options:
        shown.insert(0, str(options["mode"]))
    return concept + (f" ({', '.join(shown)})" if shown else "")


def cpu_per_clip(clips: list[np.ndarray], concept: str, options: dict, reference: bool) -> float:
    """Mean CPU seconds of one detection, the memo cleared before each."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.evaluation import frontend

    cpu = 0.0
    for y in clips:
        frontend._MEMO.clear()
        with frontend.reference_frontend() if reference else nullcontext():
            start = time.process_time()
            det.detect(y, det.SAMPLE_RATE, concept, **options)
            cpu += time.process_time() - start
    return cpu / len(clips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--seconds", type=float, nargs="+", default=[4.0, 30.0])
    ap.add_argument("--only", nargs="+", help="concepts to time (default: all)")
    ap.add_argument("--json")
    args = ap.parse_args()
    from musicrfm.evaluation import detectors as det

    cases = [c for c in CASES if not args.only or c[0] in args.only]
    warm = mixes(4.0, 1)[0]
    results = []
    print(
        f"{'detector':30s} {'clip':>5s} {'reference':>10s} {'now':>10s} {'x':>6s}  (clips/s/core)"
    )
    for seconds in args.seconds:
        clips = mixes(seconds, args.clips)
        for concept, options in cases:
            det.detect(warm, det.SAMPLE_RATE, concept, **options)  # imports, numba, models
            ref = cpu_per_clip(clips, concept, options, reference=True)
            now = cpu_per_clip(clips, concept, options, reference=False)
            name = case_name(concept, options)
            flag = ""
            if seconds == 4.0 and name in CHROMA_BASED:
                flag = "  target met" if 1 / now >= TARGET else f"  below {TARGET:g}"
            results.append({"detector": name, "seconds": seconds,
                            "cpu_s_per_clip": round(now, 4),
                            "clips_per_s_per_core": round(1.0 / now, 2),
                            "reference_cpu_s_per_clip": round(ref, 4),
                            "reference_clips_per_s_per_core": round(1.0 / ref, 2),
                            "speedup": round(ref / now, 2)})  # fmt: skip
            print(
                f"{name:30s} {seconds:4.0f}s {1 / ref:10.2f} {1 / now:10.2f} {ref / now:6.2f}{flag}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
