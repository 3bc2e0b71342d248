"""Quality gates of the mini model, measured with detectors that do not use MusicGen.

* codec: the pitch class of each held-out clip's reconstruction (encode -> decode) agrees with
  the original's on >= 90% of clips;
* unsteered generations from instrument-only prompts: a clear pitched sound in >= 80% of clips,
  and no single pitch class above 25% of clips (the model picks notes itself, spread out);
* also reported: the prompted instrument as recognised by a small MFCC classifier fitted on real
  rendered clips (independent of MusicGen), against chance.

Pitch class comes from `musicrfm.evaluation.detectors.detect_note` (CQT chroma); "clearly
pitched" means not silent and a detector confidence at or above the level that 95% of real
rendered notes reach (calibrated in the same run, reported with the result).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.errors import ModelError
from musicrfm.synth.notes import INSTRUMENTS

log = logging.getLogger(__name__)

CODEC_GATE = 0.90
PITCHED_GATE = 0.80
MAX_CLASS_SHARE = 0.25
# "well above chance": at least this multiple of chance, and the 95% CI's low end above chance
INSTRUMENT_TIMES_CHANCE = 2.0


# --------------------------------------------------------------------------- detectors
def detect_pitch(audio: np.ndarray, sr: int) -> tuple[str, float]:
    """(pitch-class name or "silent", confidence) of one mono clip; swap the detector here."""
    from musicrfm.evaluation.detectors import detect_note

    det = detect_note(np.asarray(audio, dtype=np.float32), sr, method="chroma")
    return (det.label if not det.silent else "silent"), float(det.confidence)


def _instrument_features(audio: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    mfcc = librosa.feature.mfcc(y=np.asarray(audio, dtype=np.float32), sr=sr, n_mfcc=20)
    contrast = librosa.feature.spectral_contrast(y=np.asarray(audio, dtype=np.float32), sr=sr)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), contrast.mean(1)])


def _features(audio: np.ndarray, sr: int) -> np.ndarray:
    return np.stack([_instrument_features(a, sr) for a in audio])


def fit_instrument_classifier(clips, audio: np.ndarray, sr: int):
    """A standardised logistic regression on MFCC statistics of real clips (program labels)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _features(audio, sr)
    y = np.array([c.instrument for c in clips])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(x, y)
    return clf


# --------------------------------------------------------------------------- gates
def load_mini(folder: str | Path):
    """Load a mini model folder with the stock transformers class (after registering the codec)."""
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    from musicrfm.models import register_codecs

    register_codecs()

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise ModelError(f"{folder} is not a model folder (no config.json); train it first")
    model = MusicgenForConditionalGeneration.from_pretrained(folder)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


def reconstruct(model, audio: np.ndarray) -> np.ndarray:
    """Codec round trip (encode -> decode) of (n, samples) audio."""
    import torch

    out = []
    for i in range(0, len(audio), 32):
        batch = torch.from_numpy(np.ascontiguousarray(audio[i : i + 32]))[:, None]
        out.append(model.audio_encoder(batch).audio_values[:, 0].numpy())
    return np.concatenate(out)[:, : audio.shape[1]]


def codec_gate(model, clips, audio: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Pitch-class agreement of codec reconstructions with the originals (held-out clips)."""
    sr = model.audio_encoder.config.sampling_rate
    recon = reconstruct(model, audio)
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
    model, tokenizer, prompts: list[str], *, seed: int = 0, batch_size: int = 16, frames: int = 200
) -> np.ndarray:
    """Unsteered generations (model's generation config: sampling + CFG), (n, samples)."""
    import torch

    k = model.decoder.config.num_codebooks
    out = []
    for i in range(0, len(prompts), batch_size):
        torch.manual_seed(seed + i)
        inputs = tokenizer(prompts[i : i + batch_size], padding=True, return_tensors="pt")
        with torch.no_grad():
            audio = model.generate(**inputs, max_new_tokens=frames + k - 1)
        out.append(audio[:, 0].numpy())
    return np.concatenate(out)


def generation_gate(
    audio: np.ndarray, sr: int, confidence_floor: float, instruments: list[str], classifier=None
) -> dict[str, Any]:
    """Pitched share, pitch-class spread and instrument recognition of generated clips."""
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
        pred = classifier.predict(_features(audio, sr))
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
    folder: str | Path,
    *,
    seed: int = 0,
    n_per_prompt: int = 4,
    write_card: bool = True,
    max_codec_clips: int = 148,
    threads: int = 1,
) -> dict[str, Any]:
    """Measure every gate of the model in ``folder``; write gates.json and the model card."""
    import torch

    from musicrfm.mini.data import split_clips
    from musicrfm.mini.train import TrainConfig, _grid
    from musicrfm.synth.notes import NoteClip, note_grid, render_clips

    folder = Path(folder)
    t0 = time.time()
    model, tokenizer = load_mini(folder)
    info = _training_info(folder)
    cfg = TrainConfig.from_record(info.get("train_config", {}))
    torch.set_num_threads(max(1, threads))  # >1 thread is far slower on a loaded, shared CPU
    sr = model.config.audio_encoder.sampling_rate

    # codec: clips never used to fit the codebooks or train the decoder
    _, hold = _grid(cfg)
    hold = hold[:: max(1, len(hold) // max_codec_clips)][:max_codec_clips]
    hold_audio = render_clips(hold, sampling_rate=sr, seconds=cfg.seconds)
    codec, recon = codec_gate(model, hold, hold_audio)
    log.info("codec gate: %s", codec)

    # "Clearly pitched": detector confidence at least the 5th percentile reached by codec
    # reconstructions of real notes (generated audio always goes through the codec, so that is
    # the best the model can sound); white noise through the codec must stay below it.
    conf_real = np.array([detect_pitch(a, sr)[1] for a in recon])
    floor = float(np.quantile(conf_real, 0.05))
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((8, hold_audio.shape[1])).astype(np.float32) * 0.3
    noise = reconstruct(model, noise)
    noise_pitched = float(np.mean([detect_pitch(a, sr)[1] >= floor for a in noise]))

    # instrument classifier on training-grid clips (a few notes per program), both as rendered
    # and through the codec: generated audio always comes out of the codec, whose Griffin-Lim
    # phase shifts MFCC statistics enough to fool a classifier that only heard clean renders
    pairs = note_grid(
        list(cfg.programs), low=cfg.low_note, high=cfg.high_note, velocities=(cfg.velocities[0],)
    )
    train_pairs, _ = split_clips(pairs, holdout=cfg.holdout, seed=cfg.seed)
    clf_clips = [NoteClip(c.program, c.midi_note, c.velocity) for c in train_pairs[::3]]
    clf_audio = render_clips(clf_clips, sampling_rate=sr, seconds=cfg.seconds)
    clf = fit_instrument_classifier(
        clf_clips * 2, np.concatenate([clf_audio, reconstruct(model, clf_audio)]), sr
    )
    hold_names = np.array([c.instrument for c in hold])
    real_acc = float(np.mean(clf.predict(_features(hold_audio, sr)) == hold_names))
    recon_acc = float(np.mean(clf.predict(_features(recon, sr)) == hold_names))

    # unsteered generations from instrument-only prompts
    instruments = [INSTRUMENTS[p] for p in cfg.programs for _ in range(n_per_prompt)]
    t_gen = time.time()
    gen = generate_clips(model, tokenizer, instruments, seed=seed)
    gen_seconds = time.time() - t_gen
    generation = generation_gate(gen, sr, floor, instruments, clf)
    generation["instrument_accuracy_on_real_heldout"] = real_acc
    generation["instrument_accuracy_on_reconstructed_heldout"] = recon_acc
    generation["seconds_per_clip_batched"] = gen_seconds / len(instruments)
    log.info("generation gate: %s", generation)

    # single-clip latency (batch 1, CFG), the number a user sees
    t1 = time.time()
    generate_clips(model, tokenizer, [instruments[0]], seed=seed)
    single = time.time() - t1

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
    result = {
        "summary": summary,
        "codec": codec,
        "generation": generation,
        "calibration": {
            "confidence_floor": floor,
            "reconstructed_real_notes_above_floor": float(np.mean(conf_real >= floor)),
            "original_notes_above_floor": float(
                np.mean([detect_pitch(a, sr)[1] >= floor for a in hold_audio])
            ),
            "white_noise_above_floor": noise_pitched,
        },
        "seed": seed,
        "n_per_prompt": n_per_prompt,
        "seconds": round(time.time() - t0, 1),
        "command": f"musicrfm mini gates --model {folder} --seed {seed}",
    }
    if write_card:
        (folder / "gates.json").write_text(json.dumps(result, indent=2))
        write_model_card(folder, info, result)
    return result


def record_headline(folder: str | Path, record: dict[str, Any]) -> Path:
    """Keep a headline result (musicrfm.experiments.headline) beside the model and in its card."""
    folder = Path(folder)
    (folder / "headline.json").write_text(json.dumps(record, indent=2))
    return refresh_model_card(folder)


def refresh_model_card(folder: str | Path) -> Path:
    """Rewrite a mini model's card from what its folder holds (training, gates, headline,
    judge)."""
    folder = Path(folder)
    gates_path = folder / "gates.json"
    gates = json.loads(gates_path.read_text()) if gates_path.exists() else None
    return write_model_card(folder, _training_info(folder), gates)


def _headline_lines(folder: Path) -> list[str]:
    path = folder / "headline.json"
    if not path.exists():
        return []
    rec = json.loads(path.read_text())
    s = rec["settings"]
    lines = [
        "## Steering toward each pitch class (the headline)",
        "",
        f"Measured by `{s['command']}`: note directions trained on this model's activations, "
        f"η0 = {', '.join(f'{c:.1f}' for c in s['coefs'])} "
        f"({', '.join(f'{r:g}' for r in s['relative_coefs'])} x the median activation norm), "
        "best η0 = the smallest reaching 0.8 (else the best); controls at that η0; same "
        "prompts and seeds as the unsteered baseline (n="
        + str(rec["per_target"][0]["n_baseline"])
        + "); adherence = the timbre classifier hears the prompted instrument family.",
        "",
        "| note | unsteered | best η0 | steered [95% CI] | random | orthogonal | flip "
        "| flip: target probability − unsteered [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rec["per_target"]:
        flip_n = f" (n={r['flip_n']})" if "flip_n" in r else ""  # older records lack it
        flip_prob = (
            f"{r['flip_prob_minus_baseline']:+.3f} "
            f"[{r['flip_prob_ci_low']:+.3f}, {r['flip_prob_ci_high']:+.3f}]"
            if "flip_prob_minus_baseline" in r
            else ""
        )
        lines.append(
            f"| {r['target']} | {r['baseline']:.2f} | {r['best_coef']:.1f} | "
            f"{r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] (n={r['n']}) | "
            + " | ".join(f"{r[k]:.2f}" if k in r else "" for k in ("random", "orthogonal", "flip"))
            + f"{flip_n} | {flip_prob} |"
        )
    from musicrfm.experiments.headline import verdict_lines

    lines += ["", *verdict_lines(rec["overall"])]
    return [*lines, ""]


def _judge_lines(folder: Path) -> list[str]:
    from musicrfm.evaluation.judges import JUDGE_NAME

    path = folder / f"{JUDGE_NAME}.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text()).get("report", {})
    return [
        "## Prompt-adherence judge",
        "",
        f"`{JUDGE_NAME}.safetensors` + `.json`: the reference timbre classifier for this "
        "model's codec (a small MLP on every prompt instrument x note x four rhythms and their "
        "codec round trips), written by `musicrfm mini judge`. Held-out accuracy "
        f"{report.get('test_accuracy', float('nan')):.3f} on rendered clips, "
        f"{report.get('test_accuracy_augmented', float('nan')):.3f} through the codec "
        f"(n={report.get('n_test')}). `musicrfm demo` and `musicrfm mini headline` use it "
        "while its codec fingerprint matches.",
        "",
    ]


def _ci(g: dict[str, Any]) -> str:
    ci = g.get("instrument_ci")
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _training_info(folder: Path) -> dict[str, Any]:
    path = folder / "training.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _rhythm_words(rhythms: tuple[tuple[int, float], ...]) -> str:
    """How the clips are struck: "4 times (...)" or "in 4 rhythms (4 strikes held 90%, ...)"."""
    if len(rhythms) == 1:
        r, g = rhythms[0]
        return f"{r:g} times (each strike held {g:.0%} of its slot)"
    return (
        f"in {len(rhythms)} rhythms ("
        + ", ".join(f"{r:g} strike{'s' if r != 1 else ''} held {g:.0%}" for r, g in rhythms)
        + ")"
    )


def _generalisation_words(hist: list[dict[str, Any]]) -> str:
    """Whether the held-out loss ended near its best (generalises) or rose again (memorises)."""
    vals = [h["val_loss"] for h in hist if "val_loss" in h]
    best, last = min(vals), vals[-1]
    if last > 1.2 * best:
        return (
            f"The held-out loss was lowest ({best:.3f}) early and rose again: the decoder "
            "memorises its training clips rather than generalising to unseen pairs. That suits "
            "its purpose -- a steerable model whose unsteered output spreads over the notes and "
            "follows the instrument prompt -- but it is not a general music model."
        )
    return (
        f"The held-out loss ended within 20% of its lowest ({best:.3f}): the decoder largely "
        "generalises to (program, note) pairs it never heard, rather than replaying its "
        "training clips."
    )


def _codec_words(codec: str) -> list[str]:
    """The model card's description of the recipe's codec."""
    if codec == "harmonic":
        return [
            "- Codec (`audio_encoder`, model_type `musicrfm_harmonic_codec`): 16 kHz audio -> YIN",
            "  f0 per 50 Hz frame -> codebook 0 is the nearest MIDI note; the log amplitudes of 40",
            "  harmonics of that note -> 3 residual k-means codebooks of 512 (fitted on the training",
            "  clips), so the timbre codes do not depend on the note. Decoding is additive synthesis.",
            "  Monophonic. EnCodec's encode/decode interface.",
        ]
    return [
        "- Codec (`audio_encoder`, model_type `musicrfm_spectral_codec`): 16 kHz audio -> 128",
        "  log-mel bands at 50 Hz -> 4 residual k-means codebooks of 512 (fitted on the training",
        "  clips); decoding inverts the mel filters (non-negative least squares) and recovers",
        "  phase with 32 fast Griffin-Lim iterations. EnCodec's encode/decode interface.",
    ]


def write_model_card(folder: Path, info: dict[str, Any], gates: dict[str, Any] | None) -> Path:
    """README.md in the model folder: what it is, how it was trained, and the measured gates."""
    cfg = info.get("train_config", {})
    hist = info.get("history", [])
    last_val = next((h["val_loss"] for h in reversed(hist) if "val_loss" in h), None)
    last_train = next((h["loss"] for h in reversed(hist) if "loss" in h), None)
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6
    from musicrfm.mini.train import TrainConfig

    # read through from_record, so a record older than a field reads as the recipe that made it
    recipe = TrainConfig.from_record(cfg)
    two_notes, melodies, rhythms = recipe.two_note_clips, recipe.melody_clips, recipe.rhythms
    lines = [
        "# musicgen-mini",
        "",
        "A small text-to-music model with MusicGen's architecture, trained from scratch by MusicRFM's",
        "recipe (`musicrfm mini train`) on rendered note clips. It is the offline default model",
        "on which MusicRFM's steering is verified end to end. Load it with `musicrfm.load_model('mini')`,",
        "or with the stock transformers classes once `musicrfm.models` is imported (importing it",
        "registers the model's codec with transformers' Auto classes):",
        "",
        "```python",
        "import musicrfm.models  # registers the codecs with transformers",
        "from transformers import AutoTokenizer, MusicgenForConditionalGeneration",
        "model = MusicgenForConditionalGeneration.from_pretrained('models/musicgen-mini')",
        "tok = AutoTokenizer.from_pretrained('models/musicgen-mini')",
        "audio = model.generate(**tok(['acoustic piano'], return_tensors='pt'), max_new_tokens=203)",
        "```",
        "",
        "## Parts",
        "",
        *_codec_words(recipe.codec),
        f"- Decoder: `MusicgenForCausalLM`, {cfg.get('num_layers')} layers, hidden size "
        f"{cfg.get('hidden_size')}, {cfg.get('num_heads')} heads, FFN {cfg.get('ffn_dim')}, "
        f"4 codebooks with the delay pattern ({info.get('decoder_parameters', 0) / 1e6:.2f}M parameters).",
        "- Text encoder: a 2-layer T5 encoder (d=128) with the byte-level `ByT5Tokenizer`",
        "  (no vocabulary download).",
        f"- Total {info.get('total_parameters', 0) / 1e6:.2f}M parameters, {size_mb:.1f} MB of safetensors.",
        "",
        "## Training data and recipe",
        "",
        f"- Clips: one MIDI note (MIDI {cfg.get('low_note')}-{cfg.get('high_note')}) struck in "
        f"{cfg.get('seconds')} s {_rhythm_words(rhythms)}, velocities {cfg.get('velocities')}, on {len(cfg.get('programs', ())) or 28} tonal GM programs "
        f"({', '.join(INSTRUMENTS.get(p, str(p)) for p in cfg.get('programs', ()))}), rendered "
        "with TinySoundFont + TimGM6mb. "
        + (
            "Every training clip also has a two-note copy (the later two strikes play another "
            "pitch class within an octave, captioned '..., two notes'), so the decoder learns to "
            "keep the instrument while the pitch moves. "
            if two_notes
            else ""
        )
        + (
            "Every one-note training clip also has a melody copy (every strike after the first "
            "plays a random note within an octave, captioned '..., melody'), so pitch is a "
            "per-strike choice that the instrument does not decide. "
            if melodies
            else ""
        )
        + f"{info.get('train_clips')} training clips; {info.get('holdout_clips')} held out by (program, note).",
        "- Captions name the instrument and the register ('acoustic piano, low register'), never",
        "  the pitch: unsteered, the model chooses a note itself.",
        f"- {cfg.get('steps')} steps of batch {cfg.get('batch_size')}, AdamW lr {cfg.get('lr')} "
        f"(warm-up, cosine), caption dropout {cfg.get('caption_dropout')} for classifier-free guidance, "
        f"register dropout {cfg.get('register_dropout')}, seed {cfg.get('seed')}.",
        f"- Final held-out loss {last_val:.3f}, last training-batch loss {last_train:.3f} "
        "(cross-entropy per code). Held-out clips are (program, note) pairs never heard in "
        "training. " + _generalisation_words(hist)
        if last_val and last_train is not None
        else "",
        f"- Training time: {info.get('train_seconds_total', info.get('train_seconds_this_run', 0)) / 60:.0f}"
        " min in total (rendering, codec fit, decoder) on 2 CPU cores shared with other jobs"
        f" ({cfg.get('threads', 1)} torch thread(s)).",
        "- Generation defaults: sampling, top-k "
        f"{cfg.get('top_k')}, temperature {cfg.get('temperature', 1.0)}, guidance scale "
        f"{cfg.get('guidance_scale')}; 203 new tokens = 4 s.",
        "",
        "Reproduce: `musicrfm mini train --out models/musicgen-mini "
        f"--steps {cfg.get('steps')} --seed {cfg.get('seed')}"
        + f" --rhythms {','.join(f'{r}:{g:g}' for r, g in rhythms)}"
        + (" --two-notes" if two_notes else "")
        + (" --melodies" if melodies else " --no-melodies")
        + f" --codec {recipe.codec}"
        + "`.",
        "",
    ]
    lines += [f"- {note}" for note in info.get("notes", [])]
    if info.get("notes"):
        lines.append("")
    if gates:
        s, c, g, cal = gates["summary"], gates["codec"], gates["generation"], gates["calibration"]
        ok = {True: "pass", False: "FAIL"}
        lines += [
            "## Quality gates (detectors independent of MusicGen)",
            "",
            f"Measured by `{gates['command']}` in {gates['seconds']:.0f} s.",
            "",
            "| gate | measured | threshold | result |",
            "|---|---|---|---|",
            f"| codec: pitch class of reconstruction = original (held-out clips, n={c['n']}) | "
            f"{c['agreement_with_original']:.3f} | >= {CODEC_GATE} | {ok[c['passed']]} |",
            f"| unsteered: clearly pitched clips (n={g['n']}) | {g['pitched_fraction']:.3f} | "
            f">= {PITCHED_GATE} | {ok[g['pitched_passed']]} |",
            f"| unsteered: largest single pitch-class share | {g['max_pitch_class_share']:.3f} | "
            f"<= {MAX_CLASS_SHARE} | {ok[g['spread_passed']]} |",
        ]
        if g.get("instrument_accuracy") is not None:
            lines.append(
                f"| unsteered: prompted instrument recognised (MFCC classifier) | "
                f"{g['instrument_accuracy']:.3f} {_ci(g)} | >= {INSTRUMENT_TIMES_CHANCE:g} x chance "
                f"{g['instrument_chance']:.3f}, CI above chance (held-out clips: "
                f"{g['instrument_accuracy_on_real_heldout']:.3f} rendered, "
                f"{g.get('instrument_accuracy_on_reconstructed_heldout', float('nan')):.3f} "
                "through the codec) | "
                f"{ok.get(g.get('instrument_passed'), 'reported')} |"
            )
        lines += [
            "",
            f"- Codec reconstructions match the true label on {c['reconstruction_matches_label']:.3f} "
            f"of clips (originals: {c['original_matches_label']:.3f}).",
            f"- Pitch classes of unsteered generations: {g['pitch_class_counts']} "
            f"({g['distinct_pitch_classes']} distinct).",
            f"- 'Clearly pitched' = chroma detector confidence >= {cal['confidence_floor']:.3f}, the "
            "5th percentile over codec reconstructions of real held-out notes (originals reach it "
            f"in {cal['original_notes_above_floor']:.2f} of clips; white noise through the codec in "
            f"{cal['white_noise_above_floor']:.2f}).",
            f"- Generating one 4-s clip (batch 1, CFG) took {s['seconds_to_generate_4s_clip']:.1f} s "
            "on the shared CPU (1 thread).",
            "",
        ]
    lines += _headline_lines(folder)
    lines += _judge_lines(folder)
    path = folder / "README.md"
    path.write_text("\n".join(line for line in lines if line is not None) + "\n")
    return path
