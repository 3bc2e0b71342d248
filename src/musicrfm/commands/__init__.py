"""One module per CLI verb. Each defines `register(subparsers)`; `cli.main` discovers them.

A command module must be cheap to import (no torch, no transformers at top level): import heavy
things inside the function that runs the verb, so `musicrfm --help` stays instant (a test checks).

`--model` means the same in every verb: a name :func:`musicrfm.models.load_model` accepts.
"""

from __future__ import annotations

import argparse

MODEL_HELP = (
    "the model: 'mini' (the bundled musicgen-mini; also 'musicgen-mini' or 'default'), a hub id "
    "such as facebook/musicgen-small (or musicgen-small), a local folder written by "
    "save_pretrained, or random:tiny|small[:seedN] (random weights, for plumbing)"
)


def add_model_argument(
    parser: argparse.ArgumentParser, *, default: str | None = "mini", note: str = ""
) -> None:
    """The one ``--model`` option (default: the bundled model)."""
    shown = f" (default {default})" if default else ""
    parser.add_argument("--model", default=default, help=MODEL_HELP + shown + note)
