"""Training the FID feature classifier ([`FeatureClassifier`][vqgen.classifier.FeatureClassifier]) through the one
training engine, like stage 1 and the priors: cross-entropy per batch, test accuracy per epoch::

    from vqgen.training.classifier import train_classifier

    result = train_classifier(train_set, test=test_set, epochs=3, seed=0)   # vqgen.data datasets or tensors
    result.model.save_pretrained("checkpoints/classifier")                  # safetensors + config.json
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .. import checks
from ..classifier import FeatureClassifier
from ..metrics.frechet import check_uint8_images
from .batches import loader_for
from .config import TrainConfig
from .engine import train as run_engine
from .inputs import images_to_float
from .runtime import seed_everything
from .task import StepOutput, Task

__all__ = ["ClassifierResult", "train_classifier"]


@dataclass(frozen=True)
class ClassifierResult:
    """What [`train_classifier`][train_classifier] returns.

    Attributes:
        model: the trained classifier, in eval mode.
        test_accuracy: accuracy on the test images (or on the held-out part of the training images).
        train_accuracy: accuracy on the images it was trained on (after training).
        history: one dict per epoch: ``{"epoch", "loss", "test_accuracy"}``.

    Examples:
        >>> import vqgen
        >>> from vqgen.training.classifier import train_classifier
        >>> result = train_classifier(vqgen.data.load_dataset("digits"), epochs=1, widths=[8, 16])   # 10% held out
        >>> type(result.model).__name__, len(result.history), 0 <= result.test_accuracy <= 1
        ('FeatureClassifier', 1, True)
    """

    model: FeatureClassifier
    test_accuracy: float
    train_accuracy: float
    history: list[dict] = field(default_factory=list)


def _images_and_labels(data: object, labels: object, *, name: str) -> tuple[Tensor, Tensor]:
    images = check_uint8_images(data, name=name)
    if labels is None:
        labels = getattr(data, "labels", None)
    if labels is None:
        raise ValueError(f"{name} has no labels: pass a vqgen.data dataset or the labels as a (N,) int64 tensor")
    labels = checks.check_indices(labels, num_categories=2**62, name=f"{name} labels")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"{name} labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    return images, labels.long()


def train_classifier(
    train: object,
    labels: Tensor | None = None,
    *,
    test: object = None,
    test_labels: Tensor | None = None,
    widths: Sequence[int] = (16, 32, 64, 128),
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 5e-3,
    holdout: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> ClassifierResult:
    """Train a [`FeatureClassifier`][FeatureClassifier] with Adam and cross-entropy; report its test accuracy.

    Args:
        train: a [`vqgen.data.ImageDataset`][vqgen.data.ImageDataset], or uint8 images ``(N, C, H, W)`` with ``labels``.
        labels: ``(N,)`` int64 labels when ``train`` is a tensor.
        test: test images (dataset or uint8 tensor with ``test_labels``); if ``None``, a random ``holdout``
            fraction of ``train`` is held out instead.
        test_labels: ``(M,)`` labels when ``test`` is a tensor.
        widths: the classifier's conv widths (its last entry is the FID feature width).
        epochs: passes over the training images.
        batch_size: images per step.
        lr: Adam learning rate (decayed to 0 by a cosine schedule).
        holdout: fraction held out when ``test`` is ``None``, in ``(0, 1)``.
        seed: seeds the initialisation, the hold-out split and the shuffling: same seed, same model.
        device: where to train; ``None`` picks CUDA when available.
        progress: show a progress bar per epoch.

    Returns:
        The model (in eval mode), its test and training accuracy, and the per-epoch history.

    Raises:
        TypeError: if the images are not uint8, or a number has the wrong type.
        ValueError: if labels are missing or do not match the images, or a number is out of range.

    Examples:
        >>> import vqgen
        >>> from vqgen.training.classifier import train_classifier
        >>> train = vqgen.data.load_dataset("digits")
        >>> test = vqgen.data.load_dataset("digits", split="test")
        >>> result = train_classifier(train, test=test, epochs=2, widths=[8, 16, 32], seed=0)   # a small one
        >>> [sorted(record) for record in result.history]
        [['epoch', 'loss', 'test_accuracy'], ['epoch', 'loss', 'test_accuracy']]
        >>> extractor = result.model.feature_extractor()   # FID features: save the model and reuse it
        >>> extractor(test.images[:4]).shape               # the last width
        torch.Size([4, 32])
    """
    images, labels = _images_and_labels(train, labels, name="train")
    checks.check_positive(epochs, name="epochs", integer=True)
    checks.check_positive(batch_size, name="batch_size", integer=True)
    checks.check_positive(lr, name="lr")
    generator = seed_everything(seed)
    if test is None:
        checks.check_probability(holdout, name="holdout", allow_one=False)
        order = torch.randperm(images.shape[0], generator=generator)
        n_test = max(1, round(holdout * images.shape[0]))
        test_images, test_labels_ = images[order[:n_test]], labels[order[:n_test]]
        images, labels = images[order[n_test:]], labels[order[n_test:]]
    else:
        test_images, test_labels_ = _images_and_labels(test, test_labels, name="test")
    num_classes = getattr(train, "num_classes", None) or int(max(labels.max(), test_labels_.max())) + 1
    model = FeatureClassifier(in_channels=images.shape[1], num_classes=num_classes, widths=list(widths))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=None if device is None
                         else str(device), progress=progress, schedule="cosine")  # fmt: skip
    task = _ClassifierTask(model, test_images, test_labels_)
    records = run_engine(model, task, loader_for(images, labels, config=config), config)
    history = [
        {"epoch": record["epoch"], "loss": record["train"]["loss"], "test_accuracy": record["eval"]["accuracy"]}
        for record in records
    ]
    model.eval()
    return ClassifierResult(
        model=model,
        test_accuracy=history[-1]["test_accuracy"],
        train_accuracy=model.accuracy(images, labels),
        history=history,
    )


class _ClassifierTask(Task):
    """The classifier's step (cross-entropy) and evaluation (test accuracy) for the training engine."""

    name = "classifier"
    monitor = "error"
    has_eval = True

    def __init__(self, model: FeatureClassifier, test_images: Tensor, test_labels: Tensor) -> None:
        self.model, self.test_images, self.test_labels = model, test_images, test_labels

    def step(self, forward: Callable[[Tensor], Tensor], batch: tuple[Tensor, Tensor]) -> StepOutput:
        images, labels = batch
        x = images_to_float(images, self.model.device)  # (B, C, H, W) in [0, 1]
        loss = nn.functional.cross_entropy(forward(x).float(), labels.to(self.model.device))
        return StepOutput(loss, {"loss": loss.detach()}, weight=x.shape[0])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        accuracy = model.accuracy(self.test_images, self.test_labels)
        return {"accuracy": accuracy, "error": 1.0 - accuracy}
