"""Evaluate a trained [`TwoStageModel`][vqgen.TwoStageModel] against the baselines the seed warns about.

One call gives the numbers that say whether the prior learnt anything:

- stage 1: held-out reconstruction MSE (pixels in ``[0, 1]``), codebook perplexity and usage;
- stage 2: held-out negative log-likelihood of the code grids in bits per code, for the prior and for the
  ``independent`` baseline (each position drawn from its own marginal code frequencies, fit on the training codes);
- samples: FID of decoded samples against held-out images, for the prior, the ``independent`` baseline and
  ``uniform`` random codes, with the features of a classifier trained on the dataset's labels
  ([`vqgen.classifier`][vqgen.classifier]: "FID with classifier features", comparable only with itself), and the
  fraction of a class-conditional prior's samples that the classifier recognises as the class asked for;
- optionally the floor: the FID of as many random real training images, and of their reconstructions.

Against the whole test split (``fid_reference="all"``), with ``num_samples=1000`` and 5 floor draws, these are the
figures of the README and of ``benchmarks/quality/test_budget.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from .autoencoders.vqvae import encode_codes
from .classifier import FeatureClassifier
from .images import to_uint8
from .interfaces import AutoregressivePrior
from .metrics import prior_bits_per_dim
from .metrics.frechet import fid_metric
from .priors.baselines import IndependentPrior, UniformPrior
from .sampling import SamplingOptions
from .training.classifier import train_classifier
from .training.inputs import InMemoryData, as_images
from .training.stage1 import evaluate_vqvae
from .two_stage import TwoStageModel

__all__ = ["baseline_priors", "class_cycle", "evaluate_two_stage"]

logger = logging.getLogger(__name__)


def baseline_priors(model: TwoStageModel, train_data: InMemoryData) -> dict[str, AutoregressivePrior]:
    """The ``independent`` (fit on the codes of ``train_data``) and ``uniform`` baselines for ``model``'s codes.

    What a learned prior must beat: ``independent`` draws each position from its own code frequencies in the
    training codes ([`IndependentPrior`][vqgen.priors.baselines.IndependentPrior]), ``uniform`` draws every code
    with probability ``1 / K`` ([`UniformPrior`][vqgen.priors.baselines.UniformPrior]). Both are priors like any
    other: pass them as ``prior=`` to ``model.sample``, or to [`evaluate_two_stage`][evaluate_two_stage].

    Args:
        model: a [`TwoStageModel`][vqgen.TwoStageModel] whose stage 1 is trained.
        train_data: its training images (a dataset or uint8 ``(N, C, H, W)``), encoded to fit ``independent``.

    Returns:
        ``{"independent": IndependentPrior, "uniform": UniformPrior}``, on the model's device.

    Examples:
        >>> import vqgen
        >>> from vqgen import TwoStageModel
        >>> from vqgen.evaluation import baseline_priors
        >>> model = TwoStageModel.from_preset("digits-tiny")
        >>> digits = vqgen.data.load_dataset("digits")
        >>> _ = model.fit_stage1(digits, max_steps=2)
        >>> baselines = baseline_priors(model, digits)
        >>> sorted(baselines), baselines["uniform"].num_categories
        (['independent', 'uniform'], 16)
        >>> model.sample(4, prior=baselines["independent"]).shape          # images decoded from baseline codes
        torch.Size([4, 1, 16, 16])
    """
    codes = encode_codes(model.vqvae, train_data)  # (N, 1, h, w)
    independent = IndependentPrior.from_data(codes, num_categories=model.num_codes)
    uniform = UniformPrior(num_categories=model.num_codes, channels=1)
    return {"independent": independent.to(model.device), "uniform": uniform.to(model.device)}


def class_cycle(model: TwoStageModel, n: int) -> torch.Tensor | None:
    """Labels ``0, 1, ..., M-1, 0, 1, ...`` ``(n,)`` for a class-conditional prior with M classes, else ``None``.

    Args:
        model: a [`TwoStageModel`][vqgen.TwoStageModel].
        n: the number of labels.

    Returns:
        ``(n,)`` int64 labels on the model's device, or ``None`` when the prior takes no class label.

    Examples:
        >>> from vqgen import TwoStageModel
        >>> from vqgen.evaluation import class_cycle
        >>> model = TwoStageModel.from_config({"encoder": "conv", "quantizer": "vq",
        ...                                    "prior": {"name": "rnn", "num_classes": 3}})
        >>> class_cycle(model, 7)
        tensor([0, 1, 2, 0, 1, 2, 0])
    """
    if model.prior.num_classes is None:
        return None
    return torch.arange(n, device=model.device) % model.prior.num_classes


class _Reference:
    """FID of uint8 image sets ``(N, C, H, W)`` against one set of real images, whose statistics are computed once."""

    def __init__(self, feature: torch.nn.Module, real: torch.Tensor, batch_size: int = 256) -> None:
        self.metric, self.batch_size = fid_metric(feature, reset_real_features=False), batch_size
        self.device = self.metric.real_features_sum.device
        with torch.no_grad():
            for batch in real.split(batch_size):
                self.metric.update(batch.to(self.device), real=True)

    @torch.no_grad()
    def fid(self, fake: torch.Tensor) -> float:
        if fake.shape[0] < 2:
            raise ValueError(f"FID needs at least 2 images to estimate a covariance, got {fake.shape[0]}")
        self.metric.reset()  # the fake statistics only
        for batch in fake.split(self.batch_size):
            self.metric.update(batch.to(self.device), real=False)
        return float(self.metric.compute())


def evaluate_two_stage(
    model: TwoStageModel,
    train_data: InMemoryData,
    test_data: InMemoryData,
    *,
    classifier: FeatureClassifier | None = None,
    baselines: Mapping[str, AutoregressivePrior] | None = None,
    num_samples: int = 500,
    temperature: float | None = None,
    seed: int = 0,
    progress: bool = False,
    options: SamplingOptions | None = None,
    fid_reference: str = "first",
    floor_draws: int = 0,
) -> dict[str, Any]:
    """Held-out metrics of a trained model and of its baselines, as a JSON-able dict.

    Args:
        model: a fitted [`TwoStageModel`][vqgen.TwoStageModel].
        train_data: the training data (fits the ``independent`` baseline, and the classifier when none is given).
        test_data: held-out images (dataset or uint8 ``(N, C, H, W)``); FID compares samples with them.
        classifier: the FID feature classifier; trained on ``train_data``'s labels when ``None``.
        baselines: ``{"independent": ..., "uniform": ...}`` from [`baseline_priors`][baseline_priors], if already built
            (saves encoding ``train_data`` again).
        num_samples: samples drawn from the prior and from each baseline for FID (a class-conditional prior's
            cycle through the classes).
        temperature: the prior's sampling temperature (replaces that of ``options``).
        seed: seeds the samplers (each prior draws from its own ``torch.Generator`` seeded with it) and the floor's
            draws.
        progress: show progress bars.
        options: how to sample the prior ([`SamplingOptions`][vqgen.sampling.SamplingOptions]); its ``generator`` is
            replaced as ``seed`` says, so every prior draws from the same stream. The baselines are drawn with its
            ``method`` only, at temperature 1 and from all values: they are references, not tuned.
        fid_reference: the real images every FID compares with: ``"first"`` ``num_samples`` of ``test_data``, or
            ``"all"`` of it (the scale of the README's figures and the quality benchmarks).
        floor_draws: with ``K > 0``, the floor too: the FID of ``num_samples`` random training images, drawn ``K``
            times (their mean, ``"floor"``, and each, ``"floor_draws"``), and of the first draw's reconstructions.

    Returns:
        ``{"stage1": {"reconstruction_mse", "perplexity", "usage"}, "bits_per_code": {"prior", "independent",
        "uniform"}, "fid_classifier": {the same three, and "floor", "reconstructions" with ``floor_draws``},
        "classifier_test_accuracy": float or None, "recognised": float (a class-conditional prior's samples that the
        classifier recognises as the class asked for), "num_samples": int, "fid_reference": str}`` (and
        ``"floor_draws"``: each draw's FID, with ``floor_draws``).

    Raises:
        TypeError: if ``test_data`` holds no images.
        ValueError: if the model is not fitted, or the data does not fit it; an unknown ``fid_reference`` or a
            negative ``floor_draws``.

    Examples:
        >>> import vqgen
        >>> from vqgen import TwoStageModel
        >>> from vqgen.evaluation import evaluate_two_stage
        >>> model = TwoStageModel.from_preset("digits-tiny")
        >>> train = vqgen.data.load_dataset("digits")
        >>> test = vqgen.data.load_dataset("digits", split="test")
        >>> _ = model.fit(train, stage1={"max_steps": 2}, stage2={"max_steps": 2})
        >>> results = evaluate_two_stage(model, train, test, num_samples=16)      # trains the FID classifier too
        >>> sorted(results["bits_per_code"]), sorted(results["fid_classifier"])
        (['independent', 'prior', 'uniform'], ['independent', 'prior', 'uniform'])
        >>> round(results["bits_per_code"]["uniform"], 3)                        # log2(16) bits per code
        4.0
    """
    if fid_reference not in ("first", "all"):
        raise ValueError(f"fid_reference must be 'first' or 'all', got {fid_reference!r}")
    if isinstance(floor_draws, bool) or not isinstance(floor_draws, int) or floor_draws < 0:
        raise ValueError(f"floor_draws must be an integer >= 0, got {floor_draws!r}")
    test_images = as_images(test_data, name="test_data")
    sampling = SamplingOptions.of(options, progress=progress)
    if temperature is not None:
        sampling = SamplingOptions.of(sampling, temperature=temperature)
    plain = SamplingOptions.of(sampling, temperature=1.0, top_k=None, top_p=None)  # the baselines' draws
    model.eval()
    stage1 = evaluate_vqvae(model.vqvae, test_images)
    results: dict[str, Any] = {"stage1": {key: stage1[key] for key in ("reconstruction_mse", "perplexity", "usage")}}

    if baselines is None:
        baselines = baseline_priors(model, train_data)
    test_codes = encode_codes(model.vqvae, test_images).to(model.device)  # (N, 1, h, w)
    test_cond = getattr(test_data, "labels", None)
    prior_cond = test_cond.to(model.device) if model.prior.num_classes is not None and test_cond is not None else None
    results["bits_per_code"] = {"prior": prior_bits_per_dim(model.prior, test_codes, prior_cond)}
    for name, baseline in baselines.items():  # held-out bits/code of every prior from the one vqgen.metrics function
        results["bits_per_code"][name] = prior_bits_per_dim(baseline, test_codes)

    if classifier is None:
        trained = train_classifier(train_data, test=test_data, progress=progress, seed=seed)
        classifier, accuracy = trained.model, trained.test_accuracy
    else:
        accuracy = classifier.accuracy(test_images, test_data.labels) if hasattr(test_data, "labels") else None
    classifier = classifier.to(model.device)
    results["classifier_test_accuracy"] = accuracy
    real = test_images[:num_samples] if fid_reference == "first" else test_images
    reference = _Reference(classifier.feature_extractor(), real)
    fids: dict[str, float] = {}
    for name, prior in (("prior", None), *baselines.items()):
        generator = torch.Generator(model.device).manual_seed(seed)
        cond = class_cycle(model, num_samples) if prior is None else None
        how = sampling if prior is None else plain
        images = to_uint8(model.sample(num_samples, cond, prior=prior, options=how, generator=generator)).cpu()
        fids[name] = reference.fid(images)
        logger.info("FID (classifier features) of %s samples: %.3f", name, fids[name])
        if prior is None and cond is not None and model.prior.num_classes == classifier.num_classes:
            results["recognised"] = classifier.accuracy(images, cond)  # the fraction sampled as the class asked for
    if floor_draws:
        train_images = as_images(train_data, name="train_data")
        generator = torch.Generator().manual_seed(seed)
        draws = [torch.randperm(len(train_images), generator=generator)[:num_samples] for _ in range(floor_draws)]
        results["floor_draws"] = [reference.fid(train_images[index]) for index in draws]
        fids["floor"] = sum(results["floor_draws"]) / floor_draws
        fids["reconstructions"] = reference.fid(to_uint8(model.reconstruct(train_images[draws[0]])).cpu())
    results["fid_classifier"] = fids
    results["num_samples"], results["fid_reference"] = num_samples, fid_reference
    return results
