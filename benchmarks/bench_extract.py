"""Feature capture throughput and peak memory: MusicRFM's batched one-pass capture vs the naive way.

Naive (what a public implementation of the method does): for every one-vs-rest target of a
concept, for every clip one at a time, load -> encode -> full model forward with
``output_hidden_states=True`` (LM heads and logits computed, all hidden states kept), then
mean-pool. Ours: :func:`musicrfm.capture.extract.extract_features` once (batched, bare decoder, pooling
in hooks, no logits), which serves every target of the concept.

Both run on the same seeded random MusicGen with musicgen-small's shapes (``--layers`` reduces the
depth when the machine is slow), on the same synthetic clips, each in its own child process so
that peak memory (``ru_maxrss`` above the post-load baseline) is measured cleanly. Results are
checked for equality (layers 0..L-2; the naive last layer is the final-LayerNorm output).

    nice -n 10 python benchmarks/bench_extract.py                 # musicgen-small shapes
    nice -n 10 python benchmarks/bench_extract.py --layers 6 --clips 3   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_dataset(folder: Path, clips: int, seconds: float, classes: int) -> None:
    """Synthetic labelled tones at 44.1 kHz stereo (SynTheory's format), labels 0..classes-1."""
    import pandas as pd
    import soundfile as sf

    rng = np.random.default_rng(0)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    for i in range(clips):
        label = i % classes
        freq = 261.63 * 2 ** (label / 12)
        x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"audio/{i:04d}.wav", np.stack([x, x], axis=1).astype(np.float32), sr)
        rows.append({"path": f"audio/{i:04d}.wav", "label": label})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)


def child(args: argparse.Namespace) -> None:
    import torch

    from musicrfm.capture.audio import load_audio
    from musicrfm.capture.clips import read_clip_table
    from musicrfm.capture.extract import extract_features
    from musicrfm.models import random_model

    adapter = random_model(args.size, seed=0, num_layers=args.layers)
    table = read_clip_table(args.data)
    n = len(table.rows)
    # identical warm-up in both children (lazy imports, first-call allocations), then measure
    warm = load_audio(table.paths[0], adapter.sample_rate)[: adapter.sample_rate // 10]
    adapter.decoder_input_from_codes(*adapter.encode_audio([warm]))
    baseline = _rss_mb()
    cpu0 = _cpu_s()
    start = time.perf_counter()
    if args.child == "ours":
        fs = extract_features(
            adapter, args.data, batch_size=args.batch_size, use_cache=False, progress=False
        )
        feats = fs.features.permute(1, 0, 2).numpy()
    else:
        tok = adapter.tokenize([""])
        for _target in range(args.classes):  # one-vs-rest target: the whole extraction again
            out_rows = []
            for i in range(n):
                wave = load_audio(table.paths[i], adapter.sample_rate)
                codes, mask = adapter.encode_audio([wave])
                inputs = adapter.decoder_input_from_codes(codes, mask)
                with torch.no_grad():
                    out = adapter.model(
                        **tok, decoder_input_ids=inputs.input_ids, output_hidden_states=True
                    )
                hs = out.decoder_hidden_states
                t_valid = int(mask.sum())
                out_rows.append(
                    torch.stack([h[0, 1 : t_valid + 1].mean(0) for h in hs[1:]]).numpy()
                )
                del out, hs
            feats = np.stack(out_rows)  # (n, L, d); y = (labels == target) would be fitted here
    elapsed = time.perf_counter() - start
    cpu = _cpu_s() - cpu0
    np.save(args.result + ".npy", feats)
    Path(args.result + ".json").write_text(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "clips": n,
                "baseline_mb": baseline,
                "peak_mb": _peak_mb(),
                "threads": torch.get_num_threads(),
                "model": adapter.model_id,
                "layers": adapter.num_layers,
                "hidden": adapter.hidden_size,
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="small", help="random model size (small = musicgen-small)")
    p.add_argument("--layers", type=int, default=None, help="decoder blocks (default: all 24)")
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0, help="clip length")
    p.add_argument(
        "--classes", type=int, default=12, help="one-vs-rest targets (notes: 12 pitch classes)"
    )
    p.add_argument(
        "--batch-sizes",
        default="4,1",
        help="our batch sizes to run, comma-separated (the first is the headline)",
    )
    p.add_argument("--batch-size", type=int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    runs = [(f"ours b={b}", "ours", b) for b in sizes] + [("naive b=1", "naive", 1)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_dataset(data, args.clips, args.seconds, args.classes)
        results = {}
        for j, (name, which, batch) in enumerate(runs):
            out = str(Path(tmp) / f"run{j}")
            cmd = [sys.executable, __file__, "--child", which, "--data", str(data)]
            cmd += ["--result", out, "--size", args.size]
            cmd += ["--clips", str(args.clips), "--classes", str(args.classes)]
            cmd += ["--batch-size", str(batch)]
            if args.layers:
                cmd += ["--layers", str(args.layers)]
            print(f"running {name} ...", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True, env=dict(os.environ))
            results[name] = json.loads(Path(out + ".json").read_text())
            results[name]["features"] = np.load(out + ".npy")
    naive = results["naive b=1"]
    first = results[runs[0][0]]
    n = first["clips"]
    print(
        f"model {first['model']} ({first['layers']} layers, d={first['hidden']}), {n} clips x "
        f"{args.seconds:g} s, concept with {args.classes} one-vs-rest targets, "
        f"torch threads {first['threads']}"
    )
    print(
        f"{'':11}{'wall s':>10}{'clips/s':>10}{'CPU s':>10}{'clips/CPU-s':>13}"
        f"{'peak RSS MB':>13}{'extra MB':>10}"
    )
    for name, r in results.items():
        r["throughput"] = n / r["seconds"]  # clips/s for everything the concept needs
        r["cpu_throughput"] = n / r["cpu_seconds"]
        r["extra"] = r["peak_mb"] - r["baseline_mb"]
        print(
            f"{name:11}{r['seconds']:10.2f}{r['throughput']:10.3f}{r['cpu_seconds']:10.2f}"
            f"{r['cpu_throughput']:13.3f}{r['peak_mb']:13.0f}{r['extra']:10.0f}"
        )
    for name, _, _ in runs[:-1]:
        r = results[name]
        diff = float(np.abs(r["features"][:, :-1] - naive["features"][:, :-1]).max())
        scale = float(np.abs(r["features"][:, :-1]).max())
        print(
            f"{name}: throughput {r['throughput'] / naive['throughput']:.2f}x naive (target >= 5x), "
            f"per CPU-second {r['cpu_throughput'] / naive['cpu_throughput']:.2f}x; "
            f"one naive pass vs ours {naive['seconds'] / args.classes / r['seconds']:.2f}x; "
            f"peak extra memory {r['extra'] / max(naive['extra'], 1e-9):.2f}x naive's; "
            f"max |ours - naive| = {diff:.1e} (features up to {scale:.1f}, layers 0..L-2)"
        )
    print(
        "extra = peak RSS above the RSS after loading the model and a warm-up; naive pools "
        "output_hidden_states (its top layer is post-LayerNorm, so it is left out of the check)"
    )


if __name__ == "__main__":
    main()
