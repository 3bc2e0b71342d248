"""The harmonic codec: codebook 0 is the played MIDI note, the timbre codes do not depend on it,
EnCodec's interface, registration with `transformers`, and the recipe's codec choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.models.codecs.harmonic import (
    HARMONIC_MODEL_TYPE,
    HarmonicCodecConfig,
    HarmonicCodecModel,
)
from musicrfm.theory import PITCH_CLASSES

SR = 16_000
NAMES = PITCH_CLASSES


def tone(midi: int, seconds: float = 1.0, bright: float = 0.6) -> np.ndarray:
    """A harmonic tone whose harmonic amplitudes (``bright ** h``) do not depend on the note."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum((bright**h) * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(6))
    return (0.5 * y * np.exp(-1.0 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def codec() -> HarmonicCodecModel:
    torch.manual_seed(0)
    model = HarmonicCodecModel(HarmonicCodecConfig(codebook_size=16, harmonics=12))
    clips = [tone(m, bright=b) for m in range(55, 79, 2) for b in (0.3, 0.8)]
    clips.append(np.zeros_like(clips[0]))  # training clips have silences between strikes
    model.fit_codebooks(model.fit_features(torch.from_numpy(np.stack(clips))), iters=8, seed=0)
    return model


def test_harmonic_codec_is_registered_with_auto_classes() -> None:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(HARMONIC_MODEL_TYPE, codebook_size=16, harmonics=8)
    model = AutoModel.from_config(config)
    assert isinstance(model, HarmonicCodecModel)
    assert model.codebooks.shape == (3, 16, 8)  # three timbre codebooks; the pitch has none
    with pytest.raises(ValueError, match="num_codebooks >= 2"):
        HarmonicCodecModel(HarmonicCodecConfig(num_codebooks=1))


def test_first_codebook_is_the_played_note(codec: HarmonicCodecModel) -> None:
    audio = torch.from_numpy(np.stack([tone(57), tone(64), tone(70)]))[:, None]
    codes = codec.encode(audio).audio_codes[0]  # (3, 4, T)
    assert codes.shape == (3, 4, 50)
    for row, midi in zip(codes, (57, 64, 70), strict=True):
        assert torch.all(row[0] == midi), row[0]


def test_timbre_codes_do_not_depend_on_the_note(codec: HarmonicCodecModel) -> None:
    audio = torch.from_numpy(np.stack([tone(60), tone(67), tone(60, bright=0.3)]))[:, None]
    codes = codec.encode(audio).audio_codes[0, :, 1]  # first timbre codebook, (3, T)
    steady = slice(5, 45)
    same_timbre = (codes[0, steady] == codes[1, steady]).float().mean()
    other_timbre = (codes[0, steady] == codes[2, steady]).float().mean()
    assert same_timbre >= 0.8, same_timbre
    assert other_timbre <= 0.2, other_timbre


def test_round_trip_keeps_the_pitch_class_and_follows_encodec(codec: HarmonicCodecModel) -> None:
    from musicrfm.mini.gates import detect_pitch

    audio = torch.from_numpy(np.stack([tone(57, 0.7), tone(66, 0.7)]))[:, None]  # (2, 1, 11200)
    out = codec(audio)
    assert out.audio_codes.shape == (1, 2, 4, 35)
    assert out.audio_values.shape == (2, 1, 35 * 320)
    assert torch.isfinite(out.audio_values).all()
    for recon, midi in zip(out.audio_values[:, 0].numpy(), (57, 66), strict=True):
        assert detect_pitch(recon, SR)[0] == NAMES[midi % 12]
    # one pitch codebook alone carries no sound, so a bandwidth asks for at least two
    fewest = codec.encode(audio, bandwidth=0.1).audio_codes
    assert fewest.shape[2] == 2
    assert len(codec.config.target_bandwidths) == 3


def test_silent_audio_stays_silent(codec: HarmonicCodecModel) -> None:
    out = codec(torch.zeros(1, 1, 6400))
    assert torch.isfinite(out.audio_values).all()
    assert float(out.audio_values.abs().max()) < 0.05


def test_recipe_codec_choice_and_old_records() -> None:
    from musicrfm.errors import ConfigError
    from musicrfm.mini.codes import new_codec
    from musicrfm.mini.config import TrainConfig

    assert TrainConfig.from_record({"steps": 10}).codec == "spectral"
    assert TrainConfig.from_record({"steps": 10, "codec": "harmonic"}).codec == "harmonic"
    assert isinstance(new_codec("harmonic"), HarmonicCodecModel)
    assert new_codec("polyphonic").config.model_type == "musicrfm_polyphonic_codec"
    with pytest.raises(ConfigError, match="unknown codec"):
        new_codec("neural")


def test_saved_harmonic_codec_loads_by_its_model_type(codec, tmp_path) -> None:
    from musicrfm.mini.codes import load_codec

    codec.save_pretrained(tmp_path / "codec")
    loaded = load_codec(tmp_path / "codec")
    assert isinstance(loaded, HarmonicCodecModel)
    assert torch.equal(loaded.codebooks, codec.codebooks)


def test_resuming_an_old_spectral_run_names_the_changed_codec(tmp_path) -> None:
    """A work folder recorded before `codec` existed was made by the spectral recipe; resuming
    it with today's default (harmonic) must refuse and say what differs, not mix codecs."""
    import json
    from dataclasses import asdict

    from musicrfm.errors import ConfigError
    from musicrfm.mini.config import TrainConfig
    from musicrfm.mini.train import train

    cfg = TrainConfig(steps=3)
    old = json.loads(json.dumps(asdict(cfg)))
    del old["codec"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "train_config.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="codec: 'spectral' -> 'harmonic'"):
        train(tmp_path / "out", config=cfg, work_dir=work, resume=True)


# ----------------------------------------------------------------------------- polyphonic codec


def chord(notes: tuple[int, ...], seconds: float = 1.0, bright: float = 0.6) -> np.ndarray:
    """Harmonic tones of ``notes`` sounded together (each as :func:`tone` makes it)."""
    return sum(tone(m, seconds, bright) for m in notes).astype(np.float32)


@pytest.fixture(scope="module")
def poly_codec():
    from musicrfm.models.codecs.polyphonic import PolyphonicCodecConfig, PolyphonicCodecModel

    torch.manual_seed(0)
    model = PolyphonicCodecModel(PolyphonicCodecConfig(harmonics=12))
    sets = [(m,) for m in range(55, 79, 3)] + [(m, m + 4, m + 7) for m in range(52, 70, 3)]
    clips = [chord(s, bright=b) for s in sets for b in (0.3, 0.8)]
    clips.append(np.zeros_like(clips[0]))
    model.fit_codebooks(model.fit_features(torch.from_numpy(np.stack(clips))), iters=4, seed=0)
    return model


def test_polyphonic_codec_is_registered_with_auto_classes() -> None:
    from transformers import AutoConfig, AutoModel

    from musicrfm.models.codecs.polyphonic import (
        POLYPHONIC_MODEL_TYPE,
        UPPER_SETS,
        PolyphonicCodecConfig,
        PolyphonicCodecModel,
    )

    config = AutoConfig.for_model(POLYPHONIC_MODEL_TYPE, harmonics=8)
    model = AutoModel.from_config(config)
    assert isinstance(model, PolyphonicCodecModel)
    assert model.codebooks.shape == (2, 512, 8)  # two timbre codebooks; the notes have none
    assert len(UPPER_SETS) == 1 + 24 + 276
    with pytest.raises(ValueError, match="num_codebooks >= 3"):
        PolyphonicCodecModel(PolyphonicCodecConfig(num_codebooks=2))
    with pytest.raises(ValueError, match="codebook_size >= 301"):
        PolyphonicCodecModel(PolyphonicCodecConfig(codebook_size=256))


def test_upper_set_tokens_round_trip() -> None:
    from musicrfm.models.codecs.polyphonic import UPPER_SETS, notes_of, upper_token

    assert upper_token(()) == 0
    assert upper_token((7,)) == 7
    assert notes_of(60, upper_token((7, 4))) == (60, 64, 67)
    assert all(upper_token(s) == i for i, s in enumerate(UPPER_SETS))


def test_a_triad_round_trips_to_its_three_notes(poly_codec) -> None:
    from musicrfm.models.codecs.polyphonic import notes_of

    steady = slice(5, 45)
    for notes in ((60, 64, 67), (57, 60, 64), (52, 56, 60)):
        codes = poly_codec.encode(torch.from_numpy(chord(notes))[None, None]).audio_codes[0, 0]
        got = [notes_of(b, u) for b, u in zip(codes[0, steady], codes[1, steady], strict=True)]
        assert np.mean([g == notes for g in got]) >= 0.9, (notes, got[:5])
        audio = poly_codec.decode(codes[None, None]).audio_values  # (1, 1, samples)
        again = poly_codec.encode(audio).audio_codes[0, 0]
        got = [notes_of(b, u) for b, u in zip(again[0, steady], again[1, steady], strict=True)]
        assert np.mean([g == notes for g in got]) >= 0.9, (notes, got[:5])


def test_a_single_note_has_an_empty_upper_set(poly_codec) -> None:
    audio = torch.from_numpy(np.stack([tone(57), tone(64), tone(70, bright=0.3)]))[:, None]
    codes = poly_codec.encode(audio).audio_codes[0]  # (3, 4, T)
    for row, midi in zip(codes, (57, 64, 70), strict=True):
        assert torch.all(row[0] == midi), row[0]
        assert torch.all(row[1] == 0), row[1]


def test_polyphonic_codec_follows_encodec(poly_codec, tmp_path) -> None:
    from musicrfm.mini.codes import load_codec
    from musicrfm.models.codecs.polyphonic import PolyphonicCodecModel

    audio = torch.from_numpy(np.stack([chord((57, 61, 64), 0.7), tone(66, 0.7)]))[:, None]
    out = poly_codec(audio)
    assert out.audio_codes.shape == (1, 2, 4, 35)
    assert out.audio_values.shape == (2, 1, 35 * 320)
    assert torch.isfinite(out.audio_values).all()
    fewest = poly_codec.encode(audio, bandwidth=0.1).audio_codes  # notes alone carry no sound
    assert fewest.shape[2] == 3
    assert len(poly_codec.config.target_bandwidths) == 2
    silent = poly_codec(torch.zeros(1, 1, 6400)).audio_values
    assert torch.isfinite(silent).all() and float(silent.abs().max()) < 0.05
    poly_codec.save_pretrained(tmp_path / "poly")
    loaded = load_codec(tmp_path / "poly")
    assert isinstance(loaded, PolyphonicCodecModel)
    assert torch.equal(loaded.codebooks, poly_codec.codebooks)


def test_window_peaks_equal_a_gather_of_every_bin() -> None:
    """The multi-f0 sieve's sparse-table maxima are exactly the maxima of every bin of every
    (clipped) window, the slow way it was first written."""
    from musicrfm.models.codecs.polyphonic import _window_peaks

    rng = np.random.default_rng(0)
    comp = rng.random((300, 7))
    centre = rng.integers(0, 300, size=(9, 5))
    half = rng.integers(1, 40, size=(9, 5))
    slow = np.empty((9, 5, 7))
    for i in range(9):
        for j in range(5):
            lo, hi = max(0, centre[i, j] - half[i, j]), min(299, centre[i, j] + half[i, j])
            slow[i, j] = comp[lo : hi + 1].max(0)
    assert np.array_equal(_window_peaks(comp, centre, half), slow)


# --------------------------------------------------------------- polyphonic codec with onsets
def struck(notes: tuple[int, ...], bpm: float, seconds: float = 2.0) -> np.ndarray:
    """``notes`` re-struck on every beat at ``bpm``, each strike decaying."""
    beat = int(SR * 60 / bpm)
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    one = chord(notes, seconds=60 / bpm)
    one = one * np.exp(-6 * np.arange(len(one)) / SR).astype(np.float32)
    for start in range(0, len(y), beat):
        y[start : start + beat] = one[: len(y) - start]
    return y


@pytest.fixture(scope="module")
def onset_codec():
    from musicrfm.models.codecs.polyphonic import PolyphonicCodecConfig, PolyphonicCodecModel

    cfg = PolyphonicCodecConfig(harmonics=12, onset_codebook=True, num_codebooks=5)
    model = PolyphonicCodecModel(cfg)
    clips = [struck(s, bpm) for s in ((60,), (57, 60, 64), (55, 59)) for bpm in (90, 150)]
    model.fit_codebooks(model.fit_features(torch.from_numpy(np.stack(clips))), iters=4, seed=0)
    return model


def test_frames_since_counts_up_from_each_onset_and_caps() -> None:
    from musicrfm.models.codecs.polyphonic import _frames_since

    got = _frames_since(np.array([2, 5]), 10, cap=3)
    assert got.tolist() == [3, 3, 0, 1, 2, 0, 1, 2, 3, 3]
    assert _frames_since(np.array([], dtype=int), 4, cap=7).tolist() == [7, 7, 7, 7]


def test_onset_codebook_is_last_and_counts_frames_since_each_strike(onset_codec) -> None:
    assert onset_codec.codebooks.shape[0] == 2  # bass, upper, 2 timbre, onsets
    assert onset_codec.config.min_quantizers == 4
    for bpm in (90, 150):
        audio = torch.from_numpy(struck((57, 60, 64), bpm))[None, None]
        codes = onset_codec.encode(audio).audio_codes[0, 0]  # (5, T)
        assert codes.shape[0] == 5
        onsets = np.flatnonzero(codes[-1].numpy() == 0)
        period = 50 * 60 / bpm  # code frames a beat
        expected = np.arange(0, codes.shape[-1], period)
        assert len(onsets) == len(expected), (bpm, onsets)
        assert np.abs(onsets - np.round(expected)).max() <= 2, (bpm, onsets, expected)
        # the round trip is heard with the same onsets
        again = onset_codec.encode(onset_codec.decode(codes[None, None]).audio_values)
        re_onsets = np.flatnonzero(again.audio_codes[0, 0, -1].numpy() == 0)
        assert len(re_onsets) == len(onsets) and np.abs(re_onsets - onsets).max() <= 1
    fewest = onset_codec.encode(audio, bandwidth=0.1).audio_codes
    assert fewest.shape[2] == 4  # notes, one timbre codebook, onsets


def test_onset_dips_silence_the_sound_just_before_each_onset(onset_codec) -> None:
    hop = onset_codec.config.hop_length
    stages = torch.tensor([[63, 63, 0, 1, 2, 0, 1]])
    gain = onset_codec.onset_dips(stages, 7 * hop)[0]
    assert float(gain[2 * hop - 1]) < 0.01 and float(gain[5 * hop - 1]) < 0.01
    assert float(gain[:hop].min()) == 1.0  # no onset there
    assert float(gain[3 * hop : 4 * hop].min()) == 1.0  # between onsets
    with pytest.raises(ValueError, match="num_codebooks >= 4"):
        from musicrfm.models.codecs.polyphonic import PolyphonicCodecConfig, PolyphonicCodecModel

        PolyphonicCodecModel(PolyphonicCodecConfig(onset_codebook=True, num_codebooks=3))


def test_recipe_names_the_onset_codec() -> None:
    from musicrfm.mini.codes import new_codec

    codec = new_codec("polyphonic_onsets")
    assert codec.config.onset_codebook and codec.config.num_codebooks == 5


def test_no_swell_lets_harmonics_only_decay_between_onsets() -> None:
    from musicrfm.models.codecs.polyphonic import _no_swell

    timbre = torch.tensor([[[0.0], [1.0], [0.5], [0.8], [0.2], [2.0], [1.0], [1.5]]])  # (1, 8, 1)
    starts = torch.tensor([[True, False, False, False, False, True, False, False]])
    out = _no_swell(timbre, starts, attack=1)[0, :, 0].tolist()
    # strike at 0: frames 1.. only fall (1.0, 0.5, 0.5, 0.2); strike at 5 may be loud again
    assert out == pytest.approx([0.0, 1.0, 0.5, 0.5, 0.2, 2.0, 1.0, 1.0])
