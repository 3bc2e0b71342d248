"""The demo's chord part: one chord quality steered on the polyphonic testbed, with controls.

The bundled note model is monophonic and cannot play a chord, so this part loads the second
bundled model (``musicgen-mini-poly``, trained by ``musicrfm mini train --data strikes --codec
polyphonic``), learns chord-quality directions on its activations exactly as the note part
learns note directions (the synthetic chord set on the same programs, mean-pooled features, RFM
probes), steers toward one quality at one η0 with the same controls, and judges the clips with
the chord detector (no MusicGen inside).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import (
    auto_coefs,
    demo_jobs,
    detect_notes,
    generate_all,
    instrument_adherence,
    learn_note_directions,
    summarize,
)

log = logging.getLogger(__name__)

CHORD_MODEL = "musicgen-mini-poly"


def run_chord_part(
    cfg: DemoConfig,
    work: Path,
    out: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Learn chord-quality directions on ``cfg.chord_model``, steer toward ``cfg.chord_target``
    at ``cfg.chord_relative_coef`` x the median activation norm with the note part's controls,
    judge with the chord detector; returns the summary, controls and settings (plain types)."""
    import torch

    from musicrfm.evaluation.judges import find_reference_judge, model_folder
    from musicrfm.models import load_model

    timings: dict[str, float] = {}
    t = time.perf_counter()
    adapter = load_model(cfg.chord_model, device=device)
    timings["load"] = time.perf_counter() - t
    part = replace(
        cfg, crossfade_clips=0, relative_coefs=(cfg.chord_relative_coef,), coefs=None,
        seeds_per_prompt=cfg.chord_seeds_per_prompt,
    )  # fmt: skip
    dataset, features, trained = learn_note_directions(
        adapter, part, work / "chords", seed=seed, device=device, progress=progress,
        timings=timings, concept="chords",
    )  # fmt: skip
    cd = trained.directions
    target = cd.classes[cd.class_index(cfg.chord_target)]
    coefs, scale = auto_coefs(features, part)
    cd.save(out / "directions" / "chords")
    t = time.perf_counter()
    torch.manual_seed(seed)
    jobs = demo_jobs(cd, part, coefs, seed, target, target)
    records = generate_all(adapter, jobs, part, out / "audio_chords", progress)
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    frame, _ = detect_notes(records, progress, "chords")
    inst: dict[str, Any] = {"classifier": None}
    folder = model_folder(adapter)
    judge = find_reference_judge(adapter, [folder] if folder is not None else [])
    if cfg.instrument_check and judge is not None:  # the note-set fallback needs note clips
        frame, inst = instrument_adherence(
            dataset, frame, records, seed, adapter=adapter, judge=judge
        )
    summary, comp = summarize(frame, seed)
    timings["evaluate"] = time.perf_counter() - t
    frame.drop(columns=["probs"]).to_csv(out / "results_chords.csv", index=False)
    return {
        "model_id": str(adapter.model_id),
        "target": target,
        "coef": float(coefs[0]),
        "relative_coef": cfg.chord_relative_coef,
        "activation_scale": scale,
        "train_clips": len(dataset),
        "target_auc_per_layer": cd.scores[:, cd.class_index(target)].tolist(),
        "summary": _records(summary),
        "controls": _records(comp),
        "instrument": inst,
        "timings": timings,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    import json

    from musicrfm.experiments.demo.report import json_default

    return json.loads(json.dumps(frame.to_dict(orient="records"), default=json_default))
