"""Steer only some codebooks' predictions (session 22 experiment, issue 17 chord adherence).

Every decoder call runs twice in one batch: the rows as generate sends them (steered) and a copy
of them (unsteered). Each copy keeps its own KV cache rows. The logits of the codebooks in
``codebooks`` come from the steered rows, the others from the unsteered rows, so the timbre
codebooks (2-3 on the beat testbed) are predicted by the unsteered model from the music played so
far. Both copies read the same sampled codes. This costs one more decoder batch per step.

    with split_codebooks(adapter, [0, 1]):
        clips = generate(adapter, prompts, plan=plan, ...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from musicrfm.steering import hooks

BATCHED = ("input_ids", "attention_mask", "encoder_hidden_states", "encoder_attention_mask")


@contextlib.contextmanager
def split_codebooks(adapter, codebooks: Sequence[int]) -> Iterator[None]:
    lm = adapter.model.decoder  # MusicgenForCausalLM: the LM heads
    k = adapter.num_codebooks
    keep = torch.tensor(sorted(set(int(c) for c in codebooks)))
    if keep.numel() == 0 or int(keep.max()) >= k:
        raise ValueError(f"codebooks {list(codebooks)}: the model has {k}")

    def pre(module, args, kwargs):
        if args:
            raise RuntimeError("split_codebooks expects keyword arguments")
        for name in BATCHED:
            v = kwargs.get(name)
            if isinstance(v, torch.Tensor):
                kwargs[name] = torch.cat([v, v])
        return args, kwargs

    def post(module, args, kwargs, out):
        logits = out.logits  # (2B·K, S, V): steered rows first
        two_b = logits.shape[0] // k
        per = logits.reshape(two_b, k, *logits.shape[1:])
        steered, plain = per[: two_b // 2], per[two_b // 2 :]
        mixed = plain.clone()
        mixed[:, keep] = steered[:, keep]
        out.logits = mixed.reshape(-1, *logits.shape[1:])
        return out

    original = hooks.SteeringSession._make_hook

    def make_hook(self, j):
        def hook(module, args, output):
            add = self._adds[j]
            if add is None:
                return None
            if self.groups != 1:
                raise RuntimeError("split_codebooks handles one gate table for every row only")
            h = output[0] if isinstance(output, (tuple, list)) else output
            half = h.shape[0] // 2
            h = torch.cat([h[:half] + add, h[half:]])
            return (h, *output[1:]) if isinstance(output, (tuple, list)) else h

        return hook

    handles = [
        lm.register_forward_pre_hook(pre, with_kwargs=True),
        lm.register_forward_hook(post, with_kwargs=True),
    ]
    hooks.SteeringSession._make_hook = make_hook
    try:
        yield
    finally:
        hooks.SteeringSession._make_hook = original
        for h in handles:
            h.remove()
