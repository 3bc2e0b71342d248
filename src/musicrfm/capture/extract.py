"""Capture per-layer decoder activations for labelled clips (the probes' training data).

Pipeline per batch: audio files -> mono, resampled, peak-normalised waveforms -> the model's own
codec -> codes laid out as in generation -> ONE forward of the bare decoder with every block's
output pooled on the fly (:mod:`.decoder`). `extract_features` ties the steps together: it reads
the clip table (:mod:`.clips`), builds the cache key from the model, the clips and the
:class:`~musicrfm.capture.options.CaptureOptions`, and runs the capture loop (:mod:`.runner`)
into the feature cache (:mod:`.cache`) for whatever is not cached yet.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from musicrfm.capture.cache import FeatureCache, MemoryStore
from musicrfm.capture.clips import read_clip_table
from musicrfm.capture.decoder import CAPTURE_VERSION
from musicrfm.capture.distributed import world
from musicrfm.capture.features import FeatureSet
from musicrfm.capture.options import CaptureOptions
from musicrfm.capture.runner import assemble_features, run_capture
from musicrfm.errors import DatasetError
from musicrfm.files import cache_dir as _cache_root
from musicrfm.models import POSITION_CONVENTION, MusicGenAdapter

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``features`` under the cache root (:func:`musicrfm.files.cache_root`)."""
    return _cache_root("features")


def extract_features(
    adapter: MusicGenAdapter,
    dataset_or_manifest: Any,
    options: CaptureOptions | None = None,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    **changes: Any,
) -> FeatureSet:
    """Pooled per-layer decoder features for every clip of a labelled audio collection.

    Parameters
    ----------
    adapter: from :func:`musicrfm.models.load_model` / :func:`~musicrfm.models.random_model`.
    dataset_or_manifest: a dataset folder with ``manifest.parquet``/``manifest.csv`` (a ``path``
        column relative to the folder, plus label columns), a manifest file, a DataFrame, or a
        dataset object with ``root`` and ``rows``.
    options: a :class:`~musicrfm.capture.options.CaptureOptions` (default: its defaults).
    changes: option fields given by name, applied on top of ``options``: ``pooling`` ("mean",
        "last", "max"), ``prompt`` ("" empty prompt, None null condition), ``batch_size``,
        ``keep_frames``, ``max_seconds``, ``truncate``, ``shard_size``.
    cache_dir: cache root (default :func:`default_cache_dir`); ``use_cache=False`` disables it.

    Returns
    -------
    FeatureSet with features (L, n, d) for the n clips that could be read, rows in manifest order;
    skipped files (with the reason) are listed in ``meta["skipped"]``, the options in
    ``meta["options"]`` (``CaptureOptions.from_dict(meta["options"])`` rebuilds them).

    Under ``accelerate launch`` / ``torchrun`` every process calls this; the clip batches are
    shared among them, rank 0 alone reads and writes the cache, and every rank returns the
    FeatureSet one process would (bit for bit: each clip is computed in the same batch).
    """
    opts = (options or CaptureOptions()).with_changes(**changes)
    table = read_clip_table(dataset_or_manifest)
    n = len(table.rows)
    if n == 0:
        raise DatasetError(f"the manifest of {table.name} has no rows")
    minfo = adapter.info()
    dataset_hash = table.manifest_hash()
    w = world()
    store: Any = MemoryStore()  # the other ranks compute, rank 0 keeps (capture.runner)
    if use_cache and w.main:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        store = FeatureCache.open(
            root,
            cache_key(opts, minfo, dataset_hash),
            num_rows=n,
            num_layers=adapter.num_layers,
            hidden_size=adapter.hidden_size,
            label=f"{minfo['model_id']}-{table.name}",
        )
        log.info("feature cache: %s", store.folder)
    done, complete = w.broadcast((store.done_indices(), store.complete))
    if complete:
        log.info("feature cache hit: %d clips, nothing to compute", n)
    else:
        if done and w.main:
            log.info("resuming: %d of %d clips already done", len(done), n)
        run_capture(adapter, table, store, done, opts, progress)
    if not w.distributed:
        return assemble_features(adapter, table, store, opts, dataset_hash)
    # every rank returns rank 0's FeatureSet (the next step, probe training, needs it on all)
    return w.broadcast(
        assemble_features(adapter, table, store, opts, dataset_hash) if w.main else None
    )


def cache_key(
    options: CaptureOptions, model_info: dict[str, Any], dataset_hash: str
) -> dict[str, Any]:
    """The feature cache key: what the features depend on (model, clips, capture options,
    conventions). Its content must stay the same for the same inputs, or caches stop hitting;
    bump ``CAPTURE_VERSION`` when what is computed changes."""
    opt = options.cache_fields()
    return {
        "capture_version": CAPTURE_VERSION,
        "model_id": model_info["model_id"],
        "revision": model_info["revision"],
        "fingerprint": model_info["fingerprint"],
        "dtype": model_info["dtype"],
        "dataset_hash": dataset_hash,
        "pooling": opt["pooling"],
        "prompt": opt["prompt"],
        "keep_frames": opt["keep_frames"],
        "max_seconds": opt["max_seconds"],
        "truncate": opt["truncate"],
        "position_convention": POSITION_CONVENTION,
    }


__all__ = ["cache_key", "default_cache_dir", "extract_features"]
