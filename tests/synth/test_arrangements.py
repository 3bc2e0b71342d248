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
    for (root, quality), degree in zip(a.chords, theory.PROGRESSIONS[5].degrees):
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
    assert row["chords"].count("|") == 3 and len(json.loads(row["bar_times"])) == 5
    assert json.loads(row["lead_notes"])[0][2] == lead[0].pitch


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
    assert json.loads((root / "dataset.json").read_text())["soundfont"] == "TimGM6mb.sf2"


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
