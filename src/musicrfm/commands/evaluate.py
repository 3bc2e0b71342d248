"""`musicrfm evaluate`: model-independent detectors and the instrument classifier.

musicrfm evaluate detectors --data DATASET_DIR [--out DIR]   validation table on labelled clips
musicrfm evaluate mixes --out DIR [--soundfont fluidr3]        render the full-mix validation set
musicrfm evaluate audio FILES... --concept notes             label given audio files
musicrfm evaluate instrument --data DATASET_DIR --out FILE    train the timbre classifier
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
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
            "tracker), chord quality/root, interval, tempo (beat tracking), lead melody, key, "
            "scale mode, meter and chord progression; validate them on a labelled synthetic "
            "dataset or on rendered full mixes; train the instrument classifier."
        ),
    )
    sub = parser.add_subparsers(dest="evaluate_action", metavar="<action>")

    p = sub.add_parser(
        "detectors",
        help="detector accuracy per concept on a labelled dataset (e.g. from `musicrfm synth`)",
        description=(
            "Run every detector on a labelled dataset folder (from `musicrfm synth` or "
            "`musicrfm evaluate mixes`) and print/write the accuracy table with Wilson 95% "
            "intervals, and a calibration table and figure with --out. Exits 1 when a detector "
            "misses its target (pitch class on tonal notes >= 0.95, chord quality >= 0.85; on "
            "mixes: chord per bar >= 0.85, key >= 0.9, tempo >= 0.9, lead >= 0.9, meter >= 0.8)."
        ),
    )
    p.add_argument("--data", required=True, help="dataset folder with manifest.csv")
    p.add_argument("--out", help="folder for detectors.csv/.md, per_clip.csv and breakdown tables")
    p.add_argument(
        "--concepts",
        nargs="+",
        choices=(*choices, "mixes"),
        help="concepts to check (default: all present; mixes: the full-mix set)",
    )
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="CONCEPT=NAME[,NAME]",
        help="back-ends to compare, e.g. lead=salience,basic-pitch tempos=librosa,essentia "
        "keys=chroma,essentia (default lead=salience, tempos=librosa, keys=chroma)",
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

    m = sub.add_parser(
        "mixes",
        help="render the full-mix validation set (drums, bass, chords, lead; known labels)",
        description=(
            "Render multi-track arrangements (set version 2: one of SynTheory's 19 progressions, "
            "one chord a bar, then a final tonic bar that establishes the key; 4/4 and 3/4, "
            "60-180 BPM, a lead melody; levels and reverb seeded) with their labels: "
            "key and mode, chord per bar, tempo, meter, lead notes. Same seed, same labels."
        ),
    )
    m.add_argument("--out", required=True, help="dataset folder (audio/, manifest.csv)")
    m.add_argument("--count", type=int, default=57, help="arrangements (default 57: 3 x 19)")
    m.add_argument(
        "--soundfont",
        default="timgm6mb",
        help="timgm6mb (default), fluidr3 (Debian fluid-soundfont-gm) or a .sf2 path",
    )
    m.add_argument(
        "--renderer",
        choices=("tinysoundfont", "fluidsynth"),
        help="default: tinysoundfont for TimGM6mb, fluidsynth for any other soundfont",
    )
    m.add_argument("--seed", type=int, default=0)

    a = sub.add_parser(
        "audio",
        help="label audio files with one detector",
        description="Run one detector on audio files and print label, confidence and details.",
    )
    a.add_argument("files", nargs="+", help="audio files (any rate; resampled)")
    a.add_argument("--concept", required=True, help=f"one of {', '.join(choices)} (or an alias)")
    a.add_argument("--pitch-backend", default="chroma", help="notes: chroma, cqt, pyin or crepe")
    a.add_argument(
        "--interval-mode",
        choices=("melodic", "harmonic", "mix"),
        default="melodic",
        help="intervals: melodic or harmonic (two notes), mix (a full mix's lead voice)",
    )
    a.add_argument(
        "--backend",
        help="lead: salience or basic-pitch; tempos: librosa or essentia; keys: chroma or essentia",
    )
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
    if action == "mixes":
        return _mixes(args)
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
    from musicrfm.errors import ConfigError
    from musicrfm.evaluation.validation import (
        breakdown,
        calibration,
        plot_calibration,
        skipped_checks,
        validate_detectors,
    )

    backends: dict[str, list[str]] = {}
    for item in args.backend:
        concept, sep, names = item.partition("=")
        if not sep or not names:
            raise ConfigError(f"--backend takes CONCEPT=NAME[,NAME], got {item!r}")
        backends[concept.strip()] = [n.strip() for n in names.split(",") if n.strip()]
    summary, per_clip = validate_detectors(
        args.data,
        concepts=args.concepts,
        limit=args.limit,
        pitch_backends=tuple(args.pitch_backend),
        backends=backends,
        seed=args.seed,
        progress=not args.no_progress,
    )
    table = _markdown(summary)
    print(table, end="")
    for note in skipped_checks(args.data):
        print(f"skipped: {note}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        summary.to_csv(out / "detectors.csv", index=False)
        (out / "detectors.md").write_text(
            "# Detector validation\n\n"
            f"Dataset: `{args.data}`; Wilson 95% intervals; k right of n scored items "
            "(clips; bars or lead notes for per-bar and per-note tasks).\n\n" + table
        )
        per_clip.to_csv(out / "per_clip.csv", index=False)
        curve = calibration(per_clip)
        curve.to_csv(out / "calibration.csv", index=False)
        plot_calibration(curve, out / "calibration.png")
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
    (notes), ``--interval-mode`` as ``mode`` (intervals), ``--backend`` as ``backend``."""
    import inspect

    given = {"method": args.pitch_backend, "mode": args.interval_mode}
    if getattr(args, "backend", None):
        given["backend"] = args.backend
    params = inspect.signature(detect).parameters
    return {k: v for k, v in given.items() if k in params}


def _mixes(args: argparse.Namespace) -> int:
    from musicrfm.files import check_writable
    from musicrfm.synth.arrangements import write_mix_set

    check_writable(args.out, what="--out", folder=True)
    renderer = args.renderer or (
        "tinysoundfont" if args.soundfont.lower() == "timgm6mb" else "fluidsynth"
    )
    root = write_mix_set(
        args.out, count=args.count, soundfont=args.soundfont, backend=renderer, seed=args.seed
    )
    print(f"wrote {args.count} mixes to {root} ({renderer}, {args.soundfont})")
    return 0


def _audio(args: argparse.Namespace) -> int:
    import numpy as np

    from musicrfm.errors import AudioError
    from musicrfm.evaluation import detectors as det

    record = det.get_detector(args.concept)
    options = _detector_options(record.detect, args)
    failed = 0
    for path in args.files:
        try:
            d = det.detect_file(path, record.name, **options)
        except AudioError as exc:
            if len(args.files) == 1:  # one file: one line (the message names it)
                print(f"error: {exc} (1 of 1 files could not be labelled)", file=sys.stderr)
                return 2
            print(f"{path}\terror: {exc}", file=sys.stderr)
            failed += 1
            continue
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
    if failed:
        print(f"{failed} of {len(args.files)} files could not be labelled", file=sys.stderr)
    return 2 if failed else 0


def _instrument(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musicrfm.evaluation.instrument import train_instrument_classifier
    from musicrfm.files import check_writable

    base = Path(args.out)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    for suffix in (".safetensors", ".json"):  # before the training, not after it
        check_writable(base.with_name(base.name + suffix), what="--out")
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
