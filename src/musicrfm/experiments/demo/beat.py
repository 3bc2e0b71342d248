"""The demo's beat: the beat testbed plays an exact tempo when its bundled onset directions are
pulsed on the beats of that tempo.

No training: the onset directions that travel with the testbed (``models/musicgen-mini-beat/
directions/onsets``, learned by ``musicrfm mini headline --concept beats``) are pulsed on the
beat grid of each of ``cfg.beat_bpms`` (:class:`~musicrfm.steering.progressions.BeatPulse`, what
``musicrfm generate --bpm N`` compiles) at ``cfg.beat_relative_coef`` x their median activation
norm, on the demo's prompts x ``cfg.beat_seeds_per_prompt`` seeds. Measured exactly as the beat
headline measures it (:mod:`musicrfm.experiments.headline.beat`, whose jobs, tempo detector and
table this calls): the share of clips whose detected tempo is within 4% of the target (Wilson
95% CI), the unsteered clips scored against every target, a random direction of equal norm
pulsed the same way at each tempo, and the median detected BPM. Clips, results.csv and the
figure (the onset strength of one steered clip per tempo with its beat grid) go to
``<out>/beat/``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.experiments.demo.config import DemoConfig

log = logging.getLogger(__name__)

BEAT_FOLDER = "beat"
ONSETS = "onsets"  # the bundled directions' file name (directions/onsets.{json,safetensors})


def beat_model(cfg: DemoConfig) -> str:
    """The model the beat runs on: ``cfg.beat_model``, else the part's, else the beat testbed."""
    from musicrfm.experiments.demo.config import TESTBED_MODEL

    return str(cfg.beat_model or cfg.part_model or TESTBED_MODEL)


def bundled_onsets(adapter: Any) -> Path:
    """``<model folder>/directions/onsets`` (without suffix) of ``adapter``; a ModelError naming
    what is missing when the model has no folder or the folder no onset directions."""
    from musicrfm.experiments.demo.config import bundled_directions

    return bundled_directions(
        adapter, ONSETS, "onset directions", "`musicrfm mini headline --concept beats` learns them"
    )


def check_beat(cfg: DemoConfig) -> None:
    """A one-line ConfigError for bad beat settings (before any model loads)."""
    from musicrfm.errors import ConfigError

    if cfg.beat_bpms is None:
        return
    bpms = tuple(cfg.beat_bpms)
    if not bpms or any(not np.isfinite(b) or not 20 <= b <= 400 for b in bpms):
        raise ConfigError(f"beat tempos must be numbers between 20 and 400 BPM, got {bpms}")
    if len({f"{b:g}" for b in bpms}) != len(bpms):
        raise ConfigError(f"beat tempos must differ, got {bpms}")
    if not np.isfinite(cfg.beat_relative_coef) or cfg.beat_relative_coef <= 0:
        raise ConfigError(f"beat_relative_coef must be positive, got {cfg.beat_relative_coef}")
    if cfg.beat_seeds_per_prompt < 1 or len(cfg.prompts) * cfg.beat_seeds_per_prompt < 2:
        raise ConfigError("the beat needs at least 2 clips (prompts x beat_seeds_per_prompt)")
    unknown = [k for k in cfg.beat_controls if k not in ("random", "orthogonal", "flip")]
    if unknown:
        raise ConfigError(f"unknown beat control(s) {unknown}; valid: random, orthogonal, flip")


def beat_config(cfg: DemoConfig) -> Any:
    """The :class:`~musicrfm.experiments.headline.config.HeadlineConfig` the beat headline's job
    builders read: the demo's prompts x ``beat_seeds_per_prompt`` seeds, its clip length and
    batch, the beat controls, the headline's plan options (every layer, both rows, gate 1)."""
    from musicrfm.experiments.headline.config import HeadlineConfig

    bpms = tuple(float(b) for b in cfg.beat_bpms or ())
    n = len(cfg.prompts) * int(cfg.beat_seeds_per_prompt)
    data = replace(cfg, seeds_per_prompt=int(cfg.beat_seeds_per_prompt), crossfade_clips=0)
    return HeadlineConfig(
        targets=tuple(f"{b:g}" for b in bpms), concept="beats",
        relative_coefs=(float(cfg.beat_relative_coef),), clips=n, baseline_clips=n,
        flip_clips=None, controls=tuple(cfg.beat_controls), instrument_reference=False, data=data,
    )  # fmt: skip


def run_beat_part(
    cfg: DemoConfig,
    out: Path,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    adapter: Any = None,
    directions: str | os.PathLike[str] | Any = None,
) -> dict[str, Any]:
    """Pulse the onset directions on each of ``cfg.beat_bpms`` on :func:`beat_model` into
    ``out/beat`` and return what the demo's report and demo.json show (plain types).

    ``adapter``: the model already loaded (else :func:`beat_model` is loaded). ``directions``:
    the onset directions or their path (default :func:`bundled_onsets` of the model)."""
    from musicrfm.experiments.demo.stages import generate_all
    from musicrfm.experiments.headline.beat import (
        BEAT_TOLERANCE,
        beat_control_jobs,
        beat_jobs,
        beat_table,
        beat_verdict,
    )
    from musicrfm.experiments.headline.tempo import detect_bpm
    from musicrfm.models import load_model
    from musicrfm.probes.directions import ConceptDirections

    check_beat(cfg)
    if not cfg.beat_bpms:
        raise ValueError("the demo has no beat (beat_bpms is None)")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if adapter is None:
        adapter = load_model(beat_model(cfg), device=device)
    if directions is None or isinstance(directions, (str, os.PathLike)):
        path = Path(directions) if directions is not None else bundled_onsets(adapter)
        cd = ConceptDirections.load(path)
        source = str(path)
    else:
        cd, source = directions, "given"
    scale = cd.activation_norm()
    if scale is None:
        from musicrfm.errors import ModelError

        raise ModelError(f"the onset directions ({source}) record no activation norm for '0.3x'")
    timings["load"] = time.perf_counter() - t

    hcfg = beat_config(cfg)
    bpms = tuple(float(b) for b in cfg.beat_bpms)
    coef = round(float(cfg.beat_relative_coef) * scale, 4)
    folder = out / BEAT_FOLDER
    t = time.perf_counter()
    jobs = beat_jobs(cd, hcfg, bpms, (coef,), seed)
    jobs += beat_control_jobs(cd, hcfg, {b: coef for b in bpms}, seed)
    records = generate_all(adapter, jobs, hcfg.data, folder / "audio", progress, "tempos")
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    frame = detect_bpm(records)
    table = beat_table(frame, bpms)
    verdict = beat_verdict(frame, {b: coef for b in bpms}, hcfg)
    per_clip = frame.copy()
    per_clip["audio_path"] = [Path(os.path.relpath(p, out)).as_posix() for p in frame["audio_path"]]
    folder.mkdir(parents=True, exist_ok=True)
    per_clip.to_csv(folder / "results.csv", index=False)
    figure = plot_beat_onsets(records, bpms, folder / "onsets.png")
    timings["evaluate"] = time.perf_counter() - t
    from musicrfm.experiments.demo.report import json_default

    rows = json.loads(json.dumps(table.to_dict(orient="records"), default=json_default))
    return {
        "model_id": str(adapter.model_id),
        "directions": source,
        "bpms": list(bpms),
        "coef": coef,
        "relative_coef": float(cfg.beat_relative_coef),
        "activation_scale": float(scale),
        "tolerance": BEAT_TOLERANCE,
        "clips": int(hcfg.clips),
        "prompts": len(cfg.prompts),
        "seeds_per_prompt": int(cfg.beat_seeds_per_prompt),
        "seconds": float(cfg.seconds),
        "controls": list(hcfg.controls),
        "rows": rows,
        "verdict": json.loads(json.dumps(verdict, default=json_default)),
        "figure": f"{BEAT_FOLDER}/onsets.png" if figure else None,
        "results": f"{BEAT_FOLDER}/results.csv",
        "examples": beat_examples(per_clip),
        "timings": timings,
    }


def beat_examples(per_clip: pd.DataFrame) -> list[dict[str, Any]]:
    """The first clip of each (condition, tempo): prompt, detected BPM, audio path relative to
    the demo's report folder."""
    out = []
    for (cond, target), g in per_clip.groupby(["condition", "target"], sort=False):
        r = g.iloc[0]
        bpm = float(r["bpm"]) if pd.notna(r["bpm"]) else None
        out.append({"condition": str(cond), "target": str(target), "prompt": str(r["prompt"]),
                    "seed": int(r["seed"]), "bpm": bpm, "audio": str(r["audio_path"])})  # fmt: skip
    return out


def plot_beat_onsets(records: list[dict[str, Any]], bpms: tuple[float, ...], path: Path) -> Path:
    """The onset strength (librosa, hop 320) of the first unsteered clip and of the first onset-
    steered clip of each tempo (same prompt and seed), the beats it was pulsed on drawn in red
    (as docs/results/beats-testbed-beat/plot_onsets.py draws them)."""
    import librosa
    from matplotlib.figure import Figure

    from musicrfm.evaluation import detectors as det

    def first(cond: str, target: str | None) -> dict[str, Any] | None:
        return next((r for r in records if r["condition"] == cond
                     and (target is None or r["target"] == target)), None)  # fmt: skip

    panels = [("unsteered", None, first("unsteered", None))]
    panels += [(f"onset pulses at {b:g} BPM", b, first("onset", f"{b:g}")) for b in bpms]
    panels = [p for p in panels if p[2] is not None]
    fig = Figure(figsize=(7.5, 1.6 * len(panels) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    for ax, (title, bpm, rec) in zip(axes, panels):
        audio = rec["_audio"][0] if rec["_audio"].ndim == 2 else rec["_audio"]
        y = np.asarray(audio, dtype=np.float32)
        sr = int(rec["_sr"])
        env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=320, n_fft=512)
        t = np.arange(len(env)) * 320 / sr
        ax.plot(t, env, lw=0.9)
        if bpm:
            for b in np.arange(0.0, len(y) / sr + 1e-9, 60.0 / bpm):
                ax.axvline(b, color="tab:red", lw=0.6, alpha=0.6)
        d = det.detect(y, sr, "tempos")
        found = float(d.details.get("bpm", float("nan"))) if not d.silent else float("nan")
        ax.set_title(f"{title} ({rec['prompt']}, seed {rec['seed']}): detected {found:.0f} BPM",
                     fontsize=8)  # fmt: skip
        ax.set_yticks([])
    axes[-1].set_xlabel("seconds (red: the beats the onset direction was pulsed on)")
    fig.suptitle("onset strength of one clip per tempo", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def beat_line(beat: dict[str, Any]) -> str:
    """One line for the CLI: per tempo, steered against unsteered and the control."""
    parts = []
    for bpm in beat["bpms"]:
        rows = {r["condition"]: r for r in beat["rows"] if r["bpm"] == bpm}

        def share(cond: str, rows: dict[str, Any] = rows) -> str:
            r = rows.get(cond)
            return "n/a" if r is None else f"{int(round(r['hit_rate'] * r['n']))}/{r['n']}"

        s = rows.get("onset", {})
        ctl = ", ".join(f"{c} {share(c)}" for c in beat["controls"])
        median = s.get("median_bpm")
        med = f"{median:.0f}" if median is not None else "n/a"
        parts.append(
            f"{bpm:g} BPM {share('onset')} (median {med}; unsteered {share('unsteered')}"
            + (f", {ctl}" if ctl else "")
            + ")"
        )
    return (
        f"beat on {beat['model_id']} (onset pulses at {beat['relative_coef']:g}x, clips within "
        f"4% of the target): " + "; ".join(parts)
    )
