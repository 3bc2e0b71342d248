"""Directions learned from strike clips (the polyphonic testbed's own kind of clip)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.stages import learn_note_directions, strike_dataset
from musicrfm.theory import PITCH_CLASSES


class _Adapter:
    sample_rate = 16000


def test_strike_dataset_draws_each_class_equally_and_caches(tmp_path):
    cfg = replace(DemoConfig.quick(), clips_per_class=2, train_set="strikes")
    ds = strike_dataset(_Adapter(), cfg, tmp_path, 0, False, "chords")
    counts = ds.rows["label"].astype(str).value_counts().to_dict()
    assert counts == {q: 2 for q in ("major", "minor", "augmented", "diminished")}
    assert set(ds.rows["root"].astype(str)) <= set(PITCH_CLASSES)
    again = strike_dataset(_Adapter(), cfg, tmp_path, 0, False, "chords")
    assert list(again.rows["path"]) == list(ds.rows["path"])  # same draw, same folder
    other = strike_dataset(_Adapter(), cfg, tmp_path / "s1", 1, False, "chords")
    assert list(other.rows["path"]) != list(ds.rows["path"])  # another seed, another draw


def test_unknown_training_set_or_concept_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown training set") as info:
        learn_note_directions(
            _Adapter(), replace(DemoConfig.quick(), train_set="hub"), tmp_path, progress=False
        )
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="no concept 'tempos'"):
        strike_dataset(_Adapter(), DemoConfig.quick(), tmp_path, 0, False, "tempos")
