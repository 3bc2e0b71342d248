"""The package's shape: imports flow one way through the stages, and cheap verbs stay cheap.

The import graph is read from the source with `ast` (imports inside functions included), so a
lazy import cannot hide a dependency. `musicrfm.STAGES` is the one place the order is written.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import musicrfm

SRC = Path(musicrfm.__file__).resolve().parent


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import submodule`` counts as the
    submodule, not the package: the package's ``__init__`` may re-export its children)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".")
                    if path.name != "__init__.py":
                        base = base[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    child = f"{target}.{a.name}"
                    deps.add(child if child in files else target)
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def stage_of(module: str) -> int:
    best, rank = None, -1
    for i, (_, prefixes) in enumerate(musicrfm.STAGES):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > rank:
                best, rank = i, len(p)
    assert best is not None, f"{module} belongs to no stage in musicrfm.STAGES"
    return best


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_every_module_belongs_to_a_stage():
    for mod in import_graph():
        stage_of(mod)


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_from_a_later_stage():
    names = [name for name, _ in musicrfm.STAGES]
    wrong = [
        f"{mod} ({names[stage_of(mod)]}) imports {dep} ({names[stage_of(dep)]})"
        for mod, deps in sorted(import_graph().items())
        for dep in sorted(deps)
        if stage_of(dep) > stage_of(mod)
    ]
    assert not wrong, "imports against the stage order:\n" + "\n".join(wrong)


def test_the_checks_catch_a_cycle_and_a_backward_import(tmp_path):
    """The graph walker sees imports inside functions, and the checks fail when they should."""
    pkg = tmp_path / "musicrfm"
    (pkg / "synth").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "synth" / "__init__.py").write_text("")
    (pkg / "synth" / "a.py").write_text("def f():\n    from musicrfm.steering import b\n")
    (pkg / "steering").mkdir()
    (pkg / "steering" / "__init__.py").write_text("")
    (pkg / "steering" / "b.py").write_text("from musicrfm.synth import a\n")
    graph = import_graph(pkg)
    assert graph["musicrfm.synth.a"] == {"musicrfm.steering.b"}
    assert find_cycle(graph) is not None
    assert stage_of("musicrfm.steering.b") > stage_of("musicrfm.synth.a")


HEAVY = ("torch", "transformers")


def imported_by(code: str) -> dict[str, bool]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def verbs() -> list[str]:
    from musicrfm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    return sorted(sub.choices)


@pytest.mark.parametrize(
    "argv",
    [["--help"]] + [[verb, "--help"] for verb in verbs()],
    ids=lambda a: " ".join(a),
)
def test_help_imports_neither_torch_nor_transformers(argv):
    code = (
        "from musicrfm.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass"
    )
    assert imported_by(code) == dict.fromkeys(HEAVY, False)


def test_labelling_audio_imports_neither_torch_nor_transformers(tmp_path):
    import numpy as np
    import soundfile as sf

    sr = 16000
    t = np.arange(sr) / sr
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), sr)
    code = (
        "from musicrfm.cli import main\n"
        f"assert main(['evaluate', 'audio', {str(tmp_path / 'a.wav')!r}, '--concept', 'notes']) == 0"
    )
    assert imported_by(code) == dict.fromkeys(HEAVY, False)


def test_importing_the_package_has_no_side_effects():
    assert imported_by("import musicrfm") == dict.fromkeys(HEAVY, False)
