"""Bootstrap 95% CIs over clips of measure.py's per-bar accuracies (the README's table rows).

.venv/bin/python docs/results/progressions-testbed/ci.py [OUT/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from musicrfm.steering.progressions import make_progression

RESULTS = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/progmeasure/out/results.json")


def bootstrap_ci(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """2.5th and 97.5th percentiles of the mean over clips (rows), 2000 resamples."""
    boots = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(2000)]
    return np.percentile(boots, [2.5, 97.5])


def main() -> None:
    rows = json.loads(RESULTS.read_text())["rows"]
    rng = np.random.default_rng(0)
    for r in rows:
        prog = make_progression(chords=r["progression"], bpm=120, beats_per_bar=2)
        want = [b[0] for b in prog.chords.chord_at_bars()]
        det = np.array(r["detected"]).reshape(r["clips"], 4)
        clips = range(r["clips"])
        q = np.array(
            [[det[c, i].split(":")[-1] == want[i].quality for i in range(4)] for c in clips], float
        )
        ch = np.array([[det[c, i] == want[i].name for i in range(4)] for c in clips], float)
        lo, hi = bootstrap_ci(q, rng)
        clo, chi = bootstrap_ci(ch, rng)
        bars = " ".join(f"{v:.2f}" for v in q.mean(0))
        print(
            f"| {r['progression']} | {r['condition']} | {q.mean():.2f} [{lo:.2f}, {hi:.2f}] | "
            f"{bars} | {ch.mean():.2f} [{clo:.2f}, {chi:.2f}] |"
        )


if __name__ == "__main__":
    main()
