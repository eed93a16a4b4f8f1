"""The discretised logistic mixture of PixelCNN++ (Salimans et al., arXiv:1701.05517, section 2.1), exact and stable.

The K ordered values of a sub-pixel are bins on ``[-1, 1]``: value ``v`` sits at ``y_v = 2 v / (K - 1) - 1`` and owns
``[y_v - δ, y_v + δ]`` with ``δ = 1 / (K - 1)``; the two edge bins reach to ``-inf`` and ``+inf`` (equation 2), so
the K bin probabilities of a logistic ``(μ, s)`` sum to one exactly. K = 256 for 8-bit images; any K >= 2 of ordered
levels works (the contract tests use K = 11).

A pixel's C channels share one mixture of M components (equation 3): component ``k`` has weight ``π_k`` and a
logistic per channel whose mean already holds the linear coupling to the earlier channels of the pixel (the prior's
head computes ``μ_G + α R``, ``μ_B + β R + γ G`` from the values it was given). The per-channel conditionals that
training, ``logits`` and sampling use are exact:

```
p(x_c | x_<c) = Σ_k w_ck L_ck(x_c),   w_ck ∝ π_k Π_{c' < c} L_c'k(x_c')     (the component posterior given x_<c)
```

so that they multiply to the joint ``Σ_k π_k Π_c L_ck(x_c)`` of the paper. With ``coupled=False`` (the prior's
``channel_order="parallel"``) each channel is its own mixture, independent of the others given the past.

Numerics, in float32 whatever the dtype of the output (bf16 autocast included). The log-probability of a middle bin
is ``log(σ(a) - σ(b))`` with ``a - b = 2 δ / s``; it is computed as

```
log σ(a) + log(1 - σ(b)) + log(1 - exp(-2 δ / s))     (σ(a) - σ(b) = σ(a) (1 - σ(b)) (1 - e^{b - a}))
```

three terms that never cancel and never underflow to ``log 0``, for any mean and scale: no fall-back to the density
at the bin centre, as the reference code needs where ``σ(a) - σ(b)`` rounds to zero. The edge bins are
``log σ(a)`` and ``log(1 - σ(b))`` (the same formula with the outer edges at ``∓OUTER_EDGE``). Log-scales are clamped
to ``[LOG_SCALE_MIN, LOG_SCALE_MAX]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import checks
from .likelihoods import Likelihood

__all__ = [
    "LOG_SCALE_MAX",
    "LOG_SCALE_MIN",
    "OUTER_EDGE",
    "DiscretizedLogisticMixture",
    "bin_log_probs",
    "value_log_probs",
]

LOG_SCALE_MIN = -7.0
"""The smallest log-scale (the reference code's bound): a scale of 0.0009, far below a bin of 8-bit values."""

LOG_SCALE_MAX = 7.0
"""The largest log-scale: a scale of 1100, flat over ``[-1, 1]`` for any K."""


OUTER_EDGE = 1e30
"""Where the edge bins end: far beyond any mean, so that ``σ`` of the outer edges is exactly 0 and 1 in float32 for
any scale (±inf would do the same forward, but its gradient is ``0 · inf``, a NaN)."""

_GRIDS: dict[tuple, tuple[Tensor, Tensor]] = {}


def _grid(num_categories: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The K + 1 bin edges ``[-OUTER_EDGE, y_0 + δ, ..., y_{K-2} + δ, OUTER_EDGE]`` and the mask of the middle bins
    ``(K,)``, float32 on ``device`` (kept per K, device and inference mode: tensors made in inference mode cannot
    enter autograd)."""
    key = (num_categories, device, torch.is_inference_mode_enabled())
    if key not in _GRIDS:
        inner = (2 * torch.arange(num_categories - 1, dtype=torch.float64) + 1) / (num_categories - 1) - 1
        edges = torch.cat([torch.tensor([-OUTER_EDGE]), inner, torch.tensor([OUTER_EDGE])]).float().to(device)
        middle = torch.ones(num_categories, device=device)
        middle[0] = middle[-1] = 0
        _GRIDS[key] = edges, middle
    return _GRIDS[key]


def _scales(log_scales: Tensor, num_categories: int) -> tuple[Tensor, Tensor]:
    """``1 / s`` and ``log(1 - exp(-2 δ / s))`` (the factor of a middle bin; exact where ``2 δ / s`` is tiny or
    large), from the clamped log-scales, float32."""
    inv_scale = torch.exp(-log_scales.float().clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
    return inv_scale, torch.log(-torch.expm1(-(2.0 / (num_categories - 1)) * inv_scale))


def _bins(means: Tensor, inv_scale: Tensor, log_width: Tensor, num_categories: int, plus: Tensor | None = None):
    """[`bin_log_probs`][bin_log_probs] from [`_scales`][_scales]' terms ``(...)`` → ``(..., K)``, ``plus``
    ``(...)`` added to every bin."""
    edges, middle = _grid(num_categories, means.device)
    t = (edges - means.float()[..., None]) * inv_scale[..., None]  # (..., K + 1)
    out = (
        middle * log_width[..., None] if plus is None else torch.addcmul(plus[..., None], middle, log_width[..., None])
    )
    return out.add_(F.logsigmoid(t[..., 1:])).sub_(F.softplus(t[..., :-1]))


def _at(means: Tensor, inv_scale: Tensor, log_width: Tensor, values: Tensor, num_categories: int) -> Tensor:
    """[`value_log_probs`][value_log_probs] from [`_scales`][_scales]' terms (``values`` broadcast to them)."""
    edges, middle = _grid(num_categories, means.device)
    means = means.float()
    upper, lower = (edges[values + 1] - means) * inv_scale, (edges[values] - means) * inv_scale
    return middle[values] * log_width + F.logsigmoid(upper) - F.softplus(lower)


def bin_log_probs(means: Tensor, log_scales: Tensor, num_categories: int) -> Tensor:
    """Log-probabilities of all K bins under logistics ``(μ, s)``: ``means``, ``log_scales`` ``(...)`` → ``(..., K)``.

    With the edges ``t_v = (e_v - μ) / s`` (``t_0`` and ``t_K`` beyond saturation), bin ``v`` is
    ``log σ(t_{v+1}) - softplus(t_v) + [v in the middle] log(1 - e^{-2δ/s})``: at the outer edges the terms vanish.

    Args:
        means: ``(...)`` means μ on the ``[-1, 1]`` scale of the values.
        log_scales: ``(...)`` log-scales ``log s`` (clamped to ``[LOG_SCALE_MIN, LOG_SCALE_MAX]``).
        num_categories: K >= 2, the number of ordered values.

    Returns:
        ``(..., K)`` float32 log-probabilities; they sum to one in probability over the last axis.

    Examples:
        >>> import torch
        >>> from vqgen.logistic_mixture import bin_log_probs
        >>> log_probs = bin_log_probs(torch.tensor([0.0]), torch.tensor([-1.0]), num_categories=5)
        >>> log_probs.exp().round(decimals=3), round(log_probs.exp().sum().item(), 5)   # bins at -1, -0.5, ..., 1
        (tensor([[0.1150, 0.2210, 0.3270, 0.2210, 0.1150]]), 1.0)
    """
    return _bins(means, *_scales(log_scales, num_categories), num_categories)


def value_log_probs(means: Tensor, log_scales: Tensor, values: Tensor, num_categories: int) -> Tensor:
    """Log-probability of ``values`` (int64 in ``[0, K)``) under logistics ``(μ, s)``, all ``(...)`` → ``(...)``.

    The terms of [`bin_log_probs`][bin_log_probs] at one bin each (training needs no K-way evaluation).

    Args:
        means: ``(...)`` means μ on the ``[-1, 1]`` scale of the values.
        log_scales: ``(...)`` log-scales ``log s``.
        values: ``(...)`` int64 values in ``[0, K)``.
        num_categories: K >= 2.

    Returns:
        ``(...)`` float32 ``log P(value)``.

    Examples:
        >>> import torch
        >>> from vqgen.logistic_mixture import bin_log_probs, value_log_probs
        >>> means, log_scales = torch.tensor([0.2, -0.7]), torch.tensor([-2.0, -3.0])
        >>> at = value_log_probs(means, log_scales, torch.tensor([3, 0]), num_categories=8)
        >>> torch.allclose(at, bin_log_probs(means, log_scales, 8)[[0, 1], [3, 0]])
        True
    """
    return _at(means, *_scales(log_scales, num_categories), values, num_categories)


class DiscretizedLogisticMixture(Likelihood):
    """PixelCNN++'s likelihood: a mixture of M discretised logistics per pixel (see the module docstring).

    ``output`` is ``(B, 3, C, M, H, W)``: ``[:, 0]`` the mixture logits (with ``coupled``, the same for every
    channel: only channel 0 is read), ``[:, 1]`` the means on the ``[-1, 1]`` scale of the values (coupled to the
    earlier channels of the pixel already), ``[:, 2]`` the log-scales.

    Args:
        num_categories: K, the number of ordered values per sub-pixel (>= 2).
        channels: C.
        num_mixtures: M, the number of logistic components (>= 1).
        coupled: one mixture per pixel, its weights re-weighted by the earlier channels (``True``), or one
            independent mixture per channel (``False``).

    Raises:
        TypeError: if ``num_categories``, ``channels`` or ``num_mixtures`` is not an int.
        ValueError: if one is not positive, or ``num_categories`` < 2.

    Examples:
        >>> import torch
        >>> from vqgen.logistic_mixture import DiscretizedLogisticMixture
        >>> likelihood = DiscretizedLogisticMixture(num_categories=256, channels=3, num_mixtures=5)
        >>> output = torch.randn(2, 3, 3, 5, 4, 4)                   # (B, 3, C, M, H, W)
        >>> x = torch.randint(256, (2, 3, 4, 4))
        >>> likelihood.nll(output, x).shape, likelihood.logits(output, x).shape
        (torch.Size([2, 3, 4, 4]), torch.Size([2, 256, 3, 4, 4]))
        >>> torch.allclose(likelihood.logits(output, x).logsumexp(1), torch.zeros(2, 3, 4, 4), atol=1e-4)
        True
    """

    def __init__(self, num_categories: int, channels: int, num_mixtures: int, coupled: bool = True) -> None:
        for name, value in (("num_categories", num_categories), ("channels", channels), ("num_mixtures", num_mixtures)):
            checks.check_positive(value, name=name, integer=True)
        if num_categories < 2:
            raise ValueError(f"num_categories must be >= 2 ordered values for a logistic mixture, got {num_categories}")
        self.num_categories, self.channels, self.num_mixtures = num_categories, channels, num_mixtures
        self.coupled = bool(coupled)

    def _parts(self, output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``output`` → mixture logits, means, log-scales, each ``(B, C, M, ...)`` float32."""
        expected = (3, self.channels, self.num_mixtures)
        if tuple(output.shape[1:4]) != expected:
            raise ValueError(
                f"output must have shape (B, {', '.join(map(str, expected))}, ...), got {tuple(output.shape)}"
            )
        logits, means, log_scales = output.float().unbind(1)
        return logits, means, log_scales

    def _log_weights(self, logits: Tensor, earlier: Tensor) -> Tensor:
        """Log mixture weights of every channel ``(B, C, M, ...)`` given the log-likelihoods ``earlier``
        ``(B, C, M, ...)`` of each channel's value under each component (read only for channels before it)."""
        if not self.coupled:
            return logits.log_softmax(2)
        before = torch.cat([torch.zeros_like(earlier[:, :1]), earlier[:, :-1].cumsum(1)], dim=1)  # Σ_{c' < c}
        return (logits[:, :1] + before).log_softmax(2)

    def nll(self, output: Tensor, x: Tensor) -> Tensor:
        """``-log p(x_c | x_<c)`` of every sub-pixel under the mixture, from one bin per component (no K-way sum).

        Args:
            output: ``(B, 3, C, M, H, W)``: mixture logits, means, log-scales.
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.

        Returns:
            ``(B, C, H, W)`` float32, in nats; summed over the channels, the paper's joint.

        Raises:
            ValueError: if ``output`` has another shape than ``(B, 3, C, M, ...)``.

        Examples:
            >>> import torch
            >>> from vqgen.logistic_mixture import DiscretizedLogisticMixture
            >>> likelihood = DiscretizedLogisticMixture(num_categories=256, channels=3, num_mixtures=2)
            >>> output, x = torch.randn(1, 3, 3, 2, 2, 2), torch.randint(256, (1, 3, 2, 2))
            >>> torch.allclose(likelihood.nll(output, x), -likelihood.logits(output, x).gather(1, x[:, None])[:, 0])
            True
        """
        logits, means, log_scales = self._parts(output)
        at_x = value_log_probs(means, log_scales, x[:, :, None].expand_as(means), self.num_categories)  # (B,C,M,H,W)
        if not self.coupled:
            return -torch.logsumexp(logits.log_softmax(2) + at_x, dim=2)  # (B, C, H, W)
        joint = torch.cat([logits[:, :1], logits[:, :1] + at_x.cumsum(1)], dim=1)  # (B, C + 1, M, H, W)
        prefix = torch.logsumexp(joint, dim=2)  # log p(x_<=c) + const, (B, C + 1, H, W)
        return prefix[:, :-1] - prefix[:, 1:]  # -log p(x_c | x_<c)

    def logits(self, output: Tensor, x: Tensor) -> Tensor:
        """Exact log-probabilities of all K values of every sub-pixel, given the earlier channels of its pixel in ``x``.

        Args:
            output: ``(B, 3, C, M, H, W)``: mixture logits, means, log-scales.
            x: ``(B, C, H, W)`` int64 values; a channel's conditional reads the channels before it.

        Returns:
            ``(B, K, C, H, W)`` float32, normalised over K.

        Raises:
            ValueError: if ``output`` has another shape than ``(B, 3, C, M, ...)``.

        Examples:
            >>> import torch
            >>> from vqgen.logistic_mixture import DiscretizedLogisticMixture
            >>> likelihood = DiscretizedLogisticMixture(num_categories=16, channels=1, num_mixtures=3)
            >>> logits = likelihood.logits(torch.randn(2, 3, 1, 3, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long))
            >>> logits.shape, torch.allclose(logits.exp().sum(1), torch.ones(2, 1, 4, 4))
            (torch.Size([2, 16, 1, 4, 4]), True)
        """
        logits, means, log_scales = self._parts(output)
        at_x = value_log_probs(means, log_scales, x[:, :, None].expand_as(means), self.num_categories)
        weights = self._log_weights(logits, at_x)  # (B, C, M, H, W)
        bins = bin_log_probs(means, log_scales, self.num_categories)  # (B, C, M, H, W, K)
        out = torch.logsumexp(weights[..., None] + bins, dim=2)  # (B, C, H, W, K)
        return out.permute(0, 4, 1, 2, 3)  # (B, K, C, H, W)

    def position_logits(self, output: Tensor, c: int, values: Tensor) -> Tensor:
        """Log-probabilities ``(n, K)`` of channel ``c``'s K values at one position; ``output`` ``(n, 3, C, M)``.

        Args:
            output: ``(n, 3, C, M)``, the mixture at one position.
            c: the channel to draw.
            values: ``(n, C)`` int64; channels ``< c`` are final (they re-weight the components), the others are not
                read.

        Returns:
            ``(n, K)`` float32: the column of [`logits`][logits] at this position and channel.

        Examples:
            >>> import torch
            >>> from vqgen.logistic_mixture import DiscretizedLogisticMixture
            >>> likelihood = DiscretizedLogisticMixture(num_categories=256, channels=3, num_mixtures=5)
            >>> output, x = torch.randn(2, 3, 3, 5, 1, 1), torch.randint(256, (2, 3, 1, 1))
            >>> at_position = likelihood.position_logits(output[..., 0, 0], 2, x[..., 0, 0])
            >>> torch.allclose(at_position, likelihood.logits(output, x)[:, :, 2, 0, 0], atol=1e-5)
            True
        """
        logits, means, log_scales = output.float().unbind(1)  # (n, C, M) each
        first = 0 if self.coupled else c  # the channels read: those up to c, or c alone
        inv_scale, log_width = _scales(log_scales[:, first : c + 1], self.num_categories)  # (n, c + 1 - first, M)
        weights = logits[:, 0 if self.coupled else c]  # (n, M)
        if self.coupled and c:  # the component posterior given the channels before c
            seen = _at(means[:, :c], inv_scale[:, :c], log_width[:, :c], values[:, :c, None], self.num_categories)
            weights = weights + seen.sum(1)
        bins = _bins(means[:, c], inv_scale[:, -1], log_width[:, -1], self.num_categories, weights.log_softmax(1))
        return torch.logsumexp(bins, dim=1)  # (n, K)
