"""Validate the detectors on a labelled dataset (the synthetic set, where the truth is known).

:func:`validate_detectors` runs every applicable detector on every clip of a dataset folder
(``manifest.csv`` with ``path``, ``concept``, ``label`` and the concept's parameter columns, as
written by ``musicrfm synth``, or the full-mix set of :mod:`musicrfm.synth.arrangements`) and
returns a per-clip table and a summary table of accuracy with Wilson 95% intervals, k, n and the
target where an issue sets one.

Full mixes (``concept == "mixes"``) are judged on every concept they are labelled with: key,
the chord of every bar (the detector run on that bar's audio), the progression, tempo (strict,
octave errors forgiven, and the octave errors counted on their own), meter, the pitch class and
MIDI pitch of every lead note, the interval between consecutive lead notes, and the clip's
main lead pitch class (by the note detector and by the lead detector). Rows of one clip are
not independent (four bars, a dozen lead notes), so the intervals of per-bar and per-note
tasks are narrower than the clip count alone would allow.

"Tonal" notes are defined before looking at any result: GM programs outside
:data:`UNPITCHED_PROGRAMS` (timpani, orchestra hit, the percussive family 112-119 and the sound
effects 120-127) in SynTheory octaves 2-6 (``midi // 12``, i.e. MIDI 24-83, C1-B5 in scientific
pitch notation). Chromatic percussion (vibraphone, marimba, ...) counts as tonal: it is tuned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import AudioError, ConfigError, DatasetError
from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.detectors.lead import note_pitch, pitch_class_shares

log = logging.getLogger(__name__)

UNPITCHED_PROGRAMS = frozenset({47, 55, *range(112, 128)})
"""GM programs (0-based) without a clear pitch: timpani, orchestra hit, percussive, effects."""
TONAL_OCTAVES = (2, 3, 4, 5, 6)
"""SynTheory octaves (``midi // 12``) counted as tonal notes: MIDI 24-83."""
TARGETS = {
    "notes/pitch class (tonal)": 0.95,
    "chords/quality": 0.85,
    "mixes/chord per bar (root+quality)": 0.85,
    "mixes/key": 0.9,
    "mixes/bpm within 4%": 0.9,
    "mixes/lead pitch class per note": 0.9,
    "mixes/meter": 0.8,
}
"""Issue targets by ``concept/task`` (issue 19 for the full mixes)."""
DEFAULT_BACKENDS: dict[str, tuple[str, ...]] = {
    "lead": ("salience",),
    "tempos": ("librosa",),
    "intervals": ("cqt",),
    "keys": ("chroma",),
}
"""Back-ends compared per concept unless ``backends`` says otherwise."""


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n: unlike a bootstrap it does not collapse to
    [1, 1] when every clip is right (``(0.0, 1.0)`` for n = 0)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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
    if detected in (det.SILENT, det.NO_CHORD):
        return False
    a = det.PITCH_CLASSES.index(det.normalize_pitch_class(detected))
    b = det.PITCH_CLASSES.index(det.normalize_pitch_class(truth))
    # an augmented triad is symmetric: its root is only defined up to a major third
    return (a - b) % 4 == 0 if quality == "augmented" else a == b


class _Rows:
    """Collects per-clip rows that share a clip's base fields."""

    def __init__(self, row: pd.Series) -> None:
        keys = ("path", "concept", "label", "program", "instrument_family")
        self.base = {k: row.get(k) for k in keys}
        self.rows: list[dict] = []

    def add(
        self,
        task: str,
        detector: str,
        truth: Any,
        predicted: Any,
        confidence: float,
        correct: bool,
        **extra: Any,
    ) -> None:
        self.rows.append(
            {
                **self.base,
                "task": task,
                "detector": detector,
                "truth": str(truth),
                "predicted": str(predicted),
                "confidence": float(confidence),
                "correct": bool(correct),
                **extra,
            }
        )


def _tempo_rows(out: _Rows, y: np.ndarray, sr: int, bpm: float, backends: Sequence[str]) -> None:
    for backend in backends:
        d = det.detect_tempo(y, sr, backend=backend)
        est = float(d.details.get("bpm", np.nan))
        name = f"beat tracking ({backend})"
        strict = det.tempo_match(est, bpm)
        octave = det.tempo_match(est, bpm, factors=det.OCTAVE_FACTORS)
        out.add("bpm within 4%", name, bpm, d.label, d.confidence, strict, bpm_estimate=est)
        out.add(
            "bpm within 4%, octave errors allowed",
            name,
            bpm,
            d.label,
            d.confidence,
            octave,
            bpm_estimate=est,
        )
        if octave:  # the octave errors on their own: of the clips right up to an octave
            out.add(
                "tempo octave right (of those right up to an octave)",
                name,
                bpm,
                d.label,
                d.confidence,
                strict,
            )


def _clip_rows(
    row: pd.Series,
    y: np.ndarray,
    sr: int,
    pitch_backends: Sequence[str],
    backends: dict[str, tuple[str, ...]],
) -> list[dict]:
    concept = row["concept"]
    out = _Rows(row)
    if concept == "mixes":
        _mix_rows(out, row, y, sr, backends)
    elif concept == "notes":
        extra = {"octave": row.get("octave"), "tonal": is_tonal(row)}
        for backend in pitch_backends:
            d = det.detect_note(y, sr, method=backend)
            ok = d.label != det.SILENT and d.label == det.normalize_pitch_class(row["label"])
            out.add("pitch class", backend, row["label"], d.label, d.confidence, ok, **extra)
    elif concept == "chords":
        d = det.detect_chord(y, sr)
        quality = str(row.get("quality", row["label"]))
        inv = {"inversion": row.get("inversion")}
        out.add(
            "quality", "chroma templates", quality, d.label, d.confidence, d.label == quality, **inv
        )
        if "root" in row and isinstance(row["root"], str) and not d.silent:
            ok = d.label == quality and _root_ok(d.details["root"], row["root"], quality)
            out.add(
                "root+quality",
                "chroma templates",
                f"{row['root']}:{quality}",
                d.details["chord"],
                d.confidence,
                ok,
            )
    elif concept == "intervals":
        semis = int(row["semitones"])
        style = row.get("play_style", "up")
        if style == "unison":
            d = det.detect_interval(y, sr, mode="harmonic")
            out.add(
                "semitones (harmonic)",
                "cqt peaks",
                semis,
                d.label,
                d.confidence,
                d.label == str(semis),
            )
        else:
            for tracker in backends["intervals"]:
                d = det.detect_interval(y, sr, mode="melodic", tracker=tracker)
                ok = d.label == str(semis) and d.details.get("direction") == style
                out.add(
                    "semitones+direction (melodic)",
                    "cqt peaks" if tracker == "cqt" else f"{tracker} tracker",
                    f"{semis} {style}",
                    d.label,
                    d.confidence,
                    ok,
                )
    elif concept == "tempos":
        _tempo_rows(out, y, sr, float(row.get("bpm", row["label"])), backends["tempos"])
    elif concept == "scales":
        d = det.detect_scale(y, sr)
        out.add(
            "mode", "mode templates", row["label"], d.label, d.confidence, d.label == row["label"]
        )
    elif concept == "progressions":
        d = det.detect_progression(y, sr)
        ok = det.label_matches("progressions", d.label, row["label"])
        out.add("progression", "key + chords per segment", row["label"], d.label, d.confidence, ok)
    elif concept == "time_signatures":
        d = det.detect_meter(y, sr)
        truth = str(row["label"])
        out.add("time signature", "beat accents", truth, d.label, d.confidence, d.label == truth)
        grouping = _pulses_per_bar(truth)
        out.add(
            "beats per bar (2, 3 or 4)",
            "beat accents",
            grouping,
            d.details.get("beats_per_bar"),
            d.confidence,
            d.details.get("beats_per_bar") == grouping,
        )
    return out.rows


def _relative_key(key: str) -> str:
    """The relative minor of a major key and the relative major of a minor one."""
    tonic, mode = key.split(":")
    pc = det.PITCH_CLASSES.index(tonic)
    if mode == "major":
        return f"{det.PITCH_CLASSES[(pc + 9) % 12]}:minor"
    return f"{det.PITCH_CLASSES[(pc + 3) % 12]}:major"


def _pulses_per_bar(name: str) -> int:
    """Beats a bar groups at the pulse a beat tracker follows (6/8 = two dotted quarters)."""
    beats = int(name.split("/")[0])
    return beats // 3 if beats in (6, 9, 12) else beats


def _mix_rows(
    out: _Rows, row: pd.Series, y: np.ndarray, sr: int, backends: dict[str, tuple[str, ...]]
) -> None:
    import json

    for key_backend in backends.get("keys", ("chroma",)):
        key = det.detect_key(y, sr, backend=key_backend)
        name = "key profiles" if key_backend == "chroma" else f"{key_backend} KeyExtractor"
        out.add("key", name, row["key"], key.label, key.confidence, key.label == row["key"])
        out.add(
            "mode",
            name,
            row["mode"],
            key.details.get("mode"),
            key.confidence,
            key.details.get("mode") == row["mode"],
        )
        relative = key.label in (row["key"], _relative_key(row["key"]))
        out.add(
            "key up to relative major/minor",
            name,
            row["key"],
            key.label,
            key.details.get("collection_confidence", key.confidence),
            relative,
        )
    bars = json.loads(row["bar_times"])
    for i, chord in enumerate(str(row["chords"]).split("|")):
        clip = y[int(bars[i] * sr) : int(bars[i + 1] * sr)]
        d = det.detect_chord(clip, sr)
        root, quality = chord.split(":")
        named = d.details.get("chord", d.label)
        ok = d.label == quality and _root_ok(d.details["root"], root, quality)
        out.add(
            "chord per bar (root+quality)",
            "chroma templates",
            chord,
            named,
            d.confidence,
            ok,
            bar=i,
        )
        out.add(
            "chord per bar (quality)",
            "chroma templates",
            quality,
            d.label,
            d.confidence,
            d.label == quality,
            bar=i,
        )
    prog = det.detect_progression(y, sr)
    out.add(
        "progression",
        "key + chords per segment",
        row["progression"],
        prog.label,
        prog.confidence,
        det.label_matches("progressions", prog.label, row["progression"]),
    )
    numerals = str(row["progression"]).split("-")
    got_numerals = prog.label.split("-")
    got_chords = prog.details.get("chords", [])
    # the progression is the first bars (set v2 adds a final tonic bar after them)
    for i, chord in enumerate(str(row["chords"]).split("|")[: len(numerals)]):
        got = got_numerals[i] if i < len(got_numerals) else None
        out.add(
            "progression numeral per bar",
            "key + chords per segment",
            numerals[i],
            got,
            prog.confidence,
            det.label_matches("progressions", str(got), numerals[i]),
            bar=i,
        )
        got = got_chords[i] if i < len(got_chords) else None
        out.add(
            "progression chord per bar (root+quality)",
            "key + chords per segment",
            chord,
            got,
            prog.confidence,
            got == chord,
            bar=i,
        )
    _tempo_rows(out, y, sr, float(row["bpm"]), backends["tempos"])
    meter = det.detect_meter(y, sr)
    out.add(
        "meter",
        "beat accents",
        row["time_signature"],
        meter.label,
        meter.confidence,
        meter.label == row["time_signature"],
    )
    notes = json.loads(row["lead_notes"])
    durations = np.zeros(12)
    for start, end, pitch in notes:
        durations[int(pitch) % 12] += end - start
    main_pc = det.PITCH_CLASSES[int(np.argmax(durations))]
    note = det.detect_note(y, sr)
    out.add(
        "main lead pitch class (clip)",
        "chroma (detect_note)",
        main_pc,
        note.label,
        note.confidence,
        note.label == main_pc,
    )
    for backend in backends["lead"]:
        track = det.lead_track(det.prepare_audio(y, sr), backend=backend)
        heard = [note_pitch(track, s, e) for s, e, _ in notes]
        name = f"lead ({backend})"
        for (start, _, pitch), got in zip(notes, heard):
            pc_ok = got is not None and got % 12 == pitch % 12
            out.add(
                "lead pitch class per note",
                name,
                pitch % 12,
                got if got is None else got % 12,
                1.0,
                pc_ok,
                start=start,
            )
            out.add("lead MIDI per note", name, pitch, got, 1.0, got == pitch, start=start)
        for k in range(1, len(notes)):
            truth = notes[k][2] - notes[k - 1][2]
            got = None if heard[k] is None or heard[k - 1] is None else heard[k] - heard[k - 1]
            out.add("interval between lead notes", name, truth, got, 1.0, got == truth)
        _interval_rows(out, y, sr, notes, backend)
        shares = pitch_class_shares(track.midi)  # what detect_lead labels, without a 2nd pass
        label = det.PITCH_CLASSES[int(np.argmax(shares))]
        out.add(
            "main lead pitch class (clip)",
            name,
            main_pc,
            label,
            float(shares.max()),
            label == main_pc,
        )


def commonest_intervals(notes: Sequence[Sequence[float]]) -> set[int]:
    """The commonest size(s) of the intervals between consecutive lead notes of different
    pitch (repeated notes merged, as :func:`~.detectors.intervals.lead_notes` merges them)."""
    pitches = [int(p) for _, _, p in notes]
    merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    sizes = np.bincount([abs(b - a) for a, b in zip(merged, merged[1:])] or [0])
    return {int(s) for s in np.flatnonzero(sizes == sizes.max())}


def _interval_rows(
    out: _Rows, y: np.ndarray, sr: int, notes: Sequence[Sequence[float]], backend: str
) -> None:
    """The clip's commonest melodic interval: the mix-mode detector on the lead voice of
    ``backend``, and (once) the two-note ``cqt`` detector, which follows the bass on a mix."""
    truth = commonest_intervals(notes)
    shown = "/".join(map(str, sorted(truth)))
    runs = [("mix", backend, f"lead notes ({backend})")]
    if not any(r.get("task") == "commonest melodic interval (clip)" for r in out.rows):
        runs.insert(0, ("melodic", "cqt", "cqt peaks (two-note detector)"))
    for mode, tracker, name in runs:
        d = det.detect_interval(y, sr, mode=mode, tracker=tracker)
        ok = d.label.isdigit() and int(d.label) in truth
        out.add(
            "commonest melodic interval (clip)",
            name,
            shown,
            d.label,
            d.confidence,
            ok,
            notes_midi=str(d.details.get("notes_midi")),
        )
        if mode == "mix":
            for step, found in aligned_intervals(notes, d.details.get("intervals", [])):
                out.add(
                    "melodic interval, aligned (no onsets given)",
                    name,
                    step,
                    found,
                    1.0,
                    found == step,
                )


def aligned_intervals(
    notes: Sequence[Sequence[float]], detected: Sequence[int]
) -> list[tuple[int, int | None]]:
    """Each true interval between consecutive lead notes (repeats merged) and the detected
    interval aligned with it (None: unmatched), by the longest matching blocks of the two
    signed interval sequences (:class:`difflib.SequenceMatcher`): a measure of the mix-mode
    detector that needs no note onsets."""
    import difflib

    pitches = [int(p) for _, _, p in notes]
    merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    truth = [b - a for a, b in zip(merged, merged[1:])]
    found: list[int | None] = [None] * len(truth)
    matcher = difflib.SequenceMatcher(a=truth, b=list(detected), autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            found[block.a + k] = int(detected[block.b + k])
    return list(zip(truth, found))


def validate_detectors(
    dataset: str | Path | Any,
    *,
    concepts: Sequence[str] | None = None,
    limit: int | None = None,
    pitch_backends: Sequence[str] = ("chroma",),
    backends: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
    n_boot: int = 2000,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the detectors on a labelled dataset; return ``(summary, per_clip)``.

    ``limit`` keeps at most that many clips per concept (a seeded random sample). ``pitch_backends``
    lists the note detectors to compare ("chroma", "pyin", "crepe", ...); ``backends`` the
    back-ends of other detectors (``{"lead": ["salience", "basic-pitch"], "tempos": ["librosa",
    "essentia"]}``; default :data:`DEFAULT_BACKENDS`). Unreadable or silent clips are counted
    as misses (predicted "error"/"silent"), never skipped. A manifest may name its audio
    column ``file`` instead of ``path``. ``n_boot`` is kept for callers; intervals are Wilson's.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(
            f"limit must be a whole number of clips >= 1 (or None: all), got {limit!r}"
        )
    chosen = {k: tuple(v) for k, v in DEFAULT_BACKENDS.items()}
    for concept, names in (backends or {}).items():
        chosen[det.concept_name(concept)] = tuple(names)
    _check_backends(chosen)
    ds = dataset if hasattr(dataset, "rows") else _load(dataset)
    rows = ds.rows
    if "concept" not in rows.columns:
        raise DatasetError(f"{ds.root} has no `concept` column: cannot tell which detector applies")
    wanted = [_concept_of(c) for c in concepts] if concepts else [*det.concepts(), "mixes"]
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
        records.extend(_clip_rows(row, y, sr, tuple(pitch_backends), chosen))
    per_clip = pd.DataFrame(records)
    return summarize(per_clip, seed=seed, n_boot=n_boot), per_clip


def _check_backends(chosen: Mapping[str, Sequence[str]]) -> None:
    """Refuse an unknown lead, tempo or key back-end before the first clip, listing every
    valid one and the default (interval trackers are pluggable and checked when used)."""
    from musicrfm.evaluation.detectors.keys import KEY_BACKENDS
    from musicrfm.evaluation.detectors.tempo import TEMPO_BACKENDS

    known = {"lead": det.LEAD_BACKENDS, "tempos": TEMPO_BACKENDS, "keys": KEY_BACKENDS}
    for concept, names in chosen.items():
        valid = known.get(concept)
        for name in names:
            if valid is not None and name not in valid:
                raise ConfigError(
                    f"unknown {concept} back-end {name!r}; valid: {', '.join(valid)} "
                    f"(default: {DEFAULT_BACKENDS[concept][0]})"
                )


def _load(folder: str | Path) -> Any:
    """The dataset at ``folder``; a manifest whose audio column is ``file`` is read as ``path``."""
    from musicrfm.synth import SynthDataset, load_dataset

    manifest = Path(folder) / "manifest.csv"
    if manifest.is_file():
        head = pd.read_csv(manifest, nrows=0).columns
        if "path" not in head and "file" in head:
            rows = pd.read_csv(manifest, dtype={"label": str}).rename(columns={"file": "path"})
            return SynthDataset(Path(folder), rows)
    return load_dataset(folder)


def _concept_of(name: str) -> str:
    """A detector concept, or ``mixes`` (the full-mix set, judged on every concept)."""
    return "mixes" if str(name).lower() in ("mixes", "mix") else det.concept_name(name)


def summarize(per_clip: pd.DataFrame, *, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The detector-accuracy table from :func:`validate_detectors`' per-clip rows: k, n,
    accuracy and its Wilson 95% interval per (concept, task, detector, subset); ``seed`` and
    ``n_boot`` are accepted for callers of the bootstrap version."""
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
        k, n = int(g["correct"].astype(bool).sum()), len(g)
        low, high = wilson_interval(k, n)
        target = TARGETS.get(f"{concept}/{task}")
        rows.append(
            {
                "concept": concept,
                "task": task,
                "detector": detector,
                "subset": subset,
                "k": k,
                "n": n,
                "accuracy": round(k / n, 4),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "target": target,
                "meets_target": None if target is None else bool(k / n >= target),
            }
        )
    return pd.DataFrame(rows)


def breakdown(per_clip: pd.DataFrame, column: str, *, concept: str | None = None) -> pd.DataFrame:
    """Accuracy per value of ``column`` (e.g. instrument_family, octave), for error analysis."""
    frame = per_clip if concept is None else per_clip[per_clip["concept"] == concept]
    frame = frame.dropna(subset=[column])
    out = frame.groupby(["task", "detector", column])["correct"].agg(["mean", "size"]).reset_index()
    return out.rename(columns={"mean": "accuracy", "size": "n"})


def skipped_checks(rows: pd.DataFrame | str | Path) -> list[str]:
    """Checks a manifest's columns cannot support, each with the reason (the CLI prints them).

    ``rows`` is the dataset's manifest (or its folder), not :func:`validate_detectors`'
    per-clip results: those carry no parameter columns, so every check would look skipped.
    """
    if not isinstance(rows, pd.DataFrame):
        rows = _load(rows).rows
    out = []
    concepts = set(rows["concept"].dropna()) if "concept" in rows else set()
    if "notes" in concepts and not {"octave", "program"} <= set(rows.columns):
        out.append(
            "notes: 'pitch class (tonal)' needs octave and program columns (all notes count)"
        )
    if "chords" in concepts and "root" not in rows.columns:
        out.append("chords: 'root+quality' skipped: the manifest has no root column")
    if "intervals" in concepts and "semitones" not in rows.columns:
        out.append("intervals: skipped: the manifest has no semitones column")
    return out


def calibration(per_clip: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Accuracy per confidence bin (equal width on [0, 1]) for every task whose confidence
    varies: a calibrated detector's accuracy tracks its mean confidence."""
    rows = []
    frame = per_clip.dropna(subset=["confidence"])
    for (concept, task, detector), g in frame.groupby(["concept", "task", "detector"], sort=False):
        conf = g["confidence"].astype(float).clip(0, 1)
        if conf.nunique() < 2:
            continue
        edges = np.linspace(0, 1, bins + 1)
        which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
        for b in range(bins):
            sel = which == b
            if not sel.any():
                continue
            k, n = int(g["correct"][sel].astype(bool).sum()), int(sel.sum())
            low, high = wilson_interval(k, n)
            rows.append(
                {
                    "concept": concept,
                    "task": task,
                    "detector": detector,
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": n,
                    "mean_confidence": round(float(conf[sel].mean()), 4),
                    "accuracy": round(k / n, 4),
                    "ci_low": round(low, 4),
                    "ci_high": round(high, 4),
                }
            )
    return pd.DataFrame(rows)


_NOT_PLOTTED = r"\(quality\)|octave errors allowed|tempo octave right|^mode$|relative"


def plot_calibration(table: pd.DataFrame, path: str | Path) -> Path | None:
    """Reliability curves (accuracy against mean confidence per bin), one line per main task
    (the quality-only, octave-forgiving, mode and relative-key variants share their task's
    confidence and are left out of the figure; the table has them)."""
    if table.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table[~table["task"].str.contains(_NOT_PLOTTED)]
    table = shown if not shown.empty else table
    groups = list(table.groupby(["task", "detector"], sort=False))
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    # one small panel per task and back-end: fifteen lines on one axis cannot be read
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.7 * rows), squeeze=False)
    for ax, ((task, detector), g) in zip(axes.flat, groups):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        ax.errorbar(
            g["mean_confidence"],
            g["accuracy"],
            yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]],
            marker="o",
            capsize=2,
        )
        for x, y, n in zip(g["mean_confidence"], g["accuracy"], g["n"]):
            ax.annotate(str(int(n)), (x, y), textcoords="offset points", xytext=(3, -9), fontsize=6)
        ax.set_title(f"{task}\n({detector}), n={int(g['n'].sum())}", fontsize=7)
        ax.set(xlim=(0, 1), ylim=(0, 1.05))
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("mean confidence in bin", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (Wilson 95%)", fontsize=7)
    fig.suptitle("Reliability: accuracy against confidence (dashed: calibrated; numbers: n per bin)",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
