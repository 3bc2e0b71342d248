"""The demo's second part: one class of any concept with a detector, steered with controls.

The bundled note model is monophonic and cannot play a chord, so by default this part loads the
third bundled model (``musicgen-mini-beat``, the polyphonic testbed retrained with an onset
codebook: ``musicrfm mini train --data strikes --codec polyphonic_onsets``; it plays a beat) and
steers one chord quality. ``--part CONCEPT:CLASS`` picks any concept that has both a training set
and a detector (chords, intervals, scales, progressions, time_signatures, notes; tempos as
'faster' / 'slower'). Classification concepts are learned and judged exactly as the note part
(mean-pooled features, RFM probes, the same controls, the concept's detector: no MusicGen
inside), from strike clips (``DemoConfig.part_train_set``, the testbed's own kind of clip) where
strike clips have the concept (notes, intervals, chords), else from the concept's synthetic set
on the prompt programs; tempo is a signed regression direction, measured as the tempo headline
measures it (median detected BPM against unsteered, with controls).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import TESTBED_MODEL, DemoConfig
from musicrfm.experiments.demo.stages import (
    auto_coefs,
    demo_jobs,
    detect_notes,
    generate_all,
    instrument_adherence,
    learn_note_directions,
    saved_judge,
    summarize,
)

log = logging.getLogger(__name__)

PART_MODEL = TESTBED_MODEL
TEMPO_TARGETS = ("faster", "slower")


def part_concepts() -> tuple[str, ...]:
    """Concepts the part can steer: a synthetic training set and a detector for each."""
    from musicrfm.evaluation.detectors import find_detector
    from musicrfm.synth.concepts import CONCEPTS

    return tuple(c for c in CONCEPTS if find_detector(c) is not None)


def parse_part(text: str) -> tuple[str, str]:
    """``CONCEPT:CLASS`` (``chords:augmented``, ``intervals:P5``, ``scales:dorian``,
    ``tempos:faster``) -> (concept, class as the training set names it); a ConfigError lists
    the valid concepts or classes. Checked before any model loads."""
    from musicrfm.evaluation.detectors import find_detector

    concept, sep, target = str(text).partition(":")
    if not sep or not concept.strip() or not target.strip():
        raise ConfigError(
            f"--part wants CONCEPT:CLASS (e.g. chords:minor, intervals:P5, tempos:faster), got "
            f"{text!r}; concepts: {', '.join(part_concepts())}"
        )
    record = find_detector(concept.strip().lower())
    name = record.name if record is not None else concept.strip()
    if name not in part_concepts():
        raise ConfigError(
            f"the demo cannot steer {concept.strip()!r}: it needs a training set and a detector; "
            f"concepts: {', '.join(part_concepts())}"
        )
    return name, part_class(name, target.strip())


def part_class(concept: str, target: str) -> str:
    """The training set's name for ``target`` (``Cm`` -> minor, ``5`` -> P4, ``Dorian`` ->
    dorian); tempos take 'faster' / 'slower'. ConfigError listing the valid classes."""
    from musicrfm.spelling import class_spellings
    from musicrfm.synth.concepts import CONCEPTS

    if concept == "tempos":
        word = target.lower()
        if word not in TEMPO_TARGETS:
            raise ConfigError(
                f"a tempo direction is a signed regression: use tempos:faster or tempos:slower, "
                f"not {target!r}"
            )
        return word
    labels = [str(x) for x in CONCEPTS[concept].labels]
    by_lower = {x.lower(): x for x in labels}
    for spelled in (target, *class_spellings(target)):
        if spelled in labels:
            return spelled
        if spelled.lower() in by_lower:
            return by_lower[spelled.lower()]
    raise ConfigError(f"{concept} has no class {target!r}; valid: {', '.join(labels)}")


def part_train_set(cfg: DemoConfig, concept: str) -> str:
    """Where the part's ``concept`` directions are learned: ``cfg.part_train_set`` when strike
    clips have that concept (notes, intervals, chords), else the synthetic set."""
    from musicrfm.synth.strikes import CONCEPTS as STRIKE_CONCEPTS

    if cfg.part_train_set == "strikes" and concept not in STRIKE_CONCEPTS:
        return "synthetic"
    return cfg.part_train_set


def run_concept_part(
    cfg: DemoConfig,
    work: Path,
    out: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Learn ``cfg.part_concept`` directions on ``cfg.part_model``, steer toward
    ``cfg.part_target`` at ``cfg.part_relative_coef`` x the median activation norm with the
    note part's controls, judge with the concept's detector; returns the summary, controls and
    settings (plain types)."""
    from musicrfm.models import load_model
    from musicrfm.probes.directions import record_activation_norms

    concept, target_name = cfg.part_concept, part_class(cfg.part_concept, cfg.part_target)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = load_model(cfg.part_model, device=device)
    timings["load"] = time.perf_counter() - t
    if concept == "tempos":
        return _tempo_part(cfg, adapter, work, out, seed, device, progress, timings)
    part = replace(
        cfg, crossfade_clips=0, relative_coefs=(cfg.part_relative_coef,), coefs=None,
        seeds_per_prompt=cfg.part_seeds_per_prompt, train_set=part_train_set(cfg, concept),
    )  # fmt: skip
    dataset, features, trained = learn_note_directions(
        adapter, part, work / concept, seed=seed, device=device, progress=progress,
        timings=timings, concept=concept,
    )  # fmt: skip
    cd = trained.directions
    target = cd.classes[cd.class_index(target_name)]
    coefs, scale = auto_coefs(features, part)
    record_activation_norms(cd, features.features)  # "0.2x" in a plan (the pair) reads it
    cd.save(out / "directions" / concept)
    t = time.perf_counter()
    jobs = demo_jobs(cd, part, coefs, seed, target, target)
    records = generate_all(adapter, jobs, part, out / f"audio_{concept}", progress, concept)
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    frame, _ = detect_notes(records, progress, concept)
    inst: dict[str, Any] = {"classifier": None}
    judge = saved_judge(adapter)
    if cfg.instrument_check and judge is not None:  # the note-set fallback needs note clips
        frame, inst = instrument_adherence(
            dataset, frame, records, seed, adapter=adapter, judge=judge
        )
    summary, comp = summarize(frame, seed)
    timings["evaluate"] = time.perf_counter() - t
    frame.drop(columns=["probs"]).to_csv(out / f"results_{concept}.csv", index=False)
    progression = None
    if concept == "chords" and cfg.progression:
        from musicrfm.experiments.demo.progression import run_progression

        t = time.perf_counter()
        coef = cfg.progression_relative_coef * scale
        progression = run_progression(adapter, cd, part, coef, out, seed=seed)
        timings["progression"] = time.perf_counter() - t
    return {
        "concept": concept,
        "model_id": str(adapter.model_id),
        "target": target,
        "coef": float(coefs[0]),
        "relative_coef": cfg.part_relative_coef,
        "activation_scale": scale,
        "train_clips": len(dataset),
        "train_set": part.train_set,
        "chance": 1.0 / len(cd.classes),
        "target_auc_per_layer": cd.scores[:, cd.class_index(target)].tolist(),
        "summary": _records(summary),
        "controls": _records(comp),
        "instrument": inst,
        "progression": progression,
        "timings": timings,
    }


def _tempo_part(
    cfg: DemoConfig,
    adapter: Any,
    work: Path,
    out: Path,
    seed: int,
    device: str,
    progress: bool,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Tempo as the tempo headline measures it, at one η0 each way, the demo's prompts and
    ``part_seeds_per_prompt`` seeds; ``part_target`` names the way the report leads with."""
    from musicrfm.experiments.headline.config import HeadlineConfig
    from musicrfm.experiments.headline.tempo import run_tempo_headline

    n = len(cfg.prompts) * cfg.part_seeds_per_prompt
    judged = cfg.instrument_check and saved_judge(adapter) is not None
    data = replace(cfg, instrument_check=judged, clips_per_class=max(6, cfg.clips_per_class // 3))
    hcfg = HeadlineConfig(
        concept="tempos", relative_coefs=(cfg.part_relative_coef,), clips=n, baseline_clips=n,
        flip_clips=None, instrument_reference=judged, data=data,
    )  # fmt: skip
    t = time.perf_counter()
    record = run_tempo_headline(
        model=adapter, out=out / "tempos", work=work / "tempos", seed=seed, config=hcfg,
        device=device, progress=progress,
        command="(the demo's tempo part: musicrfm demo --part tempos:faster)",
    )  # fmt: skip
    timings["tempo"] = time.perf_counter() - t
    return {
        "concept": "tempos",
        "model_id": str(adapter.model_id),
        "target": cfg.part_target,
        "coef": float(record["settings"]["coefs"][0]),
        "relative_coef": cfg.part_relative_coef,
        "activation_scale": record["settings"]["activation_scale"],
        "rows": record["rows"],
        "overall": record["overall"],
        "timings": timings,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    import json

    from musicrfm.experiments.demo.report import json_default

    return json.loads(json.dumps(frame.to_dict(orient="records"), default=json_default))
