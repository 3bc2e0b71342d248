"""The demo's progression (experiments.demo.progression): with chord quality and chord root
directions bundled in the model folder (directions/chords, directions/chord-roots) it steers
both parts with them; without, only the quality part with the chord part's own directions.
Plumbing on a random tiny MusicGen with tiny directions of its shape (it steers nothing: only
which directions are compiled, at which η0, and what the report says are checked)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from musicrfm.theory import PITCH_CLASSES

QUALITIES = ["augmented", "diminished", "major", "minor"]


def tiny_directions(adapter, classes, concept, norm, seed=0, **meta):
    """A ConceptDirections of ``adapter``'s shape over ``classes``, recording ``norm`` as the
    activation norm a relative η0 reads."""
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(seed)
    n, d, k = int(adapter.num_layers), int(adapter.hidden_size), len(classes)
    v = torch.randn(n, k, 1, d, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    return ConceptDirections(
        concept=concept, classes=list(classes), vectors=v, scores=torch.full((n, k), 0.9),
        layers=list(range(n)),
        meta={"model_id": str(adapter.model_id), "num_layers": n, "hidden_size": d,
              "activation_norm": float(norm), **meta},
    )  # fmt: skip


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import load_model

    return load_model("random:tiny")


def bundle(adapter, folder, *, roots=True):
    """Save tiny bundled chord directions (norm 10) into ``folder``/directions."""
    d = folder / "directions"
    tiny_directions(adapter, QUALITIES, "chords", 10.0, seed=1).save(d / "chords")
    if roots:
        tiny_directions(adapter, PITCH_CLASSES, "chord-roots", 10.0, seed=2,
                        label_column="root").save(d / "chord-roots")  # fmt: skip


class Folder:
    model_id = "m"

    def __init__(self, path):
        self.local_path = path


def test_bundled_chords_needs_both_files(tmp_path, adapter):
    from musicrfm.experiments.demo.progression import bundled_chords

    assert bundled_chords(Folder(None)) is None  # no local folder
    assert bundled_chords(Folder(tmp_path)) is None  # a folder without directions
    bundle(adapter, tmp_path, roots=False)
    assert bundled_chords(Folder(tmp_path)) is None  # quality alone: the old behaviour
    bundle(adapter, tmp_path)
    d = tmp_path / "directions"
    assert bundled_chords(Folder(tmp_path)) == {"quality": d / "chords", "root": d / "chord-roots"}


def _prog():
    from musicrfm.steering.progressions import make_progression

    return make_progression(chords="C G Am F", bpm=120.0, beats_per_bar=2)


def test_bundled_directions_steer_root_and_quality(tmp_path, adapter, monkeypatch):
    """Both parts compiled from the bundled files at 0.3x their norm (10), not the part's own
    quality directions (norm 5, η0 1.5)."""
    from musicrfm.experiments.demo.progression import progression_plan

    bundle(adapter, tmp_path)
    monkeypatch.setattr(adapter, "local_path", tmp_path)
    own = tiny_directions(adapter, QUALITIES, "chords", 5.0, seed=3)
    plan, info = progression_plan(adapter, own, _prog(), 1.5, 0.3)
    d = tmp_path / "directions"
    assert info["bundled"] and info["parts"] == ["root", "quality"]
    assert info["directions"] == {"quality": str(d / "chords"), "root": str(d / "chord-roots")}
    assert info["coef_by_role"] == pytest.approx({"root": 3.0, "quality": 3.0})
    by_source: dict[str, set[str]] = {}
    for x in plan.directions:
        assert x.source is not None  # from a file, never the in-memory `own`
        by_source.setdefault(x.source, set()).add(x.target)
    assert by_source == {str(d / "chord-roots"): {"C", "G", "A", "F"},
                         str(d / "chords"): {"major", "minor"}}  # fmt: skip


def test_without_bundled_roots_only_the_quality_part_is_steered(tmp_path, adapter):
    from musicrfm.experiments.demo.progression import progression_plan

    bundle(adapter, tmp_path, roots=False)  # chords alone is not enough
    adapter = replace_folder(adapter, tmp_path)
    own = tiny_directions(adapter, QUALITIES, "chords", 5.0, seed=3)
    plan, info = progression_plan(adapter, own, _prog(), 1.5, 0.3)
    assert not info["bundled"] and info["parts"] == ["quality"]
    assert info["coef_by_role"] == pytest.approx({"quality": 1.5})
    assert all(x.load() is own for x in plan.directions)
    assert {x.target for x in plan.directions} == {"major", "minor"}


def replace_folder(adapter, path):
    """The same adapter seen through a folder (a shallow stand-in: only local_path differs)."""
    import copy

    other = copy.copy(adapter)
    other.local_path = path
    return other


@pytest.mark.parametrize("bundled", [True, False])
def test_the_report_says_which_parts_were_steered(tmp_path, adapter, monkeypatch, bundled):
    """run_progression end to end (1 prompt, 0.5 s bars) and its report section."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.demo.progression import run_progression
    from musicrfm.experiments.demo.report import _progression_html

    bundle(adapter, tmp_path / "model", roots=bundled)
    monkeypatch.setattr(adapter, "local_path", tmp_path / "model")
    cfg = replace(DemoConfig.quick(prompts=("violin",)), progression_bpm=240.0)
    own = tiny_directions(adapter, QUALITIES, "chords", 5.0, seed=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prog = run_progression(adapter, own, cfg, 1.5, tmp_path / "out")
    finally:
        torch.set_num_threads(threads)
    assert prog["parts"] == (["root", "quality"] if bundled else ["quality"])
    assert prog["coef"] == pytest.approx(3.0 if bundled else 1.5)
    for c in prog["conditions"].values():
        assert c["bars"] == 4 and len(c["chord_by_bar"]) == 4
        assert all(0 <= r <= q <= 1 for r, q in zip(c["chord_by_bar"], c["quality_by_bar"]))
    page = _progression_html(prog)
    assert "root + quality per bar" in page and "progression.png" in page
    assert ("Both parts, root and quality, are steered" in page) is bundled
    assert ("Only the quality part is steered" in page) is not bundled
    roots = str(tmp_path / "model" / "directions" / "chord-roots")
    assert (roots in page) is bundled  # the report names the directions used
    assert (tmp_path / "out" / "progression.png").is_file()
