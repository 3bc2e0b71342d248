"""The timbre judges on rendered chord progressions (session 22): each saved judge's accuracy on
audio of the kind the progression path makes, clean and through the beat testbed's codec.

Sets (none of them fitted on: the progressions judge's own clips use seed 0):
  held-out  `progression_clips(seed=1)`: 4 random triads a clip, 2 s each, roots C3-B4, every
            prompt instrument (4 clips each, 48 clips);
  triads    one random triad a clip, 4 s, any quality / inversion / tempo (seed 1, 48 clips);
  C G Am F  rendered on every prompt instrument in root position at the register the steered
            testbed plays it (roots C4 G3 A3 F4) and an octave-3 voicing (C3 G3 A3 F3).

    OMP_NUM_THREADS=1 python docs/results/judge-progressions-testbed-beat/validate.py OUT.json \
        [--judges models/musicgen-mini-beat models/musicgen-mini-beat/judges/polyphonic \
                  models/musicgen-mini-beat/judges/progressions]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from musicrfm import theory
from musicrfm.evaluation.judges import find_reference_judge, progression_clips
from musicrfm.evaluation.metrics.stats import wilson_interval
from musicrfm.models import load_model
from musicrfm.synth.notes import TRAIN_PROGRAMS
from musicrfm.synth.strikes import StrikeClip

BUNDLE = "models/musicgen-mini-beat"
JUDGES = [BUNDLE, f"{BUNDLE}/judges/polyphonic", f"{BUNDLE}/judges/progressions"]
VOICINGS = {
    "C G Am F, roots C4 G3 A3 F4": [(60, "major"), (55, "major"), (57, "minor"), (65, "major")],
    "C G Am F, roots C3 G3 A3 F3": [(48, "major"), (55, "major"), (57, "minor"), (53, "major")],
}


def fixed_progression(sr: int, chords: list[tuple[int, str]]) -> tuple[list, list[str]]:
    audio = [
        (np.concatenate([StrikeClip.triad(int(p), r, q).render(sampling_rate=sr, seconds=2.0)
                         for r, q in chords]), sr)
        for p in TRAIN_PROGRAMS
    ]  # fmt: skip
    return audio, [theory.instrument_family(int(p)) for p in TRAIN_PROGRAMS]


def single_triads(sr: int, per_program: int = 4, seed: int = 1) -> tuple[list, list[str]]:
    """One random triad a clip (quality, inversion, root C3-B4), struck for 4 s at a random
    tempo, on every prompt instrument: the kind of clip the chord headline steers toward."""
    rng = np.random.default_rng(seed)
    qualities = list(theory.CHORD_QUALITIES)
    audio, families = [], []
    for p in TRAIN_PROGRAMS:
        for _ in range(per_program):
            clip = StrikeClip.triad(int(p), int(rng.integers(48, 72)),
                                    qualities[int(rng.integers(len(qualities)))],
                                    int(rng.integers(3)), bpm=float(rng.choice(np.arange(60, 181, 10))))  # fmt: skip
            audio.append((clip.render(sampling_rate=sr, seconds=4.0), sr))
            families.append(theory.instrument_family(int(p)))
    return audio, families


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--judges", nargs="+", default=JUDGES)
    a = ap.parse_args()
    t0 = time.time()
    model = load_model("mini-beat")
    sr = int(model.sample_rate)
    sets = {
        "held-out progressions (seed 1)": progression_clips(sr, 4, seed=1),
        "single triads (seed 1)": single_triads(sr),
    }
    for name, chords in VOICINGS.items():
        sets[name] = fixed_progression(sr, chords)
    coded = {name: model.round_trip(audio) for name, (audio, _) in sets.items()}
    result: dict = {"judges": {}, "sets": {k: len(v[1]) for k, v in sets.items()}}
    for folder in a.judges:
        found = find_reference_judge(model, [Path(folder)])
        if found is None:
            raise SystemExit(f"{folder}: no judge for this codec")
        clf, report = found
        rows = {}
        for name, (audio, families) in sets.items():
            for how, clips in (("clean", [x for x, _ in audio]), ("codec", coded[name])):
                pred = clf.predict(clips, sr)
                k = int(sum(p == f for p, f in zip(pred, families)))
                est = wilson_interval(k, len(families))
                rows[f"{name} | {how}"] = {"accuracy": k / len(families),
                                           "ci": [est.low, est.high], "n": len(families)}  # fmt: skip
                print(f"{folder} | {name} | {how}: {k}/{len(families)}", flush=True)
        result["judges"][folder] = {"report": report, "accuracy": rows}
    result["wall_s"] = time.time() - t0
    a.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
