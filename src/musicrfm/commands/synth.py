"""`musicrfm synth`: render the synthetic music-theory dataset (a SynTheory equivalent)."""

from __future__ import annotations

import argparse
import logging

from musicrfm.errors import ConfigError

log = logging.getLogger(__name__)

EPILOG = """\
concepts: notes, intervals, scales, chords, progressions, tempos, time_signatures
(`musicrfm synth --list` shows their labels). Restrict labels with CONCEPT:LABEL,LABEL, e.g.
`chords:major,minor` or `notes:C,E,G`.

examples:
  musicrfm synth notes --out data/notes --programs 0,24,40 --octaves 3,4,5
  musicrfm synth chords:major,minor tempos --out data/mix --limit-per-class 50
  musicrfm synth notes intervals scales chords progressions tempos time_signatures --out data/all

The folder gets audio files, manifest.csv (one row per non-silent clip: path, concept, label,
every other label/parameter, duration, sample_rate, seed) and dataset.json. Run the same command
again to resume an interrupted run.
"""


def _csv(kind: type = str):
    def parse(text: str) -> list:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        if kind is int:
            try:
                return [int(s) for s in items]
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None
        return items

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="render the synthetic music-theory dataset (notes, chords, tempos, ...)",
        description="Render SynTheory-style labelled clips through a General MIDI soundfont.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("concepts", nargs="*", metavar="CONCEPT", help="concept[:label,label] to render")
    p.add_argument(
        "--list", action="store_true", help="list the concepts and their labels, then exit"
    )
    p.add_argument("--out", "-o", help="dataset folder (created; re-run to resume)")
    p.add_argument(
        "--programs",
        type=_csv(),
        help="GM programs, numbers or names, comma-separated (default: SynTheory's 92)",
    )
    p.add_argument(
        "--roots", type=_csv(), help="root/key pitch classes, e.g. C,E,G# (default: all 12)"
    )
    p.add_argument(
        "--octaves", type=_csv(int), help="notes only: SynTheory octaves (midi // 12), e.g. 3,4,5"
    )
    p.add_argument("--limit-per-class", type=int, help="at most N clips per label (seeded sample)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for crops, reverb and sampling (default 0)"
    )
    p.add_argument("--sample-rate", type=int, default=32000, help="Hz (default 32000, MusicGen's)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 2), help="1 mono (default) or 2")
    p.add_argument(
        "--format", default="flac", choices=("flac", "wav"), help="audio files (default flac)"
    )
    p.add_argument("--duration", type=float, default=4.0, help="clip seconds (default 4)")
    p.add_argument("--soundfont", help="a General MIDI .sf2 (default: TimGM6mb)")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--from-hub",
        action="store_true",
        help="copy ONE concept of the original SynTheory from the Hugging Face hub instead of "
        "rendering (needs `pip install 'musicrfm[hub]'` and a network)",
    )
    p.add_argument("--hub-limit", type=int, help="with --from-hub: at most N clips")
    p.set_defaults(func=run)


def list_concepts() -> str:
    from musicrfm.synth.concepts import CONCEPTS

    lines = []
    for c in CONCEPTS.values():
        lines.append(f"{c.name} ({c.full_size:,} clips): {c.description}")
        lines.append(f"  label = {c.label_meaning}; {len(c.labels)} classes:")
        labels = list(c.labels)
        if c.name == "tempos":
            labels = [f"{labels[0]}", "...", f"{labels[-1]} (every integer BPM)"]
        lines.append("  " + " ".join(labels))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_concepts())
        return 0
    if not args.concepts:
        from musicrfm.synth.concepts import CONCEPTS

        raise ConfigError(
            f"name at least one concept; valid: {', '.join(CONCEPTS)} (or use --list)"
        )
    if not args.out:
        raise ConfigError("--out DIR is required (the dataset folder)")
    if args.soundfont:
        from pathlib import Path

        sf2 = Path(args.soundfont).expanduser()
        if sf2.is_dir():
            found = sorted(p.name for p in sf2.glob("*.sf2"))
            hint = f" (it holds {', '.join(found[:3])})" if found else ""
            raise ConfigError(f"--soundfont {sf2} is a folder; give the .sf2 file itself{hint}")
    from musicrfm.files import check_writable

    check_writable(args.out, what="--out", folder=True)
    if args.from_hub:
        if len(args.concepts) != 1 or ":" in args.concepts[0]:
            raise ConfigError("--from-hub copies one whole concept at a time, e.g. `synth notes`")
        from musicrfm.synth.hub import load_syntheory

        ds = load_syntheory(
            args.concepts[0],
            args.out,
            limit=args.hub_limit,
            sample_rate=args.sample_rate,
            channels=args.channels,
            format=args.format,
        )
        print(f"{ds.root}: {len(ds)} SynTheory clips; manifest: {ds.root / 'manifest.csv'}")
        return 0
    from musicrfm.synth.generate import generate_dataset

    ds = generate_dataset(
        args.concepts,
        args.out,
        programs=args.programs,
        roots=args.roots,
        octaves=args.octaves,
        limit_per_class=args.limit_per_class,
        seed=args.seed,
        sample_rate=args.sample_rate,
        channels=args.channels,
        format=args.format,
        duration=args.duration,
        soundfont=args.soundfont,
        workers=args.workers,
        progress=not args.no_progress,
    )
    meta = ds.meta
    counts = ", ".join(f"{k} {v}" for k, v in meta.get("counts", {}).items())
    print(
        f"{ds.root}: {meta.get('clips', len(ds))} clips ({counts}); "
        f"{meta.get('silent_excluded', 0)} silent renders left out; manifest: {ds.root / 'manifest.csv'}"
    )
    return 0
