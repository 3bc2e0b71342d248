"""`musicrfm train`: per-layer RFM probes for one concept -> concept directions + tables."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.commands import add_threads_argument, apply_threads, check_device

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
    p.add_argument(
        "--where", action="append", default=[], metavar="COLUMN=VALUE",
        help="train on the rows whose COLUMN is VALUE only (repeatable), e.g. --where "
        "inversion=root: chord directions whose root is the bass",
    )  # fmt: skip
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
    add_threads_argument(p)
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
    from musicrfm.capture.distributed import device_for, is_main
    from musicrfm.errors import ConfigError
    from musicrfm.files import check_writable
    from musicrfm.probes.directions import record_activation_norms
    from musicrfm.probes.tables import (
        compare_probes,
        plot_direction_scores,
        plot_layer_scores,
        write_table,
    )
    from musicrfm.probes.training import save_train_result, train_directions

    out = Path(args.out)
    apply_threads(args.threads)
    check_device(args.device)
    if args.components < 1:
        raise ConfigError(f"--components must be at least 1, got {args.components}")
    check_writable(out, what="--out", folder=True)
    baselines = [b for b in (args.baselines or "").split(",") if b and b != "none"]
    from musicrfm.probes.baselines import METHODS

    unknown = [b for b in baselines if b not in METHODS]
    if unknown:
        raise ConfigError(f"unknown baselines {unknown}; valid: {', '.join(METHODS)}")
    features = rows_where(load_features(args.features), args.where, args.features)
    check_class_counts(features.rows, args.label_column, args.task, args.features)
    result = train_directions(
        features,
        label_column=args.label_column,
        concept=args.concept,
        task=args.task,
        budget=args.budget,
        components=args.components,
        layers=args.layers,
        device=device_for(args.device),  # under a launcher: this rank's GPU
        seed=args.seed,
        multiclass_probes=not args.no_multiclass,
        progress=not args.no_progress,
    )
    if not is_main():  # under a launcher the probes are shared out; rank 0 writes and reports
        return 0
    d = result.directions
    record_activation_norms(d, features.features)  # what a relative --coef 0.1x multiplies
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
        f"in {result.seconds:.1f}s -> {out}/ ({', '.join(written)}); median activation norm "
        f"{d.meta['activation_norm']:.3g} (--coef 0.1x = {0.1 * d.meta['activation_norm']:.3g})"
    )
    return 0


def load_features(folder: str | Path) -> Any:
    """A FeatureSet folder; damaged files (cut short, not safetensors/parquet/JSON) are one
    error naming the folder and what to do, not a parser's traceback."""
    from musicrfm.capture.features import FeatureSet
    from musicrfm.errors import DatasetError, MusicRFMError

    try:
        return FeatureSet.load(folder)
    except MusicRFMError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, pyarrow and json each raise their own
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DatasetError(
            f"the feature set in {folder} is damaged ({type(exc).__name__}: {first}); extract "
            f"it again (`musicrfm extract --data ... --out {folder}`)"
        ) from None


def min_clips_per_class(task: str) -> int:
    """The fewest clips of a class that the seeded 70/15/15 split gives enough of in every
    split (classes: 2 train, 1 val, 1 test; regression: 5, 2, 2 clips in all)."""
    from musicrfm.probes.splits import make_splits

    need = (
        {"train": 5, "val": 2, "test": 2}
        if task == "regression"
        else {"train": 2, "val": 1, "test": 1}
    )
    for n in range(1, 200):
        split = list(make_splits(None, n))
        if all(split.count(k) >= v for k, v in need.items()):
            return n
    return 200


def rows_where(features: Any, conditions: list[str], where: str | Path) -> Any:
    """The features of the rows matching every ``COLUMN=VALUE`` (compared as text), checked:
    an unknown column lists the columns, a value no row has lists the values there are."""
    from musicrfm.errors import ConfigError, DatasetError

    mask = np.ones(len(features), dtype=bool)
    rows = features.rows
    for cond in conditions:
        column, sep, value = cond.partition("=")
        if not sep or not column.strip():
            raise ConfigError(f"--where takes COLUMN=VALUE (e.g. inversion=root), got {cond!r}")
        column, value = column.strip(), value.strip()
        if column not in rows.columns:
            raise ConfigError(f"--where {cond}: no column {column!r} in {where}; columns: "
                              f"{', '.join(map(str, rows.columns))}")  # fmt: skip
        text = rows[column].astype(str)
        if not (text == value).any():
            values = sorted(set(text))
            raise DatasetError(f"--where {cond}: no row of {where} has {column} = {value!r}; it "
                               f"holds {', '.join(values[:12])}{' ...' if len(values) > 12 else ''}")  # fmt: skip
        mask &= (text == value).to_numpy()
    if not mask.any():
        raise DatasetError(f"no row of {where} matches every --where ({', '.join(conditions)})")
    return features if mask.all() else features.subset(mask)


def check_class_counts(rows: Any, label_column: str, task: str, where: str | Path) -> None:
    """One error listing every class with too few clips for the split, before any training
    (the library would stop at the first short split, naming only that split)."""
    from musicrfm.errors import DatasetError
    from musicrfm.probes.splits import infer_task

    if label_column not in rows.columns or "split" in rows.columns:
        return  # the library's own errors name the column; a given split is checked there
    labels = rows[label_column]
    kind = infer_task(labels) if task == "auto" else task
    need = min_clips_per_class(kind)
    if kind == "regression":
        if len(labels) < need:
            raise DatasetError(
                f"{where} has {len(labels)} clips; a regression probe needs at least {need} "
                "(70/15/15 train/val/test split)"
            )
        return
    counts = labels.value_counts()
    short = [f"{c!r}: {n}" for c, n in counts.items() if n < need]
    if short:
        raise DatasetError(
            f"{where}: too few clips for the 70/15/15 train/val/test split, which needs at least "
            f"{need} per class: {', '.join(short)}; render or extract more clips of those "
            "classes (or drop them)"
        )
