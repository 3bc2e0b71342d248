"""The detector registry: one record per detector is all the package needs to use it."""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm.errors import ConfigError
from musicrfm.evaluation import detectors as det

SR = det.SAMPLE_RATE
LOUDNESS = ("quiet", "loud")


def detect_loudness(audio, sr, *, threshold_db: float = -40.0, window_s=0.5, hop_s=0.25):
    """A toy detector: is the clip louder than ``threshold_db``?"""
    y = det.prepare_audio(audio, sr)
    loud = det.rms_db(y) >= threshold_db
    probs = np.array([0.1, 0.9]) if loud else np.array([0.9, 0.1])
    return det.Detection(
        concept="loudness",
        label=LOUDNESS[int(loud)],
        confidence=float(probs.max()),
        classes=LOUDNESS,
        probs=probs,
        times=np.array([len(y) / SR / 2]),
        trace_labels=(LOUDNESS[int(loud)],),
        trace_probs=probs[None, :],
        details={"rms_db": det.rms_db(y), "window_s": window_s},
    )


@pytest.fixture
def loudness():
    record = det.register_detector(
        det.Detector(
            name="loudness",
            detect=detect_loudness,
            aliases=("level",),
            labels=LOUDNESS,
            row_details=("rms_db",),
            describe=lambda d: f" rms={d.details['rms_db']:.1f}",
        )
    )
    yield record
    det.unregister_detector("loudness")


def test_the_built_in_detectors_are_registered_in_order() -> None:
    assert (
        det.concepts()
        == det.CONCEPTS
        == (
            "notes",
            "chords",
            "intervals",
            "tempos",
            "tempo_bins",
            "lead",
            "keys",
            "scales",
            "time_signatures",
            "progressions",
        )
    )
    assert det.get_detector("pitch_class") is det.DETECTORS["notes"]
    assert det.concept_name("tempo") == "tempos"
    assert det.DETECTORS["chords"].labels == det.CHORD_QUALITIES
    assert not det.DETECTORS["tempos"].windowed
    assert det.DETECTORS["tempos"].score_options["factors"] == det.OCTAVE_FACTORS


def test_a_registered_toy_detector_is_scored_like_the_built_ins(loudness) -> None:
    tone = 0.5 * det.harmonic_tone(69, 1.0)
    assert "loudness" in det.concepts() and det.concept_name("level") == "loudness"
    assert det.detect(tone, SR, "level").label == "loud"
    row = det.score(tone, SR, "loudness", "LOUD", threshold_db=-30.0)
    assert row["correct"] and row["label"] == "loud" and row["target_prob"] == pytest.approx(0.9)
    assert "rms_db" in row and not row["silent"]
    quiet = det.score(1e-3 * det.harmonic_tone(69, 1.0), SR, "loudness", "loud")
    assert not quiet["correct"] and quiet["target_prob"] == pytest.approx(0.1)
    assert det.label_matches("loudness", "quiet", "Quiet")
    assert not det.label_matches("loudness", det.SILENT, "quiet")
    assert det.target_index("loudness", LOUDNESS, "LOUD") == 1


def test_the_sweep_config_and_scoring_accept_a_registered_detector(loudness) -> None:
    from musicrfm.experiments.sweep import config as sweep_config
    from musicrfm.experiments.sweep.grid import Condition, Term
    from musicrfm.experiments.sweep.scoring import _fine_trace, _score, _trace

    cfg = sweep_config.parse_config(
        {"concepts": {"level": {"directions": "dirs", "targets": ["loud"]}}}
    )
    assert cfg.concepts["level"].detector == "loudness"
    assert "loudness" in sweep_config.DETECTOR_CONCEPTS
    tone = 0.5 * det.harmonic_tone(69, 2.0)
    d = det.detect(tone, SR, "loudness")
    assert _score(d, "loudness", "loud")["correct"]
    cond = Condition(
        "crossfade", "concept", "level", "loud", 0.3, "default",
        [Term("level", "quiet", 0.3), Term("level", "loud", 0.3)],
    )  # fmt: skip
    fine = _fine_trace(tone, SR, d, cond, "loudness")
    assert fine.details["window_s"] == pytest.approx(0.25)  # 1/8 of the clip
    trace = _trace(fine, cond, "loudness")
    assert trace["trace_target"] == [pytest.approx(0.9)] and trace["trace_a"] == [
        pytest.approx(0.1)
    ]
    assert trace["end_correct"] and not trace["start_correct"]


def test_unregistered_and_duplicate_detectors_are_config_errors(loudness) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        det.register_detector(det.Detector(name="other", detect=detect_loudness, aliases=("note",)))
    det.unregister_detector("level")
    with pytest.raises(ConfigError, match="no detector"):
        det.detect(np.ones(10), SR, "loudness")
    from musicrfm.experiments.sweep.config import canonical_concept

    with pytest.raises(ConfigError, match="no independent detector"):
        canonical_concept("loudness")
    det.register_detector(loudness)  # the fixture removes it again


def test_the_cli_labels_audio_with_a_registered_detector(loudness, tmp_path, capsys) -> None:
    import argparse

    import soundfile as sf

    from musicrfm.commands import evaluate

    path = tmp_path / "a.wav"
    sf.write(path, 0.5 * det.harmonic_tone(69, 1.0, sr=16000), 16000)
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["evaluate", "audio", str(path), "--concept", "level"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "\tloud\t" in out and " rms=" in out
    args = parser.parse_args(["evaluate", "detectors", "--data", "x", "--concepts", "loudness"])
    assert args.concepts == ["loudness"]
