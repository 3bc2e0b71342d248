"""The reference timbre judge, fitted once per codec and kept beside the model.

Prompt adherence is judged by an instrument classifier fitted on rendered notes (for a
polyphonic model also intervals and triads, :func:`polyphonic_clips`) and their round trips
through the model's codec (:func:`reference_instrument_clips`). It
never hears the decoder, so it depends on the codec alone, and fitting it takes minutes: too
long for the 5-minute demo. So a fitted judge is saved as ``instrument_judge.safetensors`` +
``.json`` with a key (codec fingerprint, sample rate, recipe version) and reused wherever the key
matches: from the model's folder (``musicrfm mini judge`` writes it there), or a work cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicrfm.errors import CompatibilityError, ConfigError

log = logging.getLogger(__name__)

JUDGE_NAME = "instrument_judge"
# bump when the judge's clips, features or fit change: judges with another version are refitted
JUDGE_VERSION = 1
# the judge is a measuring instrument, not part of an experiment: one seed for every run, so
# that a run's numbers do not depend on which judge happened to be cached
JUDGE_SEED = 0


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


def codec_round_trip(adapter: ModelAdapter, batch: int = 16) -> Any:
    """A function (audio, sr) list -> the same clips encoded and decoded by the model's codec:
    what an instrument can sound like when this model generates it."""

    def run(clips: list[tuple[np.ndarray, int]]) -> list[tuple[np.ndarray, int]]:
        sr = int(adapter.sample_rate)
        return [(wave, sr) for wave in adapter.round_trip(clips, batch=batch)]

    return run


# Rhythms (strikes, gate) the reference clips are rendered in: an instrument is the same
# instrument at any tempo, and steered clips do not always keep the training rhythm.
REFERENCE_RHYTHMS: tuple[tuple[int, float], ...] = ((4, 0.9), (2, 0.9), (8, 0.5), (1, 1.0))
REFERENCE_NOTES: tuple[int, int] = (48, 83)  # MIDI range: the prompts' three registers
# A polyphonic model's steered clips play chords: a judge fitted on single notes hears the
# instrument of a triad through the testbed codec in only 0.53 of clips (0.90 for one note;
# docs/results/judge-polyphony-testbed-beat), so its adherence drop would be the judge's. The
# polyphonic recipe adds harmonic intervals and triads (every inversion) per instrument.
POLYPHONIC_PER_PROGRAM = 48  # strike intervals and as many triads per instrument


def polyphonic_clips(
    sr: int, per_program: int = POLYPHONIC_PER_PROGRAM, progress: bool = False
) -> tuple[list[tuple[np.ndarray, int]], list[str]]:
    """``per_program`` harmonic intervals and ``per_program`` triads on every prompt instrument
    (a fixed draw from the testbed's strike grid, every tempo), with their GM families."""
    from musicrfm import theory
    from musicrfm.synth.strikes import render_strikes, strike_grid

    grid = strike_grid(interval_modes=("harmonic",), seed=JUDGE_SEED)
    rng = np.random.default_rng(JUDGE_SEED)
    picked = []
    for size in (2, 3):
        by_program: dict[int, list[Any]] = {}
        for c in grid:
            if len(c.notes) == size:
                by_program.setdefault(c.program, []).append(c)
        for program in sorted(by_program):
            clips = by_program[program]
            take = rng.choice(len(clips), size=min(per_program, len(clips)), replace=False)
            picked += [clips[i] for i in sorted(take)]
    it = picked
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(picked, desc="render polyphony", unit="clip")
    audio = [(render_strikes(c, sampling_rate=sr), sr) for c in it]
    return audio, [theory.instrument_family(c.program) for c in picked]


# A progression's clip changes chord every bar, across registers: the polyphonic judge, fitted on
# one triad a clip, hears rendered `C G Am F` (roots C4 G3 A3 F4, where the steered testbed plays
# it) through the codec on the right instrument in only 4/8 clips (octave 3: 7/8;
# docs/results/progression-controls-testbed-beat/codebook-split/). The progressions recipe adds
# clips of four triads, one every 2 s, per instrument.
PROGRESSIONS_PER_PROGRAM = 24
PROGRESSION_CHORDS = 4
PROGRESSION_CHORD_SECONDS = 2.0


def progression_clips(
    sr: int,
    per_program: int = PROGRESSIONS_PER_PROGRAM,
    *,
    seed: int = JUDGE_SEED,
    roots: tuple[int, int] = (48, 71),
    progress: bool = False,
) -> tuple[list[tuple[np.ndarray, int]], list[str]]:
    """``per_program`` clips of four random triads (quality, inversion, root MIDI in ``roots``),
    2 s each, struck on the beat at one random tempo (60-180 BPM), on every prompt instrument,
    with their GM families. ``seed`` draws them (another seed: a held-out set)."""
    from musicrfm import theory
    from musicrfm.synth.notes import TRAIN_PROGRAMS
    from musicrfm.synth.strikes import StrikeClip

    rng = np.random.default_rng(seed)
    qualities = list(theory.CHORD_QUALITIES)
    plans = []
    for program in TRAIN_PROGRAMS:
        for _ in range(per_program):
            bpm = float(rng.choice(np.arange(60, 181, 10)))
            chords = [
                StrikeClip.triad(int(program), int(rng.integers(roots[0], roots[1] + 1)),
                                 qualities[int(rng.integers(len(qualities)))],
                                 int(rng.integers(3)), bpm=bpm)
                for _ in range(PROGRESSION_CHORDS)
            ]  # fmt: skip
            plans.append((int(program), chords))
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc="render progressions", unit="clip")
    audio = [
        (np.concatenate([c.render(sampling_rate=sr, seconds=PROGRESSION_CHORD_SECONDS)
                         for c in chords]), sr)
        for _, chords in it
    ]  # fmt: skip
    return audio, [theory.instrument_family(p) for p, _ in plans]


def reference_instrument_clips(
    sr: int,
    rhythms: Sequence[tuple[int, float]] = REFERENCE_RHYTHMS,
    notes: tuple[int, int] = REFERENCE_NOTES,
    progress: bool = False,
) -> tuple[list[tuple[np.ndarray, int]], list[str]]:
    """Every prompt instrument (the mini model's programs) x every MIDI note in ``notes``
    (default: the three registers) x ``rhythms``, rendered at ``sr``, with their GM families."""
    from dataclasses import replace as dc_replace

    from musicrfm import theory
    from musicrfm.synth.notes import TRAIN_PROGRAMS, note_grid, render_clips

    clips = [
        dc_replace(c, repeats=r, gate=g)
        for c in note_grid(list(TRAIN_PROGRAMS), *notes)
        for r, g in rhythms
    ]  # fmt: skip
    audio = render_clips(clips, sampling_rate=sr, progress=progress)
    return [(a, sr) for a in audio], [theory.instrument_family(c.program) for c in clips]


def codec_fingerprint(adapter: ModelAdapter) -> str:
    """sha256 of the codec's class, settings and weights (first 16 hex digits)."""
    codec = adapter.codec
    config = {k: v for k, v in codec.config.to_dict().items() if k != "transformers_version"}
    h = hashlib.sha256(type(codec).__name__.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(codec.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def judge_key(
    adapter: ModelAdapter,
    notes: tuple[int, int],
    rhythms: Sequence[Sequence[float]],
    polyphonic: bool = False,
    progressions: bool = False,
) -> dict:
    """What a saved judge must match to be reused for ``adapter`` (a notes-only judge keeps the
    key it had before the polyphonic recipe existed; ``progressions`` implies ``polyphonic``)."""
    key: dict[str, Any] = {
        "version": JUDGE_VERSION,
        "codec": codec_fingerprint(adapter),
        "sample_rate": int(adapter.sample_rate),
        "notes": list(notes),
        "rhythms": [list(r) for r in rhythms],
    }
    if polyphonic or progressions:
        key["polyphony"] = {"per_program": POLYPHONIC_PER_PROGRAM, "kinds": ["intervals", "triads"]}
    if progressions:
        key["progressions"] = {
            "per_program": PROGRESSIONS_PER_PROGRAM,
            "chords": PROGRESSION_CHORDS,
            "chord_seconds": PROGRESSION_CHORD_SECONDS,
        }
    return key


def model_folder(adapter: ModelAdapter) -> Path | None:
    """The model's local folder, where a judge may travel with it (None for a hub id)."""
    path = getattr(adapter, "local_path", None)
    return Path(path) if path is not None and Path(path).is_dir() else None


def find_reference_judge(
    adapter: ModelAdapter, folders: Sequence[Path], *, key: dict | None = None
) -> tuple[Any, dict[str, Any]] | None:
    """The first saved judge in ``folders`` fitted for this codec, with its report; else None.
    Without ``key`` any recipe (notes only, polyphonic, progressions) is taken."""
    from musicrfm.evaluation.instrument import InstrumentClassifier

    if not folders:
        return None
    keys = (
        [key]
        if key
        else [
            judge_key(adapter, REFERENCE_NOTES, REFERENCE_RHYTHMS, poly, prog)
            for poly, prog in ((False, False), (True, False), (True, True))
        ]
    )
    for folder in folders:
        path = Path(folder) / JUDGE_NAME
        if not path.with_suffix(".json").is_file():
            continue
        try:
            clf = InstrumentClassifier.load(path)
        except (ConfigError, CompatibilityError) as exc:
            log.warning("ignoring the judge at %s: %s", path, exc)
            continue
        if clf.meta.get("judge_key") in keys:
            log.info("reference timbre judge: %s", path.with_suffix(".safetensors"))
            return clf, dict(clf.meta.get("report", {}))
        log.info("the judge at %s was fitted for another codec or recipe; not used", path)
    return None


def require_saved_judge(adapter: ModelAdapter, folder: str | Path) -> tuple[Any, dict[str, Any]]:
    """The saved judge in ``folder`` for this codec (either recipe), or a ConfigError that says
    how to fit one: what `--judge DIR` options check before any clip is generated."""
    found = find_reference_judge(adapter, [Path(folder)])
    if found is None:
        raise ConfigError(
            f"{folder} holds no timbre judge fitted for {adapter.model_id}'s codec: fit one "
            f"with `musicrfm mini judge --model {adapter.model_id} --out {folder}` (add "
            "--polyphonic for chords, --progressions for chord progressions), or drop --judge"
        )
    return found


def reference_judge(
    adapter: ModelAdapter,
    folders: Sequence[Path] = (),
    *,
    notes: tuple[int, int] | None = None,
    rhythms: Sequence[tuple[int, float]] | None = None,
    progress: bool = False,
    polyphonic: bool | None = None,
    progressions: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """The reference judge for ``adapter``'s codec: a matching one from ``folders``, else fitted
    (a small MLP on every prompt instrument x note x rhythm, with ``polyphonic`` also harmonic
    intervals and triads, and their codec round trips) and saved into ``folders[0]``.
    ``polyphonic`` None takes a saved judge of any recipe and fits the notes-only one;
    ``progressions`` adds clips of four triads in a row (:func:`progression_clips`) to the
    polyphonic ones.
    Returns (classifier, report with held-out accuracies)."""
    from musicrfm.evaluation.instrument import fit_instrument_classifier

    notes = notes or REFERENCE_NOTES
    rhythms = tuple(rhythms or REFERENCE_RHYTHMS)
    default = (notes == REFERENCE_NOTES and rhythms == REFERENCE_RHYTHMS and polyphonic is None
               and not progressions)  # fmt: skip
    poly = bool(polyphonic) or progressions  # progressions are fitted beside the polyphonic clips
    key = judge_key(adapter, notes, rhythms, poly, progressions)
    found = find_reference_judge(adapter, folders, key=None if default else key)
    if found is not None:
        return found
    log.info("fitting the reference timbre judge for this codec (minutes; saved for reuse)")
    clips, families = reference_instrument_clips(
        int(adapter.sample_rate), rhythms=rhythms, notes=notes, progress=progress
    )
    if poly:
        more, more_families = polyphonic_clips(int(adapter.sample_rate), progress=progress)
        clips, families = clips + more, families + more_families
    if progressions:
        more, more_families = progression_clips(int(adapter.sample_rate), progress=progress)
        clips, families = clips + more, families + more_families
    clf, full = fit_instrument_classifier(
        clips, families, model="mlp", seed=JUDGE_SEED, augment=codec_round_trip(adapter)
    )
    report = {
        k: full.get(k) for k in ("test_accuracy", "test_accuracy_augmented", "n_test", "classes")
    }
    report["polyphonic"] = poly
    report["progressions"] = bool(progressions)
    clf.meta.update(judge_key=key, report=report)
    if folders:
        clf.save(Path(folders[0]) / JUDGE_NAME)
    return clf, report
