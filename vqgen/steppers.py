"""Where the sampling loop's logits come from: the [`Stepper`][Stepper] protocol, and the reference
[`NaiveStepper`][NaiveStepper] (a forward pass per value).

Re-exported by [`vqgen.sampling`][vqgen.sampling], whose loop drives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from torch import Tensor

if TYPE_CHECKING:
    from .interfaces import AutoregressivePrior

__all__ = ["NaiveStepper", "Stepper"]


class Stepper(Protocol):
    """Produces the logits of one value at a time, in raster order.

    A stepper may also define ``prefill(x, positions)`` ([`prefill`][prefill]) to take a known prefix in one pass;
    without it the loop feeds the prefix through [`logits`][logits], one value at a time. A prior's
    [`incremental`][vqgen.interfaces.AutoregressivePrior.incremental] returns its stepper.

    Examples:
        A stepper for a prior whose every value is uniform over K categories (it needs no cache):

        >>> import torch
        >>> from vqgen.sampling import Stepper
        >>> class UniformStepper:
        ...     def __init__(self, num_categories: int) -> None:
        ...         self.num_categories = num_categories
        ...
        ...     def logits(self, x, i, j, c):
        ...         return torch.zeros(x.shape[0], self.num_categories)
        >>> stepper: Stepper = UniformStepper(4)
        >>> stepper.logits(torch.zeros(2, 1, 3, 3, dtype=torch.long), 0, 0, 0).shape
        torch.Size([2, 4])
    """

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        """Logits ``(n, K)`` for channel ``c`` at row ``i``, column ``j``.

        ``x`` ``(n, C, H, W)`` int64 holds final values at every earlier position (raster order) and at channels
        ``< c`` of ``(i, j)``; later entries are undefined and must not be read. Calls come in raster order, each
        value once.

        Args:
            x: ``(n, C, H, W)`` int64, the grids drawn so far.
            i: the row of the value to predict.
            j: its column.
            c: its channel.

        Returns:
            ``(n, K)`` logits (log-probabilities up to a constant per row) of the value's categories.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1).eval()
            >>> x = torch.randint(16, (2, 1, 4, 4))
            >>> stepper = prior.incremental(None, (4, 4))
            >>> logits = [stepper.logits(x, i, j, 0) for i in range(4) for j in range(4)]     # raster order
            >>> logits[5].shape, torch.allclose(logits[5], prior.logits(x)[:, :, 0, 1, 1], atol=1e-5)
            (torch.Size([2, 16]), True)
        """
        ...

    def prefill(self, x: Tensor, positions: int) -> None:  # optional
        """Take the first ``positions`` positions of ``x`` ``(n, C, H, W)`` (raster order, every channel) as known, so
        that the next call is ``logits(x, i, j, 0)`` at position ``positions`` (``i, j = divmod(positions, W)``).

        Args:
            x: ``(n, C, H, W)`` int64 whose first ``positions`` positions are final.
            positions: how many positions, in raster order, are known.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8).eval()
            >>> x = torch.randint(16, (2, 1, 3, 3))
            >>> stepper = prior.incremental(None, (3, 3))
            >>> stepper.prefill(x, 4)                                   # rows 0 and (1, 0) known: next is (1, 1)
            >>> torch.allclose(stepper.logits(x, 1, 1, 0), prior.logits(x)[:, :, 0, 1, 1], atol=1e-5)
            True
        """
        ...


class NaiveStepper:
    """The reference: a full forward pass for every value, slicing out the one needed. It needs no prefill.

    What ``method="naive"`` uses, and what ``AutoregressivePrior.incremental`` returns for a prior without a cache.

    Args:
        prior: the prior to run.
        cond: the condition of the grids being sampled, or ``None``.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.sampling import NaiveStepper
        >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=16, hidden_channels=8, num_layers=2)
        >>> x = torch.randint(16, (2, 1, 4, 4))
        >>> torch.equal(NaiveStepper(prior, None).logits(x, 2, 3, 0), prior.logits(x)[:, :, 0, 2, 3])
        True
    """

    def __init__(self, prior: AutoregressivePrior, cond: Tensor | None) -> None:
        self.prior, self.cond = prior, cond

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        """The logits ``(n, K)`` of value ``(c, i, j)``, from a forward pass over the whole of ``x``.

        Args:
            x: ``(n, C, H, W)`` int64, the grids drawn so far.
            i: the row of the value to predict.
            j: its column.
            c: its channel.

        Returns:
            ``(n, K)``: what the prior's likelihood gives for that value.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen.sampling import NaiveStepper
            >>> prior = vqgen.build("prior", "uniform", num_categories=4)
            >>> NaiveStepper(prior, None).logits(torch.zeros(1, 1, 2, 2, dtype=torch.long), 0, 1, 0)  # all alike
            tensor([[0., 0., 0., 0.]])
        """
        output = self.prior(x, self.cond)  # (n, ..., H, W)
        return self.prior.likelihood.position_logits(output[..., i, j], c, x[:, :, i, j])

    def prefill(self, x: Tensor, positions: int) -> None:
        """Nothing to do: every step reads the whole of ``x``.

        Args:
            x: ``(n, C, H, W)`` int64 whose first ``positions`` positions are final (not read).
            positions: how many positions are known (not used).

        Examples:
            >>> import torch, vqgen
            >>> from vqgen.sampling import NaiveStepper
            >>> stepper = NaiveStepper(vqgen.build("prior", "uniform", num_categories=4), None)
            >>> stepper.prefill(torch.zeros(1, 1, 2, 2, dtype=torch.long), 2)
        """
