"""Kernel maths of the RFM: distances under a metric M, the Laplace-family kernel, closed-form
predictor gradients, the AGOP, and the kernel ridge solve (see ``SPEC.md`` section 2.2).

Plain functions on tensors, free of any model state, so that they can be checked one by one
(against autograd, against ``xrfm``) and shared between a fit's iterations and between
hyper-parameter draws. The model that strings them together is :class:`musicrfm.probes.rfm.RFM`.

Numerics: distances and gradients use the inputs' dtype (float32 in the RFM) on data centred by
the training mean; the linear solve is done in ``solve_dtype`` (float64) with a Cholesky
factorisation, adding jitter and finally falling back to an eigen-solve when the system is
ill-conditioned.
"""

from __future__ import annotations

import logging
from typing import Protocol

import torch

log = logging.getLogger(__name__)

_EPS_DIST = 1e-10
_MAX_EXPONENT = 60.0


class KernelParams(Protocol):
    """What the kernel maths reads of the hyper-parameters (``RFMParams`` has these fields)."""

    @property
    def bandwidth(self) -> float: ...  # L

    @property
    def exponent(self) -> float: ...  # q

    @property
    def norm_p(self) -> float: ...  # p


def sqrt_psd(M: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a PSD matrix (negative eigenvalues clipped)."""
    vals, vecs = torch.linalg.eigh(M.double())
    vals = vals.clamp(min=0).sqrt()
    return ((vecs * vals) @ vecs.T).to(M.dtype)


def distances(
    x: torch.Tensor,
    z: torch.Tensor,
    M: torch.Tensor | None = None,
    *,
    norm_p: float = 2.0,
    sqrtM: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """Matrix of ||x_i - z_j||_M (p=2) or ||S(x_i - z_j)||_p with S = sqrt(M) (p != 2).

    ``M=None`` is the identity. ``symmetric=True`` (x is z) forces an exact zero diagonal.
    """
    if norm_p == 2.0:
        xm = x if M is None else x @ M
        zm = z if M is None else (xm if symmetric else z @ M)
        sx = (xm * x).sum(-1)
        sz = sx if symmetric else (zm * z).sum(-1)
        d2 = sx[:, None] + sz[None, :] - 2.0 * (xm @ z.T)
        d2.clamp_(min=0)
        if symmetric:
            d2.fill_diagonal_(0)
        return d2.sqrt_()
    if M is not None and sqrtM is None:
        sqrtM = sqrt_psd(M)
    xs = x if sqrtM is None else x @ sqrtM
    zs = xs if symmetric else (z if sqrtM is None else z @ sqrtM)
    out = torch.cdist(xs, zs, p=norm_p)
    if symmetric:
        out.fill_diagonal_(0)
    return out


def kernel_from_distances(D: torch.Tensor, bandwidth: float, exponent: float) -> torch.Tensor:
    """exp(-D^q / L^q), elementwise; values below exp(-60) are set to exactly 0.

    (Tiny kernel values would otherwise become subnormal floats downstream, which makes CPU
    matrix products tens of times slower; exp(-60) ~ 1e-26 is far below any visible effect.)
    """
    E = (D / bandwidth) ** exponent
    return torch.where(
        E < _MAX_EXPONENT, torch.exp(-E), torch.zeros((), dtype=E.dtype, device=E.device)
    )


def predictor_gradients(
    x: torch.Tensor,
    z: torch.Tensor,
    alpha: torch.Tensor,
    M: torch.Tensor | None,
    params: KernelParams,
    *,
    D: torch.Tensor | None = None,
    sqrtM: torch.Tensor | None = None,
) -> torch.Tensor:
    """Closed-form gradients of f(z) = sum_i alpha_i K_M(x_i, z) at the rows of z.

    x: (n, d) centres, z: (m, d) points, alpha: (n, c). ``D`` (n, m) may pass precomputed
    distances. Returns (c, m, d). Terms with ||z - x_i|| below 1e-10 are zeroed (as in xrfm).
    """
    L, q, p = params.bandwidth, params.exponent, params.norm_p
    if D is None:
        D = distances(x, z, M, norm_p=p, sqrtM=sqrtM)
    alpha = alpha.to(x.dtype)
    K = kernel_from_distances(D, L, q)
    mask = D >= _EPS_DIST
    if p == 2.0:
        # W_ij = -(q/L^q) K_ij D_ij^(q-2); grad_l(z_j) = M (s_lj z_j - sum_i alpha_il W_ij x_i)
        W = K * D.clamp(min=_EPS_DIST).pow(q - 2.0) * mask * (-q / L**q)
        s = alpha.T @ W  # (c, m)
        grads = []
        for lo in range(alpha.shape[1]):
            b = s[lo][:, None] * z - (W * alpha[:, lo : lo + 1]).T @ x
            grads.append(b if M is None else b @ M)
        return torch.stack(grads)
    # p != 2: d/dz ||S(z - x)||_p^q = q ||u||_p^(q-p) S (|u|^(p-1) sign u), u = S(z - x)
    if M is not None and sqrtM is None:
        sqrtM = sqrt_psd(M)
    xs = x if sqrtM is None else x @ sqrtM
    zs = z if sqrtM is None else z @ sqrtM
    coef = K * D.clamp(min=_EPS_DIST).pow(q - p) * mask * (-q / L**q)  # (n, m)
    c = alpha.shape[1]
    out = torch.empty(c, z.shape[0], x.shape[1], dtype=x.dtype, device=x.device)
    step = max(1, int(2**24 // max(1, x.shape[0] * x.shape[1])))
    for j0 in range(0, z.shape[0], step):
        u = zs[j0 : j0 + step, None, :] - xs[None, :, :]  # (b, n, d)
        g = u.abs().pow(p - 1) * u.sign()
        w = coef[:, j0 : j0 + step].T[None] * alpha.T[:, None, :]  # (c, b, n)
        out[:, j0 : j0 + step] = torch.einsum("cbn,bnd->cbd", w, g)
    if sqrtM is not None:
        out = out @ sqrtM
    return out


def agop_from_gradients(grads: torch.Tensor, center: bool = False) -> torch.Tensor:
    """sum over outputs and points of g g^T, up to a positive factor (the gradients are first
    divided by their largest magnitude to keep products out of the subnormal range; the RFM
    normalises M by its max entry anyway). Centring subtracts the mean over all rows (as xrfm)."""
    g = grads.reshape(-1, grads.shape[-1])
    if center:
        g = g - g.mean(dim=0, keepdim=True)
    scale = g.abs().max()
    if float(scale) > 0:
        g = g / scale
    return g.T @ g


def solve_krr(
    K: torch.Tensor, Y: torch.Tensor, reg: float, *, solve_dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, float]:
    """alpha = (K + reg I)^{-1} Y with Cholesky; jitter then eigh fallback. Returns (alpha, jitter)."""
    A = K.to(solve_dtype).clone()
    n = A.shape[0]
    A.diagonal().add_(reg)
    Yd = Y.to(solve_dtype)
    scale = float(A.diagonal().abs().mean()) or 1.0
    jitter = 0.0
    for k in range(4):
        Lc, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            # two triangular solves (much faster than cholesky_solve on CPU for few columns)
            tmp = torch.linalg.solve_triangular(Lc, Yd, upper=False)
            alpha = torch.linalg.solve_triangular(Lc.mT, tmp, upper=True)
            if bool(torch.isfinite(alpha).all()):
                return alpha, jitter
        add = scale * 10.0 ** (-8 + 2 * k)
        A.diagonal().add_(add)
        jitter += add
    log.warning("kernel system ill-conditioned (n=%d, reg=%g): using an eigen-solve", n, reg)
    vals, vecs = torch.linalg.eigh(A)
    floor = max(float(vals.max()) * 1e-10, 1e-12)
    vals = vals.clamp(min=floor)
    return vecs @ ((vecs.T @ Yd) / vals[:, None]), jitter
