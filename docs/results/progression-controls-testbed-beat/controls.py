"""Controls and prompt adherence for the chord progression path (issue 18): `C G Am F` on
models/musicgen-mini-beat with the bundled chords + chord-roots directions at 0.3x (4/4, 120 BPM,
8 s: the CLI's defaults), for unsteered, steered, random, orthogonal and sign-flipped controls.

Controls: every class of BOTH direction sets is replaced by `control_directions` (random /
orthogonal at each class's norm per layer and component; flip = the real vectors negated), so the
roles (quality / root), layers, scores and norms (hence the 0.3x resolution) are unchanged; the
plan is compiled by `compile_progression` exactly as `musicrfm generate --chords` does. Each bar
is judged by `demo.progression.judge_bars`; prompt adherence by the model folder's reference
timbre judge (`demo.stages.saved_judge`), paired per clip against unsteered. `--judge DIR` also
judges the same clips with the saved judge in DIR (e.g. one fitted with `musicrfm mini judge
--polyphonic`): its figures go under `adherence_polyphonic` (`adherence_progressions` for a
`--progressions` judge, else `adherence_other`).

    OMP_NUM_THREADS=1 python docs/results/progression-controls-testbed-beat/controls.py OUT \
        [--seeds 2000 3000] [--prompts N] [--coef 0.3x] [--conditions unsteered steered ...] \
        [--judge DIR] [--quality-directions PATH] [--split-codebooks K ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from musicrfm.evaluation.instrument import prompt_adherence
from musicrfm.evaluation.judges import find_reference_judge
from musicrfm.evaluation.metrics.stats import bootstrap_ci
from musicrfm.experiments.controls import control_directions
from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import judge_bars
from musicrfm.experiments.demo.stages import saved_judge
from musicrfm.models import load_model
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.generation import generate
from musicrfm.steering.plan import compile_progression
from musicrfm.steering.progressions import direction_role, make_progression

CHORDS, BPM, COEF = "C G Am F", "120", "0.3x"
DIRS = [
    "models/musicgen-mini-beat/directions/chords",
    "models/musicgen-mini-beat/directions/chord-roots",
]
CONDITIONS = ("unsteered", "steered", "random", "orthogonal", "flip")
CONTROL_SEED = 0


def controlled(cd: ConceptDirections, kind: str) -> ConceptDirections:
    """Every class of ``cd`` replaced by its ``kind`` control (the progression targets several)."""
    out = cd
    for c in cd.classes:
        out = control_directions(out, kind, target=c, seed=CONTROL_SEED)
    if direction_role(out) != direction_role(cd):
        raise RuntimeError(f"control {kind} changed the role of {cd.concept}")
    return out


def pulse_quality(plan, on: float, floor: float, bpm: float, frame_rate: float):
    """``plan`` with every quality-role direction's φ(t) multiplied by a beat gate: 1 for the
    first ``on`` of each beat (from the beat), ``floor`` in the rest."""
    from dataclasses import replace

    from musicrfm.steering.schedules import from_callable

    beat = 60.0 / bpm * frame_rate  # steps per beat
    out = []
    for d in plan.directions:
        if direction_role(d.load()) == "quality":
            base = d.schedule.resolve(frame_rate=frame_rate, horizon=10_000)

            def phi(t: int, base=base) -> float:
                return base(t) * (1.0 if (t % beat) < on * beat else floor)

            d = replace(d, schedule=from_callable(phi))
        out.append(d)
    return replace(plan, directions=out)


def quality_layers(plan, layers: list[int]):
    """``plan`` with every quality-role direction steering ``layers`` only."""
    from dataclasses import replace

    out = [replace(d, layers=list(layers)) if direction_role(d.load()) == "quality" else d
           for d in plan.directions]  # fmt: skip
    return replace(plan, directions=out)


def _root(name: str) -> str:
    return name[:2] if name[1:2] in ("#", "b") else name[:1]


def _ci(per_clip: list[float], seed: int = 0) -> dict:
    est = bootstrap_ci(np.asarray(per_clip, float), seed=seed)
    return {"value": est.value, "ci": [est.low, est.high], "n": int(est.n)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[2000, 3000])
    ap.add_argument("--prompts", type=int, default=None, help="first N of the demo's prompts")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--coef", default=COEF, help="strength of both parts (default 0.3x)")
    ap.add_argument("--judge", type=Path, default=None, help="a second saved judge's folder")
    ap.add_argument(
        "--quality-directions",
        default=DIRS[0],
        help="chord-quality directions to steer with (default: the bundled ones)",
    )
    ap.add_argument(
        "--pulse-quality", type=float, nargs=2, default=None, metavar=("ON", "FLOOR"),
        help="the quality part at full strength for the first ON of each beat only and FLOOR x "
        "its strength in the rest (session 21: is the choir the quality held at every frame?)",
    )  # fmt: skip
    ap.add_argument(
        "--quality-layers", type=int, nargs="+", default=None, metavar="L",
        help="steer the quality part on these layers only (the root part keeps every layer)",
    )  # fmt: skip
    ap.add_argument(
        "--split-codebooks", type=int, nargs="+", default=None, metavar="K",
        help="only these codebooks' predictions are steered, the rest come from an unsteered "
        "copy of each decoder call (SteeringPlan.codebooks, `generate --codebooks`; session 22)",
    )  # fmt: skip
    a = ap.parse_args()
    t0 = time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    prompts = DemoConfig().prompt_texts()[: a.prompts]
    prog = make_progression(chords=CHORDS, bpm=BPM)
    model = load_model("mini-beat")
    judges = {"adherence": saved_judge(model)}
    if a.judge is not None:
        other = find_reference_judge(model, [a.judge])
        if other is None:
            raise SystemExit(f"{a.judge}: no timbre judge fitted for this model's codec")
        kind = ("progressions" if other[1].get("progressions")
                else "polyphonic" if other[1].get("polyphonic") else "other")  # fmt: skip
        judges[f"adherence_{kind}"] = other
    result_judges = {k: v[1] for k, v in judges.items()}
    real = [ConceptDirections.load(d) for d in (a.quality_directions, DIRS[1])]
    result: dict = {"chords": CHORDS, "bpm": BPM, "coef": a.coef, "seeds": a.seeds,
                    "pulse_quality": a.pulse_quality, "split_codebooks": a.split_codebooks, "quality_layers": a.quality_layers,
                    "quality_directions": str(a.quality_directions),
                    "prompts": prompts, "seconds": prog.seconds, "control_seed": CONTROL_SEED,
                    "judges": result_judges, "conditions": {}}  # fmt: skip
    per: dict[str, dict] = {}
    for cond in a.conditions:
        if cond == "unsteered":
            plan = None
        else:
            dirs = real if cond == "steered" else [controlled(cd, cond) for cd in real]
            plan = compile_progression(prog, dirs, a.coef)
            if a.quality_layers is not None:
                plan = quality_layers(plan, a.quality_layers)
            if a.pulse_quality is not None:
                plan = pulse_quality(plan, *a.pulse_quality, float(BPM), model.frame_rate)
        if plan is not None and a.split_codebooks is not None:
            plan = replace(plan, codebooks=a.split_codebooks)  # SteeringPlan.codebooks
        clips = generate(model, prompts, plan=plan, seed=a.seeds, seconds=prog.seconds, batch=2)
        bars = [judge_bars(c.audio, c.sample_rate, prog) for c in clips]
        for clip in bars:
            for b in clip:
                b["root_ok"] = b["got"].split(":")[0] == _root(b["want"])
        per[cond] = {
            k: [float(np.mean([b[k] for b in clip])) for clip in bars]
            for k in ("chord_ok", "quality_ok", "root_ok")
        }
        for key, (clf, _) in judges.items():
            adh = prompt_adherence(clf, [c.audio for c in clips], clips[0].sample_rate,
                                   [c.prompt for c in clips])  # fmt: skip
            per[cond][key] = adh["match"].astype(float).tolist()
        s = {k.replace("_ok", ""): _ci(v) for k, v in per[cond].items()}
        s["detected"] = [[b["got"] for b in clip] for clip in bars]
        s["clips"], s["bars"] = len(bars), sum(len(c) for c in bars)
        s["per_clip"] = per[cond]  # paired with unsteered clip for clip: pool runs from here
        if "unsteered" in per and cond != "unsteered":
            for key in judges:
                d = np.array(per[cond][key]) - np.array(per["unsteered"][key])
                s[f"{key}_change"] = _ci(d.tolist())
                s[f"{key}_within_0.02"] = bool(abs(s[f"{key}_change"]["value"]) <= 0.02)
        result["conditions"][cond] = s
        print(cond, {k: round(s[k]["value"], 3) for k in ("chord", "quality", "root", *judges)},
              round(time.time() - t0), "s", flush=True)  # fmt: skip
        result["wall_s"] = time.time() - t0
        (a.out / "progression_controls.json").write_text(json.dumps(result, indent=1))
    _figure(result, a.out / "progression_controls.png")


def _figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = list(result["conditions"])
    panels = [("chord", "per-bar root+quality"), ("adherence", "prompt adherence (timbre judge)")]
    for key in result.get("judges", {}):
        if key != "adherence":
            panels = [*panels[:1], ("adherence", "adherence (notes-only judge)"),
                      (key, f"adherence ({key.split('_', 1)[1]} judge)")]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for ax, (key, title) in zip(axes, panels):
        v = [result["conditions"][c][key]["value"] for c in conds]
        lo = [v[i] - result["conditions"][c][key]["ci"][0] for i, c in enumerate(conds)]
        hi = [result["conditions"][c][key]["ci"][1] - v[i] for i, c in enumerate(conds)]
        ax.bar(conds, v, yerr=[lo, hi], capsize=4, color="#6a8caf")
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
    n = result["conditions"][conds[0]]["clips"]
    fig.suptitle(f"{result['chords']} at {result['coef']}, n={n} clips, 95% bootstrap CI")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--figure"]:  # redraw a finished run's figure: --figure RESULT.json
        _figure(json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[2]).with_suffix(".png"))
    else:
        main()
