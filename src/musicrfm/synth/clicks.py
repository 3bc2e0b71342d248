"""Click-track concepts: tempos (50..210 BPM) and time signatures (8 meters, 3 reverb levels)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from musicrfm import theory
from musicrfm.synth.spec import BPM, ClipSpec, Note, Selection, derive_seed


@dataclass(frozen=True)
class ClickSound:
    """A metronome click: a GM program (or the drum kit) with accented and plain notes."""

    name: str
    program: int
    drums: bool
    downbeat_note: int
    offbeat_note: int
    downbeat_velocity: int = 100
    offbeat_velocity: int = 75


CLICK_SOUNDS: tuple[ClickSound, ...] = (
    ClickSound("default", 0, True, 37, 31),  # drum kit: side stick / sticks
    ClickSound("woodblock_dark", 115, False, 37, 31),
    ClickSound("woodblock_light", 115, False, 52, 48),
    ClickSound("taiko", 116, False, 52, 48),
    ClickSound("synth_drum", 118, False, 52, 48),
)
"""SynTheory's five metronome sounds."""


def click_track(
    sound: ClickSound, interval: float, beats_per_bar: int, total: float
) -> tuple[Note, ...]:
    """Clicks every ``interval`` seconds for ``total`` seconds, accented every ``beats_per_bar``."""
    notes = []
    n = int(np.floor(total / interval + 1e-9)) + 1
    for b in range(n):
        down = b % beats_per_bar == 0
        t0 = b * interval
        notes.append(
            Note(
                t0,
                t0 + interval,
                sound.downbeat_note if down else sound.offbeat_note,
                sound.downbeat_velocity if down else sound.offbeat_velocity,
            )
        )
    return tuple(notes)


TEMPO_TRACK_SECONDS = 20.0
METER_TRACK_SECONDS = 30.0
TEMPO_CROPS = 5
METER_CROPS = 10
REVERB_LEVELS = (0, 1, 2)


def _click_fields(sound: ClickSound) -> dict[str, Any]:
    return {
        "click": sound.name,
        "program": sound.program,
        "program_name": "Standard Drum Kit" if sound.drums else theory.program_name(sound.program),
        "instrument_family": "drums" if sound.drums else theory.instrument_family(sound.program),
    }


def _crop_offset(seed: int, track: float, duration: float) -> float:
    rng = np.random.default_rng(seed)
    return round(float(rng.uniform(0.0, track - duration)), 6)


def tempos(sel: Selection, duration: float = 4.0) -> Iterator[ClipSpec]:
    index = 0
    for bpm in range(50, 211):
        for sound in CLICK_SOUNDS:
            notes = click_track(sound, 60.0 / bpm, 4, TEMPO_TRACK_SECONDS)
            for crop in range(TEMPO_CROPS):
                seed = derive_seed(sel.seed, "tempos", bpm, sound.name, crop)
                offset = _crop_offset(seed, TEMPO_TRACK_SECONDS, duration)
                yield ClipSpec(
                    concept="tempos",
                    key=f"bpm{bpm:03d}_{sound.name}_c{crop}",
                    index=index,
                    label=str(bpm),
                    params={"bpm": bpm, **_click_fields(sound), "crop": crop, "offset": offset},
                    notes=notes,
                    program=sound.program,
                    drums=sound.drums,
                    offset=offset,
                    seed=seed,
                )
                index += 1


def time_signatures(sel: Selection, duration: float = 4.0) -> Iterator[ClipSpec]:
    index = 0
    for meter in theory.METERS:
        for level in REVERB_LEVELS:
            for sound in CLICK_SOUNDS:
                notes = click_track(
                    sound, meter.click_seconds(BPM), meter.beats, METER_TRACK_SECONDS
                )
                for crop in range(METER_CROPS):
                    seed = derive_seed(
                        sel.seed, "time_signatures", meter.name, level, sound.name, crop
                    )
                    offset = _crop_offset(seed, METER_TRACK_SECONDS, duration)
                    yield ClipSpec(
                        concept="time_signatures",
                        key=f"{meter.beats}-{meter.unit}_rv{level}_{sound.name}_c{crop}",
                        index=index,
                        label=meter.name,
                        params={
                            "time_signature": meter.name,
                            "beats": meter.beats,
                            "unit": meter.unit,
                            "is_compound": meter.is_compound,
                            "bpm": BPM,
                            "reverb_level": level,
                            **_click_fields(sound),
                            "crop": crop,
                            "offset": offset,
                        },
                        notes=notes,
                        program=sound.program,
                        drums=sound.drums,
                        offset=offset,
                        reverb_level=level,
                        seed=seed,
                    )
                    index += 1
