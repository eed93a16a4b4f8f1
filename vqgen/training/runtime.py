"""Where and how reproducibly a run executes: [`seed_everything`][seed_everything] (same seed, same run),
[`capture_rng`][capture_rng] / [`restore_rng`][restore_rng] (the generators a training state carries) and
[`resolve_device`][resolve_device] (``"cuda"`` when available, else ``"cpu"``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng", "resolve_device", "restore_rng", "seed_everything"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators; returns a CPU ``torch.Generator`` for shuffling.

    The training engine calls it with ``TrainConfig.seed`` (plus the process's rank) when training starts; call it
    yourself before building a model to make its initial weights the seed's too::

        vqgen.seed_everything(0)
        model = vqgen.TwoStageModel.from_config(config)   # the same initial weights every time
        model.fit(train, stage1={"seed": 0}, stage2={"seed": 0})

    Args:
        seed: any int (NumPy's generator takes ``seed % 2**32``).

    Returns:
        A new CPU generator seeded with ``seed``.

    Examples:
        >>> import torch, vqgen
        >>> _ = vqgen.seed_everything(0)
        >>> first = vqgen.build("prior", "rnn", hidden_size=8)
        >>> generator = vqgen.seed_everything(0)
        >>> second = vqgen.build("prior", "rnn", hidden_size=8)
        >>> all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))   # same initial weights
        True
        >>> torch.equal(torch.randperm(5, generator=generator), torch.randperm(5, generator=vqgen.seed_everything(0)))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (seeds the legacy global generator that libraries still use)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` picks the first CUDA device when available, else the CPU.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or ``None``.

    Returns:
        The device.

    Raises:
        ValueError: if ``device`` is not a device name, or names CUDA where CUDA is not available.

    Examples:
        >>> from vqgen.training import resolve_device
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("gpu")
        Traceback (most recent call last):
        ValueError: device 'gpu' is not a valid torch device ('cpu', 'cuda', 'cuda:0', ...): ...
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device {device!r} is not a valid torch device ('cpu', 'cuda', 'cuda:0', ...): {error}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use device='cpu' or None")
    return resolved


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and CUDA's, when initialised)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (the legacy global generator that libraries still use)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back what [`capture_rng`][capture_rng] returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
