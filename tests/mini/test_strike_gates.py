"""The strike-recipe (polyphonic testbed) gates: the judge, the verdicts and the card."""

from __future__ import annotations

import pytest

SR = 16_000


def test_judge_strike_reads_each_concept_with_its_detector() -> None:
    """Rendered originals are judged right on their concept's figure and on tempo; a clip that
    plays something else is judged wrong."""
    from dataclasses import replace

    from musicrfm.mini.strike_gates import judge_strike
    from musicrfm.synth.notes import render_clips
    from musicrfm.synth.strikes import StrikeClip

    clips = [
        StrikeClip.triad(0, 60, "minor", 1, bpm=100),
        StrikeClip.interval(0, 55, 7, "harmonic", bpm=120),
        StrikeClip.interval(0, 55, 4, "up", bpm=90),
        StrikeClip.note(0, 62, bpm=80),
    ]
    audio = render_clips(clips, sampling_rate=SR)
    rows = [judge_strike(c, y, SR) for c, y in zip(clips, audio)]
    assert rows[0]["quality"] and rows[0]["root"] and rows[0]["root_aug_mod_M3"]
    assert rows[1]["harmonic_interval"] and rows[2]["melodic_interval"] and rows[3]["pitch_class"]
    assert all(r["tempo"] for r in rows)
    # the same audio judged against labels it does not play
    wrong = [
        replace(clips[0], notes=(60, 64, 67), inversion=0),
        replace(clips[3], notes=(66,), bpm=160.0),
    ]
    assert not judge_strike(wrong[0], audio[0], SR)["quality"]
    bad = judge_strike(wrong[1], audio[3], SR)
    assert not bad["pitch_class"] and not bad["tempo"]


def test_augmented_roots_count_up_to_a_major_third_only_in_the_gate_figure() -> None:
    from musicrfm.mini.strike_gates import judge_strike
    from musicrfm.synth.notes import render_clips
    from musicrfm.synth.strikes import StrikeClip

    clips = [StrikeClip.triad(0, 60, "augmented", inv, bpm=120) for inv in (0, 1, 2)]
    rows = [judge_strike(c, y, SR) for c, y in zip(clips, render_clips(clips, sampling_rate=SR))]
    assert all(r["quality"] and r["root_aug_mod_M3"] for r in rows)


@pytest.mark.parametrize(("k", "passed"), [(9, True), (8, False)])
def test_gate_table_verdicts_can_pass_and_fail(k: int, passed: bool) -> None:
    from musicrfm.mini.strike_gates import gate_table

    rows = [{"quality": i < k, "root": False, "root_aug_mod_M3": i < k} for i in range(10)]
    table = gate_table(rows)
    assert table["quality"]["passed"] is passed and table["root_aug_mod_M3"]["passed"] is passed
    assert "passed" not in table["root"]  # reported: no detector knows an augmented root
    assert table["quality"]["ci"][0] < k / 10 < table["quality"]["ci"][1]
    assert "tempo" not in table


def test_every_triad_shape_names_its_quality() -> None:
    from musicrfm.mini.strike_gates import _triad_shape
    from musicrfm.synth.strikes import StrikeClip
    from musicrfm.theory import CHORD_QUALITIES

    shapes = {tuple(sorted(v)): q for q, v in CHORD_QUALITIES.items()}
    for quality in CHORD_QUALITIES:
        for inv in (0, 1, 2):
            notes = StrikeClip.triad(0, 57, quality, inv).notes
            offsets = tuple(n - notes[0] for n in notes[1:])
            assert _triad_shape(offsets, shapes) == quality
    assert _triad_shape((7,), shapes) is None and _triad_shape((1, 2), shapes) is None


def test_spread_gate_fails_when_one_class_dominates() -> None:
    from musicrfm.mini.strike_gates import generation_spread
    from musicrfm.synth.notes import render_clips
    from musicrfm.synth.strikes import StrikeClip

    same = render_clips([StrikeClip.note(0, 60, bpm=120)] * 3, sampling_rate=SR, seconds=2.0)
    spread = generation_spread(same, SR)
    assert spread["notes"]["counts"] == {"C": 3}
    assert not spread["notes"]["passed"] and not spread["tempos"]["passed"]


def test_card_of_a_strike_model_shows_its_gates(tmp_path) -> None:
    """A strike model's card describes its clips, codec and gate tables (from gates.json)."""
    import json
    from dataclasses import asdict

    from musicrfm.mini.card import record_gates
    from musicrfm.mini.config import TrainConfig

    cfg = TrainConfig(data="strikes", codec="polyphonic", codec_fit_clips=1500, steps=10)
    (tmp_path / "training.json").write_text(
        json.dumps({"train_config": asdict(cfg), "train_clips": 10, "holdout_clips": 2})
    )
    entry = {"k": 9, "n": 10, "share": 0.9, "ci": [0.6, 0.98]}
    gates = {
        "command": "musicrfm mini gates --model x --seed 0", "seconds": 12.0,
        "summary": {"generated_clips": 4, "instrument_accuracy": 0.5, "instrument_chance": 0.25,
                    "instrument_passed": True, "seconds_per_clip_batched": 0.4},
        "codec": {"n": 10, "round_trip": {"quality": {**entry, "gate": 0.9, "passed": True},
                                          "tempo": {**entry, "share": 0.8, "gate": 0.9,
                                                    "passed": False}},
                  "original": {"quality": entry}, "tempo_by_concept": {"notes": {"k": 1, "n": 2}}},
        "generation": {"spread": {"chords": {"counts": {"major": 2, "minor": 2}, "max_share": 0.5,
                                             "limit": 0.5, "passed": True}}},
        "codebook_determinism": None,
    }  # fmt: skip
    card = record_gates(tmp_path, gates).read_text()
    assert card.startswith(f"# {tmp_path.name}")
    assert "triads (major, minor, augmented, diminished)" in card
    assert "musicrfm_polyphonic_codec" in card and "--data strikes --codec-fit-clips 1500" in card
    assert "| chord quality of triads | 9/10 0.900 [0.60, 0.98] |" in card
    assert "| tempo within 4% | 8/10" not in card and "| FAIL |" in card
    assert json.loads((tmp_path / "gates.json").read_text()) == gates


def test_onset_bpm_reads_the_period_of_the_onset_codebook() -> None:
    import numpy as np

    from musicrfm.mini.strike_gates import onset_bpm
    from musicrfm.models.codecs.polyphonic import _frames_since

    stages = _frames_since(np.arange(0, 200, 25), 200, cap=63)  # a strike every 25 frames
    assert onset_bpm(stages, 50.0) == pytest.approx(120.0)
    assert onset_bpm(_frames_since(np.array([3]), 50, cap=63), 50.0) == 0.0


def test_card_names_the_onset_codebook_and_its_tempo(tmp_path) -> None:
    import json
    from dataclasses import asdict

    from musicrfm.mini.card import record_gates
    from musicrfm.mini.config import TrainConfig

    cfg = TrainConfig(data="strikes", codec="polyphonic_onsets", steps=10)
    (tmp_path / "training.json").write_text(
        json.dumps({"train_config": asdict(cfg), "train_clips": 10, "holdout_clips": 2})
    )
    entry = {"k": 9, "n": 10, "share": 0.9, "ci": [0.6, 0.98]}
    share = {"k": 9, "n": 10, "share": 0.9}
    gates = {
        "command": "musicrfm mini gates --model x --seed 0", "seconds": 12.0,
        "summary": {"generated_clips": 4, "instrument_accuracy": 0.5, "instrument_chance": 0.25,
                    "instrument_passed": True, "seconds_per_clip_batched": 0.4},
        "codec": {"n": 10, "round_trip": {"quality": {**entry, "gate": 0.9, "passed": True}},
                  "original": {"quality": entry}, "tempo_by_concept": {"notes": {"k": 1, "n": 2}}},
        "generation": {"spread": {}},
        "codebook_determinism": {"chord_quality_from_codebook_1": share,
                                 "harmonic_interval_from_codebook_1": share,
                                 "pitch_class_from_codebook_0": share,
                                 "tempo_from_onsets": {"k": 7, "n": 10, "share": 0.7}},
    }  # fmt: skip
    card = record_gates(tmp_path, gates).read_text()
    assert "frames since the last onset" in card
    assert "the tempo is the onset codebook's (the last) period" in card and "7/10" in card


def test_rhythm_figure_tells_a_beat_from_a_held_sound() -> None:
    import numpy as np

    from musicrfm.mini.strike_gates import generation_rhythm
    from musicrfm.synth.notes import render_clips
    from musicrfm.synth.strikes import StrikeClip

    beat = render_clips([StrikeClip.note(0, 60, bpm=120)] * 2, sampling_rate=SR, seconds=3.0)
    t = np.arange(3 * SR) / SR
    held = (0.3 * np.sin(2 * np.pi * 262 * t))[None].astype(np.float32)
    rhythm = generation_rhythm(np.concatenate([beat, held]), SR)
    assert rhythm["regular"]["k"] == 2 and rhythm["regular"]["n"] == 3


def test_every_headline_concept_has_a_place_in_the_model_folder(tmp_path) -> None:
    """`mini headline --concept tempo_bins` crashed at the very end (KeyError) when it recorded
    its result in the card: every concept the verb accepts needs a file and a card section."""
    import json
    from pathlib import Path

    from musicrfm.experiments.headline.config import HEADLINE_CONCEPTS
    from musicrfm.mini.card import HEADLINE_FILES, _headline_lines

    assert set(HEADLINE_CONCEPTS) | {"tempos"} <= set(HEADLINE_FILES)
    assert len(set(HEADLINE_FILES.values())) == len(HEADLINE_FILES)
    repo = Path(__file__).resolve().parents[2]
    record = json.loads((repo / "docs/results/tempo-bins-testbed-beat/headline.json").read_text())
    (tmp_path / HEADLINE_FILES["tempo_bins"]).write_text(json.dumps(record))
    lines = _headline_lines(tmp_path)
    assert any("each tempo bin" in line for line in lines), lines[:3]
