"""The parts of a model card that differ for a strike-recipe model (the polyphonic testbed):
its training clips and its gates (:mod:`musicrfm.mini.strike_gates`)."""

from __future__ import annotations

from typing import Any

from musicrfm.mini.strike_gates import ROOT_GATE_KEY, TIMES_CHANCE
from musicrfm.synth.notes import INSTRUMENTS

_FIGURES = {
    "quality": "chord quality of triads",
    "root": "chord root of triads, strict",
    ROOT_GATE_KEY: "chord root, an augmented triad's up to a major third",
    "harmonic_interval": "harmonic interval (two notes together)",
    "melodic_interval": "melodic interval (one note per beat)",
    "pitch_class": "pitch class of single notes",
    "tempo": "tempo within 4%",
    "tempo_octave": "tempo within 4%, octave errors forgiven",
}


def strike_data_lines(recipe: Any, info: dict[str, Any]) -> list[str]:
    """The card's bullets on the training clips and captions of a strike recipe."""
    programs = ", ".join(INSTRUMENTS.get(p, str(p)) for p in recipe.programs)
    return [
        f"- Clips ({recipe.seconds:g} s, `musicrfm.synth.strikes.strike_grid`): every MIDI note "
        f"{recipe.low_note}-{recipe.high_note}; intervals of 1-12 semitones played together, "
        "rising or falling one note per beat, on all 12 lower notes; triads (major, minor, "
        "augmented, diminished) on all 12 roots in root position and both inversions; the lower "
        "note or root in octave 3 or 4. Every clip is struck on each beat at a tempo of 60-180 "
        f"BPM (steps of 10, balanced per concept), on {len(recipe.programs)} GM programs "
        f"({programs}), rendered with TinySoundFont + TimGM6mb. {info.get('train_clips')} "
        f"training clips, {info.get('holdout_clips')} held out.",
        "- Captions name the instrument and the register of the lowest note ('violin, low",
        "  register'), never the pitch, chord, interval or tempo: unsteered, the model chooses",
        "  them itself.",
        "- The codec's codebooks were fitted on "
        + (
            f"a seeded subset of {recipe.codec_fit_clips} training clips."
            if recipe.codec_fit_clips
            else "every training clip."
        ),
    ]


def strike_gates_lines(gates: dict[str, Any]) -> list[str]:
    """The card's gate tables for a strike-recipe model."""
    ok = {True: "pass", False: "FAIL"}
    codec, s = gates["codec"], gates["summary"]
    lines = [
        "## Quality gates (detectors independent of MusicGen and of the codec)",
        "",
        f"Measured by `{gates['command']}` in {gates['seconds']:.0f} s, on {codec['n']} "
        "held-out clips (round trip = encode -> decode through this model's codec; original = "
        "the renders, the detectors' own ceiling). Shares with Wilson 95% intervals.",
        "",
        "| figure | round trip | original | gate | result |",
        "|---|---|---|---|---|",
    ]
    for key, rt in codec["round_trip"].items():
        orig = codec["original"].get(key, {})
        gate = f">= {rt['gate']}" if "gate" in rt else "reported"
        result = ok[rt["passed"]] if "passed" in rt else ""
        lines.append(
            f"| {_FIGURES.get(key, key)} | {_share(rt)} | {_share(orig) if orig else ''} | "
            f"{gate} | {result} |"
        )
    spread = gates["generation"]["spread"]
    lines += [
        "",
        f"Unsteered generations from instrument-only prompts (n={s['generated_clips']}), each "
        f"judged by every concept's detector; no class may hold more than {TIMES_CHANCE:g}x "
        "chance of the clips:",
        "",
        "| detector | largest class share | limit | result | classes found |",
        "|---|---|---|---|---|",
    ]
    for concept, v in spread.items():
        counts = ", ".join(f"{k}: {n}" for k, n in v["counts"].items())
        lines.append(
            f"| {concept} | {v['max_share']:.3f} | {v['limit']:.3f} | {ok[v['passed']]} | "
            f"{counts} |"
        )
    lines += [
        "",
        f"- Prompted instrument recognised by the timbre classifier in {s['instrument_accuracy']:.3f}"
        f" of unsteered clips (chance {s['instrument_chance']:.3f}; gate {2:g}x chance): "
        f"{ok[s['instrument_passed']]}.",
        *_rhythm_line(gates["generation"].get("rhythm")),
        "- Tempo within 4% of round trips by concept: "
        + ", ".join(
            f"{c} {v['k']}/{v['n']}" for c, v in codec["tempo_by_concept"].items() if v["n"]
        )
        + ".",
    ]
    det = gates.get("codebook_determinism")
    if det:
        lines += [
            "- Concepts that are a deterministic function of one codebook (by the codec's design, "
            "checked on the held-out clips' codes): a triad's quality is read off codebook 1 "
            f"alone ({_share(det['chord_quality_from_codebook_1'])} of triads: the set of notes "
            "above the bass names the quality in every inversion); a harmonic interval's size is "
            f"codebook 1's single offset ({_share(det['harmonic_interval_from_codebook_1'])}); a "
            "single note's pitch class is codebook 0 mod 12 "
            f"({_share(det['pitch_class_from_codebook_0'])}). The root needs codebooks 0 and 1 "
            "(bass + inversion); "
            + (
                "the tempo is the onset codebook's (the last) period: the median interval between "
                f"its stage-0 frames gives the BPM within 4% for {_share(det['tempo_from_onsets'])}"
                " of clips; the instrument lives in the timbre codebooks, no single codebook."
                if det.get("tempo_from_onsets") is not None
                else "tempo and instrument live in the timbre codebooks' amplitudes over time, "
                "no single codebook."
            ),
        ]
    lines += [
        f"- Generating one 4-s clip took {s['seconds_per_clip_batched']:.2f} s per clip in "
        "batches on the shared CPU (1 thread).",
        "",
    ]
    return lines


def _share(entry: dict[str, Any]) -> str:
    text = f"{entry['k']}/{entry['n']} {entry['share']:.3f}"
    return text + (f" [{entry['ci'][0]:.2f}, {entry['ci'][1]:.2f}]" if "ci" in entry else "")


def _rhythm_line(rhythm: dict[str, Any] | None) -> list[str]:
    """Whether unsteered clips play a beat (gates measured before session 14 have no figure)."""
    if not rhythm:
        return []
    reg, orig = rhythm["regular"], rhythm.get("originals")
    ref = (
        f" (the held-out rendered clips: {orig['regular']['k']}/{orig['regular']['n']}, median "
        f"{orig['median_onsets']:g}; sustained instruments and melodic pairs read irregular)"
        if orig
        else ""
    )
    return [
        f"- Unsteered clips play a regular beat (>= 4 onsets, inter-onset intervals within "
        f"{rhythm['max_cv']:g} coefficient of variation) in {reg['k']}/{reg['n']}; median "
        f"{rhythm['median_onsets']:g} onsets a clip{ref}.",
    ]
