"""`musicrfm mini train|gates`: train the bundled mini MusicGen and measure its quality gates."""

from __future__ import annotations

import argparse
import json
import logging

from musicrfm.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mini",
        help="train the bundled small MusicGen-architecture model, or measure its quality gates",
        description=(
            "Train the bundled mini MusicGen (spectral codec + tiny T5 + MusicGen decoder) on "
            "rendered one-note clips, or measure its codec and unsteered-generation gates."
        ),
    )
    sub = parser.add_subparsers(dest="mini_action", metavar="<action>")
    tr = sub.add_parser(
        "train",
        help="run the whole training recipe and write the model folder",
        description="Render clips, fit the codec, train the decoder, save the model, run the gates.",
    )
    tr.add_argument("--out", default="models/musicgen-mini", help="model folder to write")
    tr.add_argument("--steps", type=int, default=None, help="decoder training steps")
    tr.add_argument("--batch-size", type=int, default=None, help="clips per training step")
    tr.add_argument("--seed", type=int, default=0, help="seed for data split, init and sampling")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    tr.add_argument("--work-dir", default=None, help="cache for codec, codes and checkpoints")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.add_argument("--no-gates", action="store_true", help="skip measuring the gates at the end")
    tr.set_defaults(func=run)
    ga = sub.add_parser(
        "gates",
        help="measure the codec and unsteered-generation gates of a mini model folder",
        description="Measure the gates with detectors independent of MusicGen; update the card.",
    )
    ga.add_argument("--model", default="models/musicgen-mini", help="mini model folder")
    ga.add_argument("--n-per-prompt", type=int, default=None, help="generations per prompt")
    ga.add_argument("--seed", type=int, default=0, help="sampling seed")
    ga.add_argument("--no-card", action="store_true", help="do not rewrite the model card")
    ga.set_defaults(func=run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run(args: argparse.Namespace) -> int:
    if args.mini_action == "train":
        from musicrfm.mini.train import TrainConfig, train

        cfg = TrainConfig(seed=args.seed)
        if args.steps is not None:
            if args.steps < 1:
                raise ConfigError("--steps must be at least 1")
            cfg.steps = args.steps
        if args.batch_size is not None:
            cfg.batch_size = args.batch_size
        if args.threads is not None:
            cfg.threads = args.threads
        out = train(args.out, config=cfg, work_dir=args.work_dir, resume=args.resume)
        print(f"model written to {out}")
        if not args.no_gates:
            from musicrfm.mini import gates as gates_mod

            result = gates_mod.run_gates(out, seed=args.seed, write_card=True)
            print(json.dumps(result["summary"], indent=2))
        return 0
    if args.mini_action == "gates":
        from musicrfm.mini import gates as gates_mod

        kwargs = {} if args.n_per_prompt is None else {"n_per_prompt": args.n_per_prompt}
        result = gates_mod.run_gates(
            args.model, seed=args.seed, write_card=not args.no_card, **kwargs
        )
        print(json.dumps(result["summary"], indent=2))
        return 0 if result["summary"]["all_passed"] else 1
    raise ConfigError("choose an action: musicrfm mini train | musicrfm mini gates")
