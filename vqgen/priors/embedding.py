"""How category indices become network inputs: one small module shared by every prior.

A prior sees ``x`` ``(B, C, H, W)`` int64 values in ``[0, K)`` and is trained with cross-entropy against those same
integers. Its network, though, consumes continuous feature maps. [`IndexInput`][IndexInput] is that mapping:

- ``mode="scale"``: the value itself, scaled to ``[0, 1]`` as ``x / (K - 1)`` — one feature per channel. This is the
  usual input of pixel models (PixelRNN, arXiv:1601.06759), where nearby intensities mean nearby colours.
- ``mode="embed"``: a learned ``embed_dim``-vector per category (one table per channel), the input of priors over
  VQ-VAE codes, whose indices carry no order (arXiv:1711.00937). It can start from the quantizer's codebook
  ([`IndexInput.init_embedding_from`][IndexInput.init_embedding_from]).

The rule for the default (``input_mode="auto"`` in the priors, see [`resolve_input_mode`][resolve_input_mode]):
``"scale"`` when ``K == 256`` (8-bit pixel intensities), ``"embed"`` for any other ``K`` (codes). Pass the mode
explicitly to override, e.g. ``"embed"`` for a 256-code codebook.

Output layout: ``(B, C * E, H, W)`` with the ``E`` features of colour channel ``c`` contiguous at
``[c * E, (c + 1) * E)``, so colour masks can split the input into per-channel groups.

Convention for priors (relied upon by the causality contract test): a prior's map from indices to features is a
submodule named ``input`` — an [`IndexInput`][IndexInput], or any module returning ``(B, C * E, H, W)`` in this layout —
and it is the only path by which ``x`` enters the network.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from .. import checks

__all__ = ["INPUT_MODES", "IndexInput", "resolve_input_mode"]

INPUT_MODES = ("auto", "scale", "embed")

PIXEL_CATEGORIES = 256


def resolve_input_mode(mode: str, num_categories: int) -> str:
    """``"auto"`` → ``"scale"`` for ``K == 256`` (pixels), ``"embed"`` otherwise (codes); checks the name."""
    if mode not in INPUT_MODES:
        raise ValueError(f"input_mode must be one of {list(INPUT_MODES)}, got {mode!r}")
    if mode == "auto":
        return "scale" if num_categories == PIXEL_CATEGORIES else "embed"
    return mode


class IndexInput(nn.Module):
    """Maps indices ``(B, C, H, W)`` int64 in ``[0, K)`` to features ``(B, C * E, H, W)``.

    Args:
        num_categories: K, the number of values per channel.
        channels: C, the number of channels per position.
        mode: ``"scale"`` (``x / (K - 1)``, ``E = 1``), ``"embed"`` (learned, ``E = embed_dim``) or ``"auto"``
            (see [`resolve_input_mode`][resolve_input_mode]).
        embed_dim: E for ``mode="embed"``; ignored for ``"scale"``.
    """

    def __init__(self, num_categories: int, channels: int, mode: str = "auto", embed_dim: int = 32) -> None:
        super().__init__()
        checks.check_positive(num_categories, name="num_categories", integer=True)
        checks.check_positive(channels, name="channels", integer=True)
        if num_categories < 2:
            raise ValueError(f"num_categories must be >= 2, got {num_categories}")
        self.num_categories, self.channels = num_categories, channels
        self.mode = resolve_input_mode(mode, num_categories)
        if self.mode == "embed":
            checks.check_positive(embed_dim, name="embed_dim", integer=True)
            self.embed_dim = embed_dim
            # One table per channel, stacked: channel c's category k is row c * K + k.
            self.embedding = nn.Embedding(channels * num_categories, embed_dim)
            offsets = torch.arange(channels) * num_categories  # (C,)
            self.register_buffer("offsets", offsets.view(1, channels, 1, 1), persistent=False)
        else:
            self.embed_dim = 1
            self.embedding = None
            # A buffer, so the features follow the module's device and dtype (.to(), .double(), .half()).
            self.register_buffer("scale", torch.tensor(1.0 / (num_categories - 1)), persistent=False)

    @property
    def out_channels(self) -> int:
        """``C * E``, the number of feature maps produced."""
        return self.channels * self.embed_dim

    def forward(self, x: Tensor) -> Tensor:
        """Indices ``(B, C, H, W)`` (any spatial size, e.g. a single position) → features ``(B, C * E, H, W)``."""
        if self.embedding is None:
            return x.to(self.scale.dtype) * self.scale  # (B, C, H, W)
        features = self.embedding(x + self.offsets)  # (B, C, H, W, E)
        return rearrange(features, "b c h w e -> b (c e) h w")

    def embed_values(self, values: Tensor, first_channel: int = 0) -> Tensor:
        """Features of single positions: ``values`` ``(B, n)`` of channels ``first_channel ...`` → ``(B, n * E)``.

        Used by cached samplers to embed just the values drawn last, without reading the rest of the grid.
        """
        n = values.shape[1]
        if self.embedding is None:
            return values.to(self.scale.dtype) * self.scale  # (B, n)
        offsets = self.offsets.view(-1)[first_channel : first_channel + n]  # (n,)
        return self.embedding(values + offsets).flatten(1)  # (B, n * E)

    @torch.no_grad()
    def init_embedding_from(self, codebook: Tensor) -> None:
        """Copy a quantizer's codebook ``(K, D)`` into the embedding table of every channel.

        Requires ``mode="embed"`` and ``embed_dim == D`` (build the prior with ``embed_dim=quantizer.dim``).
        """
        if self.embedding is None:
            raise ValueError("init_embedding_from needs input_mode='embed'; this input scales the values instead")
        checks.check_tensor(codebook, name="codebook", ndim=2)
        if tuple(codebook.shape) != (self.num_categories, self.embed_dim):
            raise ValueError(
                f"codebook must have shape ({self.num_categories}, {self.embed_dim}) (num_categories, embed_dim), "
                f"got {tuple(codebook.shape)}; build the prior with embed_dim equal to the codebook dimension"
            )
        checks.check_finite(codebook, name="codebook")
        weight = codebook.to(self.embedding.weight).repeat(self.channels, 1)  # (C * K, E)
        self.embedding.weight.copy_(weight)

    def extra_repr(self) -> str:
        return f"num_categories={self.num_categories}, channels={self.channels}, mode={self.mode!r}, " + (
            f"embed_dim={self.embed_dim}"
        )
