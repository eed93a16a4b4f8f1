"""The ``torch.distributed`` collectives vqgen uses, in one place; each is a no-op outside a process group.

Quantizers synchronise codebook statistics with them (EMA counts, k-means, dead-code restarts), so that every
process holds the same codebook; the training engine can use the same helpers for agreed stop conditions and
rank-0-only writes. Metrics synchronise through torchmetrics' own ``dist_reduce_fx`` states instead.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_", "all_reduce_sum_", "broadcast_", "is_distributed", "is_main_process", "rank", "world_size"]

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX} if dist.is_available() else {}


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the group (0 outside ``torch.distributed``)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the group (1 outside ``torch.distributed``)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (the one process that writes files), and always outside ``torch.distributed``."""
    return rank() == 0


def all_reduce_(tensor: Tensor, op: str = "sum") -> Tensor:
    """Reduce ``tensor`` over all processes in place, by ``"sum"`` or ``"max"``, and return it (no-op outside
    ``torch.distributed``, or with one process)."""
    if op not in ("sum", "max"):
        raise ValueError(f"op must be 'sum' or 'max', got {op!r}")
    if is_distributed() and world_size() > 1:
        dist.all_reduce(tensor, op=_OPS[op])
    return tensor


def all_reduce_sum_(*tensors: Tensor) -> None:
    """Sum each tensor over all processes, in place (no-op outside ``torch.distributed``)."""
    for tensor in tensors:
        all_reduce_(tensor, "sum")


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` on every process with rank ``src``'s copy, in place (no-op when not distributed)."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
