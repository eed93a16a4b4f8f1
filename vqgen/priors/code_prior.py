"""The one way to build "a prior over VQ-VAE code grids", shared by [`TwoStageModel`][vqgen.TwoStageModel] and the CLI.

A prior over codes models grids ``(B, 1, h, w)`` of ``K`` = codebook-size categories. What that fixes, whoever asks:

- ``num_categories = num_codes`` and ``channels = 1`` (set when absent; a different value given explicitly is left
  for the caller's own check to reject, with its own message);
- ``input_mode="embed"`` for priors that take it: code indices carry no order, so a learned embedding per code is
  the right input whatever ``K`` is. (``"auto"`` would pick ``"scale"`` for a 256-code codebook, treating code 17 as
  "close to" code 18.) Pass ``input_mode`` explicitly to override;
- ``height``/``width`` from ``grid_shape`` for priors tied to one grid size (the ``independent`` baseline);
- optionally, the input embedding starts from the trained quantizer's codebook ``(K, D)`` (``embed_dim = D``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ..config import is_spec
from ..interfaces import AutoregressivePrior
from ..registry import registry

__all__ = ["build_code_prior", "named_config"]


def named_config(value: str | Mapping[str, Any], *, kind: str) -> tuple[str, dict[str, Any]]:
    """``"conv"``, ``{"name": "conv", **config}`` or a spec ``{"kind", "name", "config"}`` → ``(name, config)``.

    Args:
        value: a registered name, a dict with a ``"name"`` key and options, or a component spec.
        kind: the kind of component, for the error message.

    Returns:
        The name and a new dict of its options.

    Raises:
        TypeError: if ``value`` is none of the three.

    Examples:
        >>> from vqgen.priors.code_prior import named_config
        >>> named_config("conv", kind="encoder"), named_config({"name": "vq", "num_codes": 64}, kind="quantizer")
        (('conv', {}), ('vq', {'num_codes': 64}))
        >>> named_config({"num_codes": 64}, kind="quantizer")
        Traceback (most recent call last):
        TypeError: the quantizer must be a name or a dict with a 'name' key, got {'num_codes': 64}
    """
    if isinstance(value, str):
        return value, {}
    if is_spec(value):
        return value["name"], dict(value["config"])
    if isinstance(value, Mapping) and "name" in value:
        config = dict(value)
        return config.pop("name"), config
    raise TypeError(f"the {kind} must be a name or a dict with a 'name' key, got {value!r}")


def build_code_prior(
    spec: str | Mapping[str, Any],
    *,
    num_codes: int,
    num_classes: int | None = None,
    grid_shape: Sequence[int] | None = None,
    codebook: Tensor | None = None,
    tiny: bool = False,
) -> AutoregressivePrior:
    """Build the prior ``spec`` (a name, ``{"name": ..., **options}`` or a spec) over ``(1, h, w)`` code grids.

    Options given in ``spec`` win over everything filled in here (see the module docstring).

    Args:
        spec: which prior, with any constructor options.
        num_codes: K, the codebook size: the prior's ``num_categories``.
        num_classes: make the prior class-conditional on this many labels.
        grid_shape: ``(h, w)`` of the code grids, for priors that model one grid size only.
        codebook: a trained codebook ``(K, D)`` to start the input embedding from (sets ``embed_dim = D``).
        tiny: start from the prior's [`tiny_config`][vqgen.interfaces.Component.tiny_config] (tests, smoke runs).

    Returns:
        The new prior: ``num_categories=num_codes``, ``channels=1``, embedded inputs where it takes ``input_mode``.

    Raises:
        ValueError: the prior cannot be conditioned on classes, or cannot start from a codebook; the name is unknown.
        TypeError: if ``spec`` is not a name, dict or spec, or holds an option the prior does not take.

    Examples:
        >>> import vqgen
        >>> from vqgen.priors import build_code_prior
        >>> prior = build_code_prior({"name": "gated_pixelcnn", "num_layers": 4}, num_codes=256, num_classes=10)
        >>> prior.num_categories, prior.channels, prior.input.mode, prior.num_classes
        (256, 1, 'embed', 10)
        >>> codebook = vqgen.build("quantizer", "vq", num_codes=256, dim=16).codebook
        >>> build_code_prior("pixelcnn", num_codes=256, codebook=codebook).input.embed_dim
        16
        >>> build_code_prior("independent", num_codes=256, grid_shape=(7, 7)).grid_shape
        (7, 7)
    """
    name, options = named_config(spec, kind="prior")
    cls = registry("prior").get(name)
    accepted = inspect.signature(cls.__init__).parameters
    config = dict(cls.tiny_config()) if tiny else {}
    config |= {"num_categories": num_codes, "channels": 1}
    if "input_mode" in accepted:
        config["input_mode"] = "embed"
    if grid_shape is not None and "height" in accepted and "width" in accepted:
        config["height"], config["width"] = (int(s) for s in grid_shape)
    if num_classes is not None:
        if "num_classes" not in accepted:
            raise ValueError(f"prior {name!r} takes no num_classes, so it cannot be class-conditional")
        config["num_classes"] = num_classes
    if codebook is not None:
        if "embed_dim" not in accepted or not hasattr(cls, "init_embedding_from"):
            raise ValueError(f"prior {name!r} has no input embedding to start from a codebook; pass codebook=None")
        config["embed_dim"] = int(codebook.shape[-1])
    prior = registry("prior").build(name, **(config | options))
    if codebook is not None:
        prior.init_embedding_from(codebook)
    return prior
