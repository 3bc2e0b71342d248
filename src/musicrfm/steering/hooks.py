"""Steering plans and the hooks that apply them while MusicGen generates (SPEC §2.4).

At generation step t, for each decoder block ℓ (0-based, its output = the residual stream)::

    h'_{t,ℓ} = h_{t,ℓ} + Σ_m  η0_m · w_{ℓ,m} · φ_m(t) · ψ_m(t) · q_{ℓ,m}

* `SteeringDirection` (:mod:`musicrfm.steering.plan`) describes one term m:
  concept directions + class + component(s) (q), coefficient η0, layer selection/weighting (w),
  schedule φ, stochastic gate p (ψ), guidance rows.
* `SteeringPlan` (:mod:`musicrfm.steering.plan`) is a list of them plus the gate seed; it
  loads from / saves to TOML or JSON.
* `compile_plan` (:mod:`musicrfm.steering.compile`) checks a plan against a model and turns it
  into arrays, a `CompiledPlan`.
* `apply_plan(model, plan)` is a context manager installing forward hooks on the decoder blocks
  of a `musicrfm.models.adapter.ModelAdapter`; they are always removed on exit (also on
  exceptions and Ctrl-C). It takes a plan (compiled on the spot) or a `CompiledPlan`.

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

Gate ψ_m(t): one Bernoulli(p_m) draw per step per direction, shared by all layers, from a NumPy
generator seeded with (seed, m), so the same seed gives the same gate pattern. A plan with a gate
seed per clip (`CompiledPlan.with_seeds`, as `generate` batches seeds) gives each clip of the
batch, and its guidance twin (rows i and i + B/2), the mask it gets alone: the hits of a gated
batch are then independent clip to clip. Only when some steering direction has 0 < p < 1 and the
seeds differ does the table get a row per batch row; otherwise one table serves every row.
Classifier-free guidance: MusicGen's generate stacks the conditional rows first and the
unconditional rows second; each direction's ``rows`` sets its gain on each half
(`ROW_GAINS`: "conditional" steers only the first half, "contrast" subtracts from the second).

Some codebooks only (`SteeringPlan.codebooks`): a pre-hook on the decoder with its LM heads
doubles every batch input of each call (rows as generate sends them, then an unsteered copy;
the KV cache grows to match, so each copy keeps its own), the block hooks add to the first half
only, and a forward hook takes the listed codebooks' logits from the steered rows and the rest
from the copy. Both copies read the same sampled codes.

Live values (:mod:`musicrfm.steering.live`): with a `LiveControl` (given, or attached by a
``live_control`` block around `generate`), the block-0 pre-hook first reads it at every forward
call: a stop request raises `GenerationStopped`, a changed coefficient rebuilds that direction's
row of the addition from this step on, and a token tap sees the decoder input ids. Directions
with coefficient 0 then stay in the sum (as exact zeros) so that a knob can raise them. Without
a control none of this runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from musicrfm.errors import ConfigError, ModelError
from musicrfm.models.adapter import ModelAdapter
from musicrfm.steering.adapters import as_adapter
from musicrfm.steering.compile import CompiledPlan, compile_plan
from musicrfm.steering.live import GenerationStopped, LiveControl, current_live
from musicrfm.steering.plan import SteeringDirection, SteeringPlan

log = logging.getLogger(__name__)


# ============================================================================ hooks
# the decoder inputs with a batch dimension that the unsteered copy repeats
_BATCHED_INPUTS = ("input_ids", "attention_mask", "encoder_hidden_states", "encoder_attention_mask")


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
    condition prefix); ``layers`` the steered layers; ``compiled`` the plan as arrays; ``live``
    the `LiveControl` read at every forward call (None: none).
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        compiled: CompiledPlan,
        *,
        cfg: bool,
        total_steps: int | None,
        live: LiveControl | None = None,
    ):
        self.adapter = adapter
        self.compiled = compiled
        self.cfg = cfg
        self.live = live
        self.steps: list[int] = []
        self.split = tuple(compiled.codebooks)  # () : every codebook steered, one pass
        self.prefixed = "Melody" in type(adapter.decoder_base).__name__
        self._prefix = 0
        self._handles: list[Any] = []
        if live is None:
            act = compiled.active
            self.layers = compiled.steered_layers
        else:  # a knob may raise a direction that starts at 0: keep every one that can steer
            act = (np.abs(compiled.weights).sum(1) > 0) & (compiled.gate_p > 0)
            self.layers = [int(i) for i in np.flatnonzero(np.abs(compiled.weights[act]).sum(0))]
        self._slot = {layer: j for j, layer in enumerate(self.layers)}
        device, self.dtype = adapter.device, adapter.dtype
        self.device = device
        idx = np.flatnonzero(act)
        self._idx = idx
        self._row_of = {int(m): a for a, m in enumerate(idx)}
        self._coefs = compiled.coefs[idx].copy()
        Ls, H = len(self.layers), compiled.hidden_size
        # W[m, j] = η0_m · w_{ℓj,m} · q_{ℓj,m}
        W = torch.zeros(len(idx), Ls, H, dtype=torch.float64)
        for a, m in enumerate(idx):
            W[a] = self._row(m, compiled.coefs[m])
        self._W = W.reshape(len(idx), Ls * H).to(device=device, dtype=torch.float32)
        gain = compiled.row_gain[idx]  # (M_act, 2): conditional, unconditional rows
        self._clips = compiled.per_clip_seeds(idx)  # None: one gate mask for every row
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
        if self._clips is not None:
            self._mask = self._per_row_mask(cfg)
            self.groups = len(self._mask)
        self._table_len = 0
        self._table: torch.Tensor | None = None
        self._ensure_table(max(int(total_steps or 0), 256))
        self._buf = torch.zeros(self.groups, Ls * H, dtype=torch.float32, device=device)
        self._fast_b = -1
        self._adds: list[torch.Tensor | None] = [None] * Ls
        self._fast_adds: list[torch.Tensor] = []

    def _per_row_mask(self, cfg: bool) -> np.ndarray:
        """(rows, M_act) row gains for a table with a row per batch row: the clips, then (with
        guidance) their unconditional twins."""
        assert self._clips is not None
        half = np.repeat(self._mask, len(self._clips), axis=0)  # (G·C, M_act)
        return np.concatenate([half, half]) if cfg and len(self._mask) == 1 else half

    def _row(self, m: int, coef: np.float64) -> torch.Tensor:
        """(Ls, H) float64 η0 · w_ℓ · q_ℓ of direction m over the steered layers."""
        w = torch.as_tensor(self.compiled.weights[m, self.layers], dtype=torch.float64)
        return coef * w[:, None] * self.compiled.unit[m, self.layers]

    # ---------------------------------------------------------------- live values
    def _poll_live(self, step: int) -> None:
        """Stop, or apply the coefficients changed since the last forward call (from ``step``)."""
        live = self.live
        assert live is not None
        live.step = step
        if live.stopped:
            raise GenerationStopped(step)
        for m, value in live.take(step).items():
            a = self._row_of.get(m)
            if a is None:
                raise ConfigError(
                    f"live coefficient for direction {m}: this plan steers directions "
                    f"{sorted(self._row_of)}"
                )
            if value == self._coefs[a]:
                continue
            self._coefs[a] = value
            self._W[a] = self._row(m, np.float64(value)).reshape(-1).to(self._W.dtype)
            live.record(step, m, value)
        if live.on_step is not None:
            live.on_step(step)

    def _tap_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Hand the decoder input ids of this call to the live control's token tap."""
        ids = kwargs.get("input_ids")
        if ids is None and args:
            ids = args[0]
        if isinstance(ids, torch.Tensor) and self.live is not None and self.live.on_tokens:
            if self.split:  # the unsteered copy's rows repeat the same codes
                ids = ids[: ids.shape[0] // 2]
            start = max(_past_length(kwargs, args) - self._prefix, 0)
            self.live.on_tokens(start, ids.detach().cpu().numpy())

    # ---------------------------------------------------------------- per step
    def row_factors(self, batch: int) -> np.ndarray:
        """(steps, batch, M_act) φ·ψ·row gain of each steered direction that each row of a
        ``batch``-row forward call gets at each step: what the hooks apply, for checking."""
        assert self._table is not None
        table = self._table.cpu().numpy()
        if self.groups == 1:
            return np.repeat(table, batch, axis=1)
        rows = self._row_groups(batch)
        return table if rows is None else table[:, rows.cpu().numpy()]

    def _ensure_table(self, n: int) -> None:
        if n <= self._table_len:
            return
        n = max(n, 2 * self._table_len)
        if self._clips is None:
            f = self.compiled.factors(n)[:, self._idx][:, None, :]  # (n, 1, M_act)
        else:  # each clip its own mask; rows i and i + C (its guidance twin) share it
            per = [self.compiled.factors(n, s)[:, self._idx] for s in self._clips]
            f = np.stack(per * (len(self._mask) // len(per)), axis=1)  # (n, rows, M_act)
        table = f * self._mask[None]  # (n, G, M_act)
        self._table = torch.as_tensor(table, dtype=torch.float32).to(self.device)
        self._table_len = n

    def _row_groups(self, batch: int) -> torch.Tensor | None:
        """The table row of each batch row (None: one table row per batch row, in order)."""
        if self._clips is not None:
            if batch != self.groups:
                raise ModelError(
                    f"the plan has gate seeds for {len(self._clips)} clips ({self.groups} rows "
                    f"with guidance twins), the batch has {batch} rows"
                )
            return None
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
            self._rowbuf = (
                self._buf
                if self._rows is None
                else torch.zeros(batch, Ls * H, dtype=torch.float32, device=self.device)
            )
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
        if self.split:
            batch //= 2  # the second half is the unsteered copy
        t0 = _past_length(kwargs, args) - self._prefix
        self.steps.append(t0)
        if self.live is not None:
            self._poll_live(max(t0, 0))
            if not self.layers:
                return
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
        if self.groups == 1:
            add = add[0]
        else:
            rows = self._row_groups(batch)
            add = add if rows is None else add[rows]
        add = add.to(self.dtype)  # (B, S, Ls, H) or (S, Ls, H)
        self._adds = [add[..., j, :] for j in range(Ls)]

    def _make_hook(self, j: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> Any:
            add = self._adds[j]
            if add is None:
                return None
            if self.split:
                h = output if isinstance(output, torch.Tensor) else output[0]
                half = h.shape[0] // 2
                h = torch.cat([h[:half] + add, h[half:]])
                if isinstance(output, torch.Tensor):
                    return h
                return (h, *output[1:]) if isinstance(output, tuple) else [h, *output[1:]]
            if isinstance(output, torch.Tensor):
                return output + add
            if isinstance(output, tuple):
                return (output[0] + add, *output[1:])
            if isinstance(output, list):
                return [output[0] + add, *output[1:]]
            raise ModelError(f"decoder layer {self.layers[j]} returned a {type(output).__name__}")

        return hook

    # ---------------------------------------------------------------- some codebooks only
    def _split_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple:
        if args:
            raise ModelError("steering some codebooks only expects the decoder's keyword inputs")
        for name in _BATCHED_INPUTS:
            value = kwargs.get(name)
            if isinstance(value, torch.Tensor):
                kwargs[name] = torch.cat([value, value])
        return args, kwargs

    def _merge_logits(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> Any:
        logits = out.logits  # (2B·K, S, V): the steered rows first
        k = self.adapter.num_codebooks
        rows = logits.shape[0] // k
        per = logits.reshape(rows, k, *logits.shape[1:])
        merged = per[rows // 2 :].clone()
        keep = list(self.split)
        merged[:, keep] = per[: rows // 2, keep]
        out.logits = merged.reshape(-1, *logits.shape[1:])
        return out

    # ---------------------------------------------------------------- install / remove
    def install(self) -> None:
        if not self.layers and self.live is None:
            return
        try:
            if self.split:
                lm = self.adapter.decoder_lm
                self._handles.append(
                    lm.register_forward_pre_hook(self._split_inputs, with_kwargs=True)
                )
                self._handles.append(lm.register_forward_hook(self._merge_logits, with_kwargs=True))
            if self.prefixed:
                self._handles.append(
                    self.adapter.decoder_base.register_forward_pre_hook(
                        self._prefix_hook, with_kwargs=True
                    )
                )
            if self.live is not None and self.live.on_tokens is not None:
                self._handles.append(
                    self.adapter.decoder_base.register_forward_pre_hook(
                        self._tap_hook, with_kwargs=True
                    )
                )
            self._handles.append(
                self.adapter.decoder_layers[0].register_forward_pre_hook(
                    self._pre_hook, with_kwargs=True
                )
            )
            for j, layer in enumerate(self.layers):
                self._handles.append(
                    self.adapter.decoder_layers[layer].register_forward_hook(self._make_hook(j))
                )
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()
        self._adds = [None] * len(self.layers)


def _infer_cfg(adapter: ModelAdapter) -> bool:
    gc = getattr(adapter.model, "generation_config", None)
    g = getattr(gc, "guidance_scale", None)
    return g is not None and g > 1


@contextlib.contextmanager
def apply_plan(
    model: ModelAdapter | nn.Module,
    plan: SteeringPlan | SteeringDirection | CompiledPlan | None,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    cfg: bool | None = None,
    strict: bool = True,
    live: LiveControl | None = None,
) -> Iterator[SteeringSession]:
    """Steer `model` (a ModelAdapter, or a bare transformers MusicGen) inside a ``with`` block.

    plan: a plan, compiled here with ``seed`` and ``strict``, or a `CompiledPlan` used as it is
    (it already holds its gate seed, or one per clip: `CompiledPlan.with_seeds`). seed: gate
    seed unless the plan sets one. total_steps: the generation length in steps (the horizon for
    schedules without a duration; default 1500). cfg: whether the batch holds
    classifier-free-guidance rows (conditional first half, unconditional second half); default:
    the model's generation_config.guidance_scale > 1. strict: also require the directions'
    model id to match. live: a `LiveControl` read at every step (default: the one a
    ``live_control`` block attached, if any). An empty plan, or one whose coefficients are all
    0, installs no hook unless there is a live control.
    """
    adapter = as_adapter(model)
    if isinstance(plan, CompiledPlan):
        compiled = plan
        if (compiled.num_layers, compiled.hidden_size) != (adapter.num_layers, adapter.hidden_size):
            raise ConfigError(
                f"this plan was compiled for {compiled.num_layers} layers of width "
                f"{compiled.hidden_size}; the model has {adapter.num_layers} of "
                f"{adapter.hidden_size}"
            )
    else:
        compiled = compile_plan(plan, adapter, seed=seed, total_steps=total_steps, strict=strict)
    if cfg is None:
        cfg = _infer_cfg(adapter)
    if live is None:
        live = current_live()
    session = SteeringSession(adapter, compiled, cfg=bool(cfg), total_steps=total_steps, live=live)
    if session.layers:
        log.debug("steering layers %s with %d direction(s)", session.layers, len(session._idx))
    session.install()
    try:
        yield session
    finally:
        session.remove()
