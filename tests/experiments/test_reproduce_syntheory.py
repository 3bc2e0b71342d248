"""`musicrfm reproduce --syntheory auto|hub|local`: where the training clips come from.

Offline: auto falls back to the local generator and says so once; `hub` is one error line before
anything is loaded or written; hub rows fed offline (as tests/synth/test_hub.py feeds them)
become a balanced dataset in the same format that the next stages read, recorded as the hub's,
cached apart from the generator's clips and reused by a rerun without the hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import musicrfm
from musicrfm.cli import main
from musicrfm.experiments.reproduce import ReproduceOptions, prepare_reproduce, run_reproduce
from musicrfm.synth import hub, load_dataset

# the smallest run of tests/experiments/test_reproduce.py (random:tiny, 7 clips per chord class),
# Table 1 only, on 0.2 s clips
TINY = dict(
    concepts=("chords",), tables=(1,), scale=0.002, seconds=0.2, clip_seconds=0.2, budget="fast"
)
ARGS = [
    "--model", "random:tiny", "--concepts", "chords", "--tables", "1", "--scale", "0.002",
    "--seconds", "0.2", "--clip-seconds", "0.2", "--budget", "fast", "--no-progress",
]  # fmt: skip
COMMIT = "0123456789abcdef0123456789abcdef01234567"
STEPS = {"major": (0, 4, 7), "minor": (0, 3, 7), "aug": (0, 4, 8), "dim": (0, 3, 6)}
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def chord_rows(per_class: int = 10) -> list[dict]:
    """SynTheory's chord rows (its columns, 1 s of 44.1 kHz stereo), sorted by class: the first
    rows are all major, so taking the first N would give one class. One silent row per class."""
    sr = 44100
    t = np.arange(sr) / sr
    rows = []
    for quality, steps in STEPS.items():
        for k in range(per_class):
            root = 48 + k % 12
            mono = sum(
                0.2 * np.sin(2 * np.pi * 440 * 2 ** ((root + s - 69) / 12) * t) for s in steps
            )
            rows.append(
                {"root_note_name": NAMES[root % 12], "chord_type": quality, "inversion": 5,
                 "root_note_pitch_class": root % 12, "midi_program_num": 0,
                 "midi_program_name": "Acoustic Grand Piano", "midi_category": "Piano Timbres",
                 "is_silent": k == 0,
                 "audio": {"array": np.stack([mono, mono], 1).astype(np.float32),
                           "sampling_rate": sr, "path": None}}
            )  # fmt: skip
    return rows


def refuse(what: str):
    def fail(*a, **k):
        raise AssertionError(f"{what} was called")

    return fail


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    import torch

    torch.set_num_threads(1)
    # no test here may reach the network
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", refuse("the hub"))


def test_auto_offline_falls_back_to_local_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(hub, "has_datasets", lambda: True)  # installed, but offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "open_rows", refuse("the hub loader"))
    out = tmp_path / "out"
    assert main(["reproduce", *ARGS, "--out", str(out)]) == 0  # the plan only (not a terminal)
    captured = capsys.readouterr()
    notices = [line for line in captured.err.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "local generator" in notices[0]
    assert "offline (HF_HUB_OFFLINE=1)" in notices[0]
    assert "clips from: local generator (musicrfm" in captured.out

    assert not out.exists() or not list(out.glob("*.json"))

    prepared = prepare_reproduce(
        "random:tiny", ReproduceOptions(**TINY), out=out, measure=False, progress=False
    )
    src = prepared.source
    assert (src.kind, src.asked, src.version) == ("local", "auto", musicrfm.__version__)
    assert src.notice == notices[0][len("notice: ") :] and len(src.spec_hash) == 12
    # what reproduce.json records (its `plan` and, with the dataset folders, `syntheory`)
    assert prepared.plan.to_dict()["syntheory"] == src.to_dict()
    assert src.to_dict()["description"].startswith("local generator (musicrfm ")
    from musicrfm.experiments.reproduce.run import _header

    assert any(
        line.startswith("Training clips: local generator") for line in _header(prepared, None)
    )


def test_hub_that_cannot_be_used_is_one_error_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import musicrfm.models as models

    monkeypatch.setattr(models, "load_model", refuse("load_model"))  # before expensive work
    out = tmp_path / "out"
    argv = ["reproduce", *ARGS, "--syntheory", "hub", "--out", str(out), "--yes"]
    monkeypatch.setattr(hub, "has_datasets", lambda: False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --syntheory hub: ")
    assert "pip install 'musicrfm[hub]'" in err[0] and "--syntheory local" in err[0]

    monkeypatch.setattr(hub, "has_datasets", lambda: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "offline (HF_DATASETS_OFFLINE=1)" in err[0]
    assert "--syntheory local" in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_hub_rows_become_a_balanced_dataset_the_next_stages_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import musicrfm.probes.training as training
    from musicrfm.experiments.reproduce import load_protocol
    from musicrfm.experiments.reproduce.run import _dataset

    opened: list[tuple] = []

    def open_rows(concept, repo_id, revision, split="train"):
        opened.append((concept, repo_id, revision))
        return hub.HubRows(chord_rows())

    monkeypatch.setattr(hub, "open_rows", open_rows)
    monkeypatch.setattr(hub, "hub_status", lambda *a, **k: hub.HubStatus(True, commit=COMMIT))
    out = tmp_path / "out"
    given = dict(out=out, measure=False, progress=False)
    prepared = prepare_reproduce("random:tiny", ReproduceOptions(syntheory="hub", **TINY), **given)
    revision = load_protocol().value("dataset.hub_revision")
    assert "clips from: SynTheory from the hub: meganwei/syntheory @ " + revision in "\n".join(
        prepared.plan.lines()
    )
    result = run_reproduce(prepared, progress=False)
    assert opened == [("chords", "meganwei/syntheory", revision)]  # the pinned revision
    record = json.loads((out / "reproduce.json").read_text())
    src = record["syntheory"]
    assert (src["kind"], src["repo_id"], src["revision"], src["commit"]) == (
        "hub",
        "meganwei/syntheory",
        revision,
        COMMIT,
    )
    folder = Path(src["datasets"]["chords"])
    ds = load_dataset(folder)
    per_class = 7  # 13,248 x 0.002 / 4, as the local generator makes
    assert ds.rows["label"].value_counts().to_dict() == {
        q: per_class for q in ("major", "minor", "augmented", "diminished")
    }
    assert ds.meta["commit"] == COMMIT and folder.parent.name.startswith("hub-")
    info = sf.info(str(ds.audio_path(0)))  # what the local generator writes for the model
    assert info.samplerate == int(prepared.adapter.sample_rate) and info.channels == 1
    assert abs(info.duration - 0.2) < 1e-3  # cut to --clip-seconds
    # the next stages read it: its clips were extracted, probed and put in Table 1
    assert record["stages"]["synthesise"]["clips"] == {"chords": 4 * per_class}
    t1 = json.loads((out / "table1.json").read_text())
    assert 0.0 <= t1["ours"]["RFM (mean-pooled)"]["Chords"] <= 1.0
    assert "Training clips: SynTheory from the hub" in (out / "table1.md").read_text()

    # rerun (auto, now offline): the clips, features and probes come from the work folder
    monkeypatch.setattr(hub, "open_rows", refuse("the hub loader"))
    monkeypatch.setattr(hub, "hub_status", refuse("the hub check"))
    monkeypatch.setattr(training, "train_directions", refuse("probe training"))
    again = prepare_reproduce("random:tiny", ReproduceOptions(**TINY), **given)
    assert (again.source.kind, again.source.cached, again.source.commit) == ("hub", True, COMMIT)
    second = run_reproduce(again, progress=False)
    assert second.stages["train"]["trained"] == [] and result.stages["train"]["trained"]

    # the local source keeps its own folder: hub and local clips are never mixed
    local = ReproduceOptions(syntheory="local", **TINY)
    there = prepare_reproduce("random:tiny", local, **given)
    mine = _dataset(there.adapter, "chords", local, there.protocol, there.work, there.source, False)
    assert Path(mine.root) != folder and not mine.root.is_relative_to(folder.parent)
    assert load_dataset(folder).rows.equals(ds.rows)
