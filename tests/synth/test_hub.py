"""Loading the original SynTheory into the same interface, tested offline on a tiny fixture.

The fixture rows carry SynTheory's own column names and values (as on the Hugging Face hub:
decoded ``audio`` dicts at 44.1 kHz stereo, ``is_silent`` flags, its label spellings).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrfm.cli import main
from musicrfm.errors import ConfigError
from musicrfm.synth import load_dataset, load_syntheory
from musicrfm.synth.hub import map_row


def _tone(midi: int, seconds: float = 0.5, sr: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.3 * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t)
    return np.stack([mono, mono], axis=1).astype(np.float32)


def _audio(midi: int) -> dict:
    return {"array": _tone(midi), "sampling_rate": 44100, "path": None}


def _program(num: int, name: str, category: str) -> dict:
    return {"midi_program_num": num, "midi_program_name": name, "midi_category": category}


NOTES = [
    {
        "root_note_name": name,
        "root_note_pitch_class": midi % 12,
        "octave": midi // 12,
        "root_note_is_accidental": name.endswith("#"),
        "register": 1,
        "midi_note_val": midi,
        **_program(0, "Acoustic Grand Piano", "Piano Timbres"),
        "midi_file_path": f"{midi}_1_{name}_0_Acoustic_Grand_Piano.mid",
        "synth_file_path": f"{midi}_1_{name}_0_Acoustic_Grand_Piano.wav",
        "synth_soundfont": "TimGM6mb.sf2",
        "is_silent": silent,
        "audio": _audio(midi),
    }
    for midi, name, silent in ((60, "C", False), (61, "C#", False), (69, "A", True))
]


def test_notes_fixture_into_the_same_interface(tmp_path: Path) -> None:
    ds = load_syntheory("notes", tmp_path, source=NOTES)
    assert ds.meta["silent_excluded"] == 1 and len(ds) == 2
    again = load_dataset(tmp_path)
    rows = again.rows
    assert list(rows.columns[:3]) == ["path", "concept", "label"]
    assert rows["label"].tolist() == ["C", "C#"]
    assert rows["pitch_class"].tolist() == [0, 1]
    assert rows["octave"].tolist() == [5, 5] and rows["midi_note"].tolist() == [60, 61]
    assert rows["instrument_family"].tolist() == ["piano", "piano"]
    assert rows["midi_category"].tolist() == ["Piano Timbres"] * 2  # original columns kept
    info = sf.info(str(again.audio_path(0)))
    assert (info.samplerate, info.channels) == (32000, 1)
    audio = again.load_audio(1)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 32000 / len(audio) - 277.18) < 3  # C#4 survived
    assert set(again.split(seed=0).rows["split"]) <= {"train", "val", "test"}


def test_other_concepts_map_to_our_labels() -> None:
    prog = _program(40, "Violin", "String Timbres")
    chord = map_row(
        "chords",
        {"root_note_name": "D", "chord_type": "dim", "inversion": "64",
         "root_note_pitch_class": 2, **prog},
    )  # fmt: skip
    assert (chord["label"], chord["inversion"], chord["instrument_family"]) == (
        "diminished",
        "second",
        "strings",
    )
    interval = map_row(
        "intervals",
        {"root_note_name": "E", "root_note_pitch_class": 4, "interval": 7, "play_style": 2,
         "play_style_name": "UNISON", "midi_note_val": 64, **prog},
    )  # fmt: skip
    assert (interval["label"], interval["semitones"], interval["play_style"]) == ("P5", 7, "unison")
    progression = map_row(
        "progressions",
        {"key_note_name": "A", "key_note_pitch_class": 9,
         "chord_progression": "aeolian-(1, 6, 3, 7)", **prog},
    )  # fmt: skip
    assert progression["label"] == "i-VI-III-VII" and progression["tonality"] == "minor"
    ts = map_row(
        "time_signatures",
        {"time_signature": "(6, 8)", "bpm": 120, "click_config_name": "taiko",
         "midi_program_num": 116, "reverb_level": 2, "offset_time": "3.25"},
    )  # fmt: skip
    assert (ts["label"], ts["is_compound"], ts["offset"], ts["click"]) == (
        "6/8",
        True,
        3.25,
        "taiko",
    )
    tempo = map_row("tempos", {"bpm": 93, "click_config_name": "default", "midi_program_num": 0})
    assert tempo["label"] == "93" and tempo["instrument_family"] == "drums"
    scale = map_row(
        "scales",
        {"root_note_name": "F#", "mode": "lydian", "play_style": 1, "play_style_name": "DOWN", **prog},
    )  # fmt: skip
    assert (scale["label"], scale["root_pitch_class"], scale["play_style"]) == ("lydian", 6, "down")


def test_audio_as_bytes_and_limit(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(72, sr=22050), 22050, format="WAV")
    row = dict(NOTES[0], audio={"bytes": buf.getvalue(), "path": "x.wav"}, is_silent=False)
    ds = load_syntheory("notes", tmp_path, source=[row, row, row], limit=2, format="wav")
    assert len(ds) == 2 and ds.rows["path"].str.endswith(".wav").all()


def test_missing_datasets_package_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'musicrfm\[hub\]'"):
        load_syntheory("chords", tmp_path)
    with pytest.raises(ConfigError, match="valid: notes"):
        load_syntheory("melodies", tmp_path, source=[])
    assert main(["synth", "notes", "--from-hub", "--out", str(tmp_path)]) == 2
