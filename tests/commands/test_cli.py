"""The CLI: every verb has --help, and expected mistakes become one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from musicrfm.cli import build_parser, main


def _verbs() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    return sorted(sub.choices)


def test_top_level_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "musicrfm", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: musicrfm" in out.stdout


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    assert verb in capsys.readouterr().out


def test_no_verb_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_generate_rows_choices_match_the_plan() -> None:
    from musicrfm.commands.generate import GUIDANCE_ROWS
    from musicrfm.steering.plan import ROWS

    assert GUIDANCE_ROWS == ROWS
