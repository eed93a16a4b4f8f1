"""The registry of named datasets (files, checksums, URLs, layout) and where their files live.

Root resolution: an explicit ``root``, else ``$VQGEN_DATA``, else the user cache directory
(``$XDG_CACHE_HOME/vqgen``, by default ``~/.cache/vqgen``; ``~/Library/Caches/vqgen`` on macOS and
``%LOCALAPPDATA%\\vqgen\\Cache`` on Windows). Each dataset has its own sub-folder of the root (``mnist/``, ...).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CIFAR10_CLASSES", "DATASETS", "DatasetSpec", "FileSpec", "data_root"]

ENV_VAR = "VQGEN_DATA"


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    Args:
        name: file name inside the dataset's folder (may contain ``/``).
        sha256: known SHA-256 hex digest, or ``None`` when no checksum is known for sure (then the file is not
            verified and cannot be downloaded).
        urls: mirrors to download from, tried in order; empty when the file cannot be downloaded.
        md5: known MD5 hex digest, used only where no SHA-256 is known for sure (the CIFAR-10 tarball).
        size: expected size in bytes, or ``None``.
    """

    name: str
    sha256: str | None = None
    urls: tuple[str, ...] = ()
    md5: str | None = None
    size: int | None = None

    @property
    def downloadable(self) -> bool:
        """True when the file has URLs and a checksum to verify the download against."""
        return bool(self.urls) and (self.sha256 is not None or self.md5 is not None)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its folder under the data root, its files per split and what its images look like.

    Args:
        name: the name given to [`vqgen.data.load_dataset`][vqgen.data.load_dataset].
        title: human-readable name for messages.
        folder: sub-folder of the data root holding the files (empty for built-in data).
        layout: file format: ``"idx"`` (MNIST-style IDX gzip), ``"cifar-binary"`` or ``"sklearn"``.
        splits: split name → ``(images file, labels file)`` for ``idx``, or the record files for ``cifar-binary``.
        image_shape: ``(C, H, W)`` of one image at the default options.
        class_names: label ``i`` → name.
        citation: whom to credit.
    """

    name: str
    title: str
    folder: str
    layout: str
    splits: dict[str, tuple[FileSpec, ...]] = field(default_factory=dict)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    class_names: tuple[str, ...] = ()
    citation: str = ""

    def files(self) -> tuple[FileSpec, ...]:
        """Every file of every split."""
        return tuple(f for split in self.splits.values() for f in split)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``$VQGEN_DATA``, else the user cache directory for vqgen.

    Args:
        root: an explicit folder (``~`` is expanded).

    Returns:
        The folder under which each dataset has its sub-folder (``mnist/``, ``cifar10/``, ...).

    Examples:
        >>> import os
        >>> from unittest import mock
        >>> from vqgen.data import data_root
        >>> data_root("/data/vqgen")
        PosixPath('/data/vqgen')
        >>> with mock.patch.dict(os.environ, {"VQGEN_DATA": "/mnt/datasets"}):
        ...     data_root()
        PosixPath('/mnt/datasets')
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return _user_cache_dir()


def _user_cache_dir() -> Path:
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "vqgen" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "vqgen"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "vqgen"


# --- the registry ---------------------------------------------------------------------------------------------------

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)


def _idx_files(mirrors: tuple[str, ...], sums: dict[str, tuple[str, str, int]]) -> dict[str, tuple[FileSpec, ...]]:
    def spec(name: str) -> FileSpec:
        sha256, md5, size = sums[name]
        return FileSpec(name, sha256=sha256, md5=md5, size=size, urls=tuple(m + name for m in mirrors))

    return {
        "train": (spec("train-images-idx3-ubyte.gz"), spec("train-labels-idx1-ubyte.gz")),
        "test": (spec("t10k-images-idx3-ubyte.gz"), spec("t10k-labels-idx1-ubyte.gz")),
    }


# (sha256, md5, bytes) of the official files; the md5s are the published ones.
_MNIST_SUMS = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9912422,
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
        28881,
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
        1648877,
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
        4542,
    ),
}
_FASHION_SUMS = {
    "train-images-idx3-ubyte.gz": (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        26421880,
    ),
    "train-labels-idx1-ubyte.gz": (
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "25c81989df183df01b3e8a0aad5dffbe",
        29515,
    ),
    "t10k-images-idx3-ubyte.gz": (
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "bef4ecab320f06d8554ea6380940ec79",
        4422102,
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "bb300cfdad3c16e7a12a480ee83cd310",
        5148,
    ),
}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_BATCH_BYTES = 10000 * 3073

#: The official CIFAR-10 binary tarball. Its MD5 is the one published on https://www.cs.toronto.edu/~kriz/cifar.html;
#: no SHA-256 is published, so the download is verified by MD5 and size-checked batch files.
CIFAR10_ARCHIVE = FileSpec(
    "cifar-10-binary.tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
    urls=("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
)
#: Folder of the batch files inside the tarball (and inside ``<root>/cifar10/``).
CIFAR10_BATCH_DIR = "cifar-10-batches-bin"

DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        name="digits",
        title="scikit-learn digits",
        folder="",
        layout="sklearn",
        image_shape=(1, 16, 16),
        class_names=tuple(str(i) for i in range(10)),
        citation="UCI Optical Recognition of Handwritten Digits (bundled with scikit-learn)",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        folder="mnist",
        layout="idx",
        splits=_idx_files(_MNIST_MIRRORS, _MNIST_SUMS),
        image_shape=(1, 28, 28),
        class_names=tuple(str(i) for i in range(10)),
        citation="Y. LeCun, C. Cortes, C. J. C. Burges: the MNIST database (CC BY-SA 3.0)",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        folder="fashion-mnist",
        layout="idx",
        splits=_idx_files(_FASHION_MIRRORS, _FASHION_SUMS),
        image_shape=(1, 28, 28),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),  # fmt: skip
        citation="H. Xiao, K. Rasul, R. Vollgraf: Fashion-MNIST, arXiv:1708.07747 (MIT licence)",
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        folder="cifar10",
        layout="cifar-binary",
        splits={
            "train": tuple(
                FileSpec(f"{CIFAR10_BATCH_DIR}/data_batch_{i}.bin", size=_CIFAR_BATCH_BYTES) for i in range(1, 6)
            ),
            "test": (FileSpec(f"{CIFAR10_BATCH_DIR}/test_batch.bin", size=_CIFAR_BATCH_BYTES),),
        },
        image_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        citation="A. Krizhevsky: Learning Multiple Layers of Features from Tiny Images, Tech. Report, Toronto, 2009",
    ),
    "cifar10-subset": DatasetSpec(
        name="cifar10-subset",
        title="CIFAR-10 subset (first 4000 train / 1000 test records)",
        folder="cifar10-subset",
        layout="cifar-binary",
        splits={
            "train": (
                FileSpec(
                    "data_batch_1_first4000.bin",
                    sha256="0993cf8b8e43bc207603aef9787006995746513f5e3fa5a52e06d1b069926330",
                    size=4000 * 3073,
                ),
            ),
            "test": (
                FileSpec(
                    "test_batch_first1000.bin",
                    sha256="8314c96d7cd65618193bab23acdd5d4c4af15bf6dd00a1781d55beedf3be1ef5",
                    size=1000 * 3073,
                ),
            ),
        },
        image_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        citation="A. Krizhevsky: Learning Multiple Layers of Features from Tiny Images, Tech. Report, Toronto, 2009",
    ),
}
"""Name → [`DatasetSpec`][DatasetSpec]: the folder, files, checksums and URLs of every named dataset."""
