"""The on-disk dataset: manifest contract, determinism, resume, failures, load/filter/split, CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicrfm.cli import main
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.synth import SynthDataset, generate_dataset, load_dataset
from musicrfm.synth import generate as gen
from musicrfm.synth.dataset import write_csv_atomic
from musicrfm.synth.journal import JOURNAL

SMALL = {"programs": [0, 40], "octaves": [4, 5], "roots": ["C", "E", "G"]}  # 12 note clips


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != JOURNAL
    }


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SynthDataset:
    out = tmp_path_factory.mktemp("mixed")
    generate_dataset(["notes", "chords:major,minor"], out, limit_per_class=3, seed=1, workers=2)
    return generate_dataset(["tempos"], out, limit_per_class=1, seed=1, workers=1)


def test_manifest_contract(mixed: SynthDataset) -> None:
    rows = pd.read_csv(mixed.root / "manifest.csv", dtype={"label": str})
    assert list(rows.columns[:3]) == ["path", "concept", "label"]
    assert list(rows.columns[-3:]) == ["duration", "sample_rate", "seed"]
    counts = rows["concept"].value_counts().to_dict()
    assert counts == {"notes": 36, "chords": 6, "tempos": 161}
    notes = rows[rows.concept == "notes"]
    for col in (
        "pitch_class",
        "octave",
        "midi_note",
        "program",
        "program_name",
        "instrument_family",
    ):
        assert notes[col].notna().all(), col
    assert (notes["midi_note"] % 12 == notes["pitch_class"]).all()
    chords = rows[rows.concept == "chords"]
    assert set(chords["label"]) == {"major", "minor"}
    assert chords[["root", "quality", "inversion"]].notna().all().all()
    tempos = rows[rows.concept == "tempos"]
    assert (tempos["label"] == tempos["bpm"].astype(int).astype(str)).all()
    assert (rows["sample_rate"] == 32000).all() and (rows["duration"] == 4.0).all()
    assert (rows["seed"] == 1).all()
    meta = json.loads((mixed.root / "dataset.json").read_text())
    assert meta["complete"] and meta["clips"] == len(rows) == 203
    assert meta["counts"] == {"notes": 36, "chords": 6, "tempos": 161}
    assert meta["silent_excluded"] == len(meta["silent_clips"])
    assert meta["version"] and meta["options"]["sample_rate"] == 32000
    assert [list(r["concepts"]) for r in meta["runs"]] == [["notes", "chords"], ["tempos"]]
    for p in rows.path:
        assert (mixed.root / p).is_file()
    f = sf.info(str(mixed.root / rows.path[0]))
    assert (f.samplerate, f.channels, f.format, f.frames) == (32000, 1, "FLAC", 128000)


def test_same_seed_same_bytes_and_resume(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset("notes", a, **SMALL, workers=2)
    generate_dataset("notes", b, **SMALL, workers=1)
    assert _digest(a) == _digest(b)
    assert len(load_dataset(a)) == 12

    # simulate an interruption: a half-written file, a lost journal tail, a manifest from earlier
    files = sorted((b / "notes").glob("*.flac"))
    lines = (b / JOURNAL).read_text().splitlines(keepends=True)
    (b / JOURNAL).write_text("".join(lines[:5]) + lines[5][:17])
    files[-1].unlink()
    (b / "notes" / ".x.flac.part").write_bytes(b"half")
    write_csv_atomic(pd.read_csv(b / "manifest.csv").head(3), b / "manifest.csv")
    calls: list[str] = []
    real = gen._render_one
    gen_render = lambda clip: (calls.append(clip.key), real(clip))[1]  # noqa: E731
    mp = pytest.MonkeyPatch()
    mp.setattr(gen, "_render_one", gen_render)
    try:
        generate_dataset("notes", b, **SMALL, workers=1)
    finally:
        mp.undo()
    assert len(calls) == 12 - 5  # only what the journal did not record
    assert not list(b.rglob("*.part"))
    assert _digest(a) == _digest(b)
    rows = pd.read_csv(b / "manifest.csv")
    assert rows["path"].is_unique and len(rows) == 12


def test_different_options_refuse_to_mix(tmp_path: Path) -> None:
    generate_dataset("notes", tmp_path, programs=[0], roots=["A"], octaves=[5], workers=1)
    with pytest.raises(ConfigError, match="sample_rate=32000"):
        generate_dataset(
            "notes", tmp_path, programs=[0], roots=["A"], octaves=[5], sample_rate=16000
        )


def test_full_disk_fails_cleanly_keeping_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open
    written: list[str] = []

    def open_until_full(path: object, mode: str = "r", *args: object, **kwargs: object):
        if "w" in mode and str(path).endswith(".flac.part"):
            if len(written) >= 4:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            written.append(str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_until_full)
    with pytest.raises(DatasetError, match="disk full.*4 finished clips are kept"):
        generate_dataset("notes", tmp_path, **SMALL, workers=1)
    monkeypatch.undo()
    rows = pd.read_csv(tmp_path / "manifest.csv")
    assert len(rows) == 4 and all((tmp_path / p).is_file() for p in rows.path)
    assert not list(tmp_path.rglob("*.part"))
    assert json.loads((tmp_path / "dataset.json").read_text())["complete"] is False
    assert len(generate_dataset("notes", tmp_path, **SMALL, workers=1)) == 12


def test_unwritable_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DatasetError, match="cannot create dataset folder"):
        generate_dataset("notes", blocker / "out", **SMALL)


def test_filter_and_audio(mixed: SynthDataset) -> None:
    ds = load_dataset(mixed.root)
    notes = ds.filter(concept="notes")
    assert len(notes) == 36 and set(notes.concepts) == {"notes"}
    assert len(ds.filter(concept="chords", label=["major"])) == 3
    assert len(ds.filter(concept="tempos", label=120)) == 1  # 120 matches "120"
    assert len(ds.filter(concept="tempos", bpm="120")) == 1  # "120" matches 120
    audio = notes.load_audio(0)
    assert audio.shape == (128000,) and np.abs(audio).max() > 0.001
    assert notes.audio_path(0).is_file()
    assert notes.load_audio(0, sample_rate=16000).shape == (64000,)
    with pytest.raises(DatasetError, match="no column 'colour'"):
        ds.filter(colour="red")


def test_stratified_seeded_split(mixed: SynthDataset) -> None:
    notes = mixed.filter(concept="notes")
    s1, s2 = notes.split(seed=3), notes.split(seed=3)
    assert s1.rows["split"].tolist() == s2.rows["split"].tolist()
    assert notes.split(seed=4).rows["split"].tolist() != s1.rows["split"].tolist()
    per_class = s1.rows.groupby("label")["split"].value_counts().unstack(fill_value=0)
    assert (per_class["train"] == 2).all() and (per_class.sum(axis=1) == 3).all()
    big = SynthDataset(mixed.root, pd.DataFrame({"path": range(1000), "label": ["a", "b"] * 500}))
    counts = big.split(seed=0).rows["split"].value_counts().to_dict()
    assert counts == {"train": 700, "val": 150, "test": 150}
    assert len(big.split(seed=0).subset("val")) == 150
    with pytest.raises(ConfigError):
        big.split(0.5, 0.2, 0.2)


def test_tempo_split_extrapolates(mixed: SynthDataset) -> None:
    tempos = mixed.filter(concept="tempos").extrapolation_split("bpm", seed=0)
    rows = tempos.rows
    train_bpm = rows.loc[rows.split == "train", "bpm"]
    held = rows.loc[rows.split != "train", "bpm"]
    assert set(rows["split"]) == {"train", "val", "test"}
    assert ((held < train_bpm.min()) | (held > train_bpm.max())).all()
    assert held.min() == 50 and held.max() == 210
    assert abs(len(train_bpm) / len(rows) - 0.7) < 0.02
    for s in ("val", "test"):  # both held-out splits see slow and fast tempos
        b = rows.loc[rows.split == s, "bpm"]
        assert b.min() < train_bpm.min() and b.max() > train_bpm.max()


def test_load_user_dataset_parquet(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    pd.DataFrame({"path": ["a.wav"], "label": ["x"], "mood": ["calm"]}).to_parquet(
        tmp_path / "manifest.parquet"
    )
    ds = load_dataset(tmp_path)
    assert len(ds) == 1 and ds.audio_path(0) == tmp_path / "a.wav" and ds.meta == {}
    pd.DataFrame({"file": ["a.wav"]}).to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(DatasetError, match="no `path` column"):
        load_dataset(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no manifest.csv"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no dataset at"):
        load_dataset(tmp_path / "nothing")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "time_signatures (1,200 clips)" in listing and "I-IV-V-I" in listing
    out = tmp_path / "cli"
    argv = ["synth", "scales:lydian", "--out", str(out), "--programs", "0,Violin", "--roots", "D"]
    assert main([*argv, "--no-progress", "--workers", "1"]) == 0
    assert "4 clips" in capsys.readouterr().out
    rows = load_dataset(out).rows
    assert set(rows["program_name"]) == {"Acoustic Grand Piano", "Violin"}
    assert set(rows["play_style"]) == {"up", "down"}
    assert main(["synth", "scales:lydian", "--out", str(out), "--sample-rate", "16000"]) == 2
    assert main(["synth", "chords:sus4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "valid: major, minor, augmented, diminished" in err and "Traceback" not in err
    assert main(["synth", "notes", "--out", str(out), "--soundfont", "/no/such.sf2"]) == 2
    assert "--soundfont PATH" in capsys.readouterr().err


def _start_and_stop(argv: list[str], out: Path, lines: int, sig: int) -> int:
    """Run the CLI in a subprocess and send it ``sig`` once the journal has ``lines`` clips."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicrfm", "synth", *argv, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = out / JOURNAL
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= lines:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    return proc.wait(timeout=60)


def test_interrupted_and_killed_runs_resume_to_the_same_dataset(tmp_path: Path) -> None:
    """Ctrl-C, then SIGKILL, a real CLI run; the rerun equals an uninterrupted run, byte for byte."""
    argv = ["chords", "--limit-per-class", "60", "--seed", "2", "--workers", "2", "--no-progress"]
    out = tmp_path / "stopped"
    assert _start_and_stop(argv, out, 30, signal.SIGINT) == 130  # the CLI's "interrupted" exit
    journal_ok = [json.loads(x) for x in (out / JOURNAL).read_text().splitlines()]
    rows = pd.read_csv(out / "manifest.csv")
    assert 30 <= len(rows) == sum(r["status"] == "ok" for r in journal_ok) < 240
    assert json.loads((out / "dataset.json").read_text())["complete"] is False

    _start_and_stop(argv, out, len(journal_ok) + 40, signal.SIGKILL)
    n_before = (out / JOURNAL).read_text().count("\n")
    assert n_before < 240, "the run should have been killed half-way"
    assert main(["synth", *argv, "--out", str(out)]) == 0
    fresh = tmp_path / "fresh"
    assert main(["synth", *argv, "--out", str(fresh)]) == 0
    assert _digest(out) == _digest(fresh)
    rows = load_dataset(out).rows
    assert len(rows) == 240 and rows["path"].is_unique
