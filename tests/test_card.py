"""Refreshing a mini model's card keeps a provenance note appended by hand at its end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from musicrfm.mini.card import appended_notes, record_gates, refresh_model_card

BEAT = Path(__file__).resolve().parents[1] / "models" / "musicgen-mini-beat"
NOTE = (
    "(Every figure above was measured on the same files at `/tmp/x`\n"
    "before they were copied into this folder.)"
)


def _copy_model(folder: Path, dest: Path) -> Path:
    """The model folder's card and JSON records copied, its weights linked (the card states
    their size)."""
    dest.mkdir()
    for f in folder.iterdir():
        if f.is_dir():  # directions/ bundled beside the model
            shutil.copytree(f, dest / f.name)
        elif f.suffix == ".safetensors":
            (dest / f.name).symlink_to(f)
        else:
            shutil.copy2(f, dest / f.name)
    return dest


@pytest.mark.skipif(not (BEAT / "training.json").exists(), reason="the beat testbed is not here")
def test_refreshing_the_bundled_beat_card_writes_it_unchanged(tmp_path):
    """The committed card ends with a provenance note the generator does not write; a refresh
    (twice) must give the committed card back byte for byte."""
    folder = _copy_model(BEAT, tmp_path / "musicgen-mini-beat")
    committed = (BEAT / "README.md").read_text()
    assert "(Every figure above was measured in session 14" in committed
    refresh_model_card(folder)
    assert (folder / "README.md").read_text() == committed
    refresh_model_card(folder)
    assert (folder / "README.md").read_text() == committed


@pytest.mark.skipif(not (BEAT / "training.json").exists(), reason="the beat testbed is not here")
def test_an_appended_note_stays_last_once_when_the_measured_parts_change(tmp_path):
    folder = _copy_model(BEAT, tmp_path / "musicgen-mini-beat")
    card = folder / "README.md"
    bare = card.read_text().rsplit("\n(Every figure", 1)[0]
    card.write_text(bare + "\n" + NOTE + "\n")
    gates = json.loads((folder / "gates.json").read_text())
    gates["seconds"] = 999.0  # a new gates run: the generated text changes
    record_gates(folder, gates)
    text = card.read_text()
    assert "in 999 s" in text
    assert text.count(NOTE) == 1 and text.endswith(NOTE + "\n")
    # an edit that is not an appended note (no parentheses) is not kept: the card is generated
    card.write_text(text.replace(NOTE, "hand edit\n\n" + NOTE))
    refresh_model_card(folder)
    assert "hand edit" not in card.read_text() and card.read_text().count(NOTE) == 1


def test_appended_notes_are_the_trailing_parenthesised_paragraphs():
    new = "# m\n\n## Gates\n\n(generated, in parentheses)\n\ntable\n"
    old = new + "\n(first note)\n\n(second\nnote)\n"
    assert appended_notes(old, new) == ["(first note)", "(second\nnote)"]
    # a parenthesised paragraph that is not at the very end is generated text
    assert appended_notes(new, new) == []
    assert appended_notes(old + "\nlater text\n", new) == []
    # a note the new card already holds is not added twice
    assert appended_notes(old, new + "\n(first note)\n") == ["(second\nnote)"]
