"""Finite scalar quantization: bounded per-dimension rounding with an implicit codebook (FSQ, arXiv:2309.15505)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..interfaces import Quantizer, QuantizerOutput
from ..metrics.codebook import code_statistics
from ..registry import register
from .base import _check_int
from .codebook import check_latents, flatten_latents, straight_through

__all__ = ["MAX_FSQ_CODES", "FiniteScalarQuantizer"]

MAX_FSQ_CODES = 1 << 24
"""``prod(levels)`` may not exceed this: the code histogram (usage, perplexity) is a dense ``(K,)`` tensor."""

_EPS = 1e-3  # widens the tanh bound a little so that rounding reaches both end levels (the paper's reference code)


def _check_levels(levels: object) -> list[int]:
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise TypeError(f"levels must be a non-empty list of ints (e.g. [8, 5, 5, 5]), got {levels!r}")
    for i, level in enumerate(levels):
        _check_int(level, name=f"levels[{i}]", minimum=2)
    size = math.prod(levels)
    if size > MAX_FSQ_CODES:
        raise ValueError(f"levels {list(levels)} imply {size} codes, more than the {MAX_FSQ_CODES} supported")
    return list(levels)


@register("quantizer", "fsq")
class FiniteScalarQuantizer(Quantizer):
    """Finite scalar quantization (Mentzer et al., arXiv:2309.15505): each of ``d = len(levels)`` dimensions is
    squashed into a bounded range and rounded to one of ``levels[i]`` integers, so the codebook is the implicit grid of
    ``K = prod(levels)`` points and has nothing to learn.

    Per dimension with ``L = levels[i]`` (section 3 and appendix A.1 of the paper)::

        bound(z) = tanh(z + s) · h − o        h = (L − 1)(1 + ε) / 2,  o = 0.5 if L is even else 0,  s = atanh(o / h)
        ẑ = round(bound(z)) / ⌊L / 2⌋          rounding with a straight-through gradient; ẑ ∈ [−1, 1]

    ``bound`` maps ``z = 0`` to 0 and its range holds exactly ``L`` integers. The code is the mixed-radix number of the
    per-dimension indices ``q_i = round(bound(z_i)) + ⌊L_i / 2⌋ ∈ [0, L_i)``: ``code = Σ_i q_i · Π_{j<i} L_j``, and
    [`embed`][embed] inverts it. There is no codebook or commitment loss: ``loss``, ``codebook_loss`` and
    ``commitment_loss`` are zeros (the paper trains with the reconstruction loss alone), and no code can die.

    When ``dim`` differs from ``len(levels)``, learned linear projections ``dim → len(levels)`` before the bound and
    ``len(levels) → dim`` after the rounding connect FSQ to an encoder of any width (as in the paper, whose encoders
    end in a projection to ``d``); with ``dim = len(levels)`` (the default) there are no parameters.

    The paper's recommended levels for a target codebook size (table 1)::

        K ≈ 2^8:  [8, 6, 5]  (240)            K ≈ 2^10: [8, 5, 5, 5]  (1,000)      K ≈ 2^12: [7, 5, 5, 5, 5]  (4,375)
        K ≈ 2^14: [8, 8, 8, 6, 5]  (15,360)   K ≈ 2^16: [8, 8, 8, 5, 5, 5]  (64,000)

    Levels of 2 are allowed but their bound is steep and one-sided (its gradient at 0 is about 0.002); prefer L ≥ 3.

    Shapes: ``z`` ``(B, dim, *spatial)`` → ``quantized`` ``(B, dim, *spatial)`` in ``z``'s dtype (computed in float32),
    ``codes`` ``(B, *spatial)`` int64 in ``[0, prod(levels))``.

    Args:
        levels: ``L_i ≥ 2`` per dimension, ints; ``prod(levels)`` is the codebook size K (at most 2^24).
        dim: D, the width of ``z`` (the encoder's ``latent_dim``); ``None`` means ``len(levels)``, no projection.

    Raises:
        TypeError: if ``levels`` is not a list of ints or ``dim`` not an int.
        ValueError: if a level is below 2, ``dim`` < 1, or K exceeds 2^24.

    Examples:
        >>> import torch, vqgen
        >>> quantizer = vqgen.build("quantizer", "fsq", levels=[8, 5, 5, 5], dim=64)   # projections 64 → 4 → 64
        >>> out = quantizer(torch.randn(16, 64, 8, 8))
        >>> quantizer.num_codes, out.codes.shape, float(out.loss)
        (1000, torch.Size([16, 8, 8]), 0.0)
        >>> torch.equal(quantizer.embed(out.codes), out.quantized)
        True
        >>> vqgen.build("quantizer", "fsq", levels=[8, 1])
        Traceback (most recent call last):
        ValueError: levels[1] must be >= 2, got 1
    """

    def __init__(self, levels: Sequence[int] = (8, 5, 5, 5), dim: int | None = None) -> None:
        super().__init__()
        levels = _check_levels(levels)
        if dim is not None:
            _check_int(dim, name="dim", minimum=1)
        self._dim = len(levels) if dim is None else dim
        self._num_codes = math.prod(levels)
        self.levels = tuple(levels)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]  # (d,): Π_{j<i} L_j
        # Constants of the grid, derived from the config: not saved, so a checkpoint holds only learned weights.
        # Integer buffers, so that casting the module (.half()) cannot round them.
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)
        self.project_in = self.project_out = None
        if self._dim != len(levels):
            self.project_in = nn.Linear(self._dim, len(levels))
            self.project_out = nn.Linear(len(levels), self._dim)

    TINY_CONFIG = {"levels": [5, 4], "dim": 8}  # 20 codes, with both projections
    """20 codes (levels ``[5, 4]``) for vectors of size 8, so that both projections are tested."""

    @property
    def num_codes(self) -> int:
        """K = prod(levels), the size of the implicit codebook.

        Examples:
            >>> from vqgen.quantizers import FiniteScalarQuantizer
            >>> FiniteScalarQuantizer(levels=[8, 6, 5]).num_codes
            240
        """
        return self._num_codes

    @property
    def dim(self) -> int:
        """D, the width of ``z`` and of ``quantized``.

        Examples:
            >>> from vqgen.quantizers import FiniteScalarQuantizer
            >>> FiniteScalarQuantizer(levels=[8, 6, 5]).dim, FiniteScalarQuantizer(levels=[8, 6, 5], dim=16).dim
            (3, 16)
        """
        return self._dim

    def extra_repr(self) -> str:
        """The levels, width and codebook size shown by ``repr(quantizer)``.

        Returns:
            ``"levels=[...], dim=..., num_codes=..."``.

        Examples:
            >>> from vqgen.quantizers import FiniteScalarQuantizer
            >>> FiniteScalarQuantizer(levels=[8, 6, 5]).extra_repr()
            'levels=[8, 6, 5], dim=3, num_codes=240'
        """
        return f"levels={list(self.levels)}, dim={self.dim}, num_codes={self.num_codes}"

    # ------------------------------------------------------------------------------------------ public API

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z`` ``(B, D, *spatial)`` (any number of spatial axes, including none).

        Args:
            z: ``(B, D, *spatial)`` float encoder outputs, finite.

        Returns:
            [`QuantizerOutput`][vqgen.QuantizerOutput]: ``quantized`` ``(B, D, *spatial)`` in ``z``'s dtype
            (straight-through rounding, so the gradient is that of the bound), ``codes`` ``(B, *spatial)`` int64, the
            three losses as float32 zeros, and ``perplexity`` / ``usage`` of this batch's codes.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if ``z`` has another width than ``dim`` on axis 1, or holds NaN or inf (or overflows the input
                projection).

        Examples:
            >>> import torch
            >>> from vqgen.quantizers import FiniteScalarQuantizer
            >>> quantizer = FiniteScalarQuantizer(levels=[3, 3])          # K = 9, no projection
            >>> out = quantizer(torch.tensor([[0.0, 0.0], [5.0, -5.0]]))  # (B, D): two vectors
            >>> out.quantized, out.codes                                 # grid points in [-1, 1], mixed-radix codes
            (tensor([[ 0.,  0.], [ 1., -1.]]), tensor([4, 2]))
        """
        check_latents(z, self.dim)
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat, restore = flatten_latents(z.float())  # (N, D)
            if self.project_in is not None:
                flat = self._linear(self.project_in, flat)  # (N, d)
            if not bool(torch.isfinite(flat.sum())):  # NaN or inf reaches the sum: one reduction, not a mask
                checks.check_finite(z, name="z")
                # z is finite: either the projection overflowed, or only the sum did (then carry on: tanh bounds it).
                checks.check_finite(flat, name="z projected onto the FSQ dimensions (z holds huge values)")
            levels = self._levels.float()  # (d,)
            half_width = torch.div(self._levels, 2, rounding_mode="floor").float()  # (d,)
            half_l = (levels - 1) * (1 + _EPS) / 2
            offset = (levels % 2 == 0).float() * 0.5  # 0.5 for even L: the integers in range are −L/2 … L/2 − 1
            bounded = torch.tanh(flat + torch.atanh(offset / half_l)) * half_l - offset  # (N, d)
            rounded = straight_through(bounded, bounded.round())  # (N, d) integers, gradient of `bounded`
            codes = ((rounded.detach() + half_width).long() * self._basis).sum(1)  # (N,) mixed-radix index
            quantized = rounded / half_width  # (N, d) in [−1, 1]
            if self.project_out is not None:
                quantized = self._linear(self.project_out, quantized)  # (N, D)
            perplexity, usage = code_statistics(torch.bincount(codes, minlength=self.num_codes))
            zero = torch.zeros((), device=z.device)
        return QuantizerOutput(
            quantized=restore(quantized, "* d").to(z.dtype),
            codes=restore(codes, "*"),
            loss=zero,
            codebook_loss=zero.clone(),
            commitment_loss=zero.clone(),
            perplexity=perplexity,
            usage=usage,
        )

    def embed(self, codes: Tensor) -> Tensor:
        """Grid points of ``codes`` ``(B, *spatial)`` int64 → ``(B, D, *spatial)`` float32 (projected out if needed).

        Args:
            codes: ``(B, *spatial)`` integer codes in ``[0, prod(levels))``.

        Returns:
            ``(B, D, *spatial)`` float32: the grid points, through ``project_out`` when ``dim != len(levels)``.

        Raises:
            TypeError: if ``codes`` is not an integer tensor.
            ValueError: if a code lies outside ``[0, num_codes)`` or ``codes`` has no batch axis.

        Examples:
            >>> import torch
            >>> from vqgen.quantizers import FiniteScalarQuantizer
            >>> FiniteScalarQuantizer(levels=[3, 3]).embed(torch.tensor([0, 4, 8]))    # corner, centre, corner
            tensor([[-1., -1.],
                    [ 0.,  0.],
                    [ 1.,  1.]])
        """
        self.check_codes(codes)
        digits = torch.div(codes.long().unsqueeze(-1), self._basis, rounding_mode="floor") % self._levels  # (..., d)
        half_width = torch.div(self._levels, 2, rounding_mode="floor")
        vectors = (digits - half_width).float() / half_width  # (B, *spatial, d) in [−1, 1]
        if self.project_out is not None:
            vectors = self._linear(self.project_out, vectors)  # (B, *spatial, D)
        return vectors.movedim(-1, 1)  # (B, D, *spatial)

    @staticmethod
    def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
        """``layer(x)`` in float32 whatever the layer's dtype (the quantizer computes in float32 like the others)."""
        return nn.functional.linear(x, layer.weight.float(), layer.bias.float())
