"""Metrics: bootstrap CIs, accuracy, Fréchet distance, MMD, embeddings and CLAP errors."""

from __future__ import annotations

import builtins
import functools

import numpy as np
import pandas as pd
import pytest

from musicrfm.errors import AudioError, ConfigError, ModelError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation import metrics as m


def test_bootstrap_ci_is_seeded_and_covers_the_mean() -> None:
    x = np.random.default_rng(1).normal(3.0, 1.0, 200)
    a = m.bootstrap_ci(x, seed=7)
    b = m.bootstrap_ci(x, seed=7)
    c = m.bootstrap_ci(x, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low < a.value < a.high and a.n == 200
    # the CI of a mean of 200 N(3,1) draws has half-width about 1.96/sqrt(200) = 0.14
    assert 0.08 < (a.high - a.low) / 2 < 0.2
    assert "n=200" in str(a)


def test_bootstrap_ci_degenerate_and_bad_input() -> None:
    one = m.bootstrap_ci([1.0])
    assert (one.value, one.low, one.high, one.n) == (1.0, 1.0, 1.0, 1)
    constant = m.bootstrap_ci([1.0] * 10)
    assert constant.low == constant.high == 1.0
    with pytest.raises(ConfigError, match="empty"):
        m.bootstrap_ci([])
    with pytest.raises(ConfigError, match="confidence"):
        m.bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_bootstrap_ci_custom_statistic() -> None:
    est = m.bootstrap_ci(np.arange(101.0), np.median, n_boot=300, seed=0)
    assert est.value == 50.0 and est.low < 50 < est.high


def test_target_accuracy_with_custom_match() -> None:
    est = m.target_accuracy(["C", "D", "E", "F"], ["C", "D", "E", "G"])
    assert est.value == 0.75 and est.n == 4
    tempo = m.target_accuracy(
        ["60", "121", "90"],
        [120, 120, 120],
        match=functools.partial(det.label_matches, "tempos", factors=det.OCTAVE_FACTORS),
    )
    assert tempo.value == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="targets"):
        m.target_accuracy(["C"], ["C", "D"])


def test_grouped_accuracy() -> None:
    frame = pd.DataFrame(
        {
            "condition": ["a"] * 4 + ["b"] * 2,
            "coef": [0.1, 0.1, 0.5, 0.5, 0.1, 0.1],
            "correct": [True, False, True, True, False, False],
        }
    )
    out = m.grouped_accuracy(frame, ["condition", "coef"])
    assert list(out.columns) == ["condition", "coef", "accuracy", "ci_low", "ci_high", "n"]
    row = out[(out.condition == "a") & (out.coef == 0.5)].iloc[0]
    assert row.accuracy == 1.0 and row.n == 2
    with pytest.raises(ConfigError, match="no column"):
        m.grouped_accuracy(frame, "prompt")


def test_frechet_distance_properties() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = rng.normal(size=(400, 4))
    shifted = y + np.array([2.0, 0, 0, 0])
    assert m.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    same = m.frechet_distance(x, y)
    far = m.frechet_distance(x, shifted)
    assert same < 0.2
    assert far == pytest.approx(4.0 + same, abs=0.3)  # ||mu diff||^2 = 4
    # scaled covariance: FD of N(0, I) vs N(0, 4I) in d dims = d * (1 + 4 - 2*2) = d
    assert m.frechet_distance(x, 2 * y) == pytest.approx(4.0, rel=0.25)
    with pytest.raises(ConfigError, match="at least 2"):
        m.frechet_distance(x[:1], y)
    with pytest.raises(ConfigError, match="sizes differ"):
        m.frechet_distance(x, y[:, :3])


def test_mmd_rbf_separates_distributions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3))
    y = rng.normal(size=(150, 3))
    z = rng.normal(loc=1.5, size=(150, 3))
    near, far = m.mmd_rbf(x, y), m.mmd_rbf(x, z)
    assert abs(near) < 0.02
    assert far > 0.1
    assert m.mmd_rbf(x, z, bandwidth=1.0) != pytest.approx(far)
    assert m.median_bandwidth(x, y) > 0
    with pytest.raises(ConfigError, match="positive"):
        m.mmd_rbf(x, y, bandwidth=0.0)
    with pytest.raises(ConfigError, match=r"\(n, dim\)"):
        m.mmd_rbf(np.ones(5), y)


def test_bootstrap_distance() -> None:
    rng = np.random.default_rng(0)
    x, z = rng.normal(size=(60, 2)), rng.normal(loc=2.0, size=(60, 2))
    est = m.bootstrap_distance(x, z, m.mmd_rbf, n_boot=50, seed=3)
    assert est.low <= est.value <= est.high or est.low <= est.high
    assert est.n == 60 and est.low > 0


def test_mfcc_embedding_distinguishes_timbres() -> None:
    sr = det.SAMPLE_RATE
    bright = [det.harmonic_tone(60 + i, 0.5, partials=12, rolloff=0.95) for i in range(5)]
    dull = [det.harmonic_tone(60 + i, 0.5, partials=1) for i in range(5)]
    emb = m.MFCCEmbedding()
    a, b = emb.embed(bright, sr), emb.embed(dull, sr)
    assert a.shape == (5, 80)
    # leave-one-out nearest centroid tells every clip's timbre apart
    for i in range(5):
        ca, cb = np.delete(a, i, 0).mean(0), b.mean(0)
        assert np.linalg.norm(a[i] - ca) < np.linalg.norm(a[i] - cb)
        ca, cb = a.mean(0), np.delete(b, i, 0).mean(0)
        assert np.linalg.norm(b[i] - cb) < np.linalg.norm(b[i] - ca)


class FakeClap:
    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        return np.array([[np.abs(c).mean(), 1.0] for c in clips])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "loud" in t else [0.0, 1.0] for t in texts])


def test_clap_scorer_math_with_a_fake_backend() -> None:
    scorer = m.ClapScorer(backend=FakeClap())
    loud = det.harmonic_tone(60, 0.5, amplitude=1.0)
    sims = scorer.similarity([loud, loud], det.SAMPLE_RATE, ["loud piano", "quiet piano"])
    assert sims.shape == (2,) and np.all(np.abs(sims) <= 1 + 1e-9)
    a = np.abs(det.prepare_audio(loud, det.SAMPLE_RATE, target_sr=48000)).mean()
    assert sims[0] == pytest.approx(a / np.hypot(a, 1.0), rel=1e-3)
    assert sims[1] == pytest.approx(1.0 / np.hypot(a, 1.0), rel=1e-3)
    with pytest.raises(AudioError, match="silent"):
        scorer.similarity([np.zeros(1000)], det.SAMPLE_RATE, "x")
    with pytest.raises(ConfigError, match="texts"):
        scorer.similarity([loud], det.SAMPLE_RATE, ["a", "b"])


def test_clap_needs_a_checkpoint(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="local checkpoint"):
        m.clap_similarity([np.ones(10)], 48000, "x", checkpoint=None)
    with pytest.raises(ConfigError, match="not found"):
        m.ClapScorer(tmp_path / "missing.pt")
    ckpt = tmp_path / "clap.pt"
    ckpt.write_bytes(b"x")
    real_import = builtins.__import__

    def no_laion(name, *args, **kwargs):
        if name == "laion_clap":
            raise ImportError("No module named 'laion_clap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_laion)
    with pytest.raises(ModelError, match="laion_clap"):
        m.ClapScorer(ckpt)
