"""Remove the timbre subspace from the bundled chord-quality directions (session 20 experiment).

The polyphonic judge hears every `C G Am F` clip steered at 0.15x as a choir, and the quality
directions carry that shift (`../polyphonic-judge/which_file.txt`). Here, per layer, the timbre
subspace is the top ``RANK`` principal directions of the 12 instrument means of the strike-triad
features (`demo.stages.strike_dataset`, 96 clips, 8 per instrument; the model's own pooled
block outputs, mean-centred). Every quality vector is projected orthogonal to it and renormalised.
The directions are written to OUT/chords-projected, with the original activation norm so that
`--coef 0.15x` means the same strength.

    python docs/results/progression-controls-testbed-beat/timbre-projection/project.py WORK OUT [RANK]
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from musicrfm.capture.extract import extract_features
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import strike_dataset
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections

BUNDLE = "models/musicgen-mini-beat/directions/chords"


def timbre_basis(x: torch.Tensor, labels: list[str], rank: int) -> torch.Tensor:
    """(rank, d) orthonormal rows spanning the largest spread of the per-instrument means."""
    means = torch.stack([x[[i for i, v in enumerate(labels) if v == u]].mean(0)
                         for u in sorted(set(labels))])  # fmt: skip
    _, _, vh = torch.linalg.svd(means - means.mean(0), full_matrices=False)
    return vh[:rank]


def main(work: Path, out: Path, rank: int) -> None:
    model = load_model("mini-beat")
    cfg = replace(DemoConfig(), train_set="strikes")
    data = strike_dataset(model, cfg, work, 0, False, "chords")
    feats = extract_features(model, data, pooling="mean", prompt="", cache_dir=work / "features",
                             progress=False)  # fmt: skip
    labels = feats.rows["instrument"].astype(str).tolist()
    cd = ConceptDirections.load(BUNDLE)
    vectors = cd.vectors.clone().to(torch.float64)
    removed = {}
    for i, layer in enumerate(cd.layers):
        basis = timbre_basis(feats.layer(layer).to(torch.float64), labels, rank)
        v = vectors[i]  # (classes, k, d)
        inside = (v @ basis.T) @ basis
        removed[layer] = (inside.norm(dim=-1) / v.norm(dim=-1)).mean(-1).tolist()  # per class
        v = v - inside
        vectors[i] = v / v.norm(dim=-1, keepdim=True)
    meta = dict(cd.meta, timbre_projection={"rank": rank, "instruments": sorted(set(labels)),
                                            "clips": len(labels)})  # fmt: skip
    projected = replace(cd, vectors=vectors.to(cd.vectors.dtype), meta=meta)
    projected.save(out / "chords-projected")
    summary = {"rank": rank, "classes": cd.classes,
               "share_of_each_vector_in_the_timbre_subspace": removed}  # fmt: skip
    (out / "projection.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 4)
