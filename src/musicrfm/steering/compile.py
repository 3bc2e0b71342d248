"""A steering plan checked against one model and turned into arrays (`compile_plan`).

Every check of a plan against a model (compatible directions, classes, components, layers,
top_k, schedule values; contradictory targets of one concept, `find_conflicts`, a warning)
happens here, before any hook is installed or any step generated.
The result, a `CompiledPlan`, is what the hooks (:mod:`musicrfm.steering.hooks`) apply; a
generation compiles its plan once and only changes the gate seeds from one batch to the next
(`CompiledPlan.with_seeds`: one per clip, so a clip's gate mask does not depend on its batch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from musicrfm.errors import CompatibilityError, ConfigError
from musicrfm.models.adapter import ModelAdapter
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.adapters import as_adapter
from musicrfm.steering.plan import ROW_GAINS, WEIGHTINGS, SteeringDirection, SteeringPlan
from musicrfm.steering.schedules import Schedule

log = logging.getLogger(__name__)


@dataclass
class CompiledPlan:
    """A plan checked against one model, as arrays. m indexes directions, ℓ model layers.

    unit: (M, L, d) float64 unit directions q (zero where a direction has no vector).
    weights: (M, L) w_{ℓ,m}; coefs: (M,) η0; schedules: resolved (in steps);
    gate_p: (M,); row_gain: (M, 2) gains on the (conditional, unconditional) guidance rows;
    seed: gate seed; clip_seeds: the gate seed of each clip of one batch, in row order (empty:
    every row uses ``seed``).
    """

    unit: torch.Tensor
    weights: np.ndarray
    coefs: np.ndarray
    schedules: list[Schedule]
    gate_p: np.ndarray
    row_gain: np.ndarray
    seed: int
    labels: list[str]
    num_layers: int
    hidden_size: int
    conflicts: tuple[str, ...] = ()
    """Contradictory targets of one concept at full strength at once (`find_conflicts`)."""
    clip_seeds: tuple[int, ...] = ()
    codebooks: tuple[int, ...] = ()
    """The codebooks whose predictions the steering reaches when not all (`SteeringPlan.codebooks`;
    empty: every codebook, one decoder pass)."""

    @property
    def num_directions(self) -> int:
        return len(self.labels)

    @property
    def active(self) -> np.ndarray:
        """(M,) directions that can add anything (non-zero η0, some weight, p > 0)."""
        return (self.coefs != 0) & (np.abs(self.weights).sum(1) > 0) & (self.gate_p > 0)

    @property
    def steered_layers(self) -> list[int]:
        act = self.active
        if not act.any():
            return []
        return [int(i) for i in np.flatnonzero(np.abs(self.weights[act]).sum(0) > 0)]

    def with_seed(self, seed: int) -> CompiledPlan:
        """The same plan with one gate seed for every row (the arrays are shared, not copied)."""
        return replace(self, seed=int(seed), clip_seeds=())

    def with_seeds(self, seeds: Sequence[int]) -> CompiledPlan:
        """The same plan with a gate seed per clip of a batch, in row order: each clip gets the
        gate mask it gets alone (``with_seed(seeds[i])``). ``seed`` becomes the first one."""
        clip_seeds = tuple(int(s) for s in seeds)
        if not clip_seeds:
            raise ConfigError("with_seeds needs at least one seed")
        return replace(self, seed=clip_seeds[0], clip_seeds=clip_seeds)

    def per_clip_seeds(self, directions: np.ndarray) -> tuple[int, ...] | None:
        """The clips' gate seeds when the rows of a batch need masks of their own: some of
        ``directions`` (indices) has a gate 0 < p < 1 and the clips' seeds differ; else None
        (one table serves every row: the cheap path)."""
        p = self.gate_p[np.asarray(directions, dtype=int)]
        if len(set(self.clip_seeds)) < 2 or not ((p > 0) & (p < 1)).any():
            return None
        return self.clip_seeds

    def schedule_values(self, n: int) -> np.ndarray:
        """(n, M) φ_m(t) for t = 0..n-1."""
        if not self.schedules:
            return np.zeros((n, 0))
        return np.stack([s.values(n) for s in self.schedules], axis=1)

    def gate_values(self, n: int, seed: int | None = None) -> np.ndarray:
        """(n, M) ψ_m(t) ∈ {0, 1}: one Bernoulli(p_m) draw per step, seeded with (seed, m)
        (``seed`` default: the plan's)."""
        seed = self.seed if seed is None else seed
        cols = []
        for m, p in enumerate(self.gate_p):
            if p >= 1.0:
                cols.append(np.ones(n))
            else:
                rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, m])
                cols.append((rng.random(n) < p).astype(np.float64))
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def factors(self, n: int, seed: int | None = None) -> np.ndarray:
        """(n, M) φ_m(t)·ψ_m(t), the gate drawn with ``seed`` (default: the plan's)."""
        return self.schedule_values(n) * self.gate_values(n, seed)

    def addition(self, step: int, layer: int, *, conditional: bool = True) -> torch.Tensor:
        """The exact vector added to `layer`'s output at `step` (float64), for checking."""
        f = self.factors(step + 1)[step]
        total = torch.zeros(self.hidden_size, dtype=torch.float64)
        for m in range(self.num_directions):
            gain = self.row_gain[m, 0 if conditional else 1]
            total += gain * self.coefs[m] * self.weights[m, layer] * f[m] * self.unit[m, layer]
        return total


def layer_weights(
    scores: np.ndarray,
    selected: np.ndarray,
    weighting: str,
    *,
    w0: float = 1.0,
    kappa: float = 0.95,
) -> np.ndarray:
    """w_ℓ for one direction: scores (n,), selected (n,) bool. ŝ = min-max over all n scores
    (NaN counts as the worst); uniform w0, linear w0·ŝ, exponential w0·ŝ^(1/κ); 0 if unselected."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if finite.any():
        lo, hi = s[finite].min(), s[finite].max()
        shat = np.where(finite, (s - lo) / (hi - lo) if hi > lo else 1.0, 0.0)
    else:
        shat = np.zeros_like(s)
    if weighting == "uniform":
        w = np.full_like(s, w0)
    elif weighting == "linear":
        w = w0 * shat
    elif weighting == "exponential":
        w = w0 * np.power(shat, 1.0 / kappa)
    else:
        raise ConfigError(f"unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    return np.where(selected, w, 0.0)


def check_compatible(cd: ConceptDirections, model: ModelAdapter, *, strict: bool = True) -> None:
    """Directions must come from this model: hidden size and layers always, and the model id
    too when ``strict`` (`ConceptDirections.check_compatible` does the comparison)."""
    try:
        cd.check_compatible(
            {
                "model_id": model.model_id if strict else None,
                "hidden_size": model.hidden_size,
                "num_layers": model.num_layers,
                "revision": getattr(model, "revision", None),
            }
        )
    except CompatibilityError as exc:
        if strict and "model_id" in str(exc):
            raise CompatibilityError(
                f"{exc} (if they really match, pass strict=False / --allow-model-mismatch)"
            ) from None
        raise


def _class_index(d: SteeringDirection, cd: ConceptDirections) -> int:
    if d.target is not None:
        return cd.class_index(d.target)
    if len(cd.classes) != 1:
        raise ConfigError(
            f"directions {cd.concept!r} have classes {', '.join(cd.classes)}: name a target class"
        )
    return 0


def _unit_vectors(d: SteeringDirection, cd: ConceptDirections, ci: int) -> torch.Tensor:
    """(Lc, d) float64: the direction's component mix at each of the directions' layers, unit."""
    comps = d.components()
    for k in comps:
        if k >= cd.num_components:
            raise ConfigError(
                f"component {k} out of range: directions {cd.concept!r} keep {cd.num_components}"
            )
    vecs = cd.vectors[:, ci].detach().to("cpu", torch.float64)  # (Lc, k, d)
    v = sum(w * vecs[:, k] for k, w in comps.items())
    norms = v.norm(dim=-1, keepdim=True)
    if (norms == 0).any() or not torch.isfinite(v).all():
        raise ConfigError(f"directions {cd.concept!r}/{d.target} have a zero or non-finite vector")
    return v / norms


def _selected_layers(
    d: SteeringDirection, cd: ConceptDirections, scores: np.ndarray, num_layers: int
) -> np.ndarray:
    """(Lc,) bool over the directions' layers: the explicit selection, then its top_k."""
    L = num_layers
    avail = np.asarray(cd.layers)
    if d.layers == "all":
        cand = np.ones(len(avail), dtype=bool)
    else:
        cand = np.zeros(len(avail), dtype=bool)
        for raw in d.layers:
            i = raw + L if raw < 0 else raw
            if not 0 <= i < L:
                raise ConfigError(f"layer {raw} out of range for a {L}-layer model (0..{L - 1})")
            where = np.flatnonzero(avail == i)
            if not len(where):
                raise ConfigError(
                    f"directions {cd.concept!r} have no vector for layer {i} (they cover {cd.layers})"
                )
            cand[where[0]] = True
    if d.top_k is None:
        return cand.copy()
    k = int(d.top_k)
    if k > int(cand.sum()):
        raise ConfigError(f"top_k={k} but only {int(cand.sum())} layers are available")
    key = np.where(np.isfinite(scores) & cand, scores, -np.inf)
    order = np.argsort(-key, kind="stable")[:k]
    selected = np.zeros_like(cand)
    selected[order] = True
    return selected


def _direction_arrays(
    d: SteeringDirection, model: ModelAdapter, *, strict: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """(L, d) unit vectors and (L,) weights of one direction over every model layer."""
    cd = d.load()
    check_compatible(cd, model, strict=strict)
    ci = _class_index(d, cd)
    q = _unit_vectors(d, cd, ci)
    scores = cd.scores[:, ci].detach().to("cpu", torch.float64).numpy()
    selected = _selected_layers(d, cd, scores, model.num_layers)
    w_c = layer_weights(scores, selected, d.weighting, w0=d.w0, kappa=d.kappa)
    avail = np.asarray(cd.layers)
    unit = torch.zeros(model.num_layers, model.hidden_size, dtype=torch.float64)
    weights = np.zeros(model.num_layers)
    unit[avail] = q
    weights[avail] = w_c
    return unit, weights


def _check_not_silent(
    plan: SteeringPlan, silent: list[str], adapter: ModelAdapter, total_steps: int | None
) -> None:
    """A direction whose schedule is 0 at every step of the clip adds nothing: when no direction
    of the plan would add anything, generating would silently give the unsteered clip, so that
    is refused; when only some are silent (a note sequence cut by the clip's end), a warning."""
    if not silent:
        return
    clip = f"{total_steps} steps"
    if adapter.frame_rate:
        clip += f" = {(total_steps or 0) / float(adapter.frame_rate):.2f} s"
    text = (
        f"{'; '.join(silent)} {'is' if len(silent) == 1 else 'are'} 0 over the whole clip ({clip})"
    )
    steering = [d for d in plan.directions if d.coef != 0]
    if len(silent) == len(steering):
        raise ConfigError(
            f"nothing would be steered: {text}; start the schedule inside the clip or make the "
            "clip longer (and give a gate above 0)"
        )
    log.warning("%s: those directions add nothing", text)


FULL_STRENGTH = 0.99
"""φ at or above which a direction counts as fully on, for `find_conflicts`."""


def _target_key(d: SteeringDirection, cd: ConceptDirections) -> tuple[str, float] | None:
    """What a direction pulls its concept toward: (class, +1) for a class, ("value", ±1) for a
    regression by the sign it is applied with; None when it adds nothing or steers away."""
    sign = float(np.sign(d.coef * cd.sign_of(d.target)))
    if sign == 0:
        return None
    if cd.is_regression:
        return ("value", sign)
    if sign < 0:
        return None  # steering away from a class is no target
    return (cd.classes[_class_index(d, cd)], sign)


def find_conflicts(plan: SteeringPlan, *, frame_rate: float | None, total_steps: int) -> list[str]:
    """Pairs of directions of one concept (same concept and label column) with different
    targets -- two classes (notes C and G), or a regression pushed up and down at once -- that
    are both at full strength (φ >= `FULL_STRENGTH`) at some step of the clip, one line each.

    Why only a warning (`compile_plan` logs it, the compiled plan keeps it): several classes of
    one concept at once is a documented use (``--target C,E,G`` steers a triad with note
    directions), and a crossfade's overlap is never full on both sides; but a user who wrote C
    and G both fully on by mistake should hear that the probe is pulled two ways at once (what
    the clip then does is measured, not promised).
    """
    keys, phis = [], []
    for d in plan.directions:
        cd = d.load()
        keys.append(((cd.concept, str(cd.meta.get("label_column") or "")), _target_key(d, cd)))
        sched = d.schedule.resolve(frame_rate=frame_rate, horizon=total_steps)
        phis.append(sched.values(total_steps) >= FULL_STRENGTH)
    out = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            (ci, ti), (cj, tj) = keys[i], keys[j]
            if ci != cj or ti is None or tj is None or ti == tj:
                continue
            both = np.flatnonzero(phis[i] & phis[j])
            if not len(both):
                continue
            a, b = int(both[0]), int(both[-1])
            when = f"steps {a}-{b}"
            if frame_rate:
                when += f" ({a / frame_rate:.2f}-{(b + 1) / frame_rate:.2f} s)"
            how = "pushed up and down" if ti[0] == "value" else "pulled toward two classes"
            out.append(
                f"contradictory targets of one concept at once: {plan.directions[i].label()} and "
                f"{plan.directions[j].label()} are both at full strength over {len(both)} steps "
                f"of {when}: concept {ci[0]!r} is {how} (the clip may follow either, both or "
                "neither)"
            )
    return out


def compile_plan(
    plan: SteeringPlan | SteeringDirection | None,
    model: ModelAdapter | nn.Module,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    strict: bool = True,
) -> CompiledPlan:
    """Validate a plan against a model and turn it into arrays. Every check happens here, before
    any hook is installed or any step generated. seed: the gate seed unless the plan sets one."""
    adapter = as_adapter(model)
    if plan is None:
        plan = SteeringPlan()
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    units, weights, schedules, silent = [], [], [], []
    for d in plan.directions:
        u, w = _direction_arrays(d, adapter, strict=strict)
        units.append(u)
        weights.append(w)
        sched = d.schedule.resolve(frame_rate=adapter.frame_rate, horizon=total_steps)
        phi = sched.values(min(total_steps or 64, 100_000))  # validates callables/values early
        if total_steps and d.coef != 0 and not phi.any():
            silent.append(f"{d.label()} (schedule {d.schedule.describe()})")
        elif total_steps and d.coef != 0 and d.gate == 0:  # a gate that never opens
            silent.append(f"{d.label()} (gate probability 0)")
        schedules.append(sched)
    _check_not_silent(plan, silent, adapter, total_steps)
    conflicts = (
        find_conflicts(plan, frame_rate=adapter.frame_rate, total_steps=total_steps)
        if total_steps
        else []
    )
    for line in conflicts:
        log.warning("%s", line)
    L, H = adapter.num_layers, adapter.hidden_size
    gate_seed = plan.seed if plan.seed is not None else seed
    codebooks = _check_codebooks(plan.codebooks, adapter)
    return CompiledPlan(
        unit=torch.stack(units) if units else torch.zeros(0, L, H, dtype=torch.float64),
        weights=np.stack(weights) if weights else np.zeros((0, L)),
        coefs=np.asarray(
            [d.coef * d.load().sign_of(d.target) for d in plan.directions], dtype=np.float64
        ),
        schedules=schedules,
        gate_p=np.asarray([d.gate for d in plan.directions], dtype=np.float64),
        row_gain=np.asarray([ROW_GAINS[d.rows] for d in plan.directions], dtype=np.float64).reshape(
            -1, 2
        ),
        seed=int(gate_seed),
        labels=[d.label() for d in plan.directions],
        num_layers=L,
        hidden_size=H,
        conflicts=tuple(conflicts),
        codebooks=codebooks,
    )


def _check_codebooks(codebooks: list[int] | None, adapter: ModelAdapter) -> tuple[int, ...]:
    """The plan's codebooks checked against the model (empty: all of them, no second pass)."""
    if codebooks is None:
        return ()
    name, k = getattr(adapter, "model_id", "the model"), adapter.num_codebooks
    if max(codebooks) >= k:
        raise ConfigError(f"codebooks {codebooks}: {name} has {k} codebooks (0-{k - 1})")
    if len(codebooks) == k:
        return ()
    if getattr(adapter, "is_melody", False) or getattr(adapter, "decoder_lm", None) is None:
        raise ConfigError(
            f"{name}: steering some codebooks only needs a MusicGen decoder with its LM heads "
            "(not MusicGen-Melody); drop codebooks"
        )
    return tuple(codebooks)
