"""Render concepts into a dataset folder: parallel, deterministic, resumable.

How a run stays safe to interrupt: every audio file is written under a temporary name and renamed
when complete; each finished clip (rendered or found silent) is appended to ``.progress.jsonl``
by the main process only; ``manifest.csv`` is rebuilt from that journal (periodically, at the end,
and when a run stops on an error or Ctrl-C). A second run with the same options skips everything
already in the journal, so nothing is rendered twice and no half-written file survives.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm import __version__, theory
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import write_bytes_atomic, write_json_atomic
from musicrfm.synth.concepts import CONCEPTS, ClipSpec, Selection, clips_for, parse_concepts
from musicrfm.synth.dataset import (
    MANIFEST_CSV,
    META_JSON,
    SynthDataset,
    load_dataset,
    write_csv_atomic,
)
from musicrfm.synth.render import SILENCE_DB, Renderer, RenderOptions, find_soundfont, peak_db

log = logging.getLogger(__name__)

JOURNAL = ".progress.jsonl"
FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}
# options that change the audio or the rows of clips already made: a resumed run must match them
FIXED_OPTIONS = ("seed", "sample_rate", "channels", "format", "duration", "soundfont")
TRAILING = ("duration", "sample_rate", "seed")
MANIFEST_EVERY_S = 20.0


def generate_dataset(
    concepts: str | Iterable[str] | Mapping[str, Iterable[str] | None],
    out: str | os.PathLike[str],
    *,
    programs: Sequence[int | str] | None = None,
    roots: Sequence[int | str] | None = None,
    octaves: Sequence[int] | None = None,
    limit_per_class: int | None = None,
    seed: int = 0,
    sample_rate: int = 32000,
    channels: int = 1,
    format: str = "flac",
    duration: float = 4.0,
    soundfont: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> SynthDataset:
    """Render the selected clips of one or more concepts into ``out`` and return the dataset.

    Parameters
    ----------
    concepts:
        ``"notes"``, ``["chords:major,minor", "notes"]`` or ``{"chords": ["major", "minor"]}``.
    out:
        Dataset folder (created). Running again with the same options resumes; different
        concepts or selections add clips to the same folder.
    programs, roots, octaves:
        GM programs (numbers or names; default SynTheory's 92), root/key pitch classes (names or
        0..11) and SynTheory octaves (``midi // 12``; notes only).
    limit_per_class:
        At most this many clips per label, drawn with ``seed`` (spread over programs/registers).
    seed:
        Seeds crops, reverb tails and the per-class sample; same seed and options, same files.
    sample_rate, channels, format, duration:
        Output audio (default 32 kHz mono 16-bit FLAC, 4 s clips).
    soundfont:
        A General MIDI .sf2 (default TimGM6mb, see :func:`musicrfm.synth.render.find_soundfont`).
    workers:
        Processes (default: all cores); 1 renders in this process.
    progress:
        Show a progress bar (tqdm).
    """
    fmt = str(format).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown audio format {format!r}; valid: {', '.join(FORMATS)}")
    if duration <= 0 or duration > 20:
        raise ConfigError(f"duration must be in (0, 20] seconds, got {duration}")
    wanted = parse_concepts(concepts)
    progs = (
        None
        if programs is None
        else tuple(dict.fromkeys(theory.parse_program(p) for p in programs))
    )
    if progs is not None and not progs:
        raise ConfigError("--programs is empty")
    root_pcs = None if roots is None else tuple(sorted({theory.pitch_class(r) for r in roots}))
    octs = None if octaves is None else tuple(sorted({_octave(o) for o in octaves}))
    sf_path = find_soundfont(soundfont)
    options = {
        "concepts": {k: (list(v) if v is not None else None) for k, v in wanted.items()},
        "programs": list(progs) if progs is not None else None,
        "roots": [theory.pitch_class_name(r) for r in root_pcs] if root_pcs is not None else None,
        "octaves": list(octs) if octs is not None else None,
        "limit_per_class": limit_per_class,
        "seed": int(seed),
        "sample_rate": int(sample_rate),
        "channels": int(channels),
        "format": fmt,
        "duration": float(duration),
        "soundfont": sf_path.name,
    }
    render_opts = RenderOptions(int(sample_rate), int(channels), float(duration))
    Renderer(sf_path, render_opts)  # fail early on bad render options or an unreadable soundfont

    clips: list[ClipSpec] = []
    for name, labels in wanted.items():
        concept = CONCEPTS[name]
        if octs is not None and not concept.uses_octaves:
            log.info("--octaves does not apply to %s; ignored", name)
        if progs is not None and not concept.uses_programs:
            log.info("%s uses its own click sounds; --programs ignored", name)
        if root_pcs is not None and not concept.uses_roots:
            log.info("%s has no root; --roots ignored", name)
        sel = Selection(
            programs=progs,
            roots=root_pcs if concept.uses_roots else None,
            octaves=octs if concept.uses_octaves else None,
            labels=labels,
            limit_per_class=limit_per_class,
            seed=int(seed),
        )
        chosen = clips_for(name, sel, duration=float(duration))
        if not chosen:
            log.warning("%s: the selection matches no clip", name)
        clips.extend(chosen)

    root = Path(out).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            (root / name).mkdir(exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create dataset folder {root}: {exc.strerror or exc}") from exc
    runs = _check_compatible(root, options)
    if not runs or runs[-1] != options:
        runs.append(options)
    done = _read_journal(root, fmt)
    todo = [c for c in clips if f"{c.concept}/{c.key}" not in done]
    _warn_if_short_of_space(root, len(todo), render_opts, fmt)
    log.info(
        "%s: %d clips selected, %d already done, %d to render",
        root,
        len(clips),
        len(clips) - len(todo),
        len(todo),
    )
    try:
        _remove_partials(root)
        write_json_atomic(root / META_JSON, _meta(options, runs, done, complete=False))
        _run(root, todo, done, sf_path, render_opts, fmt, workers, progress)
    except OSError as exc:
        saved = _finish(root, options, runs, done, complete=False, quiet=True)
        n_ok = sum(r["status"] == "ok" for r in done.values())
        kept = (
            f"in {MANIFEST_CSV}" if saved else f"in {JOURNAL} ({MANIFEST_CSV} is rebuilt on resume)"
        )
        raise DatasetError(
            f"cannot write to {root}: {exc.strerror or exc}"
            f"{' (disk full)' if exc.errno == errno.ENOSPC else ''}; "
            f"{n_ok} finished clips are kept {kept}; "
            "fix it and run the same command again to resume"
        ) from exc
    except BaseException:
        _finish(root, options, runs, done, complete=False, quiet=True)
        raise
    _finish(root, options, runs, done, complete=True)
    return load_dataset(root)


# ----------------------------------------------------------------------------- execution

_WORKER: dict[str, Any] = {}


def _init_worker(
    root: str, sf_path: str, opts: RenderOptions, fmt: str, child: bool = False
) -> None:
    if child:  # Ctrl-C is handled by the parent, which stops the pool and saves the manifest
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["root"] = Path(root)
    _WORKER["renderer"] = Renderer(sf_path, opts)
    _WORKER["fmt"] = fmt


def _render_one(clip: ClipSpec) -> dict[str, Any]:
    """Render, test for silence and (when audible) write one clip; returns its journal record."""
    import soundfile as sf

    renderer: Renderer = _WORKER["renderer"]
    fmt = _WORKER["fmt"]
    audio = renderer.render(clip)
    level = peak_db(audio)
    rel = f"{clip.concept}/{clip.key}.{fmt}"
    status = "silent" if level < SILENCE_DB else "ok"
    if status == "ok":
        # encode in memory, then write with plain file I/O: a full disk or a read-only folder
        # surfaces as an OSError with its errno (libsndfile would only say "System error")
        buf = io.BytesIO()
        container, subtype = FORMATS[fmt]
        sf.write(buf, audio, renderer.options.sample_rate, format=container, subtype=subtype)
        write_bytes_atomic(_WORKER["root"] / rel, buf.getvalue())
    opts = renderer.options
    row = {"path": rel, **clip.row()}
    row.update(duration=opts.duration, sample_rate=opts.sample_rate)
    return {
        "id": f"{clip.concept}/{clip.key}",
        "index": clip.index,
        "status": status,
        "peak_db": round(level, 2) if np.isfinite(level) else None,
        "row": row,
    }


def _run(
    root: Path,
    todo: list[ClipSpec],
    done: dict[str, dict[str, Any]],
    sf_path: Path,
    opts: RenderOptions,
    fmt: str,
    workers: int | None,
    progress: bool,
) -> None:
    if not todo:
        return
    n_workers = max(1, int(workers) if workers else _cpu_count())
    n_workers = min(n_workers, max(1, len(todo) // 8))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="clip", desc="synth", smoothing=0.05)
    journal = open(root / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 - closed below
    last_manifest = time.monotonic()
    pool = None
    stop = _StopFlag()
    try:
        init = (str(root), str(sf_path), opts, fmt)
        if n_workers == 1:
            _init_worker(*init)
            results: Iterable[dict[str, Any]] = map(_render_one, todo)
        else:
            # fork (Linux) starts instantly and needs no `if __name__ == "__main__"` guard in the
            # caller's script; the workers use no threads of their own (no torch, no OpenMP).
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            pool = ctx.Pool(n_workers, initializer=_init_worker, initargs=(*init, True))
            chunk = 4  # small: a failing worker loses at most a few finished clips
            results = pool.imap_unordered(_render_one, todo, chunksize=chunk)
        for record in results:
            journal.write(json.dumps(record) + "\n")
            journal.flush()
            done[record["id"]] = record
            if bar is not None:
                bar.update(1)
            if time.monotonic() - last_manifest > MANIFEST_EVERY_S:
                _write_manifest(root, done)
                last_manifest = time.monotonic()
            if stop.requested:
                raise KeyboardInterrupt
        if pool is not None:
            pool.close()
            pool.join()
            pool = None
    finally:
        stop.restore()
        if pool is not None:
            pool.terminate()
            pool.join()
        journal.close()
        if bar is not None:
            bar.close()


class _StopFlag:
    """Turns the first Ctrl-C into a flag checked between clips (a second one interrupts at once).

    An asynchronous KeyboardInterrupt inside `Pool.imap_unordered` can leave the pool's locks
    held so that `terminate()` hangs; stopping between results avoids that.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupted: finishing the clip in flight, then saving the manifest")

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


# ----------------------------------------------------------------------------- bookkeeping


def _warn_if_short_of_space(root: Path, n: int, opts: RenderOptions, fmt: str) -> None:
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


def _cpu_count() -> int:
    """Cores this process may use (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _octave(value: int | str) -> int:
    try:
        o = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"octave must be an integer 0..8, got {value!r}") from None
    if not 0 <= o <= 8:
        raise ConfigError(f"octave must be 0..8 (SynTheory: midi // 12), got {o}")
    return o


def _check_compatible(root: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
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
    diff = [k for k in FIXED_OPTIONS if k in old and old[k] != options[k]]
    if diff:
        detail = ", ".join(f"{k}={old[k]!r} (now {options[k]!r})" for k in diff)
        raise ConfigError(
            f"{root} was made with {detail}; use the same options to resume or add clips, "
            "or choose another --out"
        )
    return list(meta.get("runs", [old]))


def _remove_partials(root: Path) -> None:
    for part in root.rglob(".*.part"):
        part.unlink(missing_ok=True)


def _read_journal(root: Path, fmt: str) -> dict[str, dict[str, Any]]:
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


def _write_manifest(
    root: Path, done: Mapping[str, dict[str, Any]], seed: int | None = None
) -> None:
    if seed is None:
        try:
            seed = json.loads((root / META_JSON).read_text())["options"]["seed"]
        except (OSError, ValueError, KeyError):
            seed = None
    write_csv_atomic(_manifest_rows(done, seed), root / MANIFEST_CSV)


def _meta(
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


def _finish(
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
        _write_manifest(root, done, options["seed"])
        write_json_atomic(root / META_JSON, _meta(options, runs, done, complete=complete))
        return True
    except OSError as exc:
        if not quiet:
            raise DatasetError(
                f"cannot write the manifest in {root}: {exc.strerror or exc}"
            ) from exc
        log.error("could not update manifest.csv or dataset.json in %s: %s", root, exc)
        return False
