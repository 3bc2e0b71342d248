"""Per-frame training sets: one row per decoder frame, labelled from the clip's own audio.

Why: a clip-level label (its BPM, mean-pooled) hardly reaches the tempo a MusicGen-architecture
model plays (the period is copied by attention from the previous inter-onset interval), but
whether a strike is *about to come* is in every frame's hidden state. `onset_window_labels`
marks the frames near an onset of the audio (librosa's onsets on a 32 ms window, the onset
codec's recipe); `frame_feature_set` turns per-frame features (``extract_features(...,
keep_frames=True)``) into a `FeatureSet` whose rows are frames, split by clip (no clip's frames
are in two splits) and balanced per split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from musicrfm.capture.features import FeatureSet
from musicrfm.errors import DatasetError

ONSET_BEFORE, ONSET_AFTER = 3, 1
"""Frame t is labelled ``onset`` when an onset falls on frames t-3 .. t+1: the hidden state at
frame t predicts the first codebook of frame t+1 and, with the delay pattern, the last codebook
of frame t-3 (where an onset codebook says "onset")."""


def onset_window_labels(
    wave: np.ndarray,
    sample_rate: int,
    frame_rate: float,
    num_frames: int,
    *,
    before: int = ONSET_BEFORE,
    after: int = ONSET_AFTER,
) -> np.ndarray:
    """(num_frames,) bool: an onset of ``wave`` within frames ``t - before .. t + after``."""
    from musicrfm.models.codecs.polyphonic import onset_frames

    hop = int(round(sample_rate / frame_rate))
    onsets = onset_frames(np.asarray(wave, dtype=np.float32).reshape(-1), sample_rate, hop, pad=4)
    marks = np.zeros(num_frames + before + after + 1, dtype=bool)
    marks[onsets[onsets < num_frames + after]] = True
    out = np.zeros(num_frames, dtype=bool)
    for shift in range(-before, after + 1):
        idx = np.arange(num_frames) + shift
        ok = (idx >= 0) & (idx < len(marks))
        out[ok] |= marks[idx[ok]]
    return out


def clip_splits(n: int, seed: int, shares: tuple[float, float] = (0.7, 0.15)) -> np.ndarray:
    """(n,) split names of n clips: a seeded 70/15/15 permutation."""
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, dtype=object)
    a, b = int(round(shares[0] * n)), int(round((shares[0] + shares[1]) * n))
    out[order[:a]], out[order[a:b]], out[order[b:]] = "train", "val", "test"
    return out


def frame_feature_set(
    features: FeatureSet,
    labels: Sequence[np.ndarray],
    *,
    seed: int = 0,
    per_class: dict[str, int] | None = None,
    concept: str = "onsets",
) -> FeatureSet:
    """Frames of every clip as rows, labelled ``onset`` / ``none`` from ``labels`` (one bool
    array per clip), clips split 70/15/15 and each split's classes subsampled to at most
    ``per_class[split]`` frames (the kernel probe is quadratic in its rows)."""
    if features.frames is None or features.frame_offsets is None:
        raise DatasetError("per-frame training needs features extracted with keep_frames=True")
    if len(labels) != len(features):
        raise DatasetError(f"{len(labels)} label arrays for {len(features)} clips")
    caps = per_class or {"train": 1500, "val": 400, "test": 400}
    split = clip_splits(len(features), seed)
    offsets = features.frame_offsets.tolist()
    rows = []
    for i, lab in enumerate(labels):
        t = min(offsets[i + 1] - offsets[i], len(lab))
        rows.append(pd.DataFrame({"label": np.where(np.asarray(lab[:t]), "onset", "none"),
                                  "split": split[i], "clip": i, "frame": np.arange(t),
                                  "at": offsets[i] + np.arange(t)}))  # fmt: skip
    table = pd.concat(rows, ignore_index=True)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for s, cap in caps.items():
        for lab in ("onset", "none"):
            idx = np.flatnonzero((table["split"] == s) & (table["label"] == lab))
            if len(idx) == 0:
                raise DatasetError(f"no {lab!r} frames in the {s} split: too few clips")
            keep += rng.choice(idx, min(cap, len(idx)), replace=False).tolist()
    keep_idx = np.sort(np.asarray(keep))
    # the kept frames straight from the per-frame tensor (no copy of every frame first)
    at = torch.from_numpy(table["at"].to_numpy()[keep_idx])
    frames = features.frames[:, at].contiguous()
    table = table.drop(columns="at")
    meta = {**features.meta, "concept": concept, "pooling": "frame",
            "onset_rate": float((table["label"] == "onset").mean())}  # fmt: skip
    return FeatureSet(features=frames, rows=table.iloc[keep_idx].reset_index(drop=True), meta=meta)
