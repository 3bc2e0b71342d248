"""`musicrfm mini headline`: learn the note directions, run both phases, judge every clip and
write the report folder."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from musicrfm.experiments.demo.config import default_work_dir, note_name
from musicrfm.experiments.demo.report import json_default
from musicrfm.experiments.demo.stages import (
    auto_coefs,
    detect_notes,
    generate_all,
    instrument_adherence,
    learn_note_directions,
    sampling_options,
)
from musicrfm.experiments.headline.config import (
    HeadlineConfig,
    choose_coefs,
    control_jobs,
    direction_jobs,
)
from musicrfm.experiments.headline.figures import plot_headline, plot_tradeoff
from musicrfm.experiments.headline.tables import (
    TABLE_COLUMNS,
    headline_markdown,
    headline_table,
    tradeoff_table,
)
from musicrfm.theory import PITCH_CLASSES

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def run_headline(
    *,
    model: Any = "mini",
    out: str | os.PathLike[str] = "headline-report",
    work: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: HeadlineConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    command: str | None = None,
    directions: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Measure the headline and write ``headline.json``, ``headline.md``, ``results.csv`` and
    ``headline.png`` into ``out``; returns the JSON record (settings, per-target rows, verdict).

    ``model``: anything :func:`musicrfm.models.load_model` accepts (default: the bundled model).
    ``directions``: steer with these saved directions (e.g. a model's bundled ones) instead of
    training them; η0 is then relative to their recorded activation norm, as `generate --coef
    0.3x` is, so the headline measures exactly the files a user steers with.
    """
    from musicrfm.models import load_model

    cfg = config or HeadlineConfig()
    if cfg.concept == "notes":
        cfg = replace(cfg, targets=tuple(note_name(t) for t in cfg.targets or PITCH_CLASSES))
    cfg.validate()
    out, work_dir = Path(out), Path(work) if work is not None else default_work_dir()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = load_model(model, device=device)
    timings["load"] = time.perf_counter() - t
    check_judge(cfg, adapter)
    if directions is not None:
        steered = load_headline_directions(directions, cfg, adapter)
        dataset, scale = None, steered.require_activation_norm(directions)
        coefs = tuple(round(r * scale, 3) for r in cfg.relative_coefs)
    else:
        dataset, features, trained = learn_note_directions(
            adapter, cfg.data, work_dir, seed=seed, device=device, progress=progress,
            timings=timings, concept=cfg.concept, interval_mode=cfg.interval_mode,
        )  # fmt: skip
        steered = trained.directions
        coefs, scale = auto_coefs(features, replace(cfg.data, relative_coefs=cfg.relative_coefs))
    cfg = _with_targets(cfg, steered)
    out.mkdir(parents=True, exist_ok=True)
    steered.save(out / "directions" / cfg.concept)

    t = time.perf_counter()
    frame, records, controls = _generate(adapter, steered, cfg, coefs, seed, out, progress)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    judged = detect_notes(controls, progress, cfg.concept, cfg.detect_options())[0]
    frame = pd.concat([frame, judged], ignore_index=True)
    inst: dict[str, Any] = {}
    if cfg.data.instrument_check:
        frame, inst = instrument_adherence(
            dataset, frame, records, seed, adapter=adapter, reference=cfg.instrument_reference,
            judge_folders=judge_folders(adapter, work_dir, cfg.judge), progress=progress,
        )  # fmt: skip
    table, overall = headline_table(frame, cfg, seed=seed)
    trade = tradeoff_table(frame, seed=seed, concept=cfg.concept)
    timings["evaluate"] = time.perf_counter() - t

    record = {
        "overall": overall,
        "per_target": table.to_dict(orient="records"),
        "tradeoff": trade.to_dict(orient="records"),
        "settings": {
            "model_id": str(adapter.model_id),
            "coefs": list(coefs),
            "relative_coefs": list(cfg.relative_coefs),
            "activation_scale": scale,
            "sampling": sampling_options(adapter),
            "instrument_classifier": inst,
            "seed": seed,
            "directions": None if directions is None else str(directions),
            # intervals: None is the original reading (melodic detector, mixed strike set)
            **(
                {"interval_mode": cfg.interval_mode, "detect_options": cfg.detect_options()}
                if cfg.concept == "intervals"
                else {}
            ),
            "config": json.loads(json.dumps(asdict(cfg), default=list)),
            "command": command or f"musicrfm mini headline --seed {seed}",
        },
        "timings": timings,
    }
    record = json.loads(json.dumps(record, default=json_default))  # plain JSON types
    _write_report(record, frame, table, trade, cfg, out)
    return record


def _generate(
    adapter: ModelAdapter,
    directions: Any,
    cfg: HeadlineConfig,
    coefs: tuple[float, ...],
    seed: int,
    out: Path,
    progress: bool,
) -> tuple[pd.DataFrame, list[Any], list[Any]]:
    """Phase 1 (baseline + every direction at every η0, labelled to choose each target's η0),
    then phase 2 (the controls at those η0). Returns phase 1's labelled clips, every record
    and the controls' records (not labelled yet)."""
    import torch

    torch.manual_seed(seed)
    jobs = direction_jobs(directions, cfg, coefs, seed)
    records = generate_all(adapter, jobs, cfg.data, out / "audio", progress, cfg.concept)
    frame, _ = detect_notes(records, progress, cfg.concept, cfg.detect_options())
    chosen = choose_coefs(frame, cfg)
    jobs = control_jobs(directions, cfg, chosen, seed)
    controls = generate_all(adapter, jobs, cfg.data, out / "audio", progress, cfg.concept)
    return frame, records + controls, controls


def load_headline_directions(
    path: str | os.PathLike[str], cfg: HeadlineConfig, adapter: ModelAdapter | None = None
) -> Any:
    """Saved directions for a ``cfg.concept`` headline: a ConfigError unless they are that
    concept's classes with a recorded activation norm (and, given ``adapter``, of its hidden
    size and layers) -- checked before any clip is generated."""
    from musicrfm.errors import ConfigError
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.compile import check_compatible

    cd = ConceptDirections.load(path)
    if cd.concept != cfg.concept or cd.is_regression:
        raise ConfigError(
            f"{path} holds {cd.concept!r} directions (classes {', '.join(cd.classes[:6])}), not "
            f"{cfg.concept!r} classes: pass --concept {cd.concept} or {cfg.concept} directions"
        )
    if cfg.data.instrument_check and not cfg.instrument_reference:
        raise ConfigError("--note-set-classifier is fitted on the training set, which saved "
                          "directions skip: judge adherence with the reference judge")  # fmt: skip
    cd.require_activation_norm(path)
    if adapter is not None:
        check_compatible(cd, adapter, strict=False)
    return cd


def check_judge(cfg: HeadlineConfig, adapter: ModelAdapter) -> None:
    """A ``cfg.judge`` folder must hold a judge fitted for this model's codec: a ConfigError
    before any clip is generated, not a refit into the user's folder after."""
    from musicrfm.errors import ConfigError
    from musicrfm.evaluation.judges import require_saved_judge

    if cfg.judge is None or not cfg.data.instrument_check:
        return
    if not cfg.instrument_reference:
        raise ConfigError("--judge names a reference judge: drop --note-set-classifier")
    require_saved_judge(adapter, cfg.judge)


def _with_targets(cfg: HeadlineConfig, directions: Any) -> HeadlineConfig:
    """``cfg`` with its targets as the directions spell them (every class when None); a
    target the directions do not have lists the valid ones."""
    if cfg.targets is None:
        return replace(cfg, targets=tuple(directions.classes))
    return replace(
        cfg, targets=tuple(directions.classes[directions.class_index(t)] for t in cfg.targets)
    )


def _write_report(
    record: dict[str, Any],
    frame: pd.DataFrame,
    table: pd.DataFrame,
    trade: pd.DataFrame,
    cfg: HeadlineConfig,
    out: Path,
) -> None:
    """``headline.json``, ``headline.md``, ``results.csv`` and the two figures."""
    from musicrfm.experiments.report.tables import to_markdown

    (out / "headline.json").write_text(json.dumps(record, indent=2))
    shown = [c for c in TABLE_COLUMNS if c in table]
    (out / "headline.md").write_text(
        headline_markdown(record, to_markdown(table[shown]), to_markdown(trade))
    )
    per_clip = frame.drop(columns=["probs"])
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    per_clip.to_csv(out / "results.csv", index=False)
    plot_headline(table, out / "headline.png", cfg.accuracy_gate, cfg.concept)
    plot_tradeoff(trade, out / "tradeoff.png", cfg.accuracy_gate, cfg.adherence_tolerance,
                  cfg.concept)  # fmt: skip


def judge_folders(adapter: ModelAdapter, work_dir: Path, judge: str | None = None) -> list[Path]:
    """Where the reference judge is looked for: ``judge`` alone when given (checked by
    :func:`check_judge`), else a work cache per codec (where a new fit is saved), then the
    model's own folder (``musicrfm mini judge`` puts one there)."""
    from musicrfm.evaluation.judges import codec_fingerprint, model_folder

    if judge is not None:
        return [Path(judge)]
    folder = model_folder(adapter)
    cache = work_dir / "judges" / codec_fingerprint(adapter)
    return [cache, *([folder] if folder is not None else [])]
