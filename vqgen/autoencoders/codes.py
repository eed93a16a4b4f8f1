"""The code grids of a whole dataset, by a trained stage 1: what a prior over codes trains on (re-exported by
[`vqgen.autoencoders.vqvae`][vqgen.autoencoders.vqvae] and [`vqgen.training`][vqgen.training]).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .. import checks

if TYPE_CHECKING:
    from ..interfaces import Component
    from ..training.inputs import TrainData

__all__ = ["encode_codes"]


@torch.no_grad()
def encode_codes(
    vqvae: Component, data: TrainData, *, batch_size: int = 256, device: str | torch.device | None = None
) -> Tensor:
    """Code grids ``(N, 1, h, w)`` int64 (on the CPU) of a dataset's images, by a trained VQ-VAE in eval mode.

    Args:
        vqvae: a stage-1 component with ``encode(images (B, C, H, W)) -> codes (B, h, w)``, e.g.
            [`VQVAE`][vqgen.autoencoders.vqvae.VQVAE].
        data: a [`vqgen.data`][vqgen.data] dataset, images ``(N, C, H, W)`` (uint8, or float in ``[0, 1]``), or a
            streamed dataset of ``(uint8 (C, H, W), label)`` items (e.g.
            [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]) or a ``DataLoader``, read in order. For training sets
            too large to hold as codes, see [`encode_to_disk`][vqgen.data.encode_to_disk].
        batch_size: images per forward pass.
        device: where to encode; ``None`` uses the model's device.

    Returns:
        ``(N, 1, h, w)`` int64 codes on the CPU, in the data's order: what a prior over code grids trains on.

    Raises:
        TypeError: if ``batch_size`` is not an int, or ``data`` holds no images.
        ValueError: if ``batch_size`` < 1, or float images lie outside ``[0, 1]``.

    Examples:
        >>> import vqgen
        >>> from vqgen.autoencoders import VQVAE
        >>> from vqgen.training import encode_codes
        >>> vqvae = VQVAE.from_names({"encoder": "conv", "quantizer": "vq"})         # 16x16 digits -> 4x4 codes
        >>> codes = encode_codes(vqvae, vqgen.data.load_dataset("digits"))
        >>> codes.shape, codes.dtype
        (torch.Size([1442, 1, 4, 4]), torch.int64)
    """
    from torch.utils.data import DataLoader

    from ..training.batches import first_tensor, is_stream
    from ..training.inputs import check_unit_range
    from ..training.runtime import resolve_device

    checks.check_positive(batch_size, name="batch_size", integer=True)
    if is_stream(data):  # float batches are checked as they come
        loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, shuffle=False)
        batches: Iterator[Tensor] = (check_unit_range(first_tensor(batch), name="data") for batch in loader)
    else:
        images = getattr(data, "images", data)
        checks.check_tensor(images, name="data", ndim=4)
        check_unit_range(images, name="data")  # float images: checked once, whole
        batches = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    device = vqvae.device if device is None else resolve_device(device)
    vqvae.to(device)
    was_training = vqvae.training
    vqvae.eval()
    try:
        codes = [vqvae.encode(batch.to(device)).cpu() for batch in batches]
    finally:
        vqvae.train(was_training)
    return torch.cat(codes)[:, None]  # (N, 1, h, w)
