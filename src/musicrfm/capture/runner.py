"""The capture loop behind `extract_features`: clips in, shards into a store, a FeatureSet out.

`run_capture` reads the clips not yet in the store (a :class:`~musicrfm.capture.cache.FeatureCache`
or a :class:`~musicrfm.capture.cache.MemoryStore`), batches them by length, runs the codec and
one decoder pass per batch (:func:`~musicrfm.capture.decoder.capture_codes`) and writes shards,
so an interrupted run keeps what it did: a shard is written every ``clips_per_shard`` clips or
every `FLUSH_SECONDS`, whichever comes first, so a SIGKILL loses at most that much. A file that
cannot be read, or that the model fails on, is skipped and listed -- unless the model fails on
the first `FAIL_FAST` clips it is given (or all of them, when fewer) before any clip worked:
that is the model or its settings (a dtype the device cannot run), so it is one error, not a
run that skips everything; those clips are not recorded as done.
`assemble_features` reads the shards back in manifest order. Under a launcher the batches are
dealt round robin to the processes and merged on rank 0 in batch order (`run_capture`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from musicrfm.capture.audio import AudioInfo, audio_info, expected_samples, load_audio
from musicrfm.capture.clips import ClipTable
from musicrfm.capture.decoder import CAPTURE_VERSION, LAYER_CONVENTION, capture_codes
from musicrfm.capture.distributed import world
from musicrfm.capture.features import FeatureSet
from musicrfm.capture.options import CaptureOptions
from musicrfm.errors import AudioError, DatasetError
from musicrfm.models import POSITION_CONVENTION, MusicGenAdapter

log = logging.getLogger(__name__)

# a shard is written at least this often (seconds of capture), whatever its size
FLUSH_SECONDS = 60.0
# the model failing on this many clips before any worked stops the run (see the module doc)
FAIL_FAST = 4

# what a FeatureSet's meta copies of the model's info
MODEL_INFO_KEYS = (
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


def _by_length(
    table: ClipTable, todo: list[int], sample_rate: int, options: CaptureOptions
) -> list[int]:
    """``todo`` sorted by expected length (unreadable files first): similar lengths share a
    batch, so there is little padding."""
    infos: dict[int, AudioInfo | None] = {}
    for i in todo:
        try:
            infos[i] = audio_info(table.paths[i])
        except AudioError:
            infos[i] = None  # reported when loaded
    lim = options.max_seconds if options.truncate else None

    def length(i: int) -> int:
        info = infos[i]
        return expected_samples(info, sample_rate, lim) if info is not None else -1

    return sorted(todo, key=lambda i: (length(i), i))


@dataclass
class _BatchOut:
    """One batch's result, as a rank sends it to rank 0: the clips captured and those skipped."""

    indices: list[int] = field(default_factory=list)
    pooled: list[torch.Tensor] = field(default_factory=list)
    frames: list[torch.Tensor] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    unreadable: list[dict[str, Any]] = field(default_factory=list)  # files that did not load
    failed: list[dict[str, Any]] = field(default_factory=list)  # clips the model failed on
    readable: int = 0  # clips given to the model


def run_capture(
    adapter: MusicGenAdapter,
    table: ClipTable,
    store: Any,
    done: set[int],
    options: CaptureOptions,
    progress: bool,
) -> None:
    """Capture every row of ``table`` not in ``done`` into ``store``, then mark it complete.

    Shards are flushed every ``options.clips_per_shard`` clips and once more on the way out,
    even when interrupted, so a rerun resumes after the last flushed shard.

    Under a launcher (:mod:`musicrfm.capture.distributed`) the batches -- the same batches, in
    the same order, one process makes, so every clip is computed in the same batch layout -- go
    round robin to the ranks; rank 0 receives each round's results in batch order, writes the
    shards and decides as one process would (``store`` and ``done`` are only read on rank 0).
    """
    from tqdm.auto import tqdm

    w = world()
    sr = adapter.sample_rate
    todo: list[int] = []
    if w.main:
        todo = _by_length(table, [i for i in range(len(table.rows)) if i not in done], sr, options)
    todo = w.broadcast(todo)
    batches = [todo[s : s + options.batch_size] for s in range(0, len(todo), options.batch_size)]
    buffer = _ShardBuffer()
    bar = tqdm(
        total=len(table.rows),
        initial=len(done) if w.main else 0,
        disable=not (progress and w.main),
        unit="clip",
        desc="extract",
    )
    state = _FailFast(len(todo))
    flushed = time.monotonic()
    try:
        for start in range(0, len(batches), w.size):
            mine = start + w.rank
            out = (
                _run_batch(adapter, table, batches[mine], options) if mine < len(batches) else None
            )
            results = w.gather(out)
            error = None
            if w.main:
                for res in results or []:
                    if res is None:
                        continue
                    error = error or state.take(res, buffer)
                    if error:
                        break
                    bar.update(len(res.indices) + len(res.unreadable) + len(res.failed))
                    due = time.monotonic() - flushed >= FLUSH_SECONDS
                    if len(buffer.indices) >= options.clips_per_shard or (due and buffer.indices):
                        buffer.flush(store)
                        flushed = time.monotonic()
            error = w.broadcast(error)
            if error:
                info = adapter.info()
                raise DatasetError(
                    f"{error} (dtype {info.get('dtype')} on {info.get('device')}; float32 runs "
                    "everywhere)"
                )
    finally:
        if w.main:
            buffer.flush(store)  # keep what was done, even when interrupted
        bar.close()
    if w.main:
        store.mark_complete()


class _FailFast:
    """Rank 0's merge of batch results, in batch order, with the fail-fast rule (module doc)."""

    def __init__(self, n_todo: int) -> None:
        self.n_todo = n_todo
        self.worked = False  # has the model captured any clip in this run?
        self.early: list[dict[str, Any]] = []  # the model's failures before any clip worked

    def take(self, res: _BatchOut, buffer: _ShardBuffer) -> str | None:
        """Add one batch's result to ``buffer``; the error message when the run must stop."""
        buffer.skipped.extend(res.unreadable)
        buffer.indices.extend(res.indices)
        buffer.pooled.extend(res.pooled)
        buffer.frames.extend(res.frames)
        buffer.lengths.extend(res.lengths)
        buffer.skipped.extend(res.failed)
        if not res.readable:
            return None
        self.worked = self.worked or len(res.failed) < res.readable
        if self.worked:
            return None
        self.early += res.failed
        readable = self.n_todo - sum(1 for e in buffer.skipped if e not in self.early)
        if len(self.early) >= min(FAIL_FAST, readable):
            buffer.skipped = [e for e in buffer.skipped if e not in self.early]
            return (
                f"the model failed on the first {len(self.early)} clips and worked on none, so "
                f"it would fail on all: {self.early[0]['error']}"
            )
        return None


def _run_batch(
    adapter: MusicGenAdapter, table: ClipTable, batch: list[int], options: CaptureOptions
) -> _BatchOut:
    """Load one batch's files and capture the readable ones."""
    out = _BatchOut()
    waves: list[np.ndarray] = []
    ok: list[int] = []
    for i in batch:
        try:
            waves.append(
                load_audio(
                    table.paths[i],
                    adapter.sample_rate,
                    max_seconds=options.max_seconds,
                    truncate=options.truncate,
                )
            )
            ok.append(i)
        except AudioError as exc:
            log.warning("skipping row %d: %s", i, exc)
            out.unreadable.append({"index": i, "path": str(table.paths[i]), "error": str(exc)})
    if ok:
        out.readable = len(ok)
        _capture_batch(adapter, table, ok, waves, out, options)
    return out


def _capture_batch(
    adapter: MusicGenAdapter,
    table: ClipTable,
    ok: list[int],
    waves: list[np.ndarray],
    out: _BatchOut,
    options: CaptureOptions,
) -> None:
    """Codec + decoder for one batch; if the batch fails, retry clip by clip and skip the culprit."""
    try:
        codes, mask = adapter.encode_audio(waves)
        feats = capture_codes(
            adapter,
            codes,
            mask,
            pooling=options.pooling,
            prompt=options.prompt,
            keep_frames=options.keep_frames,
        )
    except (RuntimeError, ValueError) as exc:
        if len(ok) == 1:
            log.warning("skipping row %d: the model failed on it: %s", ok[0], exc)
            out.failed.append(
                {"index": ok[0], "path": str(table.paths[ok[0]]), "error": f"model failed: {exc}"}
            )
            return
        for i, wave in zip(ok, waves):
            _capture_batch(adapter, table, [i], [wave], out, options)
        return
    out.indices.extend(ok)
    out.pooled.append(feats.pooled)
    out.lengths.extend(feats.lengths)
    if feats.frames is not None:
        out.frames.append(feats.frames)


def assemble_features(
    adapter: MusicGenAdapter,
    table: ClipTable,
    store: Any,
    options: CaptureOptions,
    dataset_hash: str,
) -> FeatureSet:
    """The store's shards as one FeatureSet, rows in manifest order (skipped rows left out)."""
    shards = list(store.iter_shards())
    kept = sorted(int(i) for s in shards for i in s["indices"].tolist())
    where = {row: pos for pos, row in enumerate(kept)}
    feats = torch.empty(adapter.num_layers, len(kept), adapter.hidden_size, dtype=torch.float32)
    frame_parts: dict[int, torch.Tensor] = {}
    for s in shards:
        idx = [where[int(i)] for i in s["indices"].tolist()]
        feats[:, idx] = s["pooled"].float()
        if options.keep_frames:
            offsets = np.concatenate([[0], np.cumsum(s["frame_lengths"].numpy())])
            for j, row in enumerate(s["indices"].tolist()):
                frame_parts[where[int(row)]] = s["frames"][:, offsets[j] : offsets[j + 1]]
    frames = offsets_t = None
    if options.keep_frames and kept:
        parts = [frame_parts[p] for p in range(len(kept))]
        offsets_t = torch.tensor(np.concatenate([[0], np.cumsum([p.shape[1] for p in parts])]))
        frames = torch.cat(parts, dim=1)
    skipped = sorted(store.skipped, key=lambda s: s["index"])
    if skipped:
        log.warning(
            "%d of %d files skipped (listed in meta['skipped'])", len(skipped), len(table.rows)
        )
    meta = capture_meta(adapter, table, store, options, dataset_hash, kept, skipped)
    rows = table.rows.iloc[kept].reset_index(drop=True)
    return FeatureSet(features=feats, rows=rows, meta=meta, frames=frames, frame_offsets=offsets_t)


def capture_meta(
    adapter: MusicGenAdapter,
    table: ClipTable,
    store: Any,
    options: CaptureOptions,
    dataset_hash: str,
    kept: list[int],
    skipped: list[dict[str, Any]],
) -> dict[str, Any]:
    """A FeatureSet's meta: the model, the conventions, the options, the clips kept/skipped.

    ``pooling``, ``prompt`` and ``max_seconds`` stay at the top level, where readers of older
    folders (and the direction files, which copy pooling and prompt) look for them.
    """
    info = adapter.info()
    return {
        **{k: info[k] for k in MODEL_INFO_KEYS},
        "layer_convention": LAYER_CONVENTION,
        "position_convention": POSITION_CONVENTION,
        "pooling": options.pooling,
        "prompt": options.prompt,
        "conditioning": "null" if options.prompt is None else "text",
        "dataset": str(table.root) if table.root else table.name,
        "dataset_hash": dataset_hash,
        "num_clips": len(kept),
        "num_skipped": len(skipped),
        "skipped": skipped,
        "kept_row_index": kept,
        "max_seconds": options.max_seconds,
        "options": options.to_dict(),
        "capture_version": CAPTURE_VERSION,
        "cache": str(getattr(store, "folder", "")) or None,
    }
