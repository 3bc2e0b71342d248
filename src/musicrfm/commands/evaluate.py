"""`musicrfm evaluate`: model-independent detectors and the instrument classifier.

musicrfm evaluate detectors --data DATASET_DIR [--out DIR]   validation table on labelled clips
musicrfm evaluate audio FILES... --concept notes             label given audio files
musicrfm evaluate instrument --data DATASET_DIR --out FILE    train the timbre classifier
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _concept_choices() -> tuple[str, ...]:
    """The registered detectors' concepts (numpy and the front-end load; librosa does not)."""
    from musicrfm.evaluation.detectors import concepts

    return concepts()


def register(subparsers: Any) -> None:
    choices = _concept_choices()
    parser = subparsers.add_parser(
        "evaluate",
        help="run the model-independent detectors (validation table, label audio files)",
        description=(
            "Judge audio with detectors that do not use MusicGen: pitch class (chroma or a pitch "
            "tracker), chord quality/root (chroma templates), interval and tempo (beat tracking); "
            "validate them on a labelled synthetic dataset; train the instrument classifier."
        ),
    )
    sub = parser.add_subparsers(dest="evaluate_action", metavar="<action>")

    p = sub.add_parser(
        "detectors",
        help="detector accuracy per concept on a labelled dataset (e.g. from `musicrfm synth`)",
        description=(
            "Run every detector on a labelled dataset folder and print/write the accuracy table "
            "with bootstrap 95% CIs. Exits 1 when a detector misses its target (pitch class on "
            "tonal notes >= 0.95, chord quality >= 0.85)."
        ),
    )
    p.add_argument("--data", required=True, help="dataset folder with manifest.csv")
    p.add_argument("--out", help="folder for detectors.csv/.md, per_clip.csv and breakdown tables")
    p.add_argument(
        "--concepts",
        nargs="+",
        choices=choices,
        help="concepts to check (default: all present)",
    )
    p.add_argument("--limit", type=int, help="at most this many clips per concept (seeded sample)")
    p.add_argument(
        "--pitch-backend",
        nargs="+",
        default=["chroma"],
        help="note detectors to compare: chroma, cqt, pyin, crepe (default: chroma)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap CIs")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    a = sub.add_parser(
        "audio",
        help="label audio files with one detector",
        description="Run one detector on audio files and print label, confidence and details.",
    )
    a.add_argument("files", nargs="+", help="audio files (any rate; resampled)")
    a.add_argument("--concept", required=True, help=f"one of {', '.join(choices)} (or an alias)")
    a.add_argument("--pitch-backend", default="chroma", help="notes: chroma, cqt, pyin or crepe")
    a.add_argument("--interval-mode", choices=("melodic", "harmonic"), default="melodic")
    a.add_argument("--trace", action="store_true", help="also print the per-window trace")
    a.add_argument("--json", action="store_true", help="one JSON object per file")

    i = sub.add_parser(
        "instrument",
        help="train the instrument/timbre classifier (offline prompt-adherence proxy)",
        description="Train the instrument classifier on a labelled dataset and save it (safetensors + JSON).",
    )
    i.add_argument("--data", required=True, help="dataset folder with manifest.csv")
    i.add_argument(
        "--out",
        required=True,
        help="output stem, e.g. models/instrument (writes .safetensors and .json)",
    )
    i.add_argument(
        "--label", default="instrument_family", help="label column (default instrument_family)"
    )
    i.add_argument("--limit-per-class", type=int, help="at most this many clips per label")
    i.add_argument(
        "--classifier",
        choices=("logistic", "mlp"),
        default="logistic",
        help="logistic regression (default) or a small ReLU MLP (256, 128)",
    )
    i.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run, _parser=parser)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "evaluate_action", None)
    if action == "detectors":
        return _detectors(args)
    if action == "audio":
        return _audio(args)
    if action == "instrument":
        return _instrument(args)
    args._parser.print_help()
    return 2


def _markdown(frame: Any) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append("" if v != v else f"{v:.3f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _detectors(args: argparse.Namespace) -> int:
    from musicrfm.evaluation.validation import breakdown, validate_detectors

    summary, per_clip = validate_detectors(
        args.data,
        concepts=args.concepts,
        limit=args.limit,
        pitch_backends=tuple(args.pitch_backend),
        seed=args.seed,
        progress=not args.no_progress,
    )
    table = _markdown(summary)
    print(table, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        summary.to_csv(out / "detectors.csv", index=False)
        (out / "detectors.md").write_text(
            "# Detector validation\n\n"
            f"Dataset: `{args.data}`; bootstrap 95% CIs (seed {args.seed}); n = clips.\n\n" + table
        )
        per_clip.to_csv(out / "per_clip.csv", index=False)
        for column in ("instrument_family", "octave"):
            if column in per_clip.columns and per_clip[column].notna().any():
                concept = "notes" if column == "octave" else None
                breakdown(per_clip, column, concept=concept).to_csv(
                    out / f"by_{column}.csv", index=False
                )
        print(f"wrote {out / 'detectors.csv'}, {out / 'detectors.md'} and per-clip results")
    failed = summary["meets_target"].eq(False).any()
    return 1 if failed else 0


def _detector_options(detect: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The CLI's detector options that ``detect`` takes: ``--pitch-backend`` as ``method``
    (notes), ``--interval-mode`` as ``mode`` (intervals)."""
    import inspect

    given = {"method": args.pitch_backend, "mode": args.interval_mode}
    params = inspect.signature(detect).parameters
    return {k: v for k, v in given.items() if k in params}


def _audio(args: argparse.Namespace) -> int:
    import numpy as np

    from musicrfm.evaluation import detectors as det

    record = det.get_detector(args.concept)
    options = _detector_options(record.detect, args)
    for path in args.files:
        d = det.detect_file(path, record.name, **options)
        if args.json:
            record_out = {"file": str(path), **d.to_dict()}
            record_out.pop("chord_probs", None)
            if args.trace:
                record_out["trace"] = {
                    "times": np.round(d.times, 3).tolist(),
                    "labels": list(d.trace_labels),
                }
            print(json.dumps(record_out, default=str))
            continue
        extra = record.describe(d) if record.describe is not None else ""
        print(f"{path}\t{d.label}\tconfidence={d.confidence:.3f}{extra}")
        if args.trace:
            for t, lab in zip(d.times, d.trace_labels):
                print(f"  {t:7.2f}s  {lab}")
    return 0


def _instrument(args: argparse.Namespace) -> int:
    from musicrfm.evaluation.instrument import train_instrument_classifier

    clf, report = train_instrument_classifier(
        args.data,
        label=args.label,
        limit_per_class=args.limit_per_class,
        model=args.classifier,
        seed=args.seed,
    )
    path = clf.save(args.out)
    if "test_accuracy" in report:
        low, high = report["test_ci"]
        print(
            f"held-out accuracy {report['test_accuracy']:.3f} [{low:.3f}, {high:.3f}] "
            f"(n_test={report['n_test']}, {len(report['classes'])} classes of {args.label})"
        )
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
