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


THREADS_HELP = (
    "torch CPU threads (default 1: on a busy 2-core machine 2 threads made a generation step "
    "0.6-6.9 s against a steady 0.2 s with one; raise it on an idle many-core machine)"
)


def add_threads_argument(parser: argparse.ArgumentParser, *, default: int | None = 1) -> None:
    """The one ``--threads`` option of the verbs that run a model or train probes."""
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=THREADS_HELP)


def apply_threads(threads: int | None) -> None:
    """Set torch's CPU thread count for this command (None: leave torch's own choice)."""
    from musicrfm.errors import ConfigError

    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(int(threads))


def check_device(device: str) -> None:
    """The same one-line error for a device that does not exist here, in every verb, before any
    work (`musicrfm.models.loader.check_device`)."""
    from musicrfm.models.loader import check_device as check

    check(device)
