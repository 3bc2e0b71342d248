"""The on-disk dataset: audio files plus one manifest table; load, filter and split.

A dataset folder holds audio files and ``manifest.csv`` (or ``manifest.parquet``) with one row per
clip and at least a ``path`` column (relative to the folder). Folders written by
:func:`musicrfm.synth.generate_dataset` also have ``concept``, ``label`` (the concept's primary
class as a string), one column per other label/parameter, ``duration``, ``sample_rate`` and
``seed``, plus ``dataset.json`` (options, counts, silent renders left out, library version).
Any user folder with a manifest that has a ``path`` column loads too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import write_atomic

MANIFEST_CSV = "manifest.csv"
MANIFEST_PARQUET = "manifest.parquet"
META_JSON = "dataset.json"
SPLITS = ("train", "val", "test")
# columns read back as strings whatever they look like (e.g. tempo labels "120", keys "C")
STRING_COLUMNS = (
    "path",
    "concept",
    "label",
    "time_signature",
    "midi_notes",
    "degrees",
    "inversion_figure",
)
_INT = re.compile(r"^[+-]?\d+$")


@dataclass
class SynthDataset:
    """A labelled audio dataset on disk.

    root: the dataset folder; ``rows``: the manifest as a DataFrame (index 0..n-1);
    ``meta``: the contents of ``dataset.json`` (empty for user folders without one).
    """

    root: Path
    rows: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if "path" not in self.rows.columns:
            raise DatasetError(f"manifest of {self.root} has no `path` column")
        self.rows = self.rows.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        concepts = sorted(self.rows["concept"].dropna().unique()) if "concept" in self.rows else []
        return f"SynthDataset(root={str(self.root)!r}, clips={len(self)}, concepts={concepts})"

    @property
    def concepts(self) -> list[str]:
        if "concept" not in self.rows:
            return []
        return list(dict.fromkeys(self.rows["concept"].dropna()))

    @property
    def labels(self) -> list[str]:
        """Distinct values of ``label`` in manifest order."""
        if "label" not in self.rows:
            raise DatasetError(f"manifest of {self.root} has no `label` column")
        return list(dict.fromkeys(self.rows["label"].astype(str)))

    def audio_path(self, i: int) -> Path:
        """Absolute path of row ``i``'s audio file."""
        return self.root / str(self.rows.at[int(i), "path"])

    def audio_paths(self) -> list[Path]:
        return [self.root / str(p) for p in self.rows["path"]]

    def load_audio(
        self, i: int, *, sample_rate: int | None = None, mono: bool = True
    ) -> np.ndarray:
        """Samples of row ``i`` as float32 (mono: shape (n,); else (n, channels)).

        Resampled with librosa when ``sample_rate`` differs from the file's rate.
        """
        import soundfile as sf

        path = self.audio_path(i)
        try:
            audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises its own error types
            raise DatasetError(f"cannot read audio {path}: {exc}") from exc
        if mono:
            audio = audio.mean(axis=1)
        if sample_rate is not None and sample_rate != sr:
            import librosa

            audio = librosa.resample(
                audio.T if not mono else audio, orig_sr=sr, target_sr=sample_rate
            )
            audio = audio if mono else audio.T
        return np.ascontiguousarray(audio, dtype=np.float32)

    def filter(self, **column_values: Any) -> SynthDataset:
        """Rows whose columns equal the given values (a list/tuple/set means any of them).

        ``ds.filter(concept="notes", octave=[3, 4, 5], instrument_family="piano")``
        """
        mask = pd.Series(True, index=self.rows.index)
        for column, value in column_values.items():
            if column not in self.rows.columns:
                raise DatasetError(
                    f"no column {column!r} in the manifest; columns: {', '.join(self.rows.columns)}"
                )
            col = self.rows[column]
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            hit = col.isin(values)
            if pd.api.types.is_numeric_dtype(col):  # "120" matches 120
                numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
                hit |= col.isin(numbers.dropna().tolist())
            else:  # 120 matches "120"
                hit |= col.astype(str).isin([str(v) for v in values])
            mask &= hit
        return SynthDataset(self.root, self.rows[mask].reset_index(drop=True), dict(self.meta))

    def split(
        self,
        train: float = 0.7,
        val: float = 0.15,
        test: float = 0.15,
        *,
        stratify: str | None = "label",
        seed: int = 0,
    ) -> SynthDataset:
        """A copy with a ``split`` column (``train``/``val``/``test``), stratified and seeded.

        Within each stratum the rows are shuffled with ``seed`` and cut by largest remainders,
        so every class gets its share (a class with one row goes to train).
        """
        fractions = _check_fractions(train, val, test)
        rows = self.rows.copy()
        if stratify is not None and stratify not in rows.columns:
            raise DatasetError(
                f"cannot stratify by {stratify!r}: no such column; columns: {', '.join(rows.columns)}"
            )
        groups = [np.arange(len(rows))] if stratify is None else _groups(rows[stratify])
        rng = np.random.default_rng(seed)
        split = np.empty(len(rows), dtype=object)
        for members in groups:
            order = members[rng.permutation(len(members))]
            counts = _apportion(len(order), fractions)
            start = 0
            for name, count in zip(SPLITS, counts):
                split[order[start : start + count]] = name
                start += count
        rows["split"] = split
        return SynthDataset(self.root, rows, dict(self.meta))

    def extrapolation_split(
        self, column: str = "bpm", *, train: float = 0.7, seed: int = 0
    ) -> SynthDataset:
        """A ``split`` column that holds out the extremes of a numeric column (SynTheory tempos).

        Rows are sorted by ``column``; the middle ``train`` share (by whole values, so a BPM never
        straddles two splits) is ``train``; the lowest and highest values together are shuffled
        with ``seed`` and halved into ``val`` and ``test``. A probe trained this way must
        extrapolate to unseen tempos.
        """
        if column not in self.rows.columns:
            raise DatasetError(f"no column {column!r} in the manifest")
        if not 0 < train < 1:
            raise ConfigError(f"train share must be in (0, 1), got {train}")
        rows = self.rows.copy()
        values = pd.to_numeric(rows[column], errors="coerce")
        if values.isna().any():
            raise DatasetError(f"column {column!r} is not numeric in every row")
        ends = (1.0 - train) / 2.0
        lo, hi = (
            values.quantile(ends, interpolation="lower"),
            values.quantile(1 - ends, interpolation="higher"),
        )
        held = ((values < lo) | (values > hi)).to_numpy()
        split = np.where(held, "", "train").astype(object)
        idx = np.flatnonzero(held)
        idx = idx[np.random.default_rng(seed).permutation(len(idx))]
        half = len(idx) // 2
        split[idx[:half]] = "val"
        split[idx[half:]] = "test"
        rows["split"] = split
        return SynthDataset(self.root, rows, dict(self.meta))

    def subset(self, split: str) -> SynthDataset:
        """Rows of one split (after :meth:`split` or :meth:`extrapolation_split`)."""
        if "split" not in self.rows:
            raise DatasetError("no `split` column: call .split() or .extrapolation_split() first")
        return self.filter(split=split)

    def save_manifest(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the rows (e.g. with a split column) as CSV, atomically."""
        target = Path(path) if path is not None else self.root / MANIFEST_CSV
        write_csv_atomic(self.rows, target)
        return target


def load_dataset(path: str | os.PathLike[str]) -> SynthDataset:
    """Open a dataset folder (or a manifest file) with a ``path`` column in its manifest."""
    p = Path(path).expanduser()
    if p.is_file():
        manifest, root = p, p.parent
    elif p.is_dir():
        root = p
        manifest = p / MANIFEST_CSV
        if not manifest.is_file() and (p / MANIFEST_PARQUET).is_file():
            manifest = p / MANIFEST_PARQUET
    else:
        raise DatasetError(f"no dataset at {str(p)!r} (neither a folder nor a manifest file)")
    if not manifest.is_file():
        raise DatasetError(
            f"{str(root)!r} has no {MANIFEST_CSV} or {MANIFEST_PARQUET}; "
            "make one with `musicrfm synth CONCEPT --out DIR` or write a manifest with a `path` column"
        )
    try:
        if manifest.suffix == ".parquet":
            rows = pd.read_parquet(manifest)
        else:
            rows = _infer_types(pd.read_csv(manifest, dtype=str, keep_default_na=True))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read manifest {manifest}: {exc}") from exc
    if "path" not in rows.columns:
        raise DatasetError(
            f"manifest {manifest} has no `path` column; columns: {', '.join(rows.columns)}"
        )
    meta: dict[str, Any] = {}
    meta_path = root / META_JSON
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {meta_path}: {exc}") from exc
    return SynthDataset(root, rows, meta)


def _infer_types(rows: pd.DataFrame) -> pd.DataFrame:
    """Column types from CSV text: integers stay integers even with gaps (other concepts' rows),
    True/False become booleans, label-like columns stay strings."""
    out = {}
    for col in rows.columns:
        text = rows[col]
        present = text.dropna()
        if col in STRING_COLUMNS or present.empty:
            out[col] = text
        elif present.map(lambda v: bool(_INT.match(v))).all():
            out[col] = text.astype("Int64") if text.isna().any() else text.astype("int64")
        elif present.isin(["True", "False"]).all():
            values = text.map({"True": True, "False": False})
            out[col] = values.astype("boolean") if text.isna().any() else values.astype(bool)
        else:
            numbers = pd.to_numeric(text, errors="coerce")
            out[col] = numbers if numbers.notna().sum() == len(present) else text
    return pd.DataFrame(out, index=rows.index)


def write_csv_atomic(rows: pd.DataFrame, path: Path) -> None:
    """CSV written to a temporary name and renamed, so readers never see half a file."""
    write_atomic(path, lambda tmp: rows.to_csv(tmp, index=False, lineterminator="\n"))


def _check_fractions(train: float, val: float, test: float) -> tuple[float, float, float]:
    fr = (float(train), float(val), float(test))
    if any(f < 0 for f in fr) or not np.isclose(sum(fr), 1.0, atol=1e-6):
        raise ConfigError(f"split fractions must be >= 0 and sum to 1, got {fr}")
    return fr


def _groups(column: pd.Series) -> Iterable[np.ndarray]:
    keys = column.astype(str).to_numpy()
    for key in sorted(set(keys)):
        yield np.flatnonzero(keys == key)


def _apportion(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Integer counts summing to ``n`` closest to ``n * fractions`` (largest remainders).

    Ties go to the earlier split, so a single row lands in train.
    """
    exact = [n * f for f in fractions]
    counts = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts
