"""`musicrfm generate`: text prompts → audio, optionally steered toward a concept."""

from __future__ import annotations

import argparse
import logging

from musicrfm.commands import add_model_argument, add_threads_argument, apply_threads, check_device
from musicrfm.errors import ConfigError
from musicrfm.steering.schedule_registry import help_lines as schedule_help_lines

# = musicrfm.steering.plan.ROWS, written out so that parsing the command line does not import torch
# (tests/test_cli.py checks they agree)
GUIDANCE_ROWS = ("both", "conditional", "unconditional", "contrast")

log = logging.getLogger(__name__)

EPILOG = """\
steering (one direction from flags, or anything richer from --plan):
  --directions DIR --target D --coef 0.5      steer toward class D of those directions
  --coef 0.1x       relative: 0.1 x the median activation norm of the directions' features
  --layers SPEC     all | top:8 | 3,5,7 | 0-11, and/or a weighting: uniform | linear[:w0] |
                    exp[:kappa[:w0]]; join parts with '+', e.g. top:12+exp:0.95
  --schedule SPEC   KIND[:option=value,...], every kind with start= and duration=; times in
                    steps or seconds, e.g. linear-rise:start=2s,duration=6s. Kinds:
{schedules}
  --gate P          stochastic gate: steer on a random fraction P of the steps
  --target C,E,G    several classes at once (each with --coef)
  --target C --to G crossfade C -> G over --schedule's window (start/duration)
  --notes "C E G"   a note sequence on the beat grid: one keyframed direction per note, at
                    --coef during its span, 0 elsewhere, crossfading over --fade-beats at each
                    boundary; one note per bar (--beats-per-bar, default 4) unless
                    --beats-per-note N / --bars-per-note N; '|' marks bars: "C E | G"
  --bpm TEMPO       the grid of --notes: 120 (default) or a linear ramp 90..130 (the beats follow
                    it; the tempo itself is not steered)

examples:
  musicrfm generate "lofi piano" --directions dirs/notes --target D --coef 0.5 \\
      --layers exp:0.95 --gate 0.3 --schedule linear-rise --seconds 10 --seed 0 -o out.wav
  musicrfm generate "jazz trio" --plan plan.toml --seed 0 1 2 -o takes/jazz.flac
  musicrfm generate "acoustic piano" --directions dirs/notes --notes "C E G" --bpm 120 \\
      --seconds 6 -o arpeggio.wav
  musicrfm generate --reproduce out.json -o again.wav

Each audio file gets a JSON sidecar (same name, .json) with the full plan, the model id, the
seed, the torch thread count and every option; `--reproduce SIDECAR` regenerates the clip
exactly (clips of the bundled model need no --model). Each clip is written as soon as it is
made; run an interrupted command again and the clips it finished are kept, not regenerated.
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
    add_threads_argument(p)
    s = p.add_argument_group("steering")
    s.add_argument("--plan", help="a steering plan file (.toml or .json)")
    s.add_argument("--directions", help="concept directions (file base or folder)")
    s.add_argument("--target", help="class to steer toward (comma-separated for several)")
    s.add_argument("--to", help="crossfade from --target to this class")
    s.add_argument(
        "--coef",
        type=_coef,
        default=0.3,
        help="coefficient eta0 (default 0.3), or relative: 0.1x = 0.1 x the median activation "
        "norm of the features the directions were trained on",
    )
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
    q = p.add_argument_group("note sequences (see below)")
    q.add_argument("--notes", metavar="SEQ", help='notes on the beat grid: "C E G", "C E | G"')
    q.add_argument("--bpm", metavar="TEMPO", help="grid tempo of --notes: 120 (default) or 90..130")
    q.add_argument("--beats-per-note", type=float, metavar="N", help="default: one bar")
    q.add_argument("--bars-per-note", type=float, metavar="N", help="note length in bars")
    q.add_argument("--beats-per-bar", type=float, metavar="N", help="default 4")
    q.add_argument(
        "--fade-beats", type=float, metavar="F", help="crossfade at each boundary (default 0.25)"
    )
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
    g.add_argument(
        "--no-resume",
        action="store_true",
        help="regenerate clips even when the same command already wrote them",
    )
    p.set_defaults(func=run)


def _coef(text: str) -> float | str:
    """--coef: a number (eta0), or '<number>x' (relative, resolved against the directions)."""
    import re

    if re.fullmatch(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*[x×]\s*", text):
        return text.strip()
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a number (eta0) nor relative like 0.1x"
        ) from None


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

    if getattr(args, "notes", None) is not None:
        return _sequence_plan(args)
    grid = ["--" + k.replace("_", "-") for k in _GRID if getattr(args, k, None) is not None]
    if grid:
        raise ConfigError(
            f"{', '.join(grid)} set the beat grid of --notes and need it (tempo itself is not "
            'steered): e.g. --notes "C E G" --bpm 90..130'
        )
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


# the flags that set the beat grid of --notes (argparse attribute names)
_GRID = ("bpm", "beats_per_note", "bars_per_note", "beats_per_bar", "fade_beats")


def _sequence_plan(args: argparse.Namespace):
    """The plan of --notes: one keyframed direction per note on the --bpm grid."""
    from musicrfm.steering.plan import SteeringPlan, parse_layers
    from musicrfm.steering.sequence import BPM_FORMS, NoteSequence, Tempo

    if args.plan:
        raise ConfigError(
            "use either --notes or --plan (a plan file takes the sequence as a [sequence] table)"
        )
    if args.target or args.to:
        raise ConfigError("--notes sets the targets itself (one per note); drop --target/--to")
    if not args.directions:
        raise ConfigError(
            "--notes needs --directions (note directions), e.g. --directions dirs/notes"
        )
    if args.schedule not in (None, "constant"):
        raise ConfigError(
            "--notes makes its own schedules (keyframes on the beat grid); drop --schedule"
        )
    grid = {k: getattr(args, k) for k in _GRID if getattr(args, k, None) is not None}
    if "bpm" in grid:
        try:
            grid["bpm"] = Tempo.parse(grid["bpm"])
        except ConfigError:
            raise ConfigError(f"cannot read --bpm {args.bpm!r}; use {BPM_FORMS}") from None
    seq = NoteSequence(args.notes, **grid)
    plan = SteeringPlan.from_sequence(
        seq,
        args.directions,
        args.coef,
        component=_component(args.component),
        gate=args.gate,
        rows=args.rows,
        seed=args.gate_seed,
        **parse_layers(args.layers),
    )
    seconds = getattr(args, "seconds", None)
    span = f"{len(seq.spans())} notes over {seq.seconds:.2f} s at {seq.tempo.describe()}"
    if seconds is not None and abs(seq.seconds - seconds) > 1e-6:
        what = "the clip ends first" if seq.seconds > seconds else "no steering after it ends"
        log.info("--notes %r: %s; the clip is %.2f s (%s)", seq.notes, span, seconds, what)
    else:
        log.info("--notes %r: %s", seq.notes, span)
    return plan


def run(args: argparse.Namespace) -> int:
    from musicrfm.models import load_model
    from musicrfm.steering.generation import (
        GenerationOptions,
        check_outputs,
        check_seeds,
        generate_files,
        load_sidecar,
        output_paths_for,
        reproduce,
        reproduce_note,
    )

    apply_threads(args.threads)
    check_device(args.device)
    if args.reproduce:
        meta = load_sidecar(args.reproduce)
        out = output_paths_for([(meta["prompt"], meta["seed"])], args.output)
        check_outputs(out)
        info = meta["model"]
        model = load_model(
            args.model or info["model_id"], device=args.device, dtype=info.get("dtype", args.dtype)
        )
        result = reproduce(meta, model)
        same = result.meta["audio_sha256"] == meta.get("audio_sha256")
        path = result.save(out[0])
        if same:
            print(f"{path}  (identical to {args.reproduce})")
            return 0
        print(f"{path}  (DIFFERS from {args.reproduce}: {reproduce_note(meta, result)})")
        return 1
    if not args.prompts:
        raise ConfigError("give at least one prompt (or --reproduce SIDECAR)")
    options = GenerationOptions(  # checked before anything is loaded
        seconds=args.seconds,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        batch=args.batch,
        strict=not args.allow_model_mismatch,
    )
    seeds = check_seeds(args.seed)
    check_outputs(output_paths_for([(p, s) for p in args.prompts for s in seeds], args.output))
    plan = build_plan(args)
    if args.save_plan:
        if plan is None:
            raise ConfigError("--save-plan needs a plan (--directions or --plan)")
        plan.save(args.save_plan)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    files = generate_files(
        model,
        args.prompts,
        args.output,
        plan=plan,
        seed=seeds,
        options=options,
        resume=not args.no_resume,
    )
    for path, r in files:
        if r is None:
            print(f"{path}  (already made by this command: kept)")
        else:
            print(f"{path}  ({r.seconds:.2f} s, seed {r.seed}: {r.prompt!r})")
    return 0
