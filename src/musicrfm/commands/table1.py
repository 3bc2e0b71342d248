"""`musicrfm table1`: the paper's classification table (Table 1) measured on a model."""

from __future__ import annotations

import argparse

from musicrfm.commands import add_model_argument

CONCEPTS_HELP = (
    "comma-separated concepts (default all seven): notes, intervals, scales, chords, "
    "progressions (or chord_progressions), tempos, time_signatures"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "table1",
        help="measure the paper's classification table (RFM vs baselines, every concept)",
        description=(
            "Synthesise each concept's clips, extract every layer's features with mean and "
            "last-token pooling, train RFM probes on both and the baselines (ridge, logistic, "
            "difference of means, 2-layer MLP) on the mean-pooled features, all on the same "
            "splits, and write the paper's Table 1: rows = methods, columns = concepts + Avg., "
            "each cell the test score at the layer chosen by validation (accuracy; R² for "
            "tempos), beside the paper's own numbers. Writes table1.md/.csv/.json, "
            "layer_scores.csv and per-layer plots; datasets, features and probe scores are "
            "cached in --work, so a rerun resumes."
        ),
    )
    add_model_argument(p)
    p.add_argument("--out", default="table1-report", help="report folder (default table1-report)")
    p.add_argument("--work", default=None, help="cache folder (default ~/.cache/musicrfm/table1)")
    p.add_argument("--concepts", default=None, help=CONCEPTS_HELP)
    p.add_argument(
        "--clips-per-class",
        type=int,
        default=8,
        help="clips per class (tempos: per BPM); at least 6 (default 8)",
    )
    p.add_argument(
        "--tempo-step",
        type=int,
        default=1,
        help="tempos: every Nth BPM from 50 to 210 (default 1, all 161 as in SynTheory)",
    )
    p.add_argument(
        "--octaves",
        default=None,
        help="notes only: comma-separated SynTheory octaves (MIDI // 12; default all, 0-8); "
        "4,5,6 is the bundled model's range (MIDI 48-83)",
    )
    p.add_argument(
        "--programs",
        default=None,
        help="comma-separated GM programs (default: the bundled model's 12 training programs; "
        "'all': SynTheory's 92)",
    )
    p.add_argument(
        "--seconds", type=float, default=4.0, help="clip length (default 4, SynTheory's)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the clip sample and the splits")
    p.add_argument(
        "--budget",
        default="fast",
        choices=["fast", "paper"],
        help="RFM hyper-parameter search: fast (default) or the paper's 100 draws x 15 iterations",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads and render processes (default 1: a shared CPU is faster so)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from musicrfm.commands import check_device
    from musicrfm.errors import ConfigError
    from musicrfm.experiments.table1 import Table1Config, run_table1
    from musicrfm.files import check_writable

    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    check_device(args.device)
    check_writable(args.out, what="--out", folder=True)  # before minutes of rendering
    if args.work is not None:
        check_writable(args.work, what="--work", folder=True)
    changes: dict = {}
    if args.concepts is not None:
        changes["concepts"] = args.concepts
    if args.octaves is not None:
        changes["octaves"] = _numbers(args.octaves, "--octaves")
    if args.programs is not None:
        changes["programs"] = _programs(args.programs)
    cfg = Table1Config(
        clips_per_class=args.clips_per_class, seed=args.seed, budget=args.budget,
        tempo_step=args.tempo_step, seconds=args.seconds, device=args.device,
        workers=args.threads, **changes,
    )  # fmt: skip
    import torch

    torch.set_num_threads(args.threads)
    command = None
    if sys.argv[1:2] == ["table1"]:
        command = "musicrfm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_table1(
        args.model,
        out=args.out,
        work=args.work,
        config=cfg,
        progress=not args.no_progress,
        command=command,
    )
    print(result.paths["markdown"].read_text())
    print(
        f"{result.summary['model']}: {len(cfg.concepts)} concepts in "
        f"{result.summary['seconds']['total']:.0f} s -> {args.out}/ "
        f"(table1.md, table1.csv, table1.json, layer_scores.csv, plots/)"
    )
    return 0


def _programs(text: str) -> tuple[int, ...] | None:
    """'all' (SynTheory's 92: None) or GM program numbers / names, comma-separated."""
    from musicrfm import theory

    if text.strip().lower() == "all":
        return None
    return tuple(theory.parse_program(p.strip()) for p in text.split(",") if p.strip())


def _numbers(text: str, option: str) -> tuple[int, ...]:
    from musicrfm.errors import ConfigError

    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, got {text!r}") from None
