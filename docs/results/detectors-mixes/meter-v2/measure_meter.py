"""Meter figures on mix sets (issue 19, set v2): the detector now and, optionally, a previous
version of ``meters.py`` (``--before FILE``, e.g. ``git show REV:src/musicrfm/evaluation/
detectors/meters.py > old.py``) on the same files. Writes ``summary.csv`` (k, n, accuracy,
Wilson 95% per set, variant and true meter), ``per_clip.csv`` and, through
``musicrfm.evaluation.validation``'s calibration code, ``calibration.csv`` / ``.png``:

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/detectors-mixes/meter-v2/measure_meter.py \
        --out OUT [--before old.py] SET_DIR [SET_DIR ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd

from musicrfm.evaluation import detectors as det
from musicrfm.evaluation.validation import calibration, plot_calibration, wilson_interval


def set_name(folder: Path) -> str:
    meta = json.loads((folder / "dataset.json").read_text())
    return f"v{meta.get('set_version', 1)} seed {meta['seed']} {Path(meta['soundfont']).stem}"


def load_before(path: Path) -> ModuleType:
    """An older meters.py as its own module (its registry call is skipped: the name is taken)."""
    from musicrfm.evaluation.detectors import registry

    spec = importlib.util.spec_from_file_location("meters_before", path)
    module = importlib.util.module_from_spec(spec)
    register, registry.register_detector = registry.register_detector, lambda d: d
    try:
        spec.loader.exec_module(module)
    finally:
        registry.register_detector = register
    return module


def clip_rows(folder: Path, before: ModuleType | None) -> list[dict]:
    import soundfile as sf

    name = set_name(folder)
    manifest = pd.read_csv(folder / "manifest.csv")
    variants = {"now": det.detect_meter}
    if before is not None:
        variants["before"] = before.detect_meter
    out = []
    for _, row in manifest.iterrows():
        y, sr = sf.read(folder / row["path"], dtype="float32")
        for variant, detect in variants.items():
            d = detect(y, sr)
            out.append(
                {
                    "set": name,
                    "path": row["path"],
                    "concept": "mixes",
                    "task": "meter",
                    "detector": f"beat accents, {variant} ({name})",
                    "variant": variant,
                    "truth": row["time_signature"],
                    "bpm": row["bpm"],
                    "predicted": d.label,
                    "confidence": d.confidence,
                    "correct": d.label == row["time_signature"],
                    "eighths": d.details.get("eighths"),
                }
            )
    return out


def summary(per_clip: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (name, variant), g in per_clip.groupby(["set", "variant"], sort=False):
        for truth, part in [("all", g), *g.groupby("truth")]:
            k, n = int(part["correct"].sum()), len(part)
            low, high = wilson_interval(k, n)
            wrong = part.loc[~part["correct"], "predicted"].value_counts().to_dict()
            rows.append(
                {
                    "set": name,
                    "variant": variant,
                    "truth": truth,
                    "k": k,
                    "n": n,
                    "accuracy": round(k / n, 4),
                    "ci_low": round(low, 4),
                    "ci_high": round(high, 4),
                    "errors": " ".join(f"{lab}:{c}" for lab, c in sorted(wrong.items())),
                }
            )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--before", type=Path, help="an older meters.py to run on the same clips")
    args = parser.parse_args()
    before = load_before(args.before) if args.before else None
    per_clip = pd.DataFrame([r for folder in args.sets for r in clip_rows(folder, before)])
    args.out.mkdir(parents=True, exist_ok=True)
    per_clip.to_csv(args.out / "per_clip.csv", index=False)
    table = summary(per_clip)
    table.to_csv(args.out / "summary.csv", index=False)
    pooled = per_clip.assign(
        detector=per_clip["variant"].map(lambda v: f"beat accents, {v}")
        + per_clip["set"]
        .str.extract(r"(?i)(fluidr3|timgm6mb)", expand=False)
        .map(lambda s: f" ({s.lower()})")
    )
    curve = calibration(pooled)
    curve.to_csv(args.out / "calibration.csv", index=False)
    plot_calibration(curve, args.out / "calibration.png")
    print(table.to_string(index=False))
    print(curve.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
