"""A small image classifier for one dataset, used as the feature extractor of "FID with classifier features".

The standard FID uses Inception-v3 features (arXiv:1706.08500), which need weights that cannot be downloaded here
and were trained on natural colour photographs, not 28×28 digits. The offline alternative is a classifier trained on
the dataset itself: its penultimate layer (after global average pooling) gives ``num_features``-d image features
that separate the dataset's classes, and [`vqgen.metrics.fid`][vqgen.metrics.fid] computes the Fréchet distance between
real and generated images in that space. Such figures rank models trained on the same data, but they are on another
scale than Inception FIDs and depend on the classifier: compare them only with figures computed with the *same*
classifier checkpoint and the same number of images, and never with published FIDs.

```python
from vqgen.training.classifier import train_classifier
from vqgen.metrics import fid

result = train_classifier(train_set, test=test_set, epochs=3, seed=0)   # vqgen.data datasets or tensors
result.model.save_pretrained("checkpoints/classifier")                  # safetensors + config.json
score = fid(test_set.images, samples_uint8, feature=result.model.feature_extractor())
```

Architecture: ``len(widths)`` stages of conv3×3-BN-ReLU, each but the last followed by a 2×2 max pool; global average
pool → features ``(B, widths[-1])`` → linear → class logits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from . import checks
from .interfaces import Component
from .metrics.frechet import check_uint8_images
from .registry import register

__all__ = ["ClassifierFeatures", "FeatureClassifier"]


def __getattr__(name: str) -> Any:
    """``train_classifier`` and ``ClassifierResult`` moved to [`vqgen.training.classifier`][vqgen.training.classifier]
    in 0.2 (beside the other fits); importing them from here warns until 0.3."""
    if name not in ("train_classifier", "ClassifierResult"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import warnings

    from .training import classifier

    warnings.warn(
        f"vqgen.classifier.{name} moved to vqgen.training.classifier.{name}; the old path will be removed in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(classifier, name)


logger = logging.getLogger(__name__)


@register("model", "feature_classifier")
class FeatureClassifier(Component):
    """Conv classifier of ``(B, C, H, W)`` images whose pooled penultimate activations serve as FID features.

    Args:
        in_channels: C, image channels (1 for grey, 3 for colour).
        num_classes: number of classes.
        widths: channels of each conv stage; the last is ``num_features``. Any image size ≥ ``2**(len(widths)-1)``
            works (global average pooling), but features are only meaningful at the size the model was trained on.

    Raises:
        TypeError: if ``in_channels``, ``num_classes`` or a width is not an int.
        ValueError: if one is not positive, or ``widths`` is empty.

    Examples:
        >>> import torch
        >>> from vqgen.classifier import FeatureClassifier
        >>> classifier = FeatureClassifier(in_channels=3, num_classes=10, widths=[16, 32, 64])
        >>> classifier(torch.rand(4, 3, 32, 32)).shape, classifier.num_features
        (torch.Size([4, 10]), 64)
        >>> FeatureClassifier(widths=[])
        Traceback (most recent call last):
        ValueError: widths must be a non-empty list of positive ints, got []
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        checks.check_positive(in_channels, name="in_channels", integer=True)
        checks.check_positive(num_classes, name="num_classes", integer=True)
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths!r}")
        for width in widths:
            checks.check_positive(width, name="widths[...]", integer=True)
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = []
        fan_in = in_channels
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(fan_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if index < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))  # (B, w, ceil(H/2), ceil(W/2))
            fan_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(fan_in, num_classes)

    TINY_CONFIG = {"widths": [4, 8]}
    """Two stages of 4 and 8 channels."""

    @property
    def num_features(self) -> int:
        """F, the width of the features (the last conv stage).

        Examples:
            >>> from vqgen.classifier import FeatureClassifier
            >>> FeatureClassifier().num_features
            128
        """
        return self.head.in_features

    def embed(self, x: Tensor) -> Tensor:
        """Features ``(B, F)`` of float images ``x`` ``(B, C, H, W)`` in ``[0, 1]``.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``.

        Returns:
            ``(B, F)``: the globally pooled activations of the last stage.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if it has other channels, or holds NaN or inf.

        Examples:
            >>> import torch
            >>> from vqgen.classifier import FeatureClassifier
            >>> FeatureClassifier(widths=[8, 16]).embed(torch.rand(4, 1, 28, 28)).shape
            torch.Size([4, 16])
        """
        checks.check_images(x, channels=self.in_channels, name="x")
        h = self.body(x * 2 - 1)  # (B, F, h, w)
        return h.mean(dim=(2, 3))  # (B, F)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, num_classes)`` of float images ``x`` ``(B, C, H, W)`` in ``[0, 1]``.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``.

        Returns:
            ``(B, num_classes)`` logits.

        Examples:
            >>> import torch
            >>> from vqgen.classifier import FeatureClassifier
            >>> FeatureClassifier(num_classes=5, widths=[8, 16])(torch.rand(4, 1, 28, 28)).shape
            torch.Size([4, 5])
        """
        return self.head(self.embed(x))

    def features(self, images: Tensor) -> Tensor:
        """Features ``(B, F)`` float32 of uint8 images ``(B, C, H, W)`` (in the module's current train/eval mode).

        Args:
            images: ``(B, C, H, W)`` uint8.

        Returns:
            ``(B, F)`` float32.

        Raises:
            TypeError: if ``images`` is not uint8.
            ValueError: if it is not 4-D.

        Examples:
            >>> import torch
            >>> from vqgen.classifier import FeatureClassifier
            >>> FeatureClassifier(widths=[8, 16]).eval().features(torch.zeros(4, 1, 28, 28, dtype=torch.uint8)).shape
            torch.Size([4, 16])
        """
        images = check_uint8_images(images, name="images")
        return self.embed(images.float() / 255)

    @torch.no_grad()
    def predict(self, images: Tensor, *, batch_size: int = 512) -> Tensor:
        """Predicted labels ``(N,)`` int64 of uint8 images ``(N, C, H, W)`` (eval mode, on the model's device).

        Args:
            images: ``(N, C, H, W)`` uint8.
            batch_size: images per forward pass.

        Returns:
            ``(N,)`` int64 labels, on the CPU.

        Raises:
            TypeError: if ``images`` is not uint8, or ``batch_size`` not an int.
            ValueError: if ``images`` is not 4-D, or ``batch_size`` < 1.

        Examples:
            >>> import vqgen
            >>> from vqgen.classifier import FeatureClassifier
            >>> FeatureClassifier(widths=[8, 16]).predict(vqgen.data.load_dataset("digits").images[:5]).shape
            torch.Size([5])
        """
        images = check_uint8_images(images, name="images")
        checks.check_positive(batch_size, name="batch_size", integer=True)
        device = self.head.weight.device
        was_training = self.training
        self.eval()
        try:
            out = [self.head(self.features(batch.to(device))).argmax(1).cpu() for batch in images.split(batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out)

    def accuracy(self, images: Tensor, labels: Tensor, *, batch_size: int = 512) -> float:
        """Fraction of uint8 ``images`` ``(N, C, H, W)`` whose predicted label equals ``labels`` ``(N,)``.

        Args:
            images: ``(N, C, H, W)`` uint8.
            labels: ``(N,)`` int64 labels in ``[0, num_classes)``.
            batch_size: images per forward pass.

        Returns:
            The accuracy, in ``[0, 1]``.

        Raises:
            TypeError: if ``labels`` is not an integer tensor or ``images`` not uint8.
            ValueError: if a label is out of range, or ``labels`` does not have one entry per image.

        Examples:
            >>> import vqgen
            >>> from vqgen.classifier import FeatureClassifier
            >>> test = vqgen.data.load_dataset("digits", split="test")
            >>> 0 <= FeatureClassifier(widths=[8, 16]).accuracy(test.images, test.labels) <= 1    # untrained
            True
        """
        labels = checks.check_indices(labels, num_categories=self.num_classes, name="labels")
        predicted = self.predict(images, batch_size=batch_size)
        if labels.shape != predicted.shape:
            raise ValueError(f"labels must have shape {tuple(predicted.shape)}, got {tuple(labels.shape)}")
        return float((predicted == labels.cpu()).double().mean())

    def feature_extractor(self) -> ClassifierFeatures:
        """This classifier as an FID feature extractor for [`vqgen.metrics.fid`][vqgen.metrics.fid] (shares the
        weights).

        Returns:
            A new [`ClassifierFeatures`][ClassifierFeatures] around this model.

        Examples:
            >>> from vqgen.classifier import FeatureClassifier
            >>> classifier = FeatureClassifier(widths=[8, 16])
            >>> extractor = classifier.feature_extractor()
            >>> extractor.classifier is classifier, extractor.num_features
            (True, 16)
        """
        return ClassifierFeatures(self)


class ClassifierFeatures(nn.Module):
    """A [`FeatureClassifier`][FeatureClassifier] as the FID extractor: uint8 ``(B, C, H, W)`` → features ``(B,
    num_features)``.

    Always in eval mode (batch-norm statistics are frozen) and without gradients, as torchmetrics' FID expects.
    Grey images are repeated to 3 channels for a colour classifier. Sharing: the classifier is a submodule, so
    moving the metric to a device moves the classifier too.

    Args:
        classifier: a trained [`FeatureClassifier`][FeatureClassifier] (put in eval mode).

    Raises:
        TypeError: if ``classifier`` is not a FeatureClassifier.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.classifier import ClassifierFeatures, FeatureClassifier
        >>> extractor = ClassifierFeatures(FeatureClassifier(in_channels=3, widths=[8, 16]))
        >>> extractor(torch.zeros(2, 1, 32, 32, dtype=torch.uint8)).shape         # grey images, colour classifier
        torch.Size([2, 16])
        >>> test = vqgen.data.load_dataset("digits", split="test").images
        >>> vqgen.metrics.fid(test[:100], test[100:200], feature=ClassifierFeatures(FeatureClassifier())) >= 0
        True
    """

    def __init__(self, classifier: FeatureClassifier) -> None:
        super().__init__()
        if not isinstance(classifier, FeatureClassifier):
            raise TypeError(f"classifier must be a FeatureClassifier, got {type(classifier).__name__}")
        self.classifier = classifier.eval()
        self.num_features = classifier.num_features

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Stay in eval mode whatever ``mode`` says (the batch-norm statistics stay frozen).

        Args:
            mode: ignored.

        Returns:
            The module itself.

        Examples:
            >>> from vqgen.classifier import ClassifierFeatures, FeatureClassifier
            >>> ClassifierFeatures(FeatureClassifier()).train().training
            False
        """
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """The classifier's features of uint8 images, without gradients.

        Args:
            images: ``(B, C, H, W)`` uint8; one channel for a colour classifier is repeated to three.

        Returns:
            ``(B, num_features)`` float32.

        Raises:
            TypeError: if ``images`` is not uint8.
            ValueError: if it is not 4-D.

        Examples:
            >>> import torch
            >>> from vqgen.classifier import FeatureClassifier
            >>> extractor = FeatureClassifier(widths=[8, 16]).feature_extractor()
            >>> extractor(torch.zeros(3, 1, 28, 28, dtype=torch.uint8)).shape
            torch.Size([3, 16])
        """
        images = check_uint8_images(images, name="images")
        if images.shape[1] == 1 and self.classifier.in_channels == 3:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        return self.classifier.features(images)
