"""Chord progressions, tempo curves and two-concept plans: the chord-text parser (every accepted
spelling, the errors), keyframes on bar lines at a BPM and frame rate, the crossfade shape, the
[progression] plan table, contradictory targets, and a chord-root + chord-quality + tempo plan
running on the tiny random model."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tomllib
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.compile import compile_plan, find_conflicts
from musicrfm.steering.plan import SteeringDirection, SteeringPlan, compile_progression
from musicrfm.steering.progressions import (
    ChordProgression,
    Progression,
    TempoCurve,
    direction_role,
    direction_roles,
    make_progression,
    parse_chord_symbol,
    parse_parts,
)
from musicrfm.steering.schedules import Schedule
from musicrfm.steering.toml_writer import dumps_toml
from musicrfm.theory import PITCH_CLASSES

FPS = 50.0  # MusicGen's frame rate: step = seconds x 50

SPELLINGS = {
    "C": (0, "major"), "CM": (0, "major"), "Cmaj": (0, "major"), "Cmajor": (0, "major"),
    "C:maj": (0, "major"), "Cm": (0, "minor"), "C:min": (0, "minor"), "Cmin": (0, "minor"),
    "Cminor": (0, "minor"), "C-": (0, "minor"), "Cdim": (0, "diminished"),
    "C°": (0, "diminished"), "Co": (0, "diminished"), "C:dim": (0, "diminished"),
    "Caug": (0, "augmented"), "C+": (0, "augmented"), "C:aug": (0, "augmented"),
    "C#m": (1, "minor"), "Db": (1, "major"), "D♭m": (1, "minor"), "F♯dim": (6, "diminished"),
    "Bb+": (10, "augmented"), "Ebm": (3, "minor"), "G#": (8, "major"), "am": (9, "minor"),
    "B": (11, "major"), "Cb": (11, "major"),
}  # fmt: skip
SEVENTHS = {
    "C7": (0, "major"), "Cmaj7": (0, "major"), "CM7": (0, "major"), "Cm7": (0, "minor"),
    "Cmin7": (0, "minor"), "Cdim7": (0, "diminished"), "C°7": (0, "diminished"),
    "Cm7b5": (0, "diminished"), "Cø": (0, "diminished"), "Cø7": (0, "diminished"),
    "A7": (9, "major"), "F#m7": (6, "minor"),
}  # fmt: skip


# ------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text", list(SPELLINGS))
def test_every_accepted_triad_spelling(text: str) -> None:
    chord = parse_chord_symbol(text)
    assert (chord.root, chord.quality) == SPELLINGS[text]
    assert chord.notice is None


@pytest.mark.parametrize("text", list(SEVENTHS))
def test_sevenths_become_their_triad_with_a_notice(text: str) -> None:
    chord = parse_chord_symbol(text)
    root, quality = SEVENTHS[text]
    assert (chord.root, chord.quality) == (root, quality)
    assert chord.notice == f"{text} taken as its triad ({PITCH_CLASSES[root]} {quality})"


def test_a_progression_returns_its_notices_once_each() -> None:
    prog = ChordProgression("G7 C G7 Am7")
    assert prog.notices == ["G7 taken as its triad (G major)", "Am7 taken as its triad (A minor)"]
    assert ChordProgression("C G Am F").notices == []
    assert make_progression(chords="C G7").notices == ["G7 taken as its triad (G major)"]


FORMS = r"accepted forms: C, Cm, C:min, Cmin, Cdim, C°, Caug, C\+ \(sevenths such as C7"


@pytest.mark.parametrize("bad", ["H", "Csus4", "C/E", "C9", "Cadd9", "X", "7", "C##", "Cmm"])
def test_anything_else_is_one_line_showing_the_accepted_forms(bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown chord '{bad}'; {FORMS}") as info:
        ChordProgression(f"C {bad} F")
    assert "\n" not in str(info.value)
    assert f"chord progression 'C {bad} F'" in str(info.value)


def test_progression_text_errors() -> None:
    with pytest.raises(ConfigError, match="empty chord progression; use chords separated"):
        ChordProgression("  ")
    with pytest.raises(ConfigError, match="bar 2 is empty"):
        ChordProgression("C || G")
    with pytest.raises(ConfigError, match="drop bars_per_chord"):
        ChordProgression("C | G", bars_per_chord=2)
    with pytest.raises(ConfigError, match="shorter than the shortest chord"):
        ChordProgression("C G | Am", fade_beats=2)
    with pytest.raises(ConfigError, match="bars_per_chord must be a finite number > 0"):
        ChordProgression("C", bars_per_chord=0)
    with pytest.raises(ConfigError, match="use a tempo such as 120"):
        ChordProgression("C", bpm="fast")
    with pytest.raises(ConfigError, match="root and/or quality"):
        parse_parts("bass")
    assert parse_parts("quality") == ("quality",)
    assert parse_parts(["root", "quality", "root"]) == ("root", "quality")


# ------------------------------------------------------------------------------ the grid
def values_at(sched: dict[str, Schedule], steps: np.ndarray) -> dict[str, np.ndarray]:
    n = int(steps.max()) + 1
    return {k: s.values(n, frame_rate=FPS)[steps] for k, s in sched.items()}


def test_keyframes_land_on_bar_lines_at_the_bpm_and_frame_rate() -> None:
    prog = ChordProgression("C G Am F", bpm=100)  # 4/4: a bar is 2.4 s = 120 steps
    np.testing.assert_allclose(prog.bar_lines(), [0, 2.4, 4.8, 7.2, 9.6])
    h = 0.25 * 0.6 / 2  # half the quarter-beat fade (0.6 s a beat)
    keys = prog.keyframes("root")
    assert list(keys) == ["C", "G", "A", "F"]
    want = {
        "C": [(0.0, 1.0), (2.4 - h, 1.0), (2.4 + h, 0.0)],
        "G": [(2.4 - h, 0.0), (2.4 + h, 1.0), (4.8 - h, 1.0), (4.8 + h, 0.0)],
        "A": [(4.8 - h, 0.0), (4.8 + h, 1.0), (7.2 - h, 1.0), (7.2 + h, 0.0)],
        "F": [(7.2 - h, 0.0), (7.2 + h, 1.0), (9.6 - h, 1.0), (9.6 + h, 0.0)],
    }
    for name, pts in want.items():
        np.testing.assert_allclose(keys[name], pts, atol=1e-12)
    mids = np.array([60, 180, 300, 420])  # the middle of each bar, in steps
    lines = np.array([120, 240, 360])  # the bar lines
    root = values_at(prog.schedules("root"), np.concatenate([mids, lines]))
    quality = values_at(prog.schedules("quality"), np.concatenate([mids, lines]))
    for i, name in enumerate("CGAF"):
        want = np.zeros(4)
        want[i] = 1
        np.testing.assert_array_equal(root[name][:4], want)
    np.testing.assert_array_equal(quality["major"][:4], [1, 1, 0, 1])
    np.testing.assert_array_equal(quality["minor"][:4], [0, 0, 1, 0])
    # at each bar line the outgoing and incoming chord are at one half each
    np.testing.assert_allclose(root["C"][4:], [0.5, 0, 0])
    np.testing.assert_allclose(root["G"][4:], [0.5, 0.5, 0])
    np.testing.assert_allclose(root["A"][4:], [0, 0.5, 0.5])
    # the quality holds through C -> G (no fade), then fades at 4.8 s and 7.2 s
    np.testing.assert_allclose(quality["major"][4:], [1, 0.5, 0.5])


def test_crossfade_shape_linear_centred_and_summing_to_one() -> None:
    # bar line at 2 s; half a beat (0.25 s at 120 BPM) centred on it: 1.875-2.125 s
    prog = ChordProgression("C G", bpm=120, fade_beats=0.5)
    n = 250
    s = {k: v.values(n, frame_rate=FPS) for k, v in prog.schedules("root").items()}
    t = np.arange(n) / FPS
    inside = (t > 1.875) & (t < 2.125)
    assert inside.sum() == 13  # steps 94..106
    np.testing.assert_allclose(s["C"][inside], (2.125 - t[inside]) / 0.25)
    np.testing.assert_allclose(s["G"][inside], (t[inside] - 1.875) / 0.25)
    np.testing.assert_allclose((s["C"] + s["G"])[t < 3.875], 1.0)
    assert s["C"][t <= 1.875].min() == 1.0 and s["C"][t >= 2.125].max() == 0.0


def test_bars_per_chord_bar_syntax_meter_and_a_ramp() -> None:
    two = ChordProgression("C G", bpm=120, bars_per_chord=2)  # C for 4 s, G for 4 s
    assert two.seconds == 8.0 and two.keyframes("root")["G"][1] == (4.0625, 1.0)
    bars = ChordProgression("C G | Am", bpm=120)  # C and G two beats each, Am a bar
    assert [c.text for c in bars.chord_at_bars()[0]] == ["C", "G"]
    assert bars.keyframes("root")["G"] == [(0.9375, 0.0), (1.0625, 1.0), (1.9375, 1.0), (2.0625, 0.0)]  # fmt: skip
    waltz = ChordProgression("C G", bpm=60, beats_per_bar=3)
    np.testing.assert_allclose(waltz.bar_lines(), [0, 3, 6])
    ramp = ChordProgression("C G Am F", bpm="90..130")
    lines = ramp.bar_lines()
    np.testing.assert_allclose(lines, ramp.grid.beat_seconds([0, 4, 8, 12, 16]))
    assert np.all(np.diff(np.diff(lines)) < 0)  # bars shorten as the tempo rises
    assert ramp.keyframes("root")["G"][1][0] == pytest.approx(ramp.grid.beat_seconds(4.125))
    back = ChordProgression(**two.to_dict())
    assert back == two and two.to_dict() == {"chords": "C G", "bpm": 120.0, "bars_per_chord": 2.0}


def test_tempo_curve_keyframes() -> None:
    up = TempoCurve("90..130", 8.0)  # reference 110: slower fades out by 4 s, faster rises
    assert up.reference == 110
    assert up.keyframes() == {
        "slower": [(0.0, 1.0), (4.0, 0.0), (8.0, 0.0)],
        "faster": [(0.0, 0.0), (4.0, 0.0), (8.0, 1.0)],
    }
    np.testing.assert_allclose(up.bpm_at([0, 2, 8, 20]), [90, 100, 130, 130])
    assert TempoCurve("90..130", 8.0, reference=80).keyframes() == {
        "faster": [(0.0, 0.2), (8.0, 1.0)]
    }
    assert TempoCurve(100, 4.0, reference=120).keyframes() == {"slower": [(0.0, 1.0), (4.0, 1.0)]}
    with pytest.raises(ConfigError, match="relative to a reference tempo"):
        TempoCurve(100, 4.0)
    with pytest.raises(ConfigError, match="nothing to steer"):
        TempoCurve(100, 4.0, reference=100)
    with pytest.raises(ConfigError, match="needs its length"):
        make_progression(bpm="90..130", steer_tempo=True)
    with pytest.raises(ConfigError, match="needs tempo directions"):
        make_progression(chords="C", tempo_reference=100)
    with pytest.raises(ConfigError, match="chords or notes, not both"):
        make_progression(chords="C", notes="C")
    # over a progression the curve spans the progression's length
    prog = make_progression(chords="C G", bpm="90..130", steer_tempo=True)
    assert prog.tempo is not None and prog.tempo.seconds == prog.chords.seconds


# ------------------------------------------------------------------------------ directions
@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import random_model

    return random_model("tiny", seed=0)


def _dirs(adapter, concept: str, classes: list[str], seed: int, **meta) -> ConceptDirections:
    g = torch.Generator().manual_seed(seed)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, len(classes), 1, d, generator=g)
    info = {"model_id": adapter.model_id, "num_layers": L, "hidden_size": d, **meta}
    return ConceptDirections(concept, classes, v / v.norm(dim=-1, keepdim=True),
                             torch.rand(L, len(classes), generator=g), list(range(L)), meta=info)  # fmt: skip


@pytest.fixture(scope="module")
def paths(tmp_path_factory, adapter) -> dict[str, str]:
    """Separately made direction files of four concepts, saved as `musicrfm train` saves them."""
    root = tmp_path_factory.mktemp("prog_dirs")
    made = {
        "quality": _dirs(adapter, "chords", ["augmented", "diminished", "major", "minor"], 1,
                         label_column="label", task="binary"),
        "root": _dirs(adapter, "chord-roots", list(PITCH_CLASSES), 2, label_column="root"),
        "notes": _dirs(adapter, "notes", list(PITCH_CLASSES), 3, label_column="label"),
        "tempo": _dirs(adapter, "tempos", ["value"], 4, label_column="label", task="regression"),
    }  # fmt: skip
    return {role: str(cd.save(root / role / cd.concept)) for role, cd in made.items()}


def test_directions_are_recognised_by_what_they_hold(paths, adapter) -> None:
    for role, path in paths.items():
        assert direction_role(ConceptDirections.load(path)) == role
    assert set(direction_roles(list(paths.values()))) == {"quality", "root", "notes", "tempo"}
    with pytest.raises(ConfigError, match="two sets of chord-quality directions"):
        direction_roles([paths["quality"], paths["quality"]])
    odd = _dirs(adapter, "intervals", ["m2", "M2"], 5)
    with pytest.raises(ConfigError, match="are none of chord-quality directions"):
        direction_role(odd)


def test_a_missing_part_names_what_to_train(paths) -> None:
    with pytest.raises(ConfigError) as info:
        compile_progression("C G Am F", [paths["quality"]])
    msg = str(info.value)
    assert msg.startswith("chords 'C G Am F' (root part) needs chord-root directions")
    assert "musicrfm train --features feats/chords --label-column root" in msg
    with pytest.raises(ConfigError, match="needs chord-quality directions.*musicrfm train"):
        compile_progression("C G", [paths["root"]])
    with pytest.raises(ConfigError, match=r"needs tempo directions.*musicrfm synth tempos"):
        compile_progression(make_progression(chords="C", bpm="90..130", steer_tempo=True), [paths["root"], paths["quality"]])  # fmt: skip
    with pytest.raises(ConfigError, match=r"note directions \(pitch classes\)\) is not used"):
        compile_progression("C G", [paths["root"], paths["quality"], paths["notes"]])
    with pytest.raises(
        ConfigError, match=r"not used by chords 'C G' at 120 BPM \(parts: quality\): leave it out"
    ):
        compile_progression("C G", [paths["root"], paths["quality"]], parts="quality")
    # a quality-only progression needs only quality directions
    plan = compile_progression("C G Am F", [paths["quality"]], parts="quality")
    assert [d.target for d in plan.directions] == ["major", "minor"]
    # `parts` applies to that one compile: the caller's progression keeps both parts after it
    prog = make_progression(chords="C G", bpm=100)
    compile_progression(prog, [paths["quality"]], parts="quality")
    assert prog.parts == ("root", "quality")
    both = compile_progression(prog, [paths["quality"], paths["root"]])
    assert [d.target for d in both.directions] == ["C", "G", "major"]


def test_compile_progression_builds_one_keyframed_plan(paths) -> None:
    plan = compile_progression(
        make_progression(chords="C G Am F", bpm=100),
        [paths["quality"], paths["root"]],
        0.7,
        layers="exp:0.95",
        gate=0.5,
        seed=3,
    )
    assert [d.label() for d in plan.directions] == [
        "chord-roots:C", "chord-roots:G", "chord-roots:A", "chord-roots:F",
        "chords:major", "chords:minor",
    ]  # fmt: skip
    d = plan.directions[0]
    assert (d.coef, d.weighting, d.gate, plan.seed) == (0.7, "exponential", 0.5, 3)
    prog = ChordProgression("C G Am F", bpm=100)
    assert [x.schedule for x in plan.directions[:4]] == list(prog.schedules("root").values())
    assert SteeringPlan.from_progression("C G", [paths["quality"], paths["root"]]).directions
    with pytest.raises(ConfigError, match="sets target itself"):
        compile_progression("C", [paths["quality"], paths["root"]], target="x")
    with pytest.raises(ConfigError, match="unknown direction field"):
        compile_progression("C", [paths["quality"], paths["root"]], wobble=1)


def test_the_plan_file_form_compiles_to_the_same_plan(tmp_path, paths) -> None:
    table = {
        "chords": "C G | Am F7",
        "bpm": "90..130",
        "directions": [paths["quality"], paths["root"], paths["tempo"]],
        "tempo_reference": 100,
        "coef": 0.5,
        "layers": "top:2",
    }
    path = tmp_path / "prog.toml"
    path.write_text(dumps_toml({"seed": 1, "progression": table}))
    loaded = SteeringPlan.load(path)
    prog = make_progression(
        chords="C G | Am F7", bpm="90..130", steer_tempo=True, tempo_reference=100
    )
    want = compile_progression(prog, table["directions"], 0.5, layers="top:2", seed=1)
    assert loaded.to_dict(strict=False) == want.to_dict(strict=False)
    targets = [d.target for d in loaded.directions]
    assert targets == ["C", "G", "A", "F", "major", "minor", "slower", "faster"]
    # relative paths are read against the plan file; the compiled plan round-trips
    rel = {**table, "directions": [os.path.relpath(p, tmp_path) for p in table["directions"]]}
    assert not any(os.path.isabs(p) for p in rel["directions"])
    (tmp_path / "rel.toml").write_text(dumps_toml({"seed": 1, "progression": rel}))
    assert SteeringPlan.load(tmp_path / "rel.toml").to_dict(strict=False) == want.to_dict(strict=False)  # fmt: skip
    back = SteeringPlan.from_dict(tomllib.loads(dumps_toml(loaded.to_dict())))
    assert back.to_dict() == loaded.to_dict()
    for bad, match in (
        ({"chords": "C"}, "needs directions"),
        ({**table, "wobble": 1}, "unknown direction field"),
        ({**table, "bars_per_note": 2}, "chords take bars_per_chord"),
        ({**table, "chords": "C H"}, "unknown chord 'H'"),
    ):
        with pytest.raises(ConfigError, match=match):
            SteeringPlan.from_dict({"progression": bad})
    with pytest.raises(ConfigError, match=r"\[progression\] must be tables"):
        SteeringPlan.from_dict({"progression": [1]})


# ------------------------------------------------------------------------------ conflicts
def test_contradictory_targets_of_one_concept_are_reported(paths, adapter, caplog) -> None:
    notes = paths["notes"]
    both = SteeringPlan([SteeringDirection(notes, "C", 1.0), SteeringDirection(notes, "G", 1.0)])
    lines = find_conflicts(both, frame_rate=FPS, total_steps=100)
    assert lines == [
        "contradictory targets of one concept at once: notes:C and notes:G are both at full "
        "strength over 100 steps of steps 0-99 (0.00-2.00 s): concept 'notes' is pulled toward "
        "two classes (the clip may follow either, both or neither)"
    ]
    with caplog.at_level(logging.WARNING, logger="musicrfm.steering.compile"):
        compiled = compile_plan(both, adapter, total_steps=100)
    assert compiled.conflicts == tuple(lines) and lines[0] in caplog.text
    # not a conflict: a crossfade (never both full), one steered away, the same class twice,
    # two concepts at once, and every progression
    fade = SteeringPlan.crossfade(notes, "C", "G", 1.0, start=0, duration=100)
    away = SteeringPlan([SteeringDirection(notes, "C", 1.0), SteeringDirection(notes, "G", -1.0)])
    same = SteeringPlan([SteeringDirection(notes, "C", 1.0), SteeringDirection(notes, "C", 0.5)])
    two = SteeringPlan([SteeringDirection(notes, "C", 1.0), SteeringDirection(paths["quality"], "minor", 1.0)])  # fmt: skip
    prog = compile_progression(make_progression(chords="C G Am F", bpm="600..700", steer_tempo=True), [paths["quality"], paths["root"], paths["tempo"]])  # fmt: skip
    for plan in (fade, away, same, two, prog):
        assert find_conflicts(plan, frame_rate=FPS, total_steps=200) == []
    # a regression pushed up and down at once; and C then G, overlapping for 10 steps only
    tempo = paths["tempo"]
    updown = SteeringPlan([SteeringDirection(tempo, "faster", 1.0), SteeringDirection(tempo, "slower", 1.0)])  # fmt: skip
    assert "concept 'tempos' is pushed up and down" in find_conflicts(updown, frame_rate=FPS, total_steps=10)[0]  # fmt: skip
    late = SteeringPlan([
        SteeringDirection(notes, "C", 1.0, schedule=Schedule("constant", duration=60)),
        SteeringDirection(notes, "G", 1.0, schedule=Schedule("constant", start=50)),
    ])  # fmt: skip
    assert "over 10 steps of steps 50-59 (1.00-1.20 s)" in find_conflicts(late, frame_rate=FPS, total_steps=100)[0]  # fmt: skip


# ------------------------------------------------------------------------------ running
def test_a_root_quality_and_tempo_plan_runs_on_the_random_model(paths, adapter) -> None:
    """Three separately made concepts in one plan: each direction adds its own term, on the
    keyframes of the bar grid, and the clip changes."""
    from musicrfm.steering.generation import generate

    # 1200 BPM: a beat is 0.05 s, a bar 0.2 s = 10 steps; "C Am" spans 0.4 s = 20 steps
    prog = make_progression(chords="C Am", bpm="1200..1000", steer_tempo=True, tempo_reference=1100)
    sources = [paths["quality"], paths["root"], paths["tempo"]]
    plan = compile_progression(prog, sources, 2.0, seed=0)
    assert [d.label() for d in plan.directions] == [
        "chord-roots:C", "chord-roots:A", "chords:major", "chords:minor", "tempos:slower",
        "tempos:faster",
    ]  # fmt: skip
    compiled = compile_plan(plan, adapter, total_steps=20)
    assert compiled.conflicts == ()
    f = compiled.factors(20)
    bar = int(round(prog.chords.bar_lines()[1] * FPS))  # the first bar line, in steps
    assert 9 <= bar <= 11
    np.testing.assert_array_equal(f[: bar - 1, :4], [[1, 0, 1, 0]] * (bar - 1))
    np.testing.assert_array_equal(f[bar + 1 : 19, :4], [[0, 1, 0, 1]] * (18 - bar))
    np.testing.assert_allclose(f[:, 4] + f[:, 5], np.abs(prog.tempo.bpm_at(np.arange(20) / FPS) - 1100) / 100)  # fmt: skip
    # the added vector at a mid-bar step is exactly root C + major + the tempo term
    step, layer = 3, 1
    want = sum(
        compiled.coefs[m] * compiled.weights[m, layer] * f[step, m] * compiled.unit[m, layer]
        for m in range(compiled.num_directions)
    )
    assert torch.allclose(compiled.addition(step, layer), want)
    assert compiled.coefs[4] == -2.0  # 'slower' is the tempo direction with a negative sign
    steered = generate(adapter, "warm pad", plan=plan, seconds=0.4, seed=0)[0]
    plain = generate(adapter, "warm pad", seconds=0.4, seed=0)[0]
    assert steered.meta["audio_sha256"] != plain.meta["audio_sha256"]
    assert [d["target"] for d in steered.meta["plan"]["direction"]] == ["C", "A", "major", "minor", "slower", "faster"]  # fmt: skip
    again = generate(adapter, "warm pad", plan=plan, seconds=0.4, seed=0)[0]
    assert again.meta["audio_sha256"] == steered.meta["audio_sha256"]


def test_progression_requires_something_to_play() -> None:
    with pytest.raises(ConfigError, match="needs chords, notes, a tempo curve or beat pulses"):
        Progression()
    with pytest.raises(ConfigError, match="set the grid of chords or notes"):
        make_progression(bars_per_chord=2)
