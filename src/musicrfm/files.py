"""Where MusicRFM keeps things, how it reads its config files, how it writes without tearing.

One place for each, so every stage agrees: the cache root (``$MUSICRFM_CACHE_DIR``, else
``$XDG_CACHE_HOME/musicrfm``, else ``~/.cache/musicrfm``), TOML/JSON config files (with the
``tomli`` fallback on Python 3.10), and atomic writes (a temporary name in the same folder, then a
rename: a reader never sees half a file, an interrupted write leaves the old one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError

CACHE_ENV = "MUSICRFM_CACHE_DIR"


def cache_root() -> Path:
    """The folder every MusicRFM cache lives under (features, demo data, mini work...)."""
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base).expanduser()
    return (Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "musicrfm").expanduser()


def cache_dir(name: str) -> Path:
    """``cache_root() / name``: one sub-folder per kind of cached thing."""
    return cache_root() / name


def read_config(path: str | Path, *, what: str = "config") -> dict[str, Any]:
    """A TOML or JSON file as a dict; a missing, unreadable or malformed file is one ConfigError
    line naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{what} files end in .toml or .json, got {path.name}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings, not a {type(data).__name__}")
    return data


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on ``.<name>.part`` beside ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return write_atomic(path, write)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, data: Any, **dumps: Any) -> Path:
    dumps.setdefault("indent", 2)
    return write_text_atomic(path, json.dumps(data, **dumps) + "\n")
