"""Causal controls for steering experiments (SPEC §2.5).

A control replaces the *target class's* vectors of a `ConceptDirections` by something that is not
the concept direction, while keeping everything else that steering reads identical: the classes,
the layers, the per-layer scores (so top-K selection and linear/exponential layer weights are the
same), the eigenvalues, the number of components and the norm of every replaced vector. A plan
built from the control with the same target, coefficient, layer options, schedule and gate
therefore differs from the concept plan *only* in the direction added. Kinds:

``random``       seeded random Gaussian directions, one per layer (and component).
``flip``         the concept direction with its sign flipped (steers the other way).
``orthogonal``   a seeded random direction orthogonalised against the concept direction
                 (against all k components of the target class at that layer).
``other_class``  another class's direction in place of the target's (``other``; default: a
                 seeded random choice among the other classes).

Vectors of the other classes are left as they were. The control kind, its target, seed and
(for ``other_class``) the class used are recorded in ``meta["control"]``.
"""

from __future__ import annotations

import hashlib

import torch

from musicrfm.errors import ConfigError
from musicrfm.probes.directions import ConceptDirections

__all__ = ["CONTROL_KINDS", "control_directions", "control_meta"]

CONTROL_KINDS: tuple[str, ...] = ("random", "flip", "orthogonal", "other_class")


def _generator(seed: int, *salt: object) -> torch.Generator:
    """A CPU generator seeded from the seed and a stable salt (concept, target, kind)."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(str(s) for s in salt)).encode()).digest()
    g = torch.Generator(device="cpu")
    g.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return g


def _unit(v: torch.Tensor) -> torch.Tensor:
    n = v.norm(dim=-1, keepdim=True)
    return v / torch.where(n > 0, n, torch.ones_like(n))


def _random_like(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _orthogonal_to(target: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random unit vectors (L, k, d) orthogonal to the span of ``target[l]`` (k, d) per layer."""
    n_layers, k, d = target.shape
    out = torch.empty((n_layers, k, d), dtype=torch.float64)
    for li in range(n_layers):
        basis = target[li].to(torch.float64)
        basis = basis[basis.norm(dim=-1) > 0]
        q = None
        if basis.shape[0] and basis.shape[0] < d:
            q, _ = torch.linalg.qr(basis.T)  # (d, r) orthonormal basis of the concept span
        for c in range(k):
            for _ in range(8):
                r = _random_like((d,), g)
                if q is not None:
                    r = r - q @ (q.T @ r)
                elif basis.shape[0]:  # span fills the space: only avoid this component
                    u = _unit(basis[min(c, basis.shape[0] - 1)])
                    r = r - (r @ u) * u
                if r.norm() > 1e-8:
                    break
            out[li, c] = _unit(r)
    return out


def control_directions(
    cd: ConceptDirections,
    kind: str,
    *,
    target: str,
    seed: int = 0,
    other: str | None = None,
) -> ConceptDirections:
    """Directions for a causal control of steering ``cd`` toward class ``target``.

    Parameters
    ----------
    cd : the concept directions (vectors (L, C, k, d)).
    kind : one of `CONTROL_KINDS`: "random", "flip", "orthogonal", "other_class".
    target : the class the concept plan steers toward; only its vectors are replaced.
    seed : seeds the random directions (random, orthogonal) and the choice of ``other``.
    other : for "other_class", the class whose direction is used (default: a seeded choice).

    Returns
    -------
    ConceptDirections with the same concept, classes, layers, scores, eigenvalues and shape;
    the target class's vectors have the norms of the originals (per layer and component), and
    ``meta["control"]`` = {"kind", "target", "seed", "other"}.
    """
    if kind not in CONTROL_KINDS:
        raise ConfigError(f"unknown control kind {kind!r}; valid: {', '.join(CONTROL_KINDS)}")
    t = cd.class_index(target)
    orig = cd.vectors[:, t]  # (L, k, d)
    norms = orig.norm(dim=-1, keepdim=True).to(torch.float64)
    g = _generator(seed, cd.concept, target, kind)
    chosen = None
    if kind == "flip":
        new = -orig.to(torch.float64)
    elif kind == "random":
        new = _unit(_random_like(tuple(orig.shape), g)) * norms
    elif kind == "orthogonal":
        new = _orthogonal_to(orig, g) * norms
    else:  # other_class
        others = [c for c in cd.classes if c != cd.classes[t]]
        if not others:
            raise ConfigError(
                f"an other_class control needs a second class; concept {cd.concept!r} has only "
                f"{cd.classes}"
            )
        if other is None:
            chosen = others[int(torch.randint(len(others), (1,), generator=g))]
        else:
            if str(other) == cd.classes[t]:
                raise ConfigError(
                    f"other_class control: other={other!r} is the target itself; choose one of "
                    f"{', '.join(others)}"
                )
            chosen = cd.classes[cd.class_index(other)]
        src = cd.vectors[:, cd.class_index(chosen)].to(torch.float64)
        new = _unit(src) * norms
    vectors = cd.vectors.clone()
    vectors[:, t] = new.to(vectors.dtype)
    meta = dict(cd.meta)
    meta["control"] = {"kind": kind, "target": cd.classes[t], "seed": int(seed), "other": chosen}
    return ConceptDirections(
        concept=cd.concept,
        classes=list(cd.classes),
        vectors=vectors,
        scores=cd.scores.clone(),
        layers=list(cd.layers),
        eigenvalues=None if cd.eigenvalues is None else cd.eigenvalues.clone(),
        meta=meta,
    )


def control_meta(cd: ConceptDirections) -> dict | None:
    """The ``meta["control"]`` record of a control's directions (None for concept directions)."""
    rec = cd.meta.get("control")
    return dict(rec) if isinstance(rec, dict) else None
