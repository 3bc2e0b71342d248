"""Per-layer activations of a MusicGen decoder for labelled clips (the probes' training data).

`FeatureSet` is the contract between feature capture (this module) and probe training
(`musicrfm.probes`). Layer i of `features` is the output of decoder block i (0-based), the
residual-stream tensor the steering hooks modify.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from musicrfm.errors import DatasetError


@dataclass
class FeatureSet:
    """Pooled per-layer features for n clips.

    features: (num_layers, n, hidden_size) float32, pooled over each clip's valid frames.
    rows: the n manifest rows (labels, path, ...) in the same order, index 0..n-1.
    meta: model_id, num_layers, hidden_size, pooling, prompt, layer_convention, dataset hash, ...
    """

    features: torch.Tensor
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

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

    def subset(self, mask_or_index: Any) -> FeatureSet:
        """Rows selected by a boolean mask or integer positions (same order)."""
        idx = torch.as_tensor(
            pd.Series(range(len(self.rows)))[mask_or_index].to_numpy()
            if not isinstance(mask_or_index, torch.Tensor)
            else mask_or_index
        )
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        return FeatureSet(
            features=self.features[:, idx],
            rows=self.rows.iloc[idx.tolist()].reset_index(drop=True),
            meta=dict(self.meta),
        )

    def save(self, folder: str | Path) -> Path:
        """Write features.safetensors + rows.parquet + meta.json (atomically, via temp names)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "features.safetensors.tmp"
        save_file({"features": self.features.contiguous().float()}, str(tmp))
        tmp.replace(folder / "features.safetensors")
        self.rows.to_parquet(folder / "rows.parquet.tmp", index=False)
        (folder / "rows.parquet.tmp").replace(folder / "rows.parquet")
        (folder / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FeatureSet:
        folder = Path(folder)
        path = folder / "features.safetensors"
        if not path.exists():
            raise DatasetError(
                f"no features at {folder} (expected {path.name}); run `musicrfm extract`"
            )
        return cls(
            features=load_file(str(path))["features"],
            rows=pd.read_parquet(folder / "rows.parquet"),
            meta=json.loads((folder / "meta.json").read_text()),
        )
