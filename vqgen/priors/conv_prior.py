"""The base of the convolutional priors (PixelCNN, Gated PixelCNN): index input, colour groups, logits layout.

What it adds to [`AutoregressivePrior`][vqgen.interfaces.AutoregressivePrior] (which already owns ``num_categories``,
``channels``, ``num_classes``, ``cond_dim``, ``channel_order`` and the input checks):

- ``input``, the [`IndexInput`][vqgen.priors.embedding.IndexInput] through which indices enter the network;
- ``colour_groups``: with sequential colour channels every feature map belongs to one of C groups (R → G → B masks);
- [`logits_from_head`][ConvPrior.logits_from_head], the one place the head's ``(B, C * K, H, W)`` becomes
  ``(B, K, C, H, W)``;
- cached sampling: subclasses set ``stepper_class``, a [`CachedStepper`][vqgen.priors.cached.CachedStepper], and the
  CPU thread policy of [`SamplingThreads`][vqgen.threads.SamplingThreads] applies: every operation of a step is too
  small to gain from splitting over intra-op threads, so a batch is split over threads instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor

from ..interfaces import AutoregressivePrior
from ..threads import SamplingThreads
from .cached import CachedStepper
from .embedding import IndexInput

__all__ = ["ConvPrior"]


class ConvPrior(SamplingThreads, AutoregressivePrior):
    """What the convolutional priors share: the index input, colour ordering and cached sampling.

    Subclasses build their network after calling this ``__init__`` and set ``stepper_class``, a
    [`CachedStepper`][vqgen.priors.cached.CachedStepper] subclass that [`incremental`][incremental] instantiates.

    Args:
        num_categories: K, the number of categories per value (>= 2).
        channels: C, the number of values per position.
        channel_order: ``"sequential"`` (R → G → B within a pixel) or ``"parallel"``.
        input_mode: how indices enter the network: ``"scale"`` (values scaled to ``[0, 1]``, for ordered pixel
            values), ``"embed"`` (a learned embedding, for codes) or ``"auto"`` (``"scale"`` when K = 256).
        embed_dim: the embedding's width with ``input_mode="embed"``.
        num_classes: the number of class labels the prior is conditioned on, or ``None``.
        cond_dim: the width of conditioning vectors, or ``None``.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, or ``channel_order`` or ``input_mode`` is unknown.

    Examples:
        >>> import vqgen
        >>> from vqgen.priors.conv_prior import ConvPrior
        >>> prior = vqgen.build("prior", "pixelcnn", num_categories=512, num_classes=10)
        >>> isinstance(prior, ConvPrior), prior.input.mode, prior.colour_groups
        (True, 'embed', 1)
        >>> vqgen.build("prior", "gated_pixelcnn", channels=3).colour_groups      # pixels: R → G → B groups
        3
    """

    stepper_class: type[CachedStepper]

    def __init__(
        self,
        num_categories: int,
        channels: int,
        channel_order: str = "sequential",
        input_mode: str = "auto",
        embed_dim: int = 32,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__(num_categories, channels, num_classes, cond_dim, channel_order)
        self.input = IndexInput(num_categories, channels, input_mode, embed_dim)  # validates K >= 2
        # Sequential colour channels split every feature map into C groups; parallel ones (or C = 1) need no split.
        self.colour_groups = channels if channel_order == "sequential" else 1

    def init_embedding_from(self, codebook: Tensor) -> None:
        """Start the input embedding from a quantizer's codebook ``(K, D)`` (needs ``input_mode="embed"``).

        Args:
            codebook: ``(K, D)``, with ``D`` the prior's ``embed_dim``.

        Raises:
            ValueError: if the prior does not embed its inputs, or the codebook's shape is not ``(K, embed_dim)``.

        Examples:
            >>> import torch, vqgen
            >>> quantizer = vqgen.build("quantizer", "vq", num_codes=64, dim=16)
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=64, embed_dim=16)
            >>> prior.init_embedding_from(quantizer.codebook)
            >>> torch.equal(prior.input.embedding.weight, quantizer.codebook)
            True
        """
        self.input.init_embedding_from(codebook)

    def logits_from_head(self, out: Tensor) -> Tensor:
        """Head output ``(B, C * K, H, W)`` (channel groups contiguous) → logits ``(B, K, C, H, W)``.

        Args:
            out: ``(B, C * K, H, W)``, the output head's features, channel ``c``'s K logits contiguous.

        Returns:
            ``(B, K, C, H, W)`` logits.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=4, channels=3)
            >>> prior.logits_from_head(torch.zeros(2, 12, 5, 5)).shape
            torch.Size([2, 4, 3, 5, 5])
        """
        return rearrange(out, "b (c k) h w -> b k c h w", c=self.channels)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> CachedStepper:
        """A cached stepper (arXiv:1704.06001): per-layer activation caches, one position computed per step.

        Args:
            cond: the condition of the grids to sample, or ``None``.
            shape: ``(H, W)`` of the grids.

        Returns:
            A new instance of ``stepper_class``.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=16, hidden_channels=8, num_layers=2)
            >>> type(prior.incremental(None, (7, 7))).__name__
            'GatedPixelCNNStepper'
        """
        return self.stepper_class(self, cond, shape)

    def rows_in_view(self, height: int, width: int) -> int:
        """Rows the last position's logits depend on, found by gradients through one random ``(H, W)`` grid.

        The gradient of those logits with respect to the input features (the output of ``input``) is structurally
        zero on every row the network cannot see; the count starts at the first row where it is not.

        Args:
            height: H, the grid's rows.
            width: W, the grid's columns.

        Returns:
            The number of rows in view, at least 1.

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "gated_pixelcnn", num_categories=16, num_layers=2).rows_in_view(28, 28)
            6
            >>> vqgen.build("prior", "gated_pixelcnn", num_categories=16, num_layers=15).rows_in_view(7, 7)  # all
            7
        """
        features: list[Tensor] = []

        def leaf(module: torch.nn.Module, args: tuple, out: Tensor) -> Tensor:
            features.append(out.detach().requires_grad_())
            return features[-1]

        x = torch.randint(self.num_categories, (1, self.channels, height, width), device=self.device,
                          generator=torch.Generator(self.device).manual_seed(0))  # fmt: skip
        cond = None
        if self.num_classes is not None:
            cond = torch.zeros(1, dtype=torch.long, device=self.device)
        elif self.cond_dim is not None:
            cond = torch.zeros(1, self.cond_dim, device=self.device)
        was_training, hook = self.training, self.input.register_forward_hook(leaf)
        try:
            self.eval()
            with torch.enable_grad():
                logits = self.logits(x, cond)[0, :, -1, -1, -1]  # (K,): the last value of the grid
                (grad,) = torch.autograd.grad(logits.sum(), features[0])  # parameters' .grad untouched
        finally:
            hook.remove()
            self.train(was_training)
        seen = grad[0].abs().sum(dim=(0, 2)) > 0  # (H,)
        return height - int(seen.nonzero()[0]) if seen.any() else 1
