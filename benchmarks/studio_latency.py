"""First sound in MusicRFM Studio, against the wait of a page that does not stream.

Figure: Generate pressed in a real browser (Debian's chromium, Playwright) → the first streamed
audio scheduled to sound (the player's ``stats.firstSound - stats.clicked``), median of
``--repeats`` clicks after one warm-up click. Also the library-level figure (`Studio.render`
called → first chunk decoded). Baseline, measured in the same run on the same request: the time
plain `musicrfm.steering.generate` takes for the whole clip, which is when a page without
streaming could first play anything. Target (issue 20): first sound within 1.5 s on the bundled
model on a 2-core CPU.

    .venv/bin/python benchmarks/studio_latency.py [--seconds 4] [--repeats 3] [--no-browser]
        [--screenshot docs/studio/studio.png]

Uses the studio's default note directions (cached; trained on first use, ~30 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path
from tempfile import mkdtemp

TARGET_S = 1.5
STATUS = "#studio-status [data-testid=markdown]"  # the status text, not Gradio's timer
IDLE_JS = (  # no Gradio event pending (a click on a pending event's button is ignored)
    "() => [...document.querySelectorAll('[data-testid=status-tracker]')]"
    ".every(e => e.classList.contains('hide'))"
)


def build_studio(threads: int):
    import torch

    from musicrfm.models import load_model
    from musicrfm.studio.bundles import default_bundle
    from musicrfm.studio.engine import Studio

    torch.set_num_threads(threads)
    adapter = load_model("mini")
    bundle = default_bundle(adapter, progress=False)
    studio = Studio(adapter, {bundle.name: bundle}, Path(mkdtemp(prefix="studio-bench-")))
    studio.warm_up()
    return studio


def request(studio, seconds: float, seed: int):
    from musicrfm.studio.request import Knob, Request

    return Request("acoustic piano, middle register", seconds=seconds, seed=seed,
                   knobs=(Knob("notes", "G", 0.1),), **studio.sampling_defaults())  # fmt: skip


def baseline(studio, seconds: float, repeats: int) -> float:
    """Seconds until plain generate() returns the whole clip (median)."""
    from musicrfm.steering.generation import generate

    times = []
    for seed in range(repeats):
        req = request(studio, seconds, seed)
        plan, _ = req.plan(studio.bundles)
        t = time.perf_counter()
        generate(studio.adapter, req.prompt, plan=plan, seed=seed, options=req.options())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def library_first_chunk(studio, seconds: float, repeats: int) -> float:
    times = []
    for seed in range(repeats):
        run = studio.new_run()
        t = time.monotonic()
        studio.render(request(studio, seconds, seed), run)
        times.append(run.first_chunk_at - t)
    return statistics.median(times)


def browser_first_sound(studio, seconds: float, repeats: int, shot: str | None) -> dict:
    """Median click → first chunk and click → first sound in chromium, in seconds."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from musicrfm.studio.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(studio), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    out: dict[str, list[float]] = {"chunk": [], "sound": [], "underruns": []}
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"),
                                  args=["--autoplay-policy=no-user-gesture-required"])  # fmt: skip
            page = b.new_page(viewport={"width": 1400, "height": 1700})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#studio-generate")
            page.wait_for_function("typeof window.musicrfmStudio === 'object'")
            print("  page loaded", flush=True)
            box = page.locator("#studio-seconds input[type=number]")
            box.fill(str(seconds))
            box.press("Enter")
            for i in range(repeats + 1):  # the first click warms the page up
                page.wait_for_function(IDLE_JS, timeout=300_000)
                before = page.inner_text(STATUS).strip()
                prev = page.evaluate("(S => S.stats ? S.stats.id : null)(window.musicrfmStudio)")
                page.click("#studio-generate")
                page.wait_for_function(
                    "prev => (S => S.stats && S.stats.id !== prev && S.stats.done)"
                    "(window.musicrfmStudio)", arg=prev, timeout=300_000,
                )  # fmt: skip
                st = page.evaluate("window.musicrfmStudio.stats")
                page.wait_for_function(
                    "([sel, before]) => (t => t !== before && t.includes('clip'))"
                    "(document.querySelector(sel).innerText.trim())",
                    arg=[STATUS, before], timeout=300_000,
                )  # fmt: skip
                print(f"  click {i}: first sound {(st['firstSound'] - st['clicked']) / 1000:.2f} s"
                      f"{' (warm-up)' if not i else ''}", flush=True)  # fmt: skip
                if i:
                    out["chunk"].append((st["firstChunk"] - st["clicked"]) / 1000)
                    out["sound"].append((st["firstSound"] - st["clicked"]) / 1000)
                    out["underruns"].append(st["underruns"])
            arrivals = ", ".join(f"{t / 1000:.2f}s:+{d:.2f}({b:.2f})" for t, d, b in st["arrivals"])
            print(f"  last click's chunks, arrival:+audio(buffered before it): {arrivals}")
            if shot:
                page.screenshot(path=shot, full_page=True)
            b.close()
    finally:
        srv.should_exit = True
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--screenshot", help="also save a screenshot of the page here")
    args = ap.parse_args()
    studio = build_studio(args.threads)
    load = os.getloadavg()[0]
    print(f"bundled model, {args.seconds:g} s clips, {args.repeats} repeats, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")  # fmt: skip
    base = baseline(studio, args.seconds, args.repeats)
    print(f"baseline: whole clip from plain generate()     {base:6.2f} s")
    lib = library_first_chunk(studio, args.seconds, args.repeats)
    print(
        f"library:  Studio.render -> first audio chunk    {lib:6.2f} s  ({lib / base:.2f} x baseline)"
    )
    if args.no_browser or shutil.which("chromium") is None:
        print("browser:  skipped (no chromium)")
        return
    br = browser_first_sound(studio, args.seconds, args.repeats, args.screenshot)
    print(f"browser:  Generate -> first chunk arrives       {br['chunk']:6.2f} s")
    print(f"browser:  Generate -> first sound (the figure)  {br['sound']:6.2f} s  "
          f"({br['sound'] / base:.2f} x baseline; target {TARGET_S} s: "
          f"{'met' if br['sound'] <= TARGET_S else 'NOT met'}); underruns {br['underruns']:g}")  # fmt: skip


if __name__ == "__main__":
    main()
