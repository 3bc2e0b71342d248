"""The demo's two-concept result: a note and a chord quality steered at once on the testbed.

Each part's directions are trained separately (note and chord-quality directions from strike
clips, the testbed's own kind of clip), written as one plan of two directions, and measured
exactly as ``musicrfm mini pairs`` measures a pair (:func:`musicrfm.experiments.pairs.run_pairs`,
which this calls: the same jobs, detectors and scoring): joint success (the note detector hears
the note *and* the chord detector hears the quality in the same clip), each direction alone,
unsteered and the controls of the joint plan (both directions replaced at equal norm), k/n with
Wilson 95% intervals, on the same prompts and seeds in every condition. The full record, its
Markdown tables, figure, plan file and audio are written to ``<out>/pair/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from musicrfm.experiments.demo.config import DemoConfig

log = logging.getLogger(__name__)

PAIR_FOLDER = "pair"
FIRST, SECOND = "notes", "chords"  # the pair's two concepts (a note, a chord quality)


def pair_model(cfg: DemoConfig) -> str:
    """The model the pair runs on: ``cfg.pair_model``, else the part's, else the beat testbed."""
    from musicrfm.experiments.demo.part import PART_MODEL

    return str(cfg.pair_model or cfg.part_model or PART_MODEL)


def pair_config(cfg: DemoConfig) -> Any:
    """The :class:`~musicrfm.experiments.pairs.config.PairsConfig` of the demo's pair, checked
    (a one-line ConfigError for a bad ``cfg.pair``, before any model loads); targets spelled as
    the detectors spell them."""
    from musicrfm.errors import ConfigError
    from musicrfm.experiments.demo.part import part_train_set
    from musicrfm.experiments.pairs.config import PairsConfig, PartSpec, parse_pair

    if not cfg.pair:
        raise ConfigError("the demo has no pair (pair is None)")
    if len(cfg.pair_relative_coefs) != 2:
        raise ConfigError(f"pair_relative_coefs wants two numbers, got {cfg.pair_relative_coefs}")
    r1, r2 = (float(r) for r in cfg.pair_relative_coefs)
    data = replace(
        cfg, train_set=part_train_set(cfg, FIRST), crossfade_clips=0, controls=(),
        part_model=None, pair=None,
    )  # fmt: skip
    pcfg = PairsConfig(
        first=PartSpec(FIRST, coef=f"{r1:g}x"), second=PartSpec(SECOND, coef=f"{r2:g}x"),
        pairs=(parse_pair(cfg.pair),), clips=int(cfg.pair_clips),
        controls=tuple(cfg.pair_controls), conflict=None, data=data,
    ).normalized()  # fmt: skip
    pcfg.validate()
    return pcfg


def run_pair_part(
    cfg: DemoConfig,
    work: Path,
    out: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    adapter: Any = None,
    directions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure ``cfg.pair`` on :func:`pair_model` with :func:`~musicrfm.experiments.pairs.
    run_pairs` into ``out/pair`` and return what the demo's report and demo.json show (plain
    types). ``directions``: {concept: ConceptDirections} already trained on that model from the
    same training set (the chord part's quality directions), used instead of training again.
    ``adapter``: the model already loaded."""
    from musicrfm.experiments.pairs.run import run_pairs

    pcfg = pair_config(cfg)
    pair = "+".join(pcfg.pairs[0])
    t = time.perf_counter()
    record = run_pairs(
        model=adapter if adapter is not None else pair_model(cfg), out=out / PAIR_FOLDER,
        work=work, seed=seed, config=pcfg, device=device, progress=progress,
        directions=directions,
        command=f"(the demo's pair: musicrfm demo --pair {pair}; as `musicrfm mini pairs "
        f"--model {pair_model(cfg)} --first notes --second chords --pairs {pair} --first-coef "
        f"{pcfg.first.coef} --second-coef {pcfg.second.coef} --no-conflict --clips "
        f"{pcfg.clips} --train-set {pcfg.data.train_set} --seed {seed}` with the controls "
        f"{', '.join(pcfg.controls) or 'none'} only)",
    )  # fmt: skip
    total = time.perf_counter() - t
    summary = pair_summary(record, total=total, reused=sorted(directions or {}))
    summary["examples"] = pair_examples(out / PAIR_FOLDER, cfg.examples_per_condition)
    return summary


def pair_examples(folder: Path, per_condition: int) -> list[dict[str, Any]]:
    """A few clips of each condition from ``folder/results.csv`` (what ``run_pairs`` wrote):
    prompt, the note and quality heard, the audio path relative to the demo's report folder."""
    import pandas as pd

    path = folder / "results.csv"
    if not path.is_file() or per_condition < 1:
        return []
    frame = pd.read_csv(path)
    out = []
    for cond, g in frame.groupby("condition", sort=False):
        for _, r in g.head(per_condition).iterrows():
            out.append({"condition": str(cond), "prompt": str(r["prompt"]),
                        "note": str(r.get("note", "")), "quality": str(r.get("quality", "")),
                        "audio": f"{folder.name}/{r['audio_path']}"})  # fmt: skip
    return out


def pair_summary(record: dict[str, Any], *, total: float, reused: list[str]) -> dict[str, Any]:
    """The demo's view of a ``run_pairs`` record: its one pair's rows, verdict, controls,
    cross-talk and adherence, the parts' η0, the plan and figure paths (relative to the demo's
    report folder) and the timings; ``record`` keeps what the pairs tables read."""
    p = record["pairs"][0]
    plan = next(iter(record["plans"].values()))
    s = record["settings"]
    config = {k: v for k, v in s["config"].items() if k != "data"}
    timings = dict(record.get("timings", {}))
    timings["report"] = max(0.0, total - sum(timings.values()))
    return {
        "pair": p["pair"],
        "concepts": list(record["concepts"]),
        "model_id": s["model_id"],
        "parts": s["parts"],
        "train_set": s["config"]["data"]["train_set"],
        "clips": int(config["clips"]),
        "rows": p["rows"],
        "verdict": p["verdict"],
        "controls": p["controls"],
        "crosstalk": p["crosstalk"],
        "adherence": p.get("adherence"),
        "adherence_judge": s.get("adherence_judge"),
        "plan": f"{PAIR_FOLDER}/{plan['file']}",
        "validator": plan["validator"],
        "figure": f"{PAIR_FOLDER}/pairs.png",
        "folder": PAIR_FOLDER,
        "directions_reused": reused,
        "command": s["command"],
        "timings": timings,
        # what experiments.pairs.tables reads (joint_table, verdict_table, controls_table)
        "record": {
            "concepts": record["concepts"],
            "pairs": record["pairs"],
            "overall": record["overall"],
            "settings": {"config": config, "parts": s["parts"], "model_id": s["model_id"]},
        },
    }


def part_directions(cfg: DemoConfig, part: dict[str, Any] | None, out: Path) -> dict[str, Any]:
    """The chord part's quality directions when the pair may use them as its second part's
    (same model, chords, same training set and size), else {} (the pair trains its own)."""
    from musicrfm.experiments.demo.part import part_train_set
    from musicrfm.probes.directions import ConceptDirections

    same_model = cfg.pair_model is None or cfg.pair_model == cfg.part_model
    if not part or part.get("concept") != SECOND or not same_model:
        return {}
    if part.get("train_set") != part_train_set(cfg, FIRST):
        return {}
    path = out / "directions" / SECOND
    try:
        cd = ConceptDirections.load(path)
    except Exception as exc:  # noqa: BLE001 -- a missing or old file: train them again
        log.info("pair: training its own chord directions (%s)", exc)
        return {}
    return {SECOND: cd} if cd.activation_norm() is not None else {}
