"""MusicGen-activation embeddings (FD/MMD back-end) and probe-probability traces over time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.evaluation import activations as act
from musicrfm.evaluation import metrics as m

SR = 16000


@pytest.fixture(scope="module")
def tiny():
    from musicrfm.models import random_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores
    yield random_model("tiny")
    torch.set_num_threads(threads)


def tones(freqs: list[float], seconds: float = 0.5) -> list[np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    return [(0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in freqs]


def noises(n: int, seed: int, seconds: float = 0.5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.3, int(seconds * SR)).astype(np.float32) for _ in range(n)]


def test_activation_embedding_shapes_layers_and_determinism(tiny) -> None:
    e = act.ActivationEmbedding(tiny)
    assert e.layer == tiny.num_layers // 2 and e.name == "activations"
    clips = tones([220.0, 330.0, 440.0])
    x = e.embed(clips, SR)
    assert x.shape == (3, tiny.hidden_size) and np.isfinite(x).all()
    np.testing.assert_allclose(e.embed(clips, SR), x, rtol=1e-5, atol=1e-6)
    # batching does not change a clip's embedding; other layers give other vectors
    one = act.ActivationEmbedding(tiny, batch_size=1).embed(clips, SR)
    np.testing.assert_allclose(one, x, rtol=1e-4, atol=1e-5)
    last = act.ActivationEmbedding(tiny, layer=-1)
    assert last.layer == tiny.num_layers - 1
    assert not np.allclose(last.embed(clips, SR), x)
    assert e.embed([], SR).shape == (0, tiny.hidden_size)
    # a silent clip still embeds (zeros through the codec), an empty one is a clear error
    assert np.isfinite(e.embed([np.zeros(SR // 4, np.float32)], SR)).all()
    with pytest.raises(Exception, match="empty"):
        e.embed([np.zeros(0, np.float32)], SR)
    with pytest.raises(ConfigError, match="out of range"):
        act.ActivationEmbedding(tiny, layer=tiny.num_layers)
    with pytest.raises(ConfigError, match="pooling"):
        act.ActivationEmbedding(tiny, pooling="median")


def test_frechet_and_mmd_on_activations_separate_different_sets(tiny) -> None:
    e = m.make_embedding(None, tiny)  # the default back-end when a model is at hand
    assert isinstance(e, act.ActivationEmbedding)
    a = e.embed(tones([220.0, 247.0, 262.0, 294.0, 330.0, 349.0]), SR)
    b = e.embed(noises(6, seed=0), SR)
    same = m.frechet_distance(a, a)
    apart = m.frechet_distance(a, b)
    assert abs(same) < 1e-3 * max(apart, 1.0)
    assert apart > 0 and apart > 100 * abs(same)
    # the unbiased MMD of a set with itself is <= 0 (the kernel's diagonal is left out)
    assert m.mmd_rbf(a, a) <= 0 < 0.05 < m.mmd_rbf(a, b)


def test_make_embedding_names_and_errors(tiny) -> None:
    assert isinstance(m.make_embedding(None), m.MFCCEmbedding)  # no model: MFCC
    assert isinstance(m.make_embedding("mfcc", tiny), m.MFCCEmbedding)
    assert m.make_embedding("activations:1", tiny).layer == 1
    with pytest.raises(ConfigError, match="needs a loaded model"):
        m.make_embedding("activations")
    with pytest.raises(ConfigError, match="unknown embedding"):
        m.make_embedding("vggish", tiny)
    with pytest.raises(ConfigError, match="bad embedding layer"):
        m.make_embedding("activations:x", tiny)


def test_window_frames_cover_the_clip() -> None:
    spans = act.window_frames(50, 50.0, 0.25)
    assert spans == [(0, 13), (13, 25), (25, 38), (38, 50)]  # edges at 0.25 s multiples
    assert len(act.window_frames(51, 50.0, 0.25)) == 5  # 1.02 s: a short last window
    assert len(act.window_frames(100, 50.0, 0.5)) == 4
    with pytest.raises(ConfigError):
        act.window_frames(10, 50.0, 0.0)
    assert act.trace_window(1.0) == 0.25 and act.trace_window(8.0) == 0.5


def test_probe_trace_shape_rows_and_windows(tiny) -> None:
    from musicrfm.probes.rfm import RFM, RFMParams

    g = torch.Generator().manual_seed(0)
    X = torch.randn(90, tiny.hidden_size, generator=g)
    y = torch.arange(90) % 3
    X = X + 3.0 * torch.nn.functional.one_hot(y, tiny.hidden_size).float()
    probe = RFM(RFMParams(bandwidth=10.0, reg=1e-3), task="multiclass", iters=1)
    probe.fit(X[:60], y[:60], X[60:], y[60:])
    seconds, window = 1.0, 0.25
    clip = tones([440.0], seconds)[0]
    times, probs = act.probe_trace(tiny, probe, 1, clip, SR, window)
    n_frames = int(round(seconds * tiny.frame_rate))
    expected = int(np.ceil(seconds / window))
    assert probs.shape == (expected, 3) and times.shape == (expected,)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert np.all(np.diff(times) > 0) and 0 < times[0] < window and times[-1] < seconds
    again = act.probe_trace(tiny, probe, 1, clip, SR, window)
    np.testing.assert_allclose(again[1], probs, atol=1e-6)
    # the trace is the probe on window-pooled frames of that layer
    frames = act.activation_frames(tiny, clip, SR)
    assert frames.shape[:2] == (tiny.num_layers, n_frames)
    step = int(np.floor(window * tiny.frame_rate + 0.5))
    first = probe.predict_proba(frames[1, :step].mean(0, keepdim=True)).numpy()[0]
    np.testing.assert_allclose(probs[0], first, atol=1e-6)
    assert len(act.probe_trace(tiny, probe, 1, clip, SR, 0.5)[0]) == 2
