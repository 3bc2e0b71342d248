"""The bookkeeping of a dataset folder being rendered: the journal of finished clips
(``.progress.jsonl``), ``manifest.csv`` and ``dataset.json`` rebuilt from it, the check that a
resumed run uses the same fixed options, and the clean-up of half-written files.

See :mod:`musicrfm.synth.generate` for how a run uses them to stay safe to interrupt.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm import __version__
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import write_json_atomic
from musicrfm.synth.concepts import CONCEPTS
from musicrfm.synth.dataset import MANIFEST_CSV, META_JSON, write_csv_atomic
from musicrfm.synth.render import SILENCE_DB, RenderOptions

log = logging.getLogger(__name__)

JOURNAL = ".progress.jsonl"
# options that change the audio or the rows of clips already made: a resumed run must match them
FIXED_OPTIONS = ("seed", "sample_rate", "channels", "format", "duration", "soundfont", "specs")
TRAILING = ("duration", "sample_rate", "seed")


def warn_if_short_of_space(root: Path, n: int, opts: RenderOptions, fmt: str) -> None:
    """Log a warning when the free space looks too small (FLAC ~ 55%, WAV 100% of 16-bit PCM)."""
    per_clip = opts.duration * opts.sample_rate * opts.channels * 2 * (0.55 if fmt == "flac" else 1)
    need = n * per_clip
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if need > free:
        log.warning(
            "%s has %.1f GB free; %d clips need about %.1f GB", root, free / 1e9, n, need / 1e9
        )


def check_compatible(root: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Refuse a folder made with other fixed options; return the options of earlier runs."""
    meta_path = root / META_JSON
    if not meta_path.is_file():
        if (root / MANIFEST_CSV).exists() and not (root / JOURNAL).exists():
            raise DatasetError(
                f"{root} holds a manifest not made by `musicrfm synth`; use another --out"
            )
        return []
    try:
        meta = json.loads(meta_path.read_text())
        old = meta.get("options", {})
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {meta_path}: {exc}") from exc
    diff = [k for k in FIXED_OPTIONS if k in old and old[k] != options.get(k)]
    if diff:
        detail = ", ".join(f"{k}={old[k]!r} (now {options.get(k)!r})" for k in diff)
        raise ConfigError(
            f"{root} was made with {detail}; use the same options to resume or add clips, "
            "or choose another --out"
        )
    return list(meta.get("runs", [old]))


def remove_partials(root: Path) -> None:
    for part in root.rglob(".*.part"):
        part.unlink(missing_ok=True)


def read_journal(root: Path, fmt: str) -> dict[str, dict[str, Any]]:
    """Finished clips from the journal; entries whose audio file vanished are dropped."""
    done: dict[str, dict[str, Any]] = {}
    path = root / JOURNAL
    if not path.is_file():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by an interruption
                continue
            if record.get("status") == "ok" and not (root / record["row"]["path"]).is_file():
                continue
            done[record["id"]] = record
    return done


def _concept_order(concept: str) -> int:
    names = list(CONCEPTS)
    return names.index(concept) if concept in names else len(names)


def _manifest_rows(done: Mapping[str, dict[str, Any]], seed: int | None) -> pd.DataFrame:
    records = sorted(
        (r for r in done.values() if r["status"] == "ok"),
        key=lambda r: (_concept_order(r["row"]["concept"]), r["index"], r["id"]),
    )
    rows = pd.DataFrame([dict(r["row"], seed=seed) for r in records])
    if rows.empty:
        return pd.DataFrame(columns=["path", "concept", "label", *TRAILING])
    cols = [c for c in rows.columns if c not in TRAILING] + [c for c in TRAILING if c in rows]
    rows = rows[cols]
    for col in rows.columns:  # integer columns stay integers when other concepts lack them
        if rows[col].hasnans and _all_ints(r["row"].get(col) for r in records):
            rows[col] = rows[col].astype("Int64")
    return rows


def _all_ints(values: Iterable[Any]) -> bool:
    seen = [v for v in values if v is not None]
    return bool(seen) and all(isinstance(v, int) and not isinstance(v, bool) for v in seen)


def write_manifest(root: Path, done: Mapping[str, dict[str, Any]], seed: int | None = None) -> None:
    if seed is None:
        try:
            seed = json.loads((root / META_JSON).read_text())["options"]["seed"]
        except (OSError, ValueError, KeyError):
            seed = None
    write_csv_atomic(_manifest_rows(done, seed), root / MANIFEST_CSV)


def dataset_meta(
    options: dict[str, Any],
    runs: list[dict[str, Any]],
    done: Mapping[str, dict[str, Any]],
    *,
    complete: bool,
) -> dict[str, Any]:
    ok = [r for r in done.values() if r["status"] == "ok"]
    silent = sorted(r["id"] for r in done.values() if r["status"] == "silent")
    counts: dict[str, int] = {}
    for r in sorted(ok, key=lambda r: _concept_order(r["row"]["concept"])):
        counts[r["row"]["concept"]] = counts.get(r["row"]["concept"], 0) + 1
    return {
        "generator": "musicrfm synth",
        "version": __version__,
        "complete": complete,
        "options": options,
        "runs": runs,
        "clips": len(ok),
        "counts": counts,
        "silent_excluded": len(silent),
        "silent_threshold_db": SILENCE_DB,
        "silent_clips": silent,
        "manifest": MANIFEST_CSV,
    }


def finish(
    root: Path,
    options: dict[str, Any],
    runs: list[dict[str, Any]],
    done: Mapping[str, dict[str, Any]],
    *,
    complete: bool,
    quiet: bool = False,
) -> bool:
    """Rewrite manifest and dataset.json; with ``quiet``, a failure is logged and False returned."""
    try:
        write_manifest(root, done, options["seed"])
        write_json_atomic(root / META_JSON, dataset_meta(options, runs, done, complete=complete))
        return True
    except OSError as exc:
        if not quiet:
            raise DatasetError(
                f"cannot write the manifest in {root}: {exc.strerror or exc}"
            ) from exc
        log.error("could not update manifest.csv or dataset.json in %s: %s", root, exc)
        return False
