"""Render concepts into a dataset folder: parallel, deterministic, resumable.

How a run stays safe to interrupt: every audio file is written under a temporary name and renamed
when complete; each finished clip (rendered or found silent) is appended to ``.progress.jsonl``
by the main process only; ``manifest.csv`` is rebuilt from that journal (periodically, at the end,
and when a run stops on an error or Ctrl-C). A second run with the same options skips everything
already in the journal, so nothing is rendered twice and no half-written file survives (the
bookkeeping is :mod:`musicrfm.synth.journal`).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import MIN_AUDIO_SECONDS, write_bytes_atomic, write_json_atomic
from musicrfm.synth.concepts import CONCEPTS, ClipSpec, Selection, clips_for, parse_concepts
from musicrfm.synth.dataset import MANIFEST_CSV, META_JSON, SynthDataset, load_dataset
from musicrfm.synth.journal import (
    JOURNAL,
    check_compatible,
    dataset_meta,
    finish,
    read_journal,
    remove_partials,
    warn_if_short_of_space,
    write_manifest,
)
from musicrfm.synth.render import SILENCE_DB, Renderer, RenderOptions, find_soundfont, peak_db

log = logging.getLogger(__name__)

FORMATS = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}
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
    if not MIN_AUDIO_SECONDS <= duration <= 20:  # shorter: extract and the detectors refuse it
        raise ConfigError(
            f"duration must be in [{MIN_AUDIO_SECONDS:g}, 20] seconds (shorter clips are refused "
            f"by extract and the detectors), got {duration}"
        )
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1 (or None: all cores), got {workers}")
    wanted = parse_concepts(concepts)
    sel = _selection(programs, roots, octaves, limit_per_class, int(seed))
    sf_path = find_soundfont(soundfont)
    options = {
        "concepts": {k: (list(v) if v is not None else None) for k, v in wanted.items()},
        "programs": list(sel.programs) if sel.programs is not None else None,
        "roots": [theory.pitch_class_name(r) for r in sel.roots] if sel.roots is not None else None,
        "octaves": list(sel.octaves) if sel.octaves is not None else None,
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
    clips = _select(wanted, sel, float(duration))
    root = Path(out).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in wanted:
            (root / name).mkdir(exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create dataset folder {root}: {exc.strerror or exc}") from exc
    _render_all(root, options, clips, sf_path, render_opts, workers, progress)
    return load_dataset(root)


def render_specs(
    specs: Sequence[ClipSpec],
    out: str | os.PathLike[str],
    *,
    name: str,
    sample_rate: int = 32000,
    duration: float = 4.0,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> SynthDataset:
    """Render clips built elsewhere (e.g. :func:`musicrfm.synth.strikes.tempo_specs`) into a
    dataset folder, with :func:`generate_dataset`'s journal, resume and manifest. ``name`` and
    ``seed`` describe how the specs were made: a folder made from other specs is refused."""
    concepts = sorted({s.concept for s in specs})
    if not specs:
        raise ConfigError("no clips to render")
    sf_path = find_soundfont(None)
    options = {
        "concepts": {c: None for c in concepts},
        "specs": name,
        "programs": sorted({int(s.program) for s in specs if s.program is not None}),
        "roots": None,
        "octaves": None,
        "limit_per_class": None,
        "seed": int(seed),
        "sample_rate": int(sample_rate),
        "channels": 1,
        "format": "flac",
        "duration": float(duration),
        "soundfont": sf_path.name,
    }
    root = Path(out).expanduser()
    try:
        for concept in concepts:
            (root / concept).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create dataset folder {root}: {exc.strerror or exc}") from exc
    render_opts = RenderOptions(int(sample_rate), 1, float(duration))
    _render_all(root, options, list(specs), sf_path, render_opts, workers, progress)
    return load_dataset(root)


def _selection(
    programs: Sequence[int | str] | None,
    roots: Sequence[int | str] | None,
    octaves: Sequence[int] | None,
    limit_per_class: int | None,
    seed: int,
) -> Selection:
    """The options as a :class:`Selection` (programs deduplicated in order, roots and octaves
    sorted); labels are chosen per concept."""
    progs = (
        None
        if programs is None
        else tuple(dict.fromkeys(theory.parse_program(p) for p in programs))
    )
    if progs is not None and not progs:
        raise ConfigError("--programs is empty")
    root_pcs = None if roots is None else tuple(sorted({theory.pitch_class(r) for r in roots}))
    octs = None if octaves is None else tuple(sorted({_octave(o) for o in octaves}))
    return Selection(
        programs=progs, roots=root_pcs, octaves=octs, limit_per_class=limit_per_class, seed=seed
    )


def _select(
    wanted: Mapping[str, tuple[str, ...] | None], sel: Selection, duration: float
) -> list[ClipSpec]:
    """Every concept's selected clips, in the order given; options a concept does not use are
    logged and dropped for it."""
    clips: list[ClipSpec] = []
    for name, labels in wanted.items():
        concept = CONCEPTS[name]
        if sel.octaves is not None and not concept.uses_octaves:
            log.info("--octaves does not apply to %s; ignored", name)
        if sel.programs is not None and not concept.uses_programs:
            log.info("%s uses its own click sounds; --programs ignored", name)
        if sel.roots is not None and not concept.uses_roots:
            log.info("%s has no root; --roots ignored", name)
        chosen = clips_for(
            name,
            Selection(
                programs=sel.programs,
                roots=sel.roots if concept.uses_roots else None,
                octaves=sel.octaves if concept.uses_octaves else None,
                labels=labels,
                limit_per_class=sel.limit_per_class,
                seed=sel.seed,
            ),
            duration=duration,
        )
        if not chosen:
            log.warning("%s: the selection matches no clip", name)
        clips.extend(chosen)
    return clips


def _render_all(
    root: Path,
    options: dict[str, Any],
    clips: list[ClipSpec],
    sf_path: Path,
    render_opts: RenderOptions,
    workers: int | None,
    progress: bool,
) -> None:
    """Render the clips not in the journal yet; the manifest is saved whatever happens."""
    fmt = options["format"]
    runs = check_compatible(root, options)
    if not runs or runs[-1] != options:
        runs.append(options)
    done = read_journal(root, fmt)
    todo = [c for c in clips if f"{c.concept}/{c.key}" not in done]
    warn_if_short_of_space(root, len(todo), render_opts, fmt)
    log.info(
        "%s: %d clips selected, %d already done, %d to render",
        root,
        len(clips),
        len(clips) - len(todo),
        len(todo),
    )
    try:
        remove_partials(root)
        write_json_atomic(root / META_JSON, dataset_meta(options, runs, done, complete=False))
        _run(root, todo, done, sf_path, render_opts, fmt, workers, progress)
    except OSError as exc:
        saved = finish(root, options, runs, done, complete=False, quiet=True)
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
        finish(root, options, runs, done, complete=False, quiet=True)
        raise
    finish(root, options, runs, done, complete=True)


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
                write_manifest(root, done)
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


# ----------------------------------------------------------------------------- options


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
