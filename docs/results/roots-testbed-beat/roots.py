"""Which directions move a chord's root on musicgen-mini-beat? Per-bar root + quality of text
progressions, with the quality directions and one of several root sources.

The testbed's codec writes the lowest note in codebook 0 and the set of notes above it in
codebook 1, so a triad's root is the bass in root position only. Root sources compared:
  roots-all      pitch classes on the strike triads' `root` label, every inversion (what
                 `mini pairs --first chord-roots` and the demo's notes trained before)
  roots-rootpos  the same, root-position triads only (root = bass)
  bass-all       pitch classes on the triads' lowest note, every inversion
  notes          pitch classes of strike single notes (the note directions)
Every source is used as the progression's root part (relabelled `root`); the quality part is
the strike-triad quality directions. Progressions: three all-major ones covering the 12 roots
and `C G Am F`; 2/4 at 100 BPM, 4 bars (4.8 s), one chord a bar, the demo's 8 prompts x SEEDS.

    python docs/results/roots-testbed-beat/roots.py WORK OUT.json [--coefs 0.3x ...] [--only NAME ...] [--seeds S ...] [--bundle FOLDER]
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import bar_scores, judge_bars
from musicrfm.experiments.demo.stages import learn_note_directions, sampling_options
from musicrfm.models import load_model
from musicrfm.probes.directions import record_activation_norms
from musicrfm.probes.training import train_directions
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import make_progression

PROGRESSIONS = ("C C# D D#", "E F F# G", "G# A A# B", "C G Am F")
SEEDS = (0, 1000)
BPM = 100.0


def root_sources(adapter, work: Path, seed: int = 0) -> tuple[object, dict[str, object]]:
    """(quality directions, {source name: pitch-class directions labelled as chord roots})."""
    cfg = replace(DemoConfig(), train_set="strikes", clips_per_class=96)
    _, feats, trained = learn_note_directions(adapter, cfg, work / "chords", seed=seed,
                                              concept="chords", progress=False)  # fmt: skip
    quality = trained.directions
    record_activation_norms(quality, feats.features)
    rows = feats.rows
    bass = [min(int(n) for n in str(m).split()) % 12 for m in rows["midi_notes"]]
    from musicrfm.theory import PITCH_CLASSES

    feats.rows = rows.assign(bass=[PITCH_CLASSES[b] for b in bass])
    kw = dict(task="binary", budget=cfg.budget, components=cfg.components, seed=seed,
              progress=False)  # fmt: skip
    sources = {}
    rootpos_q = train_directions(
        feats.subset(np.asarray(rows["inversion"] == "root")),
        label_column="label",
        concept="chords",
        **kw,
    ).directions
    record_activation_norms(rootpos_q, feats.features)
    sources["roots-all"] = train_directions(feats, label_column="root", concept="chord-roots",
                                            **kw).directions  # fmt: skip
    rootpos = feats.subset(np.asarray(rows["inversion"] == "root"))
    sources["roots-rootpos"] = train_directions(rootpos, label_column="root",
                                                concept="chord-roots", **kw).directions  # fmt: skip
    sources["bass-all"] = train_directions(feats, label_column="bass", concept="chord-roots",
                                           **kw).directions  # fmt: skip
    ncfg = replace(DemoConfig(), train_set="strikes", clips_per_class=16)
    _, nfeats, ntrained = learn_note_directions(adapter, ncfg, work / "notes", seed=seed,
                                                concept="notes", progress=False)  # fmt: skip
    sources["notes"] = ntrained.directions
    for name, cd in sources.items():
        cd.meta["label_column"] = "root"
        cd.concept = "chord-roots"
        record_activation_norms(cd, (nfeats if name == "notes" else feats).features)
    return {"quality-all": quality, "quality-rootpos": rootpos_q}, sources


BUNDLE = {  # what a model folder's directions/ gets: file name -> (source, what it was trained on)
    "chords": ("quality-rootpos", "triad quality of root-position strike triads (root = bass)"),
    "chord-roots": ("bass-all", "lowest note of strike triads, every inversion and quality"),
}


def main(
    work: str,
    out: str,
    coefs: list[str],
    only: list[str],
    seeds: tuple[int, ...],
    bundle: str | None = None,
) -> None:
    torch.set_num_threads(1)
    adapter = load_model("mini-beat")
    t0 = time.perf_counter()
    qualities, sources = root_sources(adapter, Path(work))
    train_s = time.perf_counter() - t0
    everything = {**qualities, **sources}
    for name, cd in everything.items():
        cd.save(Path(work) / "directions" / name)
    if bundle is not None:
        for file, (name, trained_on) in BUNDLE.items():
            everything[name].meta["trained_on"] = trained_on
            everything[name].save(Path(bundle) / file)
        return
    prompts = DemoConfig().prompt_texts()
    result = {"bpm": BPM, "seeds": seeds, "prompts": prompts, "train_s": train_s, "runs": {}}
    for text in PROGRESSIONS:
        prog = make_progression(chords=text, bpm=BPM, beats_per_bar=2)
        plans = {"unsteered": None}
        for coef in coefs:
            for qname, quality in qualities.items():
                plans[f"{qname} {coef}"] = compile_progression(prog, [quality], coef,
                                                               parts="quality")  # fmt: skip
                for name, cd in sources.items():
                    plans[f"{qname} + {name} {coef}"] = compile_progression(
                        prog, [quality, cd], coef
                    )
        for cond, plan in plans.items():
            if only and cond != "unsteered" and not any(o in cond for o in only):
                continue
            bars = []
            for seed in seeds:
                for c in generate(adapter, prompts, plan=plan, seconds=prog.seconds, seed=seed,
                                  batch=len(prompts), **sampling_options(adapter)):  # fmt: skip
                    bars.append(judge_bars(np.asarray(c.audio, np.float32).reshape(-1),
                                           c.sample_rate, prog))  # fmt: skip
            s = bar_scores(bars, 0)
            result["runs"].setdefault(text, {})[cond] = s
            print(text, "|", cond, "| quality", round(s["quality"]["value"], 2), "| root+quality",
                  round(s["chord"]["value"], 2), flush=True)  # fmt: skip
            Path(out).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work")
    ap.add_argument("out")
    ap.add_argument("--coefs", nargs="+", default=["0.3x"])
    ap.add_argument(
        "--only",
        nargs="*",
        default=[],
        help="run only the conditions whose name holds one of these (and unsteered)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument(
        "--bundle",
        default=None,
        metavar="FOLDER",
        help="only train, and write the chosen pair (BUNDLE) into FOLDER",
    )
    a = ap.parse_args()
    main(a.work, a.out, a.coefs, a.only, tuple(a.seeds), a.bundle)
