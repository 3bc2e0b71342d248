"""Chord-quality directions learned from features captured WITH each clip's own caption
(session 21 experiment).

The bundled `directions/chords` come from features captured with an empty prompt (SPEC 2.1's
default), but every steered clip is generated with an instrument prompt. The polyphonic judge
hears the steered `C G Am F` clips at 0.15x as a choir whatever the prompt
(`../polyphonic-judge/`). If the empty-prompt directions point partly along "which instrument
the model infers from the audio alone", capturing with the caption the model was trained on
(instrument + register) could leave the instrument to the prompt and the direction to the
quality. This script captures the same root-position strike triads both ways, trains quality
directions with the bundled recipe (binary one-vs-rest, the demo's budget and components,
seed 0, mean pooling) on each, and writes OUT/chords-empty and OUT/chords-caption with their
activation norms (so that `--coef 0.15x` means the same strength), plus OUT/capture.json.

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/caption-capture/capture.py WORK OUT

Then `../controls.py OUT2 --coef 0.15x --quality-directions OUT/chords-caption --judge
models/musicgen-mini-beat/judges/polyphonic`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musicrfm.capture.extract import extract_features
from musicrfm.capture.features import FeatureSet
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import strike_dataset
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections, record_activation_norms
from musicrfm.probes.training import train_directions
from musicrfm.synth.notes import caption_for

BUNDLE = "models/musicgen-mini-beat/directions/chords"


def captioned_features(model, rows, root: Path, cache: Path) -> FeatureSet:
    """Features of ``rows`` (paths relative to ``root``), each clip captured with its caption;
    one capture per caption, then put back in row order."""
    rows = rows.assign(path=[str(root / p) for p in rows["path"]])
    captions = [caption_for(i, r) for i, r in zip(rows["instrument"], rows["register"])]
    layers = torch.zeros(model.num_layers, len(rows), model.hidden_size)
    for caption in sorted(set(captions)):
        idx = [i for i, c in enumerate(captions) if c == caption]
        fs = extract_features(model, rows.iloc[idx].reset_index(drop=True), prompt=caption,
                              cache_dir=cache, progress=False)  # fmt: skip
        layers[:, idx] = fs.features
    base = extract_features(model, rows, prompt="", cache_dir=cache, progress=False)
    return replace(base, features=layers, meta=dict(base.meta, prompt="each clip's caption"))


def main(work: Path, out: Path) -> None:
    t0 = time.perf_counter()
    model = load_model("mini-beat")
    cfg = replace(DemoConfig(), train_set="strikes", clips_per_class=96)
    data = strike_dataset(model, cfg, work, 0, False, "chords")
    rows = data.rows[data.rows["inversion"] == "root"].reset_index(drop=True)
    empty = extract_features(model, rows.assign(path=[str(data.root / p) for p in rows["path"]]),
                             prompt="", cache_dir=work / "features", progress=False)  # fmt: skip
    caption = captioned_features(model, rows, data.root, work / "features")
    kw = dict(label_column="label", concept="chords", task="binary", budget=cfg.budget,
              components=cfg.components, seed=0, progress=False)  # fmt: skip
    report: dict = {"clips": len(rows), "per_class": rows["label"].value_counts().to_dict()}
    bundled = ConceptDirections.load(BUNDLE)
    for name, feats in (("empty", empty), ("caption", caption)):
        cd = train_directions(feats, **kw).directions
        record_activation_norms(cd, feats.features)
        cd.meta["trained_on"] = (
            f"root-position strike triads, captured with {feats.meta['prompt']!r}"
        )
        cd.save(out / f"chords-{name}")
        cos = torch.nn.functional.cosine_similarity(
            cd.vectors[..., 0, :].double(), bundled.vectors[..., 0, :].double(), dim=-1
        )  # (layers, classes): the top component against the bundled file's
        report[name] = {"test_scores": np.asarray(cd.meta["test_scores"]).round(3).tolist(),
                        "cosine_to_bundled": cos.round(decimals=3).tolist(),
                        "activation_norm": cd.meta.get("activation_norm")}  # fmt: skip
    e = ConceptDirections.load(out / "chords-empty").vectors[..., 0, :].double()
    c = ConceptDirections.load(out / "chords-caption").vectors[..., 0, :].double()
    report["cosine_caption_to_empty"] = (
        torch.nn.functional.cosine_similarity(e, c, dim=-1).round(decimals=3).tolist()
    )
    report["classes"] = bundled.classes
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "capture.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
