"""`musicrfm reproduce`: the paper's protocol end to end, its tables beside the paper's."""

from __future__ import annotations

import argparse

from musicrfm.commands import add_model_argument

TABLES_HELP = (
    "comma-separated paper tables (default 1,2,5,6,8,9,10): 1 classification, 2 single-direction "
    "steering, 5 pairs, 6 schedules and crossfade, 8 layer weighting, 9 top-K, 10 gate p "
    "(3, 4 and 7 are not measurements this verb makes: it says why)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's protocol on a model and write its tables beside the paper's",
        description=(
            "Run the paper's protocol (the versioned protocol.toml shipped with musicrfm: "
            "concepts, η0 grid, prompts, gate, layer weighting, 500 generations per condition, "
            "probe budget) on MODEL: take SynTheory's clips (from the hub, or the project's "
            "SynTheory-equivalent generator: --syntheory), extract every layer's features, train RFM directions and probes, run the steering sweeps, and "
            "write each table in the paper's layout with the paper's numbers beside ours "
            "(tableN.md + tableN.json, reproduce.json) in --out. The plan -- clips, decoder "
            "steps, generations and an ESTIMATE of time and memory from a measured per-step "
            "cost on --device -- is printed first; without --yes the verb asks (or, when not "
            "on a terminal, stops after the plan). Every stage skips finished work: rerun the "
            "same command to resume after an interruption."
        ),
    )
    add_model_argument(p, default="facebook/musicgen-large")
    p.add_argument("--tables", default=None, help=TABLES_HELP)
    p.add_argument(
        "--out", default="reproduce-report", help="report folder (default reproduce-report)"
    )
    p.add_argument(
        "--work",
        default=None,
        help="cache folder for clips, features, directions, sweeps (default OUT/work)",
    )
    p.add_argument(
        "--budget", default="paper", choices=["paper", "fast"],
        help="RFM probe search: the paper's 100 draws x 15 iterations (default) or fast",
    )  # fmt: skip
    p.add_argument(
        "--scale", type=float, default=1.0,
        help="multiply every sample size of the protocol (training clips per class, generations "
        "per condition) by F in (0, 1] (default 1: the paper's)",
    )  # fmt: skip
    p.add_argument(
        "--concepts", default=None,
        help="only these concepts (default the protocol's seven); tables that need a missing "
        "concept say so",
    )  # fmt: skip
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="generated clip length (default the protocol's 30 s)",
    )
    p.add_argument(
        "--clip-seconds",
        type=float,
        default=None,
        help="training clip length (default SynTheory's 4 s)",
    )
    p.add_argument(
        "--syntheory", default="auto", choices=["auto", "hub", "local"],
        help="where the training clips come from: hub (SynTheory itself, the protocol's pinned "
        "revision of meganwei/syntheory; needs pip install 'musicrfm[hub]' and a connection), "
        "local (the SynTheory-equivalent generator), or auto (default: the hub when it can be "
        "used, else local with a notice saying why)",
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="model dtype (bf16/fp16 on GPU)",
    )
    p.add_argument("--batch", type=int, default=1, help="generations per forward batch (default 1)")
    p.add_argument(
        "--clap-checkpoint",
        default=None,
        help="a local laion-clap checkpoint; without one CLAP is reported as not measured",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seeds clip samples, splits, targets and generations"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument(
        "--controls", action="store_true",
        help="also run the causal controls (ours, not the paper's: random, sign-flipped, "
        "orthogonal and other-class directions at equal norm, at η0 0.6) -> controls.md",
    )  # fmt: skip
    p.add_argument(
        "--protocol", default=None,
        help="a protocol file to run instead of the paper's (a copy of the shipped "
        "musicrfm/experiments/reproduce/protocol.toml with your changes, e.g. other prompts)",
    )  # fmt: skip
    p.add_argument("--yes", action="store_true", help="run without asking after the plan")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from musicrfm.commands import apply_threads
    from musicrfm.experiments.reproduce import (
        DEFAULT_TABLES,
        ReproduceOptions,
        load_protocol,
        parse_tables,
        prepare_reproduce,
        run_reproduce,
    )

    protocol = load_protocol(args.protocol)
    tables = DEFAULT_TABLES if args.tables is None else parse_tables(args.tables, protocol)
    options = ReproduceOptions(
        tables=tables, budget=args.budget, scale=args.scale, concepts=args.concepts,
        seconds=args.seconds, clip_seconds=args.clip_seconds, device=args.device,
        dtype=args.dtype, batch=args.batch, clap_checkpoint=args.clap_checkpoint,
        seed=args.seed, workers=args.threads, controls=args.controls, syntheory=args.syntheory,
    )  # fmt: skip
    apply_threads(args.threads)
    progress = not args.no_progress
    prepared = prepare_reproduce(
        args.model, options, out=args.out, work=args.work, protocol=args.protocol,
        progress=progress,
    )  # fmt: skip
    if prepared.source.notice:
        print(f"notice: {prepared.source.notice}", file=sys.stderr, flush=True)
    print("\n".join(prepared.plan.lines()), flush=True)
    if not args.yes:
        if not sys.stdin.isatty():
            print("not started: pass --yes to run this plan")
            return 0
        if input("run it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not started")
            return 0
    command = None
    if sys.argv[1:2] == ["reproduce"]:
        command = "musicrfm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_reproduce(prepared, progress=progress, command=command)
    for name, info in result.stages.items():
        print(f"{name}: {_stage_line(info)}")
    for n, table in sorted(result.tables.items()):
        state = "written" if table.measured else f"not measured ({table.notes[0]})"
        print(f"table {n}: {state} -> {args.out}/table{n}.md")
    return 0


def _stage_line(info: dict) -> str:
    """``12.3 s; trained notes, chords`` -- a stage's time and what it did, on one line."""
    parts = []
    for k, v in info.items():
        if k == "runs":  # sweeps: per sweep, conditions run now / skipped, clips generated
            parts += [
                f"{name} {r['finished_now']} run, {r['skipped']} skipped, "
                f"{r['generated_clips']} clips generated"
                for name, r in v.items()
            ]
        elif k != "seconds":
            shown = ", ".join(map(str, v)) if isinstance(v, list) else v
            parts.append(f"{k} {shown if shown != '' else '-'}")
    return f"{info.get('seconds', 0):.1f} s" + (f"; {'; '.join(parts)}" if parts else "")
