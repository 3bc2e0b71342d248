"""`musicrfm generate`: text prompts → audio, optionally steered toward a concept."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

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
                    it; the tempo itself is steered only when tempo directions are given)
  --chords "C G Am F"  a chord progression on the same grid: one chord per bar (--bars-per-chord
                    N), '|' bars ("C G | Am F"), spellings C Cm C:min Cmin Cdim C° Caug C+ (C7,
                    Cm7... as their triad); keyframed chord-root + chord-quality directions,
                    crossfading at the bar lines; --chord-parts quality steers the quality only
  --directions A B ...  several direction files for --chords / --notes / tempo curves, each
                    recognised by what it holds (chord qualities, chord roots, notes, tempo)
  --bpm 100 with onset directions (`mini headline --concept beats`): pulses them on every beat,
                    so the model strikes at that tempo (a ramp 90..130 too; over --chords/--notes
                    or the whole clip)
  --bpm 90..130 with tempo directions: steers the tempo along the curve (over --chords/--notes,
                    or the whole clip): 'slower' below --tempo-reference (default: the ramp's
                    middle), 'faster' above it, at --coef where it deviates most
  Two targets of one concept fully on at once (e.g. --target C,G) compile with a warning.

examples:
  musicrfm generate "lofi piano" --directions dirs/notes --target D --coef 0.5 \\
      --layers exp:0.95 --gate 0.3 --schedule linear-rise --seconds 10 --seed 0 -o out.wav
  musicrfm generate "jazz trio" --plan plan.toml --seed 0 1 2 -o takes/jazz.flac
  musicrfm generate "acoustic piano" --directions dirs/notes --notes "C E G" --bpm 120 \\
      --seconds 6 -o arpeggio.wav
  musicrfm generate "warm pad" --chords "C G Am F" --bpm 100 \\
      --directions dirs/chords dirs/chord-roots --coef 0.1x --seconds 10 -o prog.wav
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
    s.add_argument(
        "--directions",
        nargs="+",
        action="extend",
        metavar="DIR",
        help="concept directions (file base or folder); several for --chords/--notes/tempo",
    )
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
    s.add_argument(
        "--codebooks",
        type=int,
        nargs="+",
        metavar="K",
        help="steer only these codebooks' predictions; the others come from an unsteered copy "
        "of each decoder step (twice the decoder's work). On the beat testbed `--codebooks 0 1` "
        "(the notes) keeps more of the prompt's timbre under --chords",
    )
    q = p.add_argument_group("note sequences, chord progressions, tempo curves (see below)")
    q.add_argument("--notes", metavar="SEQ", help='notes on the beat grid: "C E G", "C E | G"')
    q.add_argument(
        "--bpm",
        metavar="TEMPO",
        help="grid tempo of --notes/--chords: 120 (default) or 90..130; with tempo directions "
        "also the tempo steered",
    )
    q.add_argument("--beats-per-note", type=float, metavar="N", help="default: one bar")
    q.add_argument("--bars-per-note", type=float, metavar="N", help="note length in bars")
    q.add_argument("--beats-per-bar", type=float, metavar="N", help="default 4")
    q.add_argument(
        "--fade-beats", type=float, metavar="F", help="crossfade at each boundary (default 0.25)"
    )
    q.add_argument("--chords", metavar="SEQ", help='a chord progression: "C G Am F", "C G | Am F"')
    q.add_argument("--bars-per-chord", type=float, metavar="N", help="default: one bar")
    q.add_argument(
        "--chord-parts", metavar="PARTS", help="root,quality (default both) or one of them"
    )
    q.add_argument(
        "--tempo-reference",
        type=float,
        metavar="BPM",
        help="steer a tempo direction relative to this tempo (default: the --bpm ramp's middle)",
    )
    s.add_argument("--save-plan", metavar="FILE", help="also write the plan to FILE (.toml/.json)")
    s.add_argument(
        "--allow-model-mismatch",
        action="store_true",
        help="accept directions recorded for another model id (same shapes)",
    )
    g = p.add_argument_group("generation")
    g.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"audio length (default {DEFAULT_SECONDS:g}; with --chords or --notes the "
        "progression's own length)",
    )
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

    sources = _directions_list(args)
    if getattr(args, "notes", None) is not None or getattr(args, "chords", None) is not None:
        return _progression_plan(args, sources)
    grid = [
        "--" + k.replace("_", "-")
        for k in (*_GRID, *_CHORD_ONLY)
        if getattr(args, k, None) is not None
    ]
    if getattr(args, "bpm", None) is not None and sources and not args.plan:
        return _progression_plan(args, sources)  # a tempo curve over the clip
    if grid:
        raise ConfigError(
            f"{', '.join(grid)} set the beat grid of --notes and need it (tempo itself is not "
            'steered): e.g. --notes "C E G" --bpm 90..130; or --chords "C G Am F"; or steer '
            "the tempo along --bpm with tempo --directions"
        )
    if args.plan and sources:
        raise ConfigError("use either --plan or --directions, not both")
    if len(sources) > 1:
        raise ConfigError(
            f"{len(sources)} --directions given: several are for --chords, --notes or a --bpm "
            "tempo curve; give one for --target (a prompt right after --directions is read as "
            "a path: put prompts first)"
        )
    args.directions = sources[0] if sources else None
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


DEFAULT_SECONDS = 5.0


def _curve_seconds(args: argparse.Namespace, chords: Any, notes: Any) -> float | None:
    """--seconds as make_progression takes it: a tempo curve alone needs a length (the clip's,
    default 5 s); with chords or notes None leaves it to their grid."""
    seconds = getattr(args, "seconds", None)
    if seconds is None and chords is None and notes is None:
        return DEFAULT_SECONDS
    return seconds


# the flags that set the beat grid of --notes / --chords (argparse attribute names)
_GRID = ("bpm", "beats_per_note", "bars_per_note", "beats_per_bar", "fade_beats")
_CHORD_ONLY = ("bars_per_chord", "chord_parts", "tempo_reference")


def _directions_list(args: argparse.Namespace) -> list[str]:
    """--directions as a list (one path, or several for progressions)."""
    value = getattr(args, "directions", None)
    if value is None:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _progression_plan(args: argparse.Namespace, sources: list[str]):
    """The plan of --chords / --notes / a --bpm tempo curve: keyframed directions on one grid
    (`musicrfm.steering.progressions`)."""
    from musicrfm.steering.plan import compile_progression, parse_layers
    from musicrfm.steering.progressions import direction_roles, make_progression
    from musicrfm.steering.sequence import BPM_FORMS, Tempo

    chords, notes = getattr(args, "chords", None), getattr(args, "notes", None)
    flag = "--chords" if chords is not None else "--notes" if notes is not None else "--bpm"
    if chords is not None and notes is not None:
        raise ConfigError("use either --chords or --notes, not both")
    if args.plan:
        raise ConfigError(
            f"use either {flag} or --plan (a plan file takes it as a [progression] table)"
        )
    if args.target or args.to:
        raise ConfigError(f"{flag} sets the targets itself (keyframes); drop --target/--to")
    if not sources:
        what, eg = (
            ("note", "dirs/notes")
            if flag == "--notes"
            else ("chord-quality and chord-root", "dirs/chords dirs/chord-roots")
        )
        raise ConfigError(f"{flag} needs --directions ({what} directions), e.g. --directions {eg}")
    if args.schedule not in (None, "constant"):
        raise ConfigError(
            f"{flag} makes its own schedules (keyframes on the beat grid); drop --schedule"
        )
    bpm = None
    if getattr(args, "bpm", None) is not None:
        try:
            bpm = Tempo.parse(args.bpm)
        except ConfigError:
            raise ConfigError(f"cannot read --bpm {args.bpm!r}; use {BPM_FORMS}") from None
    roles = direction_roles(sources)
    steer_tempo, steer_beat = "tempo" in roles, "beat" in roles
    if flag == "--bpm" and not (steer_tempo or steer_beat):
        raise ConfigError(
            "--bpm alone steers the tempo, but none of --directions is onset or tempo "
            'directions; or give --notes "C E G" / --chords "C G Am F" for --bpm to set their '
            "beat grid"
        )
    if (steer_tempo or steer_beat) and bpm is None:
        what = "tempo" if steer_tempo else "onset"
        raise ConfigError(
            f"{what} directions steer the tempo along --bpm: give --bpm 100 or 90..130"
        )
    prog = make_progression(
        chords=chords,
        notes=notes,
        bpm=bpm,
        bars_per_chord=getattr(args, "bars_per_chord", None),
        beats_per_note=args.beats_per_note,
        bars_per_note=args.bars_per_note,
        beats_per_bar=args.beats_per_bar,
        fade_beats=args.fade_beats,
        parts=getattr(args, "chord_parts", None),
        steer_tempo=steer_tempo,
        tempo_reference=getattr(args, "tempo_reference", None),
        seconds=_curve_seconds(args, chords, notes),
        steer_beat=steer_beat,
    )
    if chords is None and getattr(args, "chord_parts", None) is not None:
        raise ConfigError("--chord-parts picks the parts of --chords")
    for notice in prog.notices:
        log.info("--chords: %s", notice)
    plan = compile_progression(
        prog,
        sources,
        args.coef,
        component=_component(args.component),
        gate=args.gate,
        rows=args.rows,
        seed=args.gate_seed,
        **parse_layers(args.layers),
    )
    if getattr(args, "seconds", None) is None:  # the clip is the progression, all of it
        args.seconds = prog.seconds
    seconds = args.seconds
    span = f"{prog.describe()}: {len(plan.directions)} directions over {prog.seconds:.2f} s"
    if seconds is not None and abs(prog.seconds - seconds) > 1e-6:
        what = "the clip ends first" if prog.seconds > seconds else "no steering after it ends"
        log.info("%s; the clip is %.2f s (%s)", span, seconds, what)
    else:
        log.info("%s", span)
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
    explicit_seconds = args.seconds
    options = GenerationOptions(  # checked before anything is loaded
        seconds=DEFAULT_SECONDS if explicit_seconds is None else explicit_seconds,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        batch=args.batch,
        strict=not args.allow_model_mismatch,
    )
    seeds = check_seeds(args.seed)
    check_outputs(output_paths_for([(p, s) for p in args.prompts for s in seeds], args.output))
    plan = build_plan(args)  # --chords / --notes set args.seconds to their length if unset
    if explicit_seconds is None and args.seconds is not None:
        options = dataclasses.replace(options, seconds=args.seconds)
    if args.codebooks is not None:
        from musicrfm.steering.plan import check_codebooks

        if plan is None:
            raise ConfigError("--codebooks needs a plan (--directions, --chords or --plan)")
        plan.codebooks = check_codebooks(args.codebooks)
    if args.save_plan:
        from pathlib import Path

        from musicrfm.files import check_writable

        if plan is None:
            raise ConfigError("--save-plan needs a plan (--directions or --plan)")
        if Path(args.save_plan).suffix.lower() not in (".toml", ".json"):
            raise ConfigError(f"plan files end in .toml or .json, got {Path(args.save_plan).name}")
        check_writable(args.save_plan, what="--save-plan")
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
    for i, (path, r) in enumerate(files):
        if i == 0 and args.save_plan:  # once every check passed (a refused plan is not written)
            plan.save(args.save_plan)
        if r is None:
            print(f"{path}  (already made by this command: kept)")
        else:
            print(f"{path}  ({r.seconds:.2f} s, seed {r.seed}: {r.prompt!r})")
    return 0
