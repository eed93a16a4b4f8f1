"""The in-memory image dataset every loader returns."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """Images and labels held whole in memory; item ``i`` is ``(image uint8 (C, H, W), int label)``.

    Use the whole tensors directly when a loop over items is not needed (``dataset.images.float() / 255``).

    Args:
        images: ``(N, C, H, W)`` uint8.
        labels: ``(N,)`` int64, values in ``[0, num_classes)``.
        num_classes: number of classes (default: ``len(class_names)``, else ``labels.max() + 1``).
        class_names: label ``i`` → name, when known.
        name: dataset name (``"mnist"``, a folder path, ...).
        split: ``"train"``, ``"test"`` or ``None`` for a source without splits.
        source: where the data came from (files, variant), for logs and reports.

    Attributes:
        images: ``(N, C, H, W)`` uint8 tensor.
        labels: ``(N,)`` int64 tensor.
        num_classes: number of classes.
        class_names: tuple of names, or ``None``.
        image_shape: ``(C, H, W)``.

    Raises:
        TypeError: if ``images`` is not a uint8 ``(N, C, H, W)`` tensor, or ``labels`` not an int64 ``(N,)`` one.
        ValueError: if a label lies outside ``[0, num_classes)``.

    Examples:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> from vqgen.data import ImageDataset
        >>> data = ImageDataset(torch.zeros(6, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> len(data), data.num_classes, data[4][1]
        (6, 3, 1)
        >>> images, labels = next(iter(DataLoader(data, batch_size=4)))
        >>> images.shape, labels.tolist()
        (torch.Size([4, 1, 8, 8]), [0, 1, 2, 0])
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "",
        split: str | None = None,
        source: str = "",
    ) -> None:
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
            raise TypeError(f"images must be a uint8 tensor of shape (N, C, H, W), got {got}")
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
            raise TypeError(f"labels must be an int64 tensor of shape ({images.shape[0]},), got {got}")
        if class_names is not None:
            class_names = tuple(str(c) for c in class_names)
        if num_classes is None:
            num_classes = len(class_names) if class_names else (int(labels.max()) + 1 if labels.numel() else 0)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
            )
        self.images = images
        self.labels = labels
        self.num_classes = int(num_classes)
        self.class_names = class_names
        self.name = name
        self.split = split
        self.source = source

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image.

        Examples:
            >>> from vqgen.data import load_dataset
            >>> load_dataset("digits", size=32).image_shape
            (1, 32, 32)
        """
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        """N, the number of images."""
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``(image uint8 (C, H, W), int label)`` of image ``index``."""
        return self.images[index], int(self.labels[index])

    def __repr__(self) -> str:
        """The name, split, size, image shape and number of classes."""
        split = f", split={self.split!r}" if self.split else ""
        return (
            f"ImageDataset({self.name!r}{split}, n={len(self)}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes})"
        )
