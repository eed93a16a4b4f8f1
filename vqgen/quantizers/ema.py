"""The VQ-VAE quantizer whose codebook follows exponential moving averages (arXiv:1711.00937, appendix A.1)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..distributed import all_reduce_sum_
from ..registry import register
from .base import CodebookQuantizer, _check_number
from .codebook import code_sums

__all__ = ["EMAVectorQuantizer"]


@register("quantizer", "ema")
class EMAVectorQuantizer(CodebookQuantizer):
    """Vector quantization whose codebook is the running mean of the encoder outputs assigned to each code.

    Instead of a codebook loss, each code ``i`` keeps exponential moving averages of its cluster size ``N_i`` and of
    the sum ``m_i`` of the vectors assigned to it; after every training step (appendix A.1 of arXiv:1711.00937)::

        N_i ← γ N_i + (1 − γ) n_i              n_i: vectors of this batch assigned to code i
        m_i ← γ m_i + (1 − γ) Σ_{j→i} z_j
        Ñ_i = (N_i + ε) / (n + K ε) · n          n = Σ_i N_i  (Laplace smoothing: no division by zero)
        e_i = m_i / Ñ_i

    The update does not depend on the optimiser or its learning rate and usually trains faster. Only the commitment
    loss ``β |z − sg(e)|²`` is a gradient loss; ``codebook_loss`` is reported as 0 and the codebook is a buffer with
    no gradient. The update runs only in training mode (``module.train()``); under ``torch.distributed`` the counts
    and sums are summed over processes first, so every process holds the same codebook.

    ``N`` starts at 1 and ``m`` at the initial codebook, so a code that is never chosen keeps its vector (both decay
    alike) instead of being pulled to zero.

    Shapes: ``z`` ``(B, D, *spatial)`` → ``quantized`` ``(B, D, *spatial)``, ``codes`` ``(B, *spatial)``.

    Args:
        num_codes: K, the codebook size (≥ 2).
        dim: D, the vector size; must equal the encoder's ``latent_dim``.
        beta: β, the commitment weight (paper: 0.25; ≥ 0).
        decay: γ, the moving-average decay, in (0, 1) (paper: 0.99).
        eps: ε, the Laplace smoothing of the cluster sizes (> 0; 1e-5).
        kmeans_init: if True, set the codebook (and the averages) by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of the k-means initialisation.
        restart_after: re-seed a code unused for this many training steps with a random encoder output of the
            current batch (its ``N_i`` is reset to 1); 0 disables. On by default (100).

    Raises:
        TypeError: if a size is not an int, ``beta``, ``decay`` or ``eps`` not a number, or ``kmeans_init`` not a bool.
        ValueError: if ``num_codes`` < 2, ``dim`` < 1, ``beta`` < 0, ``decay`` outside ``(0, 1)``, ``eps`` <= 0, or
            ``kmeans_iters`` or ``restart_after`` < 0.

    Examples:
        >>> import torch, vqgen
        >>> quantizer = vqgen.build("quantizer", "ema", num_codes=16, dim=4, decay=0.9)
        >>> before = quantizer.codebook.clone()
        >>> out = quantizer(torch.randn(8, 4, 5, 5))             # training mode: the averages move
        >>> float(out.codebook_loss), torch.equal(before, quantizer.codebook)
        (0.0, False)
        >>> _ = quantizer.eval()(torch.randn(8, 4, 5, 5))        # eval mode: the codebook stays
        >>> vqgen.build("quantizer", "ema", decay=1.0)
        Traceback (most recent call last):
        ValueError: decay must lie in the open interval (0, 1), got 1.0
    """

    codebook_learned_by_gradient = False

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 64,
        beta: float = 0.25,
        decay: float = 0.99,
        eps: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        restart_after: int = 100,
    ) -> None:
        super().__init__()
        self._setup(num_codes, dim, beta, kmeans_init, kmeans_iters, restart_after)
        if not 0 < _check_number(decay, name="decay") < 1:
            raise ValueError(f"decay must lie in the open interval (0, 1), got {decay}")
        if not _check_number(eps, name="eps") > 0:
            raise ValueError(f"eps (Laplace smoothing) must be > 0, got {eps}")
        self.decay, self.eps = float(decay), float(eps)
        embedding = torch.randn(num_codes, dim)  # (K, D)
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.ones(num_codes))  # N, (K,)
        self.register_buffer("embedding_sum", embedding.clone())  # m, (K, D)

    @property
    def codebook(self) -> Tensor:
        """The ``(K, D)`` codebook ``e = m / Ñ``, a buffer (no gradient).

        Examples:
            >>> from vqgen.quantizers import EMAVectorQuantizer
            >>> EMAVectorQuantizer(num_codes=512, dim=64).codebook.requires_grad     # moved by EMA, not by gradient
            False
        """
        return self.embedding

    @torch.no_grad()
    def _set_codes(self, index: Tensor, vectors: Tensor) -> None:
        self.embedding[index] = vectors
        self.cluster_size[index] = 1.0
        self.embedding_sum[index] = vectors

    @torch.no_grad()
    def _learn(self, z: Tensor, codes: Tensor, counts: Tensor) -> None:
        sums = code_sums(z, codes, self.num_codes)  # (K, D), this process
        all_reduce_sum_(sums)
        self.cluster_size.lerp_(counts.to(self.cluster_size.dtype), 1.0 - self.decay)  # N ← γ N + (1 − γ) n
        self.embedding_sum.lerp_(sums, 1.0 - self.decay)  # m ← γ m + (1 − γ) Σ z
        total = self.cluster_size.sum()  # n
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total  # Ñ, (K,)
        torch.div(self.embedding_sum, smoothed.unsqueeze(1), out=self.embedding)
