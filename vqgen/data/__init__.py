"""Datasets for vqgen: uint8 image tensors with integer labels, whole in memory or streamed from a folder.

One door, [`load_dataset`][load_dataset], takes a name or a path::

    from vqgen.data import load_dataset

    train = load_dataset("digits")                          # offline default: 1442 x (1, 16, 16)
    test = load_dataset("mnist", split="test", download=True)
    images, label = train[0]                                # uint8 (C, H, W), int
    x = train.images.float() / 255                          # (N, C, H, W) in [0, 1]

Names: ``digits`` (scikit-learn's bundled handwritten digits, no download), ``mnist``, ``fashion-mnist``,
``cifar10`` (the full binary batches when present, else the 4000/1000 subset) and ``cifar10-subset``. Paths: a
folder of images (one sub-folder per class, optionally under ``train/`` and ``test/``) or a ``.npy`` / ``.npz`` file.
A folder too big for memory is streamed: ``load_dataset("photos/", stream=True, size=64)`` returns an
[`ImageFolderDataset`][ImageFolderDataset] that decodes each image when a DataLoader worker asks for it. Code grids of a
dataset go to disk with [`encode_to_disk`][encode_to_disk] and come back memory-mapped as a
[`CodeGridDataset`][CodeGridDataset].

Files of named datasets live under a data root: the ``root`` argument, else ``$VQGEN_DATA``, else the user cache
directory (``~/.cache/vqgen``, honouring ``$XDG_CACHE_HOME``), in one sub-folder per dataset (``mnist/``,
``fashion-mnist/``, ``cifar10/cifar-10-batches-bin/``, ``cifar10-subset/``). Every file with a known checksum is
verified (once per process); ``download=True`` fetches missing files and verifies them before they land.
"""

from .arrays import from_arrays, load_numpy
from .cifar import load_cifar10, read_cifar_binary
from .codes import CodeGridDataset, encode_to_disk
from .dataset import ImageDataset
from .digits import load_digits
from .download import download_file, extract_tar, verify_file
from .errors import ChecksumError, DatasetNotFoundError, DownloadError
from .folder import load_image_folder
from .idx import load_fashion_mnist, load_mnist, read_idx
from .load import available_datasets, load_dataset
from .specs import DATASETS, DatasetSpec, FileSpec, data_root
from .streaming import ImageFolderDataset

__all__ = [
    "DATASETS",
    "ChecksumError",
    "CodeGridDataset",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DownloadError",
    "FileSpec",
    "ImageDataset",
    "ImageFolderDataset",
    "available_datasets",
    "data_root",
    "download_file",
    "encode_to_disk",
    "extract_tar",
    "from_arrays",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "load_numpy",
    "read_cifar_binary",
    "read_idx",
    "verify_file",
]
