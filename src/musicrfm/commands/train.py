"""`musicrfm train`: per-layer RFM probes for one concept -> concept directions + tables."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train per-layer RFM probes and write concept directions",
        description=(
            "Train Recursive Feature Machine probes on every layer of a FeatureSet (from "
            "`musicrfm extract`): one-vs-rest probes per class on class-balanced data (their AGOP "
            "eigenvectors are the steering directions), a multiclass probe per layer, or a "
            "regression probe for continuous labels (tempo). Writes <concept>.safetensors/.json "
            "(ConceptDirections), the multiclass probes, and a classification table comparing the "
            "RFM with ridge, logistic, difference-of-means and MLP probes on the same splits."
        ),
    )
    p.add_argument("--features", required=True, help="FeatureSet folder (from `musicrfm extract`)")
    p.add_argument("--out", required=True, help="folder to write directions, probes and tables to")
    p.add_argument(
        "--concept",
        default=None,
        help="concept name (default: from the features, or the label column)",
    )
    p.add_argument("--label-column", default="label", help="column of the rows holding the labels")
    p.add_argument("--task", default="auto", choices=["auto", "binary", "multiclass", "regression"])
    p.add_argument(
        "--budget",
        default="fast",
        choices=["fast", "paper"],
        help="hyper-parameter search: fast (default) or the paper's 100 draws x 15 iterations",
    )
    p.add_argument("--components", type=int, default=4, help="AGOP eigenvectors kept per probe (k)")
    p.add_argument(
        "--layers", type=int, nargs="*", default=None, help="0-based layers (default: all)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-multiclass", action="store_true", help="skip the multiclass probes")
    p.add_argument(
        "--baselines",
        default="ridge,logistic,mean_difference,mlp",
        help="comma-separated baselines for the table ('' or 'none' to skip)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musicrfm.capture.features import FeatureSet
    from musicrfm.errors import ConfigError
    from musicrfm.probes.tables import (
        compare_probes,
        plot_direction_scores,
        plot_layer_scores,
        write_table,
    )
    from musicrfm.probes.training import save_train_result, train_directions

    out = Path(args.out)
    features = FeatureSet.load(args.features)
    baselines = [b for b in (args.baselines or "").split(",") if b and b != "none"]
    from musicrfm.probes.baselines import METHODS

    unknown = [b for b in baselines if b not in METHODS]
    if unknown:
        raise ConfigError(f"unknown baselines {unknown}; valid: {', '.join(METHODS)}")
    result = train_directions(
        features,
        label_column=args.label_column,
        concept=args.concept,
        task=args.task,
        budget=args.budget,
        components=args.components,
        layers=args.layers,
        device=args.device,
        seed=args.seed,
        multiclass_probes=not args.no_multiclass,
        progress=not args.no_progress,
    )
    d = result.directions
    base = save_train_result(result, out)
    written = [base.name + ".safetensors", base.name + ".json"]
    if result.multiclass_probes:
        written.append("probes/")
    plot_direction_scores(result, out / "direction_scores.png")
    written.append("direction_scores.png")
    has_rfm_rows = result.task == "regression" or bool(result.multiclass_scores)
    if baselines or has_rfm_rows:
        scores = compare_probes(features, result, methods=baselines)
        if len(scores):
            paths = write_table(scores, out)
            plot_layer_scores(scores, out / "layer_scores.png")
            written += [p.name for p in paths.values()] + ["layer_scores.png"]
            print(paths["markdown"].read_text())
    best = int(d.scores.mean(1).argmax())
    print(
        f"{d.concept}: {len(d.layers)} layers x {len(d.classes)} directions "
        f"({d.meta['score_name']} best layer {d.layers[best]}: {float(d.scores[best].mean()):.3f}) "
        f"in {result.seconds:.1f}s -> {out}/ ({', '.join(written)})"
    )
    return 0
