"""Where MusicRFM keeps things, how it reads its config files, how it writes without tearing.

One place for each, so every stage agrees: the cache root (``$MUSICRFM_CACHE_DIR``, else
``$XDG_CACHE_HOME/musicrfm``, else ``~/.cache/musicrfm``), TOML/JSON config files (with the
``tomli`` fallback on Python 3.10), atomic writes (a temporary name in the same folder, then a
rename: a reader never sees half a file, an interrupted write leaves the old one), and the check
that an output can be written at all, made before the work that fills it (`check_writable`).

Temporary names are unique per write (process id + random suffix), so two processes saving the
same file never write into each other's temporary file: the last rename wins, whole. Files get
the usual permissions (0666 less the umask) whatever the writer used (safetensors writes 0600).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError

CACHE_ENV = "MUSICRFM_CACHE_DIR"
# The shortest audio any stage accepts (synth renders, extract reads, the detectors label): a
# 2 ms click has no pitch to find. One number, so that what synth makes the others accept.
MIN_AUDIO_SECONDS = 0.05


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
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give the .toml or .json file inside it")
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{what} files end in .toml or .json, got {path.name}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
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


def temp_path(path: str | Path) -> Path:
    """A unique hidden temporary name beside ``path``: ``.<stem>.<pid>-<random><suffix>.part``
    (it keeps the suffix, so ``x.flac`` still ends in ``.flac.part``)."""
    path = Path(path)
    unique = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}.{unique}{path.suffix}.part")


@functools.cache
def _file_mode() -> int:
    """0666 less this process's umask: the mode a plain ``open(..., "w")`` gives."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a unique temporary name beside ``path``, then rename it to
    ``path``; on any failure (a full disk, Ctrl-C) the temporary file is removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
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


def save_tensors_atomic(
    path: str | Path, tensors: Mapping[str, Any], metadata: dict[str, str] | None = None
) -> Path:
    """``safetensors.torch.save_file`` through `write_atomic` (unique temporary name, usual
    permissions)."""
    from safetensors.torch import save_file

    return write_atomic(path, lambda tmp: save_file(dict(tensors), str(tmp), metadata=metadata))


def check_writable(
    path: str | Path, *, what: str = "output", folder: bool = False, need_bytes: int = 0
) -> Path:
    """Check, before the work that fills it, that ``path`` (a file, or a folder when ``folder``)
    can be written: no file where a folder must be and no folder where a file must be, the
    nearest existing folder accepts a new file (a probe file is written and removed, so a
    read-only disk is found now), and at least ``need_bytes`` are free there. Nothing is left
    behind: folders are not created. Returns ``path``; a problem is one ConfigError line."""
    path = Path(path).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file; give a folder (or a new name)")
    if not folder and path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    start = path if folder else path.parent
    existing = next((p for p in (start, *start.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"cannot write {what} {path}: {existing} is a file, not a folder")
    probe = temp_path(existing / "write-probe")
    try:
        with open(probe, "wb") as fh:
            fh.write(b"\0")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {what} {path}: {existing}: {exc.strerror or exc}"
        ) from None
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(existing).free
    if need_bytes and free < need_bytes:
        raise ConfigError(
            f"not enough disk space for {what} {path}: about {_size(need_bytes)} needed, "
            f"{_size(free)} free on {existing}"
        )
    return path


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
