"""Which codec carries chords, intervals and tempo? (issue 17 groundwork)

Renders clips of the polyphonic testbed grid (`musicrfm.synth.strikes.strike_grid`: single notes,
harmonic and melodic intervals of 1-12 semitones, triads of four qualities in three inversions,
each struck on every beat at 60-180 BPM, on the 12 training programs) at the codecs' 16 kHz,
splits it with `split_strikes` (seeded, stratified by class), fits the spectral codec
(`SpectralCodecModel`) and the harmonic codec (`HarmonicCodecModel`) on training clips the way
`musicrfm.mini.codes` fits the recipe's codec (`fit_features` in batches, then `fit_codebooks`),
and judges held-out clips with the project's detectors in three conditions:

    original   the renders themselves (the detectors' own ceiling)
    spectral   round trip through the spectral codec (log-mel k-means, Griffin-Lim)
    harmonic   round trip through the harmonic codec (one YIN note per frame; a reference that
               cannot carry chords)
    mel_only   the spectral codec's analysis and synthesis without its k-means (log-mel ->
               NNLS magnitude -> Griffin-Lim): what the spectral codec could keep with
               perfect codebooks, to tell the quantiser's losses from the mel front end's
    polyphonic round trip through the polyphonic codec (`PolyphonicCodecModel`: bass note,
               the set of notes above it, shared harmonic timbre codes; session 9d)

``--codecs`` picks which codecs run (default all three, comma separated; ``mel_only`` comes with
``spectral``); the originals are always judged, on the same held-out clips.

Per condition and gate it prints k/n, the share and a 95% Wilson interval:

    chord quality, chord root (strict, and with the augmented triad's root up to a major
    third, as the chord detector documents), harmonic interval, melodic interval, pitch class
    of single notes, tempo within 4% (strict, MIREX accuracy 1) and with octave errors forgiven
    (x2, x1/2, x3, x1/3: accuracy 2), over every held-out clip and per concept.

Issue 17's gates: chord quality and root >= 0.9, harmonic interval >= 0.9, pitch class >= 0.95,
tempo within 4% >= 0.9 (on round trips).

    .venv/bin/python benchmarks/probe_poly_codecs.py            # ~9 min on one core
    .venv/bin/python benchmarks/probe_poly_codecs.py --quick    # ~2.5 min, a quarter of n
    .venv/bin/python benchmarks/probe_poly_codecs.py --json /tmp/poly.json
    .venv/bin/python benchmarks/probe_poly_codecs.py --tempo-variants   # ~2 min, originals only
    .venv/bin/python benchmarks/probe_poly_codecs.py --codecs polyphonic   # originals + one codec

``--tempo-variants`` skips the codecs and asks what bounds the tempo gate on the originals: the
tempo detector as is and with a wider tempo prior (``std_bpm=2``), on 4 s and on 8 s renders.

Runs on one thread (torch, BLAS). The machine may be shared: times are an upper bound.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402

SR = 16_000
SECONDS = 4.0


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson 95% interval of k/n (NaN for no clips)."""
    from musicrfm.evaluation.metrics import wilson_interval

    if n == 0:
        return (float("nan"), float("nan"))
    est = wilson_interval(k, n)
    return (est.low, est.high)


def pick_eval(held: list, per: dict[str, int], seed: int) -> list:
    """Up to ``per[group]`` held-out clips of each group, drawn with ``seed``, kept in order."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(held):
        groups[group_of(c)].append(i)
    keep: list[int] = []
    for name, idx in sorted(groups.items()):
        n = min(per.get(name, 0), len(idx))
        keep += [idx[j] for j in rng.permutation(len(idx))[:n]]
    return [held[i] for i in sorted(keep)]


def group_of(c) -> str:
    if c.concept == "intervals":
        return "harmonic_intervals" if c.interval_mode == "harmonic" else "melodic_intervals"
    return c.concept


CODECS = ("spectral", "harmonic", "polyphonic", "polyphonic_onsets")


def fit_codec(kind: str, audio, seed: int, iters: int):
    import torch

    from musicrfm.mini.codes import new_codec

    if kind == "polyphonic":
        from musicrfm.models.codecs.polyphonic import PolyphonicCodecConfig, PolyphonicCodecModel

        codec = PolyphonicCodecModel(PolyphonicCodecConfig())
    else:
        codec = new_codec(kind)
    feats = torch.cat([codec.fit_features(audio[i : i + 64]) for i in range(0, len(audio), 64)])
    errors = codec.fit_codebooks(feats, iters=iters, seed=seed)
    return codec, [round(float(e), 4) for e in errors]


def round_trip(codec, audio) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(audio), 32):
            x = audio[i : i + 32, None]
            out.append(codec(x).audio_values[:, 0, : x.shape[-1]].numpy())
    return np.concatenate(out)


def mel_only(codec, audio) -> np.ndarray:
    """The spectral codec's log-mel analysis and Griffin-Lim synthesis, no quantisation."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(audio), 32):
            x = audio[i : i + 32]
            mag = codec.mel_to_magnitude(codec.log_mel(x))
            out.append(codec.griffin_lim(mag, x.shape[-1]).numpy())
    return np.concatenate(out)


def judge(clip, y: np.ndarray) -> dict:
    """The gates this clip counts in (the mini strike gates' own judge)."""
    from musicrfm.mini.strike_gates import judge_strike

    return judge_strike(clip, y, SR)


def tempo_variants(evals: list) -> None:
    """Strict tempo accuracy (within 4%) of the originals under detector options and lengths."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.synth.notes import render_clips

    print(f"{'variant':28s}{'all':>14s}  per tempo (strict)")
    for seconds in (4.0, 8.0):
        audio = render_clips(evals, sampling_rate=SR, seconds=seconds)
        for label, kw in (("default", {}), ("std_bpm=2", {"std_bpm": 2.0})):
            hits: dict[float, list[bool]] = defaultdict(list)
            for c, y in zip(evals, audio):
                d = det.detect(y, SR, "tempos", **kw)
                bpm = float(d.details.get("bpm", float("nan"))) if not d.silent else float("nan")
                hits[c.bpm].append(det.tempo_match(bpm, c.bpm, tolerance=0.04))
            flat = [h for v in hits.values() for h in v]
            k, n = sum(flat), len(flat)
            lo, hi = wilson(k, n)
            per = " ".join(f"{b:g}:{sum(v)}/{len(v)}" for b, v in sorted(hits.items()))
            print(
                f"{f'{seconds:g} s, {label}':28s}{k:>5d}/{n:<4d}{k / n:.3f} [{lo:.2f},{hi:.2f}]  {per}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about a quarter of the clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit-clips", type=int, default=1500, help="training clips the codecs fit on")
    ap.add_argument("--iters", type=int, default=20, help="k-means iterations (the recipe's 20)")
    ap.add_argument("--json", help="write every figure (and per-clip rows) here")
    ap.add_argument(
        "--tempo-variants", action="store_true", help="only the tempo detector on the originals"
    )
    ap.add_argument(
        "--codecs", default=",".join(CODECS), help=f"comma-separated, of {', '.join(CODECS)}"
    )
    args = ap.parse_args()
    kinds = [k.strip() for k in args.codecs.split(",") if k.strip()]
    if unknown := sorted(set(kinds) - set(CODECS)):
        ap.error(f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(CODECS)}")

    import torch

    torch.set_num_threads(1)
    from musicrfm.synth.notes import TRAIN_PROGRAMS, render_clips
    from musicrfm.synth.strikes import split_strikes, strike_grid

    t0 = time.time()
    grid = strike_grid(TRAIN_PROGRAMS, seed=args.seed)
    train, held = split_strikes(grid, holdout=0.1, seed=args.seed)
    scale = 0.25 if args.quick else 1.0
    per = {
        "chords": 144,
        "harmonic_intervals": 96,
        "melodic_intervals": 72,
        "notes": 48,
    }
    per = {k: max(8, int(v * scale)) for k, v in per.items()}
    evals = pick_eval(held, per, args.seed + 1)
    if args.tempo_variants:
        tempo_variants(evals)
        print(f"total {time.time() - t0:.0f} s")
        return
    rng = np.random.default_rng(args.seed + 2)
    n_fit = min(len(train), int(args.fit_clips * scale))
    fit = [train[i] for i in sorted(rng.permutation(len(train))[:n_fit])]
    print(f"grid {len(grid)} clips: train {len(train)}, held-out {len(held)}")
    print(f"fit on {len(fit)} training clips; judge {len(evals)} held-out clips "
          f"({', '.join(f'{k} {sum(group_of(c) == k for c in evals)}' for k in sorted(per))})")  # fmt: skip

    fit_audio = torch.from_numpy(render_clips(fit, sampling_rate=SR, seconds=SECONDS))
    eval_audio = render_clips(evals, sampling_rate=SR, seconds=SECONDS)
    print(f"rendered in {time.time() - t0:.0f} s")

    conditions: dict[str, np.ndarray] = {"original": eval_audio}
    fit_info: dict[str, object] = {}
    for kind in kinds:
        t = time.time()
        codec, errors = fit_codec(kind, fit_audio, args.seed, args.iters)
        t_fit = time.time() - t
        t = time.time()
        conditions[kind] = round_trip(codec, torch.from_numpy(eval_audio))
        if kind == "spectral":
            conditions["mel_only"] = mel_only(codec, torch.from_numpy(eval_audio))
        fit_info[kind] = {"fit_s": round(t_fit, 1), "round_trip_s": round(time.time() - t, 1),
                          "residual_mse": errors}  # fmt: skip
        print(f"{kind}: fitted in {t_fit:.0f} s (residual mse {errors}), "
              f"round trips {time.time() - t:.0f} s")  # fmt: skip

    results: dict[str, dict[str, dict[str, float]]] = {}
    rows: dict[str, list[dict]] = {}
    for name, audio in conditions.items():
        t = time.time()
        rows[name] = [judge(c, y) for c, y in zip(evals, audio)]
        print(f"judged {name} in {time.time() - t:.0f} s")
        table: dict[str, dict[str, float]] = {}
        keys = ["quality", "root", "root_aug_mod_M3", "harmonic_interval", "melodic_interval",
                "pitch_class", "tempo", "tempo_octave"]  # fmt: skip
        for key in keys:
            vals = [r[key] for r in rows[name] if key in r]
            k, n = int(sum(vals)), len(vals)
            lo, hi = wilson(k, n)
            table[key] = {"k": k, "n": n, "share": k / n if n else float("nan"), "lo": lo, "hi": hi}
        for concept in ("notes", "intervals", "chords"):
            vals = [r["tempo"] for c, r in zip(evals, rows[name]) if c.concept == concept]
            table[f"tempo[{concept}]"] = {"k": int(sum(vals)), "n": len(vals),
                                          "share": sum(vals) / max(1, len(vals))}  # fmt: skip
        for bpm in sorted({c.bpm for c in evals}):
            vals = [r["tempo"] for c, r in zip(evals, rows[name]) if c.bpm == bpm]
            table[f"tempo[{bpm:g}]"] = {"k": int(sum(vals)), "n": len(vals),
                                        "share": sum(vals) / max(1, len(vals))}  # fmt: skip
        results[name] = table

    print()
    print(f"{'gate':22s}" + "".join(f"{n:>24s}" for n in conditions))
    for key in results["original"]:
        line = f"{key:22s}"
        for name in conditions:
            e = results[name][key]
            ci = f" [{e['lo']:.2f},{e['hi']:.2f}]" if "lo" in e else ""
            line += f"{e['k']:>5d}/{e['n']:<4d}{e['share']:.3f}{ci:>13s}"
        from musicrfm.mini.strike_gates import GATES

        gate = GATES.get(key)
        print(line + (f"   gate >= {gate}" if gate else ""))
    print(f"\ntotal {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "fit": fit_info, "results": results,
                       "clips": [c.labels for c in evals],
                       "rows": {k: [{a: (float(b) if isinstance(b, float) else b)
                                     for a, b in r.items()} for r in v]
                                for k, v in rows.items()}}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
