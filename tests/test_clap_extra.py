"""The `clap` extra installs laion-clap, and setup.sh does not install it by default."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_the_clap_extra_names_laion_clap_and_is_not_a_default() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(re.match(r"laion-clap\b", spec) for spec in extras["clap"])
    installs = re.findall(
        r'pip install[^\n]*-e "\.\[([a-z,]+)\]"', (REPO / "scripts/setup.sh").read_text()
    )
    assert installs and all("clap" not in group.split(",") for group in installs)
