"""Plan files hold the page's chord progression and beat as one ``[progression]`` table: the file
compiles (as ``musicrfm generate --plan`` reads it) to the page's own steering, frame by frame;
loading it back fills the chord text, BPM, beat checkbox and strengths; old files (a
progression as keyframed ``[[direction]]`` entries) still load; bad tables are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tomllib

from musicrfm.studio.app import CONTROL_NAMES, Session

SCALES = {"chord-roots": 7.0, "chords": 9.0, "onsets": 11.0}  # strength 1.0 = these η0


def make_bundle(studio, folder, concept, classes, seed, label="label"):
    """Directions of the right shape (random unit vectors) as a loaded bundle."""
    import torch

    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.studio.bundles import SCALE_KEY, load_bundles

    a = studio.adapter
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(a.num_layers, len(classes), 1, a.hidden_size, generator=g)
    meta = {"model_id": a.model_id, "num_layers": a.num_layers, "hidden_size": a.hidden_size,
            SCALE_KEY: SCALES[concept], "label_column": label}  # fmt: skip
    cd = ConceptDirections(concept, classes, v / v.norm(dim=-1, keepdim=True),
                           torch.rand(a.num_layers, len(classes), generator=g),
                           list(range(a.num_layers)), meta=meta)  # fmt: skip
    cd.save(folder / concept)
    return load_bundles([folder / concept], a)[concept]


@pytest.fixture(scope="module")
def plan_handlers(studio, tmp_path_factory):
    """Handlers of a studio with note, chord-root, chord-quality and onset bundles (each with
    its own activation scale, so one coef could not serve them all)."""
    from musicrfm.studio.app import Handlers
    from musicrfm.studio.engine import Studio
    from musicrfm.theory import PITCH_CLASSES

    tmp = tmp_path_factory.mktemp("plans")
    made = [
        make_bundle(studio, tmp, "chord-roots", list(PITCH_CLASSES), 3, label="root"),
        make_bundle(studio, tmp, "chords", ["major", "minor", "augmented", "diminished"], 4),
        make_bundle(studio, tmp, "onsets", ["none", "onset"], 5),
    ]
    h = Handlers(Studio(studio.adapter, {**studio.bundles, **{b.name: b for b in made}},
                        tmp / "out"))  # fmt: skip
    h.SKIP = "SKIP"
    return h


CASES = {
    "chords, beat and a knob on a ramp": dict(
        chords="C Am F G", beats_per_note=2, bpm="90..130", seq_strength=0.1, play_beat=True,
        beat_strength=0.25, seconds=4.5, strength0=0.12, gate=0.5, layers="top:3",
    ),
    "chords in bars, no beat": dict(chords="C G | Am F", bpm="100", target0="—",
                                    seq_strength=-0.08, seconds=5.0),
    "notes and the beat": dict(notes="C E | G", bpm="160", play_beat=True, beat_strength=0.2,
                               target0="—", seconds=2.5),
    "the beat alone": dict(play_beat=True, bpm="75", beat_strength=0.3, target0="—", seconds=4.0),
}  # fmt: skip


def per_frame(plan, adapter, steps: int, seed: int) -> dict:
    """What the hooks add, as arrays: η0·φ(t)·ψ(t) per direction and frame, the unit vectors,
    layer weights and guidance-row gains of the compiled plan."""
    from musicrfm.steering.compile import compile_plan

    c = compile_plan(plan, adapter, seed=seed, total_steps=steps)
    return {
        "labels": c.labels,
        "coef_per_frame": c.coefs[None, :] * c.factors(steps),
        "unit": c.unit.numpy(),
        "weights": c.weights,
        "row_gain": c.row_gain,
    }


def assert_same_steering(a: dict, b: dict) -> None:
    assert a["labels"] == b["labels"]
    for key in ("coef_per_frame", "unit", "weights", "row_gain"):
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("case", list(CASES))
def test_the_saved_file_compiles_to_the_page_steering(plan_handlers, controls, case):
    from musicrfm.steering.plan import SteeringPlan

    studio = plan_handlers.studio
    values = controls(**CASES[case])
    req = plan_handlers.request(values)
    page_plan, _ = req.plan(studio.bundles)
    path, status = plan_handlers.save_plan(Session(), *values)
    assert status.startswith("plan saved") and "without" not in status, status
    data = tomllib.loads(Path(path).read_text())
    steps = round(req.seconds * studio.adapter.frame_rate)
    got = per_frame(SteeringPlan.load(path), studio.adapter, steps, req.seed)
    assert_same_steering(got, per_frame(page_plan, studio.adapter, steps, req.seed))
    assert got["coef_per_frame"].any(axis=0).all()  # every direction steers somewhere
    # chords and the beat are one [progression] table, not keyframed [[direction]] entries
    assert len(data.get("direction", [])) == len(req.knobs)
    prog = data.get("progression")
    if req.chords is None and req.beat is None:
        assert prog is None
        return
    assert isinstance(prog, dict)
    assert prog.get("beat", False) == (req.beat is not None)
    assert ("chords" in prog) == (req.chords is not None)
    if req.chords is not None and req.beat is not None:
        assert prog["coef"] == {
            "root": pytest.approx(req.chords.strength * 7.0),
            "quality": pytest.approx(req.chords.strength * 9.0),
            "beat": pytest.approx(req.beat.strength * 11.0),
        }
        assert prog["bars_per_chord"] == 0.5 and prog["seconds"] == req.seconds


def test_generate_plan_from_the_cli_steers_as_the_page(plan_handlers, controls, tmp_path):
    """The same file through ``musicrfm generate --plan``: its sidecar's plan is the page's."""
    from musicrfm.cli import main
    from musicrfm.steering.plan import SteeringPlan

    studio = plan_handlers.studio
    values = controls(**CASES["chords, beat and a knob on a ramp"])
    req = plan_handlers.request(values)
    path, _ = plan_handlers.save_plan(Session(), *values)
    out = tmp_path / "cli.wav"
    argv = ["generate", req.prompt, "--model", "mini", "--plan", path, "--seconds", "1",
            "--seed", str(req.seed), "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    steps = round(req.seconds * studio.adapter.frame_rate)
    cli = SteeringPlan.from_dict(side["plan"])
    page, _ = req.plan(studio.bundles)
    assert_same_steering(per_frame(cli, studio.adapter, steps, req.seed),
                         per_frame(page, studio.adapter, steps, req.seed))  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_loading_the_file_fills_the_page_back(plan_handlers, controls, case):
    studio = plan_handlers.studio
    values = controls(**CASES[case])
    path, _ = plan_handlers.save_plan(Session(), *values)
    loaded = plan_handlers.load_plan(path)
    assert loaded[-1].startswith("plan loaded"), loaded[-1]
    got = dict(zip(CONTROL_NAMES, loaded))
    want = dict(zip(CONTROL_NAMES, values))
    names = ["chords", "bpm", "play_beat", "notes", "target0", "gate", "layers"]
    names += ["strength0"] if want["target0"] != "—" else []
    if want["chords"] or want["notes"]:
        names += ["seq_strength", "beats_per_note"]
    if want["play_beat"]:
        names += ["beat_strength", "seconds"]
    for name in names:
        w = want[name]
        assert got[name] == (pytest.approx(w) if isinstance(w, float) else w), name
    # the page as loaded (the controls the file does not set as they were) steers the same
    again = [w if g == "SKIP" else g for g, w in zip(loaded[:-1], values)]
    a, _ = plan_handlers.request(again).plan(studio.bundles)
    b, _ = plan_handlers.request(values).plan(studio.bundles)
    assert a.to_dict() == b.to_dict()
    if want["play_beat"]:
        assert "the beat" in loaded[-1]


def test_an_old_file_with_keyframed_chord_directions_still_loads(plan_handlers, controls, tmp_path):
    """What the studio saved before the [progression] table: the chords' compiled keyframed
    directions (here C Cm: root C, major, minor) as [[direction]] entries."""
    from dataclasses import replace

    from musicrfm.steering.toml_writer import dumps_toml

    studio = plan_handlers.studio
    req = plan_handlers.request(controls(chords="C Cm", target0="—", seq_strength=0.1))
    plan, _ = replace(req, beat=None).plan(studio.bundles)
    old = tmp_path / "old.toml"
    old.write_text(
        "# musicrfm steering plan, saved by MusicRFM Studio\n" + dumps_toml(plan.to_dict())
    )
    loaded = plan_handlers.load_plan(str(old))
    assert loaded[-1].startswith("plan loaded: 3 knob(s)"), loaded[-1]
    got = dict(zip(CONTROL_NAMES, loaded))
    assert [got[f"target{i}"] for i in range(3)] == [
        "chord-roots:C",
        "chords:major",
        "chords:minor",
    ]
    assert got["strength1"] == pytest.approx(0.1) and got["sched_kind"] == "keyframes"
    assert got["chords"] == "" and got["play_beat"] is False


def test_bad_progression_tables_are_one_line(plan_handlers, handlers, controls, tmp_path):
    studio = plan_handlers.studio
    values = controls(chords="C G", bpm="100", play_beat=True, target0="—")
    path, _ = plan_handlers.save_plan(Session(), *values)
    text = Path(path).read_text()
    onsets = str(studio.bundles["onsets"].path)

    def load(body: str, h=plan_handlers) -> str:
        f = tmp_path / "bad.toml"
        f.write_text(body)
        status = h.load_plan(str(f))[-1]
        assert "\n" not in status, status
        return status

    # a bundle this studio has not loaded (the note-only studio has no onset bundle)
    status = load(text, handlers)
    assert (
        status.startswith("⚠ plan not loaded: directions") and "not loaded in this studio" in status
    )
    assert "not loaded in this studio" in load(text.replace(onsets, "/etc/drums"))
    # the beat on without an onset bundle among the directions
    no_onsets = text.replace(f', "{onsets}"', "")
    assert no_onsets != text
    status = load(no_onsets)
    assert status.startswith("⚠ plan not loaded: [progression] beat = true")
    assert "needs onset directions" in status and "--concept beats" in status
    assert "tempo_reference" in load(
        text.replace("beat = true", "beat = true\ntempo_reference = 90")
    )
    assert "beat must be true or false" in load(text.replace("beat = true", 'beat = "on"'))
    status = load(text.replace("[progression]", "[progression]\nfade_beats = 0.5"))
    assert "fade_beats" in status and "musicrfm generate --plan" in status
    # saving the beat without an onset bundle: one line, nothing written
    path, status = handlers.save_plan(Session(), *controls(play_beat=True, target0="—"))
    assert path == "SKIP" and status.startswith("⚠") and "onset directions" in status


def test_the_beat_help_says_the_pulses_lead_the_beats(plan_handlers):
    from musicrfm.studio.app import beat_text

    text = beat_text(plan_handlers.studio)
    assert "half a beat before its beat" in text and "onsets" in text
