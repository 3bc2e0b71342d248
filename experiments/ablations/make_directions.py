"""Train the note directions of the bundled note model exactly as `musicrfm mini headline`
does (the demo's note set, mean-pooled features with the empty prompt, one binary direction per
pitch class, 'fast' budget, 4 components, seed 0) and save them where the ablation configs read
them: ``experiments/ablations/directions/<model>/notes``.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/ablations/make_directions.py \
        --model mini --out experiments/ablations/directions/mini/notes

(``--concept chords --model models/musicgen-mini-poly`` for the testbed's chord qualities.)
The note set and its features are cached in the demo work folder, as the headline caches them.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


def main() -> None:
    import torch

    from musicrfm.experiments.demo.config import default_work_dir
    from musicrfm.experiments.demo.stages import learn_note_directions
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.models import load_model
    from musicrfm.probes.directions import record_activation_norms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mini")
    parser.add_argument("--concept", default="notes")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = replace(HeadlineConfig(), concept=args.concept)
    adapter = load_model(args.model)
    _, features, trained = learn_note_directions(
        adapter, cfg.data, default_work_dir(), seed=args.seed, progress=False, concept=args.concept
    )
    # the unit of a relative η0 ("0.1x"), as the headline computes it from the same features
    record_activation_norms(trained.directions, features.features)
    # the cached features may name the model by the path they were extracted with; the sweep
    # checks directions against the adapter's own id ('musicgen-mini' for the bundled model)
    trained.directions.meta["model_id"] = str(adapter.model_id)
    path = trained.directions.save(args.out)
    print(
        f"saved {path} (classes {trained.directions.classes}; "
        f"activation norm {trained.directions.activation_norm():.3f})"
    )


if __name__ == "__main__":
    main()
