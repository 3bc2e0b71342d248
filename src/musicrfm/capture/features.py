"""Per-layer activations of a MusicGen decoder for labelled clips (the probes' training data).

`FeatureSet` is the contract between feature capture (`musicrfm.capture.extract`) and probe
training (`musicrfm.probes.training`). Layer i of `features` is the output of
decoder block i (0-based), the residual-stream tensor the steering hooks modify (not the final
LayerNorm output). Which positions are pooled is in `meta["position_convention"]` (see
`musicrfm.models.adapter`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file

from musicrfm.errors import DatasetError
from musicrfm.files import save_tensors_atomic, write_atomic, write_text_atomic


@dataclass
class FeatureSet:
    """Pooled per-layer features for n clips.

    features: (num_layers, n, hidden_size) float32, pooled over each clip's valid frames.
    rows: the n manifest rows (labels, path, ...) in the same order, index 0..n-1.
    meta: model_id, num_layers, hidden_size, pooling, prompt, layer_convention, dataset hash, ...
    frames: optional per-frame features (num_layers, total_frames, hidden_size), clips one after
        another; clip i is ``frames[:, frame_offsets[i]:frame_offsets[i + 1]]`` (``clip_frames``).
    frame_offsets: (n + 1,) long, with ``frames``.
    """

    features: torch.Tensor
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    frames: torch.Tensor | None = None
    frame_offsets: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 3:
            raise DatasetError(
                f"features must be (layers, n, hidden); got shape {tuple(self.features.shape)}"
            )
        if self.features.shape[1] != len(self.rows):
            raise DatasetError(
                f"{self.features.shape[1]} feature rows but {len(self.rows)} manifest rows"
            )
        self.rows = self.rows.reset_index(drop=True)
        if (self.frames is None) != (self.frame_offsets is None):
            raise DatasetError("frames and frame_offsets go together")
        if self.frames is not None:
            assert self.frame_offsets is not None
            if len(self.frame_offsets) != len(self.rows) + 1 or self.frames.ndim != 3:
                raise DatasetError(
                    f"frames {tuple(self.frames.shape)} / offsets {len(self.frame_offsets)} "
                    f"do not match {len(self.rows)} rows"
                )

    @property
    def num_layers(self) -> int:
        return int(self.features.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.features.shape[2])

    def __len__(self) -> int:
        return len(self.rows)

    def layer(self, index: int) -> torch.Tensor:
        """Features of one layer, (n, hidden). Negative indices count from the top."""
        return self.features[index]

    def clip_frames(self, index: int) -> torch.Tensor:
        """Per-frame features of clip ``index``: (num_layers, frames, hidden)."""
        if self.frames is None or self.frame_offsets is None:
            raise DatasetError("no per-frame features; extract with keep_frames=True")
        start, stop = int(self.frame_offsets[index]), int(self.frame_offsets[index + 1])
        return self.frames[:, start:stop]

    def subset(self, mask_or_index: Any) -> FeatureSet:
        """Rows selected by a boolean mask or integer positions (same order)."""
        idx = torch.as_tensor(
            pd.Series(range(len(self.rows)))[mask_or_index].to_numpy().copy()
            if not isinstance(mask_or_index, torch.Tensor)
            else mask_or_index
        )
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        frames = offsets = None
        if self.frames is not None:
            parts = [self.clip_frames(int(i)) for i in idx.tolist()]
            lengths = torch.tensor([p.shape[1] for p in parts], dtype=torch.long)
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
            frames = torch.cat(parts, dim=1) if parts else self.frames[:, :0]
        return FeatureSet(
            features=self.features[:, idx],
            rows=self.rows.iloc[idx.tolist()].reset_index(drop=True),
            meta=dict(self.meta),
            frames=frames,
            frame_offsets=offsets,
        )

    def save(self, folder: str | Path) -> Path:
        """Write features.safetensors + rows.parquet + meta.json (atomically, via temp names)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # unique temporary names, usual file modes: two processes saving one set do not collide
        save_tensors_atomic(
            folder / "features.safetensors", {"features": self.features.contiguous().float()}
        )
        write_atomic(folder / "rows.parquet", lambda tmp: self.rows.to_parquet(tmp, index=False))
        if self.frames is not None:
            save_tensors_atomic(
                folder / "frames.safetensors",
                {
                    "frames": self.frames.contiguous().float(),
                    "frame_offsets": self.frame_offsets.contiguous().long(),  # type: ignore[union-attr]
                },
            )
        elif (folder / "frames.safetensors").exists():
            (folder / "frames.safetensors").unlink()  # stale frames from an earlier save
        write_text_atomic(folder / "meta.json", json.dumps(self.meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FeatureSet:
        folder = Path(folder)
        path = folder / "features.safetensors"
        if not path.exists():
            raise DatasetError(
                f"no features at {folder} (expected {path.name}); run `musicrfm extract`"
            )
        frames = offsets = None
        if (folder / "frames.safetensors").exists():
            stored = load_file(str(folder / "frames.safetensors"))
            frames, offsets = stored["frames"], stored["frame_offsets"]
        return cls(
            features=load_file(str(path))["features"],
            rows=pd.read_parquet(folder / "rows.parquet"),
            meta=json.loads((folder / "meta.json").read_text()),
            frames=frames,
            frame_offsets=offsets,
        )
