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
    except KeyboardInterrupt:
        print(
            "interrupted: work done so far is kept; run the same command again to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
