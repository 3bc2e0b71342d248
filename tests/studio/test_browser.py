"""MusicRFM Studio in a real browser: Debian's chromium driven by Playwright, against the
studio's own server. Load the page, type a prompt, set a knob, Generate, hear the stream,
check the clip plays, download it with its sidecar and regenerate it with the CLI's
``--reproduce``; move a knob mid-clip; Stop; two sessions; the queue."""

from __future__ import annotations

import json
import math
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from musicrfm.cli import main as cli_main

TIMEOUT_MS = 180_000
# Gradio ignores a click on a button whose event is still pending: wait for every progress
# tracker to be hidden first
IDLE_JS = (
    "() => [...document.querySelectorAll('[data-testid=status-tracker]')]"
    ".every(e => e.classList.contains('hide'))"
)


@pytest.fixture(scope="module")
def server(studio):
    import uvicorn

    from musicrfm.studio.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(studio), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the studio server did not start"
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = srv.force_exit = True  # open page connections must not hold it
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_context(viewport={"width": 1400, "height": 1700}).new_page()
    page.outside = []
    page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:"))
            else page.outside.append(r.url))  # fmt: skip
    page.goto(url)
    page.wait_for_selector("#studio-generate")
    page.wait_for_function("typeof window.musicrfmStudio === 'object'")
    return page


def set_number(page, elem: str, value: float) -> None:
    """Type a value into a slider's number box (what a user does for an exact value)."""
    box = page.locator(f"{elem} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


STATUS = "#studio-status [data-testid=markdown]"  # the text, not Gradio's progress timer


def status(page) -> str:
    return page.inner_text(STATUS).strip()


def wait_status(page, text: str, *, before: str = "Press Generate.") -> str:
    """The status box once it holds ``text`` and is no longer ``before`` (every clip's status
    names the clip, so a new one always differs)."""
    page.wait_for_function(
        """([sel, text, before]) => {
            const el = document.querySelector(sel);
            const now = el ? el.innerText.trim() : "";
            return now !== before && now.includes(text);
        }""",
        arg=[STATUS, text, before.strip()],
        timeout=TIMEOUT_MS,
    )
    return status(page)


def click_generate(page) -> str:
    """Press Generate and wait until its stream has started; returns the status it replaces."""
    page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)
    before = status(page)
    prev = page.evaluate("(S => S.stats ? S.stats.id : null)(window.musicrfmStudio)")
    page.click("#studio-generate")
    page.wait_for_function(
        "prev => (S => S.stats && S.stats.id !== prev)(window.musicrfmStudio)",
        arg=prev,
        timeout=TIMEOUT_MS,
    )
    return before


def stream_stats(page, *, done: bool = True) -> dict:
    cond = "S.stats.done" if done else "S.stats.chunks > 0"
    page.wait_for_function(f"(S => S.stats && {cond})(window.musicrfmStudio)", timeout=TIMEOUT_MS)
    return page.evaluate("window.musicrfmStudio.stats")


def test_generate_hear_download_and_reproduce(browser, server, studio, tmp_path, capsys):
    page = open_page(browser, server)
    page.fill("#studio-prompt textarea", "vibraphone, middle register")
    set_number(page, "#studio-seconds", 2)
    set_number(page, "#studio-knob0", 0.12)
    before = click_generate(page)
    stats = stream_stats(page)
    assert stats["error"] is None and not stats["stopped"]
    assert stats["samples"] == 2 * 16000 and stats["chunks"] >= 3
    assert math.sqrt(stats["sumsq"] / stats["samples"]) > 1e-3  # not silent
    assert stats["firstSound"] - stats["clicked"] < 30_000  # the figure: benchmarks/
    text = wait_status(page, "clip", before=before)
    assert "seed 0" in text and "2.00 s" in text
    # the page's player loads the clip (its duration shows) and the browser decodes it: not silent
    page.wait_for_function(
        "(t => t && t.innerText !== '0:00')(document.querySelector('#studio-audio #duration'))"
    )
    src = page.get_attribute("#studio-audio a.download-link", "href")
    heard = page.evaluate(
        """async (src) => {
            const buf = await (await fetch(src)).arrayBuffer();
            const audio = await new OfflineAudioContext(1, 1, 16000).decodeAudioData(buf);
            const x = audio.getChannelData(0);
            let s = 0; for (const v of x) s += v * v;
            return {duration: audio.duration, rms: Math.sqrt(s / x.length)};
        }""",
        src,
    )
    assert heard["duration"] > 1.9 and heard["rms"] > 1e-3
    # download the clip and its sidecar, regenerate it with the CLI: the same samples
    links = page.eval_on_selector_all("#studio-files a[href]", "els => els.map(e => e.href)")
    got = {}
    for href in links:
        name = href.split("/")[-1].split("?")[0]
        got[name.rsplit(".", 1)[-1]] = tmp_path / name
        (tmp_path / name).write_bytes(page.request.get(href).body())
    assert set(got) == {"wav", "flac", "json"}
    flac, wav = sf.read(str(got["flac"]))[0], sf.read(str(got["wav"]))[0]
    assert flac.shape == wav.shape and np.abs(flac - wav).max() < 1e-6  # a 24-bit copy
    sidecar = json.loads(got["json"].read_text())
    assert sidecar["prompt"] == "vibraphone, middle register"
    scale = studio.bundles["notes"].scale  # strength 0.12 = 0.12 x the activation norm
    assert sidecar["plan"]["direction"][0]["coef"] == pytest.approx(0.12 * scale)
    again = tmp_path / "again.wav"
    # the CLI's entry point in this process (a subprocess would add ~10 s of imports)
    assert cli_main(["generate", "--reproduce", str(got["json"]), "-o", str(again)]) == 0
    assert "identical" in capsys.readouterr().out
    assert np.array_equal(sf.read(str(again))[0], sf.read(str(got["wav"]))[0])
    assert not page.outside, f"the page reached outside the server: {page.outside[:5]}"


def test_a_knob_moved_mid_clip_reaches_the_server(browser, server):
    page = open_page(browser, server)
    set_number(page, "#studio-seconds", 3)
    set_number(page, "#studio-knob0", 0.0)
    click_generate(page)
    stream_stats(page, done=False)  # sound has started
    set_number(page, "#studio-knob0", 0.3)
    page.wait_for_function(
        "document.querySelector('#studio-warning').innerText.includes('beyond the safe range')"
    )
    text = wait_status(page, "live change")
    assert "1 live change(s)" in text or "2 live change(s)" in text


def test_stop_separate_sessions_and_the_queue(browser, server, studio):
    one, two = open_page(browser, server), open_page(browser, server)
    set_number(one, "#studio-seconds", 8)
    click_generate(one)
    stream_stats(one, done=False)
    one.click("#studio-stop")
    stopped = wait_status(one, "stopped at")
    assert stream_stats(one)["stopped"]
    assert "Press Generate." in status(two)  # the other session saw nothing
    assert "stopped" not in status(two)
    # one generates; two presses Generate (it waits in the queue), then Stop: cancelled there.
    # One's clip is long enough that it is still generating when two's Stop arrives (with 3 s
    # it once finished first on an idle CI machine, two began, and its status never said
    # "before it started")
    set_number(one, "#studio-seconds", 8)
    set_number(two, "#studio-seconds", 1)
    before_one, before_two = click_generate(one), click_generate(two)
    assert before_one == stopped
    two.wait_for_function(f"() => !({IDLE_JS})()", timeout=TIMEOUT_MS)  # queued, begun
    two.click("#studio-stop")
    wait_status(two, "stopped before it started", before=before_two)
    # two presses Generate again: one clip at a time, it waits its turn
    before_two = click_generate(two)
    wait_status(one, "clip", before=before_one)
    wait_status(two, "clip", before=before_two)
    a, b = (studio.runs.get(p.evaluate("window.musicrfmStudio.stats.id")) for p in (one, two))
    assert a.samples == 8 * 16000 and b.samples == 16000
    assert b.created >= a.finished_at


def test_the_beat_checkbox_without_onset_directions_is_one_line(browser, server):
    page = open_page(browser, server)
    page.get_by_text("Note sequence or chords on the beat grid").click()
    box = page.locator("#studio-play-beat")
    box.wait_for()
    assert "--directions models/musicgen-mini-beat/directions/onsets" in box.inner_text()
    assert page.locator("#studio-beat-strength input[type=number]").input_value() == "0.3"
    box.locator("input[type=checkbox]").check()
    set_number(page, "#studio-seconds", 1)
    before = click_generate(page)
    text = wait_status(page, "onset directions", before=before)
    assert text.startswith("⚠") and "\n" not in text
