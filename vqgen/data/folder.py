"""A folder of images (read with Pillow), one class per sub-folder.

Layouts::

    folder/<class>/<image>                      one split (returned for split="train" or None)
    folder/train/<class>/<image>, folder/test/<class>/<image>    two splits

Class names are the sub-folder names, sorted; label ``i`` is the ``i``-th name. A folder with images and no
sub-folders is one class named after the folder. Hidden files (starting with ``.``) are ignored; any other file
that Pillow cannot read is an error naming it, unless ``skip_invalid=True``.

The layout rules, the resize and the errors live here once and serve both the in-memory
[`load_image_folder`][load_image_folder] and the streaming
[`ImageFolderDataset`][vqgen.data.streaming.ImageFolderDataset].
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
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _walk(directory: Path) -> list[str]:
    """Paths (str) of the visible files under ``directory``, at any depth, in path order.

    Strings, not ``Path`` objects: a listing of a million files should cost tens, not hundreds, of megabytes.
    """
    root = str(directory)
    files = []
    for current, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        files.extend(os.path.join(current, name) for name in filenames if not name.startswith("."))
    files.sort(key=lambda path: path[len(root) :].split(os.sep))  # by components, as sorted(Path.rglob()) does
    return files


def scan(folder: Path, skip_invalid: bool) -> tuple[list[tuple[str, int]], list[str]]:
    """Return ``(file, label)`` pairs (files in label, then path, order) and the sorted class names."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    subdirs = [p for p in entries if p.is_dir()]
    if not subdirs:
        return [(str(p), 0) for p in entries if p.is_file()], [folder.name]
    loose = [p for p in entries if p.is_file()]
    if loose:
        if not skip_invalid:
            raise ValueError(
                f"{loose[0]} is not inside a class sub-folder of {folder}; move it into one, delete it, "
                "or pass skip_invalid=True"
            )
        logger.warning("skipping %d files outside the class sub-folders of %s", len(loose), folder)
    classes = [d.name for d in subdirs]
    files = [(path, label) for label, directory in enumerate(subdirs) for path in _walk(directory)]
    return files, classes


def check_mode(mode: str, modes: tuple[str, ...] = _MODES) -> str:
    """``mode`` unchanged, or a ``ValueError`` listing the valid ones."""
    if mode not in modes:
        raise ValueError(f"mode must be one of {modes}, got {mode!r}")
    return mode


def check_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` (an int is square), or ``None``."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if size is not None and (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return None if size is None else (int(size[0]), int(size[1]))


def split_folder(folder: Path, split: str | None) -> tuple[Path, bool]:
    """The folder holding the class sub-folders of ``split``, and whether ``folder`` has ``train/`` + ``test/``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    has_splits = (folder / "train").is_dir() and (folder / "test").is_dir()
    if has_splits and split is not None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        return folder / split, True
    if split == "test":
        raise ValueError(
            f"{folder} has no train/ and test/ sub-folders, so there is no test split; pass split='train' or None, "
            f"or arrange the images as {folder / 'train'}/<class>/ and {folder / 'test'}/<class>/"
        )
    return folder, has_splits


def open_image(path: str | Path, *, load: bool = True) -> Image.Image:
    """Open ``path`` with Pillow (decoding the pixels when ``load``), or a ``ValueError`` naming the file."""
    try:
        with Image.open(path) as image:
            if load:
                image.load()
            else:
                image.size  # noqa: B018 (the header is parsed on open; keep nothing open)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not an image Pillow can read ({error})") from error
    return image


def fit(image: Image.Image, size: tuple[int, int] | None) -> Image.Image:
    """Scale ``image`` so that it covers ``size`` ``(H, W)`` and crop the centre (aspect kept; ``None``: as is).

    For a square ``size`` this is "resize the shorter side, then centre-crop"; the scale and crop are one
    bilinear resample of the centre box, so an image already of ``size`` is returned untouched.
    """
    if size is None or image.size == (size[1], size[0]):
        return image
    height, width = size
    scale = max(height / image.height, width / image.width)
    box_w, box_h = width / scale, height / scale  # the centre box of the source that maps onto (H, W)
    left, top = (image.width - box_w) / 2, (image.height - box_h) / 2
    return image.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h))


def mismatch(path: str | Path, size: tuple[int, int], first: tuple[int, int]) -> ValueError:
    """The error for an image whose ``(W, H)`` ``size`` differs from the ``first`` image's."""
    return ValueError(
        f"{path} is {size[0]}x{size[1]} (WxH) but the first image is {first[0]}x{first[1]}; "
        "pass size= to resize every image"
    )


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
        size: ``(H, W)``, or an int for square: scale each image to cover it and crop the centre (aspect kept, see
            ``vqgen.data.folder.fit``); by default all images must already share one size.
        skip_invalid: skip (with a logged warning) files Pillow cannot read instead of raising.

    Returns:
        The images as an [`ImageDataset`][vqgen.data.ImageDataset], labelled by the sorted sub-folder names.

    Raises:
        ValueError: naming the file that is not an image, or whose size differs from the first image's.

    Examples:
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from vqgen.data import load_image_folder
        >>> for label in ("cats", "dogs"):
        ...     Path("photos", label).mkdir(parents=True, exist_ok=True)
        ...     for i in range(3):
        ...         Image.new("RGB", (40, 30), (i, 0, 0)).save(f"photos/{label}/{i}.png")
        >>> data = load_image_folder("photos", size=16)                 # scaled to cover 16x16, centre-cropped
        >>> data, data.class_names
        (ImageDataset('photos', n=6, image_shape=(3, 16, 16), num_classes=2), ('cats', 'dogs'))
    """
    check_mode(mode)
    size = check_size(size)
    folder, has_splits = split_folder(Path(path), split)
    files, classes = scan(folder, skip_invalid)
    images, labels, kept, skipped = [], [], [], []
    for file, label in files:
        try:
            images.append(fit(open_image(file), size))
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
        mode = "L" if all(image.mode in GREY_MODES for image in images) else "RGB"
    arrays = []
    for image, file in zip(images, kept):
        if image.size != images[0].size:
            raise mismatch(file, image.size, images[0].size)
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
