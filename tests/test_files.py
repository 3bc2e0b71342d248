"""Atomic writes and output checks: unique temporary names, usual permissions, nothing left over."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from musicrfm import files
from musicrfm.errors import ConfigError
from musicrfm.files import (
    check_writable,
    read_config,
    save_tensors_atomic,
    temp_path,
    write_atomic,
    write_text_atomic,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_concurrent_saves_of_one_file_never_collide(tmp_path: Path) -> None:
    """Two writers of the same output used to share one '.tmp' name; now each has its own."""
    target = tmp_path / "out.json"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(30):
                write_text_atomic(target, f"{k}-{i}\n" * 200)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = target.read_text().splitlines()
    assert len(text) == 200 and len(set(text)) == 1  # one whole write, not a mix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_temp_names_are_unique_and_keep_the_suffix(tmp_path: Path) -> None:
    a, b = temp_path(tmp_path / "x.flac"), temp_path(tmp_path / "x.flac")
    assert a != b and a.name.startswith(".x.") and a.name.endswith(".flac.part")


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    def full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "x.wav", full)
    assert list(tmp_path.iterdir()) == []


def test_safetensors_get_the_same_mode_as_json(tmp_path: Path) -> None:
    st = save_tensors_atomic(tmp_path / "v.safetensors", {"v": torch.zeros(3)})
    js = write_text_atomic(tmp_path / "v.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert _mode(st) == _mode(js) == 0o666 & ~mask


def test_check_writable_names_what_is_wrong_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        check_writable(tmp_path / "afile" / "sub" / "x.wav")
    with pytest.raises(ConfigError, match="adir is a folder; give a file name"):
        check_writable(tmp_path / "adir")
    with pytest.raises(ConfigError, match="afile is a file; give a folder"):
        check_writable(tmp_path / "afile", folder=True)
    assert check_writable(tmp_path / "new" / "deeper", folder=True) == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not created

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: usage(10, 9, 1000))
    with pytest.raises(ConfigError, match="not enough disk space.*1.0 MB needed"):
        check_writable(tmp_path / "x.wav", need_bytes=1 << 20)

    real_open = open

    def read_only(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202
        if "write-probe" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(ConfigError, match="Read-only file system"):
        check_writable(tmp_path / "x.wav")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


def test_read_config_names_a_folder_and_a_non_utf8_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        read_config(tmp_path, what="plan")
    bad = tmp_path / "p.toml"
    bad.write_bytes(b"\xff\xfe seed = 1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config(bad, what="plan")


def test_features_probes_and_judges_are_saved_atomically_with_the_usual_modes(
    tmp_path: Path,
) -> None:
    """FeatureSet, RFM and the instrument judge write through `write_atomic` (was: a shared
    `.tmp` name and safetensors' 0600)."""
    import numpy as np
    import pandas as pd

    from musicrfm.capture.features import FeatureSet
    from musicrfm.evaluation.instrument.classifier import InstrumentClassifier
    from musicrfm.probes.rfm import RFM

    want = _mode(write_text_atomic(tmp_path / "ref.json", "{}"))
    fs = FeatureSet(torch.randn(2, 6, 4), pd.DataFrame({"label": list("abcabc")}), meta={})
    folder = fs.save(tmp_path / "feats")
    X, y = torch.randn(12, 4), torch.randint(0, 2, (12,)).float()
    rfm = RFM(iters=1).fit(X, y, X, y)
    base = rfm.save(tmp_path / "probe")
    from musicrfm.evaluation.instrument.features import FEATURE_NAMES

    d = len(FEATURE_NAMES)
    judge = InstrumentClassifier(
        ("a", "b"), np.zeros((2, d)), np.zeros(2), np.zeros(d), np.ones(d), "label"
    )
    saved = judge.save(tmp_path / "judge")
    written = [*folder.iterdir(), base.with_suffix(".safetensors"), base.with_suffix(".json")]
    written += [saved, saved.with_suffix(".json")]
    assert {p.name for p in folder.iterdir()} == {
        "features.safetensors",
        "rows.parquet",
        "meta.json",
    }
    assert all(_mode(p) == want for p in written), {p.name: oct(_mode(p)) for p in written}
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name or p.suffix == ".tmp"]
    assert torch.equal(FeatureSet.load(folder).features, fs.features)
