"""CaptureOptions: checked values, the meta round trip, old folders, and a stable cache key."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from musicrfm.capture.cache import key_hash
from musicrfm.capture.extract import cache_key
from musicrfm.capture.options import CaptureOptions
from musicrfm.errors import ConfigError

INFO = {"model_id": "m", "revision": None, "fingerprint": "f", "dtype": "float32"}


def test_options_are_frozen_and_checked():
    o = CaptureOptions()
    with pytest.raises(FrozenInstanceError):
        o.pooling = "max"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="pooling"):
        CaptureOptions(pooling="median")
    with pytest.raises(ConfigError, match="batch_size"):
        CaptureOptions(batch_size=0)
    with pytest.raises(ConfigError, match="unknown capture options"):
        o.with_changes(poolng="max")
    assert o.with_changes(pooling="max", prompt=None) == CaptureOptions(pooling="max", prompt=None)
    assert o.clips_per_shard == 256 and o.with_changes(keep_frames=True).clips_per_shard == 32


def test_options_round_trip_through_json_meta():
    o = CaptureOptions(pooling="last", prompt=None, batch_size=3, keep_frames=True, shard_size=5)
    meta = json.loads(json.dumps({"options": o.to_dict()}))
    assert CaptureOptions(**meta["options"]) == o
    assert CaptureOptions.from_dict({**meta["options"], "from_a_later_version": 1}) == o
    assert CaptureOptions.from_meta(meta) == o


def test_options_of_a_folder_written_before_they_were_stored():
    old = {"pooling": "max", "prompt": None, "max_seconds": 10.0, "model_id": "m"}
    assert CaptureOptions.from_meta(old) == CaptureOptions(
        pooling="max", prompt=None, max_seconds=10.0
    )


def test_cache_key_content_is_unchanged():
    """Existing caches keep hitting only while the key holds exactly these entries."""
    key = cache_key(CaptureOptions(batch_size=2, shard_size=4), INFO, "abc")
    assert key == {
        "capture_version": 1,
        "model_id": "m",
        "revision": None,
        "fingerprint": "f",
        "dtype": "float32",
        "dataset_hash": "abc",
        "pooling": "mean",
        "prompt": "",
        "keep_frames": False,
        "max_seconds": 30.0,
        "truncate": False,
        "position_convention": "frame_t_at_position_t+1_bos_at_0_delay_tail_excluded",
    }
    # batching does not change the features, so it does not change the key
    assert key_hash(key) == key_hash(cache_key(CaptureOptions(), INFO, "abc"))
    assert key_hash(key) != key_hash(cache_key(CaptureOptions(pooling="max"), INFO, "abc"))
