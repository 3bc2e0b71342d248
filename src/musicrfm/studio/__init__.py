"""MusicRFM Studio (`musicrfm serve`): steer in the browser, live, while the music plays.

Stage 8 of the pipeline (after experiments, before mini): it builds on steering (plans, live
knobs, `generate`), evaluation (the note detector's trace) and the demo's direction training.
Modules: `bundles` (which direction files the page offers, the default one trained as the demo
trains it), `request` (the page's controls as a checked request and its plan), `runs` (one
generation in flight), `stream` (decoder ids → audio chunks while it generates), `engine`
(`Studio`: the model, the lock, clips made as ``musicrfm generate`` makes them), `figures`,
`plans` (plan TOML in and out), `app` (the Gradio page), `server` (the page and the audio
stream on one app). Gradio, FastAPI and torch are imported only when a server is built.
"""

from __future__ import annotations

from musicrfm.lazy import lazy_exports

_LAZY = {
    "Studio": "musicrfm.studio.engine",
    "Take": "musicrfm.studio.engine",
    "reproduce_take": "musicrfm.studio.engine",
    "Request": "musicrfm.studio.request",
    "Knob": "musicrfm.studio.request",
    "NoteLine": "musicrfm.studio.request",
    "Bundle": "musicrfm.studio.bundles",
    "default_bundle": "musicrfm.studio.bundles",
    "load_bundles": "musicrfm.studio.bundles",
    "create_app": "musicrfm.studio.server",
    "run_server": "musicrfm.studio.server",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = list(_LAZY)
