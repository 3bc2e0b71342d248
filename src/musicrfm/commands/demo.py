"""`musicrfm demo`: the README's main command -- the whole method end to end, offline."""

from __future__ import annotations

import argparse
import logging

from musicrfm.commands import add_model_argument, apply_threads

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
DEMO_BATCH = 16  # DemoConfig.batch (not imported here: `--help` stays free of the library)


def _dtype(text: str) -> str:
    """A --dtype value: float32, bfloat16 or float16 (bf16, fp16, fp32 accepted)."""
    value = _DTYPE_ALIASES.get(text.strip().lower(), text.strip().lower())
    if value not in DTYPES:
        raise argparse.ArgumentTypeError(f"{text!r}: use one of {', '.join(DTYPES)}")
    return value


def add_precision_arguments(p: argparse.ArgumentParser, *, batch_default: int) -> None:
    """``--dtype`` and ``--batch-size`` of the verbs that generate (demo, mini headline)."""
    p.add_argument(
        "--dtype", type=_dtype, default="float32", metavar="{" + ",".join(DTYPES) + "}",
        help="precision of the weights and activations (default float32). bfloat16/float16 "
        "halve the model's memory, for a GPU; they also run on CPU (samples differ from "
        "float32's)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="N",
        help=f"clips generated per batch (default {batch_default}); smaller needs less memory",
    )  # fmt: skip


def check_batch_size(value: int | None) -> None:
    """--batch-size is a positive number (checked before the model loads)."""
    from musicrfm.errors import ConfigError

    if value is not None and value < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {value}")


def part_line(part: dict) -> str:
    """One line on the second part: steered against unsteered (or the tempo change)."""
    head = f"{part['concept']} on {part['model_id']}, toward {part['target']}"
    if part["concept"] == "tempos":
        way = part["overall"].get(part["target"], {})
        lo, hi = way.get("change_ci", (float("nan"), float("nan")))
        return (
            f"{head}: median BPM {way.get('change', float('nan')):+.2f} [{lo:+.2f}, {hi:+.2f}] "
            f"against unsteered (bar: 20% each way, controls: "
            f"{'met' if part['overall'].get('passed') else 'not met'})"
        )
    rows = {r["condition"]: r for r in part["summary"]}
    c, u = rows["concept"], rows["unsteered"]
    return (
        f"{head} at η0={c['coef']:g}: accuracy {c['accuracy']:.2f} [{c['ci_low']:.2f}, "
        f"{c['ci_high']:.2f}] n={c['n']} against {u['accuracy']:.2f} unsteered"
    )


def progression_line(prog: dict) -> str:
    """One line on the progression: per-bar accuracy steered against unsteered."""
    s, u = prog["conditions"]["steered"], prog["conditions"]["unsteered"]
    q, c = s["quality"], s["chord"]
    return (
        f"progression {prog['chords']}: quality right in {q['value']:.2f} [{q['ci'][0]:.2f}, "
        f"{q['ci'][1]:.2f}] of {s['bars']} bars against {u['quality']['value']:.2f} unsteered; "
        f"root + quality {c['value']:.2f} against {u['chord']['value']:.2f}"
    )


def pair_line(pair: dict) -> str:
    """One line on the pair: joint success (both right in one clip), and what each direction
    alone, unsteered and the controls give."""
    rows = {r["condition"]: r for r in pair["rows"]}
    first, second = pair["pair"].split("+")

    def counts(cond: str) -> str:
        r = rows[cond]
        return (f"{first} {r['first_k']}/{r['first_n']}, {second} {r['second_k']}/"
                f"{r['second_n']}, both {r['joint_k']}/{r['joint_n']}")  # fmt: skip

    j = rows["joint"]
    others = [f"{name}: {counts(cond)}" for cond, name in (
        ("first alone", f"{first} alone"), ("second alone", f"{second} alone"),
        ("unsteered", "unsteered")) if cond in rows]  # fmt: skip
    others += [f"{c['control']}: both {c['joint_rate']:.2f}" for c in pair.get("controls", [])]
    return (
        f"pair {first} + {second} at once on {pair['model_id']}: both right in "
        f"{j['joint_k']}/{j['joint_n']} = {j['joint_rate']:.2f} [{j['joint_ci_low']:.2f}, "
        f"{j['joint_ci_high']:.2f}]; " + "; ".join(others)
    )


def parse_pair_option(text: str) -> str | None:
    """``--pair``: FIRST+SECOND (a note + a chord quality, e.g. A+diminished) or ``none``."""
    from musicrfm.experiments.pairs.config import check_target, parse_pair

    if text.strip().lower() == "none":
        return None
    first, second = parse_pair(text)
    return f"{check_target('notes', first)}+{check_target('chords', second)}"


def parse_beat_option(values: list[str]) -> tuple[float, ...] | None:
    """``--beat``: target tempos in BPM (``80 160``, also ``80,160``) or ``none``."""
    from musicrfm.errors import ConfigError

    words = [w for v in values for w in v.replace(",", " ").split()]
    if [w.lower() for w in words] == ["none"]:
        return None
    try:
        bpms = tuple(float(w) for w in words)
    except ValueError:
        raise ConfigError(
            f"--beat wants tempos in BPM (e.g. --beat 80 160) or 'none', got {' '.join(values)!r}"
        ) from None
    if not bpms:
        raise ConfigError("--beat wants at least one tempo in BPM, or 'none'")
    return bpms


def beat_line(beat: dict) -> str:
    """One line on the beat: per tempo, clips within 4% steered against unsteered and the
    control (experiments.demo.beat.beat_line)."""
    from musicrfm.experiments.demo.beat import beat_line as line

    return line(beat)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole method end to end and write an HTML report (offline, minutes)",
        description=(
            "Synthesise a small note set, extract the model's per-layer features, train RFM note "
            "directions, generate unsteered, steered (one target note at two strengths), control "
            "(random and sign-flipped directions at equal norm) and crossfade clips from "
            "instrument prompts, judge every clip with an independent note detector, and write "
            "a report folder: index.html with audio players, figures, and results tables "
            "(accuracy with bootstrap 95% CIs and n). A second part steers one class of another "
            "concept the same way on the bundled testbed that plays a beat (musicgen-mini-beat) "
            "and judges it with that concept's detector (default chords:augmented; --part), "
            "then a four-chord progression bar by bar (--progression) and a note and a chord "
            "quality at once from one plan of two directions (--pair), and exact tempos from "
            "the testbed's bundled onset directions pulsed on a beat grid (--beat). Runs on the "
            "bundled mini model by default "
            "in under 5 minutes on 2 CPU cores; the dataset and features are cached in --work so "
            "a re-run is faster."
        ),
    )
    add_model_argument(p)
    p.add_argument("--out", default="demo-report", help="report folder (default demo-report)")
    p.add_argument(
        "--work",
        default=None,
        help="cache folder for the synthetic dataset and features (default ~/.cache/musicrfm/demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for data, probes, controls, sampling")
    p.add_argument("--target", default=None, help="the note to steer toward (default G)")
    p.add_argument(
        "--crossfade-to",
        default=None,
        help="second note of the crossfade (default D#; 'tritone': a tritone from the target)",
    )
    p.add_argument(
        "--coefs",
        default=None,
        help="comma-separated η0 values (default: 0.1 and 0.15 x the median activation norm; "
        "--quick: 0.3 x)",
    )
    p.add_argument(
        "--controls",
        default=None,
        help="comma-separated controls: random, flip, orthogonal, other_class "
        "(default random,flip,orthogonal; --quick: random,flip)",
    )
    p.add_argument(
        "--part", default=None, metavar="CONCEPT:CLASS",
        help="the second part: one class of another concept steered with the same controls on "
        "--part-model and judged by that concept's detector (default chords:augmented; also "
        "chords:minor, intervals:P5, scales:dorian, progressions:I-V-vi-IV, "
        "time_signatures:3/4, notes:C, tempos:faster or tempos:slower)",
    )  # fmt: skip
    p.add_argument(
        "--part-model", default=None, metavar="MODEL",
        help="model of the second part and the pair (default the bundled testbed that plays a "
        "beat, musicgen-mini-beat)",
    )  # fmt: skip
    p.add_argument(
        "--no-part", action="store_true",
        help="the note part only (no second part, progression, pair or beat unless --pair or "
        "--beat is given)",
    )  # fmt: skip
    p.add_argument(
        "--progression", default=None, metavar="CHORDS",
        help="with a chords part: chord text steered one chord a bar and judged bar by bar "
        "(default 'C G Am F'; 'none' for no progression)",
    )  # fmt: skip
    p.add_argument(
        "--pair", default=None, metavar="NOTE+QUALITY",
        help="two concepts at once on the part's model: a note and a chord quality, each from "
        "its own directions, in one plan; joint success against each alone, unsteered and a "
        "random control (default A+diminished; 'none' for no pair; --quick: none)",
    )  # fmt: skip
    p.add_argument(
        "--beat", nargs="+", default=None, metavar="BPM",
        help="exact tempos on the part's model: its bundled onset directions pulsed on the beats "
        "of each BPM (0.3x), clips within 4%% of the target against unsteered and a random "
        "direction pulsed the same way (default 80 160; 'none' for no beat; --quick and "
        "--no-part: none)",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="a reduced run (CI): fewer clips, one η0")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    add_precision_arguments(p, batch_default=DEMO_BATCH)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: more threads are slower on a shared, loaded CPU)",
    )
    p.add_argument(
        "--workers", type=int, choices=(1, 2), default=None,
        help="2: the testbed's chord part and pair run in a second process beside the note part "
        "(same results, less wall time); 1: every stage in this process, in order (default 2 "
        "on a machine with at least 2 CPU cores)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def default_workers() -> int:
    """Two processes where there are two cores to run them."""
    import os

    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from dataclasses import replace

    from musicrfm.errors import ConfigError
    from musicrfm.experiments.demo import DemoConfig, run_demo
    from musicrfm.experiments.demo.part import PART_MODEL, parse_part
    from musicrfm.experiments.demo.run import checked_config
    from musicrfm.models import load_model

    check_batch_size(args.batch_size)
    cfg = DemoConfig.quick() if args.quick else DemoConfig()
    changes: dict = {}
    if args.batch_size is not None:
        changes["batch"] = args.batch_size
    if args.coefs:
        try:
            changes["coefs"] = tuple(float(c) for c in args.coefs.split(",") if c.strip())
        except ValueError:
            raise ConfigError(
                f"--coefs must be comma-separated numbers, got {args.coefs!r}"
            ) from None
    if args.controls is not None:
        changes["controls"] = tuple(c.strip() for c in args.controls.split(",") if c.strip())
    if args.crossfade_to:
        changes["crossfade_to"] = None if args.crossfade_to == "tritone" else args.crossfade_to
    if args.target:
        changes["target"] = args.target
    if args.part:
        changes["part_concept"], changes["part_target"] = parse_part(args.part)
        if cfg.part_model is None:  # --quick has no second part unless one is asked for
            changes["part_model"] = PART_MODEL
    if args.part_model:
        changes["part_model"] = args.part_model
    if args.no_part:
        changes["part_model"] = None
        changes["pair"] = None
        changes["beat_bpms"] = None
    if args.beat is not None:
        changes["beat_bpms"] = parse_beat_option(args.beat)
    if args.pair is not None:
        changes["pair"] = parse_pair_option(args.pair)
    if args.progression:
        none = args.progression.strip().lower() == "none"
        changes["progression"] = None if none else args.progression
    cfg = replace(cfg, **changes)
    checked_config(cfg)  # what run_demo checks first, here before the model loads (at --dtype)
    apply_threads(args.threads)
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    result = run_demo(
        model=model,
        out=args.out,
        work=args.work,
        seed=args.seed,
        quick=args.quick,
        config=cfg,
        device=args.device,
        progress=not args.no_progress,
        workers=args.workers or default_workers(),
        command="musicrfm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if sys.argv[1:2] == ["demo"]
        else None,
    )
    import pandas as pd

    s = result.summary
    print(
        f"MusicRFM demo on {result.settings['model_id']}: steering toward {result.settings['target']}"
    )
    for _, r in s.iterrows():
        coef = f" η0={r['coef']:g}" if r["coef"] else ""
        adherence = (
            f"  prompt adherence {r['adherence']:.2f}"
            if "adherence" in r and pd.notna(r["adherence"])
            else ""
        )
        print(
            f"  {r['condition']:<10}{coef:<12} accuracy {r['accuracy']:.2f} "
            f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] n={r['n']}{adherence}"
        )
    judge = result.settings.get("instrument", {}).get("classifier")
    if judge:
        print(f"  (prompt adherence: the {judge} timbre classifier hears the prompted instrument)")
    part = result.settings.get("part")
    if part:
        print(f"  {part_line(part)}")
    if part and part.get("progression"):
        print(f"  {progression_line(part['progression'])}")
    pair = result.settings.get("pair")
    if pair:
        print(f"  {pair_line(pair)}")
    beat = result.settings.get("beat")
    if beat:
        print(f"  {beat_line(beat)}")
    xf = result.crossfade
    if xf.get("n"):
        print(
            f"  crossfade {xf['a']}->{xf['b']}: starts on {xf['a']} {xf['starts_on_a']:.2f}, "
            f"ends on {xf['b']} {xf['ends_on_b']:.2f} (n={xf['n']})"
        )
    verdict = "beats" if result.beats_controls else "does NOT clearly beat"
    print(
        f"  the concept direction {verdict} every control and the baseline (95% CI of the difference)"
    )
    print(f"report: {result.html} ({result.seconds:.0f} s)")
    return 0
