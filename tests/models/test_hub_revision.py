"""The hub cache layout, and the snapshot commit recorded by offline hub loads: in the adapter,
the features, the directions and the generation sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicrfm.cli import main
from musicrfm.errors import ConfigError
from musicrfm.models import load_model, random_model
from musicrfm.models.hub import (
    folder_commit,
    place_in_hub_cache,
    repo_folder,
    resolve_commit,
    snapshot_commit,
)

REPO_ID = "facebook/musicgen-small"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return random_model("tiny", seed=0).save_pretrained(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache that huggingface_hub and transformers use, with HF_HUB_OFFLINE=1."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_place_in_hub_cache_writes_the_hub_layout(tiny_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    snap = place_in_hub_cache(tiny_folder, REPO_ID, cache_dir=cache)
    commit = folder_commit(tiny_folder)
    repo = repo_folder(REPO_ID, cache)
    assert repo.name == "models--facebook--musicgen-small"
    assert snap == repo / "snapshots" / commit
    assert (repo / "refs" / "main").read_text() == commit
    for f in tiny_folder.iterdir():
        entry = snap / f.name
        assert entry.is_symlink() and entry.resolve().parent == (repo / "blobs").resolve()
        assert entry.read_bytes() == f.read_bytes()
    assert resolve_commit(REPO_ID, cache_dir=cache) == commit
    assert resolve_commit(REPO_ID, "main", cache_dir=cache) == commit
    assert resolve_commit(REPO_ID, "v2", cache_dir=cache) is None
    assert resolve_commit("facebook/musicgen-large", cache_dir=cache) is None
    assert snapshot_commit(snap) == snapshot_commit(snap / "config.json") == commit
    assert snapshot_commit(tiny_folder) is None
    # the same content gives the same commit; other content another one
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text("{}")
    assert folder_commit(tiny_folder) == commit != folder_commit(tmp_path / "other")
    with pytest.raises(ConfigError, match="not a hub repo id"):
        place_in_hub_cache(tiny_folder, "musicgen-small", cache_dir=cache)
    with pytest.raises(ConfigError, match="40 hex"):
        place_in_hub_cache(tiny_folder, REPO_ID, cache_dir=cache, commit="abc")


def test_an_offline_hub_load_records_the_snapshot_commit(
    tiny_folder: Path, offline_cache: Path
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = place_in_hub_cache(tiny_folder, REPO_ID, cache_dir=offline_cache, commit=commit)
    adapter = load_model("musicgen-small", revision="main", progress=False)
    assert (adapter.model_id, adapter.source, adapter.revision) == (REPO_ID, "hub", commit)
    assert adapter.info()["revision"] == commit
    # the snapshot folder itself, loaded as a local folder, knows its commit; a plain one not
    assert load_model(str(snap), progress=False).revision == commit
    assert load_model(str(tiny_folder), progress=False).revision is None


def _tones(folder: Path, sr: int = 32000) -> Path:
    """A labelled dataset of 16 short tones: 8 low (label lo) and 8 high (hi)."""
    (folder / "audio").mkdir(parents=True)
    rows = []
    for i in range(16):
        label = "lo" if i < 8 else "hi"
        freq = (220.0 if label == "lo" else 880.0) * (1 + 0.02 * (i % 8))
        t = np.arange(int(0.3 * sr)) / sr
        sf.write(folder / f"audio/{i:02d}.wav", (0.3 * np.sin(2 * np.pi * freq * t)), sr)
        rows.append({"path": f"audio/{i:02d}.wav", "label": label})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def test_features_directions_and_sidecars_record_the_commit(
    tiny_folder: Path, offline_cache: Path, tmp_path: Path
) -> None:
    from musicrfm.capture.extract import extract_features
    from musicrfm.probes.search import budget_with
    from musicrfm.probes.training import train_directions
    from musicrfm.steering import generate

    commit = place_in_hub_cache(tiny_folder, REPO_ID, cache_dir=offline_cache).name
    adapter = load_model(REPO_ID, progress=False)
    fs = extract_features(
        adapter, _tones(tmp_path / "ds"), cache_dir=tmp_path / "fc", progress=False
    )
    assert fs.meta["revision"] == commit
    budget = budget_with("fast", n_draws=2, keep=1, iters=1, mc_draws=1, mc_keep=1, mc_iters=1)
    cd = train_directions(fs, budget=budget, components=1, progress=False, concept="pitch")
    assert cd.directions.meta["model_revision"] == commit
    cd.directions.save(tmp_path / "dirs" / "pitch")
    (clip,) = generate(adapter, "a tone", seconds=0.1, seed=0)
    assert clip.meta["model"]["revision"] == commit
    # the CLI resolves the hub id offline too, and its sidecar on disk records the commit
    out = tmp_path / "clips"
    assert main(["generate", "--model", "facebook/musicgen-small", "a tone", "--seconds", "0.1",
                 "--out", str(out), "--directions", str(tmp_path / "dirs"), "--target", "hi",
                 "--coef", "0.5"]) == 0  # fmt: skip
    (sidecar,) = out.glob("*.json")
    record = json.loads(sidecar.read_text())
    assert record["model"]["revision"] == commit and record["model"]["model_id"] == REPO_ID
