"""The detectors on clean strike clips (issue 19's "must not get worse" check).

The same 360 held-out clips of the polyphonic testbed that ``probe_poly_codecs.py`` judges as
its ``original`` column (``strike_grid`` on the 12 training programs, ``split_strikes`` seed 0,
144 triads, 96 harmonic and 72 melodic intervals, 48 single notes, 16 kHz, 4 s), judged by
the detectors as they are now. Prints k/n, share and a Wilson 95% interval per gate:

    .venv/bin/python benchmarks/detectors_strikes.py [--json out.json]   # ~1-2 min, one core
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402

SR = 16_000
PER = {"chords": 144, "harmonic_intervals": 96, "melodic_intervals": 72, "notes": 48}


def group_of(c) -> str:
    if c.concept == "intervals":
        return "harmonic_intervals" if c.interval_mode == "harmonic" else "melodic_intervals"
    return c.concept


def pick_eval(held: list, seed: int) -> list:
    """Up to ``PER[group]`` held-out clips of each group (as probe_poly_codecs picks them)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(held):
        groups[group_of(c)].append(i)
    keep: list[int] = []
    for name, idx in sorted(groups.items()):
        n = min(PER.get(name, 0), len(idx))
        keep += [idx[j] for j in rng.permutation(len(idx))[:n]]
    return [held[i] for i in sorted(keep)]


def judge(clip, y: np.ndarray) -> dict[str, bool]:
    from musicrfm.evaluation import detectors as det
    from musicrfm.theory import PITCH_CLASSES

    row: dict[str, bool] = {}
    if clip.concept == "chords":
        d = det.detect(y, SR, "chords")
        row["quality"] = det.label_matches("chords", d.label, clip.quality)
        root = d.details.get("root")
        row["root"] = root == clip.root  # as probe_poly_codecs counts it
        diff = (PITCH_CLASSES.index(root) - clip.root_pitch_class) % 12 if root else 1
        row["root_aug_mod_M3"] = diff % 4 == 0 if clip.quality == "augmented" else diff == 0
    elif clip.concept == "intervals":
        mode = "harmonic" if clip.interval_mode == "harmonic" else "melodic"
        d = det.detect(y, SR, "intervals", mode=mode)
        row[f"{mode}_interval"] = det.label_matches("intervals", d.label, clip.semitones)
    else:
        d = det.detect(y, SR, "notes")
        row["pitch_class"] = det.label_matches("notes", d.label, clip.root)
    t = det.detect(y, SR, "tempos")
    bpm = float(t.details.get("bpm", float("nan"))) if not t.silent else float("nan")
    row["tempo"] = det.tempo_match(bpm, clip.bpm)
    row["tempo_octave"] = det.tempo_match(bpm, clip.bpm, factors=det.OCTAVE_FACTORS)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from musicrfm.evaluation.validation import wilson_interval
    from musicrfm.synth.notes import TRAIN_PROGRAMS, render_clips
    from musicrfm.synth.strikes import split_strikes, strike_grid

    t0 = time.time()
    _, held = split_strikes(strike_grid(TRAIN_PROGRAMS, seed=args.seed), seed=args.seed)
    evals = pick_eval(held, args.seed + 1)
    audio = render_clips(evals, sampling_rate=SR, seconds=4.0)
    hits: dict[str, list[bool]] = defaultdict(list)
    for clip, y in zip(evals, audio):
        for gate, ok in judge(clip, y).items():
            hits[gate].append(bool(ok))
    out = {}
    for gate, values in hits.items():
        k, n = sum(values), len(values)
        low, high = wilson_interval(k, n)
        out[gate] = {
            "k": k,
            "n": n,
            "share": round(k / n, 4),
            "ci": [round(low, 3), round(high, 3)],
        }
        print(f"{gate:18s} {k:4d}/{n:<4d} {k / n:.3f} [{low:.3f}, {high:.3f}]")
    print(f"{len(evals)} clips in {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
