"""The studio's web server: the Gradio page and the live audio stream, on one FastAPI app.

``GET /studio/stream/<run id>`` sends a run's audio as it is decoded: one JSON line per chunk
(``{"sr", "offset", "pcm"}``, float32 little-endian PCM in base64), then ``{"done": true,
"stopped": ...}``; blank lines keep the connection open while the request waits in the queue.
The page's player (``player.js``) opens it when Generate is pressed. Everything else is
Gradio's, mounted at ``/``, with its queue (one generation at a time, the others wait their
turn), a 1 MB upload limit, no analytics, no share link, and fonts from the system only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from musicrfm.studio.engine import Studio
from musicrfm.studio.runs import RUN_ID

log = logging.getLogger(__name__)

WAIT_FOR_RUN_S = 600.0  # a request may wait this long in the queue before its stream gives up
QUEUE_SIZE = 32
CSS = "#studio-live-status { font-family: ui-monospace, monospace; padding: 4px 0; }"


def offline_environment() -> None:
    """Settings that keep Gradio from reaching the network (set before importing it)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_SSR_MODE", "False")


def player_js() -> str:
    return files("musicrfm.studio").joinpath("player.js").read_text()


def _line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload) + "\n").encode()


async def stream_run(studio: Studio, run_id: str) -> AsyncIterator[bytes]:
    """The NDJSON body of ``/studio/stream/<run id>`` (see the module docstring)."""
    start = time.monotonic()
    beat = start
    run = studio.runs.get(run_id)
    while run is None:
        now = time.monotonic()
        if now - start > WAIT_FOR_RUN_S:
            yield _line({"done": True, "stopped": False, "error": "the request never started"})
            return
        if now - beat > 1.0:  # keep the connection open while the request waits its turn
            beat = now
            yield b"\n"
        await asyncio.sleep(0.01)
        run = studio.runs.get(run_id)
    index, offset = 0, 0
    while True:
        # wait for the next chunk in a worker thread (no polling of the generating thread)
        chunks, finished = await asyncio.to_thread(run.chunks_since, index, 0.5)
        for chunk in chunks:
            pcm = base64.b64encode(chunk.astype("<f4").tobytes()).decode("ascii")
            yield _line({"sr": run.sample_rate, "offset": offset, "pcm": pcm})
            offset += len(chunk)
        index += len(chunks)
        if finished:
            yield _line({"done": True, "stopped": run.stopped, "samples": offset})
            return


def create_app(studio: Studio) -> Any:
    """The FastAPI app: the stream route, then the Gradio page at ``/``."""
    offline_environment()
    import gradio as gr
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import StreamingResponse

    from musicrfm.studio.app import build_blocks

    app = FastAPI(title="MusicRFM Studio", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/studio/stream/{run_id}")
    async def stream(run_id: str) -> StreamingResponse:
        if not RUN_ID.match(run_id):
            raise HTTPException(status_code=404)
        return StreamingResponse(
            stream_run(studio, run_id),
            media_type="application/x-ndjson",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    blocks = build_blocks(studio)
    blocks.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    theme = gr.themes.Default(
        font=("ui-sans-serif", "system-ui", "sans-serif"),
        font_mono=("ui-monospace", "monospace"),
    )
    return gr.mount_gradio_app(
        app, blocks, path="/", theme=theme, css=CSS, head=f"<script>{player_js()}</script>",
        max_file_size="1mb", ssr_mode=False, allowed_paths=[str(studio.out_dir)],
        footer_links=["settings"],
    )  # fmt: skip


def run_server(studio: Studio, *, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import uvicorn

    app = create_app(studio)
    log.info("MusicRFM Studio on http://%s:%d (Ctrl-C to stop)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
