"""`musicrfm extract`: per-layer pooled decoder features for a labelled audio dataset."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from musicrfm.commands import add_model_argument, add_threads_argument, apply_threads, check_device

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="capture per-layer MusicGen activations for labelled clips",
        description=(
            "Encode every clip of a dataset (a folder with manifest.csv/parquet: a 'path' column "
            "plus labels) with the model's codec, run the decoder once per batch laid out as in "
            "generation, and save the output of every decoder block pooled over the clip's "
            "frames (a FeatureSet folder). Results are cached: a second run is a cache hit and "
            "an interrupted run resumes."
        ),
    )
    p.add_argument("--data", required=True, help="dataset folder (or manifest file)")
    add_model_argument(p)
    p.add_argument("--out", required=True, help="folder to write the FeatureSet to")
    p.add_argument("--pooling", default="mean", choices=["mean", "last", "max"])
    p.add_argument("--prompt", default="", help="text condition (default: the empty prompt)")
    p.add_argument(
        "--no-prompt",
        action="store_true",
        help="use the null condition instead of a text prompt",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    add_threads_argument(p)
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    p.add_argument(
        "--cache-dir", default=None, help="feature cache root (default ~/.cache/musicrfm)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--keep-frames", action="store_true", help="also save per-frame features")
    p.add_argument(
        "--max-seconds", type=float, default=30.0, help="longer files are skipped (default 30)"
    )
    p.add_argument(
        "--truncate", action="store_true", help="cut longer files to --max-seconds instead"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicrfm.capture.options import CaptureOptions
    from musicrfm.errors import DatasetError
    from musicrfm.files import check_writable

    options = CaptureOptions(  # checked before the model is loaded
        pooling=args.pooling,
        prompt=None if args.no_prompt else args.prompt,
        batch_size=args.batch_size,
        keep_frames=args.keep_frames,
        max_seconds=args.max_seconds,
        truncate=args.truncate,
    )
    from musicrfm.capture.distributed import device_for, is_main

    apply_threads(args.threads)
    check_device(args.device)
    check_writable(args.out, what="--out", folder=True)

    from musicrfm.capture.clips import read_clip_table
    from musicrfm.capture.extract import default_cache_dir, extract_features
    from musicrfm.models import load_model

    table = read_clip_table(args.data)
    if not args.no_cache:
        cache = args.cache_dir if args.cache_dir is not None else default_cache_dir()
        check_writable(cache, what="feature cache", folder=True)
    adapter = load_model(
        args.model,
        device=device_for(args.device),  # under a launcher: this rank's GPU
        dtype=args.dtype,
        revision=args.revision,
        progress=not args.no_progress,
    )
    # features (and as much again in the cache), float32: checked before the first clip
    need = len(table.rows) * adapter.num_layers * adapter.hidden_size * 4
    check_writable(
        args.out, what="--out", folder=True, need_bytes=need * (1 if args.no_cache else 2)
    )
    fs = extract_features(
        adapter,
        args.data,
        options,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
    )
    if not is_main():  # under a launcher rank 0 writes --out and reports
        return 0
    if len(fs) == 0:
        skipped = fs.meta.get("skipped") or []
        first = f" (first: {skipped[0]['path']}: {skipped[0]['error']})" if skipped else ""
        raise DatasetError(
            f"no clip of {args.data} could be used: all {len(skipped)} were skipped{first}; "
            f"nothing was written to {args.out}"
        )
    out = save_features(fs, Path(args.out), cached=not args.no_cache)
    skipped = fs.meta.get("num_skipped", 0)
    print(
        f"wrote {len(fs)} clips x {fs.num_layers} layers x {fs.hidden_size} to {out}"
        + (f" ({skipped} files skipped: see meta.json)" if skipped else "")
    )
    return 0


def save_features(fs: Any, out: Path, *, cached: bool) -> Path:
    """`FeatureSet.save`, leaving no temporary file behind when the disk fills up or refuses
    (the cache keeps the captured clips: the same command again only writes the folder)."""
    from musicrfm.errors import DatasetError

    before = set(out.glob("*.tmp")) if out.is_dir() else set()
    try:
        return fs.save(out)
    except OSError as exc:
        for tmp in set(out.glob("*.tmp")) - before:
            tmp.unlink(missing_ok=True)
        kept = (
            "the captured clips are kept in the cache: run the same command again once there "
            "is room"
            if cached
            else "nothing was kept (--no-cache)"
        )
        raise DatasetError(
            f"cannot write the features to {out}: {exc.strerror or exc} ({kept})"
        ) from None
