"""Issue 22's battery (benchmarks/bad_inputs.py), the cases marked fast: each bad input is one
clear ``error:`` line (exit 2) found before the work, each valid edge input succeeds, and no
case leaves a temporary file or a partial output behind. The whole battery:
``python benchmarks/bad_inputs.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BATTERY = Path(__file__).resolve().parents[1] / "benchmarks" / "bad_inputs.py"


def _battery():  # noqa: ANN202
    name = "musicrfm_bad_inputs_battery"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BATTERY)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]


FAST = [c for c in _battery().cases() if c.fast]


def test_the_battery_covers_every_kind_and_has_enough_cases() -> None:
    every = _battery().cases()
    kinds = {c.kind for c in every}
    assert len(every) >= 100
    assert {
        "reproduce", "outputs", "interrupts", "damaged", "plan types", "silent steering",
        "numbers", "devices", "files", "relative coefs", "threads", "serve",
    } <= kinds  # fmt: skip
    assert kinds <= {c.kind for c in FAST} | {"usage"}  # the fast subset keeps every kind
    assert 25 <= len(FAST) <= 45


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> Path:  # noqa: ANN001
    import torch

    root = tmp_path_factory.mktemp("bad_inputs")
    monkeypatch_module.setenv("MUSICRFM_CACHE_DIR", str(root / "cache"))
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    f = root / "fixtures"
    f.mkdir()
    _battery().make_fixtures(f)
    yield f
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def monkeypatch_module():  # noqa: ANN201
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("case", FAST, ids=[f"{c.kind}: {c.name}" for c in FAST])
def test_a_bad_input_is_one_line_and_leaves_nothing_behind(case, fixtures: Path) -> None:  # noqa: ANN001
    import torch

    torch.set_num_threads(1)
    folder = fixtures.parent / f"case{FAST.index(case):03d}"
    result = _battery().run_case(case, folder, fixtures)
    assert result.ok, f"{case.argv}: {result.why} ({result.line})"
