"""Evaluation metrics: likelihood in bits/dim, codebook usage, and FID with a pluggable feature extractor.

All accumulate float64 sufficient statistics in torchmetrics ``Metric`` states reduced by summation, so they are
exact over any batching and synchronise across processes (DDP) through torchmetrics.

=========================  ==============================================================================
:func:`bits_per_dim`       nats → bits per value; :class:`BitsPerDim` accumulates it over batches
:func:`prior_bits_per_dim` a prior's mean bits/dim on a dataset of grids
:func:`perplexity`         ``exp(entropy)`` of a code histogram; :func:`code_statistics` adds usage (per batch)
:class:`CodebookUsage`     code histogram → perplexity and fraction of codes used, over a whole dataset
:func:`fid`                FID between two sets of uint8 images under a feature extractor
:func:`fid_metric`         the torchmetrics ``FrechetInceptionDistance`` for streaming use
:func:`inception_feature`  the standard Inception features (needs torch-fidelity and a local weights file)
=========================  ==============================================================================

The offline alternative to Inception features is :class:`vqgen.classifier.ClassifierFeatures` ("FID with classifier
features": comparable only with itself; see :mod:`vqgen.metrics.frechet`).
"""

from .codebook import CodebookUsage, code_statistics, perplexity
from .frechet import (
    INCEPTION_ENV_VAR,
    INCEPTION_WEIGHTS_NAME,
    INCEPTION_WEIGHTS_URL,
    InceptionFeatures,
    fid,
    fid_metric,
    find_inception_weights,
    inception_feature,
)
from .likelihood import BitsPerDim, bits_per_dim, prior_bits_per_dim

__all__ = [
    "INCEPTION_ENV_VAR",
    "INCEPTION_WEIGHTS_NAME",
    "INCEPTION_WEIGHTS_URL",
    "BitsPerDim",
    "CodebookUsage",
    "InceptionFeatures",
    "bits_per_dim",
    "code_statistics",
    "fid",
    "fid_metric",
    "find_inception_weights",
    "inception_feature",
    "perplexity",
    "prior_bits_per_dim",
]
