"""The mini recipe's settings (:class:`TrainConfig`) and where its work folder goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicrfm.files import cache_dir
from musicrfm.synth.notes import TRAIN_PROGRAMS


@dataclass
class TrainConfig:
    """Everything the recipe depends on (recorded in the work folder and the model card)."""

    steps: int = 5000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 150
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    caption_dropout: float = 0.2  # whole caption dropped -> unconditional rows for CFG
    register_dropout: float = 0.2  # register words dropped -> instrument-only prompts work
    # decoder
    hidden_size: int = 192
    num_layers: int = 6
    num_heads: int = 4
    ffn_dim: int = 768
    dropout: float = 0.1
    # data
    programs: tuple[int, ...] = TRAIN_PROGRAMS
    seconds: float = 4.0
    low_note: int = 48
    high_note: int = 83
    velocities: tuple[int, ...] = (70, 100)
    # (repeats, gate) rhythms each training (program, note, velocity) is rendered with; more than
    # one makes timing independent of the instrument and note, so the decoder cannot just replay.
    # Measured in session 6: with these four rhythms and melody copies the held-out loss ends at
    # 3.5 (one rhythm, one note: 10.3) and random/orthogonal controls stay at baseline for 12/12
    # notes, so this is the bundled model's recipe (records without the field: ((4, 0.9),))
    rhythms: tuple[tuple[int, float], ...] = ((4, 0.9), (2, 0.9), (8, 0.5), (1, 1.0))
    # add a two-note copy (pitch changes half-way, caption "..., two notes") of every training
    # clip, so the decoder has to keep the instrument while the pitch moves (`--two-notes`).
    # Measured in session 4: gates pass and steered clips sound cleaner, but the pooled
    # hit-rate/adherence trade-off of the headline stayed the same, so the bundled model is
    # still the one-note recipe (notes/LEARNINGS.md)
    two_note_clips: bool = False
    # add a melody copy (a random note per strike, caption "..., melody") of every training
    # clip (`--melodies`, the default): pitch becomes a per-strike choice independent of the
    # instrument (records without the field: False)
    melody_clips: bool = True
    holdout: float = 0.08
    # "notes": the note clips above (one note per clip in four rhythms, melody copies; the
    # bundled musicgen-mini), or "strikes": :func:`musicrfm.synth.strikes.strike_grid` (single
    # notes, melodic and harmonic intervals 1-12, triads of four qualities in three inversions,
    # struck on the beat at 60-180 BPM; the polyphonic testbed of issue 17; `rhythms`,
    # `velocities`, `two_note_clips` and `melody_clips` do not apply)
    data: str = "notes"
    # codec: "polyphonic" (codebook 0 the bass note, 1 the set of notes above it, 2-3 shared
    # harmonic amplitudes; carries triads and intervals, session 9d) for the strike data, or
    # "harmonic" (codebook 0 is the MIDI note, the others the note-relative harmonic
    # amplitudes), so that a push toward a note need not move the instrument, or "spectral"
    # (log-mel k-means; codes are joint pitch x timbre spectra). Measured in session 7: the
    # harmonic model reaches 0.8 on every note at 0.05-0.1x the activation norm with prompt
    # adherence 0.98 -> 0.97, where the spectral one lost 0.22 (records without the field:
    # spectral)
    codec: str = "harmonic"
    codec_iters: int = 20
    # fit the codec's codebooks on at most this many training clips (a seeded subset; None: all
    # of them). The polyphonic codec analyses ~5 clips a second, and k-means sees at most 200k
    # frames anyway, so its recipe fits on 1500 clips, as benchmarks/probe_poly_codecs.py does
    codec_fit_clips: int | None = None
    # bookkeeping
    checkpoint_every: int = 250
    eval_every: int = 250
    threads: int = 1  # more threads are far slower on a shared, loaded CPU
    guidance_scale: float = 3.0
    top_k: int = 50
    temperature: float = 0.5  # measured: clearer pitch than 1.0 on the partly trained model
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config recorded in a work folder or model card (JSON lists back to tuples)."""
        from musicrfm.synth.notes import INSTRUMENTS

        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and k != "extra"}
        # fields added after a record was written take the value of the recipe it was made by
        known = {"rhythms": ((4, 0.9),), "melody_clips": False, "codec": "spectral", **known}
        cfg = cls(**known)
        cfg.velocities = tuple(cfg.velocities)
        cfg.rhythms = tuple((int(r), float(g)) for r, g in cfg.rhythms)
        # records written before `programs` existed were trained on every INSTRUMENTS program
        cfg.programs = tuple(raw.get("programs", tuple(INSTRUMENTS)))
        return cfg

    @property
    def frames(self) -> int:
        return int(round(self.seconds * 50))


def default_work_dir(out: Path) -> Path:
    """``mini-work/<name of out>`` under the cache root (:func:`musicrfm.files.cache_root`)."""
    return cache_dir("mini-work") / out.resolve().name
