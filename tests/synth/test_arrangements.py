"""Multi-track arrangements: labels by construction, deterministic renders, two renderers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicrfm import theory
from musicrfm.errors import ConfigError, RenderError
from musicrfm.synth import arrangements as arr
from musicrfm.synth.render import find_soundfont


def test_arrangement_is_seeded_and_its_labels_hold() -> None:
    a = arr.arrangement(5, seed=3)
    assert a == arr.arrangement(5, seed=3)
    assert a != arr.arrangement(5, seed=4)
    assert a.progression == theory.PROGRESSIONS[5].name
    scale = "ionian" if a.mode == "major" else "aeolian"
    degrees = theory.PROGRESSIONS[5].degrees
    assert len(a.chords) == arr.BARS == len(degrees) + 1
    for (root, quality), degree in zip(a.chords, (*degrees, 1)):  # then the final tonic bar
        pcs = theory.diatonic_triad_pcs(a.tonic, scale, degree)
        assert (root, quality) == (pcs[0], theory.triad_quality(pcs))
    lo, hi = arr.TEMPO_RANGE[a.meter]
    assert lo <= a.bpm <= hi and a.meter in arr.METERS
    lead = a.tracks["lead"]
    assert all(67 <= n.pitch <= 88 for n in lead)
    assert all(n.end - n.start >= 0.85 * a.beat_s for n in lead)  # a beat or more, scorable
    starts = np.array([n.start for n in lead]) / a.beat_s
    assert np.allclose(starts, np.round(starts))  # on the beat grid
    bass_pcs = {n.pitch % 12 for n in a.tracks["bass"]}
    assert {r for r, _ in a.chords} <= bass_pcs
    row = a.labels()
    assert row["chords"].count("|") == 4 and len(json.loads(row["bar_times"])) == 6
    assert json.loads(row["lead_notes"])[0][2] == lead[0].pitch
    assert row["set_version"] == arr.SET_VERSION == 2


def _started(notes, a: arr.Arrangement, bar: int) -> set[int]:
    """Pitch classes of the notes that start in ``bar``."""
    return {n.pitch % 12 for n in notes if bar * a.bar_s - 1e-9 <= n.start < (bar + 1) * a.bar_s}


def test_the_final_bar_establishes_the_key() -> None:
    """Set v2: every clip ends on a bar of the tonic triad, the bass on the low tonic and the
    lead on the tonic, all held; the labelled chord of every bar is what the comp plays."""
    for i in range(19):
        a = arr.arrangement(i, seed=3)
        t0 = arr.PROGRESSION_BARS * a.bar_s
        assert a.chords[-1] == (a.tonic, a.mode)  # the tonic triad's quality is the mode
        tonic = {p % 12 for p in theory.chord_pitch_classes(a.tonic, a.mode)}
        for bar, (root, quality) in enumerate(a.chords):
            heard = _started(a.tracks["chords"], a, bar)
            assert heard == set(theory.chord_pitch_classes(root, quality)), (i, bar)
        assert _started(a.tracks["chords"], a, arr.PROGRESSION_BARS) == tonic
        for role in ("bass", "lead"):
            held = [n for n in a.tracks[role] if n.start >= t0 - 1e-9]
            assert len(held) == 1 and held[0].pitch % 12 == a.tonic, (i, role, held)
            assert held[0].end - held[0].start >= (arr.METERS[a.meter] - 0.2) * a.beat_s
        assert 36 <= a.tracks["bass"][-1].pitch <= 47 and 67 <= a.tracks["lead"][-1].pitch <= 88
        assert any(n.pitch == arr.CRASH and abs(n.start - t0) < 1e-9 for n in a.tracks["drums"])
        assert max(n.end for n in a.tracks["drums"]) <= a.duration
        assert a.cadence.split("-") == [
            a.progression.split("-")[-1],
            "I" if a.mode == "major" else "i",
        ]
        assert a.progression == theory.PROGRESSIONS[i].name  # the label of bars 1-4, unchanged


def test_the_set_cycles_through_the_progressions_in_both_modes() -> None:
    modes = {arr.arrangement(i).mode for i in range(19)}
    meters = {arr.arrangement(i).meter for i in range(19)}
    assert modes == {"major", "minor"} and meters == {"3/4", "4/4"}


def test_write_mix_set_with_tinysoundfont(tmp_path) -> None:
    root = arr.write_mix_set(tmp_path / "m", count=2, seed=0)
    rows = pd.read_csv(root / "manifest.csv")
    assert len(rows) == 2 and set(rows["concept"]) == {"mixes"}
    y, sr = sf.read(root / rows.path[0])
    assert sr == arr.SAMPLE_RATE and abs(len(y) / sr - rows.duration[0]) < 0.01
    assert 0.85 < np.abs(y).max() <= 0.9 + 1e-3
    again = arr.write_mix_set(tmp_path / "n", count=1, seed=0)
    assert np.array_equal(sf.read(again / rows.path[0])[0], y)  # bit-identical re-render
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["soundfont"] == "TimGM6mb.sf2" and meta["set_version"] == arr.SET_VERSION
    assert set(rows["set_version"]) == {arr.SET_VERSION} and rows["cadence"][0].endswith(("I", "i"))


def test_write_mix_set_with_fluidsynth_and_fluidr3(tmp_path) -> None:
    root = arr.write_mix_set(tmp_path / "f", count=1, soundfont="fluidr3", backend="fluidsynth")
    rows = pd.read_csv(root / "manifest.csv")
    y, _ = sf.read(root / rows.path[0])
    other = arr.write_mix_set(tmp_path / "t", count=1)
    z, _ = sf.read(other / rows.path[0])
    assert len(y) == len(z) and np.abs(y).max() > 0.5
    assert np.corrcoef(y, z)[0, 1] < 0.9  # another synthesizer and soundfont: other audio


def test_soundfonts_by_name_and_bad_options(tmp_path) -> None:
    assert find_soundfont("timgm6mb") == find_soundfont()
    assert find_soundfont("fluidr3").name == "FluidR3_GM.sf2"
    with pytest.raises(RenderError, match="not found"):
        find_soundfont(tmp_path / "none.sf2")
    with pytest.raises(ConfigError, match="renderer"):
        arr.TrackRenderer(find_soundfont(), "timidity", 4.0)
    with pytest.raises(ConfigError, match="at least 1"):
        arr.write_mix_set(tmp_path, count=0)
