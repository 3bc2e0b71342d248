"""Probe training: planted directions, sign rule, tasks, splits, bad input, baselines, table, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.capture.features import FeatureSet
from musicrfm.cli import main
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.probes.baselines import logistic_probe, mean_difference, mlp_probe, ridge_probe
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.rfm import RFM
from musicrfm.probes.search import budget_with, get_budget, sample_params, search_rfm
from musicrfm.probes.splits import make_splits
from musicrfm.probes.training import train_directions

TINY = budget_with("fast", n_draws=3, keep=1, iters=2, mc_draws=2, mc_keep=1, mc_iters=1)
NAMES = ["C", "D", "E", "F"]


def _planted(n_per_class=45, n_classes=4, d=16, layers=3, seed=0, strengths=(0.2, 2.5, 1.0)):
    """Class c is shifted along a unit vector u_c, with a per-layer strength.

    The u_c are centred (they sum to zero), so the one-vs-rest mean difference of class c is
    exactly along u_c: that is the direction its probe should find.
    """
    g = torch.Generator().manual_seed(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    U = torch.linalg.qr(torch.randn(d, n_classes, generator=g))[0].T
    U = U - U.mean(0)
    U = U / U.norm(dim=1, keepdim=True)
    F = torch.stack(
        [
            torch.randn(len(labels), d, generator=g) + s * U[torch.as_tensor(labels)] + 2.0
            for s in strengths[:layers]
        ]
    )
    rows = pd.DataFrame({"label": pd.Categorical([NAMES[i] for i in labels], categories=NAMES)})
    meta = dict(model_id="test/tiny", num_layers=layers, hidden_size=d, pooling="mean", prompt="")
    return FeatureSet(F, rows, meta), U


def test_one_vs_rest_directions_recover_planted_vectors_with_sign():
    fs, U = _planted()
    res = train_directions(fs, budget=TINY, components=2, progress=False, concept="notes")
    d = res.directions
    assert d.vectors.shape == (3, 4, 2, 16) and d.classes == NAMES and d.layers == [0, 1, 2]
    # strong layer 1: the top direction of class c is +u_c (sign: positive correlation with label).
    # (Negatives are a mixture of the other classes, so the kernel probe's gradients also carry
    # some of their directions; the single-direction > 0.9 check is in test_rfm.)
    cos = torch.einsum("cd,cd->c", d.vectors[1, :, 0].double(), U.double())
    assert torch.all(cos > 0.85) and cos.mean() > 0.9, cos
    assert torch.all(d.scores[1] > 0.95) and d.scores[1].mean() > d.scores[0].mean()
    assert torch.all(d.eigenvalues[..., 0] >= d.eigenvalues[..., 1])
    # sign rule on the training data: class members project higher than the rest
    X = fs.features[1]
    y = fs.rows["label"].to_numpy()
    for c, name in enumerate(NAMES):
        proj = X @ d.vectors[1, c, 0]
        assert proj[torch.as_tensor(y == name)].mean() > proj[torch.as_tensor(y != name)].mean()
    # metadata needed to reproduce and to check compatibility
    m = d.meta
    for key in (
        "model_id",
        "num_layers",
        "hidden_size",
        "pooling",
        "prompt",
        "concept",
        "classes",
        "score_name",
        "hyperparams",
        "library_version",
        "seed",
        "budget_settings",
    ):
        assert key in m, key
    assert (
        m["score_name"] == "val_auc"
        and len(m["hyperparams"]) == 3
        and len(m["hyperparams"][0]) == 4
    )
    assert {"bandwidth", "reg", "exponent", "center_grads", "best_iter"} <= set(
        m["hyperparams"][1][0]
    )
    assert m["split_counts"] == {"train": 128, "val": 28, "test": 24}
    d.check_compatible({"model_id": "test/tiny", "hidden_size": 16, "num_layers": 3})
    # multiclass probes per layer, with softmax probabilities
    assert sorted(res.multiclass_probes) == [0, 1, 2]
    assert res.multiclass_scores[1]["test_accuracy"] > 0.8
    proba = res.multiclass_probes[1].predict_proba(X[:5])
    torch.testing.assert_close(proba.sum(1), torch.ones(5, dtype=proba.dtype))


def test_screen_keeps_the_best_iteration0_draws_and_fast_budget_screens():
    fs, _ = _planted(n_per_class=40, n_classes=2, layers=2)
    X = fs.features[1]
    y = (fs.rows["label"] == "C").to_numpy().astype(np.int64)
    tr, va = np.arange(0, 80, 2), np.arange(1, 80, 2)
    bud = budget_with("fast", n_draws=6, keep=2, iters=1)
    fit = search_rfm(X[tr], y[tr], X[va], y[va], task="binary", budget=bud, seed=5)
    draws = sample_params(6, 5)
    keys = [
        RFM(p, iters=0).fit(X[tr], y[tr], X[va], y[va], with_agop=False).best_key for p in draws
    ]
    top = sorted(range(6), key=lambda i: (*keys[i], -i), reverse=True)[:2]
    assert fit.model.params in [draws[i] for i in top] and fit.draws_tried == 6
    # the default budget screens many cheap iteration-0 draws and iterates only a few
    fast = get_budget("fast")
    assert fast.n_draws >= 4 * fast.keep and fast.iters >= 2


def test_same_seed_same_directions():
    fs, _ = _planted(n_per_class=30, layers=2)
    kw = dict(budget=TINY, layers=[1], progress=False, multiclass_probes=False)
    a = train_directions(fs, **kw).directions
    b = train_directions(fs, **kw).directions
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.scores, b.scores)


def test_regression_and_multiclass_tasks():
    g = torch.Generator().manual_seed(3)
    n, d = 150, 12
    u = torch.randn(d, generator=g)
    u /= u.norm()
    X = torch.randn(2, n, d, generator=g)
    tempo = 120 + 25 * (X[1] @ u) + torch.randn(n, generator=g)
    rows = pd.DataFrame({"bpm": tempo.numpy().astype(np.float64)})
    fs = FeatureSet(X, rows, {"model_id": "m"})
    res = train_directions(fs, label_column="bpm", budget=TINY, progress=False)
    d = res.directions
    assert (
        d.meta["task"] == "regression"
        and d.classes == ["value"]
        and d.meta["score_name"] == "val_r2"
    )
    assert float(d.scores[1, 0]) > 0.8 and float(d.scores[0, 0]) < 0.5
    assert float(d.vectors[1, 0, 0] @ u) > 0.9  # positive: projection grows with the tempo
    fs2, _ = _planted(n_per_class=30, layers=2)
    mc = train_directions(
        fs2, task="multiclass", budget=TINY, progress=False, layers=[1]
    ).directions
    assert mc.classes == ["all"] and mc.meta["direction_kind"] == "multiclass_agop"
    v = mc.vectors[0, 0]
    assert torch.all(v.gather(1, v.abs().argmax(1, keepdim=True)) > 0)  # canonical sign


def test_tempo_labels_written_as_text_are_a_regression():
    """A synth manifest keeps ``label`` as text ("120"): numbers written as text are still a
    regression, and the directions come out the same as from numeric labels."""
    g = torch.Generator().manual_seed(3)
    n, d = 150, 12
    u = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    X = torch.randn(2, n, d, generator=g)
    bpm = np.round(120 + 25 * (X[1] @ u).numpy()).astype(int)
    numeric = FeatureSet(X, pd.DataFrame({"label": bpm}), {"model_id": "m"})
    text = FeatureSet(X, pd.DataFrame({"label": bpm.astype(str)}), {"model_id": "m"})
    a = train_directions(numeric, budget=TINY, progress=False).directions
    b = train_directions(text, budget=TINY, progress=False).directions
    assert b.meta["task"] == "regression" and b.classes == ["value"]
    assert torch.equal(a.vectors, b.vectors)
    with pytest.raises(DatasetError, match="regression needs numeric labels"):
        train_directions(
            FeatureSet(X, pd.DataFrame({"label": ["C", "D"] * 75}), {}),
            task="regression", budget=TINY, progress=False,
        )  # fmt: skip


def test_split_column_is_respected_and_default_split_is_stratified():
    fs, _ = _planted(n_per_class=40, layers=1)
    s = make_splits(fs.rows["label"], len(fs), seed=0)
    assert (s == "train").sum() == 112 and (s == "val").sum() == 24
    assert pd.crosstab(fs.rows["label"], s)["train"].nunique() == 1  # same count per class
    fs.rows["split"] = np.where(
        np.arange(len(fs)) % 5 == 0, "val", np.where(np.arange(len(fs)) % 5 == 1, "test", "train")
    )
    res = train_directions(fs, budget=TINY, progress=False, multiclass_probes=False)
    assert res.directions.meta["split_source"] == "column"
    assert res.directions.meta["split_counts"] == {"train": 96, "val": 32, "test": 32}


def test_bad_input_gives_clear_errors():
    fs, _ = _planted(n_per_class=20, layers=2)
    kw = dict(budget=TINY, progress=False)
    one = FeatureSet(fs.features, pd.DataFrame({"label": ["C"] * len(fs)}), fs.meta)
    with pytest.raises(DatasetError, match="single class 'C'"):
        train_directions(one, **kw)
    bad = fs.features.clone()
    bad[1, 7, 3] = float("inf")
    with pytest.raises(DatasetError, match=r"layer 1 contain 1 NaN/inf.*\[7\]"):
        train_directions(FeatureSet(bad, fs.rows, fs.meta), **kw)
    few = FeatureSet(fs.features[:, :43], fs.rows.iloc[:43], fs.meta)  # class 'E' has 3 rows
    with pytest.raises(DatasetError, match="too few samples in split"):
        train_directions(few, **kw)
    with pytest.raises(ConfigError, match="label column 'chord' not found"):
        train_directions(fs, label_column="chord", **kw)
    broken = FeatureSet(fs.features, fs.rows, fs.meta)
    broken.rows = broken.rows.iloc[:50]
    with pytest.raises(DatasetError, match="80 feature rows but 50 label rows"):
        train_directions(broken, **kw)
    with pytest.raises(ConfigError, match="layer 5 out of range"):
        train_directions(fs, layers=[5], **kw)
    with pytest.raises(ConfigError, match="unknown budget"):
        train_directions(fs, budget="huge")
    fs.rows["split"] = "training"
    with pytest.raises(DatasetError, match="unknown values"):
        train_directions(fs, **kw)


def test_linear_baselines_give_directions_and_mlp_classifies():
    fs, U = _planted(n_per_class=60, layers=2)
    X = fs.features[1].numpy()
    y = (fs.rows["label"] == "D").to_numpy().astype(np.int64)
    tr, va, te = np.arange(0, 160), np.arange(160, 200), np.arange(200, 240)
    perm = np.random.default_rng(0).permutation(len(y))
    parts = []
    for ix in (tr, va, te):
        parts += [X[perm[ix]], y[perm[ix]]]
    for probe in (ridge_probe, logistic_probe, mean_difference):
        r = probe(*parts, task="binary")
        assert r.val_score > 0.9 and float(r.direction.double() @ U[1].double()) > 0.85, r.method
    yc = fs.rows["label"].cat.codes.to_numpy().astype(np.int64)
    parts_mc = []
    for ix in (tr, va, te):
        parts_mc += [X[perm[ix]], yc[perm[ix]]]
    assert mlp_probe(*parts_mc, task="multiclass", epochs=15).test_score > 0.7
    assert mean_difference(*parts_mc, task="multiclass").test_score > 0.7


def test_train_cli_writes_directions_probes_and_table(tmp_path, capsys):
    fs, _ = _planted(n_per_class=30, layers=2)
    fs.save(tmp_path / "feats")
    out = tmp_path / "dirs"
    rc = main(
        [
            "train",
            "--features",
            str(tmp_path / "feats"),
            "--out",
            str(out),
            "--concept",
            "notes",
            "--components",
            "2",
            "--layers",
            "1",
            "--baselines",
            "ridge,mean_difference",
            "--no-progress",
        ]
    )
    assert rc == 0
    d = ConceptDirections.load(out / "notes.safetensors")
    assert d.vectors.shape == (1, 4, 2, 16) and d.meta["concept"] == "notes" and d.layers == [1]
    assert (out / "probes" / "notes_multiclass_layer01.safetensors").exists()
    table = (out / "classification_table.md").read_text()
    assert (
        "| Model | notes | Avg. |" in table
        and "Linear (ridge) probe" in table
        and "MusicRFM" in table
    )
    scores = pd.read_csv(out / "layer_scores.csv")
    assert set(scores["method"]) == {"rfm", "ridge", "mean_difference"} and len(scores) == 3
    assert (out / "layer_scores.png").stat().st_size > 1000
    rc = main(
        [
            "train",
            "--features",
            str(tmp_path / "feats"),
            "--out",
            str(out),
            "--label-column",
            "nope",
        ]
    )
    assert rc == 2 and "label column 'nope' not found" in capsys.readouterr().err
