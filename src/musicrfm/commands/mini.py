"""`musicrfm mini train|gates|judge|headline|schedules|pairs`: train the bundled mini MusicGen, measure
its quality gates, steering headline and schedules over time, fit its timbre judge.

``--model`` means what it means everywhere (:func:`musicrfm.commands.add_model_argument`, any
name :func:`musicrfm.models.load_model` accepts; default the bundled model). A verb that writes
into the model's folder (the card, the judge) takes the folder the model was loaded from.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from musicrfm.commands import (
    add_model_argument,
    add_threads_argument,
    apply_threads,
    check_device,
)
from musicrfm.commands.demo import add_precision_arguments, check_batch_size
from musicrfm.commands.generate import GUIDANCE_ROWS
from musicrfm.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mini",
        help="train the bundled small MusicGen-architecture model, or measure its quality gates",
        description=(
            "Train the bundled mini MusicGen (harmonic codec + tiny T5 + MusicGen decoder) on "
            "rendered note clips, measure its gates and steering headline, or fit the timbre "
            "judge that travels with it."
        ),
    )
    sub = parser.add_subparsers(dest="mini_action", metavar="<action>")
    _register_train(sub)
    _register_gates(sub)
    _register_judge(sub)
    _register_headline(sub)
    _register_schedules(sub)
    _register_pairs(sub)
    _register_ablations(sub)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _register_train(sub) -> None:
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
    tr.add_argument(
        "--rhythms",
        default=None,
        help="rhythms to render every clip with, REPEATS:GATE,... (default 4:0.9,2:0.9,8:0.5,1:1: "
        "struck 4 times held 90%% of each slot, twice, 8 times staccato, and once held)",
    )
    tr.add_argument(
        "--two-notes", action="store_true",
        help="also train on a two-note copy of every clip (pitch changes half-way, captioned "
        "'..., two notes'), so the decoder learns to keep the instrument while the pitch moves",
    )  # fmt: skip
    tr.add_argument(
        "--melodies", action=argparse.BooleanOptionalAction, default=None,
        help="also train on a melody copy of every clip (a random note per strike, captioned "
        "'..., melody'), so pitch becomes a per-strike choice the instrument does not decide "
        "(default: on, the bundled model's recipe)",
    )  # fmt: skip
    tr.add_argument(
        "--codec", choices=("spectral", "harmonic", "polyphonic", "polyphonic_onsets"),
        default=None,
        help="harmonic (default: codebook 0 is the MIDI note, the others the note-relative "
        "harmonic amplitudes; monophonic), polyphonic (bass note, the set of notes above it, "
        "shared harmonic amplitudes; carries intervals and triads), polyphonic_onsets (the "
        "same + a last codebook counting frames since the last onset) or spectral (log-mel "
        "k-means, codes are joint pitch x timbre spectra; the recipe before session 7)",
    )  # fmt: skip
    tr.add_argument(
        "--data", choices=("notes", "strikes"), default=None,
        help="notes (default: one note per clip in four rhythms + melody copies, the bundled "
        "model) or strikes (single notes, intervals 1-12 melodic and harmonic, triads of four "
        "qualities in three inversions, struck on the beat at 60-180 BPM; the polyphonic "
        "testbed, e.g. with --codec polyphonic)",
    )  # fmt: skip
    tr.add_argument(
        "--codec-fit-clips", type=int, default=None,
        help="fit the codec's codebooks on a seeded subset of this many training clips "
        "(default: all)",
    )  # fmt: skip
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.add_argument("--no-gates", action="store_true", help="skip measuring the gates at the end")
    tr.set_defaults(func=run)


def _register_gates(sub) -> None:
    ga = sub.add_parser(
        "gates",
        help="measure the codec and unsteered-generation gates of a mini model folder",
        description="Measure the gates with detectors independent of MusicGen; update the card.",
    )
    add_model_argument(ga, note="; gates.json and the card go into its folder")
    ga.add_argument("--n-per-prompt", type=int, default=None, help="generations per prompt")
    ga.add_argument("--seed", type=int, default=0, help="sampling seed")
    ga.add_argument("--no-card", action="store_true", help="do not rewrite the model card")
    add_threads_argument(ga)
    ga.set_defaults(func=run)


def _register_judge(sub) -> None:
    ju = sub.add_parser(
        "judge",
        help="fit the reference timbre judge for a model's codec and save it in the model folder",
        description=(
            "Fit the prompt-adherence judge (an instrument classifier on every prompt instrument "
            "x note x four rhythms and their round trips through the model's codec; minutes) and "
            "save it as instrument_judge.safetensors/.json, so `musicrfm demo` judges adherence "
            "with it and `musicrfm mini headline` does not refit it. Reuses a saved judge whose "
            "codec matches."
        ),
    )  # fmt: skip
    add_model_argument(ju)
    ju.add_argument("--out", default=None, help="folder to save into (default: the model's)")
    ju.add_argument("--polyphonic", action="store_true",
                    help="also fit on harmonic intervals and triads (every inversion) per "
                    "instrument: a polyphonic model's steered clips play chords, and a judge "
                    "fitted on single notes misses a triad's instrument (replaces a notes-only "
                    "judge in the folder)")  # fmt: skip
    ju.add_argument("--progressions", action="store_true",
                    help="--polyphonic, and clips of four triads in a row (2 s each, any root, "
                    "quality and inversion) per instrument: a progression changes chord and "
                    "register every bar, which a judge fitted on one triad a clip misreads")  # fmt: skip
    ju.add_argument("--device", default="cpu", help="torch device")
    add_threads_argument(ju)
    ju.set_defaults(func=run)


def _register_headline(sub) -> None:
    from musicrfm.experiments.headline import HeadlineConfig  # its defaults go into the help
    from musicrfm.experiments.headline.config import HEADLINE_CONCEPTS

    default = HeadlineConfig()
    hl = sub.add_parser(
        "headline",
        help="measure steering toward every pitch class, with controls, adherence and CIs",
        description=(
            "Train note directions on the model's activations (as the demo does), steer toward "
            "each pitch class at a grid of strengths with random / orthogonal / sign-flipped "
            "controls and an unsteered baseline on the same prompts and seeds, and judge the "
            "clips with the independent note detector and timbre classifier. Writes "
            "headline.json/.md/.png and results.csv; records the verdict in a mini model's card."
        ),
    )
    add_model_argument(hl, note="; a mini model's card records the verdict")
    hl.add_argument("--out", default="headline-report", help="folder for the results")
    hl.add_argument("--work", default=None, help="cache for the note set and features")
    hl.add_argument("--seed", type=int, default=0, help="seed for data, probes and sampling")
    hl.add_argument(
        "--concept",
        default="notes",
        choices=(*HEADLINE_CONCEPTS, "tempos", "beats"),
        help="what to steer toward: pitch classes (default), chord qualities, intervals, scale "
        "modes, chord progressions, time signatures (each judged by its detector), tempo (a "
        "signed regression direction: faster / slower, judged by the detected BPM), or beats "
        "(onset directions from per-frame features pulsed on the beats of each --bpms tempo, "
        "judged by clips within 4%% of it; writes OUT/directions/onsets for generate --bpm)",
    )
    hl.add_argument("--bpms", type=float, nargs="+", default=None,
                    help="target tempos of --concept beats (default 80 120 160)")  # fmt: skip
    hl.add_argument(
        "--targets", nargs="+", default=None, help="classes to steer toward (default: all)"
    )
    hl.add_argument("--clips", type=int, default=None, help="clips per target and condition")
    hl.add_argument(
        "--flip-clips", type=int, default=None,
        help=f"clips per target for the sign-flipped control (default {default.flip_clips})",
    )  # fmt: skip
    hl.add_argument(
        "--baseline-clips", type=int, default=None,
        help=f"unsteered clips, shared by every target (default {default.baseline_clips})",
    )  # fmt: skip
    hl.add_argument(
        "--relative-coefs", type=float, nargs="+", default=None,
        help="η0 grid as multiples of the median activation norm (default "
        + " ".join(f"{c:g}" for c in default.relative_coefs) + ")",
    )  # fmt: skip
    hl.add_argument(
        "--layers", default="all",
        help="layers steered, as for `musicrfm generate --layers` (default all)",
    )  # fmt: skip
    hl.add_argument(
        "--weighting", default=None, metavar="uniform|linear|exp:K",
        help="layer weighting of every plan (paper Table 8): uniform, linear[:w0] or "
        "exp[:kappa[:w0]], from the directions' per-layer scores (default: what --layers says, "
        "uniform)",
    )  # fmt: skip
    hl.add_argument(
        "--rows", choices=GUIDANCE_ROWS, default="both",
        help="guidance rows steered, as for `musicrfm generate --rows` (default both)",
    )  # fmt: skip
    hl.add_argument(
        "--codebooks", type=int, nargs="+", default=None, metavar="K",
        help="steer only these codebooks' predictions, as for `musicrfm generate --codebooks` "
        "(every plan, controls included; default all)",
    )  # fmt: skip
    hl.add_argument(
        "--directions", default=None, metavar="PATH",
        help="steer with these saved directions instead of training them (η0 relative to "
        "their recorded activation norm, as generate --coef 0.3x): the concept's classes, e.g. a "
        "model's bundled directions/chords, or for --concept beats onset directions (an earlier "
        "run's OUT/directions/onsets or the bundled directions/onsets); not for tempos",
    )  # fmt: skip
    hl.add_argument(
        "--gate", type=float, default=1.0,
        help="p of the per-step stochastic gate every plan gets (default 1: every step)",
    )  # fmt: skip
    hl.add_argument(
        "--train-set", choices=("synthetic", "strikes"), default="synthetic",
        help="where directions are learned: the concept's synthetic (SynTheory-style) set "
        "(default) or strike clips, the polyphonic testbed's own kind of clip",
    )  # fmt: skip
    hl.add_argument(
        "--interval-mode", default=None, metavar="harmonic|melodic",
        help="--concept intervals: read the clips as two notes together (harmonic) or one after "
        "another (melodic), and with --train-set strikes train on strike clips of that mode only "
        "(default: the melodic reading on harmonic and melodic strike clips mixed, as before)",
    )  # fmt: skip
    hl.add_argument(
        "--note-set-classifier", action="store_true",
        help="judge prompt adherence with the quicker note-set instrument classifier instead of "
        "the reference one (every prompt instrument x note x four rhythms)",
    )  # fmt: skip
    hl.add_argument(
        "--judge", default=None, metavar="DIR",
        help="judge prompt adherence with the saved reference judge in DIR alone (`musicrfm mini "
        "judge --out DIR`, --polyphonic for chords) instead of the model folder's; the same "
        "--seed regenerates the same clips, so two judges compare on identical audio",
    )  # fmt: skip
    hl.add_argument("--quick", action="store_true", help="a small pipeline check (2 targets)")
    hl.add_argument("--device", default="cpu", help="torch device")
    add_precision_arguments(hl, batch_default=default.data.batch)
    hl.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: more threads are slower on a shared, loaded CPU)",
    )  # fmt: skip
    hl.add_argument("--no-card", action="store_true", help="do not record in the model card")
    hl.set_defaults(func=run)


# default (target, crossfade) of `mini schedules` per concept
SCHEDULE_DEFAULTS = {
    "notes": ("G", ("C", "G")),
    "chords": ("augmented", ("augmented", "major")),
    "intervals": ("P5", ("M2", "P5")),
}


def _register_schedules(sub) -> None:
    sc = sub.add_parser(
        "schedules",
        help="measure the paper's five schedules and an A->B crossfade over one clip",
        description=(
            "Train --concept directions (notes, chord qualities or intervals, as the demo "
            "does), steer toward --target under each paper schedule (linear rise/decay, "
            "exponential decay, logistic rise, sine) over the clip and crossfade A->B (for "
            "intervals a glide, e.g. M2 P5); the concept detector's per-window trace gives the "
            "correlation of the target's probability with φ(t) and the classes heard in the "
            "first and last third. Writes schedules.json/.md/.png and results.csv."
        ),
    )
    add_model_argument(sc)
    sc.add_argument("--concept", default="notes", choices=("notes", "chords", "intervals"),
                    help="what the directions steer and the detector reads: notes (default), "
                    "chords (chord quality) or intervals")  # fmt: skip
    sc.add_argument("--target", default=None,
                    help="class steered toward (default: G, augmented or P5 by --concept)")  # fmt: skip
    sc.add_argument("--crossfade", nargs=2, default=None, metavar=("A", "B"),
                    help="classes of the crossfade (default: C G, augmented major, or the "
                    "interval glide M2 P5)")  # fmt: skip
    sc.add_argument("--interval-mode", default="harmonic", choices=("harmonic", "melodic"),
                    help="intervals: two notes together (default) or one after another")  # fmt: skip
    sc.add_argument("--coef", default="0.15x",
                    help="η0 at φ=1: relative (0.15x, the default) or absolute")  # fmt: skip
    sc.add_argument("--clips", type=int, default=12, help="clips per schedule (default 12)")
    sc.add_argument("--seconds", type=float, default=5.0, help="clip length (default 5)")
    sc.add_argument("--out", default="schedules-report", help="folder for the results")
    sc.add_argument("--work", default=None, help="cache for the note set and features")
    sc.add_argument("--seed", type=int, default=0, help="seed for data, probes and sampling")
    sc.add_argument("--sample-seed", type=int, default=None,
                    help="seed of the generated clips only (default --seed): fresh clips, same "
                    "directions")  # fmt: skip
    sc.add_argument("--train-set", choices=("synthetic", "strikes"), default="synthetic",
                    help="where the directions are learned: the concept's synthetic "
                    "(SynTheory-style) set (default) or strike clips, the polyphonic testbed's "
                    "own kind of clip")  # fmt: skip
    sc.add_argument("--release", type=float, default=0.0, metavar="R",
                    help="a release beside each schedule: the target negated at η0·R·ρ(t), ρ = "
                    "1-φ(t) by default (--release-shape), so a falling φ pushes away from it "
                    "(default 0: none; 1: equal strength)")  # fmt: skip
    sc.add_argument("--release-shape", choices=("complement", "drop"), default="complement",
                    help="what the release follows: 1-φ(t) (complement, the default) or drop, "
                    "how far φ has fallen from its peak so far (no release on a rise)")  # fmt: skip
    sc.add_argument("--device", default="cpu", help="torch device")
    add_threads_argument(sc)
    sc.set_defaults(func=run)


def _register_pairs(sub) -> None:
    pa = sub.add_parser(
        "pairs",
        help="measure two concepts steered at once: joint success, cross-talk, a conflict",
        description=(
            "Train each part's directions separately (notes, chords = quality, chord-roots, "
            "tempos = the tempo headline's signed regression direction, targets faster / slower: "
            "a clip is right at >= 1.2x / <= 0.8x the unsteered median BPM), write one plan file of two directions per FIRST+SECOND pair (each part with its "
            "own coef, schedule and gate), steer with it, with each direction alone, with "
            "random / orthogonal / sign-flipped controls of both and unsteered, and two targets "
            "of the first concept at once (--conflict; notes or chords only); judged by the note, "
            "chord and tempo detectors and the timbre judge. Writes pairs.json/.md/.png, results.csv and plans/."
        ),
    )
    add_model_argument(pa)
    pa.add_argument("--first", default="notes",
                    help="first part's concept: notes, chords, chord-roots, tempos or beats (default "
                    "notes)")  # fmt: skip
    pa.add_argument("--second", default="chords",
                    help="second part's concept: notes, chords, chord-roots, tempos or beats (default "
                    "chords)")  # fmt: skip
    pa.add_argument("--pairs", nargs="+", default=["G+augmented", "D#+major"],
                    help="FIRST+SECOND targets (default G+augmented D#+major; a tempo part takes "
                    "faster or slower, e.g. A+faster with --second tempos; a beats part a BPM, e.g. "
                    "A+160 with --second beats: onset directions pulsed on its beats)")  # fmt: skip
    for part in ("first", "second"):
        pa.add_argument(f"--{part}-coef", default="0.1x", help=f"{part} part's η0 (default 0.1x)")
        pa.add_argument(f"--{part}-schedule", default="constant",
                        help=f"{part} part's schedule, as --schedule takes it")  # fmt: skip
        pa.add_argument(f"--{part}-gate", type=float, default=1.0, help=f"{part} part's gate p")
        pa.add_argument(f"--{part}-directions", default=None, metavar="PATH",
                        help=f"steer the {part} part with these saved directions (e.g. a model's "
                        "bundled directions/chord-roots) instead of training them")  # fmt: skip
    pa.add_argument("--conflict", nargs=2, default=("C", "G"), metavar=("A", "B"),
                    help="two targets of the first concept at once (default C G; notes or "
                    "chords only)")  # fmt: skip
    pa.add_argument("--no-conflict", action="store_true",
                    help="skip the conflict case (needed with --first tempos or beats)")  # fmt: skip
    pa.add_argument("--clips", type=int, default=16, help="clips per condition (default 16)")
    pa.add_argument("--seconds", type=float, default=4.0, help="clip length (default 4)")
    pa.add_argument("--out", default="pairs-report", help="folder for the results")
    pa.add_argument("--work", default=None, help="cache for the training sets and features")
    pa.add_argument("--seed", type=int, default=0, help="seed for data, probes and sampling")
    pa.add_argument("--sample-seed", type=int, default=None,
                    help="seed of the generated clips only (default --seed)")  # fmt: skip
    pa.add_argument("--device", default="cpu", help="torch device")
    pa.add_argument("--judge", default=None, metavar="DIR",
                    help="judge adherence with the saved timbre judge in DIR (`musicrfm mini "
                    "judge --out DIR --polyphonic`) instead of the model folder's")  # fmt: skip
    pa.add_argument("--train-set", choices=("synthetic", "strikes"), default="synthetic",
                    help="where both parts' directions are learned: the SynTheory-style sets "
                    "(default) or the polyphonic testbed's own strike clips")  # fmt: skip
    add_threads_argument(pa)
    pa.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.mini_action == "schedules":
        return _schedules(args)
    if args.mini_action == "pairs":
        return _pairs(args)
    if args.mini_action == "train":
        from musicrfm.mini.config import TrainConfig
        from musicrfm.mini.train import train

        cfg = TrainConfig(seed=args.seed)
        if args.steps is not None:
            if args.steps < 1:
                raise ConfigError("--steps must be at least 1")
            cfg.steps = args.steps
        if args.batch_size is not None:
            cfg.batch_size = args.batch_size
        if args.threads is not None:
            apply_threads(args.threads)  # the one check: >= 1
            cfg.threads = args.threads
        if args.rhythms:
            cfg.rhythms = parse_rhythms(args.rhythms)
        if args.two_notes:
            cfg.two_note_clips = True
        if args.melodies is not None:
            cfg.melody_clips = args.melodies
        if args.codec is not None:
            cfg.codec = args.codec
        if args.data is not None:
            cfg.data = args.data
        if args.codec_fit_clips is not None:
            if args.codec_fit_clips < 1:
                raise ConfigError("--codec-fit-clips must be at least 1")
            cfg.codec_fit_clips = args.codec_fit_clips
        out = train(args.out, config=cfg, work_dir=args.work_dir, resume=args.resume)
        print(f"model written to {out}")
        if not args.no_gates:
            from musicrfm.mini.card import record_gates
            from musicrfm.mini.strike_gates import run_model_gates

            result = run_model_gates(Path(out).resolve(), seed=args.seed)  # a folder, not a name
            result["command"] = f"musicrfm mini gates --model {out} --seed {args.seed}"
            record_gates(out, result)
            print(json.dumps(result["summary"], indent=2))
        return 0
    if args.mini_action == "gates":
        return _gates(args)
    if args.mini_action == "headline":
        return _headline(args)
    if args.mini_action == "judge":
        return _judge(args)
    raise ConfigError(
        "choose an action: musicrfm mini train | gates | headline | judge | schedules | pairs"
    )


def _schedules(args: argparse.Namespace) -> int:
    from musicrfm.experiments.schedules import SchedulesConfig, run_schedules

    check_device(args.device)
    apply_threads(args.threads)
    target = args.target or SCHEDULE_DEFAULTS[args.concept][0]
    crossfade = tuple(args.crossfade or SCHEDULE_DEFAULTS[args.concept][1])
    cfg = SchedulesConfig(target=target, crossfade=crossfade, coef=args.coef, clips=args.clips,
                          sample_seed=args.sample_seed, concept=args.concept,
                          interval_mode=args.interval_mode, release=args.release,
                          release_shape=args.release_shape,
                          ).with_changes(seconds=args.seconds, train_set=args.train_set)  # fmt: skip
    cfg.validate()
    command = (
        f"musicrfm mini schedules --model {args.model} --concept {args.concept} --target {target}"
        + (f" --interval-mode {args.interval_mode}" if args.concept == "intervals" else "")
        + f" --crossfade {' '.join(crossfade)} --coef {args.coef} --clips {args.clips} --seconds "
        f"{args.seconds:g} --seed {args.seed}"
        + (f" --train-set {args.train_set}" if args.train_set != "synthetic" else "")
        + f" --threads {args.threads} --out {args.out}"
        + (f" --sample-seed {args.sample_seed}" if args.sample_seed is not None else "")
        + (f" --release {args.release:g}" if args.release else "")
        + (f" --release-shape {args.release_shape}" if args.release_shape != "complement" else "")
    )
    record = run_schedules(model=args.model, out=args.out, work=args.work, seed=args.seed,
                           config=cfg, device=args.device, command=command)  # fmt: skip
    print(Path(args.out, "schedules.md").read_text())
    return 0 if record["overall"]["passed"] else 1


def _pairs(args: argparse.Namespace) -> int:
    from musicrfm.experiments.pairs import PairsConfig, PartSpec, parse_pair

    check_device(args.device)
    apply_threads(args.threads)
    if args.judge is not None:
        check_judge_folder(args.judge, False)  # before the model loads
    parts = {
        k: PartSpec(getattr(args, k), coef=getattr(args, f"{k}_coef"),
                    schedule=getattr(args, f"{k}_schedule"), gate=getattr(args, f"{k}_gate"))
        for k in ("first", "second")
    }  # fmt: skip
    cfg = PairsConfig(
        first=parts["first"], second=parts["second"],
        pairs=tuple(parse_pair(p) for p in args.pairs), clips=args.clips,
        conflict=None if args.no_conflict else tuple(args.conflict), sample_seed=args.sample_seed,
    ).with_changes(seconds=args.seconds, train_set=args.train_set)  # fmt: skip
    cfg.validate()
    command = " ".join(
        ["musicrfm mini pairs", f"--model {args.model}", f"--first {args.first}",
         f"--second {args.second}", "--pairs " + " ".join(args.pairs)]
        + [f"--{k}-{f} {getattr(args, f'{k}_{f}')}" for k in ("first", "second")
           for f in ("coef", "schedule", "gate")]
        + (["--no-conflict"] if args.no_conflict else ["--conflict " + " ".join(args.conflict)])
        + [f"--clips {args.clips}", f"--seconds {args.seconds:g}", f"--seed {args.seed}",
           f"--train-set {args.train_set}",
           f"--threads {args.threads}", f"--out {args.out}"]
        + ([f"--sample-seed {args.sample_seed}"] if args.sample_seed is not None else [])
        + ([f"--judge {args.judge}"] if args.judge is not None else [])
    )  # fmt: skip
    saved = {
        getattr(args, k): load_part_directions(getattr(args, f"{k}_directions"), getattr(args, k))
        for k in ("first", "second")
        if getattr(args, f"{k}_directions") is not None
    }
    command += "".join(
        f" --{k}-directions {getattr(args, f'{k}_directions')}"
        for k in ("first", "second")
        if getattr(args, f"{k}_directions") is not None
    )
    from musicrfm.experiments.pairs import run_pairs

    record = run_pairs(model=args.model, out=args.out, work=args.work, seed=args.seed,
                       config=cfg, device=args.device, command=command,
                       directions=saved, judge=args.judge)  # fmt: skip
    print(Path(args.out, "pairs.md").read_text())
    return 0 if record["overall"]["all_passed"] else 1


# a pairs part's concept -> the role its saved directions must hold (steering.progressions)
PART_ROLES = {"notes": "notes", "chords": "quality", "chord-roots": "root", "tempos": "tempo",
              "beats": "beat"}  # fmt: skip


def load_part_directions(path: str, concept: str) -> Any:
    """Saved directions for a pairs part, checked before the model loads: they must steer what
    the part's concept is (chord roots: pitch classes labelled ``root``) and carry the activation
    norm a relative η0 needs."""
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.progressions import ROLE_NAMES, direction_role

    cd = ConceptDirections.load(path)
    role = direction_role(cd)
    want = PART_ROLES[concept]
    if role != want:
        raise ConfigError(f"{path} holds {ROLE_NAMES[role]}, not {ROLE_NAMES[want]} (what a "
                          f"{concept} part steers)")  # fmt: skip
    cd.require_activation_norm(path)
    return cd


def _gates(args: argparse.Namespace) -> int:
    from musicrfm.mini.card import record_gates
    from musicrfm.mini.strike_gates import run_model_gates
    from musicrfm.models import load_model

    apply_threads(args.threads)
    adapter = load_model(args.model)
    if not args.no_card and adapter.local_path is None:
        raise ConfigError(
            f"{args.model} is not a local folder: there is no folder to keep gates.json and the "
            "card in; pass --no-card"
        )
    kwargs = {} if args.n_per_prompt is None else {"n_per_prompt": args.n_per_prompt}
    result = run_model_gates(adapter, seed=args.seed, **kwargs)
    result["command"] = f"musicrfm mini gates --model {args.model} --seed {args.seed}"
    if not args.no_card:
        print(f"model card: {record_gates(adapter.local_path, result)}")
    print(json.dumps(result["summary"], indent=2))
    return 0 if result["summary"]["all_passed"] else 1


def _judge(args: argparse.Namespace) -> int:
    from musicrfm.evaluation.judges import JUDGE_NAME, reference_judge
    from musicrfm.models import load_model

    check_device(args.device)
    apply_threads(args.threads)
    adapter = load_model(args.model, device=args.device)
    folder = Path(args.out) if args.out else adapter.local_path
    if folder is None:
        raise ConfigError(f"{args.model} is not a local folder: say where to save with --out")
    _, report = reference_judge(
        adapter,
        [folder],
        progress=True,
        polyphonic=args.polyphonic or args.progressions,
        progressions=args.progressions,
    )
    print(f"judge: {folder / JUDGE_NAME}.safetensors")
    if (folder / "training.json").is_file():  # a mini model folder: its card lists the judge
        from musicrfm.mini.card import refresh_model_card

        print(f"model card: {refresh_model_card(folder)}")
    print(
        f"held-out accuracy {report['test_accuracy']:.3f} on rendered clips, "
        f"{report['test_accuracy_augmented']:.3f} through the codec (n={report['n_test']})"
    )
    return 0


def parse_rhythms(text: str) -> tuple[tuple[int, float], ...]:
    """ "4:0.9,1:0.95" -> ((4, 0.9), (1, 0.95)), with a one-line error for anything else."""
    out = []
    for part in text.split(","):
        try:
            r, g = part.split(":")
            repeats, gate = int(r), float(g)
        except ValueError:
            raise ConfigError(f"--rhythms: {part!r} is not REPEATS:GATE (e.g. 4:0.9)") from None
        if repeats < 1 or not 0 < gate <= 1:
            raise ConfigError(f"--rhythms: need REPEATS >= 1 and 0 < GATE <= 1, got {part!r}")
        out.append((repeats, gate))
    return tuple(out)


def _headline(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from musicrfm.experiments.headline import HeadlineConfig, run_headline
    from musicrfm.experiments.headline.config import check_interval_mode, parse_weighting
    from musicrfm.models import load_model

    check_batch_size(args.batch_size)
    check_interval_mode(args.interval_mode, args.concept)  # before the model loads
    if args.weighting is not None:
        parse_weighting(args.weighting)  # before the model loads
    apply_threads(args.threads)
    concept = {"concept": args.concept}
    if args.concept == "beats":
        from musicrfm.experiments.headline.beat import DEFAULT_RELATIVE_COEFS

        concept["relative_coefs"] = DEFAULT_RELATIVE_COEFS
    elif args.bpms:
        raise ConfigError("--bpms is for --concept beats")
    cfg = HeadlineConfig.quick(**concept) if args.quick else HeadlineConfig(**concept)
    if args.concept != "notes" and not args.targets:
        cfg = replace(cfg, targets=None)  # every class of the trained directions
    if args.targets:
        cfg = replace(cfg, targets=tuple(args.targets))
    if args.clips is not None:
        cfg = replace(cfg, clips=args.clips, baseline_clips=max(cfg.baseline_clips, args.clips))
    if args.flip_clips is not None:
        cfg = replace(cfg, flip_clips=args.flip_clips)
    if args.baseline_clips is not None:
        cfg = replace(cfg, baseline_clips=args.baseline_clips)
    if args.relative_coefs:
        cfg = replace(cfg, relative_coefs=tuple(args.relative_coefs))
    cfg = replace(cfg, layers=args.layers, rows=args.rows, gate=args.gate, weighting=args.weighting)
    if args.codebooks is not None:
        from musicrfm.steering.plan import check_codebooks

        cfg = replace(cfg, codebooks=tuple(check_codebooks(args.codebooks)))
    if args.note_set_classifier:
        cfg = replace(cfg, instrument_reference=False)
    if args.judge is not None:
        check_judge_folder(args.judge, args.note_set_classifier)  # before the model loads
        cfg = replace(cfg, judge=args.judge, instrument_reference=True)
    if args.batch_size is not None:
        cfg = replace(cfg, data=replace(cfg.data, batch=args.batch_size))
    if args.train_set != "synthetic":
        cfg = replace(cfg, data=replace(cfg.data, train_set=args.train_set))
    if args.interval_mode is not None:
        cfg = replace(cfg, interval_mode=args.interval_mode)
    if args.directions is not None and args.concept not in ("beats", "tempos"):
        from musicrfm.experiments.headline.run import load_headline_directions

        load_headline_directions(args.directions, cfg)  # before the model loads
    elif args.directions is not None and args.concept == "tempos":
        raise ConfigError("--directions is not for --concept tempos (its headline trains the "
                          "regression direction it measures)")  # fmt: skip
    # the command that reproduces this run, as recorded in the report and the model card
    shown = [("model", args.model), ("seed", args.seed)]
    if args.concept != "notes":
        shown.append(("concept", args.concept))
    keys = ("targets", "clips", "flip_clips", "baseline_clips", "relative_coefs", "layers")
    for key in (
        *keys,
        "weighting",
        "rows",
        "gate",
        "codebooks",
        "train_set",
        "interval_mode",
        "bpms",
        "directions",
        "judge",
    ):
        value = getattr(args, key)
        if value is not None and value not in ("all", "both", 1.0, "synthetic"):
            shown.append((key, " ".join(map(str, value)) if isinstance(value, list) else value))
    if args.batch_size is not None:
        shown.append(("batch_size", args.batch_size))
    if args.dtype != "float32":
        shown.append(("dtype", args.dtype))
    command = (
        "musicrfm mini headline "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in shown)
        + (" --note-set-classifier" if args.note_set_classifier else "")
        + (" --quick" if args.quick else "")
    )
    # its folder gets the card
    adapter = load_model(args.model, device=args.device, dtype=args.dtype)
    if args.concept == "beats":
        from musicrfm.experiments.headline.beat import DEFAULT_BPMS, run_beat_headline

        record = run_beat_headline(
            model=adapter, out=args.out, work=args.work, seed=args.seed, config=cfg,
            bpms=tuple(args.bpms or DEFAULT_BPMS), device=args.device, command=command,
            directions=args.directions,
        )  # fmt: skip
        print(Path(args.out, "headline.md").read_text())
        _record_in_card(args, adapter, record)
        return 0 if record["overall"]["passed"] else 1
    if args.concept == "tempos":
        from musicrfm.experiments.headline.tempo import run_tempo_headline

        record = run_tempo_headline(
            model=adapter, out=args.out, work=args.work, seed=args.seed, config=cfg,
            device=args.device, command=command,
        )  # fmt: skip
        print(Path(args.out, "headline.md").read_text())
        _record_in_card(args, adapter, record)
        return 0 if record["overall"]["passed"] else 1
    record = run_headline(
        model=adapter, out=args.out, work=args.work, seed=args.seed, config=cfg,
        device=args.device, command=command, directions=args.directions,
    )  # fmt: skip
    print(Path(args.out, "headline.md").read_text())
    _record_in_card(args, adapter, record)
    return 0 if record["overall"]["passed"] else 1


def check_judge_folder(folder: str, note_set_classifier: bool) -> None:
    """--judge: a folder with a saved judge in it (whether it fits the codec is checked once the
    model is loaded, before any clip)."""
    from musicrfm.evaluation.judges import JUDGE_NAME

    if note_set_classifier:
        raise ConfigError("--judge names a reference judge: drop --note-set-classifier")
    if not (Path(folder) / f"{JUDGE_NAME}.json").is_file():
        raise ConfigError(
            f"--judge {folder}: no {JUDGE_NAME}.json there; fit one with `musicrfm mini judge "
            f"--model MODEL --out {folder}` (add --polyphonic for chords)"
        )


def _record_in_card(args: argparse.Namespace, adapter, record: dict) -> None:
    """Keep a headline in a mini model's folder and card (unless --no-card)."""
    from musicrfm.mini.card import record_headline

    folder = adapter.local_path
    if not args.no_card and folder is not None and (folder / "training.json").exists():
        record_headline(folder, record, args.concept)
        print(f"recorded in {folder / 'README.md'}")


def _register_ablations(sub) -> None:
    ab = sub.add_parser(
        "ablations",
        help="report the paper's ablations (Tables 8-10) and its optimum at matched hit rate",
        description=(
            "Read finished `musicrfm sweep` folders (configs in experiments/ablations/) and "
            "write the paper's Tables 8 (layer weighting), 9 (top-K) and 10 (gate p) with Wilson "
            "95% intervals for hit rates and bootstrap intervals for adherence, the layer "
            "weights each variant steers with, and, with --optimum, the optimum plan against "
            "the default at the η0 where each reaches the same hit rate (--rates)."
        ),
    )
    ab.add_argument("--sweep", nargs="+", required=True,
                    help="the ablation sweep folder(s); parts of one grid are read as one")  # fmt: skip
    ab.add_argument("--optimum", default=None, help="sweep folder of the optimum plan's η0 grid")
    ab.add_argument("--rates", type=float, nargs="+", default=[0.8, 0.9],
                    help="hit rates to match at (default 0.8 0.9)")  # fmt: skip
    ab.add_argument("--targets", nargs="+", default=None,
                    help="pool hit rates over these targets only, e.g. the ones that steer "
                    "(default: every target; the per-target table keeps them all)")  # fmt: skip
    add_model_argument(ab, default=None, note="; compiles the layer weights (default: none)")
    ab.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws (default 2000)")
    ab.add_argument("--out", default="ablations-report", help="folder for the report")
    add_threads_argument(ab)
    ab.set_defaults(func=_ablations)


def _ablations(args: argparse.Namespace) -> int:
    from musicrfm.experiments.ablations import write_ablations_report

    apply_threads(args.threads)
    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be at least 1, got {args.n_boot}")
    model = None
    if args.model:
        from musicrfm.models import load_model

        model = load_model(args.model)
    command = " ".join(
        ["musicrfm mini ablations --sweep", *args.sweep]
        + ([f"--optimum {args.optimum}"] if args.optimum else [])
        + ["--rates", *(f"{r:g}" for r in args.rates)]
        + (["--targets", *args.targets] if args.targets else [])
        + ([f"--model {args.model}"] if args.model else [])
        + [f"--n-boot {args.n_boot}", f"--out {args.out}"]
    )
    write_ablations_report(args.sweep, args.out, optimum=args.optimum, rates=args.rates,
                           model=model, targets=args.targets, n_boot=args.n_boot,
                           command=command)  # fmt: skip
    print(Path(args.out, "ablations.md").read_text())
    return 0
