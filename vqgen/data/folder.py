"""A folder of images (read with Pillow), one class per sub-folder.

Layouts::

    folder/<class>/<image>                      one split (returned for split="train" or None)
    folder/train/<class>/<image>, folder/test/<class>/<image>    two splits

Class names are the sub-folder names, sorted; label ``i`` is the ``i``-th name. A folder with images and no
sub-folders is one class named after the folder. Hidden files (starting with ``.``) are ignored; any other file
that Pillow cannot read is an error naming it, unless ``skip_invalid=True``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, UnidentifiedImageError

from .dataset import ImageDataset

__all__ = ["load_image_folder"]

logger = logging.getLogger(__name__)

_MODES = ("auto", "L", "RGB")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _scan(folder: Path, skip_invalid: bool) -> tuple[list[tuple[Path, int]], list[str]]:
    """Return ``(file, label)`` pairs and the sorted class names."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    subdirs = [p for p in entries if p.is_dir()]
    if not subdirs:
        return [(p, 0) for p in entries if p.is_file()], [folder.name]
    loose = [p for p in entries if p.is_file()]
    if loose:
        if not skip_invalid:
            raise ValueError(
                f"{loose[0]} is not inside a class sub-folder of {folder}; move it into one, delete it, "
                "or pass skip_invalid=True"
            )
        logger.warning("skipping %d files outside the class sub-folders of %s", len(loose), folder)
    classes = [d.name for d in subdirs]
    files = []
    for label, directory in enumerate(subdirs):
        for path in sorted(directory.rglob("*")):
            if path.is_file() and all(not part.startswith(".") for part in path.relative_to(directory).parts):
                files.append((path, label))
    return files, classes


def _read(path: Path, size: tuple[int, int] | None) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image Pillow can read ({error})") from error
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return image


def load_image_folder(
    path: str | os.PathLike[str],
    split: str | None = "train",
    *,
    mode: str = "auto",
    size: int | tuple[int, int] | None = None,
    skip_invalid: bool = False,
) -> ImageDataset:
    """Load every image under a folder as ``(N, C, H, W)`` uint8, labelled by class sub-folder.

    Args:
        path: the folder.
        split: ``"train"`` / ``"test"`` to use ``path/train`` / ``path/test`` when they exist. A folder without them
            is returned whole for ``"train"`` or ``None``; asking it for ``"test"`` is an error.
        mode: ``"L"`` (1 channel), ``"RGB"`` (3 channels) or ``"auto"``: ``"L"`` when every image is greyscale,
            else ``"RGB"`` (alpha is dropped).
        size: resize every image to ``size`` (an int for square, or ``(H, W)``); by default all images must already
            share one size.
        skip_invalid: skip (with a logged warning) files Pillow cannot read instead of raising.

    Raises:
        ValueError: naming the file that is not an image, or whose size differs from the first image's.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if isinstance(size, int):
        size = (size, size)
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    has_splits = (folder / "train").is_dir() and (folder / "test").is_dir()
    if has_splits and split is not None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        folder = folder / split
    elif split == "test":
        raise ValueError(
            f"{folder} has no train/ and test/ sub-folders, so there is no test split; pass split='train' or None, "
            f"or arrange the images as {folder / 'train'}/<class>/ and {folder / 'test'}/<class>/"
        )
    files, classes = _scan(folder, skip_invalid)
    images, labels, kept, skipped = [], [], [], []
    for file, label in files:
        try:
            images.append(_read(file, size))
        except ValueError:
            if not skip_invalid:
                raise
            skipped.append(file)
            continue
        labels.append(label)
        kept.append(file)
    if skipped:
        logger.warning("skipped %d files that are not images: %s", len(skipped), ", ".join(map(str, skipped[:5])))
    if not images:
        raise ValueError(f"no images found in {folder}")
    if mode == "auto":
        mode = "L" if all(image.mode in _GREY_MODES for image in images) else "RGB"
    arrays = []
    for image, file in zip(images, kept):
        if image.size != images[0].size:
            raise ValueError(
                f"{file} is {image.size[0]}x{image.size[1]} (WxH) but the first image is "
                f"{images[0].size[0]}x{images[0].size[1]}; pass size= to resize every image"
            )
        arrays.append(np.asarray(image.convert(mode), dtype=np.uint8))
    stacked = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    x = stacked[:, None] if mode == "L" else rearrange(stacked, "n h w c -> n c h w")
    logger.info("loaded %d images of %d classes from %s", len(arrays), len(classes), folder)
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.tensor(labels, dtype=torch.int64),
        class_names=classes,
        name=str(Path(path)),
        split=split if has_splits else None,
        source=str(folder),
    )
