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
    likelihood reads it); ``x`` is ``(B, C, H, W)`` int64 values in ``[0, K)``. A prior with another output head
    sets its ``likelihood`` attribute to an instance of a subclass; training, metrics and sampling need no change.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
        >>> x = torch.randint(16, (2, 1, 3, 3))
        >>> torch.equal(prior.likelihood.nll(prior(x), x), prior.nll(x))       # what prior.nll computes
        True
    """

    @abc.abstractmethod
    def nll(self, output: Tensor, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats of each value of ``x`` given the values before it: ``(B, C, H, W)``,
        float32 whatever the dtype of ``output`` (e.g. under bf16 autocast).

        Args:
            output: ``(B, ..., H, W)``, the prior's network output for ``x``.
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.

        Returns:
            ``(B, C, H, W)`` float32 ``-log p(x[:, c, i, j] | earlier values)``.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> logits = torch.zeros(1, 4, 1, 1, 2)                  # (B, K, C, H, W): 4 equally likely categories
            >>> Categorical().nll(logits, torch.tensor([[[[0, 3]]]]))
            tensor([[[[1.3863, 1.3863]]]])
        """

    @abc.abstractmethod
    def logits(self, output: Tensor, x: Tensor) -> Tensor:
        """Log-probabilities (up to a constant per value) of every category of every value, ``(B, K, C, H, W)``.

        Entry ``[:, k, c, i, j]`` is ``log p(x[c, i, j] = k | the values before it in x)``; the entries of ``x`` at
        ``(c, i, j)`` and after it are not read.

        Args:
            output: ``(B, ..., H, W)``, the prior's network output for ``x``.
            x: ``(B, C, H, W)`` int64 values in ``[0, K)`` (needed by heads that couple a position's channels).

        Returns:
            ``(B, K, C, H, W)`` float.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> logits = torch.randn(2, 16, 1, 3, 3)
            >>> Categorical().logits(logits, torch.zeros(2, 1, 3, 3, dtype=torch.long)) is logits   # the output
            True
        """

    def position_logits(self, output: Tensor, c: int, values: Tensor) -> Tensor:
        """Logits ``(n, K)`` of channel ``c`` at one position.

        Args:
            output: ``(n, ...)``, the network output at that position (``forward``'s output without ``H, W``).
            c: the channel to draw.
            values: ``(n, C)`` int64, the position's values; channels ``< c`` are final, the others are not read.

        Returns:
            ``(n, K)`` logits of channel ``c``, what the sampling loop draws from.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> output = torch.randn(2, 16, 3)                       # (n, K, C) at one position
            >>> Categorical().position_logits(output, 1, torch.zeros(2, 3, dtype=torch.long)).shape
            torch.Size([2, 16])
        """
        return self.logits(output[..., None, None], values[:, :, None, None])[:, :, c, 0, 0]


class Categorical(Likelihood):
    """A K-way softmax per value: ``output`` is the logits ``(B, K, C, H, W)`` themselves.

    Channel ``c`` of a position sees channels ``< c`` through the network (masked convolutions, the sequence of an
    RNN), not through the head, so a position's logits of all channels come from one output.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.likelihoods import Categorical
        >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1)
        >>> isinstance(prior.likelihood, Categorical), prior(torch.zeros(1, 1, 4, 4, dtype=torch.long)).shape
        (True, torch.Size([1, 16, 1, 4, 4]))
    """

    def nll(self, output: Tensor, x: Tensor) -> Tensor:
        """Cross-entropy of each value: ``-log_softmax(output)`` at ``x``, ``(B, C, H, W)`` float32.

        Args:
            output: ``(B, K, C, H, W)`` logits.
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.

        Returns:
            ``(B, C, H, W)`` float32, in nats.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> logits = torch.tensor([0.0, 0.0, 20.0]).log_softmax(0).reshape(1, 3, 1, 1, 1)
            >>> Categorical().nll(logits, torch.tensor([[[[2]]]])).item() < 1e-6        # almost sure of value 2
            True
        """
        return F.cross_entropy(output.float(), x, reduction="none")  # (B, C, H, W)

    def logits(self, output: Tensor, x: Tensor) -> Tensor:
        """``output`` itself: the network computes the logits of every value directly.

        Args:
            output: ``(B, K, C, H, W)`` logits.
            x: ``(B, C, H, W)`` int64 values (not read).

        Returns:
            ``output``, unchanged.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> output = torch.randn(1, 4, 1, 2, 2)
            >>> Categorical().logits(output, torch.zeros(1, 1, 2, 2, dtype=torch.long)) is output
            True
        """
        return output

    def position_logits(self, output: Tensor, c: int, values: Tensor) -> Tensor:
        """The logits of channel ``c``: ``output[:, :, c]``.

        Args:
            output: ``(n, K, C)``, the logits at one position.
            c: the channel to draw.
            values: ``(n, C)`` int64 (not read: the network saw the earlier channels already).

        Returns:
            ``(n, K)``.

        Examples:
            >>> import torch
            >>> from vqgen.likelihoods import Categorical
            >>> output = torch.arange(6.0).reshape(1, 3, 2)          # (n, K, C)
            >>> Categorical().position_logits(output, 1, torch.zeros(1, 2, dtype=torch.long))
            tensor([[1., 3., 5.]])
        """
        return output[:, :, c]  # (n, K)
