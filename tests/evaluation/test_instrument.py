"""The instrument/timbre classifier: training on a tiny labelled folder, save/load, adherence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicrfm.errors import CompatibilityError, ConfigError, DatasetError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.instrument import (
    FEATURE_NAMES,
    InstrumentClassifier,
    instrument_features,
    instrument_from_prompt,
    prompt_adherence,
    train_instrument_classifier,
)

SR = 16000
# two synthetic "families" with clearly different timbres
TIMBRES = {
    "piano": {"partials": 12, "rolloff": 0.9},  # bright
    "pipe": {"partials": 1, "rolloff": 0.5},  # pure sine, flute-like
}


def _timbre(family: str, midi: int, seconds: float = 0.6) -> np.ndarray:
    return det.harmonic_tone(midi, seconds, SR, **TIMBRES[family])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("timbres")
    rows = []
    for family in TIMBRES:
        for midi in range(55, 79, 2):
            path = f"{family}_{midi}.wav"
            sf.write(root / path, _timbre(family, midi), SR)
            rows.append(
                {"path": path, "concept": "notes", "label": "C", "instrument_family": family}
            )
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


def test_features_have_the_documented_size() -> None:
    f = instrument_features(_timbre("piano", 60), SR)
    assert f.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(f))


def test_train_predict_save_load_roundtrip(folder, tmp_path) -> None:
    clf, report = train_instrument_classifier(folder, test_fraction=0.25, seed=0)
    assert clf.classes == ("piano", "pipe")
    assert report["n"] == 24 and report["n_test"] == 6
    assert report["test_accuracy"] >= 5 / 6
    # unseen pitches, same timbres
    assert clf.predict([_timbre("piano", 80), _timbre("pipe", 53)], SR) == ["piano", "pipe"]
    stem = tmp_path / "clf" / "instrument"
    path = clf.save(stem)
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    assert b"pickle" not in path.read_bytes()[:200]
    again = InstrumentClassifier.load(path.with_suffix(".json"))
    x = [_timbre("pipe", 61), _timbre("piano", 70)]
    assert np.allclose(again.predict_proba(x, SR), clf.predict_proba(x, SR))
    d = again.classify(_timbre("piano", 64), SR)
    assert d.label == "piano" and 0.5 < d.confidence <= 1
    assert again.classify(np.zeros(SR), SR).label == det.SILENT


def test_training_is_seeded(folder) -> None:
    a, _ = train_instrument_classifier(folder, seed=3)
    b, _ = train_instrument_classifier(folder, seed=3)
    assert np.allclose(a.coef, b.coef)


def test_bad_training_data(folder, tmp_path) -> None:
    with pytest.raises(DatasetError, match="no 'program_name' column"):
        train_instrument_classifier(folder, label="program_name")
    one = tmp_path / "one"
    one.mkdir()
    sf.write(one / "a.wav", _timbre("piano", 60), SR)
    sf.write(one / "b.wav", _timbre("piano", 62), SR)
    pd.DataFrame({"path": ["a.wav", "b.wav"], "instrument_family": ["piano", "piano"]}).to_csv(
        one / "manifest.csv", index=False
    )
    with pytest.raises(DatasetError, match="at least 2"):
        train_instrument_classifier(one)


def test_load_errors(tmp_path, folder) -> None:
    with pytest.raises(ConfigError, match="no instrument classifier"):
        InstrumentClassifier.load(tmp_path / "missing")
    clf, _ = train_instrument_classifier(folder, test_fraction=0)
    path = clf.save(tmp_path / "m")
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["features"] = meta["features"][:-1]
    side.write_text(json.dumps(meta))
    with pytest.raises(CompatibilityError, match="different features"):
        InstrumentClassifier.load(path)
    with pytest.raises(CompatibilityError, match="do not fit"):
        InstrumentClassifier(("a",), np.zeros((2, 3)), np.zeros(2), np.zeros(3), np.ones(3))


@pytest.mark.parametrize(
    ("prompt", "family"),
    [
        ("A calm solo cello melody", "strings"),
        ("funky bass guitar groove", "bass"),
        ("lofi piano with vinyl crackle", "piano"),
        ("cinematic string ensemble", "ensemble"),
        ("two electric guitars", "guitar"),
        ("jazz saxophone solo", "reed"),
        ("drum and bass beat", "bass"),
        ("ambient noise", None),
    ],
)
def test_instrument_from_prompt(prompt: str, family: str | None) -> None:
    assert instrument_from_prompt(prompt) == family


def test_prompt_adherence(folder) -> None:
    clf, _ = train_instrument_classifier(folder, test_fraction=0)
    out = prompt_adherence(
        clf,
        [_timbre("piano", 66), _timbre("pipe", 66), _timbre("pipe", 70)],
        SR,
        ["solo piano", "solo piano", "ambient texture"],
    )
    assert out["match"].iloc[0] == 1.0 and out["match"].iloc[1] == 0.0
    assert np.isnan(out["match"].iloc[2]) and pd.isna(out["expected"].iloc[2])
    with pytest.raises(ConfigError, match="prompts"):
        prompt_adherence(clf, [_timbre("piano", 60)], SR, ["a", "b"])


def test_cli_trains_and_saves(folder, tmp_path, capsys) -> None:
    from musicrfm.cli import main

    stem = tmp_path / "models" / "instrument"
    assert main(["evaluate", "instrument", "--data", str(folder), "--out", str(stem)]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "n_test=6" in out
    clf = InstrumentClassifier.load(stem)
    assert clf.meta["n"] == 24 and clf.label_column == "instrument_family"
    assert (
        main(["evaluate", "instrument", "--data", str(tmp_path / "none"), "--out", str(stem)]) == 2
    )


def test_mlp_model_roundtrip(folder, tmp_path) -> None:
    clf, report = train_instrument_classifier(folder, model="mlp", hidden_sizes=(32,), seed=0)
    assert len(clf.hidden) == 1 and clf.hidden[0][0].shape == (32, len(FEATURE_NAMES))
    assert report["test_accuracy"] >= 5 / 6
    again = InstrumentClassifier.load(clf.save(tmp_path / "mlp"))
    x = [_timbre("pipe", 61), _timbre("piano", 70)]
    assert np.allclose(again.predict_proba(x, SR), clf.predict_proba(x, SR))
    assert again.predict(x, SR) == ["pipe", "piano"]
    with pytest.raises(ConfigError, match="model must be"):
        train_instrument_classifier(folder, model="forest")


def test_augmented_training_knows_the_transformed_sound(folder) -> None:
    """A 'codec' that strips the bright partials (a low-pass) makes pianos sound like pipes to a
    classifier trained on clean clips only; adding the transformed copies fixes that."""
    from scipy.signal import butter, sosfilt

    sos = butter(8, 500, fs=SR, output="sos")

    def dull(clips):
        return [(sosfilt(sos, a).astype(np.float32), sr) for a, sr in clips]

    plain, _ = train_instrument_classifier(folder, seed=0)
    aug, report = train_instrument_classifier(folder, seed=0, augment=dull)
    probes = [(_timbre(f, m), f) for f in TIMBRES for m in (57, 63, 69, 75)]
    dulled = dull([(a, SR) for a, _ in probes])
    truth = [f for _, f in probes]
    acc = {
        name: np.mean(np.array(clf.predict([a for a, _ in dulled], SR)) == truth)
        for name, clf in (("plain", plain), ("augmented", aug))
    }
    assert acc["augmented"] >= 0.85 and acc["plain"] <= 0.75, acc
    assert report["test_accuracy_augmented"] >= 5 / 6
    assert aug.meta["augmented"] and not plain.meta["augmented"]
    assert aug.predict([a for a, _ in probes], SR) == truth  # still knows clean clips


def test_fit_from_clips_matches_the_folder_route_and_checks_its_input(folder) -> None:
    """fit_instrument_classifier takes clips in memory; the folder route is a thin wrapper."""
    from musicrfm.evaluation.instrument import fit_instrument_classifier

    manifest = pd.read_csv(folder / "manifest.csv")
    clips = [det.load_audio(folder / p) for p in manifest["path"]]
    direct, rep_direct = fit_instrument_classifier(clips, manifest["instrument_family"], seed=1)
    via, rep_via = train_instrument_classifier(folder, seed=1)
    assert np.allclose(direct.coef, via.coef) and rep_direct["n_test"] == rep_via["n_test"]
    assert via.meta["trained_on"] == str(folder) and "trained_on" not in direct.meta
    with pytest.raises(ConfigError, match="24 clips but 23 labels"):
        fit_instrument_classifier(clips, manifest["instrument_family"][:-1])
    with pytest.raises(DatasetError, match="at least 2"):
        fit_instrument_classifier(clips, ["piano"] * len(clips))


def test_reference_clips_cover_every_prompt_instrument_in_every_rhythm() -> None:
    """The reference set behind the headline's adherence: each demo prompt's family is a label,
    every note asked for, each rhythm; a clip's strikes follow its rhythm."""
    from musicrfm.evaluation.judges import reference_instrument_clips
    from musicrfm.experiments.demo.config import PROMPT_INSTRUMENTS

    clips, families = reference_instrument_clips(SR, rhythms=((4, 0.9), (1, 1.0)), notes=(60, 61))
    assert len(clips) == len(families) == 12 * 2 * 2
    assert {instrument_from_prompt(p) for p in PROMPT_INSTRUMENTS} == set(families)
    assert all(sr == SR and a.shape == (4 * SR,) for a, sr in clips)
    flute = [a for (a, _), f in zip(clips, families) if f == "pipe"]

    def dip(a: np.ndarray) -> float:  # quietest 10 ms just before the second beat, vs the loudest
        rms = np.sqrt((a.reshape(-1, SR // 100) ** 2).mean(1))
        return float(rms[90:100].min() / rms.max())

    assert dip(flute[0]) < 0.3 < 0.5 < dip(flute[1])  # struck 4 times / held through
