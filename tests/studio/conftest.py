"""The studio's test fixtures: the bundled model, note directions trained as `musicrfm serve`
trains its default bundle (with fewer clips: 6 a pitch class, ~17 s), one `Studio`."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def studio(tmp_path_factory):
    from musicrfm.experiments.demo.config import DemoConfig
    from musicrfm.models import load_model
    from musicrfm.studio.bundles import default_bundle
    from musicrfm.studio.engine import Studio

    adapter = load_model("mini")
    tmp = tmp_path_factory.mktemp("studio")
    bundle = default_bundle(
        adapter, config=DemoConfig.quick(clips_per_class=6), folder=tmp / "bundle",
        work=tmp / "work", progress=False,
    )  # fmt: skip
    return Studio(adapter, {bundle.name: bundle}, tmp / "out")


@pytest.fixture(scope="session")
def handlers(studio):
    from musicrfm.studio.app import Handlers

    h = Handlers(studio)
    h.SKIP = "SKIP"
    return h


def control_values(studio, **changes: Any) -> list[Any]:
    """The page's control values (its defaults, 2 s clips, changed by name) in handler order."""
    from musicrfm.studio.app import CONTROL_NAMES, default_values

    d = default_values(studio)
    d["seconds"] = 2.0
    unknown = set(changes) - set(d)
    assert not unknown, unknown
    d.update(changes)
    return [d[name] for name in CONTROL_NAMES]


@pytest.fixture(scope="session")
def controls(studio):
    """``controls(seconds=4, strength0=0.3)``: the handler arguments for those settings."""
    return lambda **changes: control_values(studio, **changes)
