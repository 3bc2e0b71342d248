"""The Hugging Face hub cache: which commit a hub load came from, and placing a folder in it.

- :func:`resolve_commit`: the snapshot commit hash of a hub repo at a revision, read from the
  local cache layout (``<cache>/models--org--name/refs/<revision>`` and ``snapshots/<commit>/``),
  so an offline load (``HF_HUB_OFFLINE=1``) records the same ``revision`` an online one does;
- :func:`snapshot_commit`: the commit of a folder that *is* a cached snapshot
  (``.../snapshots/<40 hex>/``), so loading such a path records it too;
- :func:`place_in_hub_cache`: copy a folder into that layout (blobs + snapshot links + ref), so
  ``from_pretrained("org/name")`` finds it offline exactly as a user's cached download. Tests
  and offline machines use it; it never touches the network.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else huggingface_hub's cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_folder(repo_id: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder of a model repo: ``<cache>/models--org--name``."""
    return hub_cache_dir(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def snapshot_commit(path: str | os.PathLike[str]) -> str | None:
    """The commit hash when ``path`` is (inside) a hub cache snapshot folder, else None."""
    p = Path(os.path.abspath(path))  # not resolve(): a snapshot's files link into blobs/
    for part, parent in zip(p.parts[::-1], p.parts[-2::-1]):
        if parent == "snapshots" and COMMIT_RE.match(part):
            return part
    return None


def resolve_commit(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> str | None:
    """The snapshot commit that ``revision`` (default ``main``) of ``repo_id`` names in the local
    cache, or None when the cache does not hold it. A 40-hex revision is returned as it is."""
    if revision is not None and COMMIT_RE.match(revision):
        return revision
    ref = repo_folder(repo_id, cache_dir) / "refs" / (revision or "main")
    if ref.is_file():
        commit = ref.read_text().strip()
        if COMMIT_RE.match(commit):
            return commit
    return None


def folder_commit(folder: str | os.PathLike[str]) -> str:
    """A 40-hex content hash of a folder's files (names and bytes): the commit
    :func:`place_in_hub_cache` gives a folder when none is named."""
    h = hashlib.sha1()
    root = Path(folder)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(_file_sha256(f).encode() + b"\0")
    return h.hexdigest()


def place_in_hub_cache(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str = "main",
    commit: str | None = None,
) -> Path:
    """Copy ``folder``'s files into the hub cache as ``repo_id`` at ``revision`` (blobs named by
    their sha256, snapshot entries linking to them, ``refs/<revision>`` naming the commit) and
    return the snapshot folder. ``commit`` defaults to :func:`folder_commit`."""
    from musicrfm.errors import ConfigError

    src = Path(folder)
    if not src.is_dir():
        raise ConfigError(f"no folder at {src} to place in the hub cache")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ConfigError(f"{repo_id!r} is not a hub repo id (owner/name)")
    commit = commit or folder_commit(src)
    if not COMMIT_RE.match(commit):
        raise ConfigError(f"commit must be 40 hex digits, got {commit!r}")
    repo = repo_folder(repo_id, cache_dir)
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        blob = repo / "blobs" / _file_sha256(f)
        if not blob.exists():
            shutil.copyfile(f, blob)
        dest = snap / f.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            dest.unlink()
        try:
            dest.symlink_to(os.path.relpath(blob, dest.parent))
        except OSError:  # no symlinks (Windows without developer mode): a copy, as the hub does
            shutil.copyfile(blob, dest)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    return snap


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = [
    "COMMIT_RE",
    "folder_commit",
    "hub_cache_dir",
    "place_in_hub_cache",
    "repo_folder",
    "resolve_commit",
    "snapshot_commit",
]
