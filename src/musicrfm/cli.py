"""`musicrfm <verb>`: a thin layer that parses arguments, calls the library and prints."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import musicrfm.commands
from musicrfm import __version__
from musicrfm.errors import MusicRFMError

# what Ctrl-C keeps, per verb: these verbs write each finished piece as they go and skip it when
# run again; the others start over
RESUMABLE = ("demo", "extract", "generate", "reproduce", "sweep", "synth")
INTERRUPTED = {
    "resumable": "interrupted: work done so far is kept; run the same command again to resume.",
    "mini": "interrupted: run the same command again (`mini train --resume` continues from the "
    "last checkpoint).",
    "other": "interrupted: this command does not resume; run it again to start over.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicrfm",
        description="Steer frozen text-to-music models toward musical concepts with RFM directions.",
    )
    parser.add_argument("--version", action="version", version=f"musicrfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for info in sorted(pkgutil.iter_modules(musicrfm.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"musicrfm.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MusicRFMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the disk or the operating system said no: still one line
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kind = "resumable" if args.verb in RESUMABLE else args.verb
        print(INTERRUPTED.get(kind, INTERRUPTED["other"]), file=sys.stderr)
        return 130


def os_error_line(exc: OSError) -> str:
    """An OSError as one line naming the file: ``cannot write x.wav: No space left on device``."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return what
    name = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return f"{name}: {what}"


if __name__ == "__main__":
    sys.exit(main())
