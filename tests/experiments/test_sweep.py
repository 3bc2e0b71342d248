"""Sweeps: config -> grid -> cached, resumable generation -> results -> report with controls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.controls import CONTROL_KINDS
from musicrfm.experiments.sweep import config as sweep_config
from musicrfm.experiments.sweep import run as ex
from musicrfm.experiments.sweep.grid import expand_conditions

CLASSES = ["C", "E", "G"]


@pytest.fixture(scope="module")
def tiny():
    from musicrfm.models import random_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread is much faster than two here
    yield random_model("tiny")
    torch.set_num_threads(threads)


def random_features(folder: Path, n_layers: int = 4, d: int = 64) -> Path:
    """A FeatureSet of random activations with 3 note classes (for fast probe training)."""
    from musicrfm.capture.features import FeatureSet

    g = torch.Generator().manual_seed(0)
    labels = CLASSES * 12
    fs = FeatureSet(
        torch.randn(n_layers, len(labels), d, generator=g),
        pd.DataFrame({"label": labels}),
        meta={"num_layers": n_layers, "hidden_size": d, "prompt": ""},
    )
    return fs.save(folder)


def random_directions(folder: Path, n_layers: int = 4, d: int = 64) -> Path:
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(1)
    v = torch.nn.functional.normalize(torch.randn(n_layers, 3, 1, d, generator=g), dim=-1)
    cd = ConceptDirections(
        "notes", CLASSES, v, torch.rand(n_layers, 3, generator=g), list(range(n_layers))
    )
    return cd.save(folder / "notes")


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_unknown_concept_is_a_clear_config_error(tmp_path: Path) -> None:
    cfg = {"concepts": {"timbre": {"directions": "x", "targets": ["bright"]}}}
    with pytest.raises(
        ConfigError, match=r"unknown concept 'timbre'.*notes, chords, intervals, tempos"
    ):
        sweep_config.parse_config(cfg)
    cfg = {
        "concepts": {"notes": {"directions": "x", "targets": ["C"]}},
        "multi": [
            {
                "directions": [
                    {"concept": "notes", "target": "C"},
                    {"concept": "chords", "target": "major"},
                ]
            }
        ],
    }
    with pytest.raises(ConfigError, match=r"concept 'chords' is not defined"):
        sweep_config.parse_config(cfg)
    with pytest.raises(ConfigError, match="unknown control"):
        sweep_config.parse_config(
            {"concepts": {"notes": {"directions": "x", "targets": ["C"]}}, "controls": ["shuffle"]}
        )
    # through the CLI: one line on stderr, exit code 2, no traceback
    from musicrfm.cli import main

    path = write_toml(
        tmp_path / "bad.toml", '[concepts.timbre]\ndirections = "x"\ntargets = ["a"]\n'
    )
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2


def test_missing_clap_checkpoint_fails_before_generating(tmp_path: Path) -> None:
    random_directions(tmp_path)
    cfg = {
        "concepts": {"notes": {"directions": str(tmp_path / "notes"), "targets": ["C"]}},
        "clap_checkpoint": str(tmp_path / "no-such-clap.pt"),
    }
    with pytest.raises(ConfigError, match="clap_checkpoint not found"):
        ex.run_sweep(cfg, tmp_path / "out", model=object())
    assert not (tmp_path / "out" / "audio").exists()


def test_grid_expansion_counts() -> None:
    cfg = sweep_config.parse_config(
        {
            "coefs": [0.2, 0.4],
            "seeds": [0, 1],
            "concepts": {"notes": {"directions": "x", "targets": ["C", "E"]}},
            "ablations": {"top_k": [1, 2], "gate": [0.5]},
            "multi": [
                {
                    "directions": [
                        {"concept": "notes", "target": "C"},
                        {"concept": "notes", "target": "G"},
                    ]
                }
            ],
            "crossfades": [{"concept": "notes", "a": "C", "b": "G"}],
        }
    )
    conds = expand_conditions(cfg)
    kinds = pd.Series([c.kind for c in conds]).value_counts().to_dict()
    # per target: 1 unsteered + 2 coefs x (concept + 4 controls) + 3 ablation cells
    assert kinds == {"main": 20, "unsteered": 2, "top_k": 4, "gate": 2, "multi": 2, "crossfade": 1}


def test_full_sweep_on_random_weights_is_not_specific(tmp_path: Path) -> None:
    """End to end: train directions from features, sweep with all controls, write the report.
    With random weights nothing is steered toward a note, so the concept direction must come out
    indistinguishable from its controls."""
    from musicrfm.cli import main

    random_features(tmp_path / "feats")
    cfg = write_toml(
        tmp_path / "sweep.toml",
        """
name = "tiny"
model = "random:tiny"
seconds = 0.5
prompts = ["a piano melody"]
seeds = [0, 1, 2]
coefs = [1.0, 4.0]
controls = ["random", "flip", "orthogonal", "other_class"]
[plan]
weighting = "exponential"
kappa = 0.95
gate = 0.5
[concepts.notes]
features = "feats"
targets = ["E"]
train = {components = 2}
[ablations]
schedules = ["linear-rise"]
[[multi]]
directions = [{concept = "notes", target = "E", coef = 2.0}, {concept = "notes", target = "G", coef = 2.0}]
[[crossfades]]
concept = "notes"
a = "C"
b = "G"
coef = 2.0
""",
    )
    out = tmp_path / "sweep"
    assert main(["sweep", str(cfg), "--out", str(out), "--threads", "1", "--no-progress"]) == 0
    assert len(list((out / "conditions").glob("*.json"))) == 15
    res = ex.load_results(out)
    assert len(res) == 15 * 3
    assert set(res["condition"]) == {
        "concept",
        "unsteered",
        "random",
        "flip",
        "orthogonal",
        "other_class",
    }
    assert {"label", "correct", "probe_label", "probe_correct", "embedding"} <= set(res.columns)
    assert res["probe_label"].isin(CLASSES).all()  # the paper's probe accuracy was measured
    assert (out / "directions" / "notes" / "probes" / "index.json").is_file()
    # controls at equal settings: same η0 and plan options in every main-grid row
    main_rows = res[res["kind"] == "main"]
    assert main_rows.groupby("coef")["plan_gate"].nunique().eq(1).all()
    # FD/MMD back-end: MusicGen pooled activations (tiny model: 64 dims) by default
    assert res["embedding_backend"].eq("activations").all()
    assert {len(e) for e in res["embedding"]} == {64}
    # the probe's probability trace over time for schedules and crossfades (paper Figure 1)
    timed = res[res["kind"].isin(["schedule", "crossfade"])]
    assert len(timed) == 2 * 3
    for _, r in timed.iterrows():
        n = int(np.ceil(0.5 / 0.25))  # 0.5 s clips, 0.25 s windows
        assert len(r["probe_trace_times"]) == len(r["probe_trace_target"]) == n
        assert all(0.0 <= p <= 1.0 for p in r["probe_trace_target"])
        probs = np.asarray(r["probe_trace_probs"])  # the probe's softmax over its classes
        assert probs.shape == (n, 3) and list(r["probe_trace_classes"]) == CLASSES
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
        np.testing.assert_allclose(probs[:, CLASSES.index(r["target"])], r["probe_trace_target"])
    cross = timed[timed["kind"] == "crossfade"]
    assert all(len(t) == 2 for t in cross["probe_trace_a"])
    untimed = res[~res["kind"].isin(["schedule", "crossfade"])]
    assert "probe_trace_times" not in untimed.dropna(axis=1, how="all").columns

    assert main(["report", str(out), "--n-boot", "300"]) == 0
    rep = out / "report"
    for name in (
        "index.html",
        "results.csv",
        "accuracy.md",
        "controls.md",
        "table2.md",
        "table5.md",
        "table6.md",
        "specificity.txt",
    ):
        assert (rep / name).is_file(), name
    assert (rep / "figures" / "accuracy_vs_coef.png").stat().st_size > 1000
    assert (rep / "figures" / "layer_scores.png").is_file()
    assert list((rep / "figures").glob("trace_*.png"))
    assert len(list((rep / "figures").glob("probe_trace_*.png"))) == 2
    assert "Probe-probability traces" in (rep / "index.html").read_text()
    assert pd.read_csv(rep / "table2_long.csv")["fd"].notna().all()
    page = (rep / "index.html").read_text()
    assert "<audio" in page and "Causal controls" in page
    statement = (rep / "specificity.txt").read_text()
    assert "NOT shown to be specific" in statement, statement
    controls = pd.read_csv(rep / "controls.csv")
    assert set(controls["control"]) == {"random", "flip", "orthogonal", "other_class"}
    assert not controls["specific"].any()


def test_crashed_sweep_resumes_where_it_stopped(tiny, tmp_path: Path, monkeypatch) -> None:
    import musicrfm.steering.generation as gen

    random_directions(tmp_path)
    cfg = {
        "seconds": 0.3,
        "seeds": [0],
        "coefs": [1.0],
        "controls": ["flip", "random"],
        "concepts": {"notes": {"directions": str(tmp_path / "notes"), "targets": ["C"]}},
    }
    out = tmp_path / "sweep"
    calls: list[int] = []
    real = gen.generate

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(gen, "generate", counting)

    class Crash(RuntimeError):
        pass

    def crash_after_two(cond, n):
        if n == 2:
            raise Crash

    with pytest.raises(Crash):
        ex.run_sweep(cfg, out, model=tiny, on_condition=crash_after_two)
    assert len(calls) == 2
    done = sorted((out / "conditions").glob("*.json"))
    assert len(done) == 2 and not list((out / "conditions").glob("*.tmp"))
    stamps = {p: p.stat().st_mtime_ns for p in done}

    calls.clear()
    run = ex.run_sweep(cfg, out, model=tiny)
    assert (run.conditions, run.skipped, run.finished) == (4, 2, 2)
    assert len(calls) == 2 and run.generated_clips == 2
    assert all(p.stat().st_mtime_ns == s for p, s in stamps.items())  # finished ones untouched
    assert len(run.results) == 4

    # a crash after generating but before the record: the audio is reused, not regenerated
    victim = sorted((out / "conditions").glob("*.json"))[0]
    victim.unlink()
    calls.clear()
    run = ex.run_sweep(cfg, out, model=tiny)
    assert (run.skipped, run.finished, run.generated_clips, run.reused_clips) == (3, 1, 0, 1)
    assert calls == []
    assert len(run.results) == 4


def _planted_sweep(folder: Path, effect: bool) -> Path:
    """A sweep folder with results written by hand: the concept direction hits its target in
    90% of clips and every control in 10% (effect=True), or all in 10% (effect=False)."""
    rng = np.random.default_rng(0)
    (folder / "conditions").mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"conditions": 6, "model": {}, "config": {}}))
    for condition in ["unsteered", "concept", *CONTROL_KINDS]:
        rate = 0.9 if (effect and condition == "concept") else 0.1
        coef = 0.0 if condition == "unsteered" else 0.5
        rows = []
        for seed in range(40):
            hit = bool(rng.random() < rate)
            rows.append(
                {
                    "kind": "unsteered" if condition == "unsteered" else "main",
                    "condition": condition,
                    "concept": "notes",
                    "target": "D",
                    "coef": coef,
                    "variant": "default",
                    "prompt": "p",
                    "seed": seed,
                    "label": "D" if hit else "A",
                    "confidence": 0.5,
                    "correct": hit,
                    "condition_id": condition,
                    "embedding": rng.normal(size=4).tolist(),
                    "audio_path": f"{condition}_s{seed}.wav",
                }
            )
        (folder / "conditions" / f"{condition}.json").write_text(json.dumps({"rows": rows}))
    return folder


@pytest.mark.parametrize("effect", [True, False])
def test_specificity_statement_follows_a_planted_effect(tmp_path: Path, effect: bool) -> None:
    from musicrfm.experiments.sweep.report import build_sweep_report

    folder = _planted_sweep(tmp_path / "s", effect)
    written = build_sweep_report(folder, n_boot=500, examples=False)
    statement = (folder / "report" / "specificity.txt").read_text()
    if effect:
        assert statement.startswith("The effect is specific to the concept direction"), statement
    else:
        assert "NOT shown to be specific" in statement, statement
    assert written["specificity"] == statement.strip()
    table2 = pd.read_csv(folder / "report" / "table2.csv")
    assert table2.loc[0, "detector_acc η0=0.5"] == pytest.approx(0.9 if effect else 0.1, abs=0.12)


def test_embedding_back_end_defaults_to_activations_and_mfcc_by_config(tiny) -> None:
    from musicrfm.experiments.sweep.scoring import _embed

    cfg = sweep_config.parse_config({"concepts": {"notes": {"directions": "x", "targets": ["C"]}}})
    t = np.arange(8000) / 16000
    clips = [np.sin(2 * np.pi * f * t).astype(np.float32) for f in (220.0, 440.0)]
    name, emb = _embed(cfg, tiny, clips, 16000)
    assert name == "activations" and emb.shape == (2, tiny.hidden_size)
    cfg.embedding = "mfcc"  # the config key `embedding` (read when the config has it)
    name, emb = _embed(cfg, tiny, clips, 16000)
    assert name == "mfcc" and emb.shape == (2, 80)
    cfg.embedding = "activations:0"
    name, first = _embed(cfg, tiny, clips, 16000)
    assert name == "activations" and first.shape == (2, tiny.hidden_size)
    cfg.embedding = "openl3"
    with pytest.raises(ConfigError, match="unknown embedding"):
        _embed(cfg, tiny, clips, 16000)


def test_fd_compares_like_with_like_when_back_ends_are_mixed() -> None:
    from musicrfm.experiments.sweep.tables import _metrics

    rng = np.random.default_rng(0)

    def rows(n: int, dim: int, backend: str | None, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "correct": [True] * n,
                "embedding": [rng.normal(shift, 1.0, dim) for _ in range(n)],
                "embedding_backend": [backend] * n,
            }
        )

    group = rows(6, 4, "activations", 3.0)
    # a resumed sweep: unsteered clips embedded on MFCC before (no column), activations now
    reference = pd.concat([rows(5, 80, None, 0.0), rows(6, 4, "activations", 0.0)])
    out = _metrics(group, reference, n_boot=50, seed=0)
    assert out["embedding"] == "activations" and out["fd"] > 10 and out["mmd"] > 0
    only_mfcc = _metrics(group, rows(5, 80, "mfcc", 0.0), n_boot=50, seed=0)
    assert np.isnan(only_mfcc["fd"]) and np.isnan(only_mfcc["mmd"])


def test_config_key_embedding_selects_the_back_end() -> None:
    from musicrfm.experiments.sweep.config import parse_config

    base = {"concepts": {"notes": {"targets": ["C"], "directions": "dirs"}}}
    assert parse_config(base).embedding is None
    assert parse_config({**base, "embedding": "mfcc"}).embedding == "mfcc"
    assert parse_config({**base, "embedding": "activations:2"}).embedding == "activations:2"
    with pytest.raises(ConfigError, match="unknown embedding"):
        parse_config({**base, "embedding": "openl3"})


def regression_directions(folder: Path, n_layers: int = 4, d: int = 64) -> Path:
    """Tempo-like directions: a regression has one direction, class 'value'."""
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(2)
    v = torch.nn.functional.normalize(torch.randn(n_layers, 1, 1, d, generator=g), dim=-1)
    cd = ConceptDirections(
        "tempos", ["value"], v, torch.rand(n_layers, 1, generator=g), list(range(n_layers)),
        meta={"task": "regression"},
    )  # fmt: skip
    return cd.save(folder / "tempos")


def test_a_tempo_sweep_steers_faster_and_slower_and_scores_against_the_baseline(
    tiny, tmp_path: Path
) -> None:
    """A regression direction's targets are 'faster'/'slower' (the sign of η0); a clip is right
    when its detected BPM is above (below) the median of the unsteered clips with a pulse (a
    clip without one is neither)."""
    regression_directions(tmp_path)
    cfg = {
        "seconds": 1.0,
        "seeds": [0, 1],
        "coefs": [2.0],
        "concepts": {"tempos": {"directions": str(tmp_path / "tempos"), "targets": ["faster", "slower"]}},
    }  # fmt: skip
    run = ex.run_sweep(cfg, tmp_path / "sweep", model=tiny)
    res = run.results
    assert set(res["condition"]) == {"unsteered", "concept", "random", "flip", "orthogonal"}
    assert "bpm" in res.columns and res["bpm"].notna().any()
    pulsed = res["bpm"].where(res["pulse"].astype(bool))
    median = float(pulsed[res["condition"] == "unsteered"].median())
    assert np.allclose(res["baseline_median"], median, equal_nan=True)
    sign = res["target"].map({"faster": 1.0, "slower": -1.0})
    assert (res["correct"] == (sign * (pulsed - median) > 0)).all()
    plans = {
        (rec["condition"]["target"], rec["condition"]["condition"]): rec["plan"]
        for rec in (json.loads(p.read_text()) for p in (tmp_path / "sweep" / "conditions").glob("*.json"))
    }  # fmt: skip
    from musicrfm.probes.directions import ConceptDirections

    cd = ConceptDirections.load(tmp_path / "tempos")
    faster, slower = plans[("faster", "concept")], plans[("slower", "concept")]
    assert (
        faster["direction"][0]["target"] == "faster"
        and slower["direction"][0]["target"] == "slower"
    )
    assert faster["direction"][0]["coef"] == slower["direction"][0]["coef"] == 2.0
    assert cd.sign_of("faster") == 1.0 and cd.sign_of("slower") == -1.0
    from musicrfm.experiments.sweep.report import build_sweep_report

    written = build_sweep_report(tmp_path / "sweep", n_boot=200, examples=True)
    assert Path(written["html"] if isinstance(written, dict) else written).exists()


@pytest.mark.parametrize(
    ("concept", "make", "target", "says"),
    [
        ("tempos", regression_directions, "140", "target 'faster' or 'slower'"),
        ("notes", random_directions, "faster", "use one of C, E, G"),
        ("notes", random_directions, "D", "valid: C, E, G"),
    ],
)
def test_a_target_of_the_wrong_kind_says_what_to_use_before_generating(
    tiny, tmp_path: Path, concept, make, target, says
) -> None:
    make(tmp_path)
    cfg = {
        "seconds": 0.3,
        "seeds": [0],
        "coefs": [1.0],
        "concepts": {concept: {"directions": str(tmp_path / concept), "targets": [target]}},
    }
    with pytest.raises(ConfigError, match=says):
        ex.run_sweep(cfg, tmp_path / "sweep", model=tiny)
    assert not (tmp_path / "sweep" / "audio").exists()


def test_a_cut_short_condition_record_is_run_again_and_a_damaged_sweep_json_is_named(
    tiny, tmp_path: Path
) -> None:
    """A record cut short (a full disk, a stopped copy) used to count as done forever."""
    from musicrfm.experiments.sweep.report import build_sweep_report

    random_directions(tmp_path)
    cfg = {
        "seconds": 0.3,
        "seeds": [0],
        "coefs": [1.0],
        "controls": ["flip"],
        "concepts": {"notes": {"directions": str(tmp_path / "notes"), "targets": ["C"]}},
    }
    out = tmp_path / "sweep"
    first = ex.run_sweep(cfg, out, model=tiny)
    victim = sorted((out / "conditions").glob("*.json"))[0]
    whole = victim.read_text()
    victim.write_text(whole[: len(whole) // 2])
    run = ex.run_sweep(cfg, out, model=tiny)
    assert (run.skipped, run.finished, run.generated_clips) == (first.conditions - 1, 1, 0)
    assert json.loads(victim.read_text())["rows"] == json.loads(whole)["rows"]
    assert len(run.results) == len(first.results)

    (out / "sweep.json").write_text('{"format_version": 1, "conf')
    with pytest.raises(ConfigError, match="sweep.json is damaged.*run the same `musicrfm sweep`"):
        build_sweep_report(out)
    (out / "sweep.json").write_text('{"format_version": 1, "config": 5, "concepts": []}')
    with pytest.raises(ConfigError, match="sweep.json is damaged \\(config, concepts must be a t"):
        build_sweep_report(out)


def test_relative_coefs_steer_at_a_multiple_of_the_activation_norm(tmp_path: Path) -> None:
    """`coefs = ["0.1x"]`: η0 = 0.1 × the directions' median activation norm, controls too."""
    from musicrfm.experiments.sweep.assets import ConceptAssets
    from musicrfm.experiments.sweep.grid import Condition, Term
    from musicrfm.probes.directions import ConceptDirections

    random_directions(tmp_path)
    concepts = {"notes": {"directions": str(tmp_path / "notes"), "targets": ["C"]}}
    raw = {"coefs": ["0.05x", "0.1x"], "ablation_coef": "0.1x", "concepts": concepts}
    raw["crossfades"] = [{"concept": "notes", "a": "C", "b": "E", "coef": "0.2x"}]
    cfg = sweep_config.parse_config(raw)
    assert cfg.coefs == [0.05, 0.1] and cfg.coef_unit == "relative"
    kept = {**cfg.to_dict(), "concepts": concepts}  # sweep.json's config parses the same
    again = sweep_config.parse_config({k: v for k, v in kept.items() if v is not None})
    assert (again.coefs, again.coef_unit, again.ablation_coef) == ([0.05, 0.1], "relative", 0.1)
    assert again.crossfades[0]["coef"] == 0.2
    with pytest.raises(ConfigError, match="mixes absolute"):
        sweep_config.parse_config({**raw, "coefs": [0.3, "0.1x"]})
    with pytest.raises(ConfigError, match="mixes absolute"):
        sweep_config.parse_config({**raw, "ablation_coef": 0.3})

    cd = ConceptDirections.load(tmp_path / "notes")
    cd.meta["activation_norm"] = 8.0
    assets = {"notes": ConceptAssets(cd)}
    for control in (None, "random"):
        cond = Condition("main", control or "concept", "notes", "C", 0.1, "", [
            Term("notes", "C", 0.1, control)])  # fmt: skip
        plan = ex.build_plan(cond, assets, 0, relative=True)
        assert plan.directions[0].coef == pytest.approx(0.8)
        assert ex.build_plan(cond, assets, 0).directions[0].coef == pytest.approx(0.1)
    cd.meta.pop("activation_norm")
    with pytest.raises(ConfigError, match="do not record it"):
        ex.build_plan(cond, assets, 0, relative=True)


def test_a_clip_in_two_condition_records_counts_once(caplog) -> None:
    """A grid run twice into one folder under other condition names wrote each clip's row
    twice; the loader keeps one (unsteered clips judged against several targets stay)."""
    import logging

    import pandas as pd

    from musicrfm.experiments.sweep.run import _one_row_per_clip

    rows = pd.DataFrame(
        {
            "audio_path": ["a.wav", "a.wav", "b.wav", "u.wav", "u.wav"],
            "target": ["C", "C", "C", "C", "G"],
            "condition": ["concept", "concept-old", "concept", "unsteered", "unsteered"],
        }
    )
    with caplog.at_level(logging.WARNING):
        kept = _one_row_per_clip(rows, Path("sweep"))
    assert len(kept) == 4 and "1 clip rows appear in more than one" in caplog.text
    assert kept["condition"].tolist()[:2] == ["concept-old", "concept"]
