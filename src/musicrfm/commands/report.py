"""`musicrfm report SWEEP_DIR`: tables, figures and an HTML page for a sweep."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write the report of a sweep (CSV/Markdown tables, figures, HTML with audio)",
        description=(
            "Read a sweep folder (from `musicrfm sweep`) and write: per-clip results, target "
            "accuracy by concept/condition/η0 with bootstrap 95% CIs and n, the concept direction "
            "vs each causal control and a statement whether the effect is specific to the concept "
            "direction, the paper's tables as far as they apply (2, 5, 6, 8, 9, 10: FD, MMD, "
            "adherence, probe and detector accuracy), figures (accuracy vs η0, detector traces for "
            "schedules and crossfades, spectrogram/chroma panels) and index.html with audio players."
        ),
    )
    p.add_argument("sweep_dir", help="folder written by `musicrfm sweep`")
    p.add_argument("--out", default=None, help="report folder (default: SWEEP_DIR/report)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-examples", action="store_true", help="skip example panels and players")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musicrfm.errors import ConfigError
    from musicrfm.experiments.sweep.report import build_sweep_report
    from musicrfm.files import check_writable

    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be at least 1 (bootstrap resamples), got {args.n_boot}")
    out = Path(args.out) if args.out else Path(args.sweep_dir) / "report"
    if Path(args.sweep_dir).is_dir() or args.out:
        check_writable(out, what="report folder" if args.out is None else "--out", folder=True)
    written = build_sweep_report(
        args.sweep_dir,
        args.out,
        n_boot=args.n_boot,
        seed=args.seed,
        examples=not args.no_examples,
    )
    print(written["specificity"])
    for key in ("accuracy", "controls", "table2", "html"):
        if key in written:
            print(f"{key}: {written[key]}")
    return 0
