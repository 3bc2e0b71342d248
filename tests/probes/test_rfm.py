"""The RFM probe: gradients, AGOP, selection, I/O, parity with xrfm, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.kernels import (
    agop_from_gradients,
    distances,
    kernel_from_distances,
    predictor_gradients,
    solve_krr,
)
from musicrfm.probes.metrics import auc_score
from musicrfm.probes.rfm import RFM, RFMParams


def _planted(n=400, d=24, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * 2 + 1.0
    u = torch.randn(d, generator=g)
    u /= u.norm()
    y = ((X - 1.0) @ u + noise * torch.randn(n, generator=g) > 0).long()
    return X, y, u


@pytest.mark.parametrize("norm_p", [2.0, 1.5])
@pytest.mark.parametrize("metric", ["identity", "psd"])
def test_closed_form_gradients_equal_autograd(norm_p, metric):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(25, 6, generator=g, dtype=torch.float64)
    z = torch.randn(9, 6, generator=g, dtype=torch.float64)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    M = None if metric == "identity" else A @ A.T / 6
    alpha = torch.randn(25, 3, generator=g, dtype=torch.float64)
    p = RFMParams(bandwidth=2.5, exponent=1.3, norm_p=norm_p)
    closed = predictor_gradients(x, z, alpha, M, p)
    zz = z.clone().requires_grad_(True)
    f = kernel_from_distances(distances(x, zz, M, norm_p=norm_p), 2.5, 1.3).T @ alpha
    auto = torch.stack(
        [torch.autograd.grad(f[:, o].sum(), zz, retain_graph=True)[0] for o in range(3)]
    )
    assert closed.shape == (3, 9, 6)
    torch.testing.assert_close(closed, auto, rtol=1e-9, atol=1e-12)


def test_agop_matches_explicit_sum_and_centring():
    g = torch.Generator().manual_seed(2)
    grads = torch.randn(2, 30, 5, generator=g, dtype=torch.float64)
    rows = grads.reshape(-1, 5)
    explicit = sum(torch.outer(r, r) for r in rows)
    a = agop_from_gradients(grads)
    torch.testing.assert_close(a / a.max(), explicit / explicit.max())
    c = rows - rows.mean(0)
    explicit_c = c.T @ c
    ac = agop_from_gradients(grads, center=True)
    torch.testing.assert_close(ac / ac.max(), explicit_c / explicit_c.max())


def test_agop_top_eigenvector_recovers_planted_direction():
    X, y, u = _planted(n=500, d=24)
    m = RFM(RFMParams(bandwidth=10.0, reg=1e-3), iters=3).fit(X[:400], y[:400], X[400:], y[400:])
    vals, vecs = m.eigenvectors(3)
    assert torch.all(vals[:-1] >= vals[1:])
    assert abs(float(vecs[0].double() @ u.double())) > 0.9
    assert torch.allclose(vecs.norm(dim=1), torch.ones(3, dtype=vecs.dtype), atol=1e-6)


def test_keeps_best_iteration_and_is_deterministic():
    X, y, _ = _planted(n=300, d=16, seed=3, noise=1.0)
    kw = dict(iters=4, early_stop_multiplier=None)
    a = RFM(RFMParams(bandwidth=5.0, reg=1e-2), **kw).fit(X[:220], y[:220], X[220:], y[220:])
    b = RFM(RFMParams(bandwidth=5.0, reg=1e-2), **kw).fit(X[:220], y[:220], X[220:], y[220:])
    h = a.history.val_metric
    assert len(h) == 5
    assert a.history.best_iter == int(np.argmax(h))
    assert a.score(X[220:], y[220:]) == pytest.approx(max(h))
    assert torch.equal(a.alpha, b.alpha) and torch.equal(a.agop(), b.agop())


def test_patience_stops_early():
    X, y, _ = _planted(n=200, d=8, seed=4)
    m = RFM(RFMParams(bandwidth=5.0), iters=10, patience=1, early_stop_multiplier=None)
    m.fit(X[:150], y[:150], X[150:], y[150:])
    assert len(m.history.val_metric) < 11 or m.history.best_iter == 10


def test_multiclass_softmax_and_regression_stats():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(360, 10, generator=g)
    y = (X[:, 0] > 0.5).long() + (X[:, 1] > 0).long() * 2 - (X[:, 1] > 0).long()  # 0..2
    mc = RFM(RFMParams(bandwidth=5.0, reg=1e-3), task="multiclass", iters=2)
    mc.fit(X[:280], y[:280], X[280:], y[280:])
    proba = mc.predict_proba(X[280:])
    assert proba.shape == (80, 3)
    torch.testing.assert_close(proba.sum(1), torch.ones(80, dtype=proba.dtype))
    assert mc.score(X[280:], y[280:]) > 0.6
    target = 120.0 + 30.0 * X[:, 2] + 5 * torch.tanh(X[:, 3])
    reg = RFM(RFMParams(bandwidth=10.0, reg=1e-3), task="regression", iters=2)
    reg.fit(X[:280], target[:280], X[280:], target[280:])
    assert reg.y_mean == pytest.approx(float(target[:280].double().mean()), rel=1e-6)
    assert reg.score(X[280:], target[280:]) > 0.8  # R^2 in original units
    assert abs(float(reg.predict(X[280:]).mean()) - 120.0) < 15


def test_save_load_round_trip_exact(tmp_path):
    X, y, _ = _planted(n=200, d=12, seed=6)
    m = RFM(RFMParams(bandwidth=7.0, exponent=1.1, center_grads=True), iters=2)
    m.fit(X[:150], y[:150], X[150:], y[150:])
    m.save(tmp_path / "probe")
    m2 = RFM.load(tmp_path / "probe.safetensors")
    assert m2.params == m.params and m2.task == "binary"
    for name in ("centers", "shift", "alpha"):
        assert torch.equal(getattr(m, name), getattr(m2, name))
    assert (m.M is None and m2.M is None) or torch.equal(m.M, m2.M)
    assert torch.equal(m.decision_function(X[150:]), m2.decision_function(X[150:]))
    assert torch.equal(m.agop(), m2.agop())


def test_solver_survives_singular_system():
    X = torch.ones(20, 4)  # every point identical: K is all ones, singular with reg=0
    K = kernel_from_distances(distances(X, X, symmetric=True), 1.0, 1.0)
    alpha, jitter = solve_krr(K, torch.ones(20, 1, dtype=torch.float64), 0.0)
    assert torch.isfinite(alpha).all() and jitter > 0


def test_bad_input_is_named():
    X, y, _ = _planted(n=60, d=4)
    bad = X.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ConfigError, match="NaN/inf"):
        RFM().fit(bad[:40], y[:40], X[40:], y[40:])
    with pytest.raises(ConfigError, match="targets for"):
        RFM().fit(X[:40], y[:30], X[40:], y[40:])
    with pytest.raises(ConfigError, match="0/1"):
        RFM().fit(X[:40], y[:40] + 1, X[40:], y[40:])
    with pytest.raises(ConfigError, match="single class"):
        RFM().fit(X[:40], torch.zeros(40, dtype=torch.long), X[40:], y[40:])
    with pytest.raises(ConfigError, match="features"):
        RFM().fit(X[:40], y[:40], X[40:, :3], y[40:])
    with pytest.raises(ConfigError, match="not fitted"):
        RFM().predict(X)
    with pytest.raises(ConfigError, match="bandwidth"):
        RFMParams(bandwidth=0)


def test_parity_with_xrfm_on_synthetic_layers():
    xrfm = pytest.importorskip("xrfm.rfm_src")
    from xrfm.rfm_src.class_conversion import ClassificationConverter

    diffs = []
    for seed, (L, q, centre) in enumerate(
        [(5.0, 1.0, False), (20.0, 0.8, True), (40.0, 1.3, False)]
    ):
        X, y, _ = _planted(n=300, d=16, seed=10 + seed, noise=1.5)
        Xt, yt, Xv, yv = X[:220], y[:220], X[220:], y[220:]
        p = RFMParams(bandwidth=L, reg=1e-3, exponent=q, center_grads=centre)
        ours = RFM(p, iters=3).fit(Xt, yt, Xv, yv)
        ref = xrfm.RFM(
            kernel="laplace",
            bandwidth=L,
            exponent=q,
            device="cpu",
            tuning_metric="auc",
            class_converter=ClassificationConverter(mode="zero_one", n_classes=2),
            verbose=False,
        )
        ref.fit(
            (Xt, yt.float()[:, None]),
            (Xv, yv.float()[:, None]),
            iters=4,
            reg=1e-3,
            center_grads=centre,
        )
        a = auc_score(yv.numpy(), ours.decision_function(Xv).numpy())
        b = auc_score(yv.numpy(), ref.predict(Xv)[:, 0].numpy())
        diffs.append(abs(a - b))
    assert float(np.mean(diffs)) < 0.01, diffs


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_matches_cpu():
    X, y, _ = _planted(n=300, d=16, seed=7)
    p = RFMParams(bandwidth=8.0, reg=1e-3)
    cpu = RFM(p, iters=2).fit(X[:220], y[:220], X[220:], y[220:])
    gpu = RFM(p, iters=2, device="cuda").fit(X[:220], y[:220], X[220:], y[220:])
    torch.testing.assert_close(
        gpu.decision_function(X[220:]).cpu(), cpu.decision_function(X[220:]), rtol=1e-3, atol=1e-3
    )
    assert gpu.agop().device.type == "cuda"
