"""Audio loading: mono, resampled, peak-normalised; a clear AudioError for every bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrfm.capture.audio import audio_info, expected_samples, load_audio, prepare_waveform
from musicrfm.errors import AudioError

SR = 32000


def _tone(freq: float, seconds: float, sr: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_becomes_mono_32k_peak_normalised(tmp_path: Path) -> None:
    left, right = _tone(440, 0.5, 44100, 0.2), _tone(440, 0.5, 44100, 0.4)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    wave = load_audio(path, SR)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 2
    assert np.abs(wave).max() == pytest.approx(1.0, abs=1e-6)
    # still a 440 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / SR)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_same_rate_is_not_resampled_and_peak_is_configurable(tmp_path: Path) -> None:
    x = _tone(220, 0.25, SR, 0.1)
    sf.write(tmp_path / "a.wav", x, SR, subtype="FLOAT")
    wave = load_audio(tmp_path / "a.wav", SR, peak=0.5)
    np.testing.assert_allclose(wave, x * (0.5 / np.abs(x).max()), rtol=1e-5, atol=1e-6)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage garbage")
    with pytest.raises(AudioError, match="corrupt"):
        load_audio(path, SR)


def test_zero_byte_and_zero_sample_files(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "zero.wav", SR)
    sf.write(tmp_path / "nosamples.wav", np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="empty|no audio samples"):
        load_audio(tmp_path / "nosamples.wav", SR)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav", SR)


def test_silent_file(tmp_path: Path) -> None:
    sf.write(tmp_path / "silent.wav", np.zeros(8000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.wav", SR)


def test_too_long_errors_or_truncates(tmp_path: Path) -> None:
    sf.write(tmp_path / "long.wav", _tone(330, 3.0, 8000), 8000)
    with pytest.raises(AudioError, match="longer than the 2 s limit"):
        load_audio(tmp_path / "long.wav", SR, max_seconds=2.0)
    wave = load_audio(tmp_path / "long.wav", SR, max_seconds=2.0, truncate=True)
    assert abs(len(wave) - 2 * SR) <= 2
    assert len(load_audio(tmp_path / "long.wav", SR, max_seconds=None)) == pytest.approx(
        3 * SR, abs=2
    )


def test_too_short(tmp_path: Path) -> None:
    sf.write(tmp_path / "blip.wav", _tone(330, 0.01, SR), SR)
    with pytest.raises(AudioError, match="shorter"):
        load_audio(tmp_path / "blip.wav", SR)


def test_wrong_sample_rate(tmp_path: Path) -> None:
    sf.write(tmp_path / "slow.wav", _tone(100, 1.0, 1000), 1000)
    with pytest.raises(AudioError, match="sample rate 1000 Hz is too low"):
        load_audio(tmp_path / "slow.wav", SR)


def test_nan_samples(tmp_path: Path) -> None:
    x = _tone(330, 0.5, SR)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav", SR)


def test_info_and_expected_length(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _tone(330, 1.5, 22050), 22050)
    info = audio_info(tmp_path / "a.wav")
    assert (info.sample_rate, info.channels) == (22050, 1)
    assert info.duration == pytest.approx(1.5)
    assert expected_samples(info, SR) == 48000
    assert expected_samples(info, SR, max_seconds=1.0) == 32000


def test_prepare_waveform_arrays() -> None:
    stereo = np.stack([_tone(440, 0.2, SR, 0.1), -_tone(440, 0.2, SR, 0.1)], axis=1)
    with pytest.raises(AudioError, match="silent"):  # the channels cancel in the mono mix
        prepare_waveform(stereo, SR, SR)
    with pytest.raises(AudioError, match="empty"):
        prepare_waveform(np.zeros(0), SR, SR)
    out = prepare_waveform(_tone(440, 0.2, 16000), 16000, SR)
    assert len(out) == int(0.2 * SR) and np.abs(out).max() == pytest.approx(1.0)
