"""Running under ``torchrun``: the process group, this process's device, and agreement between ranks.

``torchrun --nproc_per_node N ...`` starts N processes with ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in their environment. [`setup`][setup] reads them, creates the default process group
(NCCL on CUDA, gloo on the CPU) unless the caller already did, and gives each process its device (``cuda:LOCAL_RANK``
on GPUs). Without those variables (or with ``WORLD_SIZE=1``) everything here is a no-op, so the same training code
runs alone and under torchrun. The collectives themselves are those of [`vqgen.distributed`][vqgen.distributed].
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..distributed import all_reduce_
from .runtime import resolve_device

__all__ = ["DistContext", "all_reduce_", "any_rank", "setup"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, training on ``device``."""

    rank: int
    world_size: int
    device: torch.device
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files, logs epochs and shows progress bars."""
        return self.rank == 0


def _check_backend(backend: str, device: torch.device) -> None:
    if backend == "nccl":
        if device.type != "cuda":
            raise ValueError(
                f"backend='nccl' needs CUDA devices, but training runs on {device}; use backend='gloo' (or None) on "
                "the CPU"
            )
        if not dist.is_nccl_available():
            raise ValueError("backend='nccl' was requested but this torch build has no NCCL; use backend='gloo'")
    elif backend != "gloo":
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")


def setup(device: str | torch.device | None = None, backend: str | None = None) -> DistContext:
    """The process group and device of this process (joining ``torchrun``'s group when launched by it).

    Args:
        device: the requested device (``"cpu"``, ``"cuda"``, ...); ``None`` picks CUDA when available. Under
            torchrun with CUDA, each process takes ``cuda:LOCAL_RANK``.
        backend: ``"gloo"`` or ``"nccl"``; ``None`` picks NCCL on CUDA and gloo on the CPU.

    Raises:
        ValueError: CUDA or NCCL requested where absent, or a process group with another backend already running.
    """
    resolved = resolve_device(device)
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        running = dist.get_backend()
        if backend is not None and backend != running:
            raise ValueError(f"backend={backend!r} was requested but the process group already runs {running!r}")
        backend = running
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if world > 1:
            if not dist.is_available():
                raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
            backend = backend or ("nccl" if resolved.type == "cuda" else "gloo")
            _check_backend(backend, resolved)
            if resolved.type == "cuda":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
            logger.info("joined the process group: rank %d of %d (%s)", rank, world, backend)
    if backend is not None:
        _check_backend(backend, resolved)
    if world > 1 and resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    return DistContext(rank=rank, world_size=world, device=resolved, backend=backend)


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise OR of ``flags`` over all processes, so that every rank takes the same decision."""
    tensor = torch.tensor([float(f) for f in flags], device=device)
    return [bool(v) for v in all_reduce_(tensor, "max").tolist()]
