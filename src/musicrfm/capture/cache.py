"""On-disk cache of captured features: safetensors shards + a JSON manifest.

One folder per key (model fingerprint/revision, dataset manifest hash, capture options). Shards
hold ``indices`` (manifest row positions), ``pooled`` (L, b, d) and, with per-frame capture,
``frames`` (L, sum of frames, d) + ``frame_lengths``. The manifest lists the shards that are
complete and the files that were skipped, so an interrupted run resumes where it stopped: a shard
written but not yet listed is simply redone. Files are written under unique temporary names and
renamed (`musicrfm.files.write_atomic`); shard names carry a random part, so two processes
filling the same entry never overwrite each other's shards, and each merges the other's shards
into the manifest before writing it (with a warning: the work is done twice, but nothing is
lost). A damaged manifest is one error naming the folder.

A cache folder whose stored key differs from the one asked for is never reused: that raises
:class:`~musicrfm.errors.CompatibilityError` instead. `MemoryStore` is the same interface without
the disk, for runs that use no cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from musicrfm.errors import CompatibilityError, DatasetError
from musicrfm.files import save_tensors_atomic, write_text_atomic

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def key_hash(key: dict[str, Any]) -> str:
    """Stable hash of a JSON-able key."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-40:] or "model"


class FeatureCache:
    """One cache entry (a folder). Create with :meth:`open`."""

    def __init__(self, folder: Path, key: dict[str, Any], state: dict[str, Any]) -> None:
        self.folder = folder
        self.key = key
        self.state = state

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        root: str | Path,
        key: dict[str, Any],
        *,
        num_rows: int,
        num_layers: int,
        hidden_size: int,
        label: str = "",
    ) -> FeatureCache:
        """Open (or create) the entry for ``key`` under ``root``."""
        digest = key_hash(key)
        folder = Path(root).expanduser() / f"{_slug(label)}-{digest[:16]}"
        manifest = folder / "manifest.json"
        shape = {"num_rows": num_rows, "num_layers": num_layers, "hidden_size": hidden_size}
        if manifest.is_file():
            state = _read_manifest(manifest)
            stored = state.get("key")
            if (
                stored != json.loads(json.dumps(key, default=str))
                or state.get("key_hash") != digest
            ):
                diff = _diff_keys(stored or {}, key)
                raise CompatibilityError(
                    f"feature cache {folder} was made for different inputs ({diff}); "
                    "refusing to reuse it: delete the folder or use another --cache-dir"
                )
            for name, value in shape.items():
                if state.get(name) != value:
                    raise CompatibilityError(
                        f"feature cache {folder} has {name}={state.get(name)}, expected {value}; "
                        "delete the folder"
                    )
            if state.get("format") != CACHE_FORMAT:
                raise CompatibilityError(
                    f"feature cache {folder} has format {state.get('format')}, this version "
                    f"reads {CACHE_FORMAT}; delete the folder"
                )
            return cls(folder, key, state)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CACHE_FORMAT,
            "key": json.loads(json.dumps(key, default=str)),
            "key_hash": digest,
            **shape,
            "shards": [],
            "skipped": [],
            "complete": False,
        }
        cache = cls(folder, key, state)
        cache._write_manifest()
        return cache

    # ------------------------------------------------------------------ state
    @property
    def complete(self) -> bool:
        return bool(self.state.get("complete"))

    def done_indices(self) -> set[int]:
        """Row positions already captured or skipped."""
        done: set[int] = {int(s["index"]) for s in self.state["skipped"]}
        for shard in self.state["shards"]:
            done.update(int(i) for i in shard["indices"])
        return done

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return list(self.state["skipped"])

    def add_shard(
        self,
        indices: list[int],
        pooled: torch.Tensor,
        *,
        frames: torch.Tensor | None = None,
        frame_lengths: list[int] | None = None,
        skipped: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Write one shard (atomically), then record it (and skipped files) in the manifest."""
        skipped = list(skipped)
        if indices:
            number = len(self.state["shards"])
            name = f"shard-{number:05d}-{secrets.token_hex(4)}.safetensors"
            tensors = {
                "indices": torch.tensor(indices, dtype=torch.long),
                "pooled": pooled.detach().to("cpu", torch.float32).contiguous(),
            }
            if frames is not None:
                tensors["frames"] = frames.detach().to("cpu", torch.float32).contiguous()
                tensors["frame_lengths"] = torch.tensor(frame_lengths, dtype=torch.long)
            save_tensors_atomic(self.folder / name, tensors)
            self.state["shards"].append({"file": name, "indices": [int(i) for i in indices]})
        self.state["skipped"].extend(skipped)
        if indices or skipped:
            self._write_manifest()

    def mark_complete(self) -> None:
        self.state["complete"] = True
        self._write_manifest()

    def iter_shards(self) -> Iterable[dict[str, torch.Tensor]]:
        for shard in self.state["shards"]:
            path = self.folder / shard["file"]
            try:
                yield load_file(str(path))
            except Exception as exc:  # noqa: BLE001
                raise DatasetError(
                    f"feature cache shard {path} is unreadable ({exc}); delete {self.folder}"
                ) from None

    def _write_manifest(self) -> None:
        """Write the manifest, first taking in shards another process listed meanwhile."""
        path = self.folder / "manifest.json"
        if path.is_file():
            try:
                theirs = json.loads(path.read_text())
            except (OSError, ValueError):
                theirs = {}
            mine = {s["file"] for s in self.state["shards"]}
            done = self.done_indices()
            new = [
                s
                for s in theirs.get("shards", [])
                if s.get("file") not in mine and not done & {int(i) for i in s.get("indices", [])}
            ]
            if new:
                log.warning(
                    "another process is filling the same feature cache %s; taking in its %d "
                    "shard(s) (the work is done twice, nothing is lost)",
                    self.folder,
                    len(new),
                )
                self.state["shards"].extend(new)
                seen = self.done_indices()
                self.state["skipped"].extend(
                    x for x in theirs.get("skipped", []) if int(x["index"]) not in seen
                )
        write_text_atomic(path, json.dumps(self.state, indent=1))


def _read_manifest(path: Path) -> dict[str, Any]:
    """A cache entry's manifest, checked enough to resume from; damage is one error."""
    try:
        state = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"feature cache manifest {path} is corrupt ({exc}); delete {path.parent}"
        ) from None
    ok = (
        isinstance(state, dict)
        and isinstance(state.get("shards"), list)
        and isinstance(state.get("skipped"), list)
        and all(isinstance(x, dict) and "file" in x and "indices" in x for x in state["shards"])
        and all(isinstance(x, dict) and "index" in x for x in state["skipped"])
    )
    if not ok:
        raise DatasetError(
            f"feature cache manifest {path} is incomplete (no shard list); delete {path.parent}"
        )
    return state


def _diff_keys(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    names = sorted(set(stored) | set(wanted))
    diffs = [
        f"{n}: cached {stored.get(n)!r} vs now {wanted.get(n)!r}"
        for n in names
        if stored.get(n) != json.loads(json.dumps(wanted.get(n), default=str))
    ]
    return "; ".join(diffs[:4]) or "key hash differs"


class MemoryStore:
    """Same interface as FeatureCache, in memory (``use_cache=False``): nothing is resumed."""

    def __init__(self) -> None:
        self.shards: list[dict[str, torch.Tensor]] = []
        self.skipped_rows: list[dict[str, Any]] = []
        self.complete = False

    def done_indices(self) -> set[int]:
        return set()

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return list(self.skipped_rows)

    def add_shard(self, indices, pooled, *, frames=None, frame_lengths=None, skipped=()):  # noqa: ANN001
        if indices:
            shard = {"indices": torch.tensor(indices), "pooled": pooled}
            if frames is not None:
                shard["frames"] = frames
                shard["frame_lengths"] = torch.tensor(frame_lengths)
            self.shards.append(shard)
        self.skipped_rows.extend(skipped)

    def mark_complete(self) -> None:
        self.complete = True

    def iter_shards(self):  # noqa: ANN201
        return iter(self.shards)
