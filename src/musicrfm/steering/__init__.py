"""Stage 5, steering: schedules, plans, the hooks that apply them, and generation.

- :mod:`.schedules` -- φ(t): the paper's schedules, keyframes, callables (a registry of kinds);
- :mod:`.plan` -- `SteeringDirection` / `SteeringPlan` and their TOML/JSON files;
- :mod:`.hooks` -- `compile_plan` (a plan checked against a model, as arrays) and `apply_plan`;
- :mod:`.generation` -- `generate` with a plan, sidecars that reproduce a clip, `reproduce`.
"""

from __future__ import annotations

from musicrfm.steering.generation import GenerationResult, generate, reproduce
from musicrfm.steering.hooks import apply_plan, compile_plan
from musicrfm.steering.plan import SteeringDirection, SteeringPlan
from musicrfm.steering.schedules import Schedule

__all__ = [
    "GenerationResult",
    "Schedule",
    "SteeringDirection",
    "SteeringPlan",
    "apply_plan",
    "compile_plan",
    "generate",
    "reproduce",
]
