"""Several processes, one result: the rank and world size a launcher set, and four collectives.

`accelerate launch --num_processes N -m musicrfm VERB ...` and `torchrun --nproc_per_node N -m
musicrfm VERB ...` start N copies of a verb with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``MASTER_ADDR``/``MASTER_PORT`` in the environment; :func:`world` reads them and joins the
``torch.distributed`` process group (gloo: only pickled CPU objects are exchanged, so it serves
CPUs, GPUs and nodes alike). Without those variables (or with ``WORLD_SIZE=1``) everything here is
the identity and torch.distributed is never touched, so one process behaves as before.

Extraction (clip batches), probe training ((layer, class) tasks) and sweeps (conditions that
share generated audio) cut their work with :meth:`World.owns`, compute their part, and merge
through rank 0 (:meth:`World.gather`, :meth:`World.broadcast`) or every rank
(:meth:`World.all_gather`) into exactly what one process computes. Work nested inside one rank's
part (a sweep's probe accuracy extracting its own clips) runs in :func:`local`, which makes
:func:`world` report a single process there.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from musicrfm.errors import ConfigError

# seconds one collective waits for the slowest rank (a rank can be busy this long on its share)
TIMEOUT_ENV = "MUSICRFM_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 4 * 3600.0

_local_depth = 0


@dataclass(frozen=True)
class World:
    """This process's place among those a launcher started (rank 0 of 1 when run alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes shared files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def owns(self, i: int) -> bool:
        """Whether item ``i`` of a list every rank holds in the same order is this rank's
        (round robin: item i goes to rank i mod size)."""
        return i % self.size == self.rank

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None on the others)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.size if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (what the others pass is ignored)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number (set by the launcher)") from None


def world() -> World:
    """The launcher's world, joined on first use; a single process inside :func:`local`."""
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1 or _local_depth:
        return World()
    rank = _env_int("RANK", 0)
    if not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={size}")
    _join(rank, size)
    return World(rank=rank, size=size, local_rank=_env_int("LOCAL_RANK", 0))


def _join(rank: int, size: int) -> None:
    """Join the gloo process group once per process (env:// rendezvous, as the launchers set)."""
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != size:
            raise ConfigError(
                f"torch.distributed was initialised with {dist.get_world_size()} processes, "
                f"the environment says WORLD_SIZE={size}"
            )
        return
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(
                f"WORLD_SIZE={size} but {name} is not set: start the processes with "
                "`accelerate launch` or `torchrun`, which set it"
            )
    seconds = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    dist.init_process_group(
        "gloo", init_method="env://", rank=rank, world_size=size, timeout=timedelta(seconds=seconds)
    )
    atexit.register(_leave)


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """Whether this process is rank 0 (or alone); reads the environment only, joins nothing."""
    return _local_depth > 0 or _env_int("RANK", 0) == 0 or _env_int("WORLD_SIZE", 1) <= 1


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Inside: :func:`world` is a single process (for work nested in one rank's share)."""
    global _local_depth
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1


def device_for(device: str) -> str:
    """``"cuda"`` means this rank's GPU (``cuda:LOCAL_RANK``) when several processes run on a
    node; any other device string is returned as given."""
    if device == "cuda" and _env_int("WORLD_SIZE", 1) > 1:
        return f"cuda:{_env_int('LOCAL_RANK', 0)}"
    return device


__all__ = ["World", "device_for", "is_main", "local", "world"]
