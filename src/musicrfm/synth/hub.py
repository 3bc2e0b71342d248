"""Load the original SynTheory (Wei et al. 2024) from the Hugging Face hub into the same format.

Needs the optional extra ``hub`` (``pip install 'musicrfm[hub]'``, i.e. the ``datasets`` package)
and a network connection. The clips are written as audio files plus ``manifest.csv`` with the
columns :func:`musicrfm.synth.generate_dataset` writes (``label``, ``pitch_class``, ``program``,
``instrument_family``, ...), so everything downstream treats both sources alike. Original columns
that have no counterpart are kept under their own names.

Offline, pass ``source=`` any iterable of row dicts with SynTheory's columns (that is how it is
tested).

:func:`fetch_balanced` is what ``musicrfm reproduce`` uses: a seeded, class-balanced sample of a
concept (not the first N rows, which may all be one class), cropped and resampled like the local
generator's clips, resumable clip by clip; :func:`hub_status` says quickly whether the hub can be
used at all (the package, the offline switches, one short request).
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm import __version__, theory
from musicrfm.errors import ConfigError, DatasetError
from musicrfm.files import write_atomic, write_json_atomic
from musicrfm.synth.dataset import (
    MANIFEST_CSV,
    META_JSON,
    SynthDataset,
    load_dataset,
    write_csv_atomic,
)
from musicrfm.synth.journal import JOURNAL, read_journal

log = logging.getLogger(__name__)

REPO_ID = "meganwei/syntheory"
# the dataset commit read by default; the same as the reproduce protocol's `dataset.hub_revision`
# (tests check that they agree)
REVISION = "92c814ff4731c1b12194ab51f5a8a356ac514a67"
HUB_CONFIGS = {
    "notes": "notes",
    "intervals": "intervals",
    "scales": "scales",
    "chords": "chords",
    "progressions": "simple_progressions",
    "tempos": "tempos",
    "time_signatures": "time_signatures",
}
_CHORD_TYPES = {"major": "major", "minor": "minor", "aug": "augmented", "dim": "diminished"}
_INVERSIONS = {"5": "root", "6": "first", "64": "second"}


def _program(row: Mapping[str, Any]) -> dict[str, Any]:
    p = int(row["midi_program_num"])
    return {
        "program": p,
        "program_name": str(row.get("midi_program_name", theory.program_name(p))),
        "instrument_family": theory.instrument_family(p),
    }


def _click(row: Mapping[str, Any]) -> dict[str, Any]:
    name = str(row.get("click_config_name", ""))
    drums = name == "default"
    p = int(row.get("midi_program_num", 0))
    return {
        "click": name,
        "program": p,
        "program_name": "Standard Drum Kit" if drums else theory.program_name(p),
        "instrument_family": "drums" if drums else theory.instrument_family(p),
        "offset": float(row.get("offset_time", 0.0) or 0.0),
    }


def _progression(text: str) -> theory.Progression:
    """``"ionian-(1, 4, 5, 1)"`` (SynTheory's label) -> a :class:`theory.Progression`."""
    m = re.match(r"\s*(\w+)\W+([\d,\s]+)\)?\s*$", str(text))
    if not m:
        raise DatasetError(f"cannot parse SynTheory progression label {text!r}")
    degrees = tuple(int(d) for d in re.findall(r"\d", m.group(2)))
    prog = theory.Progression(m.group(1), degrees)
    if prog not in theory.PROGRESSIONS:
        raise DatasetError(f"progression {text!r} is not one of SynTheory's 19")
    return prog


def _meter(value: Any) -> theory.Meter:
    nums = [int(x) for x in re.findall(r"\d+", str(value))]
    if len(nums) != 2:
        raise DatasetError(f"cannot parse time signature {value!r}")
    return theory.meter_by_name(f"{nums[0]}/{nums[1]}")


def _map_notes(row: Mapping[str, Any]) -> dict[str, Any]:
    midi = int(row["midi_note_val"])
    return {
        "label": str(row["root_note_name"]),
        "pitch_class": int(row["root_note_pitch_class"]),
        "note_name": theory.note_name(midi),
        "octave": int(row.get("octave", midi // 12)),
        "register": int(row.get("register", 0)),
        "midi_note": midi,
        **_program(row),
    }


def _map_intervals(row: Mapping[str, Any]) -> dict[str, Any]:
    semis = int(row["interval"])
    return {
        "label": theory.interval_name(semis),
        "interval": theory.interval_name(semis),
        "semitones": semis,
        "play_style": str(row["play_style_name"]).lower(),
        "root": str(row["root_note_name"]),
        "root_pitch_class": int(row["root_note_pitch_class"]),
        "midi_note": int(row["midi_note_val"]),
        **_program(row),
    }


def _map_scales(row: Mapping[str, Any]) -> dict[str, Any]:
    root = str(row["root_note_name"])
    return {
        "label": str(row["mode"]),
        "mode": str(row["mode"]),
        "root": root,
        "root_pitch_class": theory.pitch_class(root),
        "play_style": str(row["play_style_name"]).lower(),
        **_program(row),
    }


def _map_chords(row: Mapping[str, Any]) -> dict[str, Any]:
    quality = _CHORD_TYPES[str(row["chord_type"])]
    return {
        "label": quality,
        "quality": quality,
        "root": str(row["root_note_name"]),
        "root_pitch_class": int(row["root_note_pitch_class"]),
        "inversion": _INVERSIONS[str(row["inversion"])],
        "inversion_figure": str(row["inversion"]),
        **_program(row),
    }


def _map_progressions(row: Mapping[str, Any]) -> dict[str, Any]:
    prog = _progression(row["chord_progression"])
    return {
        "label": prog.name,
        "progression": prog.name,
        "key": str(row["key_note_name"]),
        "key_pitch_class": int(row["key_note_pitch_class"]),
        "mode": prog.mode,
        "tonality": prog.tonality,
        "degrees": "-".join(map(str, prog.degrees)),
        **_program(row),
    }


def _map_tempos(row: Mapping[str, Any]) -> dict[str, Any]:
    bpm = int(row["bpm"])
    return {"label": str(bpm), "bpm": bpm, **_click(row)}


def _map_time_signatures(row: Mapping[str, Any]) -> dict[str, Any]:
    meter = _meter(row["time_signature"])
    return {
        "label": meter.name,
        "time_signature": meter.name,
        "beats": meter.beats,
        "unit": meter.unit,
        "is_compound": meter.is_compound,
        "bpm": int(row.get("bpm", 120)),
        "reverb_level": int(row.get("reverb_level", 0)),
        **_click(row),
    }


_MAPPERS = {
    "notes": _map_notes,
    "intervals": _map_intervals,
    "scales": _map_scales,
    "chords": _map_chords,
    "progressions": _map_progressions,
    "tempos": _map_tempos,
    "time_signatures": _map_time_signatures,
}


def map_row(concept: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """SynTheory's columns for one clip -> this library's manifest columns (``label`` first)."""
    if concept not in _MAPPERS:  # pragma: no cover - guarded by the caller
        raise ConfigError(f"unknown concept {concept!r}")
    out = _MAPPERS[concept](row)
    skip = {"audio", "is_silent"}
    for k, v in row.items():
        if k not in out and k not in skip and not isinstance(v, (dict, bytes, np.ndarray, list)):
            out[k] = v
    return out


def _decode_audio(value: Any) -> tuple[np.ndarray, int]:
    """A hub ``Audio`` value (decoded dict, bytes dict or decoder object) -> (samples, rate)."""
    import soundfile as sf

    if isinstance(value, Mapping):
        if value.get("array") is not None:
            arr = np.asarray(value["array"], dtype=np.float32)
            return (arr if arr.ndim == 2 else arr[:, None]), int(value["sampling_rate"])
        if value.get("bytes"):
            data, sr = sf.read(io.BytesIO(value["bytes"]), dtype="float32", always_2d=True)
            return data, int(sr)
        if value.get("path") and Path(value["path"]).is_file():
            data, sr = sf.read(value["path"], dtype="float32", always_2d=True)
            return data, int(sr)
    if hasattr(value, "get_all_samples"):  # datasets>=4 torchcodec decoder
        samples = value.get_all_samples()
        return np.asarray(samples.data, dtype=np.float32).T, int(samples.sample_rate)
    raise DatasetError("a SynTheory row has no usable `audio` value")


def _hub_rows(
    concept: str, repo_id: str, split: str, streaming: bool, revision: str | None = REVISION
) -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            "loading SynTheory from the hub needs the optional `datasets` package: "
            "pip install 'musicrfm[hub]' (or generate an equivalent offline with `musicrfm synth`)"
        ) from None
    try:
        return datasets.load_dataset(
            repo_id, HUB_CONFIGS[concept], split=split, streaming=streaming, revision=revision
        )
    except Exception as exc:  # network, auth, missing config: one clear line
        raise DatasetError(
            f"cannot load {repo_id} ({HUB_CONFIGS[concept]}) from the hub: {exc}"
        ) from exc


def load_syntheory(
    concept: str,
    out: str | os.PathLike[str],
    *,
    limit: int | None = None,
    split: str = "train",
    sample_rate: int = 32000,
    channels: int = 1,
    format: str = "flac",
    repo_id: str = REPO_ID,
    revision: str | None = REVISION,
    source: Iterable[Mapping[str, Any]] | None = None,
) -> SynthDataset:
    """Copy (up to ``limit`` clips of) one SynTheory concept into a dataset folder.

    Silent clips (SynTheory's ``is_silent``, or a peak under -60 dBFS) are left out and counted.
    Audio is resampled to ``sample_rate`` and mixed to ``channels`` (default 32 kHz mono).
    """
    from musicrfm.synth.concepts import get_concept

    name = get_concept(concept).name
    fmt = str(format).lower()
    if fmt not in ("flac", "wav"):
        raise ConfigError(f"unknown audio format {format!r}; valid: flac, wav")
    rows_in = (
        source
        if source is not None
        else _hub_rows(name, repo_id, split, limit is not None, revision)
    )
    root = Path(out).expanduser()
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {root}: {exc.strerror or exc}") from exc

    records: list[dict[str, Any]] = []
    silent = 0
    for i, row in enumerate(rows_in):
        if limit is not None and i >= limit:
            break
        record = _copy_clip(name, i, row, root, sample_rate, channels, fmt)
        if record is None:
            silent += 1
        else:
            records.append(record)
    rows = pd.DataFrame(records)
    write_csv_atomic(rows, root / MANIFEST_CSV)
    write_json_atomic(
        root / META_JSON,
        {
            "generator": f"SynTheory via the Hugging Face hub ({repo_id})",
            "revision": revision,
            "version": __version__,
            "complete": True,
            "options": {"concept": name, "split": split, "limit": limit, "sample_rate": sample_rate,
                        "channels": channels, "format": fmt},
            "clips": len(records),
            "counts": {name: len(records)},
            "silent_excluded": silent,
            "manifest": MANIFEST_CSV,
        },
    )  # fmt: skip
    log.info("%s: %d SynTheory %s clips (%d silent left out)", root, len(records), name, silent)
    return load_dataset(root)


def _copy_clip(
    name: str,
    i: int,
    row: Mapping[str, Any],
    root: Path,
    sample_rate: int,
    channels: int,
    fmt: str,
    seconds: float | None = None,
) -> dict[str, Any] | None:
    """Write one hub row's audio (mixed, resampled, cut to its first ``seconds``) as clip ``i``;
    returns its manifest row, or None for a silent clip (nothing written)."""
    import soundfile as sf

    from musicrfm.synth.render import is_silent

    mapped = map_row(name, row)
    audio, sr = _decode_audio(row["audio"])
    audio = audio.mean(axis=1, keepdims=True) if channels == 1 else _to_channels(audio, channels)
    if sr != sample_rate:
        import librosa

        audio = librosa.resample(audio.T, orig_sr=sr, target_sr=sample_rate).T
    if seconds is not None:
        audio = audio[: int(round(seconds * sample_rate))]
    if bool(row.get("is_silent", False)) or is_silent(audio):
        return None
    audio = np.clip(audio, -1.0, 1.0)
    rel = f"{name}/{i:06d}.{fmt}"
    write_atomic(
        root / rel,
        lambda tmp, a=audio: sf.write(
            str(tmp), a, sample_rate, format=fmt.upper(), subtype="PCM_16"
        ),
    )
    return {
        "path": rel,
        "concept": name,
        **mapped,
        "duration": round(audio.shape[0] / sample_rate, 6),
        "sample_rate": sample_rate,
        "seed": None,
    }


def _to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    if audio.shape[1] == channels:
        return audio
    if audio.shape[1] == 1:
        return np.repeat(audio, channels, axis=1)
    return audio[:, :channels]


# ============================================================================ availability
_TRUE = ("1", "ON", "YES", "TRUE")
HUB_EXTRA = "install the hub extra: pip install 'musicrfm[hub]'"


@dataclass(frozen=True)
class HubStatus:
    """Whether SynTheory can be read from the hub now; when not, ``reason`` says why and
    ``fix`` what to do. ``commit``: the dataset commit the revision resolves to, when asked."""

    usable: bool
    reason: str = ""
    fix: str = ""
    commit: str | None = None


def has_datasets() -> bool:
    """The `datasets` package is importable (looked up, not imported: importing it is slow)."""
    try:
        return importlib.util.find_spec("datasets") is not None
    except (ImportError, ValueError):
        return False


def offline_reason() -> str | None:
    """Which switch says to stay offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``), if any."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in _TRUE:
            return f"{var}={os.environ[var]}"
    try:
        import huggingface_hub.constants as constants
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    return "HF_HUB_OFFLINE" if constants.HF_HUB_OFFLINE else None


def hub_status(
    repo_id: str = REPO_ID, revision: str | None = REVISION, *, timeout: float = 3.0
) -> HubStatus:
    """A quick check (no download): the package, the offline switches, then one metadata
    request of at most ``timeout`` seconds, which also gives the revision's commit."""
    if not has_datasets():
        return HubStatus(False, "the `datasets` package is not installed", HUB_EXTRA)
    off = offline_reason()
    if off is not None:
        return HubStatus(False, f"offline ({off})", "unset it and go online")
    try:
        from huggingface_hub import HfApi

        info = HfApi().dataset_info(repo_id, revision=revision, timeout=timeout)
    except Exception as exc:  # no network, a wrong revision, an outage: the reason in one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return HubStatus(
            False,
            f"cannot reach {repo_id}@{revision} ({type(exc).__name__}{': ' + text if text else ''})",
            "go online (or check the protocol's dataset.hub_revision)",
        )
    return HubStatus(True, commit=getattr(info, "sha", None))


# ============================================================================ row sources
class HubRows:
    """Random access to one SynTheory config: ``meta(i)`` (a row without its audio, cheap) and
    ``row(i)`` (with it). Built on any sequence of row dicts (how the tests feed rows)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def meta(self, i: int) -> Mapping[str, Any]:
        return {k: v for k, v in self._rows[i].items() if k != "audio"}

    def row(self, i: int) -> Mapping[str, Any]:
        return self._rows[i]


class _DatasetRows(HubRows):
    """A `datasets.Dataset`: labels from a copy without the audio column (nothing decoded)."""

    def __init__(self, ds: Any) -> None:
        super().__init__(ds)
        self._meta = ds.remove_columns([c for c in ("audio",) if c in ds.column_names])

    def meta(self, i: int) -> Mapping[str, Any]:
        return self._meta[int(i)]


def open_rows(
    concept: str, repo_id: str = REPO_ID, revision: str | None = REVISION, split: str = "train"
) -> HubRows:
    """The concept's SynTheory config at ``revision`` (downloaded once into the Hugging Face
    cache by `datasets`; later calls read that cache)."""
    return _DatasetRows(_hub_rows(concept, repo_id, split, False, revision))


# ============================================================================ balanced copy


def fetch_balanced(
    concept: str,
    out: str | os.PathLike[str],
    *,
    per_class: int,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    seconds: float | None = None,
    sample_rate: int = 32000,
    channels: int = 1,
    format: str = "flac",
    repo_id: str = REPO_ID,
    revision: str | None = REVISION,
    commit: str | None = None,
    rows: HubRows | None = None,
) -> SynthDataset:
    """``per_class`` clips of each class (``classes``: those labels only; default every label
    found), drawn with ``seed`` from the non-silent rows, into the folder ``out``.

    The draw is a seeded shuffle per class; a clip that turns out silent is replaced by the
    class's next one. Each finished clip is journalled, so an interrupted copy resumes; a
    complete folder with the same options is returned without touching the hub (``rows`` is
    not even opened). A folder made with other options is refused, never mixed."""
    from musicrfm.synth.concepts import get_concept
    from musicrfm.synth.spec import derive_seed

    name = get_concept(concept).name
    fmt = str(format).lower()
    if fmt not in ("flac", "wav"):
        raise ConfigError(f"unknown audio format {format!r}; valid: flac, wav")
    if per_class < 1:
        raise ConfigError(f"per_class must be at least 1, got {per_class}")
    options = {
        "concept": name, "per_class": int(per_class), "seed": int(seed),
        "classes": None if classes is None else [str(c) for c in classes],
        "seconds": None if seconds is None else float(seconds), "sample_rate": int(sample_rate),
        "channels": int(channels), "format": fmt, "repo_id": repo_id, "revision": revision,
    }  # fmt: skip
    root = Path(out).expanduser()
    meta = _read_meta(root)
    if meta is not None:
        if meta.get("options") != options:
            raise DatasetError(
                f"{root} holds SynTheory clips made with other options; use another folder"
            )
        if meta.get("complete"):
            return load_dataset(root)
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create {root}: {exc.strerror or exc}") from exc
    write_json_atomic(root / META_JSON, _meta(options, commit, complete=False))
    src = rows if rows is not None else open_rows(name, repo_id, revision)
    pools = _pools(name, src, classes)
    # the synth journal's format: {"id", "status": "ok" | "silent", "row"}, one line a clip
    done = {int(k): v.get("row") for k, v in read_journal(root, fmt).items()}
    records: list[dict[str, Any]] = []
    silent = 0
    with open(root / JOURNAL, "a", encoding="utf-8") as journal:
        for label, pool in pools.items():
            order = np.random.default_rng(derive_seed(seed, "hub", name, label)).permutation(
                len(pool)
            )
            kept = 0
            for j in order:
                if kept >= per_class:
                    break
                i = int(pool[j])
                if i in done:
                    record = done[i]
                else:
                    record = _copy_clip(
                        name, i, src.row(i), root, sample_rate, channels, fmt, seconds
                    )
                    entry = {"id": str(i), "status": "silent" if record is None else "ok",
                             "row": record}  # fmt: skip
                    journal.write(json.dumps(entry, default=str) + "\n")
                    journal.flush()
                if record is None:
                    silent += 1
                else:
                    records.append(record)
                    kept += 1
    records.sort(key=lambda r: r["path"])
    write_csv_atomic(pd.DataFrame(records), root / MANIFEST_CSV)
    counts = pd.Series([r["label"] for r in records]).value_counts().to_dict() if records else {}
    info = _meta(options, commit, complete=True)
    info.update(clips=len(records), counts={str(k): int(v) for k, v in counts.items()},
                silent_excluded=silent)  # fmt: skip
    write_json_atomic(root / META_JSON, info)
    log.info("%s: %d SynTheory %s clips (%d silent left out)", root, len(records), name, silent)
    return load_dataset(root)


def cached_commit(out: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """(complete, commit) of a folder :func:`fetch_balanced` wrote; (False, None) otherwise."""
    meta = _read_meta(Path(out).expanduser())
    if meta is None:
        return False, None
    return bool(meta.get("complete")), meta.get("commit")


def _meta(options: dict[str, Any], commit: str | None, *, complete: bool) -> dict[str, Any]:
    return {
        "generator": f"SynTheory via the Hugging Face hub ({options['repo_id']})",
        "repo_id": options["repo_id"],
        "revision": options["revision"],
        "commit": commit,
        "version": __version__,
        "complete": complete,
        "options": options,
        "manifest": MANIFEST_CSV,
    }


def _read_meta(root: Path) -> dict[str, Any] | None:
    path = root / META_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    return meta if isinstance(meta, dict) else None


def _pools(name: str, src: HubRows, classes: Sequence[str] | None) -> dict[str, list[int]]:
    """Per class (in ``classes``' order, else sorted), the indices of its non-silent rows."""
    wanted = None if classes is None else [str(c) for c in classes]
    pools: dict[str, list[int]] = {c: [] for c in wanted or []}
    for i in range(len(src)):
        m = src.meta(i)
        if bool(m.get("is_silent", False)):
            continue
        label = str(map_row(name, m)["label"])
        if wanted is None:
            pools.setdefault(label, []).append(i)
        elif label in pools:
            pools[label].append(i)
    empty = [c for c, p in pools.items() if not p]
    if empty or not pools:
        raise DatasetError(
            f"SynTheory {name}: no clips of {', '.join(empty) or 'any class'} in the hub rows"
        )
    return pools if wanted is not None else dict(sorted(pools.items()))
