"""The VQ-VAE quantizer whose codebook is learned by gradient descent (arXiv:1711.00937, section 3.1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register
from .base import CodebookQuantizer

__all__ = ["VectorQuantizer"]


@register("quantizer", "vq")
class VectorQuantizer(CodebookQuantizer):
    """Vector quantization with a straight-through gradient and a codebook trained by its own loss.

    Each vector ``z`` of the input is replaced by its nearest codebook vector ``e``. Gradients reach the encoder by the
    straight-through estimator ``z + sg(e − z)``; the codebook and the encoder are tied by equation 3 of
    arXiv:1711.00937 (without the reconstruction term)::

        loss = |sg(z) − e|²  +  β |z − sg(e)|²
               codebook_loss     commitment_loss

    ``β`` weighs the **commitment** term, which keeps the encoder near its codes; the codebook term has weight 1.
    (Some implementations put β on the codebook term instead; that is not the paper's loss.)

    Shapes: ``z`` ``(B, D, *spatial)`` — e.g. ``(16, 64, 32, 32)`` is searched as 16,384 vectors of size 64 —
    gives ``quantized`` of the same shape and ``codes`` ``(B, *spatial)``; see
    [`QuantizerOutput`][vqgen.QuantizerOutput].

    Args:
        num_codes: K, the codebook size (≥ 2).
        dim: D, the vector size; must equal the encoder's ``latent_dim``.
        beta: β, the commitment weight (paper: 0.25; ≥ 0).
        kmeans_init: if True, the codebook is set by k-means (k-means++ seeding, ``kmeans_iters`` Lloyd steps) on the
            first training batch. Off by default: the codebook starts as standard normal vectors.
        kmeans_iters: Lloyd iterations of the k-means initialisation.
        restart_after: a code not chosen for this many training steps (over all processes) is re-seeded with a
            random encoder output of the current batch; 0 disables restarts. On by default (100), because dead codes
            are the usual way VQ training wastes its codebook (as in Jukebox, arXiv:2005.00341).

    Raises:
        TypeError: if a size is not an int, ``beta`` not a number or ``kmeans_init`` not a bool.
        ValueError: if ``num_codes`` < 2, ``dim`` < 1, ``beta`` < 0, or ``kmeans_iters`` or ``restart_after`` < 0.

    Examples:
        >>> import torch, vqgen
        >>> quantizer = vqgen.build("quantizer", "vq", num_codes=512, dim=64)
        >>> out = quantizer(torch.randn(16, 64, 8, 8))           # 1,024 vectors of size 64
        >>> out.codes.shape, bool(out.loss == out.codebook_loss + 0.25 * out.commitment_loss)
        (torch.Size([16, 8, 8]), True)
        >>> vqgen.build("quantizer", "vq", num_codes=1)
        Traceback (most recent call last):
        ValueError: num_codes must be >= 2, got 1
    """

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 64,
        beta: float = 0.25,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        restart_after: int = 100,
    ) -> None:
        super().__init__()
        self._setup(num_codes, dim, beta, kmeans_init, kmeans_iters, restart_after)
        self.weight = nn.Parameter(torch.randn(num_codes, dim))  # (K, D)

    @property
    def codebook(self) -> Tensor:
        """The ``(K, D)`` codebook, a trainable parameter.

        Examples:
            >>> from vqgen.quantizers import VectorQuantizer
            >>> codebook = VectorQuantizer(num_codes=512, dim=64).codebook
            >>> codebook.shape, codebook.requires_grad
            (torch.Size([512, 64]), True)
        """
        return self.weight

    @torch.no_grad()
    def _set_codes(self, index: Tensor, vectors: Tensor) -> None:
        self.weight[index] = vectors.to(self.weight.dtype)
