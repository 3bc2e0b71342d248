"""Beat pulses: onset directions pulsed on the beat grid of --bpm (`generate --bpm 100`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import (
    BeatPulse,
    direction_role,
    make_progression,
    split_progression_table,
)


def _onsets(classes=("none", "onset")) -> ConceptDirections:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, len(classes), 1, 8, generator=g)
    info = {"model_id": "tiny", "num_layers": 2, "hidden_size": 8, "label_column": "label"}
    return ConceptDirections("onsets", list(classes), v / v.norm(dim=-1, keepdim=True),
                             torch.rand(2, len(classes), generator=g), [0, 1], meta=info)  # fmt: skip


@pytest.mark.parametrize(("bpm", "seconds"), [(120, 4.0), (80, 3.0), (160, 2.0)])
def test_pulses_peak_on_every_beat_and_vanish_between(bpm: float, seconds: float) -> None:
    pulse = BeatPulse(bpm, seconds, lead=0.0)
    beats = pulse.beat_times()
    assert np.allclose(np.diff(beats), 60.0 / bpm)
    assert beats[0] == 0 and beats[-1] <= seconds
    sched = pulse.schedules()["onset"].resolve(frame_rate=50)
    steps = np.arange(int(seconds * 50))
    phi = sched.values(len(steps))
    on_beat = np.round(beats * 50).astype(int)
    on_beat = on_beat[on_beat < len(steps)]
    assert np.allclose(phi[on_beat], 1.0, atol=0.06)  # a beat may fall half a frame off
    half = np.round((beats[:-1] + 30.0 / bpm) * 50).astype(int)
    assert np.allclose(phi[half], 0.0, atol=0.06)
    # one peak per beat: the number of local maxima equals the beats inside the clip
    peaks = np.flatnonzero((phi[1:-1] > phi[:-2]) & (phi[1:-1] >= phi[2:])) + 1
    assert len(peaks) == len(on_beat) - (on_beat[0] == 0)


@pytest.mark.parametrize("lead", [0.5, 0.25])
def test_a_lead_moves_every_pulse_that_much_of_a_beat_early(lead: float) -> None:
    pulse = BeatPulse(100, 4.0, lead=lead)
    beat = 0.6
    peaks = [t for t, v in pulse.keyframes() if v == 1.0]
    # from the pulse of beat 1 to the last within half a beat past the end
    want = [b - lead * beat for b in np.arange(1, 10) * beat if b - lead * beat <= 4.0 + beat / 2]
    assert peaks == pytest.approx(want)
    sched = pulse.schedules()["onset"].resolve(frame_rate=50)
    phi0 = sched.values(1)[0]  # the clip starts on the slope after the pulse before 0
    assert phi0 == pytest.approx(max(0.0, 1 - lead * beat / (beat / 2)), abs=0.02)
    assert BeatPulse(100, 4.0).lead == 0.5  # the default
    with pytest.raises(ConfigError, match="fraction of a beat"):
        BeatPulse(100, 4.0, lead=1.0)


def test_a_ramp_shortens_the_beats() -> None:
    beats = BeatPulse("90..150", 6.0).beat_times()
    gaps = np.diff(beats)
    assert np.all(np.diff(gaps) < 0)
    assert gaps[0] == pytest.approx(60 / 90, rel=0.1) and gaps[-1] == pytest.approx(
        60 / 150, rel=0.1
    )


def test_onset_directions_have_the_beat_role_and_compile_from_bpm() -> None:
    cd = _onsets()
    assert direction_role(cd) == "beat"
    prog = make_progression(bpm=100, steer_beat=True, seconds=4.0)
    plan = compile_progression(prog, [cd], 0.5)
    (d,) = plan.directions
    assert d.target == "onset" and d.schedule.kind == "keyframes"
    assert "beat pulses at 100 BPM" in prog.describe()


def test_beat_pulses_need_bpm_a_length_and_onset_directions() -> None:
    with pytest.raises(ConfigError, match="beat pulses needs bpm"):
        make_progression(steer_beat=True, seconds=4.0)
    with pytest.raises(ConfigError, match="needs its length"):
        make_progression(bpm=100, steer_beat=True)
    notes = _onsets(("C", "G"))
    with pytest.raises(ConfigError, match="needs onset directions.*--concept beats"):
        compile_progression(make_progression(bpm=100, steer_beat=True, seconds=2.0), [notes], 0.5)


def test_a_plan_table_with_onset_directions_pulses_the_beat(tmp_path) -> None:
    path = _onsets().save(tmp_path / "onsets")
    prog, sources, fields = split_progression_table(
        {"directions": [str(path)], "bpm": 140, "seconds": 3.0, "coef": 0.4}
    )
    assert prog.beat is not None and prog.beat.tempo.start == 140 and fields == {"coef": 0.4}
    assert prog.tempo is None and prog.seconds == 3.0
