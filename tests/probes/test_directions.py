"""ConceptDirections: file round trip, compatibility checks, arithmetic and selection."""

from __future__ import annotations

import pytest
import torch

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.probes.directions import ConceptDirections


def _dirs(concept="notes", classes=("C", "D", "E"), layers=(0, 2, 3), k=2, d=8, seed=0, **meta):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(len(layers), len(classes), k, d, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    base = dict(model_id="facebook/musicgen-small", num_layers=4, hidden_size=d, pooling="mean")
    base.update(meta)
    return ConceptDirections(
        concept=concept,
        classes=list(classes),
        vectors=v,
        scores=torch.rand(len(layers), len(classes), generator=g),
        layers=list(layers),
        eigenvalues=torch.rand(len(layers), len(classes), k, generator=g)
        .sort(-1, descending=True)
        .values,
        meta=base,
    )


def test_save_load_round_trip_is_exact(tmp_path):
    d = _dirs(hyperparams=[[{"bandwidth": 3.5}]], library_version="0.1.0")
    d.save(tmp_path / "notes")
    e = ConceptDirections.load(tmp_path / "notes.json")
    assert torch.equal(d.vectors, e.vectors)
    assert torch.equal(d.scores, e.scores)
    assert torch.equal(d.eigenvalues, e.eigenvalues)
    assert (e.concept, e.classes, e.layers, e.meta) == (d.concept, d.classes, d.layers, d.meta)


def test_compatible_model_passes_and_mismatch_names_every_difference():
    d = _dirs()
    d.check_compatible({"model_id": "facebook/musicgen-small", "hidden_size": 8, "num_layers": 4})
    with pytest.raises(CompatibilityError) as exc:
        d.check_compatible(
            {"model_id": "facebook/musicgen-large", "hidden_size": 2048, "num_layers": 48}
        )
    msg = str(exc.value)
    assert "model_id" in msg and "musicgen-large" in msg
    assert "hidden_size: directions have 8, model has 2048" in msg
    assert "num_layers" in msg
    with pytest.raises(CompatibilityError, match=r"layers \[2, 3\] do not exist"):
        _dirs(num_layers=None).check_compatible({"num_layers": 2, "hidden_size": 8})


def test_another_hub_snapshot_of_the_model_is_a_warning(caplog):
    d = _dirs()
    d.meta["model_revision"] = "a" * 40
    info = {"model_id": "facebook/musicgen-small", "hidden_size": 8, "num_layers": 4}
    with caplog.at_level("WARNING"):
        d.check_compatible({**info, "revision": "a" * 40})
    assert not caplog.records
    with caplog.at_level("WARNING"):
        d.check_compatible({**info, "revision": "b" * 40})
    assert "trained on revision aaaaaaaaaaaa" in caplog.text and "bbbbbbbbbbbb" in caplog.text


def test_arithmetic_operators_and_methods():
    a, b = _dirs(seed=1), _dirs(seed=2)
    s = a + b
    torch.testing.assert_close(s.vectors, a.vectors + b.vectors)
    assert torch.equal(s.scores, torch.minimum(a.scores, b.scores))
    torch.testing.assert_close((a - b).vectors, a.subtract(b).vectors)
    torch.testing.assert_close((2.5 * a).vectors, a.vectors * 2.5)
    torch.testing.assert_close((a * 2.5).vectors, a.scale(2.5).vectors)
    torch.testing.assert_close((a / 2).vectors, a.vectors / 2)
    torch.testing.assert_close((-a).vectors, -a.vectors)
    assert (-a).meta["derived"]["factor"] == -1.0
    n = s.normalized()
    torch.testing.assert_close(n.vectors.norm(dim=-1), torch.ones(3, 3, 2))
    assert a.vectors is not s.vectors and torch.equal(
        a.vectors, _dirs(seed=1).vectors
    )  # inputs untouched
    with pytest.raises(ConfigError, match="same layers"):
        a + _dirs(layers=(0, 1, 2))
    with pytest.raises(CompatibilityError, match="model_id"):
        a + _dirs(model_id="other")


def test_selection_of_classes_components_layers():
    d = _dirs()
    c = d.select_classes(["E", "C"])
    assert c.classes == ["E", "C"]
    assert torch.equal(c.vectors[:, 0], d.vectors[:, 2]) and torch.equal(
        c.scores[:, 1], d.scores[:, 0]
    )
    k = d.select_components(1)
    assert k.num_components == 1 and torch.equal(k.eigenvalues[..., 0], d.eigenvalues[..., 0])
    assert torch.equal(d.select_components([1]).vectors[..., 0, :], d.vectors[..., 1, :])
    ly = d.select_layers([3, 0])
    assert ly.layers == [3, 0] and torch.equal(ly.vectors[0], d.vectors[2])
    assert d.select_layers(-1).layers == [3]  # negative counts from the model's top (4 layers)
    assert torch.equal(d.for_layer(2, "D", 1), d.vectors[1, 1, 1])
    with pytest.raises(ConfigError, match="unknown class 'F#'"):
        d.select_classes("F#")
    with pytest.raises(ConfigError, match="layer 1 not in these directions"):
        d.select_layers(1)
    with pytest.raises(ConfigError, match="out of range"):
        d.select_components([5])


def _user_dirs(concept, classes, meta=None):
    import torch

    from musicrfm.probes.directions import ConceptDirections

    n = len(classes)
    v = torch.nn.functional.normalize(torch.randn(2, n, 1, 8), dim=-1)
    return ConceptDirections(concept, list(classes), v, torch.rand(2, n), [0, 1], meta=meta or {})


@pytest.mark.parametrize(
    ("concept", "classes", "written", "found"),
    [("notes", ["C", "C#", "D"], "Db", "C#"),
     ("chords", ["major", "minor", "augmented", "diminished"], "C:min", "minor"),
     ("chords", ["major", "minor", "augmented", "diminished"], "dim", "diminished"),
     ("intervals", ["m3", "M3", "P4"], "perfect fourth", "P4"),
     ("intervals", ["m3", "M3", "P4"], "5", "P4"),
     ("intervals", ["3", "4", "5"], "P4", "5")],
)  # fmt: skip
def test_a_target_is_found_as_users_write_it(concept, classes, written, found):
    cd = _user_dirs(concept, classes)
    assert cd.classes[cd.class_index(written)] == found


def test_a_typo_lists_the_valid_classes():
    from musicrfm.errors import ConfigError

    with pytest.raises(ConfigError, match="valid: major, minor"):
        _user_dirs("chords", ["major", "minor"]).class_index("mjaor")


def test_a_regression_is_steered_faster_or_slower():
    from musicrfm.errors import ConfigError

    cd = _user_dirs("tempos", ["value"], meta={"task": "regression"})
    assert cd.is_regression and cd.class_index("faster") == cd.class_index("slower") == 0
    assert (
        cd.sign_of("faster") == 1.0 and cd.sign_of("slower") == -1.0 and cd.sign_of("value") == 1.0
    )
    with pytest.raises(ConfigError, match="'faster' or 'slower'"):
        cd.class_index("140")
    with pytest.raises(ConfigError, match="use one of C, D"):
        _user_dirs("notes", ["C", "D"]).class_index("slower")


# ----------------------------------------------------------------------------- damaged files
def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("which", "damage", "words"),
    [
        ("safetensors", _cut, "notes.safetensors is damaged: not a readable safetensors file"),
        ("safetensors", lambda b: b"", "notes.safetensors is damaged"),
        ("safetensors", lambda b: b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!", "damaged"),
        ("json", _cut, "notes.json is damaged: not valid JSON"),
        ("json", lambda b: b"[1, 2]", "notes.json is damaged: it is not a JSON object"),
        ("json", lambda b: b.replace(b'"classes"', b'"klasses"'), "no 'classes' \\(list\\) field"),
        ("json", lambda b: b.replace(b'"C"', b'"C", "X"'), "do not belong together"),
    ],
)
def test_a_damaged_direction_file_names_the_file_and_what_to_do(
    tmp_path, which, damage, words
) -> None:
    base = _dirs().save(tmp_path / "notes")
    path = base.with_name(f"notes.{which}")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CompatibilityError, match=f"{words}.*train the directions again"):
        ConceptDirections.load(tmp_path)


def test_saved_files_are_readable_like_any_other_and_leave_no_temporary(tmp_path) -> None:
    import os
    import stat

    base = _dirs().save(tmp_path / "notes")
    modes = {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    mask = os.umask(0)
    os.umask(mask)
    assert modes == {0o666 & ~mask}  # the .safetensors used to be 0600, the .json 0644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json", "notes.safetensors"]
    assert base == tmp_path / "notes"


def test_directions_record_the_norms_a_relative_coef_multiplies(tmp_path) -> None:
    from musicrfm.probes.directions import record_activation_norms

    d = _dirs()
    assert d.activation_norm() is None  # files from before it was recorded
    feats = torch.ones(3, 5, 4) * torch.tensor([1.0, 2.0, 3.0])[:, None, None]  # norms 2, 4, 6
    record_activation_norms(d, feats)
    assert d.meta["activation_norms"] == [2.0, 4.0, 6.0] and d.activation_norm() == 4.0
    d.save(tmp_path / "n")
    assert ConceptDirections.load(tmp_path / "n").activation_norm() == 4.0
