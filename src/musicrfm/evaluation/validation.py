"""Validate the detectors on a labelled dataset (the synthetic set, where the truth is known).

:func:`validate_detectors` runs every applicable detector on every clip of a dataset folder
(``manifest.csv`` with ``path``, ``concept``, ``label`` and the concept's parameter columns, as
written by ``musicrfm synth``) and returns a per-clip table and a summary table of accuracy with
bootstrap 95% CIs, n and the target where the issue sets one.

"Tonal" notes are defined before looking at any result: GM programs outside
:data:`UNPITCHED_PROGRAMS` (timpani, orchestra hit, the percussive family 112-119 and the sound
effects 120-127) in SynTheory octaves 2-6 (``midi // 12``, i.e. MIDI 24-83, C1-B5 in scientific
pitch notation). Chromatic percussion (vibraphone, marimba, ...) counts as tonal: it is tuned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import AudioError, DatasetError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.metrics import bootstrap_ci

log = logging.getLogger(__name__)

UNPITCHED_PROGRAMS = frozenset({47, 55, *range(112, 128)})
"""GM programs (0-based) without a clear pitch: timpani, orchestra hit, percussive, effects."""
TONAL_OCTAVES = (2, 3, 4, 5, 6)
"""SynTheory octaves (``midi // 12``) counted as tonal notes: MIDI 24-83."""
TARGETS = {"notes/pitch class (tonal)": 0.95, "chords/quality": 0.85}


def sample_per_group(rows: pd.DataFrame, column: str, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows per value of ``column`` (seeded), in the original order."""
    keep: list[Any] = []
    for _, group in rows.groupby(column, sort=True):
        keep.extend(group.sample(n=min(limit, len(group)), random_state=seed).index)
    return rows.loc[sorted(keep)]


def is_tonal(row: pd.Series | dict[str, Any]) -> bool:
    """Whether a notes row is a tonal note (pitched program, octave 2-6)."""
    program = row.get("program")
    octave = row.get("octave")
    if program is None or pd.isna(program) or octave is None or pd.isna(octave):
        return False
    return int(program) not in UNPITCHED_PROGRAMS and int(octave) in TONAL_OCTAVES


def _root_ok(detected: str, truth: str, quality: str) -> bool:
    a = det.PITCH_CLASSES.index(det.normalize_pitch_class(detected))
    b = det.PITCH_CLASSES.index(det.normalize_pitch_class(truth))
    # an augmented triad is symmetric: its root is only defined up to a major third
    return (a - b) % 4 == 0 if quality == "augmented" else a == b


def _clip_rows(row: pd.Series, y: np.ndarray, sr: int, pitch_backends: Sequence[str]) -> list[dict]:
    concept = row["concept"]
    base = {k: row.get(k) for k in ("path", "concept", "label", "program", "instrument_family")}
    out: list[dict] = []

    def add(
        task: str, detector: str, truth: Any, d: det.Detection, correct: bool, **extra: Any
    ) -> None:
        out.append(
            {
                **base,
                "task": task,
                "detector": detector,
                "truth": str(truth),
                "predicted": d.label,
                "confidence": d.confidence,
                "correct": bool(correct),
                **extra,
            }
        )

    if concept == "notes":
        extra = {"octave": row.get("octave"), "tonal": is_tonal(row)}
        for backend in pitch_backends:
            d = det.detect_note(y, sr, method=backend)
            ok = d.label != det.SILENT and d.label == det.normalize_pitch_class(row["label"])
            add("pitch class", backend, row["label"], d, ok, **extra)
    elif concept == "chords":
        d = det.detect_chord(y, sr)
        quality = str(row.get("quality", row["label"]))
        add(
            "quality",
            "chroma templates",
            quality,
            d,
            d.label == quality,
            inversion=row.get("inversion"),
        )
        if "root" in row and isinstance(row["root"], str) and not d.silent:
            ok = _root_ok(d.details["root"], row["root"], quality) and d.label == quality
            add("root+quality", "chroma templates", f"{row['root']}:{quality}", d, ok)
    elif concept == "intervals":
        semis = int(row["semitones"])
        style = row.get("play_style", "up")
        if style == "unison":
            d = det.detect_interval(y, sr, mode="harmonic")
            add("semitones (harmonic)", "cqt peaks", semis, d, d.label == str(semis))
        else:
            d = det.detect_interval(y, sr, mode="melodic", tracker="cqt")
            ok = d.label == str(semis) and d.details.get("direction") == style
            add("semitones+direction (melodic)", "cqt peaks", f"{semis} {style}", d, ok)
    elif concept == "tempos":
        d = det.detect_tempo(y, sr)
        bpm = float(row.get("bpm", row["label"]))
        est = float(d.details.get("bpm", np.nan))
        add("bpm within 4%", "beat tracking", bpm, d, det.tempo_match(est, bpm), bpm_estimate=est)
        add(
            "bpm within 4%, octave errors allowed",
            "beat tracking",
            bpm,
            d,
            det.tempo_match(est, bpm, factors=det.OCTAVE_FACTORS),
            bpm_estimate=est,
        )
    return out


def validate_detectors(
    dataset: str | Path | Any,
    *,
    concepts: Sequence[str] | None = None,
    limit: int | None = None,
    pitch_backends: Sequence[str] = ("chroma",),
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the detectors on a labelled dataset; return ``(summary, per_clip)``.

    ``limit`` keeps at most that many clips per concept (a seeded random sample). ``pitch_backends``
    lists the note detectors to compare ("chroma", "pyin", "crepe", ...). Unreadable or silent
    clips are counted as misses (predicted "error"/"silent"), never skipped.
    """
    from musicrfm.synth import load_dataset

    ds = dataset if hasattr(dataset, "rows") else load_dataset(dataset)
    rows = ds.rows
    if "concept" not in rows.columns:
        raise DatasetError(f"{ds.root} has no `concept` column: cannot tell which detector applies")
    wanted = [det.concept_name(c) for c in concepts] if concepts else list(det.concepts())
    rows = rows[rows["concept"].isin(wanted)]
    if rows.empty:
        raise DatasetError(
            f"{ds.root} has no clips of {', '.join(wanted)} (it has {', '.join(sorted(ds.rows['concept'].unique()))})"
        )
    if limit is not None:
        rows = sample_per_group(rows, "concept", limit, seed)
    records: list[dict] = []
    iterator = rows.iterrows()
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(rows), desc="detectors", unit="clip")
    for _, row in iterator:
        path = Path(ds.root) / row["path"]
        try:
            y, sr = det.load_audio(path)
        except AudioError as exc:
            log.warning("%s", exc)
            records.append(
                {
                    **row[["path", "concept", "label"]].to_dict(),
                    "task": "load",
                    "predicted": "error",
                    "correct": False,
                }
            )
            continue
        records.extend(_clip_rows(row, y, sr, tuple(pitch_backends)))
    per_clip = pd.DataFrame(records)
    return summarize(per_clip, seed=seed, n_boot=n_boot), per_clip


def summarize(per_clip: pd.DataFrame, *, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The detector-accuracy table from :func:`validate_detectors`' per-clip rows."""
    groups: list[tuple[str, str, str, str, pd.DataFrame]] = []
    for (concept, task, detector), g in per_clip.groupby(
        ["concept", "task", "detector"], sort=False
    ):
        if concept == "notes":
            groups.append(
                (
                    concept,
                    f"{task} (tonal)",
                    detector,
                    "tonal programs, octaves 2-6",
                    g[g["tonal"].astype(bool)],
                )
            )
            groups.append((concept, task, detector, "all rendered", g))
        else:
            groups.append((concept, task, detector, "all rendered", g))
    rows = []
    for concept, task, detector, subset, g in groups:
        if g.empty:
            continue
        est = bootstrap_ci(g["correct"].astype(float).to_numpy(), n_boot=n_boot, seed=seed)
        target = TARGETS.get(f"{concept}/{task}")
        rows.append(
            {
                "concept": concept,
                "task": task,
                "detector": detector,
                "subset": subset,
                "n": est.n,
                "accuracy": round(est.value, 4),
                "ci_low": round(est.low, 4),
                "ci_high": round(est.high, 4),
                "target": target,
                "meets_target": None if target is None else bool(est.value >= target),
            }
        )
    return pd.DataFrame(rows)


def breakdown(per_clip: pd.DataFrame, column: str, *, concept: str | None = None) -> pd.DataFrame:
    """Accuracy per value of ``column`` (e.g. instrument_family, octave), for error analysis."""
    frame = per_clip if concept is None else per_clip[per_clip["concept"] == concept]
    frame = frame.dropna(subset=[column])
    out = frame.groupby(["task", "detector", column])["correct"].agg(["mean", "size"]).reset_index()
    return out.rename(columns={"mean": "accuracy", "size": "n"})
