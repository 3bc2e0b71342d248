"""Train the directions the ablation configs read, exactly as `musicrfm mini headline` does
(the demo's training set, mean-pooled features with the empty prompt, one binary direction per
class, 'fast' budget, 4 components, seed 0) and save them with their median activation norm (the
unit of a relative η0, "0.1x") and print each class's per-layer validation AUC (the score the
layer weightings are built from: all equal means every weighting is uniform).

Run from the repository root::

    # the bundled note model's note directions (docs/results/ablations-mini)
    OMP_NUM_THREADS=1 .venv/bin/python experiments/ablations/make_directions.py \
        --model mini --out experiments/ablations/directions/mini/notes
    # the polyphonic testbed's chord qualities, learned from strike triads
    # (= `mini headline --concept chords --train-set strikes`; docs/results/ablations-testbed)
    OMP_NUM_THREADS=1 .venv/bin/python experiments/ablations/make_directions.py \
        --model mini-poly --concept chords --train-set strikes \
        --out experiments/ablations/directions/mini-poly/chords-strikes

The training set and its features are cached in the demo work folder, as the headline caches them.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


def main() -> None:
    import torch

    from musicrfm.experiments.demo.config import default_work_dir
    from musicrfm.experiments.demo.stages import TRAIN_SETS, learn_note_directions
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.models import load_model
    from musicrfm.probes.directions import record_activation_norms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mini")
    parser.add_argument("--concept", default="notes")
    parser.add_argument("--train-set", choices=TRAIN_SETS, default="synthetic",
                        help="the headline's --train-set (strikes: the testbed's own clips)")  # fmt: skip
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = replace(HeadlineConfig(), concept=args.concept)
    data = replace(cfg.data, train_set=args.train_set)
    adapter = load_model(args.model)
    _, features, trained = learn_note_directions(
        adapter, data, default_work_dir(), seed=args.seed, progress=False, concept=args.concept
    )
    # the unit of a relative η0 ("0.1x"), as the headline computes it from the same features
    record_activation_norms(trained.directions, features.features)
    # the cached features may name the model by the path they were extracted with; the sweep
    # checks directions against the adapter's own id ('musicgen-mini' for the bundled model)
    trained.directions.meta["model_id"] = str(adapter.model_id)
    trained.directions.meta["train_set"] = args.train_set
    path = trained.directions.save(args.out)
    print(
        f"saved {path} (classes {trained.directions.classes}; "
        f"activation norm {trained.directions.activation_norm():.3f})"
    )
    cd = trained.directions
    print(
        f"per-layer {cd.meta.get('score_name', 'score')} (the weightings' input), a row per class:"
    )
    for ci, cls in enumerate(cd.classes):
        print(f"  {cls:>12}: " + " ".join(f"{float(s):.3f}" for s in cd.scores[:, ci]))


if __name__ == "__main__":
    main()
