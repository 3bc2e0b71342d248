"""Cost of steering: steered / unsteered generation time, measured in one run.

The steered run uses the issue's worst case: every decoder layer steered, two directions (uniform
layer weights), each with a schedule (linear rise, sine) and the stochastic gate (p = 0.3),
classifier-free guidance on. Steered and unsteered generations are interleaved (ABBA order,
same prompt and seed) after a warm-up; the script prints the median time of each, the ratio of
the medians, the median of the paired ratios, for wall-clock time and for the process's CPU time (far less
sensitive to other jobs on a shared machine; use --threads 1 so that idle OpenMP spinning does
not count), and the hooks' own cost per step measured apart (pre-hook + every layer hook on a
real hidden-state tensor). Target: ratio <= 1.02.

    python benchmarks/bench_steering.py                       # tiny and musicgen-small shapes, CPU
    python benchmarks/bench_steering.py --sizes small --seconds 2 --repeats 9
    python benchmarks/bench_steering.py --device cuda --sizes small --seconds 10

The machine may be shared: run it with `nice` and compare only figures from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from musicrfm.models import random_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import steps_for
from musicrfm.steering.hooks import apply_plan
from musicrfm.steering.plan import SteeringDirection, SteeringPlan
from musicrfm.steering.schedules import linear_rise, sine

TARGET = 1.02


def make_plan(adapter) -> SteeringPlan:
    g = torch.Generator().manual_seed(0)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 2, 1, d, generator=g)
    cd = ConceptDirections(
        "bench",
        ["A", "B"],
        v / v.norm(dim=-1, keepdim=True),
        torch.rand(L, 2, generator=g),
        list(range(L)),
        meta={"model_id": adapter.model_id, "num_layers": L, "hidden_size": d},
    )
    return SteeringPlan(
        [
            SteeringDirection(cd, "A", 0.5, schedule=linear_rise(), gate=0.3),
            SteeringDirection(cd, "B", 0.3, schedule=sine(period=25), gate=0.3),
        ]
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def time_generate(adapter, tok, steps: int, plan: SteeringPlan | None, seed: int = 0):
    """(wall seconds, process CPU seconds) of one generation."""
    device = adapter.device
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    if plan is None:
        torch.manual_seed(seed)
        adapter.model.generate(**tok, max_new_tokens=steps, do_sample=True, guidance_scale=3.0)
    else:
        with apply_plan(adapter, plan, seed=seed, total_steps=steps, cfg=True) as session:
            torch.manual_seed(seed)
            adapter.model.generate(**tok, max_new_tokens=steps, do_sample=True, guidance_scale=3.0)
        assert session.layers == list(range(adapter.num_layers)), "every layer must be steered"
    _sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


@torch.inference_mode()
def hook_cost(adapter, plan: SteeringPlan, steps: int, reps: int = 200) -> float:
    """Seconds per step spent in the steering hooks alone (batch of 2 CFG rows; CPU time on
    CPU, wall time with a synchronised GPU)."""
    device, dtype = adapter.device, adapter.dtype
    h = torch.randn(2, 1, adapter.hidden_size, device=device, dtype=dtype)
    with apply_plan(adapter, plan, total_steps=steps, cfg=True) as s:
        hooks = [s._make_hook(j) for j in range(len(s.layers))]
        for t in range(5):
            s._pre_hook(None, (h,), {"cache": _FakeCache(t)})
        _sync(device)
        t0 = time.process_time() if device.type == "cpu" else time.perf_counter()
        for r in range(reps):
            s._pre_hook(None, (h,), {"cache": _FakeCache(r % steps)})
            for hook in hooks:
                hook(None, (), h)
        _sync(device)
        t1 = time.process_time() if device.type == "cpu" else time.perf_counter()
        return (t1 - t0) / reps


class _FakeCache:
    def __init__(self, n: int) -> None:
        self.n = n

    def get_seq_length(self) -> int:
        return self.n


def bench(size: str, seconds: float, repeats: int, device: str, dtype: str) -> dict:
    t0 = time.perf_counter()
    adapter = random_model(size, seed=0, device=device, dtype=dtype)
    build = time.perf_counter() - t0
    plan = make_plan(adapter)
    tok = adapter.tokenize(["lofi piano with a warm bass line"])
    steps = steps_for(seconds, adapter)
    time_generate(adapter, tok, steps, None)  # warm-up both paths
    time_generate(adapter, tok, steps, plan)
    runs: dict[str, dict[str, list[float]]] = {
        k: {"wall": [], "cpu": []} for k in ("plain", "steered")
    }
    for r in range(repeats):
        for which in ("plain", "steered") if r % 2 == 0 else ("steered", "plain"):
            wall, cpu = time_generate(adapter, tok, steps, plan if which == "steered" else None)
            runs[which]["wall"].append(wall)
            runs[which]["cpu"].append(cpu)
        print(
            f"  {size} repeat {r + 1}/{repeats}: unsteered {runs['plain']['wall'][-1]:.3f} s "
            f"(cpu {runs['plain']['cpu'][-1]:.3f}), steered {runs['steered']['wall'][-1]:.3f} s "
            f"(cpu {runs['steered']['cpu'][-1]:.3f})",
            file=sys.stderr,
            flush=True,
        )
    med = {k: {c: statistics.median(v) for c, v in d.items()} for k, d in runs.items()}
    paired = {
        c: statistics.median(s / p for s, p in zip(runs["steered"][c], runs["plain"][c]))
        for c in ("wall", "cpu")
    }
    mp, ms = med["plain"]["wall"], med["steered"]["wall"]
    per_step = hook_cost(adapter, plan, steps)
    return {
        "size": size,
        "device": str(adapter.device),
        "dtype": str(adapter.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "layers": adapter.num_layers,
        "hidden": adapter.hidden_size,
        "steps": steps,
        "repeats": repeats,
        "build_s": round(build, 2),
        "plain_median_s": round(mp, 4),
        "steered_median_s": round(ms, 4),
        "ratio_of_medians": round(ms / mp, 4),
        "median_paired_ratio": round(paired["wall"], 4),
        "plain_cpu_median_s": round(med["plain"]["cpu"], 4),
        "steered_cpu_median_s": round(med["steered"]["cpu"], 4),
        "cpu_ratio_of_medians": round(med["steered"]["cpu"] / med["plain"]["cpu"], 4),
        "cpu_median_paired_ratio": round(paired["cpu"], 4),
        "hook_us_per_step": round(per_step * 1e6, 1),
        "hook_share_of_step": round(
            per_step / ((med["plain"]["cpu"] if adapter.device.type == "cpu" else mp) / steps), 4
        ),
        "target": TARGET,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    ap.add_argument("--seconds", type=float, default=None, help="default: tiny 4 s, small 1 s")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for size in args.sizes:
        seconds = args.seconds or {"tiny": 4.0}.get(size, 1.0)
        res = bench(size, seconds, args.repeats, args.device, args.dtype)
        ok = "OK" if min(res["ratio_of_medians"], res["cpu_ratio_of_medians"]) <= TARGET else "OVER"
        print(
            f"{size:5s} {res['device']:6s} L={res['layers']:2d} d={res['hidden']:4d} "
            f"steps={res['steps']} x{res['repeats']}: wall {res['plain_median_s']:.3f} -> "
            f"{res['steered_median_s']:.3f} s, ratio {res['ratio_of_medians']:.4f} "
            f"(paired {res['median_paired_ratio']:.4f}); CPU time {res['plain_cpu_median_s']:.3f} -> "
            f"{res['steered_cpu_median_s']:.3f} s, ratio {res['cpu_ratio_of_medians']:.4f} "
            f"(paired {res['cpu_median_paired_ratio']:.4f}); hooks alone "
            f"{res['hook_us_per_step']:.0f} us/step = {100 * res['hook_share_of_step']:.2f}% of a "
            f"step [{ok}, target <= {TARGET}; load average {res['loadavg_1min']}]"
        )
        print(json.dumps(res))


if __name__ == "__main__":
    main()
