"""Issue 19's calibration and error-handling bullets: on noise, drums and silence no chord, key
or scale is asserted with confidence; a missing back-end package says how to install it; an
unknown back-end is refused before the first clip with every choice and the default; the
checks `evaluate detectors` reports as skipped come from the manifest's columns."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from musicrfm.errors import AudioError, ConfigError
from musicrfm.evaluation import detectors as det
from musicrfm.synth import arrangements as arr
from musicrfm.synth.render import find_soundfont

SR = det.SAMPLE_RATE


def _white(seconds: float = 3.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(1).standard_normal(int(seconds * SR))).astype(np.float32)


def _pink(seconds: float = 3.0) -> np.ndarray:
    spec = np.fft.rfft(np.random.default_rng(2).standard_normal(int(seconds * SR)))
    y = np.fft.irfft(spec / np.sqrt(np.arange(1, len(spec) + 1)))
    return (0.1 * y / y.std()).astype(np.float32)


@pytest.fixture(scope="module")
def drums() -> np.ndarray:
    a = arr.arrangement(1)
    renderer = arr.TrackRenderer(find_soundfont(), "tinysoundfont", a.duration + 0.1)
    return renderer.render(a.tracks["drums"], 0, True)[: 3 * SR]


def test_noise_drums_and_silence_assert_no_chord_key_or_scale(drums) -> None:
    for name, y in (("white", _white()), ("pink", _pink())):
        chord = det.detect_chord(y, SR)
        assert chord.label == det.NO_CHORD, (name, chord.label)
        key = det.detect_key(y, SR)
        assert (key.label, key.confidence) == (det.NO_KEY, 0.0), (name, key.label)
        scale = det.detect_scale(y, SR)
        assert (scale.label, scale.confidence) == (det.NO_KEY, 0.0), (name, scale.label)
        assert scale.details["tonic"] == det.NO_KEY and not scale.probs.any()
    # drums alone: no chord; a key label may come out, but at low confidence (24 keys)
    assert det.detect_chord(drums, SR).label == det.NO_CHORD
    assert det.detect_key(drums, SR).confidence < 0.25
    for concept in ("chords", "keys", "scales"):
        d = det.detect(np.zeros(2 * SR, dtype=np.float32), SR, concept)
        assert d.silent and d.confidence == 0.0
    # the threshold leaves real scales alone (contrast 0.5-0.64 on rendered scale clips)
    from musicrfm import theory

    played = det.detect_scale(det.note_sequence(theory.scale_midi("E", "dorian"), 0.4), SR)
    assert played.label == "dorian" and played.details["contrast"] > 0.3


def test_a_missing_backend_package_says_how_to_install_it(monkeypatch) -> None:
    scale = det.note_sequence([60, 64, 67, 72, 67, 64, 60], 0.4)
    monkeypatch.setitem(sys.modules, "essentia", None)
    monkeypatch.setitem(sys.modules, "essentia.standard", None)
    with pytest.raises(ConfigError, match="pip install essentia"):
        det.detect_key(scale, SR, backend="essentia")
    with pytest.raises(ConfigError, match="pip install essentia"):
        det.detect_tempo(det.click_track(120, 4.0), SR, backend="essentia")
    monkeypatch.setitem(sys.modules, "basic_pitch", None)
    monkeypatch.setitem(sys.modules, "basic_pitch.inference", None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps basic-pitch"):
        det.lead_track(scale, backend="basic-pitch")


def test_unknown_backends_list_every_choice_and_the_default(tmp_path) -> None:
    from musicrfm.evaluation.validation import validate_detectors

    y = det.harmonic_tone([60, 64, 67], 1.0)
    with pytest.raises(ConfigError, match=r"chroma, essentia \(default: chroma\)"):
        det.detect_key(y, SR, backend="krumhansl")
    with pytest.raises(ConfigError, match=r"auto, salience, basic-pitch \(default: auto\)"):
        det.detect_lead(y, SR, backend="crepe")
    # refused before any dataset is read: the folder does not even exist
    for concept, name, listed in (
        ("keys", "bogus", r"chroma, essentia \(default: chroma\)"),
        ("tempo", "madmom", r"librosa, essentia \(default: librosa\)"),
        ("lead", "crepe", r"auto, salience, basic-pitch \(default: salience\)"),
    ):
        with pytest.raises(ConfigError, match=listed):
            validate_detectors(tmp_path / "nowhere", backends={concept: [name]})


def _chord_folder(root, *, with_root: bool):
    root.mkdir()
    import soundfile as sf

    rows = []
    for i, (midi, quality) in enumerate([(48, "major"), (57, "minor")]):
        notes = [midi + k for k in det.CHORD_INTERVALS[quality]]
        sf.write(root / f"c{i}.wav", det.harmonic_tone(notes, 1.0), SR)
        row = {"file": f"c{i}.wav", "concept": "chords", "label": quality}
        if with_root:
            row["root"] = det.PITCH_CLASSES[midi % 12]
        rows.append(row)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


def test_skipped_checks_come_from_the_manifest_columns(tmp_path, capsys) -> None:
    from musicrfm.cli import main

    skip = "chords: 'root+quality' skipped: the manifest has no root column"
    with_root = _chord_folder(tmp_path / "with", with_root=True)
    args = ["evaluate", "detectors", "--no-progress", "--data"]
    assert main([*args, str(with_root)]) == 0
    printed = capsys.readouterr().out
    assert "| chords | root+quality | chroma templates |" in printed and skip not in printed
    without = _chord_folder(tmp_path / "without", with_root=False)
    assert main([*args, str(without)]) == 0
    printed = capsys.readouterr().out
    assert "| chords | root+quality |" not in printed and f"skipped: {skip}" in printed


def test_an_empty_file_is_named_empty(tmp_path, capsys) -> None:
    from musicrfm.cli import main

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        det.load_audio(empty)
    assert main(["evaluate", "audio", str(empty), "--concept", "keys"]) == 2
    err = capsys.readouterr().err
    assert "empty file" in err and "1 of 1 files could not be labelled" in err
