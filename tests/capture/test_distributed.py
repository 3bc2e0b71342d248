"""Several processes, one result: extraction (fresh and resumed), probe training and a sweep run
by torchrun as 2 CPU processes over gloo give bit for bit what one process gives, and each
process did part of the work. Plus the helper's single-process behaviour and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicrfm.capture import distributed
from musicrfm.capture.distributed import World, device_for, is_main, local, world
from musicrfm.capture.features import FeatureSet
from musicrfm.errors import ConfigError

JOB = Path(__file__).with_name("distributed_job.py")
CLASSES = ["C", "E", "G"]


def _dataset(folder: Path) -> Path:
    """Nine tones of five lengths, plus a file that cannot be read (skipped on any rank)."""
    (folder / "audio").mkdir(parents=True)
    rows = []
    for i in range(9):
        sr, seconds = 32000, 0.25 + 0.05 * (i % 5)
        t = np.arange(int(seconds * sr)) / sr
        sf.write(folder / f"audio/{i}.wav", (0.3 * np.sin(2 * np.pi * (220 + 30 * i) * t)), sr)
        rows.append({"path": f"audio/{i}.wav", "label": CLASSES[i % 3]})
    (folder / "audio/bad.wav").write_bytes(b"RIFF....WAVEjunk")
    rows.insert(3, {"path": "audio/bad.wav", "label": "C"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def _partial_cache(work: Path) -> Path:
    """A feature cache interrupted after two batches (two shards written), to resume from."""
    from musicrfm.capture.extract import extract_features
    from musicrfm.models import random_model

    adapter = random_model("tiny", seed=0)
    real = adapter.encode_audio
    calls: list[int] = []

    def interrupted(*a, **k):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    adapter.encode_audio = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        extract_features(
            adapter, work / "ds", cache_dir=work / "partial", batch_size=2, shard_size=1
        )
    manifest = json.loads(next((work / "partial").glob("*/manifest.json")).read_text())
    assert len(manifest["shards"]) == 2 and not manifest["complete"]
    return work / "partial"


def _inputs(work: Path) -> None:
    """The dataset, random features, the sweep config and a partial cache for each run."""
    _dataset(work / "ds")
    g = torch.Generator().manual_seed(0)
    labels = CLASSES * 12
    FeatureSet(
        torch.randn(4, len(labels), 64, generator=g),
        pd.DataFrame({"label": labels}),
        meta={"num_layers": 4, "hidden_size": 64, "prompt": ""},
    ).save(work / "random_feats")
    sweep = {
        "seconds": 0.3,
        "prompts": ["a piano melody"],
        "seeds": [0, 1],
        "coefs": [1.0],
        "controls": ["flip", "random"],
        "concepts": {"notes": {"directions": "", "probes": "", "targets": ["C"]}},
    }
    (work / "sweep.json").write_text(json.dumps(sweep))
    partial = _partial_cache(work)
    for name in ("single", "dist"):
        shutil.copytree(partial, work / name / "cache")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same job run by 2 processes (torchrun, in the background) and by this one."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("distributed")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MUSICRFM_CACHE_DIR": str(work / "cache_root"),
        "PYTHONWARNINGS": "ignore",
    }
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = subprocess.Popen(  # it imports while the inputs are written, then waits for "ready"
        [*launcher, "--nproc_per_node", "2", str(JOB), str(work), "dist"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _inputs(work)
    except BaseException:
        proc.kill()
        raise
    (work / "ready").touch()
    try:  # one process meanwhile, in this one
        sys.path.insert(0, str(JOB.parent))
        import distributed_job

        distributed_job.main(work, "single")
    finally:
        sys.path.remove(str(JOB.parent))
        try:
            output, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output[-4000:]
    return work


def _ranks(work: Path) -> list[dict]:
    return [json.loads((work / "dist" / f"rank{r}.json").read_text()) for r in range(2)]


def _meta(fs: FeatureSet) -> dict:
    return {k: v for k, v in fs.meta.items() if k != "cache"}


def test_extraction_on_two_processes_is_bit_identical(work: Path) -> None:
    one, two = FeatureSet.load(work / "single" / "feats"), FeatureSet.load(work / "dist" / "feats")
    assert torch.equal(one.features, two.features)
    assert one.rows.equals(two.rows) and _meta(one) == _meta(two)
    assert len(one) == 9 and one.meta["num_skipped"] == 1
    for f in ("features.safetensors", "rows.parquet"):
        assert (work / "single" / "feats" / f).read_bytes() == (
            work / "dist" / "feats" / f
        ).read_bytes()


def test_a_resumed_extraction_on_two_processes_is_bit_identical_and_redoes_nothing(
    work: Path,
) -> None:
    one = FeatureSet.load(work / "single" / "resumed")
    two = FeatureSet.load(work / "dist" / "resumed")
    assert torch.equal(one.features, two.features) and one.rows.equals(two.rows)
    assert one.meta["skipped"] == two.meta["skipped"]
    single = json.loads((work / "single" / "rank0.json").read_text())
    runs = [r["decoder_runs"] for r in _ranks(work)]
    # the cache held 2 of 5 batches: the other 3 were shared out, none done twice
    assert single["decoder_runs"] == 3 and sum(runs) == 3 and min(runs) >= 1, runs
    manifest = json.loads(next((work / "dist" / "cache").glob("*/manifest.json")).read_text())
    assert manifest["complete"] and len(manifest["shards"]) >= 3


def test_probe_training_on_two_processes_gives_the_same_directions(work: Path) -> None:
    from musicrfm.probes.directions import ConceptDirections

    one = ConceptDirections.load(work / "single" / "train" / "notes")
    two = ConceptDirections.load(work / "dist" / "train" / "notes")
    for field in ("vectors", "scores", "eigenvalues"):
        assert torch.equal(getattr(one, field), getattr(two, field)), field
    assert one.meta["test_scores"] == two.meta["test_scores"]
    assert one.meta["multiclass"] == two.meta["multiclass"]
    hyper = [
        json.loads((work / n / "train" / "hyper.json").read_text()) for n in ("single", "dist")
    ]
    assert hyper[0] == hyper[1]
    probes = sorted(p.name for p in (work / "single" / "train" / "probes").iterdir())
    assert len(probes) == 4 * 2 + 1  # a multiclass probe per layer (.safetensors + .json), index
    for p in probes:
        a = (work / "single" / "train" / "probes" / p).read_bytes()
        assert a == (work / "dist" / "train" / "probes" / p).read_bytes(), p
    fits = [r["fits"] for r in _ranks(work)]
    assert sum(fits) == 4 * 3 and min(fits) >= 1, fits  # 4 layers x 3 classes, shared out


def _records(folder: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((folder / "conditions").glob("*.json")):
        rec = json.loads(path.read_text())
        for item in (rec["plan"] or {}).get("direction", []):
            item.pop("directions", None)  # the file each run trained lives in its own folder
        out[path.name] = rec
    return out


def test_a_sweep_on_two_processes_writes_the_same_records(work: Path) -> None:
    one, two = _records(work / "single" / "sweep"), _records(work / "dist" / "sweep")
    assert len(one) == 4 and one.keys() == two.keys()
    for name in one:
        assert one[name] == two[name], name  # same clips (per-clip seeds), same scores
    rows = [r for rec in one.values() for r in rec["rows"]]
    assert {r["seed"] for r in rows} == {0, 1} and all("probe_label" in r for r in rows)
    for name in ("single", "dist"):
        wav = sorted((work / name / "sweep" / "audio").rglob("*.wav"))
        assert len(wav) == 4 * 2
    a = sorted((work / "single" / "sweep" / "audio").rglob("*.wav"))
    b = sorted((work / "dist" / "sweep" / "audio").rglob("*.wav"))
    assert [x.relative_to(work / "single") for x in a] == [x.relative_to(work / "dist") for x in b]
    for x, y in zip(a, b):  # the samples (a WAV's PEAK chunk holds the time it was written)
        assert np.array_equal(sf.read(x)[0], sf.read(y)[0]), x.name
    single = json.loads((work / "single" / "rank0.json").read_text())
    ranks = _ranks(work)
    assert [r["sweep"] for r in ranks] == [single["sweep"]] * 2 == [[4, 4, 0, 8]] * 2
    shares = [r["conditions"] for r in ranks]
    assert sum(shares) == 4 and min(shares) >= 1, shares
    assert [r["again"] for r in ranks] == [[4, 0, 4, 8]] * 2  # resumed: nothing left to run


def test_alone_every_collective_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    w = world()
    assert w == World() and w.main and not w.distributed and is_main()
    assert w.gather("x") == ["x"] and w.all_gather(3) == [3] and w.broadcast({"a": 1}) == {"a": 1}
    w.barrier()
    assert [i for i in range(5) if World(rank=1, size=2).owns(i)] == [1, 3]
    assert device_for("cuda") == "cuda" and device_for("cpu") == "cpu"


def test_the_launcher_environment_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_main() and device_for("cuda") == "cuda:1" and device_for("cuda:3") == "cuda:3"
    with local():
        assert world() == World() and is_main()
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR is not set.*accelerate launch"):
        world()
    monkeypatch.setenv("RANK", "7")
    with pytest.raises(ConfigError, match="RANK=7 is outside WORLD_SIZE=4"):
        world()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two' is not a whole number"):
        world()
    assert distributed.DEFAULT_TIMEOUT > 0
