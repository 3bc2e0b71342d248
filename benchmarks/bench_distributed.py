"""Speed-up of 2 processes over 1 for extraction and a small sweep, measured in the same run.

One torchrun launch starts 2 processes (gloo, one torch thread each) on a seeded random MusicGen
with musicgen-small's shapes (``--layers`` decoder blocks) and synthetic clips. After a warm-up,
each phase runs in the order 1, 2, 2, 1 processes: "1" is rank 0 alone, in
`musicrfm.capture.distributed.local` (exactly the one-process code path) while rank 1 waits at a
barrier; "2" is both ranks sharing the work. Each is timed between barriers, so start-up (the
same for both) is left out and the ratio is that of the work itself. The 1- and 2-process
results (features, condition records) are checked to be identical.

On a machine other jobs also load, 2 processes get a larger share of the contended cores than 1
does, which flatters the ratio, and 2 processes cannot both have a whole core, which caps it: the
load average is printed with it, and so is the ceiling the cores give at that moment (2 copies of
the 1-process extraction run side by side without talking to each other).

    nice -n 10 python benchmarks/bench_distributed.py
    nice -n 10 python benchmarks/bench_distributed.py --clips 32 --layers 4 --coefs 1,2,4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_inputs(work: Path, clips: int, seconds: float, layers: int, coefs: list[float]) -> None:
    """Labelled tones of a few lengths, random note directions, and a sweep config."""
    import pandas as pd
    import soundfile as sf
    import torch

    from musicrfm.probes.directions import ConceptDirections

    (work / "ds" / "audio").mkdir(parents=True)
    sr, rows = 32000, []
    for i in range(clips):
        t = np.arange(int(seconds * (0.8 + 0.1 * (i % 5)) * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (220 + 15 * i) * t)
        sf.write(work / "ds" / "audio" / f"{i:03d}.wav", y.astype(np.float32), sr)
        rows.append({"path": f"audio/{i:03d}.wav", "label": "CEG"[i % 3]})
    pd.DataFrame(rows).to_csv(work / "ds" / "manifest.csv", index=False)
    g = torch.Generator().manual_seed(1)
    v = torch.nn.functional.normalize(torch.randn(layers, 3, 1, 1024, generator=g), dim=-1)
    scores = torch.rand(layers, 3, generator=g)
    ConceptDirections("notes", ["C", "E", "G"], v, scores, list(range(layers))).save(work / "notes")
    sweep = {
        "seconds": 0.5,
        "prompts": ["a piano melody"],
        "seeds": [0, 1],
        "coefs": coefs,
        "controls": ["flip", "random"],
        "concepts": {"notes": {"directions": str(work / "notes"), "targets": ["C"]}},
    }
    (work / "sweep.json").write_text(json.dumps(sweep))


def worker(work: Path, layers: int, batch_size: int) -> None:
    """Both ranks: warm up, then time each phase alone and shared, in the order 1, 2, 2, 1."""
    import torch

    torch.set_num_threads(1)
    from musicrfm.capture.distributed import local, world
    from musicrfm.capture.extract import extract_features
    from musicrfm.experiments.sweep.run import run_sweep
    from musicrfm.models import random_model
    from musicrfm.steering.generation import generate

    w = world()
    model = random_model("small", seed=0, num_layers=layers)
    cfg = json.loads((work / "sweep.json").read_text())
    first = work / "ds" / "manifest.csv"
    with local():  # warm-up: lazy initialisation, caches, the detectors' imports
        import pandas as pd

        one_clip = pd.read_csv(first).head(1).assign(path=lambda f: str(work / "ds") + "/" + f.path)
        extract_features(model, one_clip, use_cache=False, progress=False)
        generate(model, ["warm up"], seconds=0.1, seed=0)
    times: dict[str, float] = {}
    idle_cpu = 0.0  # rank 1's CPU seconds while rank 0 works alone (a barrier should cost none)
    feats: dict[str, torch.Tensor] = {}
    for k, procs in enumerate((1, 2, 2, 1)):
        for phase in ("extract", "sweep"):
            w.barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            if procs == 2 or w.main:
                with local() if procs == 1 else contextlib.nullcontext():
                    if phase == "extract":
                        feats[f"{procs}-{k}"] = extract_features(
                            model, work / "ds", use_cache=False, progress=False,
                            batch_size=batch_size,
                        ).features  # fmt: skip
                    else:
                        run_sweep(cfg, work / f"sweep-{procs}-{k}", model=model)
            w.barrier()
            key = f"{phase}-{procs}"
            times[key] = times.get(key, 0.0) + time.perf_counter() - t0
            if procs == 1:
                idle_cpu += time.process_time() - c0
    # the machine's own ceiling: both ranks extract everything, alone, at the same time
    w.barrier()
    t0 = time.perf_counter()
    with local():
        extract_features(model, work / "ds", use_cache=False, progress=False, batch_size=batch_size)
    w.barrier()
    # extract-1 holds two 1-process runs: the work both ranks just did side by side
    times["ceiling"] = times["extract-1"] / (time.perf_counter() - t0)
    idle = w.gather(idle_cpu)
    if w.main:
        times["idle_cpu"] = float(idle[1])  # type: ignore[index]
        recs = [
            {p.name: p.read_text() for p in (work / f"sweep-{n}" / "conditions").glob("*.json")}
            for n in ("1-0", "2-1", "2-2", "1-3")
        ]
        same = all(torch.equal(feats["1-0"], f) for f in feats.values())
        same = same and bool(recs[0]) and all(r == recs[0] for r in recs)
        times["identical"] = float(same)
        times["conditions"] = float(len(recs[0]))
        (work / "times.json").write_text(json.dumps(times))


def launch(work: Path, args: argparse.Namespace) -> dict[str, float]:
    """The 2-process torchrun launch; rank 0's timings."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUSICRFM_CACHE_DIR": str(work / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [__file__, "--worker", str(work), "--layers", str(args.layers)]
    cmd += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the benchmark run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads((work / "times.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=1.0, help="clip length (about)")
    p.add_argument("--layers", type=int, default=2, help="decoder blocks (musicgen-small: 24)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--coefs", default="1", help="the sweep's η0 values (1: 4 conditions)")
    p.add_argument("--worker", metavar="WORK", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(Path(args.worker), args.layers, args.batch_size)
        return
    coefs = [float(c) for c in args.coefs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_inputs(work, args.clips, args.seconds, args.layers, coefs)
        times = launch(work, args)
    print(
        f"{args.clips} clips of ~{args.seconds:g} s, random musicgen-small shapes with "
        f"{args.layers} blocks, batch {args.batch_size}; a sweep of {int(times['conditions'])} "
        f"conditions x 2 seeds of 0.5 s; 1 torch thread per process; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    for phase in ("extract", "sweep"):
        one, two = times[f"{phase}-1"], times[f"{phase}-2"]
        print(
            f"{phase:8s} 1 process {one:7.2f} s | 2 processes {two:7.2f} s (two runs each) | "
            f"speed-up {one / two:.2f}x"
        )
    print(
        f"ceiling: 2 independent copies of the 1-process extraction, side by side, ran "
        f"{times['ceiling']:.2f}x the work of one in the same time (what 2 cores give here now)"
    )
    print(
        f"1- and 2-process results identical: {'yes' if times['identical'] else 'NO'}; the idle "
        f"rank used {times['idle_cpu']:.2f} s of CPU while the other ran alone"
    )


if __name__ == "__main__":
    main()
