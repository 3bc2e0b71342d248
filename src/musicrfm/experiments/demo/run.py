"""`run_demo`: the seven stages in order (see :mod:`musicrfm.experiments.demo`)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import (
    CONTROL_LABELS,
    DemoConfig,
    DemoResult,
    default_work_dir,
    log_stage,
    note_name,
)
from musicrfm.experiments.demo.part import parse_part
from musicrfm.experiments.demo.report import json_default, write_outputs, write_report_html
from musicrfm.experiments.demo.stages import (
    auto_coefs,
    crossfade_summary,
    demo_jobs,
    detect_notes,
    generate_all,
    judge_adherence,
    learn_note_directions,
    sampling_options,
    summarize,
)
from musicrfm.theory import PITCH_CLASSES

if TYPE_CHECKING:
    from musicrfm.models import ModelAdapter

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- main
def run_demo(
    *,
    model: str | os.PathLike[str] | ModelAdapter | None = "mini",
    out: str | os.PathLike[str] = "demo-report",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    target: str | None = None,
    quick: bool = False,
    config: DemoConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    workers: int = 1,
) -> DemoResult:
    """Run the demo and write the report; see the module docstring for the stages.

    Parameters
    ----------
    model: anything :func:`musicrfm.models.load_model` accepts: "mini" (bundled, default), a hub
        id, a local folder, ``random:tiny``, or an adapter already loaded.
    out: report folder (created; files in it are overwritten).
    work: cache for the synthetic dataset and the features (default :func:`default_work_dir`).
    seed: seeds the dataset sample, probe splits, controls and generation.
    target: the note to steer toward (default ``config.target``, "G").
    quick: the reduced CI run (:meth:`DemoConfig.quick`); ignored when ``config`` is given.
    config: full control over sizes, prompts, η0, controls.
    workers: 2 runs the testbed's chord part and pair in a second process while this one runs
        the note part and the beat (same results, about a third less wall time on 2 cores); 1 runs
        every stage here, in order.
    """

    from musicrfm.models import load_model

    cfg = config or (DemoConfig.quick() if quick else DemoConfig())
    if target is not None:
        cfg = replace(cfg, target=target)
    tgt, b = checked_config(cfg)
    out = Path(out)
    work_dir = Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    background = _start_testbed(cfg, work_dir, out, seed, device) if workers > 1 else None

    t = log_stage(1, f"loading model {model if isinstance(model, str) else type(model).__name__}")
    try:
        adapter = load_model(model, device=device)
        timings["load"] = time.perf_counter() - t
        note = _note_part(adapter, cfg, work_dir, out, seed, device, progress, timings, tgt, b)
        beat = _beat_part(cfg, out, seed, device, progress, adapter)  # while the testbed runs
        try:
            if background is not None:
                part, pair = background.result()
        except WorkerDied as exc:
            log.warning("the second process died (%s); running the testbed parts here", exc)
            background.close()
            background = None
        if background is None:  # one process, or the second one died
            part, pair = _testbed_parts(cfg, work_dir, out, seed, device, progress)
    finally:
        if background is not None:
            background.close()
    dataset, trained, coefs, scale = note.dataset, note.trained, note.coefs, note.scale
    frame, summary, comp, xf = note.frame, note.summary, note.comparisons, note.crossfade
    inst_info = note.instrument
    if part is not None:
        timings[part["concept"]] = sum(part["timings"].values())
    if pair is not None:
        timings["pair"] = sum(pair["timings"].values())
    if beat is not None:
        timings["beat"] = sum(beat["timings"].values())

    t = log_stage(7, f"writing the report to {out}")
    files = write_outputs(out, frame, summary, comp, xf, tgt)
    settings = _settings(adapter, cfg, dataset, trained, coefs, scale, tgt, b, seed, inst_info)
    settings["part"] = part
    settings["pair"] = pair
    settings["beat"] = beat
    settings["workers"] = 2 if background is not None else 1
    settings["quick"] = bool(quick and config is None)
    settings["command"] = command or (
        f"musicrfm demo --seed {seed} --target {tgt}" + (" --quick" if quick else "")
    )
    html_path = _write_pages(out, frame, summary, comp, xf, settings, timings, files, t, started)
    log.info("demo finished in %.0f s: %s", settings["wall_seconds"], html_path)
    return DemoResult(out, html_path, summary, comp, frame, xf, settings, timings, files)


@dataclass
class _NotePart:
    """What stages 2-6 hand the report."""

    dataset: Any
    trained: Any
    coefs: list[float]
    scale: float
    frame: pd.DataFrame
    instrument: dict[str, Any]
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    crossfade: dict[str, Any]


def _note_part(
    adapter: ModelAdapter,
    cfg: DemoConfig,
    work_dir: Path,
    out: Path,
    seed: int,
    device: str,
    progress: bool,
    timings: dict[str, float],
    tgt: str,
    b: str,
) -> _NotePart:
    """Stages 2-6 on the demo's model: learn the note directions, generate, judge."""
    import torch

    dataset, features, trained = learn_note_directions(
        adapter, cfg, work_dir, seed=seed, device=device, progress=progress, timings=timings
    )
    cd = trained.directions
    coefs, scale = auto_coefs(features, cfg)
    out.mkdir(parents=True, exist_ok=True)
    cd.save(out / "directions" / "notes")

    t = log_stage(5, "generating unsteered, steered, control and crossfade clips")
    jobs = demo_jobs(cd, cfg, coefs, seed, tgt, b)
    torch.manual_seed(seed)
    records = generate_all(adapter, jobs, cfg, out / "audio", progress)
    timings["generate"] = time.perf_counter() - t

    t = log_stage(6, f"evaluating {len(records)} clips with the independent note detector")
    frame, extra = detect_notes(records, progress)
    xf = crossfade_summary(extra["detections"], tgt, b, cfg.seconds)
    inst_info: dict[str, Any] = {}
    if cfg.instrument_check:
        frame, inst_info = judge_adherence(adapter, dataset, frame, records, seed)
    summary, comp = summarize(frame, seed)
    timings["evaluate"] = time.perf_counter() - t
    return _NotePart(dataset, trained, coefs, scale, frame, inst_info, summary, comp, xf)


def _testbed_parts(
    cfg: DemoConfig, work: Path, out: Path, seed: int, device: str, progress: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The chord part and the pair (the pair steers with the part's chord directions)."""
    part = _concept_part(cfg, work, out, seed, device, progress)
    return part, _pair_part(cfg, part, work, out, seed, device, progress)


def _testbed_worker(
    cfg: DemoConfig, work: Path, out: Path, seed: int, device: str, threads: int, level: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """`_testbed_parts` in the second process: same torch threads, logs marked, no bars."""
    import torch

    logging.basicConfig(level=level, format="%(levelname)s [testbed] %(name)s: %(message)s")
    torch.set_num_threads(threads)
    return _testbed_parts(cfg, work, out, seed, device, progress=False)


class WorkerDied(RuntimeError):
    """The second process ended without a result (a crash, or killed)."""


class _Background:
    """``fn(*args)`` running in a spawned process; ``close`` stops it if still running.

    ``env``: variables set for the child only (the spawn copies the environment at start)."""

    def __init__(self, fn: Any, args: tuple[Any, ...], env: dict[str, str] | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})
        try:  # the process starts inside submit, with this environment
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._future = self._pool.submit(fn, *args)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def result(self) -> Any:
        """The value, or the worker's own error; WorkerDied when the process died without one
        (a segfault, the OOM killer)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._future.result()
        except BrokenProcessPool as exc:
            raise WorkerDied(str(exc)) from exc

    def close(self) -> None:
        if not self._future.done():
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start_testbed(
    cfg: DemoConfig, work: Path, out: Path, seed: int, device: str
) -> _Background | None:
    """Start the chord part and pair in a second process, or None when the config has neither."""
    import torch

    if not cfg.part_model and not cfg.pair:
        return None
    level = logging.getLogger().getEffectiveLevel()
    # its own numba cache: two processes compiling librosa's kernels into one cache at once can
    # leave a half-written entry that segfaults the next reader (notes/LEARNINGS.md, session 17)
    env = {} if os.environ.get("NUMBA_CACHE_DIR") else {"NUMBA_CACHE_DIR": str(work / "numba")}
    args = (cfg, work, out, seed, device, torch.get_num_threads(), level)
    return _Background(_testbed_worker, args, env)


def _write_pages(
    out: Path,
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    comp: pd.DataFrame,
    xf: dict[str, Any],
    settings: dict[str, Any],
    timings: dict[str, float],
    files: dict[str, Path],
    started: float,
    run_started: float,
) -> Path:
    """index.html (written twice: the second time with the report stage's own timing) and
    demo.json; their paths are added to ``files``. ``settings["wall_seconds"]``: the whole run
    (less than the stages' sum when the testbed parts ran beside the note part)."""
    figures = {
        k: v for k, v in files.items() if k.startswith(("panel", "conditions", "crossfade", "coef"))
    }
    timings["report"] = 0.0
    settings["wall_seconds"] = time.perf_counter() - run_started
    html_path = write_report_html(out, frame, summary, comp, xf, settings, timings, figures)
    timings["report"] = time.perf_counter() - started
    settings["wall_seconds"] = time.perf_counter() - run_started
    html_path = write_report_html(out, frame, summary, comp, xf, settings, timings, figures)
    files["html"] = html_path
    record = {"settings": settings, "timings": timings, "crossfade": xf,
              "summary": summary.to_dict(orient="records"),
              "controls": comp.to_dict(orient="records")}  # fmt: skip
    (out / "demo.json").write_text(json.dumps(record, indent=2, default=json_default))
    files["json"] = out / "demo.json"
    return html_path


def _concept_part(
    cfg: DemoConfig, work: Path, out: Path, seed: int, device: str, progress: bool
) -> dict[str, Any] | None:
    """The second part (one class of ``cfg.part_concept`` on ``cfg.part_model``), or None (with
    a notice) when the config has none or that model is not in this checkout."""
    from musicrfm.errors import ModelError
    from musicrfm.experiments.demo.part import run_concept_part

    if not cfg.part_model:
        return None
    log_stage(6, f"{cfg.part_concept} part: steering toward {cfg.part_target} on {cfg.part_model}")
    try:
        return run_concept_part(cfg, work, out, seed=seed, device=device, progress=progress)
    except ModelError as exc:
        log.warning("no %s part: %s", cfg.part_concept, exc)
        return None


def _pair_part(
    cfg: DemoConfig,
    part: dict[str, Any] | None,
    work: Path,
    out: Path,
    seed: int,
    device: str,
    progress: bool,
) -> dict[str, Any] | None:
    """The two-concept result (``cfg.pair`` on the testbed; experiments.demo.pair), or None
    (with a notice) when the config has none or its model is not in this checkout."""
    from musicrfm.errors import ModelError
    from musicrfm.experiments.demo.pair import pair_model, part_directions, run_pair_part

    if not cfg.pair:
        return None
    model = pair_model(cfg)
    log_stage(6, f"pair: {cfg.pair} at once on {model} (one plan of two directions)")
    try:
        return run_pair_part(
            cfg, work, out, seed=seed, device=device, progress=progress,
            directions=part_directions(cfg, part, out),
        )  # fmt: skip
    except ModelError as exc:
        log.warning("no pair: %s", exc)
        return None


def _beat_part(
    cfg: DemoConfig, out: Path, seed: int, device: str, progress: bool, adapter: Any = None
) -> dict[str, Any] | None:
    """The exact tempo (``cfg.beat_bpms`` pulsed on the testbed; experiments.demo.beat), or
    None (with a notice) when the config has none, or its model or the model's bundled onset
    directions are not in this checkout. ``adapter``: the run's model, reused when it is the
    beat's."""
    from musicrfm.errors import ModelError
    from musicrfm.experiments.demo.beat import beat_model, run_beat_part

    if not cfg.beat_bpms:
        return None
    model = beat_model(cfg)
    same = adapter is not None and str(getattr(adapter, "model_id", "")) == model
    bpms = ", ".join(f"{b:g}" for b in cfg.beat_bpms)
    log_stage(6, f"beat: onset directions pulsed at {bpms} BPM on {model}")
    try:
        return run_beat_part(
            cfg, out, seed=seed, device=device, progress=progress,
            adapter=adapter if same else None,
        )  # fmt: skip
    except ModelError as exc:
        log.warning("no beat: %s", exc)
        return None


def checked_config(cfg: DemoConfig) -> tuple[str, str]:
    """The target note and the crossfade's second note, after checking the settings (before
    any expensive work)."""
    tgt = note_name(cfg.target)
    tritone = PITCH_CLASSES[(PITCH_CLASSES.index(tgt) + 6) % 12]
    b = note_name(cfg.crossfade_to) if cfg.crossfade_to else tritone
    if b == tgt:
        b = tritone
        log.warning("the crossfade needs two different notes; using %s -> %s", tgt, b)
    unknown = [k for k in cfg.controls if k not in CONTROL_LABELS]
    if unknown:
        raise ConfigError(f"unknown control(s) {unknown}; valid: {', '.join(CONTROL_LABELS)}")
    if cfg.part_model:
        parse_part(f"{cfg.part_concept}:{cfg.part_target}")
        if cfg.part_concept == "chords" and cfg.progression:
            from musicrfm.steering.progressions import ChordProgression

            ChordProgression(cfg.progression)  # a chord it cannot spell says so here
    if cfg.pair:
        from musicrfm.experiments.demo.pair import pair_config

        pair_config(cfg)  # a bad pair, coef or control says so here
    if cfg.beat_bpms:
        from musicrfm.experiments.demo.beat import check_beat

        check_beat(cfg)  # a bad tempo, coef or control says so here
    if cfg.clips_per_class < 6:
        raise ConfigError(
            f"clips_per_class must be at least 6 (train/val/test splits), got {cfg.clips_per_class}"
        )
    if not cfg.prompts or cfg.seeds_per_prompt < 1:
        raise ConfigError("the demo needs at least one prompt and one seed per prompt")
    return tgt, b


def _settings(
    adapter: ModelAdapter,
    cfg: DemoConfig,
    dataset: Any,
    trained: Any,
    coefs: Sequence[float],
    scale: float,
    tgt: str,
    b: str,
    seed: int,
    inst_info: dict[str, Any],
) -> dict[str, Any]:
    """What the report and demo.json record about the run (the caller adds quick and command)."""
    cd = trained.directions
    mc = trained.multiclass_scores
    return {
        "model_id": str(adapter.model_id),
        "num_layers": int(adapter.num_layers),
        "hidden_size": int(adapter.hidden_size),
        "target": tgt,
        "crossfade_to": b,
        "coefs": list(coefs),
        "relative_coefs": list(cfg.relative_coefs) if cfg.coefs is None else None,
        "activation_scale": scale,
        "train_clips": len(dataset),
        "midi_range": f"{12 * min(cfg.octaves)}-{12 * max(cfg.octaves) + 11}",
        "programs": sorted(int(p) for p in dataset.rows["program"].unique()),
        "target_auc_per_layer": cd.scores[:, cd.class_index(tgt)].tolist(),
        "multiclass_val_accuracy": max(
            (v["val_accuracy"] for v in mc.values()), default=float("nan")
        ),
        "prompts": [p for p in cfg.prompts],
        "sampling": sampling_options(adapter),
        "seed": seed,
        "quick": False,
        "command": "",
        "instrument": inst_info,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k
            in (
                "clips_per_class",
                "seeds_per_prompt",
                "seconds",
                "budget",
                "controls",
                "examples_per_condition",
            )
        },
    }
