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
    """True inside an initialised ``torch.distributed`` process group.

    Returns:
        Whether collectives reach other processes (or at least one: a group of one process counts).

    Examples:
        >>> from vqgen.distributed import is_distributed
        >>> is_distributed()                           # a plain process, not started by torchrun
        False
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the group (0 outside ``torch.distributed``).

    Returns:
        The rank, in ``[0, world_size())``.

    Examples:
        >>> from vqgen.distributed import rank
        >>> rank()
        0
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the group (1 outside ``torch.distributed``).

    Returns:
        The number of processes.

    Examples:
        >>> from vqgen.distributed import world_size
        >>> world_size()
        1
    """
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (the one process that writes files), and always outside ``torch.distributed``.

    Returns:
        Whether this process should write files and logs.

    Examples:
        >>> from vqgen.distributed import is_main_process
        >>> if is_main_process():
        ...     print("rank 0 writes")
        rank 0 writes
    """
    return rank() == 0


def all_reduce_(tensor: Tensor, op: str = "sum") -> Tensor:
    """Reduce ``tensor`` over all processes in place, by ``"sum"`` or ``"max"``, and return it (no-op outside
    ``torch.distributed``, or with one process).

    Every process must call it, with a tensor of the same shape.

    Args:
        tensor: reduced in place (on a device the process group's backend supports).
        op: ``"sum"`` or ``"max"``.

    Returns:
        ``tensor`` itself.

    Raises:
        ValueError: if ``op`` is neither.

    Examples:
        >>> import torch
        >>> from vqgen.distributed import all_reduce_
        >>> counts = torch.tensor([3.0, 0.0, 1.0])      # e.g. this process's code histogram
        >>> all_reduce_(counts, "sum")                  # one process: unchanged
        tensor([3., 0., 1.])
        >>> all_reduce_(counts, "mean")
        Traceback (most recent call last):
        ValueError: op must be 'sum' or 'max', got 'mean'
    """
    if op not in ("sum", "max"):
        raise ValueError(f"op must be 'sum' or 'max', got {op!r}")
    if is_distributed() and world_size() > 1:
        dist.all_reduce(tensor, op=_OPS[op])
    return tensor


def all_reduce_sum_(*tensors: Tensor) -> None:
    """Sum each tensor over all processes, in place (no-op outside ``torch.distributed``).

    Args:
        *tensors: each summed in place; every process passes the same number, of the same shapes.

    Examples:
        >>> import torch
        >>> from vqgen.distributed import all_reduce_sum_
        >>> counts, sums = torch.ones(4), torch.zeros(4, 2)
        >>> all_reduce_sum_(counts, sums)                # as the EMA quantizer syncs its statistics
        >>> counts
        tensor([1., 1., 1., 1.])
    """
    for tensor in tensors:
        all_reduce_(tensor, "sum")


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` on every process with rank ``src``'s copy, in place (no-op when not distributed).

    Args:
        tensor: overwritten in place (sent, on rank ``src``).
        src: the rank whose copy every process gets.

    Returns:
        ``tensor`` itself.

    Examples:
        >>> import torch
        >>> from vqgen.distributed import broadcast_
        >>> broadcast_(torch.tensor([0.5, 2.0]))          # e.g. restart vectors drawn on rank 0
        tensor([0.5000, 2.0000])
    """
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
