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
    values = controls(seconds=3.0, seed=3, strength0=0.0)
    still = handlers.generate("", Session(), *values)
    moved, warning, sess = generate_moving(handlers, values, at_step=60)
    assert "beyond the safe range" in warning
    assert "1 live change(s)" in moved[0]
    side = read_json(moved[3][1])
    (event,) = side["live"]["events"]
    assert event["step"] >= 60 and event["coef"] > 0
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
    # the changes replay bit for bit, in the library and from the CLI (an unmoved clip's
    # sidecar is the CLI's too: test_browser regenerates one with musicrfm generate --reproduce)
    assert reproduce_take(moved[3][1]).meta["audio_sha256"] == side["audio_sha256"]
    from musicrfm.cli import main

    again = Path(moved[3][1]).with_name("again.wav")
    assert main(["generate", "--reproduce", str(moved[3][1]), "-o", str(again)]) == 0
    assert read_json(again.with_suffix(".json"))["audio_sha256"] == side["audio_sha256"]
    assert "live" not in read_json(still[3][1])


def test_the_stream_is_the_clip(studio, controls):
    from musicrfm.studio.app import Controls

    req = Controls.from_values(controls(seconds=1.5)).request(studio)
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
    again = handlers.generate("", sess, *controls(seconds=1.0))  # still stopped: not begun
    assert again[0] == "■ stopped before it started"
    handlers.begin("", sess)  # what pressing Generate does first, before the queue
    again = handlers.generate("", sess, *controls(seconds=1.0))
    assert again[0].startswith("**clip ") and len(again[3]) == 3  # wav, sidecar, flac


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
    a, b, info = handlers.ab(Session(), *controls(seconds=1.5, seed=5, strength0=0.3))
    side_a, side_b = (read_json(p.replace(".wav", ".json")) for p in (a, b))
    assert side_a["seed"] == side_b["seed"] == 5
    assert side_a["plan"] is None and side_b["plan"]["direction"][0]["target"] == "G"
    assert "unsteered" in info and "steered" in info
    table, takes = handlers.grid(Session(), "0, 0.3", *controls(seconds=1.5, seed=5))
    assert [t.request.knobs[0].strength for t in takes] == [0.0, 0.3]
    assert detect_note(takes[1].audio, 16000).label == "G"
    assert table.count("\n") == 3


def test_sessions_are_separate(handlers, controls):
    mine, other = Session(), Session()
    handlers.generate("", other, *controls(seconds=1.0))
    moved, _, sess = generate_moving(handlers, controls(seconds=2.0), at_step=40)
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
    assert status == "" and fig.axes[0].get_lines()
    line = fig.axes[0].get_lines()[0]
    t, phi = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert phi[0] == pytest.approx(0.0) and phi[-1] == pytest.approx(1.0)  # 1 bar = 2 s at 120
    assert np.interp(1.0, t, phi) == pytest.approx(0.5, abs=0.05)  # half-way up at 1 s
    about, scores = handlers.browse("notes")
    assert "12 classes" in about and scores.axes
    assert handlers.browse("../etc")[0].startswith("⚠")
    fig, message = handlers.preview(*controls(sched_kind="constant", sched_params="0=0"))
    assert fig == "SKIP" and message.startswith("⚠ unknown option")


def chord_quality_bundle(studio, folder):
    """Chord-quality directions of the right shape (random unit vectors) as a loaded bundle."""
    import torch

    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.studio.bundles import SCALE_KEY, load_bundles

    a = studio.adapter
    g = torch.Generator().manual_seed(0)
    v = torch.randn(a.num_layers, 4, 1, a.hidden_size, generator=g)
    meta = {"model_id": a.model_id, "num_layers": a.num_layers, "hidden_size": a.hidden_size,
            SCALE_KEY: 9.0}  # fmt: skip
    cd = ConceptDirections("chords", ["major", "minor", "augmented", "diminished"],
                           v / v.norm(dim=-1, keepdim=True), torch.rand(a.num_layers, 4),
                           list(range(a.num_layers)), meta=meta)  # fmt: skip
    cd.save(folder / "chords")
    return load_bundles([folder / "chords"], a)["chords"]


def test_chords_compile_as_generate_chords_does_and_move_live(studio, controls, tmp_path):
    from musicrfm.steering.plan import compile_progression
    from musicrfm.steering.progressions import make_progression
    from musicrfm.studio.app import Handlers
    from musicrfm.studio.engine import Studio

    # without chord bundles: one line naming what to train
    status, *_ = Handlers(studio).generate("", Session(), *controls(chords="C Am"))
    assert status.startswith("⚠") and "chord-root directions" in status and "train" in status
    status, *_ = Handlers(studio).generate("", Session(), *controls(chords="C", notes="C E"))
    assert "not both" in status
    quality = chord_quality_bundle(studio, tmp_path)
    both = Studio(studio.adapter, {**studio.bundles, "chords": quality}, tmp_path / "out")
    h = Handlers(both)
    h.SKIP = "SKIP"
    values = controls(chords="C Am | Bdim", bpm="240", target0="—", seq_strength=0.1)
    status, wav, _, files = h.generate("", Session(), *values)
    assert status.startswith("**clip "), status
    side = read_json(files[1])
    # the plan the CLI's compiler makes from the same chords, BPM and strength
    want = compile_progression(make_progression(chords="C Am | Bdim", bpm="240", parts=["quality"]),
                               [str(quality.path)], 0.1 * quality.scale)  # fmt: skip
    got = side["plan"]["direction"]
    assert [d["target"] for d in got] == [d.target for d in want.directions]
    assert [d["coef"] for d in got] == pytest.approx([d.coef for d in want.directions])
    assert reproduce_take(files[1]).meta["audio_sha256"] == side["audio_sha256"]
    # the sequence knob drives every chord direction live
    run = both.new_run()
    _, knobs = h.request(values).plan(both.bundles)
    run.bind(knobs)
    assert len(knobs["sequence"]) == len(got) and run.set_strength("sequence", 0.2)
    assert sorted(run.live.take(0)) == list(range(len(got)))
