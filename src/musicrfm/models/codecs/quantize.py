"""Residual k-means quantisation, shared by the bundled models' codecs.

A frame's feature vector is coded by K codebooks in turn, each quantising what the previous ones
left (as EnCodec's residual vector quantiser does, but with k-means centroids fitted on the
training clips instead of learned end to end).
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def residual_quantize(features: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """(B, T, D) features, (K, size, D) codebooks -> (B, K, T) greedy residual codes (computed
    in float32 whatever the dtype the model was loaded in)."""
    residual = features.float()
    codebooks = codebooks.float()
    codes = []
    for book in codebooks:
        dist = (
            residual.pow(2).sum(-1, keepdim=True)
            - 2 * residual @ book.T
            + book.pow(2).sum(-1)[None, None, :]
        )
        idx = dist.argmin(-1)
        residual = residual - book[idx]
        codes.append(idx)
    return torch.stack(codes, dim=1)


def residual_dequantize(codes: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """(B, K', T) codes -> (B, T, D) summed float32 centroids of the first K' codebooks."""
    codebooks = codebooks.float()
    size = codebooks.shape[1]
    out = torch.zeros(codes.shape[0], codes.shape[-1], codebooks.shape[-1], device=codes.device)
    for k in range(codes.shape[1]):
        out = out + codebooks[k][codes[:, k].clamp(0, size - 1)]
    return out


def fit_residual_codebooks(
    x: torch.Tensor, num: int, size: int, *, iters: int, seed: int, max_points: int = 200_000
) -> tuple[torch.Tensor, list[float]]:
    """Residual k-means on (N, D) frames: (num, size, D) codebooks and residual MSE per stage."""
    gen = torch.Generator().manual_seed(seed)
    x = x.float()
    if x.shape[0] > max_points:
        x = x[torch.randperm(x.shape[0], generator=gen)[:max_points]]
    residual = x.clone()
    books, errors = [], []
    for k in range(num):
        book = kmeans(residual, size, iters=iters, generator=gen)
        books.append(book)
        residual = residual - book[_nearest(residual, book)]
        errors.append(float(residual.pow(2).mean()))
        log.info("codebook %d fitted: residual mse %.4f", k, errors[-1])
    return torch.stack(books), errors


def _nearest(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 32_768) -> torch.Tensor:
    c2 = centroids.pow(2).sum(-1)
    out = []
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk]
        out.append((c2[None] - 2 * part @ centroids.T).argmin(-1))
    return torch.cat(out)


def kmeans(
    x: torch.Tensor, k: int, *, iters: int = 25, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Lloyd's k-means with k-means++-style seeding on a subsample; empty clusters re-seeded."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} points, got {n}")
    # k-means++ seeding (greedy, on at most 20k points to stay fast).
    sub = x[torch.randperm(n, generator=generator)[: min(n, 20_000)]]
    centroids = torch.empty(k, x.shape[1])
    centroids[0] = sub[torch.randint(sub.shape[0], (1,), generator=generator)]
    d2 = (sub - centroids[0]).pow(2).sum(-1)
    for i in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / len(d2))
        centroids[i] = sub[torch.multinomial(probs, 1, generator=generator)]
        d2 = torch.minimum(d2, (sub - centroids[i]).pow(2).sum(-1))
    for _ in range(iters):
        idx = _nearest(x, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k).float()
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            centroids[empty] = x[torch.randint(n, (int(empty.sum()),), generator=generator)]
    return centroids
