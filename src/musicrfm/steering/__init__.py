"""Stage 5, steering: schedules, plans, their compilation, the hooks that apply them, generation.

- :mod:`.schedules` -- φ(t): the paper's schedules, keyframes, callables;
  :mod:`.schedule_registry` -- their kinds, one record each (`register_schedule` adds one);
- :mod:`.plan` -- `SteeringDirection` / `SteeringPlan` and their TOML/JSON files
  (:mod:`.toml_writer` writes the TOML);
- :mod:`.adapters` -- `as_adapter`: the `ModelAdapter` steering talks to (bare MusicGens wrapped);
- :mod:`.compile` -- `compile_plan`: a plan checked against a model, as arrays (`CompiledPlan`);
- :mod:`.hooks` -- `apply_plan`, the forward hooks that add the plan during generation;
- :mod:`.generation` -- `generate` with a plan and `GenerationOptions`, sidecars, `reproduce`.

Importing this package loads nothing heavy: the names below are imported on first use (PEP 562),
so that :mod:`.schedules` and :mod:`.plan`'s parsers serve the command line without torch.
"""

from __future__ import annotations

from musicrfm.lazy import lazy_exports

_LAZY = {
    "GenerationOptions": "musicrfm.steering.generation",
    "GenerationResult": "musicrfm.steering.generation",
    "generate": "musicrfm.steering.generation",
    "reproduce": "musicrfm.steering.generation",
    "apply_plan": "musicrfm.steering.hooks",
    "CompiledPlan": "musicrfm.steering.compile",
    "compile_plan": "musicrfm.steering.compile",
    "SteeringDirection": "musicrfm.steering.plan",
    "SteeringPlan": "musicrfm.steering.plan",
    "Schedule": "musicrfm.steering.schedules",
    "ScheduleKind": "musicrfm.steering.schedule_registry",
    "register_schedule": "musicrfm.steering.schedule_registry",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
