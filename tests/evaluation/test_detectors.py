"""Model-independent detectors on numpy-synthesised signals whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm.errors import AudioError, ConfigError
from musicrfm.evaluation import detectors as det

SR = det.SAMPLE_RATE


@pytest.mark.parametrize("midi", [38, 49, 62, 75, 88])
def test_note_pitch_class_across_octaves(midi: int) -> None:
    d = det.detect_note(det.harmonic_tone(midi, 1.5), SR)
    assert d.label == det.PITCH_CLASSES[midi % 12]
    assert 0.5 < d.confidence <= 1.0
    assert d.probs is not None and d.probs.shape == (12,)
    assert np.isclose(d.probs.sum(), 1.0)
    assert set(d.trace_labels) == {d.label}
    assert d.trace_probs is not None and d.trace_probs.shape == (len(d.times), 12)


def test_note_is_not_fooled_by_a_strong_fifth_partial_pattern() -> None:
    # a tone whose 3rd partial (the fifth) is as loud as the fundamental is still its root
    d = det.detect_note(det.harmonic_tone(57, 1.0, rolloff=0.95), SR)
    assert d.label == "A"


def test_note_wrong_sample_rate_is_resampled_and_stereo_is_mixed() -> None:
    y = det.harmonic_tone(64, 1.0, sr=44100)
    stereo = np.stack([y, y])
    d = det.detect_note(stereo, 44100)
    assert d.label == "E"
    d2 = det.detect_note(stereo.T.copy(), 44100)
    assert d2.label == "E"


def test_note_trace_follows_a_change_of_note() -> None:
    y = np.concatenate([det.harmonic_tone(60, 2.0), det.harmonic_tone(67, 2.0)])
    d = det.detect_note(y, SR, window_s=0.5, hop_s=0.5)
    first, last = d.trace_labels[0], d.trace_labels[-1]
    assert (first, last) == ("C", "G")
    # the crossover happens near 2 s
    change = d.times[[lab == "G" for lab in d.trace_labels].index(True)]
    assert 1.5 <= change <= 2.6


@pytest.mark.parametrize("method", ["pyin", "cqt"])
def test_note_with_pitch_tracker_backends(method: str) -> None:
    d = det.detect_note(det.harmonic_tone(57, 1.0), SR, method=method)
    assert d.label == "A"
    assert d.details["method"] == method
    assert abs(d.details["midi"] - 57) < 0.6
    assert d.trace_values is not None


def test_pluggable_tracker_and_unknown_tracker() -> None:
    class Fixed:
        name = "fixed"

        def track(self, y: np.ndarray, sr: int) -> det.PitchTrack:
            n = 20
            return det.PitchTrack(
                np.arange(n) * 0.05, np.full(n, 440.0 * 2 ** (2 / 12)), np.ones(n)
            )

    det.register_pitch_tracker("fixed", Fixed)
    assert det.detect_note(det.harmonic_tone(60, 1.0), SR, method="fixed").label == "B"
    with pytest.raises(ConfigError, match="unknown pitch tracker"):
        det.detect_note(det.harmonic_tone(60, 1.0), SR, method="nope")


def test_crepe_backend_fails_clearly_or_works() -> None:
    try:
        import torchcrepe  # noqa: F401
    except Exception:
        with pytest.raises(ConfigError, match="torchcrepe"):
            det.detect_note(det.harmonic_tone(60, 0.5), SR, method="crepe")
    else:  # pragma: no cover - only where torchcrepe imports
        assert det.detect_note(det.harmonic_tone(60, 1.0), SR, method="crepe").label == "C"


@pytest.mark.parametrize("quality", det.CHORD_QUALITIES)
@pytest.mark.parametrize("root", [48, 57])
def test_chord_quality_and_root(quality: str, root: int) -> None:
    notes = [root + i for i in det.CHORD_INTERVALS[quality]]
    d = det.detect_chord(det.harmonic_tone(notes, 1.0), SR)
    assert d.label == quality
    detected_root = det.PITCH_CLASSES.index(d.details["root"])
    if quality == "augmented":  # symmetric: root defined up to a major third
        assert (detected_root - root) % 4 == 0
    else:
        assert detected_root == root % 12
    # the four qualities and "no chord" share the probability (a triad is not one note)
    assert d.probs is not None and d.probs.sum() > 0.99
    assert np.isclose(d.probs.sum() + d.details["no_chord_prob"], 1.0, atol=1e-5)
    assert d.confidence == pytest.approx(d.probs[det.CHORD_QUALITIES.index(quality)])


def test_chord_inversion_keeps_quality() -> None:
    # E minor in first inversion: G3 B3 E4
    d = det.detect_chord(det.harmonic_tone([55, 59, 64], 1.0), SR)
    assert (d.label, d.details["root"]) == ("minor", "E")


def test_chord_templates_are_unit_norm_and_distinct() -> None:
    names, t = det.chord_templates()
    assert len(names) == 48 and t.shape == (48, 12)
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0)
    # 36 distinct major/minor/diminished; the 12 augmented collapse to 4 by symmetry
    assert len({tuple(np.round(r, 6)) for r in t}) == 40


@pytest.mark.parametrize("semis", [1, 4, 7, 11, 12])
def test_melodic_interval_up_and_down(semis: int) -> None:
    up = det.detect_interval(det.note_sequence([60, 60 + semis] * 2, 0.5), SR)
    assert up.label == str(semis)
    assert up.details["direction"] == "up" and up.details["semitones"] == semis
    down = det.detect_interval(det.note_sequence([62 + semis, 62] * 2, 0.5), SR)
    assert down.label == str(semis)
    assert down.details["direction"] == "down"
    assert len(up.trace_labels) == len(up.times) > 2


@pytest.mark.parametrize("semis", [1, 3, 6, 9, 12])
def test_harmonic_interval(semis: int) -> None:
    d = det.detect_interval(det.harmonic_tone([52, 52 + semis], 1.0), SR, mode="harmonic")
    assert d.label == str(semis)


def test_interval_bad_mode() -> None:
    with pytest.raises(ConfigError, match="mode"):
        det.detect_interval(det.harmonic_tone(60, 0.5), SR, mode="sideways")


@pytest.mark.parametrize("bpm", [70, 100, 135])
def test_tempo_of_click_tracks(bpm: float) -> None:
    d = det.detect_tempo(det.click_track(bpm, 6.0), SR)
    assert det.tempo_match(d.details["bpm"], bpm)
    assert d.confidence > 0.8
    assert d.trace_values is not None and len(d.trace_values) == len(d.times)
    assert det.SILENT not in d.trace_labels[1:-1]


def test_tempo_match_octave_tolerance() -> None:
    assert det.tempo_match(121, 120)
    assert not det.tempo_match(126, 120)
    assert not det.tempo_match(60, 120)
    assert det.tempo_match(60, 120, factors=det.OCTAVE_FACTORS)
    assert det.tempo_match(181, 60, factors=det.OCTAVE_FACTORS)
    assert not det.tempo_match(90, 120, factors=det.OCTAVE_FACTORS)
    assert not det.tempo_match(float("nan"), 120)


@pytest.mark.parametrize("concept", det.CONCEPTS)
def test_silent_audio_is_labelled_silent_or_raises(concept: str) -> None:
    quiet = np.zeros(SR, dtype=np.float32)
    d = det.detect(quiet, SR, concept)
    assert d.label == det.SILENT and d.confidence == 0.0 and d.silent
    assert not det.label_matches(concept, d.label, "C" if concept == "notes" else "1")
    with pytest.raises(AudioError, match="silent"):
        det.detect(quiet, SR, concept, on_silent="raise")


def test_silent_window_in_trace() -> None:
    y = np.concatenate([det.harmonic_tone(60, 1.0), np.zeros(SR, dtype=np.float32)])
    d = det.detect_note(y, SR, window_s=0.5, hop_s=0.5)
    assert d.trace_labels[0] == "C" and d.trace_labels[-1] == det.SILENT


def test_bad_audio_raises_audio_error(tmp_path) -> None:
    with pytest.raises(AudioError, match="empty"):
        det.detect_note(np.zeros(0), SR)
    with pytest.raises(AudioError, match="NaN"):
        det.detect_note(np.full(100, np.nan), SR)
    with pytest.raises(AudioError, match="sample rate"):
        det.detect_note(np.ones(100), 0)
    with pytest.raises(AudioError, match="not found"):
        det.load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioError, match="cannot read"):
        det.load_audio(bad)


def test_detect_file_and_dispatch(tmp_path) -> None:
    import soundfile as sf

    path = tmp_path / "a.wav"
    sf.write(path, det.harmonic_tone(70, 1.0, sr=16000), 16000)
    d = det.detect_file(path, "note")
    assert d.label == "A#"
    assert d.to_dict()["label"] == "A#"
    with pytest.raises(ConfigError, match="no detector"):
        det.detect(np.ones(10), SR, "timbre")


def test_label_matching_rules() -> None:
    assert det.label_matches("notes", "C#", "Db")
    assert not det.label_matches("notes", "C", "C#")
    assert det.label_matches("chords", "minor", "Minor")
    assert det.label_matches("intervals", "7", -7)
    assert det.label_matches("tempos", "61", "120", factors=det.OCTAVE_FACTORS)
    with pytest.raises(ConfigError, match="pitch class"):
        det.normalize_pitch_class("H")


# ----------------------------------------------------------------------------- validation + CLI


def _tiny_folder(root, *, wrong_note: bool = False):
    """A labelled folder in the synth manifest format, from numpy signals."""
    import pandas as pd
    import soundfile as sf

    sr = 16000
    rows = []

    def add(name: str, audio: np.ndarray, **fields) -> None:
        sf.write(root / name, audio, sr)
        rows.append({"path": name, **fields})

    for i, midi in enumerate([50, 61, 72]):
        label = det.PITCH_CLASSES[(midi + (1 if wrong_note and i == 0 else 0)) % 12]
        add(
            f"n{i}.wav",
            det.harmonic_tone(midi, 1.0, sr),
            concept="notes",
            label=label,
            octave=midi // 12,
            program=0,
        )
    for i, (root_midi, quality) in enumerate([(48, "major"), (53, "diminished")]):
        notes = [root_midi + k for k in det.CHORD_INTERVALS[quality]]
        add(
            f"c{i}.wav",
            det.harmonic_tone(notes, 1.0, sr),
            concept="chords",
            label=quality,
            quality=quality,
            root=det.PITCH_CLASSES[root_midi % 12],
        )
    add(
        "i0.wav",
        det.note_sequence([60, 67] * 2, 0.5, sr),
        concept="intervals",
        label="P5",
        semitones=7,
        play_style="up",
    )
    add(
        "i1.wav",
        det.harmonic_tone([60, 64], 1.0, sr),
        concept="intervals",
        label="M3",
        semitones=4,
        play_style="unison",
    )
    add("t0.wav", det.click_track(100, 5.0, sr), concept="tempos", label="100", bpm=100)
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root


def test_validate_detectors_on_a_labelled_folder(tmp_path) -> None:
    from musicrfm.evaluation.validation import validate_detectors

    summary, per_clip = validate_detectors(_tiny_folder(tmp_path), n_boot=100)
    assert per_clip["correct"].all(), per_clip[~per_clip["correct"]]
    tonal = summary[summary.task == "pitch class (tonal)"].iloc[0]
    assert tonal.n == 3 and tonal.accuracy == 1.0 and tonal.meets_target
    assert set(summary.concept) == {"notes", "chords", "intervals", "tempos"}


def test_cli_evaluate_detectors_and_audio(tmp_path, capsys) -> None:
    from musicrfm.cli import main

    data = _tiny_folder(tmp_path)
    out = tmp_path / "out"
    assert (
        main(["evaluate", "detectors", "--data", str(data), "--out", str(out), "--no-progress"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "| notes | pitch class (tonal) | chroma |" in printed
    assert {"detectors.csv", "detectors.md", "per_clip.csv"} <= {p.name for p in out.iterdir()}
    assert (
        main(
            ["evaluate", "audio", str(data / "n1.wav"), str(data / "c1.wav"), "--concept", "notes"]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split("\t")[1] == "C#"
    assert (
        main(
            ["evaluate", "audio", str(data / "c1.wav"), "--concept", "chords", "--json", "--trace"]
        )
        == 0
    )
    assert '"label": "diminished"' in capsys.readouterr().out
    assert main(["evaluate", "audio", str(tmp_path / "none.wav"), "--concept", "notes"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", "audio", str(data / "n1.wav"), "--concept", "timbre"]) == 2


def test_cli_detectors_fails_when_a_target_is_missed(tmp_path, capsys) -> None:
    from musicrfm.cli import main

    data = _tiny_folder(tmp_path, wrong_note=True)  # one of three notes is mislabelled: 0.67 < 0.95
    assert (
        main(["evaluate", "detectors", "--data", str(data), "--concepts", "notes", "--no-progress"])
        == 1
    )
    assert "False" in capsys.readouterr().out
    assert (
        main(["evaluate", "detectors", "--data", str(tmp_path / "nothing"), "--no-progress"]) == 2
    )


def test_detectors_on_rendered_synth_clips(tmp_path) -> None:
    from musicrfm import synth
    from musicrfm.evaluation.validation import validate_detectors

    synth.generate_dataset("notes", tmp_path, octaves=[3, 4, 5], limit_per_class=1, seed=1)
    synth.generate_dataset("chords", tmp_path, limit_per_class=2, seed=1)
    summary, _ = validate_detectors(tmp_path, concepts=["notes", "chords"], n_boot=100)
    acc = summary.set_index("task")["accuracy"]
    assert acc["pitch class (tonal)"] >= 11 / 12
    assert acc["quality"] >= 6 / 8


def test_score_row_for_a_results_table() -> None:
    row = det.score(det.harmonic_tone(62, 1.0), SR, "notes", "D")
    assert row["correct"] and row["label"] == "D" and row["target_prob"] > 0.5
    miss = det.score(det.harmonic_tone(62, 1.0), SR, "notes", "F#")
    assert not miss["correct"] and miss["target_prob"] < 0.1
    chord = det.score(det.harmonic_tone([57, 60, 64], 1.0), SR, "chords", "minor")
    assert chord["correct"] and chord["root"] == "A"
    tempo = det.score(det.click_track(90, 5.0), SR, "tempos", 180)  # half tempo still counts
    assert tempo["correct"] and np.isnan(tempo["target_prob"])
    silent = det.score(np.zeros(SR), SR, "notes", "C")
    assert silent["silent"] and not silent["correct"]


@pytest.mark.parametrize(
    ("concept", "label", "target", "hit"),
    [("chords", "minor", "C:min", True), ("chords", "minor", "min", True),
     ("chords", "minor", "Cm", True), ("chords", "major", "Cm", False),
     ("chords", "diminished", "°", True), ("intervals", "5", "P4", True),
     ("intervals", "-5", "perfect fourth", True), ("intervals", "7", "P4", False),
     ("intervals", "3", "-3", True)],
)  # fmt: skip
def test_targets_match_as_users_write_them(concept, label, target, hit):
    assert det.label_matches(concept, label, target) is hit


def _held_note(seconds: float = 4.0, f0: float = 261.63) -> np.ndarray:
    """One struck note that rings for the whole clip (a plucked string's decay, 4 partials)."""
    t = np.arange(int(seconds * SR)) / SR
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    return (0.3 * tone * np.exp(-t / 2.0) * np.minimum(t / 0.005, 1.0)).astype(np.float32)


def test_a_held_note_has_no_pulse_and_a_click_track_has_one() -> None:
    held = det.detect_tempo(_held_note(), SR)
    assert held.details["onsets"] < det.MIN_PULSE_ONSETS and held.details["pulse"] is False
    clicks = det.detect_tempo(det.click_track(100, 4.0), SR)
    assert clicks.details["onsets"] >= 5 and clicks.details["pulse"] is True


def test_a_held_note_is_labelled_no_pulse_and_matches_no_tempo() -> None:
    """The beat tracker reads a held note near 120 BPM; the label must not match 120 there."""
    held = det.detect(_held_note(), SR, "tempos")
    assert held.label == det.NO_PULSE and np.isfinite(held.details["bpm"])
    assert not any(det.label_matches("tempos", held.label, bpm) for bpm in (60, 80, 120, 160))
    row = det.score(_held_note(), SR, "tempos", 120)
    assert row["correct"] is False and row["pulse"] is False and row["label"] == det.NO_PULSE
    clicks = det.score(det.click_track(120, 4.0), SR, "tempos", 120)
    assert clicks["correct"] is True and clicks["pulse"] is True and clicks["label"] != det.NO_PULSE
    held_bin = det.detect(_held_note(), SR, "tempo_bins")
    assert held_bin.label == det.NO_PULSE and held_bin.confidence == 0.0
    assert not det.label_matches("tempo_bins", held_bin.label, "medium")
    assert det.detect(det.click_track(120, 4.0), SR, "tempo_bins").label == "medium"


def test_a_steady_tone_without_an_attack_has_no_pulse_at_any_loudness() -> None:
    t = np.arange(4 * SR) / SR
    for amp in (0.3, 0.03):
        tone = (amp * np.sin(2 * np.pi * 220 * t) * np.exp(-t / 2.0)).astype(np.float32)
        assert det.detect_tempo(tone, SR).details["pulse"] is False
    quiet_clicks = det.detect_tempo(0.1 * det.click_track(100, 4.0), SR)
    assert quiet_clicks.details["pulse"] is True
