"""The mini model's card (README.md in its folder), written from what the folder holds.

The card is regenerated, never edited by hand: :func:`write_model_card` renders it from
``training.json`` (the recipe and its history), ``gates.json`` (:func:`record_gates`),
``headline.json`` (:func:`record_headline`) and the saved prompt-adherence judge;
:func:`refresh_model_card` rewrites it after any of them changes. The one hand-written part
it keeps: notes appended at the very end of the card as paragraphs in parentheses (a
provenance note such as "(Every figure above was measured ... before it was copied into this
folder ...)"), which stay at the end of every rewrite (:func:`appended_notes`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from musicrfm.mini.gates import (
    CODEC_GATE,
    INSTRUMENT_TIMES_CHANCE,
    MAX_CLASS_SHARE,
    PITCHED_GATE,
    training_info,
)
from musicrfm.synth.notes import INSTRUMENTS


def record_gates(folder: str | Path, result: dict[str, Any]) -> Path:
    """Keep a gates result (:func:`musicrfm.mini.gates.run_gates`) beside the model, as
    ``gates.json``, and in its card."""
    folder = Path(folder)
    (folder / "gates.json").write_text(json.dumps(result, indent=2))
    return refresh_model_card(folder)


HEADLINE_FILES = {"notes": "headline.json", "chords": "headline-chords.json",
                  "intervals": "headline-intervals.json", "tempos": "headline-tempos.json",
                  "tempo_bins": "headline-tempo_bins.json", "scales": "headline-scales.json",
                  "progressions": "headline-progressions.json",
                  "time_signatures": "headline-time_signatures.json",
                  "beats": "headline-beats.json"}  # fmt: skip
"""Where each concept's headline is kept in a model folder (notes: the original name)."""
_TITLES = {"notes": ("each pitch class (the headline)", "note"),
           "chords": ("each chord quality", "quality"),
           "intervals": ("each interval", "interval"),
           "tempo_bins": ("each tempo bin (slow / medium / fast)", "bin"),
           "scales": ("each scale", "scale"), "progressions": ("each progression", "progression"),
           "time_signatures": ("each time signature", "meter")}  # fmt: skip


def record_headline(folder: str | Path, record: dict[str, Any], concept: str = "notes") -> Path:
    """Keep a headline result (musicrfm.experiments.headline) beside the model and in its card."""
    folder = Path(folder)
    (folder / HEADLINE_FILES[concept]).write_text(json.dumps(record, indent=2))
    return refresh_model_card(folder)


def refresh_model_card(folder: str | Path) -> Path:
    """Rewrite a mini model's card from what its folder holds (training, gates, headline,
    judge)."""
    folder = Path(folder)
    gates_path = folder / "gates.json"
    gates = json.loads(gates_path.read_text()) if gates_path.exists() else None
    return write_model_card(folder, training_info(folder), gates)


def _headline_lines(folder: Path) -> list[str]:
    """Every concept's headline the folder keeps, notes first."""
    lines: list[str] = []
    for concept, name in HEADLINE_FILES.items():
        path = folder / name
        if not path.exists():
            continue
        rec = json.loads(path.read_text())
        if concept == "tempos":
            lines += _tempo_lines(rec)
        elif concept == "beats":
            lines += _beat_lines(rec, shipped=(folder / "directions" / "onsets.json").exists())
        else:
            lines += _class_headline_lines(rec, concept)
    return lines


def _tempo_lines(rec: dict[str, Any]) -> list[str]:
    """The tempo headline: median detected BPM by signed η0, the controls, the verdict."""
    v, s = rec["overall"], rec["settings"]
    lines = [
        "## Steering tempo (a signed regression direction)",
        "",
        f"Measured by `{s['command']}`: one tempo direction per layer (RFM regression probes on "
        "strike clips at 60-180 BPM, signed by their correlation with the BPM); η0 > 0 is "
        "'faster', η0 < 0 'slower'; the tempo detector's BPM of every clip, the median's change "
        "against the unsteered median with a bootstrap 95% CI.",
        "",
        "| condition | η0 | median BPM | change [95% CI] | adherence | n |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(
        rec["rows"],
        key=lambda r: (r["condition"] not in ("unsteered", "faster", "slower"), r["coef"]),
    ):
        adh = f"{r['adherence']:.2f}" if r.get("adherence") is not None else ""
        lines.append(
            f"| {r['condition']} | {r['coef']:+.2f} | {r['median_bpm']:.1f} | {r['change']:+.3f} "
            f"[{r['change_ci'][0]:+.3f}, {r['change_ci'][1]:+.3f}] | {adh} | {r['n']} |"
        )
    lines += ["", f"- Medians rise monotonically with η0: {v['monotone']}."]
    for w in ("faster", "slower"):
        d = v[w]
        controls = ", ".join(
            f"{k} {c['change']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]"
            for k, c in d["controls"].items()
        )
        lines.append(
            f"- {w}: best η0 {d['coef']:+.2f} moves the median {d['change']:+.3f} "
            f"(>= 20%: {d['moved_20pct']}), adherence change {d['adherence_change']:+.3f}; "
            f"controls at equal norm: {controls}."
        )
    if "flip" in v:
        f = v["flip"]
        lines.append(
            f"- The sign-flipped 'faster' direction: {f['change']:+.3f} [{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}] (slows down: {f['slows_down']})."
        )
    lines += [f"- All criteria met: {v['passed']}.", ""]
    return lines


def _beat_lines(rec: dict[str, Any], shipped: bool = False) -> list[str]:
    """The beat headline: clips within 4% of each target tempo by η0, controls, verdict; where
    the folder ships the onset directions (``shipped``), how to use them."""
    v, s = rec["overall"], rec["settings"]
    lines = [
        "## Steering the beat (onset directions pulsed on a tempo grid)",
        "",
        f"Measured by `{s['command']}`: one onset direction per layer (RFM probes on per-frame "
        "features of strike clips at 60-180 BPM, a frame labelled onset when the audio has one "
        "within frames t-3..t+1), pulsed on the beats of each target tempo (φ = 1 on a pulse, 0 "
        "half a beat away, the pulses half a beat before their beats so that the strikes land on "
        "them: what `musicrfm generate --bpm N` compiles with these directions); a "
        "clip hits when its detected tempo is within 4% of the target (Wilson 95% CI).",
        "",
        "| target BPM | condition | η0 | within 4% [95% CI] | median BPM | adherence | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rec["rows"]:
        adh = f"{r['adherence']:.2f}" if r.get("adherence") is not None else ""
        med = f"{r['median_bpm']:.1f}" if r.get("median_bpm") is not None else ""
        lines.append(
            f"| {r['bpm']:g} | {r['condition']} | {r['coef']:.2f} | {r['hit_rate']:.2f} "
            f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {med} | {adh} | {r['n']} |"
        )
    lines.append("")
    for bpm, t in v["tempos"].items():
        ctl = ", ".join(f"{k} {c['hit_rate']:.2f}" for k, c in t["controls"].items())
        adh = t.get("adherence_change")
        lines.append(
            f"- {bpm} BPM at η0 {t['coef']:.2f}: {t['hit_rate']:.2f} within 4% (unsteered "
            f"{t['unsteered_hit_rate']:.2f}; >= 0.8: {t['reached_gate']}), controls {ctl}"
            + (f", adherence change {adh:+.3f}" if adh is not None else "")
            + f"; passed {t['passed']}."
        )
    lines += [f"- All criteria met: {v['passed']}.", ""]
    if shipped:
        which = (
            "the files this run steered with"
            if s.get("directions")
            else "the same files this run trained"
        )
        lines += [
            f"The onset directions are in `directions/onsets` ({which}): "
            '`musicrfm generate "acoustic piano" --model <this folder> --bpm 160 --directions '
            "<this folder>/directions/onsets --coef 0.3x`.",
            "",
        ]
    return lines


def _class_headline_lines(rec: dict[str, Any], concept: str) -> list[str]:
    """A classification concept's headline: per class the best η0, hits, controls, verdict."""
    s = rec["settings"]
    title, column = _TITLES.get(concept, (concept, "class"))
    noun = {"notes": "note", "chords": "chord-quality"}.get(concept, column)
    lines = [
        f"## Steering toward {title}",
        "",
        f"Measured by `{s['command']}`: {noun} directions trained on this model's activations, "
        f"η0 = {', '.join(f'{c:.1f}' for c in s['coefs'])} "
        f"({', '.join(f'{r:g}' for r in s['relative_coefs'])} x the median activation norm), "
        "best η0 = the smallest reaching 0.8 (else the best); controls at that η0; same "
        "prompts and seeds as the unsteered baseline (n="
        + str(rec["per_target"][0]["n_baseline"])
        + "); adherence = the timbre classifier hears the prompted instrument family.",
        "",
        f"| {column} | unsteered | best η0 | steered [95% CI] | random | orthogonal | flip "
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
    others = []
    for extra in sorted(folder.glob(f"judges/*/{JUDGE_NAME}.json")):
        r = json.loads(extra.read_text()).get("report", {})
        flag = next((f" --{k}" for k in ("progressions", "polyphonic") if r.get(k)), "")
        others.append(
            f"- `{extra.parent.relative_to(folder)}/`: `musicrfm mini judge{flag}`, held out "
            f"{r.get('test_accuracy', float('nan')):.3f} clean, "
            f"{r.get('test_accuracy_augmented', float('nan')):.3f} through the codec "
            f"(n={r.get('n_test')}); `--judge` takes it."
        )
    more = ["Other judges for this codec:", "", *others] if others else []
    return [
        "## Prompt-adherence judge",
        "",
        f"`{JUDGE_NAME}.safetensors` + `.json`: the reference timbre classifier for this "
        "model's codec (a small MLP on every prompt instrument x note x four rhythms"
        + (", harmonic intervals and triads" if report.get("polyphonic") else "")
        + " and their codec round trips), written by `musicrfm mini judge"
        + (" --polyphonic" if report.get("polyphonic") else "")
        + "`. Held-out accuracy "
        f"{report.get('test_accuracy', float('nan')):.3f} on rendered clips, "
        f"{report.get('test_accuracy_augmented', float('nan')):.3f} through the codec "
        f"(n={report.get('n_test')}). `musicrfm demo` and `musicrfm mini headline` use it "
        "while its codec fingerprint matches.",
        "",
        *more,
    ]


def _classifier_words(g: dict[str, Any]) -> str:
    """What measured the instrument figure (records written before the gates used the project's
    timbre classifier name none: theirs was a small MFCC classifier)."""
    return g.get("instrument_classifier", "MFCC classifier")


def _ci(g: dict[str, Any]) -> str:
    ci = g.get("instrument_ci")
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


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
    if codec == "polyphonic_onsets":
        return [
            "- Codec (`audio_encoder`, model_type `musicrfm_polyphonic_codec`, `onset_codebook`",
            "  on): the polyphonic codec's notes (codebook 0 the lowest MIDI note, codebook 1 the",
            "  set of up to two notes above it) and timbre (codebooks 2-3, residual k-means of 40",
            "  harmonic log-amplitudes), plus codebook 4 = frames since the last onset (librosa's",
            "  onset detector, 0-63). Note changes are moved to the nearest onset; decoding is",
            "  additive synthesis with a 15 ms dip to silence before every onset token.",
        ]
    if codec == "polyphonic":
        return [
            "- Codec (`audio_encoder`, model_type `musicrfm_polyphonic_codec`): 16 kHz audio ->",
            "  a greedy multi-f0 analysis (harmonic sieve on a 3.9 Hz-bin STFT) per 50 Hz frame ->",
            "  codebook 0 is the lowest MIDI note, codebook 1 the set of (up to two) notes above it",
            "  (1-24 semitones up; 301 of 512 tokens), codebooks 2-3 residual k-means of 40 harmonic",
            "  log-amplitudes shared by the frame's notes. Decoding is additive synthesis of each",
            "  note. EnCodec's encode/decode interface.",
        ]
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
    folder = Path(folder)
    lines = _recipe_lines(folder, info)
    if gates:
        lines += _gates_lines(gates)
    lines += _headline_lines(folder)
    lines += _judge_lines(folder)
    path = folder / "README.md"
    lines = [line for line in lines if line is not None]
    if path.exists():
        for note in appended_notes(path.read_text(), "\n".join(lines)):
            lines += ["", note]
    path.write_text("\n".join(lines) + "\n")
    return path


def appended_notes(old_card: str, new_card: str) -> list[str]:
    """The paragraphs in parentheses that end ``old_card`` (notes added by hand after the
    generated text, e.g. where the figures were measured), in order, less any that
    ``new_card`` already holds. A parenthesised paragraph followed by anything else is part of
    the generated text, not an appended note."""
    notes: list[str] = []
    for para in reversed(old_card.strip().split("\n\n")):
        text = para.strip()
        if not (text.startswith("(") and text.endswith(")")):
            break
        notes.insert(0, text)
    return [n for n in notes if n not in new_card]


def _intro(folder: Path, strikes: bool) -> list[str]:
    """The card's title and how to load the model."""
    name = folder.name
    what = (
        ["recipe (`musicrfm mini train --data strikes`) on rendered single notes, intervals and",
         "triads struck on the beat at 60-180 BPM: the polyphonic testbed on which chords,",
         "intervals and tempo are steered."]
        if strikes
        else ["recipe (`musicrfm mini train`) on rendered note clips. It is the offline default",
              "model on which MusicRFM's steering is verified end to end."]
    )  # fmt: skip
    return [
        f"# {name}",
        "",
        "A small text-to-music model with MusicGen's architecture, trained from scratch by MusicRFM's",
        *what,
        f"Load it with `musicrfm.load_model('{name}')`, or with the stock transformers classes once",
        "`musicrfm.models` is imported (importing it registers the model's codec with",
        "transformers' Auto classes):",
        "",
        "```python",
        "import musicrfm.models  # registers the codecs with transformers",
        "from transformers import AutoTokenizer, MusicgenForConditionalGeneration",
        f"model = MusicgenForConditionalGeneration.from_pretrained('models/{name}')",
        f"tok = AutoTokenizer.from_pretrained('models/{name}')",
        "audio = model.generate(**tok(['acoustic piano'], return_tensors='pt'), max_new_tokens=203)",
        "```",
        "",
    ]


def _recipe_lines(folder: Path, info: dict[str, Any]) -> list[str]:
    """The card up to the gates: what the model is, its parts, data and recipe."""
    from musicrfm.mini.config import TrainConfig

    cfg = info.get("train_config", {})
    hist = info.get("history", [])
    last_val = next((h["val_loss"] for h in reversed(hist) if "val_loss" in h), None)
    last_train = next((h["loss"] for h in reversed(hist) if "loss" in h), None)
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6
    # read through from_record, so a record older than a field reads as the recipe that made it
    recipe = TrainConfig.from_record(cfg)
    lines = [
        *_intro(folder, recipe.data == "strikes"),
        "## Parts",
        "",
        *_codec_words(recipe.codec),
        f"- Decoder: `MusicgenForCausalLM`, {cfg.get('num_layers')} layers, hidden size "
        f"{cfg.get('hidden_size')}, {cfg.get('num_heads')} heads, FFN {cfg.get('ffn_dim')}, "
        f"{_num_codebooks(folder, cfg)} codebooks with the delay pattern ({info.get('decoder_parameters', 0) / 1e6:.2f}M parameters).",
        "- Text encoder: a 2-layer T5 encoder (d=128) with the byte-level `ByT5Tokenizer`",
        "  (no vocabulary download).",
        f"- Total {info.get('total_parameters', 0) / 1e6:.2f}M parameters, {size_mb:.1f} MB of safetensors.",
        "",
        "## Training data and recipe",
        "",
        *_data_lines(recipe, cfg, info),
        f"- {cfg.get('steps')} steps of batch {cfg.get('batch_size')}, AdamW lr {cfg.get('lr')} "
        f"(warm-up, cosine), caption dropout {cfg.get('caption_dropout')} for classifier-free guidance, "
        f"register dropout {cfg.get('register_dropout')}, seed {cfg.get('seed')}.",
        f"- Final held-out loss {last_val:.3f}, last training-batch loss {last_train:.3f} "
        "(cross-entropy per code). " + _holdout_words(recipe) + _generalisation_words(hist)
        if last_val and last_train is not None
        else "",
        f"- Training time: {info.get('train_seconds_total', info.get('train_seconds_this_run', 0)) / 60:.0f}"
        " min in total (rendering, codec fit, decoder) on 2 CPU cores shared with other jobs"
        f" ({cfg.get('threads', 1)} torch thread(s)).",
        "- Generation defaults: sampling, top-k "
        f"{cfg.get('top_k')}, temperature {cfg.get('temperature', 1.0)}, guidance scale "
        f"{cfg.get('guidance_scale')}; 203 new tokens = 4 s.",
        "",
        f"Reproduce: `{_train_command(folder, recipe)}`.",
        "",
    ]
    lines += [f"- {note}" for note in info.get("notes", [])]
    if info.get("notes"):
        lines.append("")
    return lines


def _num_codebooks(folder: Path, cfg: dict[str, Any]) -> int:
    """The decoder's codebook count as saved (the codec sets it: the beat codec adds one)."""
    path = folder / "config.json"
    if path.exists():
        n = json.loads(path.read_text()).get("decoder", {}).get("num_codebooks")
        if n is not None:
            return int(n)
    return int(cfg.get("num_codebooks", 4))


def _holdout_words(recipe: Any) -> str:
    if recipe.data == "strikes":
        return f"Held-out clips: {recipe.holdout:.0%} of each (concept, class), never heard in training. "
    return "Held-out clips are (program, note) pairs never heard in training. "


def _train_command(folder: Path, recipe: Any) -> str:
    """The `musicrfm mini train` command line that reproduces this recipe."""
    command = f"musicrfm mini train --out models/{folder.name} --steps {recipe.steps} --seed {recipe.seed}"
    if recipe.data == "strikes":
        command += " --data strikes"
        if recipe.codec_fit_clips is not None:
            command += f" --codec-fit-clips {recipe.codec_fit_clips}"
        return command + f" --codec {recipe.codec}"
    return (
        command
        + f" --rhythms {','.join(f'{r}:{g:g}' for r, g in recipe.rhythms)}"
        + (" --two-notes" if recipe.two_note_clips else "")
        + (" --melodies" if recipe.melody_clips else " --no-melodies")
        + f" --codec {recipe.codec}"
    )


def _data_lines(recipe: Any, cfg: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """The card's bullets on the training clips and captions."""
    if recipe.data == "strikes":
        from musicrfm.mini.strike_card import strike_data_lines

        return strike_data_lines(recipe, info)
    two_notes, melodies, rhythms = recipe.two_note_clips, recipe.melody_clips, recipe.rhythms
    return [
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
    ]


def _gates_lines(gates: dict[str, Any]) -> list[str]:
    """The card's table of quality gates and the notes under it."""
    if "calibration" not in gates:  # a strike-recipe model's gates
        from musicrfm.mini.strike_card import strike_gates_lines

        return strike_gates_lines(gates)
    s, c, g, cal = gates["summary"], gates["codec"], gates["generation"], gates["calibration"]
    ok = {True: "pass", False: "FAIL"}
    lines = [
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
            f"| unsteered: prompted instrument recognised ({_classifier_words(g)}) | "
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
    return lines
