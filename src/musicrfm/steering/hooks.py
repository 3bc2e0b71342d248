"""Steering plans and the hooks that apply them while MusicGen generates (SPEC §2.4).

At generation step t, for each decoder block ℓ (0-based, its output = the residual stream)::

    h'_{t,ℓ} = h_{t,ℓ} + Σ_m  η0_m · w_{ℓ,m} · φ_m(t) · ψ_m(t) · q_{ℓ,m}

* `SteeringDirection` (:mod:`musicrfm.steering.plan`) describes one term m:
  concept directions + class + component(s) (q), coefficient η0, layer selection/weighting (w),
  schedule φ, stochastic gate p (ψ), guidance rows.
* `SteeringPlan` (:mod:`musicrfm.steering.plan`) is a list of them plus the gate seed; it
  loads from / saves to TOML or JSON.
* `apply_plan(model, plan)` is a context manager installing forward hooks on the decoder blocks;
  they are always removed on exit (also on exceptions and Ctrl-C).

How a step is found: a pre-hook on block 0 reads the KV-cache length, so the positions fed by a
forward call are ``past .. past + S - 1`` and step t is decoder position t (t = 0: BOS). With the
cache each call feeds one position; the prefill (or a run with ``use_cache=False``) feeds several,
and each position gets its own φ(t)·ψ(t), so results do not depend on caching. Positions, not call
counts, are used because transformers 5.x MusicGen runs the prefill twice. The clock is the
position, so it advances on every step whether or not a gate fires. The (S, rows, layers, d)
addition is computed once per forward call by that pre-hook (for a one-position step: one matmul
into a preallocated buffer); each block's hook only adds its precomputed slice.

MusicGen-Melody prepends its condition (text + chroma) to the decoder sequence; a pre-hook on the
decoder reads its length so that step 0 is still the BOS position and the condition positions
get no addition. Blocks returning a tuple (Melody, older transformers) are handled like tensors.

Gate ψ_m(t): one Bernoulli(p_m) draw per step per direction, shared by all layers and batch rows,
from a NumPy generator seeded with (seed, m), so the same seed gives the same gate pattern.
Classifier-free guidance: MusicGen's generate stacks the conditional rows first and the
unconditional rows second; each direction's ``rows`` sets its gain on each half
(`ROW_GAINS`: "conditional" steers only the first half, "contrast" subtracts from the second).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrfm.errors import CompatibilityError, ConfigError, ModelError
from musicrfm.probes.directions import ConceptDirections
from musicrfm.steering.plan import ROW_GAINS, WEIGHTINGS, SteeringDirection, SteeringPlan
from musicrfm.steering.schedules import Schedule

log = logging.getLogger(__name__)


# ============================================================================ model access
@dataclass
class ModelView:
    """What steering needs from a model, for a `MusicGenAdapter` or a bare transformers model."""

    model: nn.Module
    layers: nn.ModuleList
    model_id: str | None
    num_layers: int
    hidden_size: int
    frame_rate: float | None
    num_codebooks: int | None
    adapter: Any = None
    decoder: nn.Module | None = None  # the module owning `layers` (embeddings, blocks, norm)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.layers.parameters()).dtype


def resolve_model(obj: Any) -> ModelView:
    """Accept a `musicrfm.models.MusicGenAdapter`, a `MusicgenForConditionalGeneration`
    (layers at ``model.decoder.model.decoder.layers``) or a `MusicgenForCausalLM`."""
    if isinstance(obj, ModelView):
        return obj
    if hasattr(obj, "decoder_layers") and hasattr(obj, "model"):
        layers = obj.decoder_layers
        frame_rate = getattr(obj, "frame_rate", None)
        return ModelView(
            model=obj.model,
            layers=layers,
            model_id=getattr(obj, "model_id", None),
            num_layers=int(getattr(obj, "num_layers", len(layers))),
            hidden_size=int(obj.hidden_size),
            frame_rate=float(frame_rate) if frame_rate else None,
            num_codebooks=getattr(obj, "num_codebooks", None),
            adapter=obj,
            decoder=getattr(obj, "decoder_base", None),
        )
    model = obj
    chains = (("decoder", "model", "decoder", "layers"), ("model", "decoder", "layers"))
    layers = decoder = None
    for chain in chains:
        cur, parent = model, None
        for name in chain:
            parent, cur = cur, getattr(cur, name, None)
            if cur is None:
                break
        if isinstance(cur, nn.ModuleList):
            layers, decoder = cur, parent
            break
    if layers is None:
        raise ModelError(
            f"cannot find MusicGen decoder layers in a {type(obj).__name__}; pass a "
            "MusicGenAdapter (musicrfm.models) or a MusicgenForConditionalGeneration"
        )
    cfg = getattr(model, "config", None)
    dec_cfg = getattr(cfg, "decoder", cfg)
    frame_rate = None
    audio_cfg = getattr(cfg, "audio_encoder", None)
    if audio_cfg is not None:
        with contextlib.suppress(Exception):
            frame_rate = float(audio_cfg.frame_rate)
    return ModelView(
        model=model,
        layers=layers,
        model_id=getattr(cfg, "_name_or_path", None) or getattr(model, "name_or_path", None),
        num_layers=len(layers),
        hidden_size=int(dec_cfg.hidden_size),
        frame_rate=frame_rate,
        num_codebooks=getattr(dec_cfg, "num_codebooks", None),
        decoder=decoder,
    )


# ============================================================================ compilation
@dataclass
class CompiledPlan:
    """A plan checked against one model, as arrays. m indexes directions, ℓ model layers.

    unit: (M, L, d) float64 unit directions q (zero where a direction has no vector).
    weights: (M, L) w_{ℓ,m}; coefs: (M,) η0; schedules: resolved (in steps);
    gate_p: (M,); row_gain: (M, 2) gains on the (conditional, unconditional) guidance rows;
    seed: gate seed.
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

    def schedule_values(self, n: int) -> np.ndarray:
        """(n, M) φ_m(t) for t = 0..n-1."""
        if not self.schedules:
            return np.zeros((n, 0))
        return np.stack([s.values(n) for s in self.schedules], axis=1)

    def gate_values(self, n: int) -> np.ndarray:
        """(n, M) ψ_m(t) ∈ {0, 1}: one Bernoulli(p_m) draw per step, seeded with (seed, m)."""
        cols = []
        for m, p in enumerate(self.gate_p):
            if p >= 1.0:
                cols.append(np.ones(n))
            else:
                rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, m])
                cols.append((rng.random(n) < p).astype(np.float64))
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))

    def factors(self, n: int) -> np.ndarray:
        """(n, M) φ_m(t)·ψ_m(t)."""
        return self.schedule_values(n) * self.gate_values(n)

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


def check_compatible(cd: ConceptDirections, view: ModelView, *, strict: bool = True) -> None:
    """Directions must come from this model: hidden size and layers always, and the model id
    too when ``strict`` (`ConceptDirections.check_compatible` does the comparison)."""
    try:
        cd.check_compatible(
            {
                "model_id": view.model_id if strict else None,
                "hidden_size": view.hidden_size,
                "num_layers": view.num_layers,
            }
        )
    except CompatibilityError as exc:
        if strict and "model_id" in str(exc):
            raise CompatibilityError(
                f"{exc} (if they really match, pass strict=False / --allow-model-mismatch)"
            ) from None
        raise


def _direction_arrays(
    d: SteeringDirection, view: ModelView, *, strict: bool
) -> tuple[torch.Tensor, np.ndarray]:
    cd = d.load()
    check_compatible(cd, view, strict=strict)
    if d.target is None:
        if len(cd.classes) != 1:
            raise ConfigError(
                f"directions {cd.concept!r} have classes {', '.join(cd.classes)}: name a target class"
            )
        ci = 0
    else:
        ci = cd.class_index(d.target)
    comps = d._components()
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
    q = v / norms
    L = view.num_layers
    avail = np.asarray(cd.layers)
    scores = cd.scores[:, ci].detach().to("cpu", torch.float64).numpy()
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
    selected = cand.copy()
    if d.top_k is not None:
        k = int(d.top_k)
        if k > int(cand.sum()):
            raise ConfigError(f"top_k={k} but only {int(cand.sum())} layers are available")
        key = np.where(np.isfinite(scores) & cand, scores, -np.inf)
        order = np.argsort(-key, kind="stable")[:k]
        selected = np.zeros_like(cand)
        selected[order] = True
    w_c = layer_weights(scores, selected, d.weighting, w0=d.w0, kappa=d.kappa)
    unit = torch.zeros(L, view.hidden_size, dtype=torch.float64)
    weights = np.zeros(L)
    unit[avail] = q
    weights[avail] = w_c
    return unit, weights


def compile_plan(
    plan: SteeringPlan | SteeringDirection | None,
    model: Any,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    strict: bool = True,
) -> CompiledPlan:
    """Validate a plan against a model and turn it into arrays. Every check happens here, before
    any hook is installed or any step generated."""
    view = resolve_model(model)
    if plan is None:
        plan = SteeringPlan()
    if isinstance(plan, SteeringDirection):
        plan = SteeringPlan([plan])
    units, weights, schedules = [], [], []
    for d in plan.directions:
        u, w = _direction_arrays(d, view, strict=strict)
        units.append(u)
        weights.append(w)
        sched = d.schedule.resolve(frame_rate=view.frame_rate, horizon=total_steps)
        sched.values(min(total_steps or 64, 100_000))  # validates callables/values early
        schedules.append(sched)
    L, H = view.num_layers, view.hidden_size
    gate_seed = plan.seed if plan.seed is not None else seed
    return CompiledPlan(
        unit=torch.stack(units) if units else torch.zeros(0, L, H, dtype=torch.float64),
        weights=np.stack(weights) if weights else np.zeros((0, L)),
        coefs=np.asarray([d.coef for d in plan.directions], dtype=np.float64),
        schedules=schedules,
        gate_p=np.asarray([d.gate for d in plan.directions], dtype=np.float64),
        row_gain=np.asarray([ROW_GAINS[d.rows] for d in plan.directions], dtype=np.float64).reshape(
            -1, 2
        ),
        seed=int(gate_seed),
        labels=[d.label() for d in plan.directions],
        num_layers=L,
        hidden_size=H,
    )


# ============================================================================ hooks
def _past_length(kwargs: Mapping[str, Any], args: tuple) -> int:
    for key in ("cache", "past_key_values", "past_key_value"):
        cache = kwargs.get(key)
        if cache is None:
            continue
        if hasattr(cache, "get_seq_length"):
            return int(cache.get_seq_length())
        if isinstance(cache, (tuple, list)) and cache and isinstance(cache[0], torch.Tensor):
            return int(cache[0].shape[-2])  # legacy (key, value, ...) tuple
    pos = kwargs.get("cache_position")
    if isinstance(pos, torch.Tensor) and pos.numel():
        return int(pos.reshape(-1)[0])
    return 0


class SteeringSession:
    """The hooks of one `apply_plan` block.

    ``steps`` lists the step of the first position of every forward call (negative for a melody
    condition prefix); ``layers`` the steered layers; ``compiled`` the plan as arrays.
    """

    def __init__(
        self, view: ModelView, compiled: CompiledPlan, *, cfg: bool, total_steps: int | None
    ):
        self.view = view
        self.compiled = compiled
        self.cfg = cfg
        self.steps: list[int] = []
        self.prefixed = view.decoder is not None and "Melody" in type(view.decoder).__name__
        self._prefix = 0
        self._handles: list[Any] = []
        act = compiled.active
        self.layers = compiled.steered_layers
        self._slot = {layer: j for j, layer in enumerate(self.layers)}
        device, self.dtype = view.device, view.dtype
        self.device = device
        idx = np.flatnonzero(act)
        self._idx = idx
        Ls, H = len(self.layers), compiled.hidden_size
        # W[m, j] = η0_m · w_{ℓj,m} · q_{ℓj,m}
        W = torch.zeros(len(idx), Ls, H, dtype=torch.float64)
        for a, m in enumerate(idx):
            w = torch.as_tensor(compiled.weights[m, self.layers], dtype=torch.float64)
            W[a] = compiled.coefs[m] * w[:, None] * compiled.unit[m, self.layers]
        self._W = W.reshape(len(idx), Ls * H).to(device=device, dtype=torch.float32)
        gain = compiled.row_gain[idx]  # (M_act, 2): conditional, unconditional rows
        if cfg:
            self.groups = 2 if (gain != 1.0).any() else 1
            self._mask = gain.T.copy() if self.groups == 2 else np.ones((1, len(idx)))
        else:
            # without guidance every row is conditional: a direction meant only for the
            # unconditional rows would silently do nothing, so say so instead
            unc = [compiled.labels[m] for m, g in zip(idx, gain) if g[0] == 0]
            if unc:
                raise ConfigError(
                    f"{', '.join(unc)}: rows 'unconditional'/'contrast' act through "
                    "classifier-free guidance; generate with guidance_scale > 1"
                )
            self.groups = 1
            self._mask = gain[:, :1].T.copy()
        self._table_len = 0
        self._table: torch.Tensor | None = None
        self._ensure_table(max(int(total_steps or 0), 256))
        self._buf = torch.zeros(self.groups, Ls * H, dtype=torch.float32, device=device)
        self._fast_b = -1
        self._adds: list[torch.Tensor | None] = [None] * Ls
        self._fast_adds: list[torch.Tensor] = []

    # ---------------------------------------------------------------- per step
    def _ensure_table(self, n: int) -> None:
        if n <= self._table_len:
            return
        n = max(n, 2 * self._table_len)
        f = self.compiled.factors(n)[:, self._idx]  # (n, M_act)
        table = f[:, None, :] * self._mask[None]  # (n, G, M_act)
        self._table = torch.as_tensor(table, dtype=torch.float32).to(self.device)
        self._table_len = n

    def _row_groups(self, batch: int) -> torch.Tensor:
        if batch % 2:
            raise ModelError(
                "row-specific steering expects classifier-free guidance rows (even batch), "
                f"got {batch}"
            )
        half = batch // 2
        return torch.tensor([0] * half + [1] * half, device=self.device)

    def _prepare_fast(self, batch: int) -> None:
        Ls, H = len(self.layers), self.compiled.hidden_size
        cast = self.dtype != torch.float32
        if self.groups == 1:
            base = self._buf.view(Ls, H)
            self._rows = None
        else:
            self._rows = self._row_groups(batch)
            self._rowbuf = torch.zeros(batch, Ls * H, dtype=torch.float32, device=self.device)
            base = self._rowbuf.view(batch, Ls, H)
        self._cast = torch.zeros_like(base, dtype=self.dtype) if cast else None
        src = self._cast if cast else base
        if self.groups == 1:
            self._fast_adds = [src[j] for j in range(Ls)]
        else:
            self._fast_adds = [src[:, j].unsqueeze(1) for j in range(Ls)]
        self._fast_b = batch

    def _prefix_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """MusicGen-Melody prepends its condition (text + chroma) to the decoder sequence when
        it is given (the first call of a generation): those positions are not music steps."""
        ehs = kwargs.get("encoder_hidden_states")
        if ehs is None and len(args) > 2:
            ehs = args[2]
        if isinstance(ehs, torch.Tensor):
            self._prefix = int(ehs.shape[1])

    def _pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs.get("hidden_states")
        batch, seq = int(hidden.shape[0]), int(hidden.shape[1])
        t0 = _past_length(kwargs, args) - self._prefix
        self.steps.append(t0)
        self._ensure_table(t0 + seq)
        assert self._table is not None
        if seq == 1 and t0 >= 0:
            if batch != self._fast_b:
                self._prepare_fast(batch)
            torch.mm(self._table[t0], self._W, out=self._buf)
            if self._rows is not None:
                torch.index_select(self._buf, 0, self._rows, out=self._rowbuf)
            if self._cast is not None:
                src = self._rowbuf if self._rows is not None else self._buf
                self._cast.copy_(src.view_as(self._cast))
            self._adds = self._fast_adds  # type: ignore[assignment]
            return
        # several positions (prefill, or no KV cache): one addition per position; positions
        # before step 0 (a melody condition prefix) get none
        Ls, H = len(self.layers), self.compiled.hidden_size
        c = self._table[max(t0, 0) : max(t0 + seq, 0)]  # (S', G, M)
        if t0 < 0:
            c = torch.cat([c.new_zeros(min(-t0, seq), *c.shape[1:]), c])
        add = torch.einsum("sgm,mx->gsx", c, self._W).reshape(self.groups, seq, Ls, H)
        add = add[self._row_groups(batch)] if self.groups == 2 else add[0]
        add = add.to(self.dtype)  # (B, S, Ls, H) or (S, Ls, H)
        self._adds = [add[..., j, :] for j in range(Ls)]

    def _make_hook(self, j: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> Any:
            add = self._adds[j]
            if add is None:
                return None
            if isinstance(output, torch.Tensor):
                return output + add
            if isinstance(output, tuple):
                return (output[0] + add, *output[1:])
            if isinstance(output, list):
                return [output[0] + add, *output[1:]]
            raise ModelError(f"decoder layer {self.layers[j]} returned a {type(output).__name__}")

        return hook

    # ---------------------------------------------------------------- install / remove
    def install(self) -> None:
        if not self.layers:
            return
        try:
            if self.prefixed:
                self._handles.append(
                    self.view.decoder.register_forward_pre_hook(self._prefix_hook, with_kwargs=True)
                )
            self._handles.append(
                self.view.layers[0].register_forward_pre_hook(self._pre_hook, with_kwargs=True)
            )
            for j, layer in enumerate(self.layers):
                self._handles.append(
                    self.view.layers[layer].register_forward_hook(self._make_hook(j))
                )
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()
        self._adds = [None] * len(self.layers)


def _infer_cfg(view: ModelView) -> bool:
    gc = getattr(view.model, "generation_config", None)
    g = getattr(gc, "guidance_scale", None)
    return g is not None and g > 1


@contextlib.contextmanager
def apply_plan(
    model: Any,
    plan: SteeringPlan | SteeringDirection | None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    cfg: bool | None = None,
    strict: bool = True,
) -> Iterator[SteeringSession]:
    """Steer `model` (a MusicGenAdapter or a transformers MusicGen) inside a ``with`` block.

    seed: gate seed unless the plan sets one. total_steps: the generation length in steps (the
    horizon for schedules without a duration; default 1500). cfg: whether the batch holds
    classifier-free-guidance rows (conditional first half, unconditional second half); default:
    the model's generation_config.guidance_scale > 1. strict: also require the directions'
    model id to match. An empty plan, or one whose coefficients are all 0, installs no hook.
    """
    view = resolve_model(model)
    compiled = compile_plan(plan, view, seed=seed, total_steps=total_steps, strict=strict)
    session = SteeringSession(
        view, compiled, cfg=_infer_cfg(view) if cfg is None else bool(cfg), total_steps=total_steps
    )
    if session.layers:
        log.debug("steering layers %s with %d direction(s)", session.layers, len(session._idx))
    session.install()
    try:
        yield session
    finally:
        session.remove()
