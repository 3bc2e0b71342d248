"""The sweep grid: which conditions (plan x prompts x seeds) a sweep config asks for.

A condition is pure data (no model, no directions), so the grid can be listed and hashed before
anything is generated; :func:`musicrfm.experiments.sweep.run.build_plan` turns one into a plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.experiments.sweep.config import PLAN_KEYS, SweepConfig


@dataclass
class Term:
    """One direction of a condition's plan."""

    concept: str
    target: str
    coef: float
    control: str | None = None  # None: the concept direction itself
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Condition:
    """One cell of the sweep grid: a plan (list of terms; empty = unsteered) x prompts x seeds."""

    kind: str  # main / unsteered / top_k / weighting / gate / schedule / multi / crossfade
    condition: str  # "concept", "unsteered" or a control kind
    concept: str
    target: str
    coef: float
    variant: str
    terms: list[Term] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.kind}/{self.concept}/{self.target}/{self.condition}/{self.variant}/η0={self.coef:g}"

    def key(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "condition": self.condition,
            "concept": self.concept,
            "target": self.target,
            "coef": self.coef,
            "variant": self.variant,
        }


def _variant_name(options: Mapping[str, Any]) -> str:
    parts = []
    for k in PLAN_KEYS:
        if k in options:
            parts.append(f"{k}={options[k]}")
    return ",".join(parts) or "default"


def _ablation_options(axis: str, value: Any) -> dict[str, Any]:
    if axis == "top_k":
        return {"top_k": int(value)}
    if axis == "gate":
        return {"gate": float(value)}
    if axis == "schedules":
        return {"schedule": str(value)}
    # weighting: "uniform", "linear[:w0]", "exp[:kappa]" (musicrfm.steering.plan.parse_layers syntax)
    from musicrfm.steering.plan import parse_layers

    parsed = parse_layers(str(value))
    parsed.pop("layers", None)
    if "weighting" not in parsed:
        raise ConfigError(f"ablation weighting {value!r}: use uniform, linear or exp:<kappa>")
    return parsed


def expand_conditions(cfg: SweepConfig) -> list[Condition]:
    """The grid: per concept x target x η0 the concept direction and each control; unsteered
    baselines; ablations; multi-direction combinations and crossfades."""
    base = dict(cfg.plan)
    base_variant = _variant_name(base)
    out: list[Condition] = []
    abl_coef = cfg.ablation_coef if cfg.ablation_coef is not None else max(cfg.coefs)
    for name, spec in cfg.concepts.items():
        for target in spec.targets:
            out.append(Condition("unsteered", "unsteered", name, target, 0.0, "unsteered"))
            for coef in cfg.coefs:
                for cond in ["concept", *cfg.controls]:
                    ctl = None if cond == "concept" else cond
                    out.append(
                        Condition(
                            "main",
                            cond,
                            name,
                            target,
                            coef,
                            base_variant,
                            [Term(name, target, coef, ctl, base)],
                        )
                    )
            for axis, values in cfg.ablations.items():
                for value in values:
                    opts = {**base, **_ablation_options(axis, value)}
                    kind = "schedule" if axis == "schedules" else axis
                    out.append(
                        Condition(
                            kind,
                            "concept",
                            name,
                            target,
                            abl_coef,
                            str(value),
                            [Term(name, target, abl_coef, None, opts)],
                        )
                    )
    for items in cfg.multi:
        terms = [
            Term(str(it["concept"]), str(it["target"]), float(it.get("coef", abl_coef)), None, base)
            for it in items
        ]
        variant = "+".join(f"{t.concept}:{t.target}@{t.coef:g}" for t in terms)
        for t in terms:
            out.append(Condition("multi", "concept", t.concept, t.target, t.coef, variant, terms))
    for cf in cfg.crossfades:
        coef = float(cf.get("coef", abl_coef))
        a, b, concept = str(cf["a"]), str(cf["b"]), str(cf["concept"])
        fall = {**base, "schedule": "linear-decay"}
        rise = {**base, "schedule": "linear-rise"}
        terms = [Term(concept, a, coef, None, fall), Term(concept, b, coef, None, rise)]
        out.append(Condition("crossfade", "concept", concept, b, coef, f"{a}->{b}", terms))
    return out
