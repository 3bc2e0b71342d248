"""Capture per-layer decoder activations for labelled clips (the probes' training data).

Pipeline per batch: audio files -> mono, resampled, peak-normalised waveforms -> the model's own
codec -> codes laid out as in generation (BOS step + codebook delay pattern) -> ONE forward of the
bare decoder (no LM heads, no KV cache, no ``output_hidden_states``) with forward hooks on every
decoder block that pool each block's output over the clip's valid positions on the fly. Only the
pooled (L, B, d) result (and, with ``keep_frames``, the valid per-frame rows) leaves the hooks.

Which positions are pooled (see :mod:`musicrfm.models.adapter`): for a clip with ``T`` codec frames,
positions ``1..T`` -- position ``t + 1`` is the generation step at which frame ``t`` enters
(its first codebook). Position 0 (BOS, the same for every clip) and the ``max_delay`` tail
positions are left out; padding from shorter clips in the batch never reaches them because
attention is causal. The decoder is only run up to position ``T_max``: later positions would not
be pooled.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from musicrfm.capture.audio import AudioInfo, audio_info, expected_samples, load_audio
from musicrfm.capture.cache import FeatureCache
from musicrfm.capture.features import FeatureSet
from musicrfm.errors import AudioError, ConfigError, DatasetError
from musicrfm.files import cache_dir
from musicrfm.models import POSITION_CONVENTION, MusicGenAdapter, block_output

log = logging.getLogger(__name__)

POOLINGS = ("mean", "last", "max")
LAYER_CONVENTION = "decoder_block_output_0_based"
CAPTURE_VERSION = 1  # bump when what is computed changes: invalidates old caches


def default_cache_dir() -> Path:
    """``features`` under the cache root (:func:`musicrfm.files.cache_root`)."""
    return cache_dir("features")


# --------------------------------------------------------------------------- datasets
@dataclass
class ClipTable:
    """A labelled audio collection: manifest rows + resolved audio paths."""

    rows: pd.DataFrame
    paths: list[Path]
    root: Path | None = None
    name: str = "clips"

    def manifest_hash(self) -> str:
        """Hash of the manifest content and of each audio file's size and mtime."""
        h = hashlib.sha256()
        h.update(self.rows.to_csv(index=False).encode())
        for p in self.paths:
            try:
                st = p.stat()
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}|missing\n".encode())
        return h.hexdigest()[:24]


def read_clip_table(dataset: Any, *, path_column: str = "path") -> ClipTable:
    """A dataset folder (``manifest.parquet`` or ``manifest.csv``), a manifest file, a DataFrame,
    or an object with ``root`` and ``rows``/``manifest`` attributes -> :class:`ClipTable`.

    Relative paths in the ``path`` column are relative to the manifest's folder.
    """
    if isinstance(dataset, ClipTable):
        return dataset
    root: Path | None
    if isinstance(dataset, pd.DataFrame):
        rows, root, name = dataset, None, "dataframe"
    elif isinstance(dataset, (str, os.PathLike)):
        p = Path(dataset).expanduser()
        loader = _synth_loader()
        if loader is not None:  # the project's dataset reader: same rows as everywhere else
            ds = loader(p)
            return read_clip_table(ds, path_column=path_column)
        if p.is_dir():
            for candidate in ("manifest.csv", "manifest.parquet"):
                if (p / candidate).is_file():
                    rows = _read_table(p / candidate)
                    break
            else:
                raise DatasetError(
                    f"{p} has no manifest.parquet or manifest.csv (a table with a '{path_column}' "
                    "column and label columns); make one or run `musicrfm synth`"
                )
            root, name = p, p.name
        elif p.is_file():
            rows, root, name = _read_table(p), p.parent, p.parent.name
        else:
            raise DatasetError(f"no dataset folder or manifest at {p}")
    else:
        root_attr = next(
            (getattr(dataset, a) for a in ("root", "folder", "path") if hasattr(dataset, a)), None
        )
        rows_attr = next(
            (getattr(dataset, a) for a in ("rows", "manifest", "df") if hasattr(dataset, a)), None
        )
        if not isinstance(rows_attr, pd.DataFrame):
            raise DatasetError(
                f"cannot read clips from a {type(dataset).__name__}; pass a dataset folder, a "
                "manifest file or a DataFrame with a 'path' column"
            )
        rows, root = rows_attr, Path(root_attr) if root_attr is not None else None
        name = root.name if root else type(dataset).__name__
    if path_column not in rows.columns:
        raise DatasetError(
            f"manifest has no '{path_column}' column (columns: {', '.join(map(str, rows.columns))})"
        )
    rows = rows.reset_index(drop=True)
    paths = []
    for value in rows[path_column]:
        q = Path(str(value)).expanduser()
        paths.append(q if q.is_absolute() or root is None else root / q)
    return ClipTable(rows=rows, paths=paths, root=root, name=name)


def _synth_loader() -> Callable[[Path], Any] | None:
    try:
        from musicrfm.synth.dataset import load_dataset
    except ImportError:
        return None
    return load_dataset


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"cannot read manifest {path}: {exc}") from None


# --------------------------------------------------------------------------- capture
@contextlib.contextmanager
def block_hooks(
    adapter: MusicGenAdapter, fn: Callable[[int, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``fn(layer, hidden)`` with every decoder block's output tensor while active."""
    handles = [
        layer.register_forward_hook(lambda _m, _i, out, idx=idx: fn(idx, block_output(out)))
        for idx, layer in enumerate(adapter.decoder_layers)
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class BatchFeatures:
    pooled: torch.Tensor  # (L, B, d) float32, CPU
    lengths: list[int]  # valid frames per clip
    frames: torch.Tensor | None = None  # (L, sum(lengths), d) float32, CPU
    extra: dict[str, Any] = field(default_factory=dict)


@torch.inference_mode()
def capture_codes(
    adapter: MusicGenAdapter,
    codes: torch.Tensor,
    frame_mask: torch.Tensor | None = None,
    *,
    pooling: str = "mean",
    prompt: str | None = "",
    keep_frames: bool = False,
) -> BatchFeatures:
    """One decoder forward over a batch of codes (B, K, T); pooled block outputs (L, B, d)."""
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    inputs = adapter.decoder_input_from_codes(codes, frame_mask)
    pos_mask = inputs.frame_mask
    lengths = pos_mask.sum(-1)
    if int(lengths.min()) < 1:
        raise ConfigError("every clip needs at least one valid frame")
    run_len = int(lengths.max()) + 1  # positions 0..T_max; later ones are never pooled
    b = pos_mask.shape[0]
    k = adapter.num_codebooks
    ids = inputs.input_ids.view(b, k, -1)[:, :, :run_len].reshape(b * k, run_len)
    pos_mask = pos_mask[:, :run_len].to(adapter.device)
    lengths = lengths.to(adapter.device)
    _, prefix = adapter.conditioning(prompt, b)
    weights = pos_mask.float() / lengths[:, None].float()
    rows = torch.arange(b, device=adapter.device)
    pooled = torch.empty(adapter.num_layers, b, adapter.hidden_size, dtype=torch.float32)
    frames: list[torch.Tensor] | None = [] if keep_frames else None

    def on_block(layer: int, hidden: torch.Tensor) -> None:
        h = hidden[:, prefix : prefix + run_len]
        if pooling == "mean":
            hf = h if h.dtype == torch.float32 else h.float()
            out = torch.einsum("bsd,bs->bd", hf, weights)
        elif pooling == "last":
            out = h[rows, lengths].float()
        else:
            out = h.masked_fill(~pos_mask[..., None], float("-inf")).amax(dim=1).float()
        pooled[layer] = out.cpu()
        if frames is not None:
            frames.append(h[pos_mask].float().cpu())  # (sum lengths, d), clip-major

    with block_hooks(adapter, on_block):
        adapter.run_decoder(ids, prompt=prompt)
    stacked = torch.stack(frames) if frames else None
    return BatchFeatures(pooled=pooled, lengths=[int(x) for x in lengths.tolist()], frames=stacked)


class _MemoryStore:
    """Same interface as FeatureCache, in memory (use_cache=False)."""

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


class _ShardBuffer:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.indices: list[int] = []
        self.pooled: list[torch.Tensor] = []
        self.frames: list[torch.Tensor] = []
        self.lengths: list[int] = []
        self.skipped: list[dict[str, Any]] = []

    def flush(self, store: Any) -> None:
        if not self.indices and not self.skipped:
            return
        pooled = torch.cat(self.pooled, dim=1) if self.pooled else torch.empty(0)
        frames = torch.cat(self.frames, dim=1) if self.frames else None
        store.add_shard(
            self.indices,
            pooled,
            frames=frames,
            frame_lengths=self.lengths if frames is not None else None,
            skipped=self.skipped,
        )
        self.clear()


def extract_features(
    adapter: MusicGenAdapter,
    dataset_or_manifest: Any,
    *,
    pooling: str = "mean",
    prompt: str | None = "",
    batch_size: int = 8,
    keep_frames: bool = False,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    max_seconds: float | None = 30.0,
    truncate: bool = False,
    shard_size: int | None = None,
) -> FeatureSet:
    """Pooled per-layer decoder features for every clip of a labelled audio collection.

    Parameters
    ----------
    adapter: from :func:`musicrfm.models.load_model` / :func:`~musicrfm.models.random_model`.
    dataset_or_manifest: a dataset folder with ``manifest.parquet``/``manifest.csv`` (a ``path``
        column relative to the folder, plus label columns), a manifest file, a DataFrame, or a
        dataset object with ``root`` and ``rows``.
    pooling: ``"mean"`` (default, the paper's), ``"last"`` or ``"max"`` over valid frames.
    prompt: text condition; ``""`` (default) is the empty prompt, None the null condition.
    batch_size: clips per decoder forward. Clips are batched in order of length.
    keep_frames: also keep per-frame features (``FeatureSet.frames``; large: L x frames x d).
    cache_dir: cache root (default :func:`default_cache_dir`); ``use_cache=False`` disables it.
    max_seconds, truncate: longer files are skipped with an error, or cut when ``truncate``.
    shard_size: clips per cache shard (default 256, or 32 with ``keep_frames``).

    Returns
    -------
    FeatureSet with features (L, n, d) for the n clips that could be read, rows in manifest order;
    skipped files (with the reason) are listed in ``meta["skipped"]``.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    table = read_clip_table(dataset_or_manifest)
    n = len(table.rows)
    if n == 0:
        raise DatasetError(f"the manifest of {table.name} has no rows")
    shard_size = shard_size or (32 if keep_frames else 256)
    minfo = adapter.info()
    key = {
        "capture_version": CAPTURE_VERSION,
        "model_id": minfo["model_id"],
        "revision": minfo["revision"],
        "fingerprint": minfo["fingerprint"],
        "dtype": minfo["dtype"],
        "dataset_hash": table.manifest_hash(),
        "pooling": pooling,
        "prompt": prompt,
        "keep_frames": bool(keep_frames),
        "max_seconds": max_seconds,
        "truncate": bool(truncate),
        "position_convention": POSITION_CONVENTION,
    }
    store: Any
    if use_cache:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        store = FeatureCache.open(
            root,
            key,
            num_rows=n,
            num_layers=adapter.num_layers,
            hidden_size=adapter.hidden_size,
            label=f"{minfo['model_id']}-{table.name}",
        )
        log.info("feature cache: %s", store.folder)
    else:
        store = _MemoryStore()
    done = store.done_indices()
    if store.complete:
        log.info("feature cache hit: %d clips, nothing to compute", n)
    else:
        if done:
            log.info("resuming: %d of %d clips already done", len(done), n)
        _run(adapter, table, store, done, pooling, prompt, batch_size, keep_frames, max_seconds,
             truncate, shard_size, progress)  # fmt: skip
    return _assemble(adapter, table, store, key, keep_frames)


def _run(
    adapter: MusicGenAdapter,
    table: ClipTable,
    store: Any,
    done: set[int],
    pooling: str,
    prompt: str | None,
    batch_size: int,
    keep_frames: bool,
    max_seconds: float | None,
    truncate: bool,
    shard_size: int,
    progress: bool,
) -> None:
    from tqdm.auto import tqdm

    todo = [i for i in range(len(table.rows)) if i not in done]
    infos: dict[int, AudioInfo | None] = {}
    for i in todo:
        try:
            infos[i] = audio_info(table.paths[i])
        except AudioError:
            infos[i] = None  # reported when loaded
    sr = adapter.sample_rate
    lim = max_seconds if truncate else None

    def length(i: int) -> int:
        info = infos[i]
        return expected_samples(info, sr, lim) if info is not None else -1

    todo.sort(key=lambda i: (length(i), i))  # similar lengths share a batch: little padding
    buffer = _ShardBuffer()
    bar = tqdm(
        total=len(table.rows),
        initial=len(done),
        disable=not progress,
        unit="clip",
        desc="extract",
    )
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            waves: list[np.ndarray] = []
            ok: list[int] = []
            for i in batch:
                try:
                    waves.append(
                        load_audio(table.paths[i], sr, max_seconds=max_seconds, truncate=truncate)
                    )
                    ok.append(i)
                except AudioError as exc:
                    log.warning("skipping row %d: %s", i, exc)
                    buffer.skipped.append(
                        {"index": i, "path": str(table.paths[i]), "error": str(exc)}
                    )
            if ok:
                _capture_batch(adapter, table, ok, waves, buffer, pooling, prompt, keep_frames)
            bar.update(len(batch))
            if len(buffer.indices) >= shard_size:
                buffer.flush(store)
    finally:
        buffer.flush(store)  # keep what was done, even when interrupted
        bar.close()
    store.mark_complete()


def _capture_batch(
    adapter: MusicGenAdapter,
    table: ClipTable,
    ok: list[int],
    waves: list[np.ndarray],
    buffer: _ShardBuffer,
    pooling: str,
    prompt: str | None,
    keep_frames: bool,
) -> None:
    """Codec + decoder for one batch; if the batch fails, retry clip by clip and skip the culprit."""
    try:
        codes, mask = adapter.encode_audio(waves)
        feats = capture_codes(
            adapter, codes, mask, pooling=pooling, prompt=prompt, keep_frames=keep_frames
        )
    except (RuntimeError, ValueError) as exc:
        if len(ok) == 1:
            log.warning("skipping row %d: the model failed on it: %s", ok[0], exc)
            buffer.skipped.append(
                {"index": ok[0], "path": str(table.paths[ok[0]]), "error": f"model failed: {exc}"}
            )
            return
        for i, wave in zip(ok, waves):
            _capture_batch(adapter, table, [i], [wave], buffer, pooling, prompt, keep_frames)
        return
    buffer.indices.extend(ok)
    buffer.pooled.append(feats.pooled)
    buffer.lengths.extend(feats.lengths)
    if feats.frames is not None:
        buffer.frames.append(feats.frames)


def _assemble(
    adapter: MusicGenAdapter,
    table: ClipTable,
    store: Any,
    key: dict[str, Any],
    keep_frames: bool,
) -> FeatureSet:
    shards = list(store.iter_shards())
    kept = sorted(int(i) for s in shards for i in s["indices"].tolist())
    where = {row: pos for pos, row in enumerate(kept)}
    feats = torch.empty(adapter.num_layers, len(kept), adapter.hidden_size, dtype=torch.float32)
    frame_parts: dict[int, torch.Tensor] = {}
    for s in shards:
        idx = [where[int(i)] for i in s["indices"].tolist()]
        feats[:, idx] = s["pooled"].float()
        if keep_frames:
            offsets = np.concatenate([[0], np.cumsum(s["frame_lengths"].numpy())])
            for j, row in enumerate(s["indices"].tolist()):
                frame_parts[where[int(row)]] = s["frames"][:, offsets[j] : offsets[j + 1]]
    frames = offsets_t = None
    if keep_frames and kept:
        parts = [frame_parts[p] for p in range(len(kept))]
        offsets_t = torch.tensor(np.concatenate([[0], np.cumsum([p.shape[1] for p in parts])]))
        frames = torch.cat(parts, dim=1)
    skipped = sorted(store.skipped, key=lambda s: s["index"])
    if skipped:
        log.warning(
            "%d of %d files skipped (listed in meta['skipped'])", len(skipped), len(table.rows)
        )
    info = adapter.info()
    meta = {
        **{
            k: info[k]
            for k in (
                "model_id",
                "revision",
                "fingerprint",
                "model_class",
                "num_layers",
                "hidden_size",
                "num_codebooks",
                "sample_rate",
                "frame_rate",
                "dtype",
            )
        },  # fmt: skip
        "layer_convention": LAYER_CONVENTION,
        "position_convention": POSITION_CONVENTION,
        "pooling": key["pooling"],
        "prompt": key["prompt"],
        "conditioning": "null" if key["prompt"] is None else "text",
        "dataset": str(table.root) if table.root else table.name,
        "dataset_hash": key["dataset_hash"],
        "num_clips": len(kept),
        "num_skipped": len(skipped),
        "skipped": skipped,
        "kept_row_index": kept,
        "max_seconds": key["max_seconds"],
        "capture_version": CAPTURE_VERSION,
        "cache": str(getattr(store, "folder", "")) or None,
    }
    rows = table.rows.iloc[kept].reset_index(drop=True)
    return FeatureSet(features=feats, rows=rows, meta=meta, frames=frames, frame_offsets=offsets_t)


def pooled_reference(hidden: torch.Tensor, pos_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool one layer's (B, S, d) states over ``pos_mask`` (B, S): a plain reference for tests."""
    out = []
    for b in range(hidden.shape[0]):
        rows = hidden[b][pos_mask[b]]
        out.append(
            rows.mean(0) if pooling == "mean" else rows[-1] if pooling == "last" else rows.amax(0)
        )
    return torch.stack(out)


__all__: Sequence[str] = (
    "POOLINGS",
    "BatchFeatures",
    "ClipTable",
    "block_hooks",
    "capture_codes",
    "default_cache_dir",
    "extract_features",
    "pooled_reference",
    "read_clip_table",
)
