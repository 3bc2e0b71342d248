"""Labelled audio collections for capture: a manifest's rows and the audio file of each row.

`read_clip_table` accepts what users have at hand (a dataset folder, a manifest file, a
DataFrame, a dataset object) and returns one `ClipTable`, whose content hash is part of the
feature cache key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from musicrfm.errors import DatasetError


@dataclass
class ClipTable:
    """A labelled audio collection: manifest rows + resolved audio paths."""

    rows: pd.DataFrame
    paths: list[Path]
    root: Path | None = None
    name: str = "clips"

    def manifest_hash(self) -> str:
        """Hash of the manifest content and of each audio file's size and mtime."""
        h = hashlib.sha256()
        h.update(self.rows.to_csv(index=False).encode())
        for p in self.paths:
            try:
                st = p.stat()
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}|missing\n".encode())
        return h.hexdigest()[:24]


def read_clip_table(dataset: Any, *, path_column: str = "path") -> ClipTable:
    """A dataset folder (``manifest.parquet`` or ``manifest.csv``), a manifest file, a DataFrame,
    or an object with ``root`` and ``rows``/``manifest`` attributes -> :class:`ClipTable`.

    Relative paths in the ``path`` column are relative to the manifest's folder.
    """
    if isinstance(dataset, ClipTable):
        return dataset
    root: Path | None
    if isinstance(dataset, pd.DataFrame):
        rows, root, name = dataset, None, "dataframe"
    elif isinstance(dataset, (str, os.PathLike)):
        p = Path(dataset).expanduser()
        loader = _synth_loader()
        if loader is not None:  # the project's dataset reader: same rows as everywhere else
            ds = loader(p)
            return read_clip_table(ds, path_column=path_column)
        if p.is_dir():
            for candidate in ("manifest.csv", "manifest.parquet"):
                if (p / candidate).is_file():
                    rows = _read_table(p / candidate)
                    break
            else:
                raise DatasetError(
                    f"{p} has no manifest.parquet or manifest.csv (a table with a '{path_column}' "
                    "column and label columns); make one or run `musicrfm synth`"
                )
            root, name = p, p.name
        elif p.is_file():
            rows, root, name = _read_table(p), p.parent, p.parent.name
        else:
            raise DatasetError(f"no dataset folder or manifest at {p}")
    else:
        root_attr = next(
            (getattr(dataset, a) for a in ("root", "folder", "path") if hasattr(dataset, a)), None
        )
        rows_attr = next(
            (getattr(dataset, a) for a in ("rows", "manifest", "df") if hasattr(dataset, a)), None
        )
        if not isinstance(rows_attr, pd.DataFrame):
            raise DatasetError(
                f"cannot read clips from a {type(dataset).__name__}; pass a dataset folder, a "
                "manifest file or a DataFrame with a 'path' column"
            )
        rows, root = rows_attr, Path(root_attr) if root_attr is not None else None
        name = root.name if root else type(dataset).__name__
    if path_column not in rows.columns:
        raise DatasetError(
            f"manifest has no '{path_column}' column (columns: {', '.join(map(str, rows.columns))})"
        )
    rows = rows.reset_index(drop=True)
    paths = []
    for value in rows[path_column]:
        q = Path(str(value)).expanduser()
        paths.append(q if q.is_absolute() or root is None else root / q)
    return ClipTable(rows=rows, paths=paths, root=root, name=name)


def _synth_loader() -> Callable[[Path], Any] | None:
    try:
        from musicrfm.synth.dataset import load_dataset
    except ImportError:
        return None
    return load_dataset


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"cannot read manifest {path}: {exc}") from None
