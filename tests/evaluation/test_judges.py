"""The reference timbre judge is fitted once per codec, saved beside the model, and reused only
for the codec it was fitted on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.evaluation import judges as judge_mod
from musicrfm.evaluation.judges import (
    JUDGE_NAME,
    codec_fingerprint,
    find_reference_judge,
    judge_key,
    model_folder,
    reference_judge,
)
from musicrfm.models import load_model

SMALL = {"notes": (60, 62), "rhythms": ((1, 1.0),)}  # 12 instruments x 3 notes: seconds


@pytest.fixture(scope="module")
def adapter():
    return load_model("random:tiny")


@pytest.fixture(scope="module")
def fitted(adapter, tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge")
    clf, report = reference_judge(adapter, [folder], **SMALL)
    return folder, clf, report


def test_a_fitted_judge_is_saved_with_its_key_and_reused_without_refitting(
    adapter, fitted, monkeypatch
):
    folder, clf, report = fitted
    assert (folder / f"{JUDGE_NAME}.safetensors").is_file()
    assert (folder / f"{JUDGE_NAME}.json").is_file()
    assert 0 <= report["test_accuracy"] <= 1 and report["n_test"] > 0
    assert clf.meta["judge_key"] == judge_key(adapter, SMALL["notes"], SMALL["rhythms"])

    def no_fit(*a, **k):
        raise AssertionError("a matching judge was refitted")

    monkeypatch.setattr("musicrfm.evaluation.instrument.fit_instrument_classifier", no_fit)
    again, again_report = reference_judge(adapter, [folder], **SMALL)
    assert again_report == report
    for a, b in zip(again.hidden, clf.hidden):
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(again.coef, clf.coef)


def test_a_judge_from_another_codec_or_recipe_is_not_used(adapter, fitted):
    folder, _, _ = fitted
    key = judge_key(adapter, SMALL["notes"], SMALL["rhythms"])
    assert find_reference_judge(adapter, [folder], key=key) is not None
    # the default recipe (all notes, four rhythms) is another judge
    assert find_reference_judge(adapter, [folder]) is None
    before = codec_fingerprint(adapter)
    param = next(adapter.codec.parameters())
    with torch.no_grad():
        param.add_(0.01)
    try:
        assert codec_fingerprint(adapter) != before
        moved = judge_key(adapter, SMALL["notes"], SMALL["rhythms"])
        assert find_reference_judge(adapter, [folder], key=moved) is None
    finally:
        with torch.no_grad():
            param.sub_(0.01)
    assert codec_fingerprint(adapter) == before


def test_an_unreadable_judge_is_skipped_with_a_warning(adapter, tmp_path, caplog):
    (tmp_path / f"{JUDGE_NAME}.json").write_text("{not json")
    (tmp_path / f"{JUDGE_NAME}.safetensors").write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger=judge_mod.__name__):
        assert find_reference_judge(adapter, [tmp_path]) is None
    assert "ignoring the judge" in caplog.text


def test_only_a_local_model_has_a_folder_for_its_judge(adapter):
    assert model_folder(adapter) is None  # random:tiny lives nowhere on disk


def test_the_demo_judges_with_the_judge_its_model_folder_carries(fitted, tmp_path, monkeypatch):
    """The demo never fits the slow judge; it uses one only when the model's folder has one for
    this codec (here: the small one fitted above, by pointing the recipe at it)."""
    from dataclasses import replace

    from musicrfm.experiments.demo import DemoConfig, run_demo

    folder, _, _ = fitted
    cfg = replace(
        DemoConfig.quick(), clips_per_class=6, prompts=("acoustic piano", "violin"),
        crossfade_clips=2, seconds=0.5, instrument_check=True,
    )  # fmt: skip

    def run(name):
        result = run_demo(
            model="random:tiny", out=tmp_path / name, work=tmp_path / "work", config=cfg,
            progress=False,
        )  # fmt: skip
        info = json.loads((result.out / "demo.json").read_text())["settings"]["instrument"]
        assert f"the {info['classifier']} instrument classifier" in result.html.read_text()
        return info

    monkeypatch.setattr(judge_mod, "REFERENCE_NOTES", SMALL["notes"])
    monkeypatch.setattr(judge_mod, "REFERENCE_RHYTHMS", SMALL["rhythms"])
    assert run("no-folder")["classifier"] == "note set (logistic)"
    monkeypatch.setattr("musicrfm.evaluation.judges.model_folder", lambda adapter: folder)
    assert run("with-judge")["classifier"] == "reference (MLP)"


def test_the_bundled_model_carries_a_judge_for_its_own_codec():
    """If the codec is retrained, this fails until `musicrfm mini judge` is run again."""
    from musicrfm.models import bundled_model_dirs

    mini = load_model("mini")
    folder = model_folder(mini)
    assert folder is not None and folder in [d.resolve() for d in bundled_model_dirs()]
    found = find_reference_judge(mini, [folder])
    assert found is not None, "models/musicgen-mini has no judge for its codec"
    clf, report = found
    assert report["test_accuracy_augmented"] >= 0.95
    assert clf.meta["judge_key"]["codec"] == codec_fingerprint(mini)


def test_the_beat_testbed_carries_a_polyphonic_judge_for_its_codec():
    """`models/musicgen-mini-beat/judges/polyphonic` and `judges/progressions` (`mini headline
    --judge`): fitted on notes, intervals and triads (and progressions) through this codec; the
    folder's own judge stays the notes-only one."""
    beat = load_model("mini-beat")
    folder = model_folder(beat)
    assert folder is not None
    poly = find_reference_judge(beat, [folder / "judges" / "polyphonic"])
    assert poly is not None, "the polyphonic judge is missing or was fitted on another codec"
    assert poly[1]["polyphonic"] is True and poly[1]["test_accuracy_augmented"] >= 0.95
    prog = find_reference_judge(beat, [folder / "judges" / "progressions"])
    assert prog is not None, "the progressions judge is missing or was fitted on another codec"
    assert prog[1]["progressions"] is True and prog[1]["test_accuracy_augmented"] >= 0.95
    own = find_reference_judge(beat, [folder])
    assert own is not None and own[1].get("polyphonic", False) is False


def test_cli_asks_where_to_save_the_judge_of_a_model_without_a_folder():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "judge", "--model", "random:tiny"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--out" in proc.stderr and "Traceback" not in proc.stderr


def test_a_polyphonic_judge_also_hears_chords_and_is_found_by_default(
    adapter, tmp_path, monkeypatch
):
    """`mini judge --polyphonic`: the fit adds harmonic intervals and triads per instrument, its
    key says so (a notes-only judge keeps its old key, so it is not refitted), and a search
    without a key takes either recipe while an explicit notes-only key refuses it."""
    monkeypatch.setattr(judge_mod, "POLYPHONIC_PER_PROGRAM", 1)
    clips, families = judge_mod.polyphonic_clips(8000, per_program=1)
    assert len(clips) == len(families) == 24 and len(set(families)) > 1
    assert all(sr == 8000 for _, sr in clips)
    again, _ = judge_mod.polyphonic_clips(8000, per_program=1)
    np.testing.assert_array_equal(clips[5][0], again[5][0])  # a fixed draw

    notes_key = judge_key(adapter, SMALL["notes"], SMALL["rhythms"])
    assert "polyphony" not in notes_key
    clf, report = reference_judge(adapter, [tmp_path], **SMALL, polyphonic=True)
    poly_key = judge_key(adapter, SMALL["notes"], SMALL["rhythms"], polyphonic=True)
    assert clf.meta["judge_key"] == poly_key != notes_key and report["polyphonic"] is True
    assert find_reference_judge(adapter, [tmp_path], key=notes_key) is None
    monkeypatch.setattr(judge_mod, "REFERENCE_NOTES", SMALL["notes"])
    monkeypatch.setattr(judge_mod, "REFERENCE_RHYTHMS", SMALL["rhythms"])
    found = find_reference_judge(adapter, [tmp_path])
    assert found is not None and found[1]["polyphonic"] is True


def test_a_progressions_judge_hears_four_chords_a_clip_and_is_found_by_default(
    adapter, tmp_path, monkeypatch
):
    """`mini judge --progressions`: clips of four triads, 2 s each, per instrument, drawn by a
    seed (another seed: another, held-out draw); the fit adds them to the polyphonic clips, the
    key names both, and a search without a key takes it."""
    clips_of = judge_mod.progression_clips
    clips, families = clips_of(8000, per_program=1)
    assert len(clips) == len(families) == 12 and len(set(families)) > 1
    assert all(sr == 8000 and len(a) == 4 * 2 * 8000 for a, sr in clips)
    again, _ = clips_of(8000, per_program=1)
    other, _ = clips_of(8000, per_program=1, seed=1)
    np.testing.assert_array_equal(clips[3][0], again[3][0])
    assert not np.array_equal(clips[3][0], other[3][0])

    # the fit is what the polyphonic test checks: keep it to a few clips of each kind here
    fitted_on: list[str] = []

    def few(kind, real):
        def clips(sr, *args, **kw):
            fitted_on.append(kind)
            audio, families = real(sr, 1)
            return audio[::6], families[::6]

        return clips

    monkeypatch.setattr(judge_mod, "polyphonic_clips", few("triads", judge_mod.polyphonic_clips))
    monkeypatch.setattr(judge_mod, "progression_clips", few("progressions", real=clips_of))
    clf, report = reference_judge(adapter, [tmp_path], **SMALL, progressions=True)
    assert fitted_on == ["triads", "progressions"]
    assert report["progressions"] is True and report["polyphonic"] is True
    key = judge_key(adapter, SMALL["notes"], SMALL["rhythms"], progressions=True)
    poly_key = judge_key(adapter, SMALL["notes"], SMALL["rhythms"], polyphonic=True)
    assert clf.meta["judge_key"] == key != poly_key and key["polyphony"] == poly_key["polyphony"]
    assert find_reference_judge(adapter, [tmp_path], key=poly_key) is None
    monkeypatch.setattr(judge_mod, "REFERENCE_NOTES", SMALL["notes"])
    monkeypatch.setattr(judge_mod, "REFERENCE_RHYTHMS", SMALL["rhythms"])
    found = find_reference_judge(adapter, [tmp_path])
    assert found is not None and found[1]["progressions"] is True


def test_a_headline_judge_folder_must_hold_a_judge_for_the_models_codec(
    adapter, fitted, tmp_path, monkeypatch
):
    """`mini headline --judge DIR`: judged by DIR's judge alone, refused before any clip when DIR
    has none for this codec (never refitted into the user's folder)."""
    from dataclasses import replace

    from musicrfm.errors import ConfigError
    from musicrfm.experiments.headline.config import HeadlineConfig
    from musicrfm.experiments.headline.run import check_judge, judge_folders

    folder, _, report = fitted
    cfg = replace(HeadlineConfig(), judge=str(folder))
    assert judge_folders(adapter, tmp_path / "work", cfg.judge) == [folder]
    with pytest.raises(ConfigError, match="musicrfm mini judge"):  # SMALL is not the default recipe
        check_judge(cfg, adapter)
    with pytest.raises(ConfigError, match="no timbre judge"):
        check_judge(replace(cfg, judge=str(tmp_path)), adapter)
    with pytest.raises(ConfigError, match="note-set-classifier"):
        check_judge(replace(cfg, instrument_reference=False), adapter)
    monkeypatch.setattr(judge_mod, "REFERENCE_NOTES", SMALL["notes"])
    monkeypatch.setattr(judge_mod, "REFERENCE_RHYTHMS", SMALL["rhythms"])
    check_judge(cfg, adapter)  # found: no error

    from musicrfm.experiments.demo.stages import instrument_adherence

    frame = pd.DataFrame({"prompt": ["violin"]})
    rec = {"_audio": np.zeros(8000, np.float32), "_sr": 8000, "prompt": "violin"}
    _, info = instrument_adherence(None, frame, [rec], 0, adapter=adapter, reference=True,
                                   judge_folders=judge_folders(adapter, tmp_path, cfg.judge))  # fmt: skip
    assert info["classifier_test_accuracy"] == report["test_accuracy"]
    assert info["polyphonic"] is False


def test_cli_refuses_a_judge_folder_without_a_judge_before_loading(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "headline", "--model", "no/such-model",
         "--judge", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "instrument_judge.json" in proc.stderr and "Traceback" not in proc.stderr
    assert "musicrfm mini judge" in proc.stderr
