"""Direction bundles: save_pretrained / from_pretrained (folders and an offline hub cache), the
model card, compatibility on load, and push_to_hub's refusals (never the network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.models.hub import place_in_hub_cache
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.pretrained import model_card

REPO_ID = "someone/musicgen-small-notes"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def _dirs(classes=("C", "C#", "D"), layers=(0, 1, 2, 3), d=8, seed=0, **meta) -> ConceptDirections:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(len(layers), len(classes), 2, d, generator=g)
    base = dict(
        model_id="facebook/musicgen-small", model_revision="a" * 40, num_layers=4,
        hidden_size=d, pooling="mean", prompt="", score_name="val_auc", activation_norm=12.5,
    )  # fmt: skip
    base.update(meta)
    scores = torch.linspace(0.5, 0.99, len(layers) * len(classes)).reshape(len(layers), -1)
    return ConceptDirections(
        concept="notes", classes=list(classes), vectors=v / v.norm(dim=-1, keepdim=True),
        scores=scores, layers=list(layers), eigenvalues=torch.rand(len(layers), len(classes), 2),
        meta=base,
    )  # fmt: skip


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    return cache


def _same(a: ConceptDirections, b: ConceptDirections) -> None:
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.scores, b.scores)
    assert torch.equal(a.eigenvalues, b.eigenvalues)
    assert (a.concept, a.classes, a.layers) == (b.concept, b.classes, b.layers)
    assert {k: v for k, v in b.meta.items() if k != "bundle"} == a.meta


def test_save_pretrained_writes_a_bundle_with_a_model_card(tmp_path: Path) -> None:
    cd = _dirs()
    folder = cd.save_pretrained(tmp_path / "bundle")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "directions.json", "directions.safetensors",
    ]  # fmt: skip
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: musicrfm\n")
    assert "base_model: facebook/musicgen-small" in card
    for text in (
        "`facebook/musicgen-small`",
        "`" + "a" * 40 + "`",
        "`notes`",
        "`C`, `C#`, `D` (3)",
    ):
        assert text in card
    assert "0-3 (4 of 4 blocks)" in card and "12.5" in card
    # one score row per layer, with each class's score and the best class
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| layer |"))
    end = lines.index("", start)
    rows = [line.strip("| ").split(" | ") for line in lines[start + 2 : end]]
    assert [r[0] for r in rows] == ["0", "1", "2", "3"]
    top = rows[3]
    assert top[1:5] == [f"{cd.scores[3].mean():.3f}", f"{cd.scores[3].min():.3f}",
                        f"{cd.scores[3].max():.3f}", "`D`"]  # fmt: skip
    assert top[5:] == [f"{float(x):.3f}" for x in cd.scores[3]]
    assert "Best layer by mean val_auc: 3." in card
    assert 'ConceptDirections.from_pretrained("<this repo or folder>", model=model)' in card
    assert "--directions notes-directions --target C" in card
    # the folder is also what `ConceptDirections.load` and `--directions` read
    _same(cd, ConceptDirections.load(folder))


def test_from_pretrained_of_a_folder_round_trips_and_checks_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cd = _dirs()
    folder = cd.save_pretrained(tmp_path / "bundle")
    back = ConceptDirections.from_pretrained(folder)
    _same(cd, back)
    assert back.meta["bundle"] == {"path": str(folder.resolve())}
    fits = {"model_id": "facebook/musicgen-small", "hidden_size": 8, "num_layers": 4}
    ConceptDirections.from_pretrained(folder, model=fits)
    with pytest.raises(CompatibilityError, match="musicgen-large.*hidden_size: directions have 8"):
        ConceptDirections.from_pretrained(
            folder, model={"model_id": "facebook/musicgen-large", "hidden_size": 2048}
        )
    with pytest.raises(ConfigError, match="no direction bundle at"):
        ConceptDirections.from_pretrained(tmp_path / "missing" / "bundle")
    # a `save` file base that looks like owner/name is read here, never asked of the hub
    cd.save(tmp_path / "dirs" / "notes")
    monkeypatch.chdir(tmp_path)
    _same(cd, ConceptDirections.from_pretrained("dirs/notes"))
    _same(cd, ConceptDirections.from_pretrained("dirs/notes.json"))


def test_from_pretrained_checks_a_loaded_adapter(tmp_path: Path) -> None:
    from musicrfm.models import random_model

    torch.set_num_threads(1)
    tiny = random_model("tiny", seed=0)
    cd = _dirs(d=tiny.hidden_size, model_id=tiny.model_id, model_revision=None)
    folder = cd.save_pretrained(tmp_path / "bundle")
    assert ConceptDirections.from_pretrained(folder, model=tiny).hidden_size == 64
    assert "not recorded (a local folder)" in (folder / "README.md").read_text()
    wrong = _dirs(d=tiny.hidden_size, model_id="random:tiny:seed1").save_pretrained(tmp_path / "w")
    with pytest.raises(CompatibilityError, match="model_id"):
        ConceptDirections.from_pretrained(wrong, model=tiny)


def test_from_pretrained_of_a_hub_id_resolves_from_the_offline_cache(
    tmp_path: Path, offline_cache: Path
) -> None:
    cd = _dirs()
    folder = cd.save_pretrained(tmp_path / "bundle", repo_id=REPO_ID)
    assert f'from_pretrained("{REPO_ID}", model=model)' in (folder / "README.md").read_text()
    place_in_hub_cache(folder, REPO_ID, cache_dir=offline_cache, commit=COMMIT)
    back = ConceptDirections.from_pretrained(REPO_ID)
    _same(cd, back)
    assert back.meta["bundle"] == {"repo_id": REPO_ID, "revision": COMMIT}
    assert ConceptDirections.from_pretrained(REPO_ID, revision="main").meta["bundle"] == {
        "repo_id": REPO_ID, "revision": COMMIT,
    }  # fmt: skip
    with pytest.raises(CompatibilityError, match="num_layers"):
        ConceptDirections.from_pretrained(REPO_ID, model={"num_layers": 48, "hidden_size": 8})


def test_a_hub_id_that_is_not_cached_or_holds_no_bundle_is_one_error(
    tmp_path: Path, offline_cache: Path
) -> None:
    with pytest.raises(ConfigError) as exc:
        ConceptDirections.from_pretrained("someone/not-cached")
    text = str(exc.value)
    assert "\n" not in text and "HF_HUB_OFFLINE is set" in text
    assert "hf download someone/not-cached" in text
    (tmp_path / "model-only").mkdir()
    (tmp_path / "model-only" / "README.md").write_text("# not a bundle\n")
    place_in_hub_cache(tmp_path / "model-only", "someone/model-only", cache_dir=offline_cache)
    with pytest.raises(ConfigError, match="holds no direction bundle"):
        ConceptDirections.from_pretrained("someone/model-only")


def test_push_to_hub_refuses_before_any_network(tmp_path: Path, offline_cache: Path) -> None:
    cd = _dirs()
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set: cannot push"):
        cd.push_to_hub(REPO_ID)
    with pytest.raises(ConfigError, match="not a hub repo id"):
        cd.push_to_hub("no-owner")
    with pytest.raises(ConfigError, match="needs repo_id"):
        cd.save_pretrained(tmp_path / "b", push_to_hub=True)
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):  # the folder is written first
        cd.save_pretrained(tmp_path / "c", push_to_hub=True, repo_id=REPO_ID)
    assert (tmp_path / "c" / "directions.safetensors").is_file()


def test_cards_for_many_classes_and_for_a_regression() -> None:
    many = _dirs(classes=[f"k{i}" for i in range(20)], layers=(1, 2, 5))
    card = model_card(many)
    header = next(line for line in card.splitlines() if line.startswith("| layer |"))
    assert "k0" not in header and "best class" in header  # summary columns only
    assert "1-2, 5 (3 of 4 blocks)" in card
    local = _dirs(model_id="/data/my-model")
    assert "base_model" not in model_card(local) and "<the model folder>" in model_card(local)
    reg = _dirs(classes=["value"], task="regression", score_name="val_r2")
    text = model_card(reg)
    assert "(regression)" in text and "--target faster" in text and "mean val_r2" in text


def test_a_plan_names_a_hub_bundle_with_hf_and_reads_it_from_the_cache(
    tmp_path: Path, offline_cache: Path
) -> None:
    """`--directions hf:OWNER/NAME` / `directions = "hf:..."`: the bundle through the hub cache;
    a plan file's folder is not put in front of it."""
    from musicrfm.steering.plan import SteeringDirection, SteeringPlan

    cd = _dirs()
    folder = cd.save_pretrained(tmp_path / "bundle", repo_id=REPO_ID)
    assert f"--directions hf:{REPO_ID} --target C" in (folder / "README.md").read_text()
    place_in_hub_cache(folder, REPO_ID, cache_dir=offline_cache, commit=COMMIT)
    steer = SteeringDirection(f"hf:{REPO_ID}", target="D", coef="0.1x")
    _same(cd, steer.load())
    assert steer.coef == pytest.approx(1.25)  # 0.1 x the bundle's activation norm 12.5
    plan = SteeringPlan.from_dict(
        {"direction": [{"directions": f"hf:{REPO_ID}", "target": "C", "coef": 0.5}]},
        base_dir=tmp_path / "plans",
    )
    assert plan.directions[0].directions == f"hf:{REPO_ID}"
    with pytest.raises(ConfigError):
        SteeringDirection("hf:someone/not-cached", target="C", coef=0.5).load()
