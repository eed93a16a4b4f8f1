"""How a prior's network output becomes a distribution over the values: the priors' one likelihood.

A prior's ``forward(x, cond)`` returns what its network computes for every position, ``(B, ..., H, W)``; its
[`likelihood`][vqgen.interfaces.AutoregressivePrior.likelihood] says what that output means. Every use of a prior's
probabilities goes through this object, so that training, evaluation, ``log_prob``, bits/dim and sampling agree, and a
new output head (a discretised logistic mixture, say) changes none of them:

- [`nll`][Likelihood.nll]: the negative log-likelihood of each value given the values before it, ``(B, C, H, W)`` —
  the training loss (its mean), evaluation and ``log_prob`` (its sum per example);
- [`logits`][Likelihood.logits]: the log-probabilities of every category of every value, ``(B, K, C, H, W)``;
- [`position_logits`][Likelihood.position_logits]: those of one channel at one position, given the channels of that
  position drawn before it — what the sampling loop draws from (temperature, top-k and top-p act on them), naive and
  cached alike. A head that couples the channels of a position in its output (PixelCNN++'s mixture, where the means of
  G and B depend on the R and G drawn) does so here.

[`Categorical`][Categorical], a K-way softmax per value, is the likelihood of every prior that sets no other.
"""

from __future__ import annotations

import abc

import torch.nn.functional as F
from torch import Tensor

__all__ = ["Categorical", "Likelihood"]


class Likelihood(abc.ABC):
    """The distribution of each value given the values before it, parametrised by a prior's network output.

    ``output`` is ``(B, ..., H, W)`` as the prior's ``forward`` returns it (any layout in between; only the
    likelihood reads it); ``x`` is ``(B, C, H, W)`` int64 values in ``[0, K)``.
    """

    @abc.abstractmethod
    def nll(self, output: Tensor, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats of each value of ``x`` given the values before it: ``(B, C, H, W)``,
        float32 whatever the dtype of ``output`` (e.g. under bf16 autocast)."""

    @abc.abstractmethod
    def logits(self, output: Tensor, x: Tensor) -> Tensor:
        """Log-probabilities (up to a constant per value) of every category of every value, ``(B, K, C, H, W)``.

        Entry ``[:, k, c, i, j]`` is ``log p(x[c, i, j] = k | the values before it in x)``; the entries of ``x`` at
        ``(c, i, j)`` and after it are not read.
        """

    def position_logits(self, output: Tensor, c: int, values: Tensor) -> Tensor:
        """Logits ``(n, K)`` of channel ``c`` at one position.

        Args:
            output: ``(n, ...)``, the network output at that position (``forward``'s output without ``H, W``).
            c: the channel to draw.
            values: ``(n, C)`` int64, the position's values; channels ``< c`` are final, the others are not read.
        """
        return self.logits(output[..., None, None], values[:, :, None, None])[:, :, c, 0, 0]


class Categorical(Likelihood):
    """A K-way softmax per value: ``output`` is the logits ``(B, K, C, H, W)`` themselves.

    Channel ``c`` of a position sees channels ``< c`` through the network (masked convolutions, the sequence of an
    RNN), not through the head, so a position's logits of all channels come from one output.
    """

    def nll(self, output: Tensor, x: Tensor) -> Tensor:
        return F.cross_entropy(output.float(), x, reduction="none")  # (B, C, H, W)

    def logits(self, output: Tensor, x: Tensor) -> Tensor:
        return output

    def position_logits(self, output: Tensor, c: int, values: Tensor) -> Tensor:
        return output[:, :, c]  # (n, K)
