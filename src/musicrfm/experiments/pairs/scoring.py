"""How the two-concept clips are scored: which attribute a clip got right, joint success per
condition, the cross-talk of one attribute steered alone on the other, the controls against
unsteered, and what a conflict clip was heard as.

Pure functions of per-clip labels (a DataFrame with columns ``condition``, ``pair`` and one
label column per detector: ``note``, ``quality``, ``root``; for tempo ``bpm`` and the ``tempo``
label it gives against the unsteered median, :func:`tempo_labels`), so the arithmetic is tested
on hand-made detector outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation.detectors.base import SILENT

# the label column each part's concept is judged by
LABEL_COLUMN = {"notes": "note", "chords": "quality", "chord-roots": "root", "tempos": "tempo",
                "beats": "beat"}  # fmt: skip
AUGMENTED = "augmented"
# conditions of a pair, in the order the tables show them
ALONE = ("first alone", "second alone")
JOINT = "joint"
UNSTEERED = "unsteered"


def attribute_hits(frame: pd.DataFrame, concept: str, target: str) -> np.ndarray:
    """1.0 where a clip's label for ``concept`` hits ``target``, else 0.0 (silent: a miss).

    Chord roots: an augmented triad is symmetric (C+ = E+ = G#+), so a clip heard as augmented
    hits a root that is any of its three notes, as the testbed's codec gate counts it."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.theory import PITCH_CLASSES

    if concept == "beats":  # the beat headline's rule: the detected BPM within 4% of the target
        from musicrfm.experiments.headline.beat import within

        if "bpm" not in frame:
            raise ConfigError("the clips have no 'bpm' readings to judge beats by")
        return within(frame["bpm"], float(target))
    column = LABEL_COLUMN.get(concept)
    if column is None:
        raise ConfigError(f"no label column for concept {concept!r}; valid: {', '.join(LABEL_COLUMN)}")  # fmt: skip
    if column not in frame:
        raise ConfigError(f"the clips have no {column!r} labels to judge {concept} by")
    if concept in ("notes", "chords"):
        return np.asarray([float(det.label_matches(concept, str(x), target)) for x in frame[column]])  # fmt: skip
    if concept == "tempos":  # 'faster' / 'slower' from tempo_labels: past the 20% bar
        return np.asarray([float(str(x) == target) for x in frame[column]])
    t = PITCH_CLASSES.index(target)
    same = {PITCH_CLASSES[t], PITCH_CLASSES[(t + 4) % 12], PITCH_CLASSES[(t + 8) % 12]}
    quality = frame["quality"] if "quality" in frame else pd.Series([""] * len(frame))
    return np.asarray(
        [
            float(str(r) == target or (str(q) == AUGMENTED and str(r) in same))
            for r, q in zip(frame[column], quality)
        ]
    )


# ------------------------------------------------------------------------------ tempo
UNCHANGED, NO_BASELINE = "unchanged", "no baseline"


def tempo_threshold(unsteered_bpm: Sequence[float], change: float) -> dict[str, Any]:
    """A tempo part's per-clip bar: at least (1 + change) x ('faster') or at most (1 - change)
    x ('slower') the median detected BPM of the unsteered clips (silent ones, NaN, left out).
    The bars are None when no unsteered clip has a reading."""
    bpm = np.asarray(unsteered_bpm, dtype=np.float64)
    read = bpm[np.isfinite(bpm)]
    median = float(np.median(read)) if read.size else None
    return {
        "change": float(change),
        "unsteered_median_bpm": median,
        "unsteered_n": int(bpm.size),
        "unsteered_with_bpm": int(read.size),
        "faster_at_least_bpm": None if median is None else (1 + change) * median,
        "slower_at_most_bpm": None if median is None else (1 - change) * median,
    }


def tempo_label(bpm: float, threshold: dict[str, Any]) -> str:
    """``faster`` / ``slower`` when a clip's BPM is past the bar that way, else ``unchanged``;
    ``silent`` without a reading; ``no baseline`` when the unsteered clips had none. Compared
    as a ratio to the median, so a BPM exactly at 1.2x counts."""
    median, change = threshold["unsteered_median_bpm"], threshold["change"]
    if bpm is None or not np.isfinite(bpm):
        return SILENT
    if median is None or median <= 0:
        return NO_BASELINE
    ratio = float(bpm) / median
    if ratio >= 1 + change - 1e-9:
        return "faster"
    if ratio <= 1 - change + 1e-9:
        return "slower"
    return UNCHANGED


def tempo_labels(frame: pd.DataFrame, change: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``frame`` with a ``tempo`` column (:func:`tempo_label` of each clip's ``bpm`` against
    the unsteered clips' median), and the threshold used."""
    if "bpm" not in frame:
        raise ConfigError("the clips have no 'bpm' readings to judge tempos by")
    base = frame.loc[frame["condition"] == UNSTEERED, "bpm"].to_numpy(np.float64)
    threshold = tempo_threshold(base, change)
    out = frame.copy()
    out["tempo"] = [tempo_label(float(b), threshold) for b in frame["bpm"].astype(float)]
    return out, threshold


def bpm_change(
    steered: np.ndarray, unsteered: np.ndarray, *, seed: int = 0
) -> dict[str, Any] | None:
    """Median BPM of ``steered`` and its change relative to the unsteered median, bootstrap 95%
    CI (the tempo headline's :func:`~musicrfm.experiments.headline.tempo.median_change`); None
    when either side has no reading."""
    from musicrfm.experiments.headline.tempo import median_change

    s, u = np.asarray(steered, np.float64), np.asarray(unsteered, np.float64)
    if not np.isfinite(s).any() or not np.isfinite(u).any():
        return None
    out = median_change(s, u, seed)
    out["unsteered_median_bpm"] = float(np.median(u[np.isfinite(u)]))
    out["silent"] = int((~np.isfinite(s)).sum())
    return out


def tempo_rows(
    frame: pd.DataFrame,
    pair: tuple[str, str],
    threshold: dict[str, Any],
    conditions: Sequence[str],
    *,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The BPM distribution of every condition of ``pair`` against unsteered: the median BPM
    and its relative change (bootstrap 95% CI), and the shares of clips past the faster and
    slower bars (Wilson 95%)."""
    name = "+".join(pair)
    base = frame.loc[frame["condition"] == UNSTEERED, "bpm"].to_numpy(np.float64)
    rows = []
    for cond in conditions:
        g = _cells(frame, name, cond)
        if g.empty:
            continue
        labels = g["tempo"].astype(str) if "tempo" in g else pd.Series([""] * len(g))
        row: dict[str, Any] = {"pair": name, "condition": cond, "n": int(len(g)),
                               "bpm": bpm_change(g["bpm"].to_numpy(np.float64), base, seed=seed)}  # fmt: skip
        for word in ("faster", "slower"):
            row[word] = share((labels == word).to_numpy(np.float64))
        rows.append(row)
    return rows


def share(hits: np.ndarray) -> dict[str, Any]:
    """k/n with its Wilson 95% interval."""
    from musicrfm.evaluation.metrics import wilson_interval

    h = np.asarray(hits, dtype=np.float64)
    k = int(h.sum())
    e = wilson_interval(k, int(h.size))
    return {"k": k, "n": int(h.size), "rate": e.value, "ci_low": e.low, "ci_high": e.high}


def difference(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """rate(a) - rate(b) with Newcombe's 95% interval; ``within_ci``: the interval holds 0."""
    from musicrfm.evaluation.metrics import proportion_difference

    d = proportion_difference(a, b)
    return {"diff": d.value, "diff_ci_low": d.low, "diff_ci_high": d.high,
            "within_ci": bool(d.low <= 0 <= d.high)}  # fmt: skip


def label_shift(steered: Sequence[str], unsteered: Sequence[str]) -> float:
    """Total-variation distance between two label distributions (0: the same, 1: disjoint)."""
    if not len(steered) or not len(unsteered):
        raise ConfigError("need labels on both sides to compare distributions")
    a = pd.Series(list(steered)).value_counts(normalize=True)
    b = pd.Series(list(unsteered)).value_counts(normalize=True)
    keys = a.index.union(b.index)
    return float(0.5 * np.abs(a.reindex(keys, fill_value=0) - b.reindex(keys, fill_value=0)).sum())


def _cells(frame: pd.DataFrame, pair: str, condition: str) -> pd.DataFrame:
    if condition == UNSTEERED:
        return frame[frame["condition"] == UNSTEERED]
    return frame[(frame["condition"] == condition) & (frame["pair"] == pair)]


def pair_rows(
    frame: pd.DataFrame,
    pair: tuple[str, str],
    concepts: tuple[str, str],
    conditions: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per condition of ``pair``: the first attribute's, the second's and joint (both
    right in the same clip) hit rates, each k/n with a Wilson 95% interval."""
    name = "+".join(pair)
    rows = []
    for cond in conditions:
        g = _cells(frame, name, cond)
        if g.empty:
            continue
        h1 = attribute_hits(g, concepts[0], pair[0])
        h2 = attribute_hits(g, concepts[1], pair[1])
        row: dict[str, Any] = {"pair": name, "condition": cond}
        for key, h in (("first", h1), ("second", h2), ("joint", h1 * h2)):
            row.update({f"{key}_{k}": v for k, v in share(h).items()})
        rows.append(row)
    return rows


def _outcomes(row: dict[str, Any], key: str) -> np.ndarray:
    """The 0/1 outcomes behind a row's k/n."""
    k, n = int(row[f"{key}_k"]), int(row[f"{key}_n"])
    return np.r_[np.ones(k), np.zeros(n - k)]


def pair_verdict(
    rows: Sequence[dict[str, Any]], *, joint_gate: float, alone_gate: float
) -> dict[str, Any]:
    """The issue's rule for one pair: joint success >= ``joint_gate`` where each attribute
    steered alone reaches ``alone_gate``. ``applies`` is False when an attribute alone falls
    short (the pair then reports its numbers, no pass); ``passed`` None then. With the unsteered
    row, ``first_moved`` / ``second_moved`` say whether steering raised that attribute above
    unsteered at all (Newcombe interval above 0): a pass where one did not is a trivial one
    (the attribute was there without steering)."""
    by = {r["condition"]: r for r in rows}
    missing = [c for c in (*ALONE, JOINT) if c not in by]
    if missing:
        raise ConfigError(f"a verdict needs the conditions {missing}")
    first, second = by[ALONE[0]]["first_rate"], by[ALONE[1]]["second_rate"]
    joint = by[JOINT]["joint_rate"]
    applies = bool(first >= alone_gate and second >= alone_gate)
    moved: dict[str, Any] = {}
    if UNSTEERED in by:  # whether steering moved each attribute at all (Newcombe, vs unsteered)
        for k, cond in (("first", ALONE[0]), ("second", ALONE[1])):
            d = difference(_outcomes(by[cond], k), _outcomes(by[UNSTEERED], k))
            moved[f"{k}_unsteered"] = by[UNSTEERED][f"{k}_rate"]
            moved[f"{k}_moved"] = bool(d["diff_ci_low"] > 0)
    return {
        **moved,
        "first_alone": first,
        "second_alone": second,
        "joint": joint,
        "joint_ci": [by[JOINT]["joint_ci_low"], by[JOINT]["joint_ci_high"]],
        "applies": applies,
        "passed": bool(joint >= joint_gate) if applies else None,
        "joint_reaches_gate": bool(joint >= joint_gate),
        "shortfall": max(0.0, joint_gate - joint),
    }


def crosstalk_rows(
    frame: pd.DataFrame, pair: tuple[str, str], concepts: tuple[str, str], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Steering one attribute alone, the other attribute against unsteered: the other's target
    rate (Newcombe 95% interval of the difference; ``within_ci`` when it holds 0) and the
    total-variation distance of its whole label distribution from unsteered; when the other is
    tempo, also its median BPM against unsteered (``bpm``, :func:`bpm_change`)."""
    name = "+".join(pair)
    base = frame[frame["condition"] == UNSTEERED]
    if base.empty:
        raise ConfigError("no unsteered clips: cross-talk is measured against them")
    rows = []
    for steered, other in ((0, 1), (1, 0)):
        g = _cells(frame, name, ALONE[steered])
        if g.empty:
            continue
        concept, target = concepts[other], pair[other]
        col = LABEL_COLUMN[concept]
        h, hb = attribute_hits(g, concept, target), attribute_hits(base, concept, target)
        s, sb = share(h), share(hb)
        rows.append(
            {
                "pair": name,
                "steered": f"{concepts[steered]} -> {pair[steered]}",
                "measured": f"{concept} = {target}",
                "rate": s["rate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"], "n": s["n"],
                "unsteered_rate": sb["rate"], "unsteered_ci_low": sb["ci_low"],
                "unsteered_ci_high": sb["ci_high"], "unsteered_n": sb["n"],
                **difference(h, hb),
                "label_shift_tv": label_shift(g[col].astype(str), base[col].astype(str)),
                "bpm": bpm_change(g["bpm"].to_numpy(np.float64),
                                  base["bpm"].to_numpy(np.float64), seed=seed)
                if concept == "tempos" else None,
            }
        )  # fmt: skip
    return rows


def control_rows(
    frame: pd.DataFrame,
    pair: tuple[str, str],
    concepts: tuple[str, str],
    controls: Sequence[str],
) -> list[dict[str, Any]]:
    """Each control of the joint plan against unsteered: its joint, first and second rates and
    the Newcombe interval of (control - unsteered) for each. Random and orthogonal should be
    consistent with unsteered (``within_ci``), the flip at or below it (``not_above``)."""
    name = "+".join(pair)
    base = frame[frame["condition"] == UNSTEERED]
    b1, b2 = attribute_hits(base, concepts[0], pair[0]), attribute_hits(base, concepts[1], pair[1])
    rows = []
    for kind in controls:
        g = _cells(frame, name, f"joint-{kind}")
        if g.empty:
            continue
        h1, h2 = attribute_hits(g, concepts[0], pair[0]), attribute_hits(g, concepts[1], pair[1])
        row: dict[str, Any] = {"pair": name, "control": kind}
        for key, h, hb in (("joint", h1 * h2, b1 * b2), ("first", h1, b1), ("second", h2, b2)):
            s, d = share(h), difference(h, hb)
            row.update({f"{key}_rate": s["rate"], f"{key}_ci_low": s["ci_low"],
                        f"{key}_ci_high": s["ci_high"], f"{key}_n": s["n"],
                        f"{key}_diff": d["diff"], f"{key}_diff_ci_low": d["diff_ci_low"],
                        f"{key}_diff_ci_high": d["diff_ci_high"],
                        f"{key}_within_ci": d["within_ci"],
                        f"{key}_not_above": bool(d["diff"] <= 0)})  # fmt: skip
        rows.append(row)
    return rows


def adherence_change(
    steered: np.ndarray, unsteered: np.ndarray, *, tolerance: float, seed: int = 0
) -> dict[str, Any]:
    """Prompt adherence (0/1 judge matches) steered minus unsteered, bootstrap 95% CI; within
    tolerance when the drop is at most ``tolerance``."""
    from musicrfm.evaluation.metrics import bootstrap_difference

    s = np.asarray(steered, dtype=np.float64)
    u = np.asarray(unsteered, dtype=np.float64)
    s, u = s[np.isfinite(s)], u[np.isfinite(u)]
    if not s.size or not u.size:
        return {"adherence_steered": None, "adherence_unsteered": None, "adherence_change": None}
    d = bootstrap_difference(s, u, seed=seed)
    return {
        "adherence_steered": float(s.mean()),
        "adherence_unsteered": float(u.mean()),
        "adherence_change": d.value,
        "adherence_change_ci": [d.low, d.high],
        "adherence_within_tolerance": bool(d.value >= -tolerance),
    }


# ------------------------------------------------------------------------------ conflict
CONFLICT_OUTCOMES = ("A", "B", "A and B", "neither", "silent")
MIN_SHARE = 0.25  # share of a clip's sounding windows a note needs to count as heard


def conflict_outcome(trace_labels: Sequence[str], a: str, b: str) -> str:
    """What one clip of the conflict case was heard as, from its per-window labels: ``"A"`` /
    ``"B"`` (only that target holds >= `MIN_SHARE` of the sounding windows), ``"A and B"``
    (both do: alternating or switching), ``"neither"`` (neither does), ``"silent"``."""
    labels = [str(x) for x in trace_labels if str(x) != SILENT]
    if not labels:
        return "silent"
    fa = sum(x == a for x in labels) / len(labels)
    fb = sum(x == b for x in labels) / len(labels)
    if fa >= MIN_SHARE and fb >= MIN_SHARE:
        return "A and B"
    if fa >= MIN_SHARE:
        return "A"
    if fb >= MIN_SHARE:
        return "B"
    return "neither"


def switches(trace_labels: Sequence[str]) -> int:
    """How often the sounding label changes from one window to the next."""
    labels = [str(x) for x in trace_labels if str(x) != SILENT]
    return int(sum(x != y for x, y in zip(labels, labels[1:])))


def conflict_summary(
    traces: dict[str, list[Sequence[str]]], clip_labels: dict[str, list[str]], a: str, b: str
) -> list[dict[str, Any]]:
    """Per condition (``a`` alone, ``b`` alone, both, unsteered): the share of clips in each
    outcome (Wilson 95%), the clip-level labels heard, and the median number of switches."""
    rows = []
    for cond, tr in traces.items():
        if not tr:
            continue
        outcomes = [conflict_outcome(t, a, b) for t in tr]
        row: dict[str, Any] = {"condition": cond, "n": len(tr)}
        for o in CONFLICT_OUTCOMES:
            s = share(np.asarray([float(x == o) for x in outcomes]))
            key = o.replace("A", a).replace("B", b) if o in ("A", "B", "A and B") else o
            row[key] = s["rate"]
            row[f"{key} ci"] = [s["ci_low"], s["ci_high"]]
        counts = pd.Series(clip_labels.get(cond, [])).value_counts()
        row["clip labels"] = ", ".join(f"{k} {v}" for k, v in counts.items())
        row["median switches"] = float(np.median([switches(t) for t in tr]))
        row["outcomes"] = outcomes
        rows.append(row)
    return rows
