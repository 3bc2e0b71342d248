"""`musicrfm sweep CONFIG --out DIR`: run (or resume) a steering sweep with causal controls."""

from __future__ import annotations

import argparse
import logging

from musicrfm.commands import add_model_argument

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a steering sweep (concepts x targets x η0 x prompts x seeds, with controls)",
        description=(
            "Expand a sweep config (TOML or JSON) into a grid of conditions -- concept direction "
            "and causal controls (random, sign-flipped, orthogonal, other-class directions at equal "
            "norm, layers and schedule) per concept, target and η0, unsteered baselines, top-K / "
            "weighting / gate / schedule ablations, multi-direction combinations and crossfades -- "
            "generate every clip, and judge it with model-independent detectors (plus the "
            "instrument classifier, CLAP and the paper's probe accuracy when available). Audio is "
            "cached by the condition's hash and each finished condition is written atomically, "
            "so an interrupted sweep resumes where it stopped. See musicrfm.experiments.sweep.run "
            "for the config format; then run `musicrfm report DIR`."
        ),
    )
    p.add_argument("config", help="sweep config (.toml or .json)")
    p.add_argument("--out", required=True, help="sweep folder (created; reused to resume)")
    add_model_argument(p, default=None, note="; default: the config's model")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--report", action="store_true", help="also write the report (DIR/report)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicrfm.errors import ConfigError
    from musicrfm.experiments.sweep.config import load_config
    from musicrfm.experiments.sweep.run import run_sweep
    from musicrfm.files import check_writable

    cfg = load_config(args.config)
    if args.model:
        cfg.model = args.model
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {args.threads}")
        cfg.threads = args.threads
    check_writable(args.out, what="--out", folder=True)
    result = run_sweep(cfg, args.out, progress=not args.no_progress)
    from musicrfm.capture.distributed import is_main

    if not is_main():  # under a launcher the conditions are shared out; rank 0 reports
        return 0
    print(
        f"{result.conditions} conditions: {result.finished} run now, {result.skipped} already "
        f"done; {result.generated_clips} clips generated, {result.reused_clips} reused -> {args.out}"
    )
    if args.report:
        from musicrfm.experiments.sweep.report import build_sweep_report

        written = build_sweep_report(args.out)
        print(written["specificity"])
        print(f"report: {written['html']}")
    return 0
