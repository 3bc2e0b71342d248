"""Direction bundles the studio offers: the ones named on the command line, or the default one.

A bundle is one `ConceptDirections` file with a name the page shows and the activation scale
its strengths are measured in: strength 1.0 is η0 = the median norm of the model's pooled
block outputs (a direction is a unit vector, so only a strength relative to the residual
stream means something; the README's "0.1× norm"). The page refers to bundles by name only, so
it can never make the server read a path of its choosing.

The default bundle is what ``musicrfm demo`` trains (`learn_note_directions` with the demo's
settings: note set, features, one-vs-rest RFM directions, about 30 s on 2 cores), cached under
``<cache>/studio/<model>-<fingerprint>/`` with its activation scale in the files' meta.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.files import cache_dir
from musicrfm.models.adapter import ModelAdapter
from musicrfm.probes.directions import ConceptDirections

log = logging.getLogger(__name__)

SCALE_KEY = "activation_scale"


@dataclass
class Bundle:
    """One direction file as the page offers it. path: the file base (no suffix)."""

    name: str
    path: Path
    directions: ConceptDirections
    scale: float
    origin: str

    @property
    def concept(self) -> str:
        return self.directions.concept

    @property
    def classes(self) -> list[str]:
        return list(self.directions.classes)

    def coef(self, strength: float, target: str | None) -> float:
        """η0 of a strength (× activation norm), with the sign a regression target asks for."""
        return float(strength) * self.scale * self.directions.sign_of(target)

    def describe(self) -> str:
        cd = self.directions
        score = cd.meta.get("score_name", "score")
        best = cd.scores.max(dim=0).values
        return (
            f"**{self.name}** — concept `{cd.concept}`, {len(cd.classes)} classes "
            f"({', '.join(cd.classes)}), layers {cd.layers[0]}–{cd.layers[-1]}, "
            f"model `{cd.meta.get('model_id')}`; best per-layer {score} "
            f"{float(best.min()):.2f}–{float(best.max()):.2f}; strength 1.0 = η0 "
            f"{self.scale:.3f} (median activation norm); {self.origin}"
        )


def _base(path: Path) -> Path:
    return path.with_suffix("") if path.suffix in {".safetensors", ".json"} else path


def _files_in(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p.with_suffix("") for p in path.glob("*.safetensors"))
        if not found:
            raise ConfigError(f"{path} holds no direction files (*.safetensors + *.json)")
        return found
    return [_base(path)]


def load_bundles(
    paths: Sequence[str | Path], adapter: ModelAdapter, *, strict: bool = True
) -> dict[str, Bundle]:
    """Every direction file named (a file base, or a folder of them), checked against the model;
    names are the concepts, made unique with a suffix."""
    from musicrfm.steering.compile import check_compatible

    bundles: dict[str, Bundle] = {}
    for given in paths:
        for base in _files_in(Path(given).expanduser()):
            cd = ConceptDirections.load(base)
            check_compatible(cd, adapter, strict=strict)
            scale = cd.meta.get(SCALE_KEY)
            if not isinstance(scale, (int, float)) or not scale > 0:
                scale = activation_scale(adapter)
            name = unique_name(cd.concept, bundles)
            bundles[name] = Bundle(name, base.resolve(), cd, float(scale), f"from {base}")
    return bundles


def unique_name(name: str, taken: dict[str, Any]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    return out


def default_bundle(
    adapter: ModelAdapter,
    *,
    config: Any = None,
    folder: Path | None = None,
    work: Path | None = None,
    progress: bool = True,
) -> Bundle:
    """The demo's note directions for this model: loaded from the studio cache, or trained on
    the spot (`learn_note_directions`; its data and features are cached in the demo's work
    folder) and saved there. config: a `DemoConfig` (default: the demo's own)."""
    from musicrfm.experiments.demo.config import DemoConfig, default_work_dir
    from musicrfm.experiments.demo.stages import auto_coefs, learn_note_directions

    cfg = config or DemoConfig()
    folder = folder or default_folder(adapter, cfg)
    base = folder / "notes"
    if base.with_suffix(".safetensors").exists() and base.with_suffix(".json").exists():
        cd = ConceptDirections.load(base)
        return Bundle("notes", base.resolve(), cd, float(cd.meta[SCALE_KEY]), "cached")
    log.info("training note directions for the studio (once per model; about 30 s on 2 cores)")
    _, features, trained = learn_note_directions(
        adapter, cfg, work or default_work_dir(), progress=progress
    )
    cd = trained.directions
    cd.meta[SCALE_KEY] = auto_coefs(features, cfg)[1]
    cd.save(base)
    return Bundle("notes", base.resolve(), cd, float(cd.meta[SCALE_KEY]), "trained at start-up")


def default_folder(adapter: ModelAdapter, config: Any) -> Path:
    """``<cache>/studio/<model>-<fingerprint>-<settings>``: one per model and demo settings."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", str(adapter.model_id)).strip("-") or "model"
    settings = f"{config.clips_per_class}pc-{config.budget}"
    return cache_dir("studio") / f"{slug}-{adapter.fingerprint()[:12]}-{settings}"


def activation_scale(adapter: ModelAdapter, *, seconds: float = 2.0) -> float:
    """The median norm over layers of the block outputs averaged over the steps of a short
    unsteered generation: the activation scale of a bundle that does not record one."""
    import torch

    from musicrfm.capture.decoder import block_hooks
    from musicrfm.steering.generation import generate

    sums: dict[int, Any] = {}
    counts: dict[int, int] = {}

    def add(layer: int, hidden: Any) -> None:
        h = hidden[:1].detach().float().sum(dim=1)[0]  # conditional row, summed over positions
        sums[layer] = sums.get(layer, 0) + h
        counts[layer] = counts.get(layer, 0) + int(hidden.shape[1])

    with block_hooks(adapter, add):
        generate(adapter, "", seed=0, seconds=seconds, temperature=0)
    norms = torch.stack([(sums[i] / counts[i]).norm() for i in sorted(sums)])
    return float(norms.median())
