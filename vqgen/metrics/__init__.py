"""Evaluation metrics: likelihood in bits/dim, codebook usage, and FID with a pluggable feature extractor.

All accumulate float64 sufficient statistics in torchmetrics ``Metric`` states reduced by summation, so they are
exact over any batching and synchronise across processes (DDP) through torchmetrics.

=========================  ==============================================================================
[`bits_per_dim`][bits_per_dim]       nats → bits per value; [`BitsPerDim`][BitsPerDim] accumulates it over batches
[`prior_bits_per_dim`][prior_bits_per_dim] a prior's mean bits/dim on a dataset of grids
[`perplexity`][perplexity]         ``exp(entropy)`` of a code histogram; [`code_statistics`][code_statistics] adds usage
(per batch) [`CodebookUsage`][CodebookUsage]     code histogram → perplexity and fraction of codes used, over a whole
dataset [`fid`][fid]                FID between two sets of uint8 images under a feature extractor
[`fid_metric`][fid_metric]         the torchmetrics ``FrechetInceptionDistance`` for streaming use
[`inception_feature`][inception_feature]  the standard Inception features (needs torch-fidelity and a local weights
file) =========================  ==============================================================================

The offline alternative to Inception features is
[`vqgen.classifier.ClassifierFeatures`][vqgen.classifier.ClassifierFeatures] ("FID with classifier features": comparable
only with itself; see [`vqgen.metrics.frechet`][vqgen.metrics.frechet]).
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
