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
        """Start the input embedding from a quantizer's codebook ``(K, D)`` (needs ``input_mode="embed"``)."""
        self.input.init_embedding_from(codebook)

    def logits_from_head(self, out: Tensor) -> Tensor:
        """Head output ``(B, C * K, H, W)`` (channel groups contiguous) → logits ``(B, K, C, H, W)``."""
        return rearrange(out, "b (c k) h w -> b k c h w", c=self.channels)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> CachedStepper:
        """A cached stepper (arXiv:1704.06001): per-layer activation caches, one position computed per step."""
        return self.stepper_class(self, cond, shape)

    def rows_in_view(self, height: int, width: int) -> int:
        """Rows the last position's logits depend on, found by gradients through one random ``(H, W)`` grid.

        The gradient of those logits with respect to the input features (the output of ``input``) is structurally
        zero on every row the network cannot see; the count starts at the first row where it is not.
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
