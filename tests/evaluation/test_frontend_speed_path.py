"""The cached-filter CQT equals librosa's, and chroma is folded from that one analysis.

``frontend.cqt36`` / ``chromagram`` build the CQT filters once per (rate, tuning) instead of on
every call; :func:`~musicrfm.evaluation.frontend.reference_frontend` switches back to
librosa's ``cqt`` / ``chroma_cqt`` (what ``benchmarks/detectors_speed.py`` times as the
baseline). Speed itself is measured there, not here.
"""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm.errors import AudioError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation import frontend as fe


def _clip(sr: int, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(0)
    y = (
        np.sin(2 * np.pi * 220 * t)
        + 0.5 * np.sin(2 * np.pi * 329.6 * t)
        + 0.3 * np.sin(2 * np.pi * 55 * t)
    )
    return (y + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _both(fn, y: np.ndarray, sr: int, tuning: float | None) -> tuple[np.ndarray, np.ndarray]:
    fe._MEMO.clear()
    fast = np.array(fn(y, sr, tuning=tuning))
    with fe.reference_frontend():
        reference = np.array(fn(y, sr, tuning=tuning))
    return fast, reference


# 44.1 kHz takes librosa's early-decimation branch; None estimates the tuning
@pytest.mark.parametrize(("sr", "tuning"), [(22050, 0.0), (22050, None), (44100, 0.25)])
def test_fast_cqt_and_chroma_equal_librosa(sr: int, tuning: float | None) -> None:
    y = _clip(sr)
    for fn in (fe.cqt36, fe.chromagram):
        fast, reference = _both(fn, y, sr, tuning)
        assert fast.shape == reference.shape and fast.dtype == reference.dtype
        assert np.abs(fast - reference).max() <= 1e-5 * reference.max(), fn.__name__


def test_chroma_and_cqt_are_one_analysis(monkeypatch) -> None:
    calls = []
    real = fe._fast_cqt
    monkeypatch.setattr(fe, "_fast_cqt", lambda *a: calls.append(a) or real(*a))
    fe._MEMO.clear()
    y = _clip(fe.SAMPLE_RATE)
    chroma = fe.chromagram(y)
    spec = fe.cqt36(y)
    det.detect_chord(y, fe.SAMPLE_RATE)
    det.detect_note(y, fe.SAMPLE_RATE)
    assert len(calls) == 1
    assert chroma.shape == (12, spec.shape[1]) and not chroma.flags.writeable
    folded = fe._chroma_map() @ spec
    assert np.allclose(chroma, folded, rtol=1e-5, atol=1e-6)


def test_filters_are_built_once_per_rate_and_tuning() -> None:
    fe._MEMO.clear()
    fe.cqt36(_clip(fe.SAMPLE_RATE, 1.0))
    before = fe._cqt_plan.cache_info()
    fe._MEMO.clear()
    fe.cqt36(_clip(fe.SAMPLE_RATE, 1.5))
    after = fe._cqt_plan.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_reference_switch_is_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), fe.reference_frontend():
        assert fe._REFERENCE
        raise RuntimeError("boom")
    assert not fe._REFERENCE


def test_detectors_agree_on_both_front_ends() -> None:
    y = det.harmonic_tone([57, 60, 64], 1.5)
    for concept, options in (("chords", {}), ("notes", {}), ("intervals", {"mode": "harmonic"})):
        fe._MEMO.clear()
        fast = det.detect(y, fe.SAMPLE_RATE, concept, **options)
        with fe.reference_frontend():
            fe._MEMO.clear()
            reference = det.detect(y, fe.SAMPLE_RATE, concept, **options)
        assert fast.label == reference.label and fast.confidence == pytest.approx(
            reference.confidence, abs=1e-4
        ), concept


def test_too_low_a_sample_rate_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="too low"):
        fe._cqt_plan(4000, fe.HOP, 0.0, "<c8")
