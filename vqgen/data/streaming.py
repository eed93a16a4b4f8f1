"""A folder of images streamed from disk: files are listed once, each image is decoded when it is asked for.

Item ``i`` is ``(image uint8 (C, H, W), int label)``, the same as [`ImageDataset`][vqgen.data.ImageDataset], so a
``torch.utils.data.DataLoader`` over either feeds the same loop; with ``num_workers > 0`` the decoding runs in the
workers and memory stays flat however many images the folder holds::

    from torch.utils.data import DataLoader
    from vqgen.data import ImageFolderDataset

    data = ImageFolderDataset("photos/", size=64, mode="RGB", hflip=0.5)
    loader = DataLoader(data, batch_size=128, shuffle=True, num_workers=4)
    for images, labels in loader:                       # uint8 (B, 3, 64, 64), int64 (B,)
        ...

The folder layout (class sub-folders, ``train/`` / ``test/``), the resize and the error messages are those of
[`load_image_folder`][vqgen.data.load_image_folder].
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .folder import GREY_MODES, check_mode, check_size, fit, mismatch, open_image, scan, split_folder

__all__ = ["ImageFolderDataset"]

logger = logging.getLogger(__name__)


class ImageFolderDataset(Dataset):
    """Images of a folder, decoded lazily in ``__getitem__``; item ``i`` is ``(uint8 (C, H, W), int label)``.

    Construction lists the files (sorted; labels from the sorted class sub-folder names). When ``size`` is not
    given, or ``mode="auto"``, it also reads every file's header (not its pixels) to check that all images share
    one size and to choose the mode; pass both to touch no image file until it is asked for. The file list is
    held in two numpy arrays, so the dataset pickles small and DataLoader workers do not copy it page by page
    (Python lists of strings are, through reference counts); no file stays open between items.

    Bad input, each a ``ValueError`` naming the file:

    - a file Pillow cannot read (found by the header scan, or when its item is decoded). With
      ``skip_invalid=True`` it is skipped with a logged warning instead: dropped at construction, or replaced
      by the next readable image when only decoding fails (the dataset's length never changes);
    - without ``size``, an image whose size differs from the first image's (the message says to pass
      ``size=``). With ``size`` every image is scaled and centre-cropped to it.

    Args:
        path: the folder (see [`load_image_folder`][vqgen.data.load_image_folder] for the layouts).
        split: ``"train"`` / ``"test"`` for ``path/train`` / ``path/test`` when they exist; ``None`` for the whole
            folder.
        size: ``(H, W)``, or an int for a square: scale each image to cover it and crop the centre.
        mode: ``"L"`` (1 channel), ``"RGB"`` (3 channels; alpha dropped) or ``"auto"`` (``"L"`` when every
            image is greyscale).
        hflip: probability of flipping each image left-right, drawn from torch's global generator: seeded per
            DataLoader worker (and per epoch) by torch, so ``torch.manual_seed`` makes a run reproducible.
        skip_invalid: skip unreadable files (and files outside class sub-folders) with a warning instead of
            raising.

    Attributes:
        num_classes: number of classes (class sub-folders).
        class_names: tuple of the sub-folder names; label ``i`` is the ``i``-th.
        image_shape: ``(C, H, W)`` of every item.
        labels: ``(N,)`` int64 tensor.
        files: the image paths, in item order.
        name: the folder as given.
        split: ``"train"``, ``"test"`` or ``None`` for a folder without splits.
        source: the folder the images are read from.

    Raises:
        ValueError: for the bad input above; if ``hflip`` is not a probability, ``mode`` or ``size`` is invalid, or
            the folder holds no image.

    Examples:
        >>> from torch.utils.data import DataLoader
        >>> from vqgen.data import ImageFolderDataset
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> for label in ("cats", "dogs"):
        ...     Path("photos", label).mkdir(parents=True, exist_ok=True)
        ...     for i in range(3):
        ...         Image.new("RGB", (80, 60), (40 * i, 0, 0)).save(f"photos/{label}/{i}.jpg")
        >>> data = ImageFolderDataset("photos", size=32, mode="RGB", hflip=0.5)  # no image decoded yet
        >>> data
        ImageFolderDataset('photos', n=6, image_shape=(3, 32, 32), num_classes=2)
        >>> images, labels = next(iter(DataLoader(data, batch_size=4, shuffle=True, num_workers=0)))
        >>> images.shape, images.dtype
        (torch.Size([4, 3, 32, 32]), torch.uint8)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        split: str | None = "train",
        *,
        size: int | tuple[int, int] | None = None,
        mode: str = "auto",
        hflip: float = 0.0,
        skip_invalid: bool = False,
    ) -> None:
        check_mode(mode)
        self.size = check_size(size)
        if isinstance(hflip, bool) or not isinstance(hflip, (int, float)) or not 0 <= hflip <= 1:
            raise ValueError(f"hflip must be a probability in [0, 1], got {hflip!r}")
        self.hflip = float(hflip)
        self.skip_invalid = bool(skip_invalid)
        folder, has_splits = split_folder(Path(path), split)
        files, classes = scan(folder, skip_invalid)
        if self.size is None or mode == "auto":
            files, mode, shape = self._scan_headers(files, mode)
        else:
            shape = self.size
        if not files:
            raise ValueError(f"no images found in {folder}")
        self.root = str(folder)
        # fixed-width bytes, relative to the root: one buffer, no per-item Python objects
        start = len(str(folder)) + 1
        self._files = np.array([os.fsencode(path[start:]) for path, _ in files])
        self._labels = np.array([label for _, label in files], dtype=np.int64)
        self.mode = mode
        self.class_names = tuple(classes)
        self.num_classes = len(classes)
        self.image_shape: tuple[int, int, int] = (1 if mode == "L" else 3, *shape)
        self.name = str(Path(path))
        self.split = split if has_splits else None
        self.source = str(folder)

    def _scan_headers(self, files: list[tuple[str, int]], mode: str):
        """Read every header: drop (or raise on) unreadable files, check one size, choose the mode."""
        kept, skipped, first, grey = [], [], None, True
        for file, label in files:
            try:
                image = open_image(file, load=False)
            except ValueError:
                if not self.skip_invalid:
                    raise
                skipped.append(file)
                continue
            if self.size is None:
                first = first or (image.size, file)
                if image.size != first[0]:
                    raise mismatch(file, image.size, first[0])
            grey = grey and image.mode in GREY_MODES
            kept.append((file, label))
        if skipped:
            logger.warning("skipped %d files that are not images: %s", len(skipped), ", ".join(map(str, skipped[:5])))
        if mode == "auto":
            mode = "L" if grey else "RGB"
        shape = self.size if self.size is not None else (first[0][1], first[0][0]) if first else (0, 0)
        return kept, mode, shape

    @property
    def labels(self) -> Tensor:
        """``(N,)`` int64 labels (a fresh tensor; the images themselves are never all in memory).

        Examples:
            >>> from vqgen.data import ImageFolderDataset
            >>> from pathlib import Path
            >>> from PIL import Image
            >>> for label in ("cats", "dogs"):
            ...     Path("photos", label).mkdir(parents=True, exist_ok=True)
            ...     for i in range(3):
            ...         Image.new("RGB", (80, 60), (40 * i, 0, 0)).save(f"photos/{label}/{i}.jpg")
            >>> ImageFolderDataset("photos", size=32, mode="RGB").labels
            tensor([0, 0, 0, 1, 1, 1])
        """
        return torch.from_numpy(self._labels.copy())

    @property
    def files(self) -> list[Path]:
        """The image paths, in item order.

        Examples:
            >>> from vqgen.data import ImageFolderDataset
            >>> from pathlib import Path
            >>> from PIL import Image
            >>> for label in ("cats", "dogs"):
            ...     Path("photos", label).mkdir(parents=True, exist_ok=True)
            ...     for i in range(3):
            ...         Image.new("RGB", (80, 60), (40 * i, 0, 0)).save(f"photos/{label}/{i}.jpg")
            >>> [path.as_posix() for path in ImageFolderDataset("photos", size=32, mode="RGB").files][:2]
            ['photos/cats/0.jpg', 'photos/cats/1.jpg']
        """
        return [self._path(i) for i in range(len(self))]

    def _path(self, index: int) -> Path:
        return Path(self.root) / os.fsdecode(self._files[index])

    def _decode(self, index: int) -> np.ndarray:
        path = self._path(index)
        image = fit(open_image(path), self.size)
        if image.size != (self.image_shape[2], self.image_shape[1]):
            raise mismatch(path, image.size, (self.image_shape[2], self.image_shape[1]))
        pixels = np.array(image.convert(self.mode), dtype=np.uint8)  # (H, W) or (H, W, 3)
        return pixels[None] if self.mode == "L" else pixels.transpose(2, 0, 1)

    def __len__(self) -> int:
        """N, the number of images."""
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``(uint8 (C, H, W), int label)`` of image ``index``, decoded now (resized, flipped with ``hflip``)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} images")
        index %= len(self)
        for offset in range(len(self)):
            item = (index + offset) % len(self)
            try:
                pixels = self._decode(item)
            except ValueError:
                if not self.skip_invalid:
                    raise
                logger.warning("skipping unreadable %s: item %d takes the next readable image", self._path(item), index)
                continue
            image = torch.from_numpy(np.ascontiguousarray(pixels))  # (C, H, W) uint8
            if self.hflip and float(torch.rand(())) < self.hflip:
                image = image.flip(-1)
            return image, int(self._labels[item])
        raise ValueError(f"no image under {self.root} could be read")

    def __repr__(self) -> str:
        """The folder, split, size, image shape and number of classes."""
        split = f", split={self.split!r}" if self.split else ""
        return (
            f"ImageFolderDataset({self.name!r}{split}, n={len(self)}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes})"
        )
