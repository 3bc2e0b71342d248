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
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.synth import hub, load_dataset, load_syntheory
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


# ---------------------------------------------------------------- the balanced, resumable copy
QUALITIES = {"major": (0, 4, 7), "minor": (0, 3, 7), "aug": (0, 4, 8), "dim": (0, 3, 6)}


def chord_rows(per_class: int = 8, seconds: float = 1.0) -> list[dict]:
    """SynTheory chord rows sorted by class (all majors first, as a config's first rows may be):
    per class one row flagged ``is_silent`` and one whose audio is silent without the flag."""
    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    rows = []
    for quality, steps in QUALITIES.items():
        for k in range(per_class):
            root = 48 + k % 12
            mono = sum(
                0.2 * np.sin(2 * np.pi * 440 * 2 ** ((root + s - 69) / 12) * t) for s in steps
            )
            if k == 1:
                mono = mono * 0.0  # silent audio, not flagged
            audio = np.stack([mono, mono], axis=1).astype(np.float32)
            rows.append(
                {"root_note_name": theory_name(root), "chord_type": quality, "inversion": 5,
                 "root_note_pitch_class": root % 12, **_program(0, "Acoustic Grand Piano",
                 "Piano Timbres"), "is_silent": k == 0,
                 "audio": {"array": audio, "sampling_rate": sr, "path": None}}
            )  # fmt: skip
    return rows


def theory_name(midi: int) -> str:
    return ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"][midi % 12]


def test_balanced_copy_is_seeded_and_leaves_out_silence(tmp_path: Path) -> None:
    from musicrfm.synth.hub import HubRows, fetch_balanced

    rows = chord_rows()
    ds = fetch_balanced(
        "chords", tmp_path / "a", per_class=3, seed=0, seconds=0.5, sample_rate=16000,
        rows=HubRows(rows), commit="abc",
    )  # fmt: skip
    counts = ds.rows["label"].value_counts().to_dict()
    assert counts == {"major": 3, "minor": 3, "augmented": 3, "diminished": 3}  # not first rows
    picked = [int(Path(p).stem) for p in ds.rows["path"]]
    assert not {i for i in picked if i % 8 in (0, 1)}  # neither silent row of any class
    info = sf.info(str(ds.audio_path(0)))
    assert (info.samplerate, info.channels) == (16000, 1) and abs(info.duration - 0.5) < 1e-3
    assert ds.meta["commit"] == "abc" and ds.meta["options"]["revision"] == hub.REVISION
    same = fetch_balanced(
        "chords", tmp_path / "b", per_class=3, seed=0, seconds=0.5, sample_rate=16000,
        rows=HubRows(rows),
    )  # fmt: skip
    assert list(same.rows["path"]) == list(ds.rows["path"])
    other = fetch_balanced(
        "chords", tmp_path / "c", per_class=3, seed=1, seconds=0.5, sample_rate=16000,
        rows=HubRows(rows),
    )  # fmt: skip
    assert list(other.rows["path"]) != list(ds.rows["path"])
    with pytest.raises(DatasetError, match="other options"):  # never mixed into one folder
        fetch_balanced("chords", tmp_path / "a", per_class=4, seconds=0.5, sample_rate=16000,
                       rows=HubRows(rows))  # fmt: skip
    with pytest.raises(DatasetError, match="no clips of 7th"):
        fetch_balanced("chords", tmp_path / "d", per_class=1, classes=["major", "7th"],
                       rows=HubRows(rows))  # fmt: skip


def test_balanced_copy_resumes_without_copying_twice(tmp_path: Path) -> None:
    from musicrfm.synth.hub import HubRows, fetch_balanced

    rows = chord_rows()
    fetched: list[int] = []

    class Flaky(HubRows):
        def row(self, i: int):
            if len(fetched) == 5:
                raise KeyboardInterrupt
            fetched.append(i)
            return super().row(i)

    kwargs = dict(per_class=2, seed=0, seconds=0.5, sample_rate=16000)
    with pytest.raises(KeyboardInterrupt):
        fetch_balanced("chords", tmp_path, rows=Flaky(rows), **kwargs)
    first = list(fetched)

    class Counting(HubRows):
        def row(self, i: int):
            assert i not in first, f"row {i} copied twice"
            fetched.append(i)
            return super().row(i)

    ds = fetch_balanced("chords", tmp_path, rows=Counting(rows), **kwargs)
    assert len(ds) == 8 and ds.meta["complete"]

    class Untouched(HubRows):
        def __len__(self) -> int:
            raise AssertionError("a complete folder opened the hub rows")

    again = fetch_balanced("chords", tmp_path, rows=Untouched(rows), **kwargs)
    assert list(again.rows["path"]) == list(ds.rows["path"])


def test_hub_status_says_why_not(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub, "has_datasets", lambda: False)
    status = hub.hub_status()
    assert not status.usable and "not installed" in status.reason
    assert "pip install 'musicrfm[hub]'" in status.fix
    monkeypatch.setattr(hub, "has_datasets", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub.hub_status().reason == "offline (HF_DATASETS_OFFLINE=1)"
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    asked = []

    def unreachable(self, repo_id, *, revision=None, timeout=None, **kw):
        asked.append((repo_id, revision, timeout))
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", unreachable)
    status = hub.hub_status()
    assert not status.usable and "ConnectionError: no route to host" in status.reason
    assert asked == [(hub.REPO_ID, hub.REVISION, 3.0)]  # the pinned revision, a short timeout

    class Info:
        sha = "f" * 40

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", lambda self, *a, **k: Info())
    assert hub.hub_status() == hub.HubStatus(True, commit="f" * 40)


def test_the_pinned_revision_is_the_protocols() -> None:
    from musicrfm.experiments.reproduce import load_protocol

    protocol = load_protocol()
    assert protocol.value("dataset.hub_id") == hub.REPO_ID
    assert protocol.value("dataset.hub_revision") == hub.REVISION
    assert hub.HUB_CONFIGS["progressions"] == "simple_progressions"  # the hub's config name
