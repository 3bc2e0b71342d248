"""The paper's protocol, read from ``protocol.toml`` (package data, versioned with the code).

Every setting there is a record ``{value, source, paper}``; :class:`Protocol` hands out the
values (``protocol.value("steering.coefs")``) and the sources (``protocol.source(...)``), and the
paper's own numbers per table (``protocol.paper_numbers(2)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.files import read_config

PROTOCOL_FILE = "protocol.toml"
IMPLEMENTED_NOTE = "implemented"


@dataclass(frozen=True)
class TableInfo:
    """One of the paper's tables: its number, title, section and whether the verb measures it."""

    number: int
    title: str
    section: str
    implemented: bool
    reason: str = ""


@dataclass
class Protocol:
    """The parsed protocol file."""

    data: dict[str, Any]
    path: Path
    shipped: bool = True  # the paper's protocol as shipped, not a user's file

    @property
    def version(self) -> int:
        return int(self.data["version"])

    def record(self, key: str) -> dict[str, Any]:
        """The ``{value, source, paper}`` record at a dotted key (``"steering.gate"``)."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"the protocol has no setting {key!r} ({self.path})")
            node = node[part]
        if not isinstance(node, dict) or "value" not in node:
            raise ConfigError(f"protocol setting {key!r} is not a value record ({self.path})")
        return node

    def value(self, key: str) -> Any:
        return self.record(key)["value"]

    def source(self, key: str) -> str:
        return str(self.record(key)["source"])

    def table(self, number: int) -> TableInfo:
        t = self.data["tables"].get(str(number))
        if t is None:
            valid = ", ".join(sorted(self.data["tables"], key=int))
            raise ConfigError(f"the paper has no table {number}; its tables are {valid}")
        return TableInfo(
            number, str(t["title"]), str(t["section"]), bool(t["implemented"]), t.get("reason", "")
        )

    def tables(self) -> list[TableInfo]:
        return [self.table(int(n)) for n in sorted(self.data["tables"], key=int)]

    def paper_numbers(self, number: int) -> dict[str, Any]:
        """The paper's results for a table (its ``[tables.N.paper]`` block, ``source`` included)."""
        return dict(self.data["tables"][str(number)].get("paper") or {})


def load_protocol(path: str | Path | None = None) -> Protocol:
    """The protocol shipped with the package (or the file at ``path``), checked for sources."""
    shipped = path is None
    if path is None:
        with resources.as_file(resources.files(__package__) / PROTOCOL_FILE) as p:
            data = read_config(p, what="protocol")
            path = p
    else:
        data = read_config(path, what="protocol")
    missing = list(unsourced(data))
    if missing:
        raise ConfigError(f"protocol {path}: no source for {', '.join(missing)}")
    return Protocol(data, Path(path), shipped=shipped)


def unsourced(data: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys of values with no paper reference: a value must sit in a ``{value, source}``
    record or in a table that has a ``source`` (the paper's numbers); tables' own ``title``,
    ``section``, ``implemented`` and ``reason`` describe the table and need none."""
    for key, node in data.items():
        name = f"{prefix}{key}"
        if not prefix and key in ("version", "paper"):
            continue
        if isinstance(node, dict):
            if "value" in node:
                if not str(node.get("source", "")).strip() or "paper" not in node:
                    yield name
                continue
            if "source" in node:
                if not str(node["source"]).strip():
                    yield name
                continue
            yield from unsourced(node, name + ".")
        elif not (
            prefix.startswith("tables.") and key in ("title", "section", "implemented", "reason")
        ):
            yield name
