"""The gates through the model adapter: codec round trip, generation, the project's instrument
classifier, the card they write, and what `musicrfm mini` does with --model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "models" / "musicgen-mini"
needs_bundled = pytest.mark.skipif(
    not (BUNDLED / "config.json").is_file(), reason="models/musicgen-mini is not in this checkout"
)


@pytest.fixture(scope="module")
def mini():
    from musicrfm.models import load_model

    return load_model("mini")


@needs_bundled
def test_gate_round_trip_is_the_codecs_own(mini) -> None:
    """`reconstruct` goes through `adapter.round_trip` and gives exactly what the stock codec's
    forward (encode -> decode) gives, so the codec gate measures what it always measured."""
    from musicrfm.mini.gates import codec_gate, reconstruct
    from musicrfm.synth.notes import NoteClip, render_clips

    clips = [NoteClip(73, 60), NoteClip(0, 67), NoteClip(40, 55)]
    audio = render_clips(clips, sampling_rate=mini.sample_rate, seconds=2.0)
    recon = reconstruct(mini, audio)
    with torch.no_grad():
        stock = mini.model.audio_encoder(torch.from_numpy(audio)[:, None]).audio_values[:, 0]
    assert recon.shape == audio.shape
    np.testing.assert_array_equal(recon, stock.numpy()[:, : audio.shape[1]])
    result, again = codec_gate(mini, clips, audio)
    assert result["n"] == 3 and result["agreement_with_original"] == 1.0
    np.testing.assert_array_equal(again, recon)


@needs_bundled
def test_generate_clips_uses_the_adapter(mini) -> None:
    from musicrfm.mini.gates import generate_clips

    a = generate_clips(mini, ["flute", "violin"], seed=3, frames=10)
    b = generate_clips(mini, ["flute", "violin"], seed=3, frames=10)
    hop = mini.sample_rate // int(mini.frame_rate)
    assert a.shape == (2, 10 * hop) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # seeded


@needs_bundled
def test_gate_classifier_is_the_projects_instrument_classifier(mini) -> None:
    """The instrument figure comes from musicrfm.evaluation.instrument's classifier, fitted on
    rendered clips plus their round trips through the model's codec."""
    from musicrfm.evaluation.instrument import InstrumentClassifier
    from musicrfm.mini.gates import fit_gate_classifier, generation_gate
    from musicrfm.synth.notes import NoteClip, render_clips

    clips = [NoteClip(p, n) for p in (73, 0) for n in (60, 64, 67, 71)]
    audio = render_clips(clips, sampling_rate=mini.sample_rate, seconds=1.0)
    clf = fit_gate_classifier(mini, clips, audio)
    assert isinstance(clf, InstrumentClassifier)
    assert set(clf.classes) == {"flute", "acoustic piano"} and clf.label_column == "instrument"
    assert clf.meta["augmented"] and clf.meta["n"] == len(clips)
    names = [c.instrument for c in clips]
    result = generation_gate(audio, mini.sample_rate, 0.0, names, classifier=clf)
    assert result["instrument_accuracy"] == 1.0  # its own training clips
    assert result["instrument_chance"] == 0.5


def _bundled_copy(tmp_path: Path, source: Path = BUNDLED) -> Path:
    """A bundled folder's records (weights linked, not copied)."""
    folder = tmp_path / source.name  # the card is titled with the folder's name
    folder.mkdir()
    for p in source.iterdir():
        if p.suffix == ".safetensors":
            (folder / p.name).symlink_to(p)
        elif p.is_file():
            (folder / p.name).write_bytes(p.read_bytes())
    return folder


@needs_bundled
@pytest.mark.parametrize("name", ["musicgen-mini", "musicgen-mini-poly"])
def test_bundled_card_is_what_the_card_writer_makes_of_its_folder(tmp_path, name) -> None:
    """models/<bundled>/README.md is regenerated, never hand-edited: rewriting it from the
    folder's records gives the same text."""
    from musicrfm.mini.card import refresh_model_card

    folder = _bundled_copy(tmp_path, REPO / "models" / name)
    (folder / "README.md").unlink()
    assert (
        refresh_model_card(folder).read_text() == (REPO / "models" / name / "README.md").read_text()
    )


@needs_bundled
def test_record_gates_keeps_the_result_and_names_the_classifier(tmp_path) -> None:
    from musicrfm.mini.card import record_gates

    folder = _bundled_copy(tmp_path)
    result = json.loads((folder / "gates.json").read_text())
    old_row = "prompted instrument recognised (MFCC classifier)"
    result["generation"].pop("instrument_classifier", None)  # a record from before the change
    assert old_row in record_gates(folder, result).read_text()
    result["generation"]["instrument_classifier"] = "timbre classifier"
    card = record_gates(folder, result).read_text()
    assert json.loads((folder / "gates.json").read_text()) == result
    assert "prompted instrument recognised (timbre classifier)" in card and old_row not in card


def test_mini_verbs_take_the_one_model_option() -> None:
    from musicrfm.cli import build_parser

    parser = build_parser()
    for verb in ("gates", "judge", "headline"):
        args = parser.parse_args(["mini", verb])
        assert args.model == "mini", verb
        assert (
            parser.parse_args(["mini", verb, "--model", "musicgen-small"]).model == "musicgen-small"
        )


def test_gates_card_needs_a_model_folder() -> None:
    """A model loaded from no folder (a hub id, random:*) has nowhere to keep the card."""
    from musicrfm.commands.mini import run
    from musicrfm.errors import ConfigError

    args = argparse.Namespace(
        mini_action="gates",
        model="random:tiny",
        n_per_prompt=None,
        seed=0,
        no_card=False,
        threads=1,
    )
    with pytest.raises(ConfigError, match="--no-card"):
        run(args)


def test_judge_needs_a_folder_or_out() -> None:
    from musicrfm.commands.mini import run
    from musicrfm.errors import ConfigError

    args = argparse.Namespace(
        mini_action="judge", model="random:tiny", out=None, device="cpu", threads=1
    )
    with pytest.raises(ConfigError, match="--out"):
        run(args)
