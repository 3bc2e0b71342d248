"""Each sweep concept's directions and multiclass probe: loaded from disk, or trained and saved
under the sweep folder (so an interrupted sweep does not train them again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicrfm.experiments.sweep.config import ConceptSpec, SweepConfig, check_target
from musicrfm.probes.directions import ConceptDirections
from musicrfm.probes.training import save_train_result

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    from musicrfm.models.adapter import ModelAdapter


@dataclass
class ConceptAssets:
    directions: ConceptDirections
    probe: Any = None  # musicrfm.probes.rfm.RFM (multiclass) or None
    probe_classes: list[str] | None = None
    probe_layer: int | None = None


def _load_probe(folder: Path) -> tuple[Any, list[str], int] | None:
    index = folder / "index.json"
    if not index.is_file():
        return None
    from musicrfm.probes.rfm import RFM

    info = json.loads(index.read_text())
    scores = {int(k): v for k, v in (info.get("scores") or {}).items()}
    layers = [int(x) for x in info.get("layers") or scores]
    if not layers:
        return None
    best = max(layers, key=lambda i: scores.get(i, {}).get("val_accuracy", 0.0))
    found = sorted(folder.glob(f"*_multiclass_layer{best:02d}.safetensors"))
    if not found:
        log.warning("probe index lists layer %d but no file in %s", best, folder)
        return None
    return RFM.load(found[0]), [str(c) for c in info.get("classes") or []], best


def prepare_concepts(
    cfg: SweepConfig,
    model: ModelAdapter,
    out: Path,
    directions: Mapping[str, ConceptDirections] | None = None,
) -> dict[str, ConceptAssets]:
    """Load (or train and save under ``out/directions/<concept>``) each concept's directions."""
    assets: dict[str, ConceptAssets] = {}
    for name, spec in cfg.concepts.items():
        probe = None
        if directions and name in directions:
            cd = directions[name]
        elif spec.directions:
            cd = ConceptDirections.load(spec.directions)
            folder = Path(spec.directions)
            folder = folder if folder.is_dir() else folder.parent
            probe = _load_probe(Path(spec.probes) if spec.probes else folder / "probes")
        else:
            target_dir = out / "directions" / name
            found = sorted(target_dir.glob("*.safetensors"))
            if found:  # trained by an earlier (interrupted) run of this sweep
                cd = ConceptDirections.load(found[0])
            else:
                cd = _train(spec, model, target_dir)
            probe = _load_probe(target_dir / "probes")
        if spec.probes and probe is None and not (directions and name in directions):
            probe = _load_probe(Path(spec.probes))
        for t in spec.targets:  # a ConfigError saying what to use instead
            check_target(cd, t, f"[concepts.{name}]")
        a = ConceptAssets(cd)
        if probe is not None:
            a.probe, a.probe_classes, a.probe_layer = probe
        assets[name] = a
    return assets


def _train(spec: ConceptSpec, model: ModelAdapter, folder: Path) -> ConceptDirections:
    from musicrfm.capture.extract import extract_features
    from musicrfm.capture.features import FeatureSet
    from musicrfm.probes.training import train_directions

    if spec.features:
        feats = FeatureSet.load(spec.features)
    else:
        feats = extract_features(model, spec.dataset, progress=False)
    options = {"budget": "fast", "progress": False, **spec.train}
    result = train_directions(feats, label_column=spec.label_column, concept=spec.name, **options)
    save_train_result(result, folder)
    log.info("trained directions for %s -> %s", spec.name, folder)
    return result.directions
