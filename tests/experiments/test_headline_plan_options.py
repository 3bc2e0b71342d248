"""`mini headline --weighting` (paper Table 8 on every plan of a headline) and `--directions`
(steer with saved directions -- onsets for the beat, a class concept's own -- instead of training
them again)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.headline.config import HeadlineConfig, parse_weighting


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        ("uniform", {"weighting": "uniform"}),
        ("linear", {"weighting": "linear"}),
        ("exp:0.92", {"weighting": "exponential", "kappa": 0.92}),
        ("exp:0.95:2", {"weighting": "exponential", "kappa": 0.95, "w0": 2.0}),
    ],
)
def test_weightings_parse_to_the_plans_fields(spec: str, fields: dict) -> None:
    assert parse_weighting(spec) == fields


@pytest.mark.parametrize("spec", ["top:3", "0-2", "all", "cubic", "exp:-1", "", "exp:x"])
def test_anything_but_a_weighting_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_weighting(spec)


def test_the_weighting_goes_to_every_plan_and_keeps_the_layer_choice() -> None:
    opts = HeadlineConfig(layers="top:3", weighting="exp:0.95", gate=0.3).plan_options()
    assert (opts["top_k"], opts["weighting"], opts["kappa"], opts["gate"]) == (
        3, "exponential", 0.95, 0.3,
    )  # fmt: skip
    # None leaves what --layers says (a spec may carry its own weighting, as before)
    assert HeadlineConfig(layers="exp:0.9").plan_options()["weighting"] == "exponential"
    assert HeadlineConfig().plan_options()["weighting"] == "uniform"
    # --weighting overrides a weighting written into --layers
    assert HeadlineConfig(layers="exp:0.9", weighting="linear").plan_options()["weighting"] == (
        "linear"
    )


def test_codebooks_go_to_every_plan_of_a_headline_controls_and_beat_included() -> None:
    """`mini headline --codebooks 1`: the steered, control and beat plans all steer codebook 1
    only; without it every plan steers every codebook."""
    from musicrfm.experiments.headline.beat import beat_plan
    from musicrfm.experiments.headline.config import control_jobs, direction_jobs

    cd = _onsets([0.9, 0.95], hidden=8)
    cfg = HeadlineConfig(concept="beats", targets=("onset",), clips=2, baseline_clips=2,
                         flip_clips=2, codebooks=(1,))  # fmt: skip
    jobs = direction_jobs(cd, cfg, (1.0,), seed=0) + control_jobs(cd, cfg, {"onset": 1.0}, 0)
    plans = [j.plan for j in jobs if j.plan is not None]
    assert len(plans) == 4 and all(p.codebooks == [1] for p in plans)
    assert beat_plan(cd, 120.0, 1.0, 2.0, cfg).codebooks == [1]
    plain = replace(cfg, codebooks=None)
    assert all(j.plan.codebooks is None for j in direction_jobs(cd, plain, (1.0,), 0) if j.plan)


def _onsets(scores: list[float], hidden: int = 8) -> object:
    from musicrfm.probes.directions import ConceptDirections

    n = len(scores)
    return ConceptDirections(
        concept="onsets", classes=["none", "onset"], vectors=torch.randn(n, 2, 1, hidden),
        scores=torch.tensor([[s, s] for s in scores]), layers=list(range(n)),
        meta={"activation_norm": 10.0, "hidden_size": hidden, "num_layers": n},
    )  # fmt: skip


def test_a_weighted_beat_plan_weights_the_layers_by_their_scores() -> None:
    """Compiled weights follow the per-layer scores (min-max, so the worst layer gets 0); the
    uniform plan weights every layer alike: the option changes the steering, not a label."""
    from musicrfm.experiments.headline.beat import beat_plan
    from musicrfm.models import load_model
    from musicrfm.steering.compile import compile_plan

    adapter = load_model("random:tiny")
    n = adapter.num_layers
    cd = _onsets(np.linspace(0.8, 1.0, n).tolist(), hidden=adapter.hidden_size)
    weights = {}
    for w in ("uniform", "linear"):
        cfg = HeadlineConfig(concept="beats", weighting=w)
        plan = beat_plan(cd, 120.0, 1.0, 2.0, cfg)
        assert all(d.weighting == w for d in plan.directions)
        weights[w] = compile_plan(plan, adapter, strict=False).weights[0]
    assert np.allclose(weights["uniform"], 1.0)
    assert np.allclose(weights["linear"], np.linspace(0.0, 1.0, n))


def test_saved_onset_directions_are_checked(tmp_path) -> None:
    from musicrfm.experiments.headline.beat import load_onset_directions
    from musicrfm.models import load_model
    from musicrfm.probes.directions import ConceptDirections

    adapter = load_model("random:tiny")
    wrong = ConceptDirections(
        concept="chords", classes=["major", "minor"], vectors=torch.randn(1, 2, 1, 8),
        scores=torch.ones(1, 2), layers=[0], meta={"activation_norm": 1.0},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="not onset directions"):
        load_onset_directions(wrong.save(tmp_path / "chords"), adapter)
    other = _onsets([0.9] * adapter.num_layers, hidden=adapter.hidden_size + 1)
    with pytest.raises(Exception, match="hidden"):
        load_onset_directions(other.save(tmp_path / "wide"), adapter)
    bare = _onsets([0.9] * adapter.num_layers, hidden=adapter.hidden_size)
    bare.meta.pop("activation_norm")
    with pytest.raises(ConfigError, match="activation norm"):
        load_onset_directions(bare.save(tmp_path / "bare"), adapter)


def test_a_beat_headline_with_saved_directions_trains_nothing(tmp_path) -> None:
    """With --directions no strike set, features or probes are made (the work folder stays
    empty), the plans steer with the given direction at its own activation norm, and the record
    says which file it was and carries its per-layer scores."""
    from musicrfm.experiments.headline.beat import run_beat_headline
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    scores = np.linspace(0.7, 0.9, adapter.num_layers).tolist()
    path = _onsets(scores, hidden=adapter.hidden_size).save(tmp_path / "onsets")
    cfg = HeadlineConfig.quick(concept="beats", relative_coefs=(0.5,), weighting="exp:0.95")
    cfg = replace(cfg, data=replace(cfg.data, seconds=2.0, instrument_check=False))
    record = run_beat_headline(
        model=adapter, out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        bpms=(120.0,), progress=False, directions=path,
    )  # fmt: skip
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
    s = record["settings"]
    assert s["directions"] == str(path) and s["activation_scale"] == 10.0
    assert s["coefs"] == [5.0] and s["frames"] is None
    assert s["config"]["weighting"] == "exp:0.95"
    assert record["probe_auc"]["val"] == pytest.approx(scores)
    assert {r["condition"] for r in record["rows"]} >= {"unsteered", "onset", "flip"}
    saved = json.loads((tmp_path / "out" / "headline.json").read_text())
    assert saved["settings"]["directions"] == str(path)

    with pytest.raises(ConfigError, match="reference judge"):
        run_beat_headline(
            model=adapter, out=tmp_path / "o2", config=replace(cfg, data=replace(
                cfg.data, instrument_check=True)), bpms=(120.0,), progress=False, directions=path,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weighting", "top:3"], "weighting"),
        (["--directions", "x", "--concept", "tempos"], "not for --concept tempos"),
    ],
)
def test_the_cli_refuses_bad_options_in_one_line(tmp_path, extra: list, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "headline", "--model", "random:tiny",
         "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"), "--no-card", *extra],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _chords(hidden: int, layers: int, norm: float | None = 4.0) -> object:
    from musicrfm.probes.directions import ConceptDirections

    classes = ["augmented", "diminished", "major", "minor"]
    vectors = torch.nn.functional.normalize(torch.randn(layers, 4, 1, hidden), dim=-1)
    meta = {"activation_norm": norm} if norm is not None else {}
    return ConceptDirections(
        concept="chords", classes=classes, vectors=vectors, scores=torch.ones(layers, 4),
        layers=list(range(layers)), meta=meta,
    )  # fmt: skip


def test_a_class_headline_with_saved_directions_steers_with_them_and_trains_nothing(
    tmp_path,
) -> None:
    """No set is synthesised or probed (the work folder stays empty); η0 is the grid times the
    file's own activation norm (what `generate --coef 0.3x` uses); the saved copy in the report
    is the given file's vectors; the record names the file."""
    from musicrfm.experiments.demo.config import DemoConfig
    from musicrfm.experiments.headline.run import run_headline
    from musicrfm.models import load_model
    from musicrfm.probes.directions import ConceptDirections

    adapter = load_model("random:tiny")
    given = _chords(adapter.hidden_size, adapter.num_layers)
    path = given.save(tmp_path / "chords")
    data = replace(DemoConfig.quick(), prompts=("acoustic piano",), seconds=0.5,
                   instrument_check=False)  # fmt: skip
    cfg = HeadlineConfig.quick(concept="chords", targets=("major", "minor"), clips=2, baseline_clips=2,
                               relative_coefs=(0.25, 0.5), data=data)  # fmt: skip
    record = run_headline(model=adapter, out=tmp_path / "out", work=tmp_path / "work",
                          config=cfg, progress=False, directions=path)  # fmt: skip
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
    s = record["settings"]
    assert s["directions"] == str(path) and s["activation_scale"] == 4.0
    assert s["coefs"] == [1.0, 2.0]
    assert sorted(r["target"] for r in record["per_target"]) == ["major", "minor"]
    copy = ConceptDirections.load(tmp_path / "out" / "directions" / "chords")
    assert torch.equal(copy.vectors, given.vectors)


def test_saved_class_directions_must_be_the_headlines_concept_with_a_norm(tmp_path) -> None:
    from musicrfm.experiments.headline.run import load_headline_directions
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    path = _chords(adapter.hidden_size, adapter.num_layers).save(tmp_path / "chords")
    with pytest.raises(ConfigError, match="pass --concept chords"):
        load_headline_directions(path, HeadlineConfig(concept="intervals"))
    with pytest.raises(ConfigError, match="reference judge"):
        load_headline_directions(path, HeadlineConfig(concept="chords", instrument_reference=False))
    bare = _chords(adapter.hidden_size, adapter.num_layers, norm=None).save(tmp_path / "bare")
    with pytest.raises(ConfigError, match="activation norm"):
        load_headline_directions(bare, HeadlineConfig(concept="chords"))
    wide = _chords(adapter.hidden_size + 1, adapter.num_layers).save(tmp_path / "wide")
    with pytest.raises(Exception, match="hidden"):
        load_headline_directions(wide, HeadlineConfig(concept="chords"), adapter)
    assert load_headline_directions(path, HeadlineConfig(concept="chords"), adapter).classes
