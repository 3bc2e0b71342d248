"""`musicrfm serve`: MusicRFM Studio, a local web page to steer a model live while it plays."""

from __future__ import annotations

import argparse
import logging

from musicrfm.commands import add_model_argument

log = logging.getLogger(__name__)

DESCRIPTION = """\
Start MusicRFM Studio: a Gradio page (offline, on this machine only by default) with a prompt,
sampling controls and seed, live strength knobs for the concepts of the loaded direction bundles
(signed, in units of the median activation norm, with a safe range), layers, gate, a schedule
editor with a phi(t) preview, note sequences and chord progressions on a BPM grid (the
compilers of generate --notes and --chords; chords need chord-root or chord-quality bundles
given with --directions), A/B at one seed, a strength grid, the note detector's trace under
each clip, downloads (WAV + the JSON sidecar that `musicrfm generate --reproduce` regenerates
bit for bit) and plan files. Audio streams into the page while it is generated, and a knob
moved meanwhile changes the steering from the next decoder step. Without --directions the
studio offers the note directions the demo trains for the model (trained once, about 30 s on 2
cores, then cached)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="start MusicRFM Studio: steer in the browser, live, while the music plays",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_argument(p)
    p.add_argument(
        "--directions",
        nargs="+",
        metavar="DIR",
        help="direction bundles the page may use (file bases or folders of them); default: the "
        "demo's note directions for the model, trained on first start",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--out", help="folder for the clips (default: a new temporary folder)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on 2 cores)"
    )
    p.add_argument(
        "--allow-model-mismatch",
        action="store_true",
        help="accept direction files recorded for another model id (same shapes)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    import torch

    from musicrfm.errors import ConfigError
    from musicrfm.models import load_model
    from musicrfm.studio.bundles import default_bundle, load_bundles
    from musicrfm.studio.engine import Studio
    from musicrfm.studio.server import run_server

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {args.port}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    adapter = load_model(args.model, device=args.device)
    if args.directions:
        bundles = load_bundles(args.directions, adapter, strict=not args.allow_model_mismatch)
    else:
        b = default_bundle(adapter)
        bundles = {b.name: b}
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="musicrfm-studio-"))
    studio = Studio(adapter, bundles, out, threads=args.threads)
    log.info("warming up (one short clip) in %.1f s", studio.warm_up())
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "binding to %s: anyone who can reach this address can use the studio", args.host
        )
    names = ", ".join(f"{b.name} ({b.concept}, {b.origin})" for b in bundles.values())
    print(f"MusicRFM Studio: http://{args.host}:{args.port}  (Ctrl-C to stop)")
    print(f"  model {adapter.model_id}; directions: {names}; clips in {out}")
    run_server(studio, host=args.host, port=args.port)
    return 0
