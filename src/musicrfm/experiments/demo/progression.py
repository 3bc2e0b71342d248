"""The demo's progression: four chords from text, one a bar, steered and judged bar by bar by
the chord detector.

``musicrfm generate --chords`` compiles chord text into keyframed directions on a bar grid
(:func:`musicrfm.steering.plan.compile_progression`); this part measures that path on the
polyphonic testbed. When the model folder carries chord directions (``directions/chords``,
quality, and ``directions/chord-roots``, root: on the beat testbed a triad's root is its bass,
so they are learned from root-position triads and from the triads' lowest note), both parts are
steered with them; otherwise only the quality, with the chord part's own directions. Per-bar
accuracy is the share of bars whose detected quality (and root) is the text's, with a bootstrap
95% CI over clips (the bars of one clip are not independent); the figure shows one clip's chroma
with the bar lines and the target chords, unsteered and steered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TRIM_S = 0.15  # each bar is judged without its first and last 0.15 s (the crossfades)


CHORDS, ROOTS = "chords", "chord-roots"  # bundled file names (directions/<name>.safetensors)


def bundled_chords(adapter: Any) -> dict[str, Path] | None:
    """{"quality": directions/chords, "root": directions/chord-roots} of the model's folder
    when it holds both (what the progression steers both parts with), else None."""
    from musicrfm.errors import ModelError
    from musicrfm.experiments.demo.config import bundled_directions

    hint = "docs/results/roots-testbed-beat/roots.py --bundle learns them"
    try:
        return {
            "quality": bundled_directions(adapter, CHORDS, "chord quality directions", hint),
            "root": bundled_directions(adapter, ROOTS, "chord root directions", hint),
        }
    except ModelError:
        return None


def progression_plan(
    adapter: Any, quality: Any, prog: Any, coef: float, relative_coef: float
) -> tuple[Any, dict[str, Any]]:
    """The steered plan and what it used: both parts from :func:`bundled_chords` at
    ``relative_coef`` x each set's recorded activation norm, else the quality part from
    ``quality`` at η0 ``coef``. The info holds the parts, the source of each and η0 by role."""
    from musicrfm.steering.plan import compile_progression

    bundled = bundled_chords(adapter)
    if bundled is not None:
        plan = compile_progression(prog, [bundled["root"], bundled["quality"]],
                                   f"{relative_coef:g}x")  # fmt: skip
        sources = {role: str(path) for role, path in bundled.items()}
    else:
        plan = compile_progression(prog, [quality], coef, parts="quality")
        sources = {"quality": "the chord part's directions"}
    from musicrfm.steering.progressions import direction_role

    loaded = [d.load() for d in plan.directions]
    coefs = {direction_role(cd): float(d.coef) for d, cd in zip(plan.directions, loaded)}
    trained_on = {direction_role(cd): str(cd.meta.get("trained_on") or "")
                  for cd in loaded if bundled is not None}  # fmt: skip
    info = {"parts": [p for p in ("root", "quality") if p in coefs], "bundled": bundled is not None,
            "directions": sources, "coef_by_role": coefs, "trained_on": trained_on}  # fmt: skip
    return plan, info


def run_progression(
    adapter: Any,
    quality: Any,
    cfg: Any,
    coef: float,
    out: Path,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate ``cfg.progression`` unsteered and steered (:func:`progression_plan`: root +
    quality from the model's bundled chord directions, else the quality part from ``quality``
    at η0 ``coef``) from the demo's prompts, one seed each; per-bar accuracy and the chroma
    figure."""
    from musicrfm.experiments.demo.stages import sampling_options
    from musicrfm.steering.generation import generate
    from musicrfm.steering.progressions import make_progression

    prog = make_progression(chords=cfg.progression, bpm=cfg.progression_bpm, beats_per_bar=2)
    plan, info = progression_plan(adapter, quality, prog, coef, cfg.progression_relative_coef)
    prompts = cfg.prompt_texts()
    audio_dir = out / "audio_progression"
    audio_dir.mkdir(parents=True, exist_ok=True)
    conditions: dict[str, Any] = {}
    for name, p in (("unsteered", None), ("steered", plan)):
        clips = generate(
            adapter, prompts, plan=p, seconds=prog.seconds, seed=seed, batch=cfg.batch,
            **sampling_options(adapter),
        )  # fmt: skip
        bars = [judge_bars(c.audio, c.sample_rate, prog) for c in clips]
        for i, c in enumerate(clips):
            c.save(audio_dir / f"{name}_{i:02d}.flac")
        conditions[name] = {"bars": bars, "audio": clips[0].audio, "sr": clips[0].sample_rate}
    result = {
        "chords": cfg.progression,
        "bpm": cfg.progression_bpm,
        "beats_per_bar": 2,
        "coef": info["coef_by_role"]["quality"],
        "relative_coef": cfg.progression_relative_coef,
        **info,
        "prompts": prompts,
        "conditions": {k: bar_scores(v["bars"], seed) for k, v in conditions.items()},
    }
    path = out / "progression.png"
    progression_figure(conditions, prog, result, path)
    result["figure"] = path.name
    return result


def judge_bars(audio: np.ndarray, sr: int, prog: Any) -> list[dict[str, Any]]:
    """The chord detector on each bar (trimmed) against the chord the text puts there."""
    from musicrfm.evaluation.detectors.chords import detect_chord

    y = audio.mean(0) if audio.ndim == 2 else audio
    lines = prog.chords.bar_lines()
    out = []
    for i, chords in enumerate(prog.chords.chord_at_bars()):
        want = chords[0]
        a, b = int((lines[i] + TRIM_S) * sr), int((lines[i + 1] - TRIM_S) * sr)
        d = detect_chord(y[a:b], sr)
        quality_ok = d.label == want.quality
        out.append({"bar": i, "want": want.name, "got": str(d.details.get("chord", d.label)),
                    "quality_ok": bool(quality_ok),
                    "chord_ok": bool(quality_ok and d.details.get("root") == want.root_name)})  # fmt: skip
    return out


def bar_scores(bars: list[list[dict[str, Any]]], seed: int) -> dict[str, Any]:
    """Per-bar quality and root + quality accuracy, each with a bootstrap 95% CI over clips,
    and the quality accuracy of each bar position."""
    from musicrfm.evaluation.metrics import bootstrap_ci

    out: dict[str, Any] = {"clips": len(bars), "bars": sum(len(b) for b in bars)}
    for key in ("quality_ok", "chord_ok"):
        per_clip = np.array([np.mean([x[key] for x in clip]) for clip in bars])
        est = bootstrap_ci(per_clip, seed=seed)
        out[key.replace("_ok", "")] = {"value": est.value, "ci": [est.low, est.high]}
    n_bars = len(bars[0]) if bars else 0
    for key in ("quality", "chord"):  # the share of clips right at each bar position
        out[f"{key}_by_bar"] = [float(np.mean([clip[i][f"{key}_ok"] for clip in bars]))
                                for i in range(n_bars)]  # fmt: skip
    out["detected"] = [[x["got"] for x in clip] for clip in bars]
    return out


def progression_figure(conditions: dict[str, Any], prog: Any, result: dict, path: Path) -> None:
    """Chroma over time of the first clip of each condition, bar lines and target chords."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from musicrfm.evaluation.frontend import chromagram
    from musicrfm.theory import PITCH_CLASSES, chord_pitch_classes

    lines = prog.chords.bar_lines()
    chords = [c[0] for c in prog.chords.chord_at_bars()]
    targets = [c.name for c in chords]
    fig, axes = plt.subplots(len(conditions), 1, figsize=(8, 2.6 * len(conditions)), sharex=True)
    for ax, (name, c) in zip(np.atleast_1d(axes), conditions.items()):
        y = c["audio"].mean(0) if c["audio"].ndim == 2 else c["audio"]
        chroma = chromagram(np.asarray(y, dtype=np.float32), c["sr"])
        ax.imshow(chroma, aspect="auto", origin="lower", cmap="magma",
                  extent=(0, len(y) / c["sr"], -0.5, 11.5))  # fmt: skip
        ax.set_yticks(range(12), PITCH_CLASSES, fontsize=7)
        for x in lines:
            ax.axvline(x, color="white", lw=1)
        score = result["conditions"][name]["quality"]
        both = result["conditions"][name]["chord"]
        detected = result["conditions"][name]["detected"][0]
        for i, chord in enumerate(chords):  # the target's chord tones, at each bar's start
            tones = chord_pitch_classes(chord.root_name, chord.quality)
            ax.scatter([lines[i] + 0.04] * len(tones), tones, marker=">", s=14, color="cyan")
        for i, (want, got) in enumerate(zip(targets, detected)):
            ax.text((lines[i] + lines[i + 1]) / 2, 12.2, f"{want} / {got}", ha="center",
                    fontsize=7, clip_on=False)  # fmt: skip
        ax.set_title(f"{name}: quality right in {score['value']:.2f} of bars "
                     f"[{score['ci'][0]:.2f}, {score['ci'][1]:.2f}], root + quality "
                     f"{both['value']:.2f} [{both['ci'][0]:.2f}, {both['ci'][1]:.2f}] (all clips)",
                     fontsize=9, pad=14)  # fmt: skip
    np.atleast_1d(axes)[-1].set_xlabel(
        "seconds (white: bar lines; cyan: the target chord's tones; text: target / detected)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
