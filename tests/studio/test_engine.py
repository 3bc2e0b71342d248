"""The studio through the page's own handlers: live knobs, stop, sidecars, A/B, the grid, bad
input, plan files, separate sessions. (The browser drives the same handlers in test_browser.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrfm.evaluation.detectors import detect_note
from musicrfm.steering.generation import reproduce
from musicrfm.studio.app import Session
from musicrfm.studio.engine import reproduce_take

HOP = 320  # samples per frame of the bundled model (16 kHz, 50 frames/s)


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def audio(path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def generate_moving(handlers, values, *, knob="knob0", at_step=100, to=0.3):
    """Generate as the page does, moving ``knob`` to ``to`` once the clip reaches ``at_step``."""
    sess, out = Session(), {}
    worker = threading.Thread(target=lambda: out.update(r=handlers.generate("", sess, *values)))
    worker.start()
    deadline = time.monotonic() + 120
    while (sess.run is None or sess.run.live.step < at_step) and time.monotonic() < deadline:
        time.sleep(0.002)
    strengths = [values[10], values[11], values[12], values[17]]  # knobs 1-3, sequence
    strengths[["knob0", "knob1", "knob2", "sequence"].index(knob)] = to
    warning = handlers.knob(sess, knob, *strengths)
    worker.join()
    return out["r"], warning, sess


def test_a_knob_moved_mid_clip_changes_the_steering_from_the_next_step(handlers, controls):
    values = controls(seconds=4.0, seed=3, strength0=0.0)
    still = handlers.generate("", Session(), *values)
    moved, warning, sess = generate_moving(handlers, values)
    assert "beyond the safe range" in warning
    assert "1 live change(s)" in moved[0]
    side = read_json(moved[3][1])
    (event,) = side["live"]["events"]
    assert event["step"] >= 100 and event["coef"] > 0
    a, b = audio(still[1]), audio(moved[1])
    cut = (event["step"] - 4) * HOP  # frame f needs positions up to f + 4
    assert np.array_equal(a[:cut], b[:cut]) and not np.array_equal(a[cut:], b[cut:])
    # the detector (no model inside) hears the target only after the change point
    t_change = event["step"] / 50.0
    before, after = (
        detect_note(a, 16000, window_s=0.5, hop_s=0.25),
        detect_note(b, 16000, window_s=0.5, hop_s=0.25),
    )
    late = before.times > t_change + 0.5
    assert np.mean(np.array(after.trace_labels)[late] == "G") >= 0.8
    assert np.mean(np.array(before.trace_labels)[late] == "G") < 0.5
    early = after.times < t_change - 0.5
    assert after.trace_labels[: early.sum()] == before.trace_labels[: early.sum()]
    # the changes replay bit for bit; the unmoved clip reproduces as the CLI's --reproduce does
    assert reproduce_take(moved[3][1]).meta["audio_sha256"] == side["audio_sha256"]
    still_side = read_json(still[3][1])
    assert "live" not in still_side
    assert reproduce(still[3][1]).meta["audio_sha256"] == still_side["audio_sha256"]


def test_the_stream_is_the_clip(studio, controls):
    from musicrfm.studio.app import Controls

    req = Controls.from_values(controls(seconds=2.0)).request(studio)
    run = studio.new_run()
    take = studio.render(req, run)
    chunks, finished = run.chunks_since(0)
    assert finished and len(chunks) >= 3
    assert np.array_equal(np.concatenate(chunks), take.audio)
    assert run.first_chunk_at - run.created < take.elapsed / 2


def test_stop_keeps_what_was_made_and_the_page_stays_usable(handlers, controls):
    sess, out = Session(), {}
    values = controls(seconds=8.0)
    worker = threading.Thread(target=lambda: out.update(r=handlers.generate("", sess, *values)))
    worker.start()
    while sess.run is None or sess.run.live.step < 40:
        time.sleep(0.002)
    handlers.stop(sess)
    worker.join()
    status, wav, _, files = out["r"]
    assert "stopped at" in status and files == [wav]
    assert 0.5 < len(audio(wav)) / 16000 < 8.0
    again = handlers.generate("", sess, *controls(seconds=1.0))
    assert again[0].startswith("**clip ") and len(again[3]) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strength0": float("nan")}, "finite"),
        ({"strength0": 5.0}, "between -1 and 1"),
        ({"seconds": 1e6}, "seconds must be between"),
        ({"prompt": "  "}, "write a prompt"),
        ({"target0": "notes:H"}, "unknown class 'H'"),
        ({"target0": "/etc/passwd:C"}, "unknown direction bundle"),
        ({"notes": "C X"}, "unknown class 'X'"),
        ({"notes": "C E", "bpm": "fast"}, "cannot read BPM"),
        ({"sched_kind": "keyframes", "sched_params": "0=2"}, "keyframe value"),
        ({"layers": "top:x"}, "cannot read layer spec"),
        ({"temperature": -1}, "temperature"),
        ({"seed": 1.5}, "whole number"),
    ],
)
def test_bad_input_is_one_line_in_the_page(handlers, controls, change, message):
    status, *rest = handlers.generate("", Session(), *controls(**change))
    assert status.startswith("⚠") and message in status and "Traceback" not in status
    assert rest == ["SKIP"] * 3


def test_ab_and_the_strength_grid_share_one_seed(handlers, controls):
    a, b, info = handlers.ab(Session(), *controls(seconds=2.0, seed=5, strength0=0.3))
    side_a, side_b = (read_json(p.replace(".wav", ".json")) for p in (a, b))
    assert side_a["seed"] == side_b["seed"] == 5
    assert side_a["plan"] is None and side_b["plan"]["direction"][0]["target"] == "G"
    assert "unsteered" in info and "steered" in info
    table, takes = handlers.grid(Session(), "0, 0.3", *controls(seconds=2.0, seed=5))
    assert [t.request.knobs[0].strength for t in takes] == [0.0, 0.3]
    assert detect_note(takes[1].audio, 16000).label == "G"
    assert table.count("\n") == 3


def test_sessions_are_separate(handlers, controls):
    mine, other = Session(), Session()
    handlers.generate("", other, *controls(seconds=1.0))
    moved, _, sess = generate_moving(handlers, controls(seconds=3.0), at_step=40)
    assert "live change" in moved[0]
    # a knob in another session reaches only that session's (finished) run
    assert handlers.knob(mine, "knob0", 0.1, 0, 0, 0.15) == ""
    assert other.run is not sess.run and not other.run.live.events


def test_plan_files_round_trip_and_never_name_a_server_path(handlers, controls, tmp_path):
    from musicrfm.steering.plan import SteeringPlan
    from musicrfm.studio.app import CONTROL_NAMES

    values = controls(strength0=0.12, target1="notes:C", strength1=-0.05, notes="C E | G",
                      bpm="90..130", layers="top:3+exp:0.95", gate=0.5)  # fmt: skip
    path, status = handlers.save_plan(Session(), *values)
    assert "plan saved" in status
    plan = SteeringPlan.load(path)  # what musicrfm generate --plan reads
    assert [d.target for d in plan.directions] == ["G", "C", "C", "E", "G"]
    loaded = handlers.load_plan(path)
    assert loaded[-1].startswith("plan loaded")
    got = dict(zip(CONTROL_NAMES, loaded))
    want = dict(zip(CONTROL_NAMES, values))
    for name in ("target0", "strength0", "target1", "strength1", "notes", "bpm", "gate",
                 "seq_strength", "layers"):  # fmt: skip
        assert (
            got[name] == pytest.approx(want[name])
            if isinstance(want[name], float)
            else got[name] == want[name]
        ), name
    text = Path(path).read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(str(handlers.studio.bundles["notes"].path), "/etc/passwd"))
    assert "not loaded in this studio" in handlers.load_plan(str(bad))[-1]
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 70_000)
    assert "at most" in handlers.load_plan(str(big))[-1]
    junk = tmp_path / "junk.toml"
    junk.write_text("[[direction]\n")
    assert "not a valid TOML" in handlers.load_plan(str(junk))[-1]


def test_previews_and_the_concept_browser(handlers, controls):
    fig, status = handlers.preview(*controls(sched_kind="keyframes", sched_params="0=0, 1=1",
                                             sched_unit="bars", bpm="120"))  # fmt: skip
    assert status == "SKIP" and fig.axes[0].get_lines()
    line = fig.axes[0].get_lines()[0]
    assert line.get_ydata()[-1] == pytest.approx(1.0)  # reached at bar 1 = 2 s at 120 BPM
    about, scores = handlers.browse("notes")
    assert "12 classes" in about and scores.axes
    assert handlers.browse("../etc")[0].startswith("⚠")
