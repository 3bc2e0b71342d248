"""The studio plays the BPM: onset directions pulsed on its beats (`BeatLine`), as ``musicrfm
generate --bpm B --directions <onsets>`` does, through the page's own handlers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicrfm.studio.app import Session


def onset_bundle(studio, folder):
    """Onset directions of the right shape (random unit vectors, classes none / onset) as a
    loaded bundle; strength 1.0 = η0 9.0."""
    import torch

    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.studio.bundles import SCALE_KEY, load_bundles

    a = studio.adapter
    g = torch.Generator().manual_seed(1)
    v = torch.randn(a.num_layers, 2, 1, a.hidden_size, generator=g)
    meta = {"model_id": a.model_id, "num_layers": a.num_layers, "hidden_size": a.hidden_size,
            SCALE_KEY: 9.0}  # fmt: skip
    cd = ConceptDirections("onsets", ["none", "onset"], v / v.norm(dim=-1, keepdim=True),
                           torch.rand(a.num_layers, 2), list(range(a.num_layers)), meta=meta)  # fmt: skip
    cd.save(folder / "onsets")
    return load_bundles([folder / "onsets"], a)["onsets"]


@pytest.fixture(scope="module")
def beat_handlers(studio, tmp_path_factory):
    from musicrfm.studio.app import Handlers
    from musicrfm.studio.engine import Studio

    tmp = tmp_path_factory.mktemp("beat")
    onsets = onset_bundle(studio, tmp)
    h = Handlers(Studio(studio.adapter, {**studio.bundles, "onsets": onsets}, tmp / "out"))
    h.SKIP = "SKIP"
    return h


def test_the_beat_compiles_as_generate_bpm_does(beat_handlers, controls):
    from musicrfm.steering.plan import compile_progression
    from musicrfm.steering.progressions import make_progression

    studio = beat_handlers.studio
    onsets = studio.bundles["onsets"]
    values = controls(play_beat=True, bpm="160", beat_strength=0.3, target0="—", seconds=3.0)
    req = beat_handlers.request(values)
    plan, live = req.plan(studio.bundles)
    (d,) = plan.directions
    assert d.target == "onset" and d.schedule.kind == "keyframes"
    assert d.directions == str(onsets.path) and d.coef == pytest.approx(0.3 * 9.0)
    # the CLI's compiler from the same BPM, length and η0: the same pulses
    want = compile_progression(make_progression(bpm="160", steer_beat=True, seconds=3.0),
                               [str(onsets.path)], 0.3 * 9.0)  # fmt: skip
    assert d.schedule == want.directions[0].schedule
    peaks = [t for t, v in d.schedule.points if v == 1.0]
    assert peaks[1] - peaks[0] == pytest.approx(60 / 160)  # a pulse a beat at 160 BPM
    assert live == {"beat": [(0, pytest.approx(9.0))]}
    # off by default: the page's defaults steer no beat
    assert beat_handlers.request(controls()).beat is None
    # with a knob and a note sequence: the pulses come last, on the same BPM
    req = beat_handlers.request(controls(play_beat=True, notes="C E", bpm="160"))
    plan, live = req.plan(studio.bundles)
    assert [x.target for x in plan.directions] == ["G", "C", "E", "onset"]
    clip = compile_progression(make_progression(bpm="160", steer_beat=True, seconds=2.0),
                               [str(onsets.path)], 0.3 * 9.0)  # fmt: skip
    assert plan.directions[-1].schedule == clip.directions[0].schedule  # over the 2 s clip
    assert live["beat"] == [(3, pytest.approx(9.0))]


def test_a_clip_with_the_beat_records_its_pulses_and_moves_live(beat_handlers, controls):
    values = controls(play_beat=True, bpm="120", beat_strength=0.2, target0="—", seconds=1.0)
    status, wav, _, files = beat_handlers.generate("", Session(), *values)
    assert status.startswith("**clip "), status
    side = json.loads(Path(files[1]).read_text())
    (d,) = side["plan"]["direction"]
    assert d["target"] == "onset" and d["coef"] == pytest.approx(0.2 * 9.0)
    studio = beat_handlers.studio
    run = studio.new_run()
    _, knobs = beat_handlers.request(values).plan(studio.bundles)
    run.bind(knobs)
    assert run.set_strength("beat", 0.4) and run.live.take(0) == {0: pytest.approx(0.4 * 9.0)}
    run.close()
    # the page's slider: the beat's strength is not held to the notes' safe range
    assert beat_handlers.knob(Session(), "beat", 0.1, 0, 0, 0.15, 0.5) == ""
    fig, message = beat_handlers.preview(*values)
    assert message == "" and fig.axes[0].get_lines()


def test_the_beat_without_onset_directions_is_one_line(handlers, beat_handlers, controls):
    status, *rest = handlers.generate("", Session(), *controls(play_beat=True, seconds=1.0))
    assert status.startswith("⚠") and "onset directions" in status and "\n" not in status
    assert "--concept beats" in status and rest == ["SKIP"] * 3
    assert "onset directions" in handlers.preview(*controls(play_beat=True))[1]
    status, *_ = beat_handlers.generate("", Session(), *controls(play_beat=True, bpm="fast"))
    assert status.startswith("⚠ cannot read BPM 'fast'")
    status, *_ = beat_handlers.generate("", Session(), *controls(play_beat=True, beat_strength=3))
    assert status.startswith("⚠") and "beat strength must be between -1 and 1" in status


def test_the_beat_checkbox_names_the_onset_bundle_or_how_to_load_one(handlers, beat_handlers):
    from musicrfm.studio.app import beat_text

    assert "onsets" in beat_text(beat_handlers.studio)
    assert "--directions models/musicgen-mini-beat/directions/onsets" in beat_text(handlers.studio)


def test_a_saved_plan_keeps_the_beat_and_loads_it_back(beat_handlers, controls):
    from musicrfm.steering.plan import SteeringPlan
    from musicrfm.studio.app import CONTROL_NAMES

    values = controls(play_beat=True, bpm="160", strength0=0.12, beat_strength=0.2)
    path, status = beat_handlers.save_plan(Session(), *values)
    assert status.startswith("plan saved") and "without" not in status, status
    assert [d.target for d in SteeringPlan.load(path).directions] == ["G", "onset"]
    got = dict(zip(CONTROL_NAMES, beat_handlers.load_plan(path)))
    assert got["play_beat"] is True and got["bpm"] == "160"
    assert got["strength0"] == pytest.approx(0.12) and got["beat_strength"] == pytest.approx(0.2)
    path, status = beat_handlers.save_plan(Session(), *controls(play_beat=True, target0="—"))
    assert (
        status.startswith("plan saved") and SteeringPlan.load(path).directions[0].target == "onset"
    )
