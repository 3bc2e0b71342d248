"""`musicrfm generate`: text prompts → audio, optionally steered toward a concept."""

from __future__ import annotations

import argparse
import logging

from musicrfm.commands import add_model_argument
from musicrfm.errors import ConfigError
from musicrfm.steering.schedule_registry import help_lines as schedule_help_lines

# = musicrfm.steering.plan.ROWS, written out so that parsing the command line does not import torch
# (tests/test_cli.py checks they agree)
GUIDANCE_ROWS = ("both", "conditional", "unconditional", "contrast")

log = logging.getLogger(__name__)

EPILOG = """\
steering (one direction from flags, or anything richer from --plan):
  --directions DIR --target D --coef 0.5      steer toward class D of those directions
  --layers SPEC     all | top:8 | 3,5,7 | 0-11, and/or a weighting: uniform | linear[:w0] |
                    exp[:kappa[:w0]]; join parts with '+', e.g. top:12+exp:0.95
  --schedule SPEC   KIND[:option=value,...], every kind with start= and duration=; times in
                    steps or seconds, e.g. linear-rise:start=2s,duration=6s. Kinds:
{schedules}
  --gate P          stochastic gate: steer on a random fraction P of the steps
  --target C,E,G    several classes at once (each with --coef)
  --target C --to G crossfade C -> G over --schedule's window (start/duration)

examples:
  musicrfm generate "lofi piano" --directions dirs/notes --target D --coef 0.5 \\
      --layers exp:0.95 --gate 0.3 --schedule linear-rise --seconds 10 --seed 0 -o out.wav
  musicrfm generate "jazz trio" --plan plan.toml --seed 0 1 2 -o takes/jazz.flac
  musicrfm generate --reproduce out.json -o again.wav

Each audio file gets a JSON sidecar (same name, .json) with the full plan, the model id, the
seed and every option; `--reproduce SIDECAR` regenerates the clip exactly (clips of the bundled
model need no --model).
"""


def epilog() -> str:
    """`EPILOG` with one line per registered schedule kind."""
    lines = "\n".join(schedule_help_lines(width=16, indent=20))
    return EPILOG.format(schedules=lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate audio from text prompts, optionally steered toward a concept",
        description="Generate music with MusicGen, steering its residual stream with concept "
        "directions (RFM eigenvectors) during generation.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="text prompt(s)")
    add_model_argument(
        p, default=None, note="; default: the bundled model, or with --reproduce the sidecar's"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16")
    s = p.add_argument_group("steering")
    s.add_argument("--plan", help="a steering plan file (.toml or .json)")
    s.add_argument("--directions", help="concept directions (file base or folder)")
    s.add_argument("--target", help="class to steer toward (comma-separated for several)")
    s.add_argument("--to", help="crossfade from --target to this class")
    s.add_argument("--coef", type=float, default=0.3, help="coefficient eta0 (default 0.3)")
    s.add_argument(
        "--component", default="0", help="eigenvector index, or a mix like 0:1,1:0.5 (default 0)"
    )
    s.add_argument("--layers", default="all", help="layer selection / weighting (see below)")
    s.add_argument(
        "--schedule", default="constant", metavar="SPEC", help="time schedule phi(t) (see below)"
    )
    s.add_argument("--gate", type=float, default=1.0, help="gate probability p (default 1)")
    s.add_argument(
        "--rows",
        choices=GUIDANCE_ROWS,
        default="both",
        help="guidance rows to steer: both (default), conditional, unconditional, or contrast "
        "(subtracted from the unconditional rows: the prompt's own rows stay untouched)",
    )
    s.add_argument("--gate-seed", type=int, help="seed of the gate (default: the generation seed)")
    s.add_argument("--save-plan", metavar="FILE", help="also write the plan to FILE (.toml/.json)")
    s.add_argument(
        "--allow-model-mismatch",
        action="store_true",
        help="accept directions recorded for another model id (same shapes)",
    )
    g = p.add_argument_group("generation")
    g.add_argument("--seconds", type=float, default=5.0, help="audio length (default 5)")
    g.add_argument("--seed", type=int, nargs="+", default=[0], help="seed(s) (default 0)")
    g.add_argument("--guidance-scale", type=float, default=3.0, help="CFG scale (default 3)")
    g.add_argument("--temperature", type=float, default=1.0, help="0: greedy (default 1)")
    g.add_argument("--top-k", type=int, default=250, help="0: off (default 250)")
    g.add_argument("--top-p", type=float, default=0.0, help="0: off (default 0)")
    g.add_argument("--batch", type=int, default=1, help="clips per forward batch (default 1)")
    g.add_argument("-o", "--output", default="out.wav", help=".wav/.flac file, or a folder")
    g.add_argument("--reproduce", metavar="SIDECAR", help="regenerate the clip a sidecar describes")
    p.set_defaults(func=run)


def _component(text: str):
    try:
        if ":" not in text:
            return int(text)
        return {int(k): float(v) for k, v in (item.split(":") for item in text.split(","))}
    except ValueError:
        raise ConfigError(
            f"--component must be an index or a mix like 0:1,1:0.5, got {text!r}"
        ) from None


def build_plan(args: argparse.Namespace):
    """The plan from --plan or from the single-direction flags (None: no steering)."""
    from musicrfm.steering.plan import SteeringPlan, parse_layers
    from musicrfm.steering.schedules import parse_schedule

    if args.plan and args.directions:
        raise ConfigError("use either --plan or --directions, not both")
    if args.plan:
        plan = SteeringPlan.load(args.plan)
        if args.gate_seed is not None:
            plan.seed = args.gate_seed
        return plan
    if not args.directions:
        if args.target or args.to:
            raise ConfigError("--target needs --directions (or use --plan)")
        return None
    common = dict(
        component=_component(args.component),
        gate=args.gate,
        rows=args.rows,
        **parse_layers(args.layers),
    )
    schedule = parse_schedule(args.schedule)
    targets = [t.strip() for t in (args.target or "").split(",") if t.strip()] or [None]
    if args.to:
        if len(targets) != 1 or targets[0] is None:
            raise ConfigError("--to needs exactly one --target class to fade from")
        plan = SteeringPlan.crossfade(
            args.directions,
            targets[0],
            args.to,
            args.coef,
            start=schedule.start,
            duration=schedule.duration,
            unit=schedule.unit,
            **common,
        )
    else:
        plan = SteeringPlan.multi(
            args.directions, targets, coef=args.coef, schedule=schedule, **common
        )
    plan.seed = args.gate_seed
    return plan


def run(args: argparse.Namespace) -> int:
    from musicrfm.models import load_model
    from musicrfm.steering.generation import (
        GenerationOptions,
        generate,
        load_sidecar,
        reproduce,
        write_results,
    )

    if args.reproduce:
        meta = load_sidecar(args.reproduce)
        info = meta["model"]
        model = load_model(
            args.model or info["model_id"], device=args.device, dtype=info.get("dtype", args.dtype)
        )
        result = reproduce(meta, model)
        same = result.meta["audio_sha256"] == meta.get("audio_sha256")
        path = write_results([result], args.output)[0]
        print(f"{path}  ({'identical to' if same else 'DIFFERS from'} {args.reproduce})")
        return 0 if same else 1
    if not args.prompts:
        raise ConfigError("give at least one prompt (or --reproduce SIDECAR)")
    plan = build_plan(args)
    if args.save_plan:
        if plan is None:
            raise ConfigError("--save-plan needs a plan (--directions or --plan)")
        plan.save(args.save_plan)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    options = GenerationOptions(
        seconds=args.seconds,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        batch=args.batch,
        strict=not args.allow_model_mismatch,
    )
    results = generate(model, args.prompts, plan=plan, seed=args.seed, options=options)
    for path, r in zip(write_results(results, args.output), results):
        print(f"{path}  ({r.seconds:.2f} s, seed {r.seed}: {r.prompt!r})")
    return 0
