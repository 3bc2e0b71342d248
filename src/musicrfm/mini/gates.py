"""Quality gates of the mini model, measured with detectors that do not use MusicGen.

* codec: the pitch class of each held-out clip's reconstruction (encode -> decode) agrees with
  the original's on >= 90% of clips;
* unsteered generations from instrument-only prompts: a clear pitched sound in >= 80% of clips,
  and no single pitch class above 25% of clips (the model picks notes itself, spread out);
* also reported: the prompted instrument as recognised by the project's timbre classifier
  (:func:`musicrfm.evaluation.instrument.fit_instrument_classifier`), fitted on real rendered
  clips and their codec round trips (independent of MusicGen's decoder), against chance.

Pitch class comes from `musicrfm.evaluation.detectors.detect_note` (CQT chroma); "clearly
pitched" means not silent and a detector confidence at or above the level that 95% of real
rendered notes reach (calibrated in the same run, reported with the result).

:func:`run_gates` only measures; :func:`musicrfm.mini.card.record_gates` keeps the result in
the model's folder (``gates.json``) and its card.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicrfm.synth.notes import INSTRUMENTS

if TYPE_CHECKING:
    from musicrfm.models import ModelAdapter

log = logging.getLogger(__name__)

CODEC_GATE = 0.90
PITCHED_GATE = 0.80
MAX_CLASS_SHARE = 0.25
# "well above chance": at least this multiple of chance, and the 95% CI's low end above chance
INSTRUMENT_TIMES_CHANCE = 2.0
# what the gates' instrument figure is measured with (recorded in gates.json and the card)
INSTRUMENT_CLASSIFIER = "timbre classifier"


# --------------------------------------------------------------------------- detectors
def detect_pitch(audio: np.ndarray, sr: int) -> tuple[str, float]:
    """(pitch-class name or "silent", confidence) of one mono clip; swap the detector here."""
    from musicrfm.evaluation.detectors import detect_note

    det = detect_note(np.asarray(audio, dtype=np.float32), sr, method="chroma")
    return (det.label if not det.silent else "silent"), float(det.confidence)


def fit_gate_classifier(adapter: ModelAdapter, clips: list, audio: np.ndarray) -> Any:
    """The project's instrument classifier (`musicrfm.evaluation.instrument`) fitted on real
    clips labelled by their program's instrument name, both as rendered and through the model's
    codec: generated audio always comes out of the codec, whose phase reconstruction shifts
    timbre statistics enough to fool a classifier that only heard clean renders."""
    from musicrfm.evaluation.instrument import fit_instrument_classifier
    from musicrfm.evaluation.judges import codec_round_trip

    sr = int(adapter.sample_rate)
    clf, _ = fit_instrument_classifier(
        [(a, sr) for a in audio], [c.instrument for c in clips], label="instrument",
        test_fraction=0.0, augment=codec_round_trip(adapter),
    )  # fmt: skip
    return clf


def reconstruct(adapter: ModelAdapter, audio: np.ndarray) -> np.ndarray:
    """Codec round trip (encode -> decode) of (n, samples) audio at the model's rate."""
    sr = int(adapter.sample_rate)
    waves = adapter.round_trip([(a, sr) for a in audio])
    return np.stack([w[: audio.shape[1]] for w in waves])


def training_info(folder: str | Path | None) -> dict[str, Any]:
    """The ``training.json`` a mini model folder holds (empty for other models)."""
    path = Path(folder) / "training.json" if folder is not None else None
    return json.loads(path.read_text()) if path is not None and path.exists() else {}


# --------------------------------------------------------------------------- gates
def codec_gate(
    adapter: ModelAdapter, clips, audio: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """Pitch-class agreement of codec reconstructions with the originals (held-out clips)."""
    sr = adapter.sample_rate
    recon = reconstruct(adapter, audio)
    orig_pc = [detect_pitch(a, sr)[0] for a in audio]
    rec_pc = [detect_pitch(a, sr)[0] for a in recon]
    from musicrfm.theory import PITCH_CLASSES

    labels = [PITCH_CLASSES[c.pitch_class] for c in clips]
    agree = float(np.mean([a == b for a, b in zip(orig_pc, rec_pc)]))
    return {
        "n": len(clips),
        "agreement_with_original": agree,
        "reconstruction_matches_label": float(np.mean([a == b for a, b in zip(rec_pc, labels)])),
        "original_matches_label": float(np.mean([a == b for a, b in zip(orig_pc, labels)])),
        "passed": agree >= CODEC_GATE,
        "threshold": CODEC_GATE,
    }, recon


def generate_clips(
    adapter: ModelAdapter,
    prompts: list[str],
    *,
    seed: int = 0,
    batch_size: int = 16,
    frames: int = 200,
) -> np.ndarray:
    """Unsteered generations (model's generation config: sampling + CFG), (n, samples)."""
    import torch

    k = adapter.num_codebooks
    out = []
    for i in range(0, len(prompts), batch_size):
        torch.manual_seed(seed + i)
        inputs = adapter.tokenize(prompts[i : i + batch_size])
        with torch.no_grad():
            audio = adapter.model.generate(**inputs, max_new_tokens=frames + k - 1)
        out.append(audio[:, 0].float().cpu().numpy())
    return np.concatenate(out)


def generation_gate(
    audio: np.ndarray, sr: int, confidence_floor: float, instruments: list[str], classifier=None
) -> dict[str, Any]:
    """Pitched share, pitch-class spread and instrument recognition of generated clips.

    ``classifier``: anything with ``predict(audios, sr) -> labels`` (an
    :class:`~musicrfm.evaluation.instrument.InstrumentClassifier`)."""
    dets = [detect_pitch(a, sr) for a in audio]
    pitched = [lab != "silent" and conf >= confidence_floor for lab, conf in dets]
    counts = Counter(lab for (lab, _), ok in zip(dets, pitched) if ok)
    n = len(audio)
    top_share = max(counts.values()) / n if counts else 1.0
    result: dict[str, Any] = {
        "n": n,
        "pitched_fraction": float(np.mean(pitched)),
        "pitch_class_counts": dict(sorted(counts.items())),
        "max_pitch_class_share": float(top_share),
        "distinct_pitch_classes": len(counts),
        "pitched_passed": float(np.mean(pitched)) >= PITCHED_GATE,
        "spread_passed": top_share <= MAX_CLASS_SHARE,
    }
    if classifier is not None:
        pred = np.asarray(classifier.predict(list(audio), sr))
        from musicrfm.evaluation.metrics import bootstrap_ci

        est = bootstrap_ci((pred == np.array(instruments)).astype(float))
        chance = 1.0 / len(set(instruments))
        result.update(
            instrument_accuracy=est.value,
            instrument_ci=[est.low, est.high],
            instrument_chance=chance,
            instrument_passed=bool(
                est.value >= INSTRUMENT_TIMES_CHANCE * chance and est.low > chance
            ),
        )
    return result


def run_gates(
    model: str | os.PathLike[str] | ModelAdapter = "mini",
    *,
    seed: int = 0,
    n_per_prompt: int = 4,
    max_codec_clips: int = 148,
    threads: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Measure every gate of ``model`` (anything :func:`musicrfm.models.load_model` accepts; the
    recipe comes from its folder's ``training.json``). Writes nothing: keep the result with
    :func:`musicrfm.mini.card.record_gates`."""
    import torch

    from musicrfm.mini.codes import _grid
    from musicrfm.mini.config import TrainConfig
    from musicrfm.models import load_model
    from musicrfm.synth.notes import render_clips

    t0 = time.time()
    adapter = load_model(model, device=device)
    cfg = TrainConfig.from_record(training_info(adapter.local_path).get("train_config", {}))
    torch.set_num_threads(max(1, threads))  # >1 thread is far slower on a loaded, shared CPU
    sr = adapter.sample_rate
    shown = (
        model if isinstance(model, (str, os.PathLike)) else adapter.local_path or adapter.model_id
    )

    # codec: clips never used to fit the codebooks or train the decoder
    _, hold = _grid(cfg)
    hold = hold[:: max(1, len(hold) // max_codec_clips)][:max_codec_clips]
    hold_audio = render_clips(hold, sampling_rate=sr, seconds=cfg.seconds)
    codec, recon = codec_gate(adapter, hold, hold_audio)
    log.info("codec gate: %s", codec)
    calibration = _calibrate(adapter, hold_audio, recon, seed)
    clf = fit_gate_classifier(adapter, *_classifier_clips(cfg, sr))
    hold_names = np.array([c.instrument for c in hold])

    # unsteered generations from instrument-only prompts
    instruments = [INSTRUMENTS[p] for p in cfg.programs for _ in range(n_per_prompt)]
    t_gen = time.time()
    gen = generate_clips(adapter, instruments, seed=seed)
    gen_seconds = time.time() - t_gen
    generation = generation_gate(gen, sr, calibration["confidence_floor"], instruments, clf)
    generation.update(
        instrument_classifier=INSTRUMENT_CLASSIFIER,
        instrument_accuracy_on_real_heldout=_accuracy(clf, hold_audio, sr, hold_names),
        instrument_accuracy_on_reconstructed_heldout=_accuracy(clf, recon, sr, hold_names),
        seconds_per_clip_batched=gen_seconds / len(instruments),
    )
    log.info("generation gate: %s", generation)

    # single-clip latency (batch 1, CFG), the number a user sees
    t1 = time.time()
    generate_clips(adapter, [instruments[0]], seed=seed)
    single = time.time() - t1
    return {
        "summary": _summary(codec, generation, single),
        "codec": codec,
        "generation": generation,
        "calibration": calibration,
        "seed": seed,
        "n_per_prompt": n_per_prompt,
        "seconds": round(time.time() - t0, 1),
        "command": f"musicrfm mini gates --model {shown} --seed {seed}",
    }


def _calibrate(
    adapter: ModelAdapter, hold_audio: np.ndarray, recon: np.ndarray, seed: int
) -> dict[str, Any]:
    """ "Clearly pitched": detector confidence at least the 5th percentile reached by codec
    reconstructions of real notes (generated audio always goes through the codec, so that is
    the best the model can sound); white noise through the codec must stay below it."""
    sr = adapter.sample_rate
    conf_real = np.array([detect_pitch(a, sr)[1] for a in recon])
    floor = float(np.quantile(conf_real, 0.05))
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((8, hold_audio.shape[1])).astype(np.float32) * 0.3
    noise = reconstruct(adapter, noise)
    return {
        "confidence_floor": floor,
        "reconstructed_real_notes_above_floor": float(np.mean(conf_real >= floor)),
        "original_notes_above_floor": float(
            np.mean([detect_pitch(a, sr)[1] >= floor for a in hold_audio])
        ),
        "white_noise_above_floor": float(np.mean([detect_pitch(a, sr)[1] >= floor for a in noise])),
    }


def _classifier_clips(cfg: Any, sr: int) -> tuple[list, np.ndarray]:
    """Training-grid clips for the instrument classifier: a few notes per program, rendered."""
    from musicrfm.mini.data import split_clips
    from musicrfm.synth.notes import NoteClip, note_grid, render_clips

    pairs = note_grid(
        list(cfg.programs), low=cfg.low_note, high=cfg.high_note, velocities=(cfg.velocities[0],)
    )
    train_pairs, _ = split_clips(pairs, holdout=cfg.holdout, seed=cfg.seed)
    clips = [NoteClip(c.program, c.midi_note, c.velocity) for c in train_pairs[::3]]
    return clips, render_clips(clips, sampling_rate=sr, seconds=cfg.seconds)


def _accuracy(clf: Any, audio: np.ndarray, sr: int, names: np.ndarray) -> float:
    return float(np.mean(np.asarray(clf.predict(list(audio), sr)) == names))


def _summary(codec: dict[str, Any], generation: dict[str, Any], single: float) -> dict[str, Any]:
    summary = {
        "codec_pitch_agreement": codec["agreement_with_original"],
        "codec_clips": codec["n"],
        "pitched_fraction": generation["pitched_fraction"],
        "max_pitch_class_share": generation["max_pitch_class_share"],
        "distinct_pitch_classes": generation["distinct_pitch_classes"],
        "generated_clips": generation["n"],
        "instrument_accuracy": generation.get("instrument_accuracy"),
        "instrument_chance": generation.get("instrument_chance"),
        "seconds_to_generate_4s_clip": round(single, 2),
        "codec_passed": codec["passed"],
        "pitched_passed": generation["pitched_passed"],
        "spread_passed": generation["spread_passed"],
    }
    summary["instrument_passed"] = generation.get("instrument_passed")
    summary["all_passed"] = bool(
        summary["codec_passed"]
        and summary["pitched_passed"]
        and summary["spread_passed"]
        and summary["instrument_passed"] is not False
    )
    return summary
