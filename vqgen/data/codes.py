"""Code grids of a dataset on disk, written batch by batch and read back memory-mapped.

Stage 2 trains on the code grids stage 1 gives each image. [`encode_to_disk`][encode_to_disk] writes them straight into
a memory-mapped ``codes.npy`` as the batches come, so memory holds one batch whatever the dataset's size, and
[`CodeGridDataset`][CodeGridDataset] serves them back without reading the file whole::

    from vqgen.data import CodeGridDataset, encode_to_disk

    model.vqvae.eval()
    codes = encode_to_disk(model.encode, train, "runs/codes", num_codes=model.num_codes, num_workers=2)
    grid, label = codes[0]                               # int64 (1, h, w), int

A directory holds ``codes.npy`` (``(N, h, w)``, int16 when the codes fit, else int32), ``labels.npy``
(``(N,)`` int64) and ``codes.json`` (format, shape, ``num_codes``, ``num_classes``, file sizes). Each file is
written under a temporary name, synced and renamed; ``codes.json`` comes last, so a directory is complete exactly
when it is present and agrees with the other two.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib import format as npy
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["CodeGridDataset", "encode_to_disk"]

logger = logging.getLogger(__name__)

FORMAT, VERSION = "vqgen-code-grids", 1
CODES, LABELS, META = "codes.npy", "labels.npy", "codes.json"


def _code_dtype(num_codes: int) -> np.dtype:
    return np.dtype(np.int16 if num_codes <= np.iinfo(np.int16).max + 1 else np.int32)


def _sync(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _check_codes(codes: Any, batch: int, grid: tuple[int, int] | None, num_codes: int) -> Tensor:
    if not isinstance(codes, Tensor) or codes.dtype not in (torch.int16, torch.int32, torch.int64) or codes.ndim != 3:
        got = f"{codes.dtype} {tuple(codes.shape)}" if isinstance(codes, Tensor) else type(codes).__name__
        raise TypeError(f"encode_fn must return integer codes (B, h, w), got {got}")
    if codes.shape[0] != batch or (grid is not None and tuple(codes.shape[1:]) != grid):
        raise ValueError(
            f"encode_fn returned codes of shape {tuple(codes.shape)} for a batch of {batch} images; expected "
            f"({batch}, h, w) with the same (h, w) for every batch (first batch: {grid})"
        )
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= num_codes):
        raise ValueError(
            f"encode_fn returned codes in [{int(codes.min())}, {int(codes.max())}], outside [0, num_codes={num_codes})"
        )
    return codes


@torch.no_grad()
def encode_to_disk(
    encode_fn: Callable[[Tensor], Tensor],
    dataset: Dataset,
    directory: str | os.PathLike[str],
    *,
    num_codes: int,
    batch_size: int = 256,
    num_workers: int = 0,
    device: str | torch.device | None = None,
) -> CodeGridDataset:
    """Encode every image of ``dataset`` and write the code grids to ``directory``, one batch at a time.

    Args:
        encode_fn: images ``(B, C, H, W)`` float in ``[0, 1]`` → codes ``(B, h, w)`` integer, e.g.
            [`TwoStageModel.encode`][vqgen.two_stage.TwoStageModel.encode] or a VQ-VAE's ``encode`` (put the model in
            eval mode first). Images are ``uint8 / 255``, as [`encode_codes`][vqgen.training.prior.encode_codes] feeds
            them.
        dataset: items ``(uint8 (C, H, W), int label)``: an [`ImageDataset`][vqgen.data.ImageDataset] or an
            [`ImageFolderDataset`][vqgen.data.ImageFolderDataset].
        directory: where to write (created; files of an earlier encoding there are replaced).
        num_codes: codebook size ``K``: codes must lie in ``[0, K)``; picks int16 (``K <= 32768``) or int32.
        batch_size: images per call of ``encode_fn`` (and per write).
        num_workers: DataLoader workers that read (and decode) the images.
        device: where the images go before ``encode_fn`` (default: left on the CPU).

    Returns:
        The written codes as a [`CodeGridDataset`][CodeGridDataset].

    Raises:
        ValueError: if a number is not a positive int, ``dataset`` is empty, or ``encode_fn`` returns codes of another
            count, grid or range than expected.

    Examples:
        >>> import vqgen
        >>> from vqgen.autoencoders import VQVAE
        >>> from vqgen.data import encode_to_disk
        >>> vqvae = VQVAE.from_names({"encoder": "conv", "quantizer": {"name": "vq", "num_codes": 64}}).eval()
        >>> codes = encode_to_disk(vqvae.encode, vqgen.data.load_dataset("digits"), "runs/codes", num_codes=64)
        >>> codes
        CodeGridDataset('runs/codes', n=1442, grid_shape=(4, 4), num_codes=64)
        >>> sorted(path.name for path in codes.directory.iterdir())
        ['codes.json', 'codes.npy', 'labels.npy']
    """
    for value, name in ((num_codes, "num_codes"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    total = len(dataset)
    if total == 0:
        raise ValueError("dataset is empty: there is nothing to encode")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META).unlink(missing_ok=True)  # from here until the end the directory reads as incomplete
    tag = f".tmp-{os.getpid()}"
    temp = {name: directory / (name + tag) for name in (CODES, LABELS, META)}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    codes_file = labels_file = None
    start = 0
    try:
        labels_file = npy.open_memmap(temp[LABELS], mode="w+", dtype=np.int64, shape=(total,))
        for images, labels in loader:
            images = images.to(device) if device is not None else images
            codes = _check_codes(
                encode_fn(images.float() / 255),
                len(images),
                None if codes_file is None else tuple(codes_file.shape[1:]),
                num_codes,
            )
            if codes_file is None:  # the grid size is known from the first batch
                shape = (total, *codes.shape[1:])
                codes_file = npy.open_memmap(temp[CODES], mode="w+", dtype=_code_dtype(num_codes), shape=shape)
            stop = start + len(codes)
            codes_file[start:stop] = codes.cpu().numpy()
            labels_file[start:stop] = np.asarray(labels, dtype=np.int64)
            start = stop
        if start != total:
            raise ValueError(f"the DataLoader gave {start} images, but len(dataset) is {total}")
        codes_file.flush()
        labels_file.flush()
        grid = tuple(codes_file.shape[1:])
        del codes_file, labels_file  # close the maps before renaming (required on Windows)
        codes_file = labels_file = None
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "shape": [total, *grid],
            "dtype": _code_dtype(num_codes).name,
            "num_codes": num_codes,
            "num_classes": getattr(dataset, "num_classes", None),
            "bytes": {CODES: temp[CODES].stat().st_size, LABELS: temp[LABELS].stat().st_size},
        }
        temp[META].write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for name in (CODES, LABELS, META):  # META last: its presence marks the directory complete
            _sync(temp[name])
            os.replace(temp[name], directory / name)
    finally:
        del codes_file, labels_file
        for path in temp.values():
            path.unlink(missing_ok=True)
    logger.info("wrote %d code grids %s to %s", total, grid, directory)
    return CodeGridDataset(directory)


class CodeGridDataset(Dataset):
    """Code grids written by [`encode_to_disk`][encode_to_disk], memory-mapped; item ``i`` is ``(int64 (1, h, w), int
    label)``.

    The files are opened lazily in each process (a DataLoader worker maps them itself; pickling sends only the
    path). ``(1, h, w)`` is the one-channel grid an [`AutoregressivePrior`][vqgen.AutoregressivePrior] with
    ``channels=1`` takes.

    Args:
        directory: a directory written by [`encode_to_disk`][encode_to_disk].

    Raises:
        FileNotFoundError: the directory or ``codes.json`` is missing (an encoding that never finished).
        ValueError: naming the file, when ``codes.json`` is not this format or a ``.npy`` file is truncated,
            corrupt or disagrees with it.

    Attributes:
        num_codes: codebook size ``K``.
        grid_shape: ``(h, w)``.
        num_classes: number of label classes, when the encoded dataset had them (else ``None``).
        labels: ``(N,)`` int64 tensor.

    Examples:
        >>> import torch, vqgen
        >>> from torch.utils.data import DataLoader
        >>> from vqgen.data import CodeGridDataset, encode_to_disk
        >>> digits = vqgen.data.load_dataset("digits")
        >>> _ = encode_to_disk(lambda x: (x[:, 0, ::4, ::4] * 15).long(), digits, "runs/codes", num_codes=16)
        >>> codes = CodeGridDataset("runs/codes")                    # later, or in another process
        >>> grid, label = codes[0]
        >>> grid.shape, grid.dtype, codes.num_classes
        (torch.Size([1, 4, 4]), torch.int64, 10)
        >>> grids, labels = next(iter(DataLoader(codes, batch_size=8, num_workers=0)))
        >>> grids.shape
        torch.Size([8, 1, 4, 4])
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        meta_path = self.directory / META
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path} is missing: {self.directory} holds no complete encoding (run encode_to_disk again)"
            )
        try:
            meta = json.loads(meta_path.read_text())
            n, h, w = (int(s) for s in meta["shape"])
            if meta["format"] != FORMAT or meta["version"] != VERSION:
                raise ValueError(f"format {meta['format']!r} version {meta['version']!r}")
            self.num_codes = int(meta["num_codes"])
            self.num_classes = meta.get("num_classes")
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{meta_path} is not a {FORMAT} v{VERSION} description ({error}); re-encode with encode_to_disk"
            ) from error
        self.grid_shape = (h, w)
        _check_npy(self.directory / CODES, (n, h, w), np.dtype(meta.get("dtype", "int32")))
        _check_npy(self.directory / LABELS, (n,), np.dtype(np.int64))
        self._length = n
        self._codes: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._codes is None:
            self._codes = np.load(self.directory / CODES, mmap_mode="r", allow_pickle=False)
            self._labels = np.load(self.directory / LABELS, mmap_mode="r", allow_pickle=False)
        return self._codes, self._labels

    def __getstate__(self) -> dict:
        """The state to pickle, without the memory maps (each DataLoader worker maps the files itself)."""
        return {**self.__dict__, "_codes": None, "_labels": None}  # workers map the files themselves

    @property
    def labels(self) -> Tensor:
        """``(N,)`` int64 labels.

        Examples:
            >>> import vqgen
            >>> from vqgen.data import encode_to_disk
            >>> digits = vqgen.data.load_dataset("digits")
            >>> codes = encode_to_disk(lambda x: x[:, 0, ::4, ::4].long() * 0, digits, "runs/codes", num_codes=2)
            >>> bool((codes.labels == digits.labels).all())
            True
        """
        return torch.from_numpy(np.array(self._open()[1]))

    def __len__(self) -> int:
        """N, the number of grids."""
        return self._length

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """``(codes int64 (1, h, w), int label)`` of grid ``index``."""
        codes, labels = self._open()
        return torch.from_numpy(codes[index].astype(np.int64))[None], int(labels[index])  # (1, h, w)

    def __repr__(self) -> str:
        """The folder, size, grid shape and codebook size."""
        return (
            f"CodeGridDataset({str(self.directory)!r}, n={len(self)}, grid_shape={self.grid_shape}, "
            f"num_codes={self.num_codes})"
        )


def _check_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """A ``ValueError`` naming ``path`` unless it is a complete ``.npy`` file of ``shape`` and ``dtype``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; re-encode with encode_to_disk")
    try:
        with open(path, "rb") as file:
            version = npy.read_magic(file)
            header = npy.read_array_header_1_0(file) if version == (1, 0) else npy.read_array_header_2_0(file)
            offset = file.tell()
    except ValueError as error:
        raise ValueError(f"{path} is not a valid .npy file ({error}); re-encode with encode_to_disk") from error
    got_shape, fortran, got_dtype = header
    if tuple(got_shape) != shape or got_dtype != dtype or fortran:
        raise ValueError(
            f"{path} holds {got_dtype} {tuple(got_shape)} but {META} says {dtype} {shape}; "
            "re-encode with encode_to_disk"
        )
    expected, size = offset + int(np.prod(shape)) * dtype.itemsize, path.stat().st_size
    if size != expected:
        raise ValueError(
            f"{path} is {size} bytes but {dtype} {shape} needs {expected}: the file is truncated or corrupt; "
            "re-encode with encode_to_disk"
        )
