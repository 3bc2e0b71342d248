"""The ablation configs, the matched-hit-rate interpolation and the ablation report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musicrfm.errors import ConfigError
from musicrfm.experiments.headline.matching import (
    crossing,
    matched_bootstrap,
    matched_value,
    percentile_ci,
    value_at,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "experiments" / "ablations"


# ------------------------------------------------------------------ interpolation
def test_crossing_interpolates_between_grid_points() -> None:
    # 0.5 at 0.1, 1.0 at 0.2: 0.8 is reached 60% of the way
    assert crossing([0.0, 0.1, 0.2], [0.1, 0.5, 1.0], 0.8) == pytest.approx(0.16)
    assert crossing([0.0, 0.1, 0.2], [0.1, 0.5, 1.0], 0.5) == pytest.approx(0.1)


def test_crossing_edges() -> None:
    assert crossing([0.1, 0.2], [0.3, 0.6], 0.8) is None  # never reached
    assert crossing([0.1, 0.2], [0.9, 1.0], 0.8) == pytest.approx(0.1)  # first point already
    # not monotone: the first crossing counts, not a later one
    assert crossing([0, 1, 2, 3], [0.0, 1.0, 0.2, 1.0], 0.5) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="ascending"):
        crossing([0.2, 0.1], [0.1, 0.9], 0.5)
    with pytest.raises(ConfigError, match="one hit rate per"):
        crossing([0.1, 0.2], [0.5], 0.5)


def test_value_at_is_linear_and_refuses_extrapolation() -> None:
    assert value_at([0.0, 0.1, 0.3], [1.0, 0.9, 0.5], 0.2) == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="outside the grid"):
        value_at([0.0, 0.1], [1.0, 0.9], 0.2)


def _cells(rates, adherence, n=200):
    """Cells whose hit and adherence shares are exactly the given rates."""
    out = []
    for c, (r, a) in enumerate(zip(rates, adherence)):
        hits = (np.arange(n) < round(r * n)).astype(float)
        adh = (np.arange(n) < round(a * n)).astype(float)
        out.append((0.1 * c, hits, adh))
    return out


def test_matched_value_reads_adherence_at_the_crossing() -> None:
    at, value = matched_value(_cells([0.1, 0.6, 1.0], [1.0, 0.9, 0.5]), 0.8)
    assert at == pytest.approx(0.15)  # halfway between 0.1 (0.6) and 0.2 (1.0)
    assert value == pytest.approx(0.7)
    assert np.isnan(matched_value(_cells([0.1, 0.5], [1.0, 0.9]), 0.8)[1])


def test_matched_bootstrap_interval_covers_and_is_seeded() -> None:
    cells = _cells([0.1, 0.6, 1.0], [1.0, 0.9, 0.5], n=60)
    at, value, coef_draws, draws = matched_bootstrap(cells, 0.8, n_boot=300, seed=1)
    low, high = percentile_ci(draws)
    assert low < value < high
    assert np.all(np.isfinite(coef_draws) == np.isfinite(draws))
    again = matched_bootstrap(cells, 0.8, n_boot=300, seed=1)[3]
    np.testing.assert_array_equal(draws, again)
    # a rate at the top of the curve is missed by some draws: they are NaN, not a value
    top = matched_bootstrap(_cells([0.1, 0.97], [1.0, 0.5], n=60), 0.97, n_boot=200, seed=0)[3]
    assert 0 < np.isnan(top).sum() < 200
    assert percentile_ci([np.nan, np.nan]) != percentile_ci([0.0, 1.0])


def test_matched_bootstrap_refuses_mismatched_cells() -> None:
    with pytest.raises(ConfigError, match="as many values as hits"):
        matched_bootstrap([(0.0, [1, 0], [1])], 0.5, n_boot=10)


# ------------------------------------------------------------------ tables and report
def _frame(plan_adherence: float, slope: float, coefs=(0.1, 0.2, 0.3), n=48, seed=0):
    """A sweep's rows: unsteered + a main grid whose hit rate rises with η0 and whose adherence
    is ``plan_adherence`` at every η0; plus a gate ablation at 0.1."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(kind, coef, variant, p_hit, p_adh, tag):
        for i in range(n):
            rows.append(
                {"kind": kind, "condition": "unsteered" if kind == "unsteered" else "concept",
                 "concept": "notes", "target": "C", "coef": coef, "variant": variant,
                 "correct": bool(rng.random() < p_hit),
                 "instrument_match": float(rng.random() < p_adh),
                 "audio_path": f"{tag}/{i}.wav", "prompt": "p", "seed": i}
            )  # fmt: skip

    add("unsteered", 0.0, "unsteered", 0.08, 1.0, "u")
    for c in coefs:
        add("main", c, "default", min(1.0, slope * c), plan_adherence, f"m{c}")
    for g in (0.3, 1.0):
        add("gate", 0.1, str(g), 0.5 * g, 0.9, f"g{g}")
    return pd.DataFrame(rows)


def test_ablation_table_has_wilson_intervals_and_reference_rows() -> None:
    from musicrfm.evaluation.metrics import wilson_interval
    from musicrfm.experiments.ablations import ablation_table

    frame = _frame(0.9, 4.0)
    table = ablation_table(frame, "gate", n_boot=200)
    assert list(table["variant"]) == ["0.3", "1.0", "default plan (main grid)", "unsteered"]
    row = table.iloc[0]
    k = int(frame[(frame["kind"] == "gate") & (frame["variant"] == "0.3")]["correct"].sum())
    ci = wilson_interval(k, 48)
    assert (row["hits"], row["hit_ci_low"], row["hit_ci_high"]) == (k, ci.low, ci.high)
    assert table.iloc[-1]["n_adherence"] == 48  # distinct clips
    with pytest.raises(ConfigError, match="unknown ablation"):
        ablation_table(frame, "schedules")
    assert ablation_table(frame, "top_k").empty


def test_matched_table_finds_the_plan_that_keeps_adherence() -> None:
    from musicrfm.experiments.ablations import matched_table

    good = _frame(0.95, 4.0, n=200, seed=1)  # adherence 0.95 at every η0
    bad = _frame(0.60, 4.0, n=200, seed=2)
    table = matched_table({"default": bad, "optimum": good}, [0.5], reference="default", n_boot=300)
    diff = table[table["plan"] == "optimum - default"].iloc[0]
    assert diff["adh_ci_low"] > 0 and diff["adherence"] == pytest.approx(0.35, abs=0.08)
    plain = table[table["plan"] == "default"].iloc[0]
    assert 0.1 < plain["coef_at_rate"] < 0.2 and plain["reached"] == 1.0


def _write_sweep(folder: Path, frame: pd.DataFrame) -> None:
    (folder / "conditions").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"config": {"name": "t"}, "concepts": {}}))
    for i, (_, g) in enumerate(frame.groupby(["kind", "coef", "variant"])):
        rec = {"condition": {}, "plan": None, "rows": g.to_dict(orient="records")}
        (folder / "conditions" / f"{i:04d}.json").write_text(json.dumps(rec))


def test_report_writes_tables_and_a_verdict(tmp_path: Path) -> None:
    from musicrfm.experiments.ablations import write_ablations_report

    _write_sweep(tmp_path / "a", _frame(0.6, 4.0, n=100, seed=3))
    _write_sweep(tmp_path / "b", _frame(0.95, 4.0, n=100, seed=4))
    record = write_ablations_report(
        tmp_path / "a", tmp_path / "out", optimum=tmp_path / "b", rates=(0.5,), n_boot=200
    )
    assert "the optimum keeps adherence better" in record["verdict"]
    for name in ("ablations.json", "ablations.md", "table10.md", "matched.csv", "matched.png"):
        assert (tmp_path / "out" / name).is_file()
    with pytest.raises(ConfigError, match="hit rates"):
        write_ablations_report(tmp_path / "a", tmp_path / "out", rates=(1.5,))
    with pytest.raises(ConfigError, match="not a sweep folder"):
        write_ablations_report(tmp_path / "none", tmp_path / "out")


# ------------------------------------------------------------------ the committed configs
def test_committed_configs_parse_to_the_issue_grid() -> None:
    from musicrfm.experiments.sweep.config import load_config
    from musicrfm.experiments.sweep.grid import expand_conditions

    cfg = load_config(CONFIGS / "mini-notes.toml")
    assert cfg.coef_unit == "relative" and cfg.ablation_coef == pytest.approx(0.1)
    assert cfg.ablations["weighting"] == ["uniform", "linear", "exp:0.98", "exp:0.95", "exp:0.92"]
    assert cfg.ablations["top_k"] == [1, 2, 3, 4, 6]
    assert cfg.ablations["gate"] == [0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0]
    assert cfg.plan == {"layers": "all", "weighting": "uniform", "gate": 1.0}
    assert len(cfg.concepts["notes"].targets) == 12
    kinds = pd.Series([c.kind for c in expand_conditions(cfg)]).value_counts()
    assert kinds["gate"] == 12 * 7 and kinds["top_k"] == 12 * 5 and kinds["weighting"] == 12 * 5
    opt = load_config(CONFIGS / "mini-notes-optimum.toml")
    assert opt.plan == {"layers": "all", "weighting": "exponential", "kappa": 0.95, "w0": 1.0,
                        "gate": 0.3}  # fmt: skip
    for c in (cfg, opt):  # the files they name are committed beside them
        assert Path(c.instrument_classifier + ".safetensors").is_file()
        assert Path(c.concepts["notes"].directions + ".safetensors").is_file()
        assert (c.prompts, c.seeds, c.seconds) == (cfg.prompts, cfg.seeds, cfg.seconds)
    for sub in sorted((CONFIGS / "subsets").glob("*.toml")):
        if sub.name.startswith("testbed-"):
            continue  # the testbed's parts: test_committed_testbed_configs...
        part = load_config(sub)  # every part of the runs is a cell of the full grids
        full = opt if "optimum" in sub.name else cfg
        assert (part.prompts, part.seeds, part.plan) == (full.prompts, full.seeds, full.plan)
        assert set(part.coefs) <= set(full.coefs)
        for axis, values in part.ablations.items():
            assert set(values) <= set(full.ablations[axis])


def test_committed_directions_record_their_norm_and_weights_collapse() -> None:
    """The note directions score 1.0 on every layer for 11 of 12 classes, so linear and
    exponential weights are uniform there (the ablation table must say so, not hide it)."""
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.compile import layer_weights

    cd = ConceptDirections.load(CONFIGS / "directions" / "mini" / "notes")
    assert cd.activation_norm() == pytest.approx(9.226, abs=0.01)
    assert cd.meta["model_id"] == "musicgen-mini"
    scores = cd.scores.numpy()
    every = np.ones(scores.shape[0], dtype=bool)
    flat = [k for k in range(scores.shape[1]) if np.ptp(scores[:, k]) == 0]
    for k in flat:
        w = layer_weights(scores[:, k], every, "exponential", kappa=0.95)
        np.testing.assert_array_equal(w, layer_weights(scores[:, k], every, "uniform"))


def test_curve_leaves_out_an_eta_that_not_every_target_finished() -> None:
    from musicrfm.experiments.ablations.tables import curve_cells

    frame = _frame(0.9, 4.0, n=8)
    other = frame[frame["kind"] == "main"].assign(target="G")
    stray = frame[(frame["kind"] == "main") & (frame["coef"] == 0.1)].assign(coef=0.5)
    coefs = [c for c, _, _ in curve_cells(pd.concat([frame, other, stray]))]
    assert coefs == [0.0, 0.1, 0.2, 0.3]  # 0.5 has C only, not G


def test_committed_testbed_configs_score_chords_with_the_testbed_judge() -> None:
    from musicrfm.experiments.sweep.config import load_config
    from musicrfm.experiments.sweep.grid import expand_conditions

    cfg = load_config(CONFIGS / "testbed-chords.toml")
    opt = load_config(CONFIGS / "testbed-chords-optimum.toml")
    assert cfg.model == opt.model == "mini-poly" and cfg.coef_unit == "relative"
    spec = cfg.concepts["chords"]
    assert spec.detector == "chords"
    assert spec.targets == ["augmented", "diminished", "major", "minor"]
    assert cfg.plan == {"layers": "all", "weighting": "uniform", "gate": 1.0}
    assert opt.plan == {"layers": "all", "weighting": "exponential", "kappa": 0.95, "w0": 1.0,
                        "gate": 0.3}  # fmt: skip
    assert cfg.ablations["top_k"] == [1, 2, 3, 4, 6]
    assert cfg.ablations["gate"] == [0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0]
    kinds = pd.Series([c.kind for c in expand_conditions(cfg)]).value_counts()
    assert kinds["gate"] == 4 * 7 and kinds["top_k"] == 4 * 5 and kinds["weighting"] == 4 * 5
    for c in (cfg, opt):
        assert c.instrument_classifier.endswith("musicgen-mini-poly/instrument_judge")
        assert Path(c.instrument_classifier + ".safetensors").is_file()
        assert Path(c.concepts["chords"].directions + ".safetensors").is_file()
        assert (c.prompts, c.seeds, c.seconds) == (cfg.prompts, cfg.seeds, cfg.seconds)
    subsets = sorted(p for p in (CONFIGS / "subsets").glob("testbed-*.toml")
                     if not p.name.startswith("testbed-beat-"))  # fmt: skip
    assert len(subsets) >= 5
    own_curves = {"testbed-c1-top3-curve.toml": {"top_k": 3}, "testbed-c2-gate09-curve.toml":
                  {"gate": 0.9}}  # fmt: skip
    for sub in subsets:
        part = load_config(sub)
        if sub.name in own_curves:  # a plan's own η0 curve: the default plan with one change
            assert (part.prompts, part.seeds) == (cfg.prompts, cfg.seeds)
            assert part.plan == {**cfg.plan, **own_curves[sub.name]}
            assert set(part.concepts["chords"].targets) <= set(spec.targets)
            continue
        # every other part is a cell of the full testbed grids
        full = opt if "optimum" in sub.name else cfg
        assert (part.prompts, part.seeds, part.plan) == (full.prompts, full.seeds, full.plan)
        assert set(part.coefs) <= set(full.coefs)
        assert set(part.concepts["chords"].targets) <= set(spec.targets)
        for axis, values in part.ablations.items():
            assert set(values) <= set(full.ablations[axis])


def test_committed_strike_directions_weight_only_diminished_unevenly() -> None:
    """The testbed's strike chord directions: per-layer validation AUC is 1.0 on every layer for
    augmented, major and minor (weightings collapse to uniform there), not for diminished."""
    from musicrfm.probes.directions import ConceptDirections
    from musicrfm.steering.compile import layer_weights

    cd = ConceptDirections.load(CONFIGS / "directions" / "mini-poly" / "chords-strikes")
    assert cd.meta["model_id"] == "musicgen-mini-poly" and cd.meta["train_set"] == "strikes"
    assert cd.activation_norm() == pytest.approx(31.107, abs=0.01)
    scores = cd.scores.numpy()
    every = np.ones(scores.shape[0], dtype=bool)
    for k, name in enumerate(cd.classes):
        w = layer_weights(scores[:, k], every, "exponential", kappa=0.95)
        uniform = layer_weights(scores[:, k], every, "uniform")
        assert np.allclose(w, uniform) == (name != "diminished"), name


def _two_targets(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """C steers (hit rate rises with η0), G never does; both with the chord detector's name."""
    rng = np.random.default_rng(seed)
    rows = []
    for target, slope in (("C", 5.0), ("G", 0.0)):
        for kind, coef in (("unsteered", 0.0), ("main", 0.1), ("main", 0.2)):
            for i in range(n):
                rows.append(
                    {"kind": kind, "condition": "unsteered" if kind == "unsteered" else "concept",
                     "concept": "chords", "detector": "chords", "target": target, "coef": coef,
                     "variant": kind, "correct": bool(rng.random() < min(1.0, slope * coef)),
                     "instrument_match": 1.0, "audio_path": f"{target}{kind}{coef}/{i}.wav",
                     "prompt": "p", "seed": i}
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_targets_pool_the_hit_rate_over_the_steering_targets(tmp_path: Path) -> None:
    from musicrfm.experiments.ablations.report import only_targets, per_target_table

    frame = _two_targets()
    kept = only_targets(frame, ["C"], "t")
    assert set(kept["target"]) == {"C"} and only_targets(frame, None, "t") is frame
    with pytest.raises(ConfigError, match="not targets"):
        only_targets(frame, ["D"], "t")
    table = per_target_table({"default": frame}, n_boot=50)
    g = table[(table["target"] == "G") & (table["coef"] == 0.2)].iloc[0]
    c = table[(table["target"] == "C") & (table["coef"] == 0.2)].iloc[0]
    assert (g["hits"], g["n"], c["hits"]) == (0, 40, 40)
    assert (table["plan"] == "unsteered").sum() == 2  # one row per target

    from musicrfm.experiments.ablations import write_ablations_report

    _write_sweep(tmp_path / "a", frame)
    _write_sweep(tmp_path / "b", frame.assign(coef=frame["coef"] * 2))
    every = write_ablations_report(tmp_path / "a", tmp_path / "all", optimum=tmp_path / "b",
                                   rates=(0.8,), n_boot=100)  # fmt: skip
    # pooled with G, no plan reaches 0.8; pooled over C alone both do
    assert "does not reach" in every["verdict"]
    only_c = write_ablations_report(tmp_path / "a", tmp_path / "c", optimum=tmp_path / "b",
                                    rates=(0.8,), targets=["C"], n_boot=100)  # fmt: skip
    assert "does not reach" not in only_c["verdict"] and only_c["targets"] == ["C"]
    md = (tmp_path / "c" / "ablations.md").read_text()
    assert "chords detector" in md and "the targets C" in md
    assert (tmp_path / "c" / "per_target.csv").is_file()


def test_committed_beat_testbed_configs_are_cells_of_their_grids() -> None:
    """The beat testbed's chord ablations (session 17): every subset that was run is a cell of
    the full default or optimum grid, on mini-beat with its own judge and directions; the
    prompt probe chose the prompts on seeds the measured cells never use."""
    from musicrfm.experiments.sweep.config import load_config

    cfg = load_config(CONFIGS / "testbed-beat-chords.toml")
    opt = load_config(CONFIGS / "testbed-beat-chords-optimum.toml")
    assert cfg.model == opt.model == "mini-beat"
    assert cfg.plan == {"layers": "all", "weighting": "uniform", "gate": 1.0}
    assert opt.plan["gate"] == 0.3 and opt.plan["kappa"] == 0.95
    for c in (cfg, opt):
        assert c.instrument_classifier.endswith("musicgen-mini-beat/instrument_judge")
        assert Path(c.instrument_classifier + ".safetensors").is_file()
        assert Path(c.concepts["chords"].directions + ".safetensors").is_file()
    subsets = sorted((CONFIGS / "subsets").glob("testbed-beat-*.toml"))
    assert len(subsets) >= 5
    for sub in subsets:
        part = load_config(sub)
        assert part.model == "mini-beat"
        if "prompt-probe" in sub.name:
            assert not set(part.seeds) & set(cfg.seeds)
            continue
        full = opt if "optimum" in sub.name else cfg
        assert (part.prompts, part.seeds, part.plan) == (full.prompts, full.seeds, full.plan)
        assert set(part.coefs) <= set(full.coefs), sub.name
        for axis, values in part.ablations.items():
            assert set(values) <= set(full.ablations[axis])
