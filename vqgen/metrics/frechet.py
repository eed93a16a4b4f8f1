"""Fréchet distance between feature distributions of real and generated images (FID, arXiv:1706.08500).

``FID = |μ_r - μ_g|² + Tr(Σ_r + Σ_g - 2 (Σ_r Σ_g)^½)``, where ``(μ, Σ)`` are the mean and covariance of image
features. vqgen computes it with torchmetrics' ``FrechetInceptionDistance``, which keeps float64 sufficient
statistics (feature sum, sum of outer products, count), so memory is constant and the result can be synchronised
across processes. The feature extractor is pluggable: any ``nn.Module`` with an int ``num_features`` that maps uint8
images ``(B, C, H, W)`` to ``(B, num_features)``. Resizing and grey-to-colour handling belong to the extractor.

Two extractors:

- [`inception_feature`][inception_feature]: the standard Inception-v3 pool features (2048-d), as in published FIDs. It
  needs the ``torch-fidelity`` package and the weights file ``weights-inception-2015-12-05-6726825d.pth``, and vqgen
  never downloads it; [`inception_feature`][inception_feature] explains what is missing.
- [`vqgen.classifier.ClassifierFeatures`][vqgen.classifier.ClassifierFeatures]: the penultimate features of a small
  classifier trained on the dataset itself
  ([`vqgen.training.classifier.train_classifier`][vqgen.training.classifier.train_classifier]).
  This is **FID with classifier features**: it ranks models trained on the same data sensibly and works offline at any
  image size, but its numbers are on a different scale from Inception FIDs and must never be compared with published
  ones, nor across different classifiers.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from .. import checks

__all__ = [
    "INCEPTION_ENV_VAR",
    "INCEPTION_WEIGHTS_NAME",
    "INCEPTION_WEIGHTS_URL",
    "InceptionFeatures",
    "fid",
    "fid_metric",
    "find_inception_weights",
    "inception_feature",
]

logger = logging.getLogger(__name__)

INCEPTION_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
"""The file name of the Inception-v3 FID weights (torch-fidelity's port of the 2015-12-05 TF weights)."""

INCEPTION_WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_WEIGHTS_NAME}"
"""Where to download the weights file by hand (vqgen never downloads it)."""

INCEPTION_ENV_VAR = "VQGEN_INCEPTION_WEIGHTS"
"""The environment variable naming the weights file (or its folder)."""
_INCEPTION_DIMS = (64, 192, 768, 2048)


def check_uint8_images(images: object, *, name: str) -> Tensor:
    """Check a uint8 ``(B, C, H, W)`` image batch; returns it."""
    images = getattr(images, "images", images)  # a vqgen.data.ImageDataset
    images = checks.check_tensor(images, name=name, ndim=4)
    if images.dtype != torch.uint8:
        raise TypeError(
            f"{name} must be uint8 images in [0, 255] of shape (B, C, H, W), got {images.dtype}; "
            "convert float images in [0, 1] with vqgen.images.to_uint8"
        )
    return images


def _check_feature(feature: object) -> nn.Module:
    if not isinstance(feature, nn.Module):
        raise TypeError(
            f"feature must be an nn.Module mapping uint8 images (B, C, H, W) to features (B, F), got "
            f"{type(feature).__name__}; use vqgen.classifier.ClassifierFeatures(model) or inception_feature()"
        )
    num_features = getattr(feature, "num_features", None)
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
        raise TypeError(
            f"feature ({type(feature).__name__}) must have a positive int attribute num_features (the width F of its "
            f"output), got {num_features!r}"
        )
    return feature


def fid_metric(feature: nn.Module, *, reset_real_features: bool = True) -> FrechetInceptionDistance:
    """A torchmetrics ``FrechetInceptionDistance`` over the features of ``feature``, on its device.

    Feed it with ``metric.update(images_uint8, real=True)`` / ``real=False`` and read ``metric.compute()``.

    Args:
        feature: an ``nn.Module`` with an int ``num_features``, mapping uint8 ``(B, C, H, W)`` → ``(B, num_features)``
            ([`vqgen.classifier.ClassifierFeatures`][vqgen.classifier.ClassifierFeatures] or
            [`inception_feature`][inception_feature]).
        reset_real_features: if False, ``reset()`` keeps the real-image statistics, so one set of real images can be
            compared with several sets of samples.

    Returns:
        A new metric on the extractor's device.

    Raises:
        TypeError: if ``feature`` is not a module with a positive int ``num_features``.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.metrics import fid
        >>> extractor = vqgen.build("model", "feature_classifier", widths=[8, 16]).feature_extractor()
        >>> from vqgen.metrics import fid_metric
        >>> metric = fid_metric(extractor, reset_real_features=False)
        >>> real = vqgen.data.load_dataset("digits", split="test").images
        >>> metric.update(real[:100], real=True)
        >>> for batch in real[100:300].split(100):                    # stream the other set batch by batch
        ...     metric.update(batch, real=False)
        >>> float(metric.compute()) >= 0
        True
    """
    feature = _check_feature(feature)
    device = next((t.device for t in (*feature.parameters(), *feature.buffers())), None)
    metric = FrechetInceptionDistance(feature=feature, reset_real_features=reset_real_features, normalize=False)
    return metric.to(device) if device is not None else metric


@torch.no_grad()
def fid(real_images: Tensor, fake_images: Tensor, *, feature: nn.Module, batch_size: int = 256) -> float:
    """FID between two sets of uint8 images ``(N, C, H, W)`` under the features of ``feature``.

    Images are moved batch by batch to the extractor's device. Both sets need at least 2 images; with fewer than
    ``num_features`` images per set the covariances are singular and the estimate is strongly biased upwards, so
    use several thousand images for reportable figures and compare only figures computed with the same number.

    Args:
        real_images: ``(N, C, H, W)`` uint8 (or a [`vqgen.data.ImageDataset`][vqgen.data.ImageDataset]).
        fake_images: ``(M, C, H, W)`` uint8 (or a dataset).
        feature: the feature extractor (see [`fid_metric`][fid_metric]).
        batch_size: images per forward pass of the extractor.

    Returns:
        The Fréchet distance (≥ 0 up to rounding); 0 for identical sets.

    Raises:
        TypeError: if the images are not uint8, ``feature`` has no ``num_features``, or ``batch_size`` is not an int.
        ValueError: if a set has fewer than 2 images, the images are not 4-D, or ``batch_size`` < 1.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.metrics import fid
        >>> extractor = vqgen.build("model", "feature_classifier", widths=[8, 16]).feature_extractor()
        >>> test = vqgen.data.load_dataset("digits", split="test").images       # (355, 1, 16, 16) uint8
        >>> noise = torch.randint(256, test.shape, dtype=torch.uint8)
        >>> fid(test, test, feature=extractor) < 1e-3 < fid(test, noise, feature=extractor)
        True
        >>> fid(test, test.float() / 255, feature=extractor)
        Traceback (most recent call last):
        TypeError: fake_images must be uint8 images in [0, 255] of shape (B, C, H, W), got torch.float32; ...
    """
    real_images = check_uint8_images(real_images, name="real_images")
    fake_images = check_uint8_images(fake_images, name="fake_images")
    checks.check_positive(batch_size, name="batch_size", integer=True)
    for name, images in (("real_images", real_images), ("fake_images", fake_images)):
        if images.shape[0] < 2:
            raise ValueError(f"{name} needs at least 2 images to estimate a covariance, got {images.shape[0]}")
    metric = fid_metric(feature)
    device = metric.real_features_sum.device
    for images, real in ((real_images, True), (fake_images, False)):
        for batch in images.split(batch_size):
            metric.update(batch.to(device), real=real)
    return float(metric.compute())


class InceptionFeatures(nn.Module):
    """Wraps torchmetrics' Inception-v3 (torch-fidelity weights) to take grey or colour uint8 images.

    ``(B, 1 or 3, H, W)`` uint8 → ``(B, num_features)`` float32; grey images are repeated to 3 channels, and the
    network resizes to 299×299 itself. Always in eval mode. Build it with [`inception_feature`][inception_feature].

    Args:
        inception: the network, mapping uint8 ``(B, 3, H, W)`` to ``(B, num_features)``.
        num_features: F, the width of its output.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from vqgen.metrics import InceptionFeatures
        >>> class MeanColour(nn.Module):                 # a stand-in for Inception-v3 (see inception_feature)
        ...     def forward(self, images):
        ...         return images.float().mean(dim=(2, 3))
        >>> features = InceptionFeatures(MeanColour(), num_features=3)
        >>> features(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape      # grey images: 3 channels
        torch.Size([2, 3])
    """

    def __init__(self, inception: nn.Module, num_features: int) -> None:
        super().__init__()
        self.inception = inception
        self.num_features = num_features

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Stay in eval mode whatever ``mode`` says (the FID network is never trained).

        Args:
            mode: ignored.

        Returns:
            The module itself.

        Examples:
            >>> from torch import nn
            >>> from vqgen.metrics import InceptionFeatures
            >>> InceptionFeatures(nn.Identity(), num_features=3).train().training
            False
        """
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Features of uint8 images, grey ones repeated to three channels.

        Args:
            images: ``(B, 1 or 3, H, W)`` uint8.

        Returns:
            ``(B, num_features)`` float32.

        Raises:
            TypeError: if ``images`` is not uint8.
            ValueError: if it is not 4-D with 1 or 3 channels.

        Examples:
            >>> import torch
            >>> from torch import nn
            >>> from vqgen.metrics import InceptionFeatures
            >>> features = InceptionFeatures(nn.Flatten(), num_features=3 * 4)
            >>> features(torch.zeros(2, 2, 2, 2, dtype=torch.uint8))
            Traceback (most recent call last):
            ValueError: Inception features need 1 or 3 image channels, got shape (2, 2, 2, 2)
        """
        images = check_uint8_images(images, name="images")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        elif images.shape[1] != 3:
            raise ValueError(f"Inception features need 1 or 3 image channels, got shape {tuple(images.shape)}")
        return self.inception(images)


def find_inception_weights(weights_path: str | os.PathLike[str] | None = None) -> tuple[Path | None, list[Path]]:
    """Locate the Inception weights file: ``weights_path``, else ``$VQGEN_INCEPTION_WEIGHTS``, else torch's hub cache.

    A directory is searched for ``weights-inception-2015-12-05-6726825d.pth``.

    Args:
        weights_path: the weights file, or a folder holding it; ``None`` looks where the docstring says.

    Returns:
        ``(path or None, the paths tried)``.

    Examples:
        >>> from vqgen.metrics import find_inception_weights
        >>> found, tried = find_inception_weights("models")
        >>> found, [path.as_posix() for path in tried]
        (None, ['models/weights-inception-2015-12-05-6726825d.pth'])
    """
    if weights_path is not None:
        candidates = [Path(weights_path)]
    elif os.environ.get(INCEPTION_ENV_VAR):
        candidates = [Path(os.environ[INCEPTION_ENV_VAR])]
    else:
        candidates = [Path(torch.hub.get_dir()) / "checkpoints"]
    tried = [c / INCEPTION_WEIGHTS_NAME if c.is_dir() or c.suffix != ".pth" else c for c in candidates]
    found = next((path for path in tried if path.is_file()), None)
    return found, tried


def _torch_fidelity_available() -> bool:
    return importlib.util.find_spec("torch_fidelity") is not None


def inception_feature(weights_path: str | os.PathLike[str] | None = None, *, dims: int = 2048) -> InceptionFeatures:
    """The standard FID feature extractor (Inception-v3 of arXiv:1512.00567 with the TF weights of 2015-12-05).

    Nothing is downloaded. It needs:

    1. the ``torch-fidelity`` package (``pip install torch-fidelity``, or ``pip install torchmetrics[image]``);
    2. the weights file ``weights-inception-2015-12-05-6726825d.pth`` (from ``INCEPTION_WEIGHTS_URL``), given
       as ``weights_path`` (the file or its folder), or by ``$VQGEN_INCEPTION_WEIGHTS``, or placed in torch's hub
       cache ``$TORCH_HOME/hub/checkpoints/`` (usually ``~/.cache/torch/hub/checkpoints/``).

    Args:
        weights_path: the weights file, or a folder holding it.
        dims: the feature layer: 2048 (pool features, standard FID), 768, 192 or 64.

    Returns:
        The extractor, in eval mode, for [`fid`][fid] and [`fid_metric`][fid_metric].

    Raises:
        ValueError: ``dims`` is not one of the four layers.
        ModuleNotFoundError: ``torch-fidelity`` is not installed (the message also says whether the weights exist).
        FileNotFoundError: the weights file is not where it was looked for.

    Examples:
        >>> from vqgen.metrics import inception_feature
        >>> try:
        ...     extractor = inception_feature()               # needs torch-fidelity and the weights file
        ... except (ModuleNotFoundError, FileNotFoundError):  # the message says what is missing and where to put it
        ...     extractor = None                               # use FID with classifier features instead
        >>> extractor is None or extractor.num_features == 2048
        True
    """
    if dims not in _INCEPTION_DIMS:
        raise ValueError(f"dims must be one of {list(_INCEPTION_DIMS)}, got {dims!r}")
    path, tried = find_inception_weights(weights_path)
    weights_help = (
        f"the weights file {INCEPTION_WEIGHTS_NAME} was not found (looked at {', '.join(map(str, tried))}); "
        f"download it on a machine with internet access from {INCEPTION_WEIGHTS_URL} and pass its path as "
        f"weights_path=..., set ${INCEPTION_ENV_VAR} to it, or put it in {Path(torch.hub.get_dir()) / 'checkpoints'}"
    )
    if not _torch_fidelity_available():
        weights_state = f"also, {weights_help}" if path is None else f"the weights were found at {path}"
        raise ModuleNotFoundError(
            "Inception FID features need the torch-fidelity package, which is not installed: run "
            f"`pip install torch-fidelity` (or `pip install torchmetrics[image]`); {weights_state}. Without them, use "
            "FID with classifier features (vqgen.classifier.ClassifierFeatures), which is not comparable with "
            "published Inception FIDs."
        )
    if path is None:
        raise FileNotFoundError(f"Inception FID features: {weights_help}")
    from torchmetrics.image.fid import NoTrainInceptionV3

    logger.info("loading Inception-v3 FID weights from %s", path)
    inception = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=[str(dims)], feature_extractor_weights_path=str(path)
    )
    return InceptionFeatures(inception, dims)
