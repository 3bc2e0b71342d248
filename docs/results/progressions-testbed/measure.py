"""Per-bar chord accuracy of a text progression on a testbed model (default models/musicgen-mini-poly; issue 18, small n).

Directions are learned as the chord headline learns them (learn_note_directions, concept
chords: the synthetic chord set on the prompt programs, mean pooling, RFM fast budget), plus
chord-root directions trained on the same features' `root` column. Each clip is 4 bars of 2/4
at 120 BPM (1 s a bar, 4 s); each bar (trimmed 0.15 s each side) is judged by detect_chord.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from musicrfm.evaluation.detectors.chords import detect_chord  # noqa: E402
from musicrfm.experiments.demo.config import DemoConfig  # noqa: E402
from musicrfm.experiments.demo.stages import (  # noqa: E402
    auto_coefs,
    learn_note_directions,
    sampling_options,
)
from musicrfm.models import load_model  # noqa: E402
from musicrfm.probes.training import train_directions  # noqa: E402
from musicrfm.steering.generation import generate  # noqa: E402
from musicrfm.steering.plan import compile_progression  # noqa: E402
from musicrfm.steering.progressions import make_progression  # noqa: E402

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/progmeasure/out")
PROGS = sys.argv[2].split(";") if len(sys.argv) > 2 else ["C G Am F"]
RELS = [float(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0.15]
TRAIN_SET = sys.argv[4] if len(sys.argv) > 4 else "synthetic"  # or "strikes" (session 12)
MODEL = sys.argv[5] if len(sys.argv) > 5 else "models/musicgen-mini-poly"  # session 14
SEEDS = [0, 1]
TRIM = 0.15

t0 = time.perf_counter()
adapter = load_model(MODEL)
cfg = replace(DemoConfig(), clips_per_class=48, train_set=TRAIN_SET)
work = OUT / "work"
dataset, features, trained = learn_note_directions(
    adapter, cfg, work, seed=0, progress=False, concept="chords"
)
quality = trained.directions
roots = train_directions(
    features, label_column="root", concept="chord-roots", task="binary", budget=cfg.budget,
    components=cfg.components, seed=0, progress=False,
).directions  # fmt: skip
roots.meta["label_column"] = "root"
quality.save(OUT / "dirs" / "chords")
roots.save(OUT / "dirs" / "chord-roots")
_, scale = auto_coefs(features, replace(cfg, relative_coefs=(0.1,)))
t_learn = time.perf_counter() - t0
prompts = cfg.prompt_texts()
sampling = sampling_options(adapter)
print("learned", round(t_learn, 1), "s; scale", scale, "sampling", sampling, flush=True)
print("quality val scores (best layer):", quality.scores.max(0).values.tolist())
print("root val scores (best layer):", roots.scores.max(0).values.tolist(), flush=True)


def judge(clip, prog) -> list[dict]:
    audio = clip.audio.mean(0) if clip.audio.ndim == 2 else clip.audio
    sr = clip.sample_rate
    lines = prog.chords.bar_lines()
    out = []
    for i, bar in enumerate(prog.chords.chord_at_bars()):
        a, b = int((lines[i] + TRIM) * sr), int((lines[i + 1] - TRIM) * sr)
        d = detect_chord(audio[a:b], sr)
        want = bar[0]
        got_root = d.details.get("root")
        out.append(
            {"bar": i, "want": want.name, "got": d.details.get("chord"), "quality_ok": d.label == want.quality,
             "root_ok": got_root == want.root_name,
             "both_ok": d.label == want.quality and got_root == want.root_name}
        )  # fmt: skip
    return out


rows = []
for text in PROGS:
    prog = make_progression(chords=text, bpm=120, beats_per_bar=2)
    conds = [("unsteered", None, None)]
    for rel in RELS:
        conds.append((f"quality {rel}x", ("quality",), rel))
        conds.append((f"root+quality {rel}x", ("root", "quality"), rel))
    for name, parts, rel in conds:
        t = time.perf_counter()
        plan = None
        if parts is not None:
            srcs = [OUT / "dirs" / "chords"] + (
                [OUT / "dirs" / "chord-roots"] if "root" in parts else []
            )
            plan = compile_progression(prog, [str(s) for s in srcs], rel * scale, parts=parts)
        clips = generate(adapter, prompts, plan=plan, seed=SEEDS, seconds=prog.seconds, batch=8, **sampling)  # fmt: skip
        bars = [b for c in clips for b in judge(c, prog)]
        q = np.mean([b["quality_ok"] for b in bars])
        r = np.mean([b["root_ok"] for b in bars])
        both = np.mean([b["both_ok"] for b in bars])
        row = {"progression": text, "condition": name, "coef": None if rel is None else rel * scale,
               "clips": len(clips), "bars": len(bars), "quality_acc": q, "root_acc": r,
               "chord_acc": both, "per_bar_quality": [float(np.mean([b["quality_ok"] for b in bars if b["bar"] == i])) for i in range(4)],
               "detected": [b["got"] for b in bars], "seconds": time.perf_counter() - t}  # fmt: skip
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "detected"}), flush=True)
(OUT / "results.json").write_text(
    json.dumps({"rows": rows, "scale": scale, "sampling": sampling, "prompts": prompts,
                "seeds": SEEDS, "trim_s": TRIM, "learn_s": t_learn}, indent=1, default=float)
)  # fmt: skip
print("total", round(time.perf_counter() - t0, 1), "s")
