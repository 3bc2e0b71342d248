"""What tests/capture/test_distributed.py runs in each of the processes torchrun starts.

``python -m torch.distributed.run --nproc_per_node 2 distributed_job.py WORK NAME``: extraction (the
CLI, then a resume from a partial cache), probe training and a sweep (then the same sweep again,
all resumed), every rank calling the same functions; rank 0 writes the merged results, and each
rank writes ``rank<r>.json``: how much of each kind of work it did itself.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def main(work: Path, name: str) -> None:
    """Run every step into ``work / name``; ``work`` holds the inputs the test wrote."""
    torch.set_num_threads(1)
    import librosa.core.audio  # noqa: F401 - imported early (lazily, it would be in the sweep)

    import musicrfm.evaluation.detectors  # noqa: F401
    import musicrfm.probes.training as training
    import musicrfm.steering.generation  # noqa: F401
    from musicrfm.capture.distributed import world
    from musicrfm.capture.extract import extract_features
    from musicrfm.capture.features import FeatureSet
    from musicrfm.cli import main as cli
    from musicrfm.experiments.sweep.run import run_sweep
    from musicrfm.models import random_model
    from musicrfm.probes.search import budget_with

    w = world()
    _wait_for(work / "ready")  # the test writes the inputs while this process imports
    mine = {"rank": w.rank, "size": w.size, "decoder_runs": 0, "fits": 0, "conditions": 0}
    args = ["--model", "random:tiny", "--data", str(work / "ds"), "--batch-size", "2"]
    args += ["--threads", "1", "--no-progress", "--no-cache"]
    assert cli(["extract", *args, "--out", str(work / name / "feats")]) == 0

    adapter = random_model("tiny", seed=0)
    run_decoder = adapter.run_decoder

    def counting(*a, **k):  # noqa: ANN002, ANN003, ANN202
        mine["decoder_runs"] += 1
        return run_decoder(*a, **k)

    adapter.run_decoder = counting  # type: ignore[method-assign]
    resumed = extract_features(
        adapter, work / "ds", cache_dir=work / name / "cache", batch_size=2, progress=False
    )
    del adapter.run_decoder  # the class's own again
    if w.main:
        resumed.save(work / name / "resumed")

    fit = training._fit_direction_probe

    def counting_fit(*a, **k):  # noqa: ANN002, ANN003, ANN202
        mine["fits"] += 1
        return fit(*a, **k)

    training._fit_direction_probe = counting_fit  # type: ignore[assignment]
    budget = budget_with("fast", n_draws=3, keep=1, iters=2, mc_draws=2, mc_keep=1, mc_iters=1)
    try:
        res = training.train_directions(
            FeatureSet.load(work / "random_feats"),
            concept="notes",
            budget=budget,
            components=2,
            progress=False,
        )
    finally:
        training._fit_direction_probe = fit  # type: ignore[assignment]
    if w.main:
        training.save_train_result(res, work / name / "train")
        (work / name / "train" / "hyper.json").write_text(json.dumps(strip(res.hyperparams)))
    assert res.directions.vectors.shape[:2] == (4, 3)  # every rank holds the merged result
    w.barrier()  # the sweep below reads what rank 0 wrote

    def count(cond, n):  # noqa: ANN001, ANN202
        mine["conditions"] += 1

    cfg = json.loads((work / "sweep.json").read_text())
    cfg["concepts"]["notes"]["directions"] = str(work / name / "train" / "notes")
    cfg["concepts"]["notes"]["probes"] = str(work / name / "train" / "probes")
    first = run_sweep(cfg, work / name / "sweep", model=adapter, on_condition=count)
    again = run_sweep(cfg, work / name / "sweep", model=adapter)
    mine["sweep"] = [first.conditions, first.finished, first.skipped, first.generated_clips]
    mine["again"] = [again.conditions, again.finished, again.skipped, len(again.results)]
    (work / name / f"rank{w.rank}.json").write_text(json.dumps(mine))


def _wait_for(path: Path, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {seconds:.0f} s")
        time.sleep(0.05)


def strip(hyper: list[list[dict]]) -> list[list[dict]]:
    """Chosen hyper-parameters without their wall-clock seconds."""
    return [[{k: v for k, v in h.items() if k != "seconds"} for h in layer] for layer in hyper]


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
