"""How a trace is scored: φ(t) at the detector's windows, the per-clip correlation of the
target's probability with it, the summary and verdict per schedule, and the crossfade's thirds.

Pure functions of arrays, so the verdict logic is tested on planted traces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import SILENT
from musicrfm.steering.schedules import Schedule

MIN_WINDOWS = 3  # sounding windows a clip needs for its correlation to be defined


def phi_at(
    schedule: Schedule, times: Sequence[float], frame_rate: float, seconds: float
) -> np.ndarray:
    """φ at audio times (s): the schedule's value at step ``t × frame_rate`` (steps of the first
    codebook, which MusicGen's delay pattern does not shift), linearly interpolated."""
    n = int(np.ceil(seconds * frame_rate)) + 1
    values = schedule.values(n, frame_rate=frame_rate, horizon=n)
    steps = np.asarray(times, dtype=np.float64) * frame_rate
    return np.interp(steps, np.arange(n, dtype=np.float64), values)


def trace_correlation(
    phi: Sequence[float], prob: Sequence[float], labels: Sequence[str] | None = None
) -> float:
    """Pearson r of a clip's per-window target probability with φ over its sounding windows
    (``labels`` marks silent ones; they are left out). NaN when fewer than ``MIN_WINDOWS``
    windows sound or either series is flat (r is undefined there)."""
    phi, prob = np.asarray(phi, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    if phi.shape != prob.shape:
        raise ConfigError(f"φ and the trace differ in length: {phi.shape} vs {prob.shape}")
    keep = np.isfinite(phi) & np.isfinite(prob)
    if labels is not None:
        keep &= np.asarray([lab != SILENT for lab in labels], dtype=bool)
    x, y = phi[keep], prob[keep]
    if x.size < MIN_WINDOWS or x.std() < 1e-9 or y.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def schedule_verdict(
    correlations: Sequence[float],
    *,
    monotone: bool,
    gate: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean per-clip correlation with a bootstrap 95% CI. An undefined r (a flat or silent
    trace) counts as 0: such a clip did not follow φ. ``passed`` (monotone schedules only; None
    otherwise): the mean reaches ``gate``; ``passed_ci``: its whole CI does; ``shortfall``: how
    far the mean is below the gate (0 when it passes)."""
    from musicrfm.evaluation.metrics import bootstrap_ci

    r = np.asarray(correlations, dtype=np.float64)
    if r.size == 0:
        raise ConfigError("no clips to score")
    undefined = int(np.isnan(r).sum())
    est = bootstrap_ci(np.nan_to_num(r, nan=0.0), seed=seed)
    out: dict[str, Any] = {
        "r_mean": est.value,
        "r_ci_low": est.low,
        "r_ci_high": est.high,
        "n": est.n,
        "undefined": undefined,
        "monotone": bool(monotone),
        "gate": gate if monotone else None,
        "passed": None,
        "passed_ci": None,
        "shortfall": None,
    }
    if monotone:
        out["passed"] = bool(est.value >= gate)
        out["passed_ci"] = bool(est.low >= gate)
        out["shortfall"] = max(0.0, gate - est.value)
    return out


def mean_trace(traces: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over clips, per window (cut to the shortest trace)."""
    if not traces:
        raise ConfigError("no traces to average")
    n = min(len(t) for t in traces)
    stack = np.stack([np.asarray(t, dtype=np.float64)[:n] for t in traces])
    return stack.mean(0), stack.std(0)


def third_labels(
    times: Sequence[float],
    trace_probs: np.ndarray,
    trace_labels: Sequence[str],
    seconds: float,
    classes: Sequence[str],
) -> tuple[str, str]:
    """The note heard in the first and in the last third of a clip: the class with the highest
    mean probability over that third's sounding windows (``SILENT`` when none sounds)."""
    t = np.asarray(times, dtype=np.float64)
    probs = np.asarray(trace_probs, dtype=np.float64)
    sounding = np.asarray([lab != SILENT for lab in trace_labels], dtype=bool)
    out = []
    for sel in (t < seconds / 3, t >= 2 * seconds / 3):
        sel = sel & sounding
        out.append(classes[int(np.argmax(probs[sel].mean(0)))] if sel.any() else SILENT)
    return out[0], out[1]


def crossfade_verdict(
    starts: Sequence[str], ends: Sequence[str], a: str, b: str, *, gate: float
) -> dict[str, Any]:
    """Shares of clips starting on ``a`` (first third) and ending on ``b`` (last third), with
    Wilson 95% intervals; passed when both shares reach ``gate``."""
    from musicrfm.evaluation.metrics import wilson_interval

    if len(starts) != len(ends) or not starts:
        raise ConfigError(f"need as many start as end labels (>0), got {len(starts)}, {len(ends)}")
    n = len(starts)
    k_a = sum(s == a for s in starts)
    k_b = sum(e == b for e in ends)
    k_both = sum(s == a and e == b for s, e in zip(starts, ends))
    sa, eb, both = wilson_interval(k_a, n), wilson_interval(k_b, n), wilson_interval(k_both, n)
    return {
        "a": a,
        "b": b,
        "n": n,
        "starts_on_a": sa.value,
        "starts_ci_low": sa.low,
        "starts_ci_high": sa.high,
        "ends_on_b": eb.value,
        "ends_ci_low": eb.low,
        "ends_ci_high": eb.high,
        "both": both.value,
        "both_ci_low": both.low,
        "both_ci_high": both.high,
        "gate": gate,
        "passed": bool(sa.value >= gate and eb.value >= gate),
        "start_labels": list(starts),
        "end_labels": list(ends),
    }
