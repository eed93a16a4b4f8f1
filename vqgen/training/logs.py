"""What a run shows while it trains: a log line per epoch, and TensorBoard scalars and images when asked for."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .config import TrainConfig
from .distributed import DistContext

if TYPE_CHECKING:
    from .task import Task

__all__ = ["log_epoch", "tensorboard_writer", "write_tensorboard"]

logger = logging.getLogger("vqgen.training.engine")  # the engine's logger: a run's lines come from one name


def log_epoch(name: str, record: dict[str, Any]) -> None:
    """One log line per epoch: ``prior epoch 3 (step 600, 41.2s) | train: ... | eval: ...``."""
    parts = [f"{name} epoch {record['epoch']} (step {record['step']}, {record['seconds']:.1f}s)"]
    for split in ("train", "eval"):
        if record.get(split):
            parts.append(f"{split}: " + ", ".join(f"{k} {v:.4g}" for k, v in record[split].items()))
    logger.info(" | ".join(parts))


def tensorboard_writer(config: TrainConfig, ctx: DistContext) -> Any:
    """A ``SummaryWriter`` into ``checkpoint_dir/tensorboard`` on rank 0 when ``config.tensorboard``, else ``None``."""
    if not (config.tensorboard and ctx.is_main and config.checkpoint_dir):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra is not installed
        logger.warning("tensorboard=True but the tensorboard package is missing: pip install 'vqgen[tensorboard]'")
        return None
    return SummaryWriter(str(Path(config.checkpoint_dir) / "tensorboard"))


def write_tensorboard(writer: Any, record: dict[str, Any], task: Task, model: nn.Module) -> None:
    """The epoch's scalars, and the task's images of ``model`` (if it draws any)."""
    for split in ("train", "eval"):
        for key, value in (record.get(split) or {}).items():
            writer.add_scalar(f"{split}/{key}", value, record["step"])
    images = task.images(model)
    if images is not None:
        from ..images import make_grid

        grid = make_grid(images.float().cpu(), ncols=8)  # (H, W) or (H, W, 3) uint8
        writer.add_image("images", grid, record["step"], dataformats="HW" if grid.ndim == 2 else "HWC")
    writer.flush()
