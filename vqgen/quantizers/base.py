"""The logic both codebook quantizers share: input checks, float32 search, losses, statistics, k-means
initialisation and dead-code restarts. Subclasses say only how the codebook is stored and learned."""

from __future__ import annotations

import abc
import logging

import torch
from torch import Tensor

from .. import checks
from ..distributed import all_reduce_sum_, broadcast_, is_distributed
from ..interfaces import Quantizer, QuantizerOutput
from ..metrics.codebook import code_statistics
from .codebook import (
    check_latents,
    flatten_latents,
    kmeans,
    nearest_code,
    quantize_with_losses,
    sample_rows,
    search_block_rows,
)

__all__ = ["CodebookQuantizer"]

logger = logging.getLogger(__name__)


def _check_int(value: object, *, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_number(value: object, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


class CodebookQuantizer(Quantizer, abc.ABC):
    """Nearest-neighbour quantization against a ``(K, D)`` codebook (VQ-VAE, arXiv:1711.00937).

    Subclasses provide [`codebook`][codebook], ``_set_codes`` (k-means and restarts overwrite rows through it) and
    ``_learn``, the training-time codebook update (nothing for a codebook learned by gradient), and call ``_setup``
    from their ``__init__``. The forward pass is computed in float32 with autocast disabled, whatever the input dtype.

    Examples:
        >>> import torch
        >>> from vqgen.quantizers import CodebookQuantizer, EMAVectorQuantizer, VectorQuantizer
        >>> issubclass(VectorQuantizer, CodebookQuantizer), issubclass(EMAVectorQuantizer, CodebookQuantizer)
        (True, True)
        >>> quantizer = VectorQuantizer(num_codes=16, dim=4).eval()
        >>> z = torch.randn(2, 4, 3, 3)
        >>> out = quantizer(z)
        >>> distances = torch.cdist(z.movedim(1, -1).reshape(-1, 4), quantizer.codebook)   # every vector, every code
        >>> torch.equal(out.codes.flatten(), distances.argmin(1))                           # the nearest code
        True
    """

    codebook_learned_by_gradient: bool = True
    """True when the codebook is trained by the gradient of ``codebook_loss``; otherwise that loss is reported as 0."""

    TINY_CONFIG = {"num_codes": 16, "dim": 8}
    """16 codes of size 8: builds and runs in microseconds."""

    def _setup(
        self, num_codes: int, dim: int, beta: float, kmeans_init: bool, kmeans_iters: int, restart_after: int
    ) -> None:
        _check_int(num_codes, name="num_codes", minimum=2)
        _check_int(dim, name="dim", minimum=1)
        if _check_number(beta, name="beta") < 0:
            raise ValueError(f"beta (the commitment weight) must be >= 0, got {beta}")
        if not isinstance(kmeans_init, bool):
            raise TypeError(f"kmeans_init must be a bool, got {type(kmeans_init).__name__}")
        _check_int(kmeans_iters, name="kmeans_iters", minimum=0)
        _check_int(restart_after, name="restart_after", minimum=0)
        self._num_codes, self._dim, self.beta = num_codes, dim, float(beta)
        self.kmeans_iters, self.restart_after = kmeans_iters, restart_after
        # True once the codebook holds trained or k-means values; saved, so a loaded model is never re-initialised.
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        # Training steps since each code was last chosen (summed over processes); drives dead-code restarts.
        self.register_buffer("steps_unused", torch.zeros(num_codes, dtype=torch.long))

    @property
    def num_codes(self) -> int:
        """K, the codebook size.

        Examples:
            >>> from vqgen.quantizers import VectorQuantizer
            >>> VectorQuantizer(num_codes=512, dim=64).num_codes
            512
        """
        return self._num_codes

    @property
    def dim(self) -> int:
        """D, the dimension of each codebook vector.

        Examples:
            >>> from vqgen.quantizers import VectorQuantizer
            >>> VectorQuantizer(num_codes=512, dim=64).dim
            64
        """
        return self._dim

    @property
    @abc.abstractmethod
    def codebook(self) -> Tensor:
        """The ``(K, D)`` float32 codebook.

        Examples:
            >>> from vqgen.quantizers import EMAVectorQuantizer
            >>> EMAVectorQuantizer(num_codes=512, dim=64).codebook.shape
            torch.Size([512, 64])
        """

    @abc.abstractmethod
    def _set_codes(self, index: Tensor, vectors: Tensor) -> None:
        """Overwrite the codebook rows ``index`` ``(M,)`` with ``vectors`` ``(M, D)`` (k-means, restarts)."""

    def _learn(self, z: Tensor, codes: Tensor, counts: Tensor) -> None:  # noqa: B027  (optional hook)
        """Training-time codebook update from this batch: ``z`` ``(N, D)`` detached, ``codes`` ``(N,)``, ``counts``
        ``(K,)`` the histogram summed over processes. Nothing by default (the codebook learns by gradient)."""

    # ------------------------------------------------------------------------------------------ public API

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z`` ``(B, D, *spatial)`` (any number of spatial axes, including none).

        In training mode this step also initialises the codebook by k-means (once, with ``kmeans_init``), updates it
        (EMA) and restarts dead codes.

        Args:
            z: ``(B, D, *spatial)`` float encoder outputs, finite.

        Returns:
            [`QuantizerOutput`][vqgen.QuantizerOutput]: ``quantized`` ``(B, D, *spatial)`` in ``z``'s dtype
            (straight-through), ``codes`` ``(B, *spatial)`` int64, the scalar losses in float32, and ``perplexity`` /
            ``usage`` of this batch's codes.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if ``z`` has another width than ``dim`` on axis 1, holds NaN or inf, or is so large that its
                distances to the codes overflow float32.

        Examples:
            >>> import torch
            >>> from vqgen.quantizers import VectorQuantizer
            >>> quantizer = VectorQuantizer(num_codes=16, dim=4)
            >>> z = torch.randn(2, 4, 8, 8, requires_grad=True)
            >>> out = quantizer(z)
            >>> out.quantized.shape, out.codes.shape, out.loss.shape
            (torch.Size([2, 4, 8, 8]), torch.Size([2, 8, 8]), torch.Size([]))
            >>> out.quantized.sum().backward()                  # straight through: d quantized / d z = 1
            >>> bool((z.grad == 1).all())
            True
        """
        self._check_latents(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat, restore = flatten_latents(z.float())  # (N, D)
            if self.training and not bool(self.initialized):
                self._kmeans_init(flat.detach())
            codebook = self.codebook.float()  # (K, D); a no-op unless the module was cast to another dtype
            codes = nearest_code(flat.detach(), codebook.detach(), workspace=self._search_workspace(flat))  # (N,)
            quantized, codebook_loss, commitment_loss = quantize_with_losses(flat, codebook, codes)  # (N, D)
            if not bool(torch.isfinite(commitment_loss)):  # NaN or inf anywhere in z reaches the mean: one check
                checks.check_finite(z, name="z")
                checks.check_finite(codebook, name="the codebook")
                raise ValueError("the squared distances between z and its codes overflow float32; z holds huge values")
            counts = torch.bincount(codes, minlength=self.num_codes)  # (K,)
            perplexity, usage = code_statistics(counts)
            if self.training:
                self._training_step(flat.detach(), codes, counts)
            if not self.codebook_learned_by_gradient:
                codebook_loss = torch.zeros_like(commitment_loss)
            loss = codebook_loss + self.beta * commitment_loss
        return QuantizerOutput(
            quantized=restore(quantized, "* d").to(z.dtype),
            codes=restore(codes, "*"),
            loss=loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=perplexity,
            usage=usage,
        )

    def embed(self, codes: Tensor) -> Tensor:
        """Codebook vectors of ``codes`` ``(B, *spatial)`` int64 → ``(B, D, *spatial)``, in the codebook's dtype.

        Args:
            codes: ``(B, *spatial)`` integer codes in ``[0, num_codes)``.

        Returns:
            ``(B, D, *spatial)``: row ``codes[b, ...]`` of the codebook at every position.

        Raises:
            TypeError: if ``codes`` is not an integer tensor.
            ValueError: if a code lies outside ``[0, num_codes)`` or ``codes`` has no batch axis.

        Examples:
            >>> import torch
            >>> from vqgen.quantizers import VectorQuantizer
            >>> quantizer = VectorQuantizer(num_codes=16, dim=4).eval()
            >>> out = quantizer(torch.randn(2, 4, 3, 3))
            >>> torch.equal(quantizer.embed(out.codes), out.quantized)      # the decoder's way back from codes
            True
        """
        self.check_codes(codes)
        vectors = torch.nn.functional.embedding(codes.long(), self.codebook)  # (B, *spatial, D)
        return vectors.movedim(-1, 1)  # (B, D, *spatial)

    def extra_repr(self) -> str:
        """The sizes and options shown by ``repr(quantizer)``.

        Returns:
            ``"num_codes=..., dim=..., beta=..., restart_after=..."``.

        Examples:
            >>> from vqgen.quantizers import VectorQuantizer
            >>> VectorQuantizer(num_codes=16, dim=4)
            VectorQuantizer(num_codes=16, dim=4, beta=0.25, restart_after=100)
        """
        return f"num_codes={self.num_codes}, dim={self.dim}, beta={self.beta}, restart_after={self.restart_after}"

    # ------------------------------------------------------------------------------------------ internals

    def _check_latents(self, z: object) -> None:
        check_latents(z, self.dim)

    def _search_workspace(self, flat: Tensor) -> Tensor:
        """The scratch buffer of the nearest-code search, kept between calls (not saved; at most 64 MiB)."""
        numel = search_block_rows(flat.shape[0], self.num_codes) * self.num_codes
        workspace = self.__dict__.get("_workspace")
        if workspace is None or workspace.device != flat.device or workspace.numel() < numel:
            workspace = torch.empty(numel, dtype=torch.float32, device=flat.device)
            self.__dict__["_workspace"] = workspace
        return workspace

    @torch.no_grad()
    def _kmeans_init(self, z: Tensor) -> None:
        centres = kmeans(z, self.num_codes, self.kmeans_iters)  # (K, D), identical on every process
        self._set_codes(torch.arange(self.num_codes, device=z.device), centres)
        self.initialized.fill_(True)
        logger.debug("initialised a %d-code codebook by k-means on %d vectors", self.num_codes, z.shape[0])

    @torch.no_grad()
    def _training_step(self, z: Tensor, codes: Tensor, counts: Tensor) -> None:
        counts = counts.clone()
        all_reduce_sum_(counts)  # the histogram over all processes
        self._learn(z, codes, counts)
        if self.restart_after > 0:
            self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
            dead = (self.steps_unused >= self.restart_after).nonzero().squeeze(1)  # (M,), same on every process
            if dead.numel():
                self._restart(dead, z)

    def _restart(self, dead: Tensor, z: Tensor) -> None:
        """Re-seed the ``dead`` codes with random encoder outputs of this batch (rank 0's, broadcast)."""
        vectors = sample_rows(z, dead.numel())  # (M, D)
        if is_distributed():
            vectors = broadcast_(vectors.contiguous())
        self._set_codes(dead, vectors)
        self.steps_unused[dead] = 0
        logger.debug("restarted %d dead codes", dead.numel())
