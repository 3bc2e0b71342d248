"""Remove the instrument probes' RFM directions from the chord-quality directions (session 21).

`../timbre-projection/` removed the span of the instrument MEANS and did not bring adherence
back. Here the timbre subspace is what RFM probes for the instrument use: per layer, one-vs-rest
RFM probes for each of the 12 instruments (the project's own `train_directions`, the demo's
budget, seed 0) on the pooled strike-triad features (all 384 clips of the bundled recipe's draw,
every inversion, empty prompt), and the top ``K`` AGOP eigenvectors of each. The bundled quality
vectors are projected orthogonal to the span of those 12 x K vectors and renormalised, and
written to OUT/chords-projected with the original activation norm (so `--coef 0.15x` means the
same strength), plus OUT/projection.json (the share of each quality vector's norm removed).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/instrument-probes/project.py WORK OUT [K]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from musicrfm.capture.extract import extract_features
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import strike_dataset
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.training import train_directions

BUNDLE = "models/musicgen-mini-beat/directions/chords"


def main(work: Path, out: Path, k: int) -> None:
    t0 = time.perf_counter()
    model = load_model("mini-beat")
    cfg = replace(DemoConfig(), train_set="strikes", clips_per_class=96)
    data = strike_dataset(model, cfg, work, 0, False, "chords")
    feats = extract_features(model, data, pooling="mean", prompt="", cache_dir=work / "features",
                             progress=False)  # fmt: skip
    inst = train_directions(feats, label_column="instrument", concept="instrument",
                            task="binary", budget=cfg.budget, components=k, seed=0,
                            progress=False).directions  # fmt: skip
    cd = ConceptDirections.load(BUNDLE)
    vectors = cd.vectors.clone().to(torch.float64)
    removed, aucs = {}, {}
    for i, layer in enumerate(cd.layers):
        j = inst.layers.index(layer)
        span = inst.vectors[j].to(torch.float64).reshape(-1, vectors.shape[-1])  # (12 k, d)
        q, _ = torch.linalg.qr(span.T)  # (d, 12 k) orthonormal columns
        v = vectors[i]  # (classes, components, d)
        inside = (v @ q) @ q.T
        removed[layer] = (inside.norm(dim=-1) / v.norm(dim=-1))[:, 0].round(decimals=3).tolist()
        v = v - inside
        vectors[i] = v / v.norm(dim=-1, keepdim=True)
        aucs[layer] = [round(float(x), 3) for x in inst.scores[j]]
    meta = dict(
        cd.meta,
        instrument_projection={
            "components_per_instrument": k,
            "instruments": inst.classes,
            "clips": len(feats.rows),
        },
    )
    replace(cd, vectors=vectors.to(cd.vectors.dtype), meta=meta).save(out / "chords-projected")
    report = {"k": k, "dims_removed": len(inst.classes) * k, "hidden_size": vectors.shape[-1],
              "random_vector_share": (len(inst.classes) * k / vectors.shape[-1]) ** 0.5,
              "quality_classes": cd.classes, "share_of_norm_removed": removed,
              "instrument_val_auc": aucs, "instruments": inst.classes,
              "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (out / "projection.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k2: report[k2] for k2 in ("dims_removed", "random_vector_share",
                                                "share_of_norm_removed")}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if sys.argv[3:] else 1)
