"""A small TOML writer for plan-shaped data (Python 3.11 reads TOML, but cannot write it)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from musicrfm.errors import ConfigError


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConfigError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ConfigError(f"cannot write a {type(v).__name__} to TOML")


def _toml_key(k: Any) -> str:
    k = str(k)
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for plan-shaped data (scalars, arrays, tables, arrays of tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            arrays.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_toml_key(k)}"
        out += f"\n[{name}]\n" + dumps_toml(v, prefix=name + ".")
    for k, items in arrays:
        name = f"{prefix}{_toml_key(k)}"
        for item in items:
            out += f"\n[[{name}]]\n" + dumps_toml(item, prefix=name + ".")
    return out
