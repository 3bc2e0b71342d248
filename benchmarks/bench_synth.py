"""Throughput of `musicrfm synth`: the full notes concept (9,936 clips, 4 s, 32 kHz mono FLAC).

Prints clips per second, seconds of audio per second of wall time, and the ratio to the targets
(full notes set < 3 min on 2 cores; all seven concepts < 30 min). With ``--all`` it also renders a
seeded sample of every concept and extrapolates each to its full size.

    python benchmarks/bench_synth.py                 # full notes, all cores
    python benchmarks/bench_synth.py --all --fraction 0.02
    python benchmarks/bench_synth.py --workers 1 --concept chords --limit-per-class 100

The machine may be shared: run it with `nice` and read the figures as a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from musicrfm.synth import CONCEPTS, generate_dataset

NOTES_TARGET_S = 180.0
ALL_TARGET_S = 1800.0


def _cpu() -> float:
    """CPU seconds used by this process and its finished children (the render workers)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(concept: str, out: Path, **kw: object) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (load-independent), clips written, silent renders."""
    t0, c0 = time.perf_counter(), _cpu()
    ds = generate_dataset(concept, out, **kw)  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return wall, cpu, len(ds), int(ds.meta.get("silent_excluded", 0))


def _main_run(args: argparse.Namespace, base: Path, workers: int) -> None:
    out = base / args.concept
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, clips, silent = _run(
        args.concept, out, workers=workers, limit_per_class=args.limit_per_class
    )
    rendered = clips + silent
    result = {
        "concept": args.concept,
        "clips_written": clips,
        "silent_excluded": silent,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 1),
        "wall_s": round(wall, 2),
        "clips_per_s": round(rendered / wall, 1),
        "audio_s_per_wall_s": round(rendered * 4.0 / wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_ms_per_clip": round(1000 * cpu / rendered, 2),
        "idle_machine_estimate_s": round(cpu / workers, 1),
    }
    if args.concept == "notes" and args.limit_per_class is None:
        result["target_s"] = NOTES_TARGET_S
        result["target_over_actual"] = round(NOTES_TARGET_S / wall, 2)
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--concept", default="notes")
    ap.add_argument("--limit-per-class", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="default: all cores")
    ap.add_argument("--all", action="store_true", help="also estimate all seven concepts")
    ap.add_argument("--fraction", type=float, default=0.02, help="sample share for --all")
    ap.add_argument(
        "--min-sample",
        type=int,
        default=200,
        help="with --all: at least this many clips per concept (fixed costs dominate below)",
    )
    ap.add_argument("--estimate-only", action="store_true", help="with --all: skip the main run")
    ap.add_argument("--keep", help="render into this folder and keep it")
    args = ap.parse_args()
    workers = args.workers or os.cpu_count() or 1
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        if not (args.all and args.estimate_only):
            _main_run(args, base, workers)
        if args.all:
            total = total_cpu = 0.0
            for name, concept in CONCEPTS.items():
                n_classes = len(concept.labels)
                share = max(concept.full_size * args.fraction, args.min_sample)
                per_class = max(1, round(share / n_classes))
                sub = base / f"sample_{name}"
                shutil.rmtree(sub, ignore_errors=True)
                w, cpu, c, s = _run(name, sub, workers=workers, limit_per_class=per_class)
                est = w / max(1, c + s) * concept.full_size
                cpu_est = cpu / max(1, c + s) * concept.full_size
                total += est
                total_cpu += cpu_est
                print(
                    json.dumps(
                        {
                            "concept": name,
                            "sampled": c + s,
                            "wall_s": round(w, 2),
                            "clips_per_s": round((c + s) / w, 1),
                            "full_size": concept.full_size,
                            "estimated_full_s": round(est, 1),
                            "cpu_ms_per_clip": round(1000 * cpu / max(1, c + s), 2),
                            "estimated_full_cpu_s": round(cpu_est, 1),
                        }
                    )
                )
            print(
                json.dumps(
                    {
                        "all_concepts_estimated_s": round(total, 1),
                        "all_concepts_cpu_s": round(total_cpu, 1),
                        "idle_machine_estimate_s": round(total_cpu / workers, 1),
                        "clips": sum(c.full_size for c in CONCEPTS.values()),
                        "target_s": ALL_TARGET_S,
                        "target_over_estimate": round(ALL_TARGET_S / total, 2),
                    }
                )
            )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
