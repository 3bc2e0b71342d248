"""Per-frame training sets: onset labels from audio, clip-level splits, balanced classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.capture.features import FeatureSet
from musicrfm.capture.frames import clip_splits, frame_feature_set, onset_window_labels
from musicrfm.errors import DatasetError

SR, FPS = 16000, 50


def _clicks(times: list[float], seconds: float = 2.0) -> np.ndarray:
    y = np.zeros(int(SR * seconds), dtype=np.float32)
    t = np.arange(int(0.05 * SR)) / SR
    burst = (np.sin(2 * np.pi * 440 * t) * np.exp(-t * 60)).astype(np.float32)
    for s in times:
        i = int(s * SR)
        y[i : i + len(burst)] += burst
    return y


def test_labels_mark_the_frames_around_each_onset() -> None:
    strikes = [0.2, 0.7, 1.2, 1.7]
    lab = onset_window_labels(_clicks(strikes), SR, FPS, 100)
    assert lab.shape == (100,)
    for s in strikes:
        f = int(round(s * FPS))
        assert lab[f - 1 : f + 2].all()  # the window covers the strike's frame
    assert not lab[int(0.45 * FPS)] and not lab[int(0.95 * FPS)]  # between strikes
    assert lab.sum() == 4 * 5  # frames t-3 .. t+1 of each of the 4 strikes, nothing else
    assert not onset_window_labels(np.zeros(2 * SR, np.float32), SR, FPS, 100).any()


def test_clip_splits_are_seeded_and_cover_every_clip() -> None:
    a, b = clip_splits(40, 0), clip_splits(40, 0)
    assert (a == b).all() and set(a) == {"train", "val", "test"}
    assert (a == "train").sum() == 28


def _frames(n_clips: int = 20, t: int = 30, layers: int = 2, d: int = 4) -> FeatureSet:
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(layers, n_clips * t, d, generator=g)
    offsets = torch.arange(0, n_clips * t + 1, t)
    pooled = torch.stack([frames[:, i * t : (i + 1) * t].mean(1) for i in range(n_clips)], 1)
    return FeatureSet(pooled, pd.DataFrame({"path": [f"{i}.wav" for i in range(n_clips)]}),
                      {"model_id": "tiny"}, frames, offsets)  # fmt: skip


def test_frame_set_splits_by_clip_and_balances_classes() -> None:
    fs = _frames()
    labels = [np.arange(30) % 6 == 0 for _ in range(20)]
    out = frame_feature_set(fs, labels, seed=0, per_class={"train": 20, "val": 5, "test": 5})
    rows = out.rows
    assert out.features.shape == (2, len(rows), 4)
    assert rows.groupby("clip")["split"].nunique().max() == 1  # no clip in two splits
    counts = rows.groupby(["split", "label"]).size()
    assert counts[("train", "onset")] == counts[("train", "none")] == 20
    # each kept row is the frame it names
    r = rows.iloc[3]
    assert torch.equal(out.features[:, 3], fs.clip_frames(int(r["clip"]))[:, int(r["frame"])])


def test_frame_set_needs_frames_and_one_label_array_per_clip() -> None:
    fs = _frames()
    with pytest.raises(DatasetError, match="keep_frames"):
        frame_feature_set(FeatureSet(fs.features, fs.rows, fs.meta), [np.zeros(30, bool)] * 20)
    with pytest.raises(DatasetError, match="label arrays"):
        frame_feature_set(fs, [np.zeros(30, bool)])
    with pytest.raises(DatasetError, match="no 'onset' frames"):
        frame_feature_set(fs, [np.zeros(30, bool)] * 20)
