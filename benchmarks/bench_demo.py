"""Wall time of `musicrfm demo` with one process against two (`--workers 1` vs `--workers 2`).

Both runs start from an empty cache (their own ``--work`` folder), so each synthesises, extracts
and trains everything, as a new user's first run does. The baseline (one process, every stage in
order) is measured in the same run on the same machine; the ratio is what to compare across
machines. The two reports must agree figure for figure (the second process changes where a stage
runs, not what it computes); the script checks that and exits 1 if they do not.

    python benchmarks/bench_demo.py [--quick] [--keep DIR]

The full demo takes about 8 + 5 minutes on 2 cores; ``--quick`` adds ``--quick --part
chords:augmented`` (a smaller run that still has a second process's work).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(folder: Path, workers: int, quick: bool) -> float:
    """Seconds of one `musicrfm demo` in a fresh work folder."""
    cmd = [sys.executable, "-m", "musicrfm", "demo", "--no-progress", "--workers", str(workers),
           "--out", str(folder / "report"), "--work", str(folder / "work")]  # fmt: skip
    if quick:
        cmd += ["--quick", "--part", "chords:augmented"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def figures(report: Path) -> dict:
    """What the report measured, without the timings."""
    record = json.loads((report / "demo.json").read_text())
    parts = {}
    for key in ("part", "pair", "beat"):
        part = dict(record["settings"].get(key) or {})
        part.pop("timings", None)
        parts[key] = part
    return {"summary": record["summary"], "controls": record["controls"],
            "crossfade": record["crossfade"], **parts}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the reduced demo with a chord part")
    ap.add_argument("--keep", default=None, help="keep both runs' folders here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        seconds = {w: run_demo(root / f"workers-{w}", w, args.quick) for w in (1, 2)}
        same = figures(root / "workers-1" / "report") == figures(root / "workers-2" / "report")
    print(f"musicrfm demo{' --quick' if args.quick else ''}, empty cache each time")
    print(f"  --workers 1 (baseline): {seconds[1]:6.0f} s")
    print(f"  --workers 2           : {seconds[2]:6.0f} s")
    print(f"  ratio (2 / 1)         : {seconds[2] / seconds[1]:6.2f}")
    print(f"  same figures          : {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
