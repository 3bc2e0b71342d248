"""Chord-quality directions from a BALANCED draw of root-position triads (session 21).

The bundled `directions/chords` come from the demo's draw (96 triads a quality, every
inversion) filtered to root position: 118 clips, with holes. No minor and no diminished triad
on the acoustic piano; augmented 18 low-register against 9 middle. A one-vs-rest probe on that
draw can use the instrument and the register to tell the qualities apart, and its AGOP
direction then carries them. This script renders every root-position triad of the testbed's
grid (`strike_grid(inversions=(0,))`, seeded as the demo's draw: 4 qualities x 12 roots x the 12 training programs = 576
clips, each program playing every root of every quality; octave and tempo drawn by the grid),
captures them with the empty prompt, trains quality directions with the bundled recipe
(binary one-vs-rest, the demo's budget and components, seed 0), and writes OUT/chords-balanced
with its activation norms, and OUT/balanced.json.

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/balanced-quality/train.py WORK OUT [SEED]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicrfm.capture.extract import extract_features
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import STRIKE_GRID_SEED_OFFSET
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections, record_activation_norms
from musicrfm.probes.training import train_directions
from musicrfm.synth.generate import render_specs
from musicrfm.synth.strikes import strike_grid, strike_spec

BUNDLE = "models/musicgen-mini-beat/directions/chords"


def main(work: Path, out: Path, seed: int) -> None:
    t0 = time.perf_counter()
    model = load_model("mini-beat")
    cfg = DemoConfig()
    grid = [
        c
        for c in strike_grid(inversions=(0,), seed=seed + STRIKE_GRID_SEED_OFFSET)
        if c.concept == "chords"
    ]
    sr = int(model.sample_rate)
    data = render_specs([strike_spec(c) for c in grid], work / f"rootpos_all_{sr}hz_seed{seed}",
                        name="strike-chords-rootpos-all", sample_rate=sr, seed=seed, workers=1,
                        progress=False)  # fmt: skip
    feats = extract_features(model, data, pooling="mean", prompt="", cache_dir=work / "features",
                             progress=False)  # fmt: skip
    cd = train_directions(feats, label_column="label", concept="chords", task="binary",
                          budget=cfg.budget, components=cfg.components, seed=0,
                          progress=False).directions  # fmt: skip
    record_activation_norms(cd, feats.features)
    cd.meta["trained_on"] = "every root-position strike triad of the grid (balanced: 576 clips)"
    cd.save(out / "chords-balanced")
    bundled = ConceptDirections.load(BUNDLE)
    cos = torch.nn.functional.cosine_similarity(
        cd.vectors[..., 0, :].double(), bundled.vectors[..., 0, :].double(), dim=-1
    )
    rows = feats.rows
    report = {
        "clips": len(rows),
        "label_by_instrument": pd.crosstab(rows["label"], rows["instrument"]).to_dict(),
        "label_by_register": pd.crosstab(rows["label"], rows["register"]).to_dict(),
        "classes": cd.classes,
        "test_scores": np.asarray(cd.meta["test_scores"]).round(3).tolist(),
        "cosine_to_bundled": cos.round(decimals=3).tolist(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "balanced.json").write_text(json.dumps(report, indent=1, default=int))
    print(json.dumps({k: report[k] for k in ("clips", "cosine_to_bundled", "test_scores",
                                             "label_by_register")}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else 0)
