"""Note clips and strike clips (notes, intervals, triads at a tempo): labels, timing, the grid."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from musicrfm.errors import ConfigError
from musicrfm.synth.notes import (
    TRAIN_PROGRAMS,
    NoteClip,
    caption_for,
    note_spec,
    render_clips,
    render_note,
)
from musicrfm.synth.strikes import (
    INTERVAL_MODES,
    TEMPOS,
    StrikeClip,
    render_strikes,
    split_strikes,
    strike_grid,
    strike_spec,
)

SR = 16_000


def _onsets(y: np.ndarray, hop: int = 80) -> np.ndarray:
    """Start samples of the 5 ms frames whose energy rises 3 dB over the previous frame's (a
    crude onset detector for clean percussive renders; silence before the clip)."""
    frames = y[: len(y) // hop * hop].reshape(-1, hop)
    db = np.r_[-120.0, 10 * np.log10((frames**2).mean(axis=1) + 1e-12)]
    idx = np.flatnonzero(np.diff(db) > 3.0)
    keep = [i for k, i in enumerate(idx) if k == 0 or i - idx[k - 1] > 4]
    return np.array(keep) * hop


def _peak_midis(y: np.ndarray, sr: int = SR) -> set[int]:
    """MIDI notes of the strong spectral peaks of the clip's first second."""
    seg = y[:sr] * np.hanning(sr)
    spec = np.abs(np.fft.rfft(seg))
    freqs = np.fft.rfftfreq(sr, 1 / sr)
    band = (freqs > 80) & (freqs < 1200)
    s, f = spec[band], freqs[band]
    peaks = [i for i in range(1, len(s) - 1) if s[i] >= s[i - 1] and s[i] >= s[i + 1]]
    strong = [i for i in peaks if s[i] > 0.2 * s.max()]
    return {int(round(69 + 12 * np.log2(f[i] / 440.0))) for i in strong}


def test_note_clips_unchanged_by_strike_clips() -> None:
    clip = NoteClip(0, 60, 80, 4, 0.9)
    spec = note_spec(clip, sampling_rate=SR, seconds=4.0, repeats=4, gate=0.9)
    assert [n.start for n in spec.notes] == [0.0, 1.0, 2.0, 3.0] and spec.label == "C"
    one = render_note(clip, sampling_rate=SR)
    both = render_clips([clip, StrikeClip.note(0, 60)], sampling_rate=SR)
    np.testing.assert_array_equal(both[0], one)
    assert abs(float(np.abs(one).max()) - 0.9) < 1e-6


def test_triad_labels_and_inversions() -> None:
    root_pos = StrikeClip.triad(0, 60, "minor")
    assert root_pos.notes == (60, 63, 67) and root_pos.concept == "chords"
    assert (root_pos.root, root_pos.quality, root_pos.label) == ("C", "minor", "minor")
    first = StrikeClip.triad(0, 60, "major", "first")
    assert first.notes == (64, 67, 72) and first.root == "C" and first.quality == "major"
    second = StrikeClip.triad(0, 61, "diminished", 2)
    assert second.notes == (67, 73, 76) and second.root == "C#" and second.quality == "diminished"
    aug = StrikeClip.triad(0, 64, "augmented", 1)  # symmetric: the root comes from the inversion
    assert aug.notes == (68, 72, 76) and aug.root == "E"
    labels = second.labels
    assert labels["inversion"] == "second" and labels["midi_notes"] == "67 73 76"
    assert labels["semitones"] is None and labels["bpm"] == 120.0


def test_interval_labels_and_modes() -> None:
    up = StrikeClip.interval(24, 55, 7, "up", bpm=90)
    down = StrikeClip.interval(24, 55, 7, "down", bpm=90)
    together = StrikeClip.interval(24, 55, 7)
    assert up.notes == (55, 62) and down.notes == (62, 55) and together.notes == (55, 62)
    assert [c.interval_mode for c in (up, down, together)] == list(("up", "down", "harmonic"))
    assert {c.label for c in (up, down, together)} == {"7"} and up.root == "G"
    assert up.notes_at(3) == [(55,), (62,), (55,)] and together.notes_at(2) == [(55, 62)] * 2
    assert StrikeClip.note(0, 71).label == "B" and StrikeClip.note(0, 71).concept == "notes"


def test_caption_names_instrument_and_register_only() -> None:
    clip = StrikeClip.triad(0, 48, "major", 0, bpm=150)
    assert clip.caption == caption_for("acoustic piano", "low") == "acoustic piano, low register"
    assert StrikeClip.interval(40, 62, 12).caption == "violin, middle register"
    for word in ("major", "150", "C", "interval", "chord"):
        assert word not in clip.caption


@pytest.mark.parametrize(
    "kwargs",
    [
        {"notes": ()},
        {"notes": (60, 61, 62, 63)},
        {"notes": (60, 73)},  # more than an octave
        {"notes": (67, 60)},  # together, not lowest first
        {"notes": (60, 62, 64)},  # not a triad
        {"notes": (60,), "melodic": True},
        {"notes": (60, 64), "inversion": 1},
        {"notes": (60,), "bpm": 5.0},
        {"notes": (60,), "gate": 0.0},
    ],
)
def test_bad_clips_raise(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        StrikeClip(0, **kwargs)


def test_bad_factory_arguments_raise() -> None:
    with pytest.raises(ConfigError, match="valid"):
        StrikeClip.triad(0, 60, "sus4")
    with pytest.raises(ConfigError):
        StrikeClip.interval(0, 60, 3, "sideways")


@pytest.mark.parametrize("bpm", [60, 97, 180])
def test_strikes_fall_on_the_beat(bpm: int) -> None:
    clip = StrikeClip.note(12, 67, bpm=bpm)  # marimba: a sharp attack
    spec = strike_spec(clip, seconds=4.0)
    beat = 60.0 / bpm
    assert len(spec.notes) == clip.strikes(4.0) == int(np.ceil(4.0 / beat - 1e-9))
    assert [round(n.start, 9) for n in spec.notes] == [
        round(i * beat, 9) for i in range(len(spec.notes))
    ]
    assert all(abs(n.end - n.start - 0.9 * beat) < 1e-9 for n in spec.notes)
    y = render_strikes(clip, sampling_rate=SR)
    assert y.shape == (4 * SR,) and y.dtype == np.float32
    found = _onsets(y)
    expected = np.round(np.arange(len(spec.notes)) * beat * SR)
    assert len(found) == len(expected)
    assert np.abs(found - expected).max() <= 2 * 80  # within two 5 ms frames


def test_chord_sounds_all_its_notes_together() -> None:
    clip = StrikeClip.triad(73, 60, "major", 0, bpm=60)  # flute: nearly sinusoidal partials
    spec = strike_spec(clip, seconds=2.0)
    assert [n.pitch for n in spec.notes if n.start == 0.0] == [60, 64, 67]
    assert spec.concept == "chords" and spec.label == "major" and spec.params["root"] == "C"
    y = render_strikes(clip, sampling_rate=SR, seconds=2.0)
    assert {60, 64, 67} <= _peak_midis(y)
    melodic = render_strikes(StrikeClip.interval(73, 60, 7, "up", bpm=60), sampling_rate=SR)
    assert 60 in _peak_midis(melodic) and 67 in _peak_midis(melodic[SR:])


def test_strike_renders_are_deterministic() -> None:
    clips = [StrikeClip.triad(0, 57, "minor", 2, bpm=130), StrikeClip.interval(52, 50, 5, "down")]
    a = render_clips(clips, sampling_rate=SR)
    b = render_clips(clips[::-1], sampling_rate=SR)[::-1]
    np.testing.assert_array_equal(a, b)


def test_grid_covers_the_testbed_and_is_seeded() -> None:
    grid = strike_grid(seed=3)
    assert grid == strike_grid(seed=3) and grid != strike_grid(seed=4)
    by = Counter(c.concept for c in grid)
    n_prog = len(TRAIN_PROGRAMS)
    assert by == {"notes": 36 * n_prog, "intervals": 12 * 3 * 12 * n_prog, "chords": 144 * n_prog}
    chords = [c for c in grid if c.concept == "chords"]
    assert Counter((c.quality, c.root, c.inversion) for c in chords) == {
        (q, r, i): n_prog
        for q in ("major", "minor", "augmented", "diminished")
        for r in ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
        for i in (0, 1, 2)
    }
    intervals = [c for c in grid if c.concept == "intervals"]
    assert Counter(c.interval_mode for c in intervals) == {m: 144 * n_prog for m in INTERVAL_MODES}
    assert {c.semitones for c in intervals} == set(range(1, 13))
    for concept in ("notes", "intervals", "chords"):
        counts = Counter(c.bpm for c in grid if c.concept == concept)
        assert set(counts) == {float(t) for t in TEMPOS}
        assert max(counts.values()) - min(counts.values()) <= 1
    assert {c.register for c in grid} == {"low", "middle", "high"}
    assert all(min(c.notes) >= 48 and max(c.notes) <= 91 for c in grid)


def test_grid_subsets() -> None:
    grid = strike_grid([0, 40], roots=[0, 7], bpms=[90], interval_modes=["harmonic"], seed=0)
    assert {c.program for c in grid} == {0, 40} and {c.bpm for c in grid} == {90.0}
    assert {c.root for c in grid} == {"C", "G"}
    assert {c.interval_mode for c in grid if c.concept == "intervals"} == {"harmonic"}
    with pytest.raises(ConfigError):
        strike_grid(octaves=())


def test_split_is_stratified_and_disjoint() -> None:
    grid = strike_grid([0, 24, 40, 73], seed=0)
    train, held = split_strikes(grid, holdout=0.1, seed=0)
    assert len(train) + len(held) == len(grid) and not set(train) & set(held)
    assert split_strikes(grid, holdout=0.1, seed=0) == (train, held)
    classes = {(c.concept, c.label) for c in grid}
    assert {(c.concept, c.label) for c in held} == classes
    assert abs(len(held) / len(grid) - 0.1) < 0.02


def test_tempo_specs_render_as_a_dataset_labelled_by_bpm(tmp_path) -> None:
    """Strike clips as a tempo dataset: labels are the BPM (numbers: probes on them are
    regressions), the strike's own concept kept; a folder made from other specs is refused."""
    import pytest

    from musicrfm.errors import ConfigError
    from musicrfm.probes.splits import numeric_labels
    from musicrfm.synth.generate import generate_dataset, render_specs
    from musicrfm.synth.strikes import StrikeClip, tempo_specs

    clips = [StrikeClip.note(0, 60, bpm=80), StrikeClip.triad(40, 57, "minor", 0, bpm=150)]
    ds = render_specs(tempo_specs(clips), tmp_path / "t", name="a", sample_rate=16000, workers=1)
    by_label = dict(zip(ds.rows["label"].astype(str), ds.rows["strike_concept"]))
    assert by_label == {"80": "notes", "150": "chords"}
    assert numeric_labels(ds.rows["label"]) is not None
    again = render_specs(tempo_specs(clips), tmp_path / "t", name="a", sample_rate=16000, workers=1)
    assert len(again) == 2  # resumed, nothing added
    with pytest.raises(ConfigError, match="specs"):
        generate_dataset("notes", tmp_path / "t", limit_per_class=1, sample_rate=16000, workers=1)
