"""The interface of the second stage: [`AutoregressivePrior`][AutoregressivePrior], a distribution over grids of
categorical values (VQ-VAE codes or pixels), and the channel orders it knows.

Re-exported by [`vqgen.interfaces`][vqgen.interfaces] beside the first stage's interfaces; it imports no prior, so
[`vqgen.sampling`][vqgen.sampling] (whose loop its ``sample`` runs) needs no lazy import.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from . import checks
from .component import Component
from .likelihoods import Categorical, Likelihood
from .metrics.likelihood import bits_per_dim
from .sampling import NaiveStepper, SamplingOptions, SamplingSettings, Stepper, sample

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CHANNEL_ORDERS", "AutoregressivePrior"]


CHANNEL_ORDERS = ("sequential", "parallel")


class AutoregressivePrior(Component, abc.ABC):
    """A distribution over grids of categorical values, factorised in raster order (PixelRNN, arXiv:1601.06759).

    ``x`` has shape ``(B, C, H, W)`` with int64 values in ``[0, K)``: ``C = 1`` and ``K`` = codebook size for a prior
    over VQ-VAE codes, or ``C`` = 1 or 3 and ``K = 256`` for a pixel model. Position ``(i, j)`` channel ``c`` is
    predicted from all positions before ``(i, j)`` in raster order and from channels ``< c`` at ``(i, j)`` (with
    ``channel_order="sequential"``; with ``"parallel"`` the channels of a position are independent given the past).

    The base stores what every prior is (``num_categories``, ``channels``, ``num_classes``, ``cond_dim``,
    ``channel_order``), validates them, and checks inputs and conditions; it samples with one loop
    ([`vqgen.sampling`][vqgen.sampling]). A new prior is one file: call ``super().__init__(...)`` with those facts,
    build the network, write [`forward`][forward] (and, for fast sampling, [`incremental`][incremental]), and register
    it.

    Args:
        num_categories: K, the number of categories per value (``None`` only for subclasses that override the
            [`num_categories`][num_categories] property themselves, as plugins written for vqgen 0.x did).
        channels: C, the number of values per position.
        num_classes: the number of class labels the prior is conditioned on (``cond`` ``(B,)`` int64), or ``None``.
        cond_dim: the width of the conditioning vectors (``cond`` ``(B, cond_dim)`` float), or ``None``.
        channel_order: ``"sequential"`` (channel ``c`` also sees channels ``< c`` of its position) or
            ``"parallel"``.

    Raises:
        TypeError: if ``num_categories``, ``channels``, ``num_classes`` or ``cond_dim`` is not an int.
        ValueError: if one of them is not positive, or ``channel_order`` is neither of the two.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=16, num_classes=10, hidden_channels=8)
        >>> codes, labels = torch.randint(16, (4, 1, 5, 5)), torch.tensor([0, 1, 2, 3])   # (B, C, H, W) in [0, K)
        >>> prior.nll(codes, labels).shape, prior.log_prob(codes, labels).shape
        (torch.Size([4, 1, 5, 5]), torch.Size([4]))
        >>> prior.sample(4, (5, 5), labels).shape
        torch.Size([4, 1, 5, 5])
    """

    def __init__(
        self,
        num_categories: int | None = None,
        channels: int = 1,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        channel_order: str = "sequential",
    ) -> None:
        super().__init__()
        if num_categories is not None:  # None: a subclass written before the base stored it declares the properties
            checks.check_positive(num_categories, name="num_categories", integer=True)
        checks.check_positive(channels, name="channels", integer=True)
        for name, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
            if value is not None:
                checks.check_positive(value, name=name, integer=True)
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {list(CHANNEL_ORDERS)}, got {channel_order!r}")
        self._num_categories = None if num_categories is None else int(num_categories)
        self._channels = int(channels)
        self._num_classes, self._cond_dim = num_classes, cond_dim
        self.channel_order = channel_order

    @property
    def num_categories(self) -> int:
        """K, the number of categories per value.

        Raises:
            TypeError: if a subclass neither passed it to ``__init__`` nor overrode this property.

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "rnn", num_categories=512).num_categories
            512
        """
        if self._num_categories is None:
            raise TypeError(
                f"{type(self).__name__} did not pass num_categories to AutoregressivePrior.__init__; pass it there"
            )
        return self._num_categories

    @property
    def channels(self) -> int:
        """C, the number of channels per position.

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "rnn", channels=3).channels
            3
        """
        return self._channels

    @property
    def num_classes(self) -> int | None:
        """The number of class labels the prior is conditioned on, or ``None`` if it takes no class label.

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "rnn", num_classes=10).num_classes, vqgen.build("prior", "rnn").num_classes
            (10, None)
        """
        return self._num_classes

    @property
    def cond_dim(self) -> int | None:
        """The width of the conditioning vector the prior takes, or ``None`` if it takes none.

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "rnn", cond_dim=32).cond_dim
            32
        """
        return self._cond_dim

    @property
    def sequential_channels(self) -> bool:
        """True when channel ``c`` of a position depends on its channels ``< c`` (several channels, sequential).

        Examples:
            >>> import vqgen
            >>> vqgen.build("prior", "rnn", channels=3).sequential_channels
            True
            >>> vqgen.build("prior", "rnn", channels=3, channel_order="parallel").sequential_channels
            False
        """
        return self.channels > 1 and self.channel_order == "sequential"

    def check_input(self, x: object, cond: object = None) -> None:
        """Raise a clear error unless ``x`` is ``(B, C, H, W)`` integer values in ``[0, K)`` and ``cond`` fits.

        Args:
            x: the grids a caller hands to ``forward``.
            cond: their condition (see [`check_cond`][check_cond]).

        Raises:
            TypeError: if ``x`` is not an integer tensor, or ``cond`` is of the wrong kind.
            ValueError: if ``x`` is not 4-D, has other channels or values outside ``[0, K)``, or ``cond`` does not fit.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "rnn", num_categories=16)
            >>> prior.check_input(torch.randint(16, (2, 1, 4, 4)))
            >>> prior.check_input(torch.rand(2, 1, 4, 4))
            Traceback (most recent call last):
            TypeError: x must hold integer category indices (int64), got torch.float32; ...
        """
        checks.check_tensor(x, name="x", ndim=4)
        checks.check_indices(x, num_categories=self.num_categories, name="x")
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels (axis 1), got shape {tuple(x.shape)}")
        self.check_cond(cond, batch=x.shape[0])

    def check_cond(self, cond: object, *, batch: int) -> None:
        """Raise unless ``cond`` matches what the prior is conditioned on (class labels, vectors, or nothing).

        Args:
            cond: ``None`` for an unconditional prior; ``(B,)`` int64 labels in ``[0, num_classes)``; or
                ``(B, cond_dim)`` finite float vectors.
            batch: B, the number of examples ``cond`` must have a row for.

        Raises:
            TypeError: if ``cond`` is not a tensor, or of the other kind (vectors for a class-conditional prior).
            ValueError: if a condition is missing or unexpected, or its shape or values do not fit.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "rnn", num_classes=10)
            >>> prior.check_cond(torch.tensor([3, 7]), batch=2)
            >>> prior.check_cond(None, batch=2)
            Traceback (most recent call last):
            ValueError: RNNPrior is conditional and needs cond (10 class labels); got cond=None
        """
        checks.check_cond(
            cond, batch=batch, num_classes=self.num_classes, cond_dim=self.cond_dim, owner=type(self).__name__
        )

    likelihood: Likelihood = Categorical()
    """What [`forward`][forward]'s output means: the distribution of each value given the values before it (see
    [`vqgen.likelihoods`][vqgen.likelihoods]). A K-way softmax per value unless the prior sets another."""

    @abc.abstractmethod
    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The network's output ``(B, ..., H, W)`` for ``x`` ``(B, C, H, W)`` int64: at every position, the parameters
        of the [`likelihood`][likelihood] of its values, each depending only on earlier values.

        With the default [`Categorical`][vqgen.likelihoods.Categorical] likelihood these are the logits
        ``(B, K, C, H, W)``. ``cond`` is ``(B,)`` int64 class labels or ``(B, cond_dim)`` float vectors for conditional
        priors.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: ``(B,)`` class labels or ``(B, cond_dim)`` vectors; ``None`` for an unconditional prior.

        Returns:
            The likelihood's parameters at every position, ``(B, K, C, H, W)`` logits for a softmax prior.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1)
            >>> prior(torch.randint(16, (2, 1, 5, 5))).shape
            torch.Size([2, 16, 1, 5, 5])
        """

    def nll(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Negative log-likelihood in nats of each value given the values before it, ``(B, C, H, W)`` float32.

        The one place a prior's probabilities are computed: the training loss is its mean, ``log_prob`` its sum per
        example, and evaluation and bits/dim go through ``log_prob``.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: ``(B,)`` class labels or ``(B, cond_dim)`` vectors; ``None`` for an unconditional prior.

        Returns:
            ``(B, C, H, W)`` float32, ``-log p(x[:, c, i, j] | earlier values)``.

        Examples:
            >>> import math, torch, vqgen
            >>> prior = vqgen.build("prior", "uniform", num_categories=16)
            >>> nll = prior.nll(torch.randint(16, (2, 1, 4, 4)))
            >>> nll.shape, round(nll[0, 0, 0, 0].item(), 4) == round(math.log(16), 4)
            (torch.Size([2, 1, 4, 4]), True)
        """
        return self.likelihood.nll(self(x, cond), x)

    def logits(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Log-probabilities (up to a constant per value) of every category of every value, ``(B, K, C, H, W)``:
        entry ``[:, k, c, i, j]`` scores ``x[:, c, i, j] = k`` given the values of ``x`` before it.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: ``(B,)`` class labels or ``(B, cond_dim)`` vectors; ``None`` for an unconditional prior.

        Returns:
            ``(B, K, C, H, W)`` float.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
            >>> prior.logits(torch.randint(16, (2, 1, 4, 4))).shape
            torch.Size([2, 16, 1, 4, 4])
        """
        return self.likelihood.logits(self(x, cond), x)

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Log-likelihood of each example in nats, shape ``(B,)``.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: ``(B,)`` class labels or ``(B, cond_dim)`` vectors; ``None`` for an unconditional prior.

        Returns:
            ``(B,)`` float, ``log p(x[b])`` summed over all values of the example.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "uniform", num_categories=2)
            >>> prior.log_prob(torch.zeros(3, 1, 2, 2, dtype=torch.long))       # 4 fair coins: 4 log(1/2)
            tensor([-2.7726, -2.7726, -2.7726])
        """
        return -self.nll(x, cond).flatten(1).sum(1)

    def bits_per_dim(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Negative log-likelihood in bits per value (per sub-pixel for images), shape ``(B,)``.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: ``(B,)`` class labels or ``(B, cond_dim)`` vectors; ``None`` for an unconditional prior.

        Returns:
            ``(B,)`` float, ``-log2 p(x[b]) / (C * H * W)``.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "uniform", num_categories=256, channels=3)
            >>> prior.bits_per_dim(torch.zeros(2, 3, 4, 4, dtype=torch.long))          # log2(256) bits per value
            tensor([8.0000, 8.0000])
        """
        return bits_per_dim(-self.log_prob(x, cond), x[0].numel())

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> Stepper:
        """A [`Stepper`][vqgen.sampling.Stepper] for ``method="cached"`` sampling of grids of ``shape`` ``(H, W)``.

        The default recomputes the whole network per value (like ``"naive"``); fast priors return a stepper that
        computes only what the next value needs and caches the rest (arXiv:1704.06001), and may fill its caches from a
        known prefix in one pass ([`Stepper.prefill`][vqgen.sampling.Stepper.prefill]).

        Args:
            cond: the condition of the grids to sample (checked by the caller), or ``None``.
            shape: ``(H, W)`` of the grids.

        Returns:
            A new stepper for one sampling run.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1)
            >>> type(prior.incremental(None, (5, 5))).__name__
            'PixelCNNStepper'
        """
        return NaiveStepper(self, cond)

    def rows_in_view(self, height: int, width: int) -> int | None:
        """How many rows of an ``(H, W)`` grid the logits of its last position depend on, its own row included.

        Fewer than ``H``: the prior cannot model how the top rows shape the bottom ones (its receptive field is too
        small for the grid), which [`fit_prior`][vqgen.training.prior.fit_prior] logs. ``None`` (the default): not
        known, or every row.

        Args:
            height: H, the grid's rows.
            width: W, the grid's columns.

        Returns:
            The number of rows in view, or ``None``.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, num_layers=2, first_kernel_size=7)
            >>> prior.rows_in_view(28, 28)     # a 7x7 first layer and two 3x3 layers see 3 + 1 + 1 rows up
            6
        """
        return None

    def sample(
        self,
        n: int,
        shape: Sequence[int],
        cond: Tensor | None = None,
        *,
        prefix: Tensor | None = None,
        prefix_mask: Tensor | None = None,
        options: SamplingOptions | None = None,
        **settings: Unpack[SamplingSettings],
    ) -> Tensor:
        """Draw ``n`` grids of ``shape`` ``(H, W)`` → ``(n, C, H, W)`` int64, one value at a time in raster order.

        All arguments are validated once, before the loop, which runs under ``torch.inference_mode`` (the result is
        an ordinary tensor).

        Args:
            n: number of samples.
            shape: ``(H, W)`` of the grid.
            cond: ``(n,)`` class labels or ``(n, cond_dim)`` vectors for conditional priors.
            prefix: ``(n, C, H, W)`` int64 values to keep (image completion); positions not kept are sampled.
                Without ``prefix_mask`` the whole prefix is kept, and it may be shorter: ``(n, C, h0, W)`` keeps the
                first ``h0`` rows.
            prefix_mask: ``(n, C, H, W)`` or ``(n, 1, H, W)`` bool, True where ``prefix`` is kept.
            options: a [`SamplingOptions`][vqgen.sampling.SamplingOptions].
            **settings: its fields as keywords, replacing those of ``options``: ``temperature``, ``top_k``,
                ``top_p``, ``method`` (``"cached"`` or ``"naive"``), ``generator``, ``progress``.

        Returns:
            ``(n, C, H, W)`` int64 values in ``[0, K)``, on the prior's device.

        Raises:
            TypeError: if an argument is of the wrong type (see [`vqgen.sampling.sample`][vqgen.sampling.sample]).
            ValueError: if ``n``, ``shape``, ``cond``, the prefix or a setting is out of range.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=16, hidden_channels=8, num_layers=2)
            >>> generator = torch.Generator().manual_seed(0)
            >>> samples = prior.sample(4, (5, 5), temperature=0.9, top_k=8, generator=generator)
            >>> samples.shape, samples.dtype
            (torch.Size([4, 1, 5, 5]), torch.int64)
            >>> completed = prior.sample(4, (5, 5), prefix=samples[:, :, :2])         # keep the first two rows
            >>> bool((completed[:, :, :2] == samples[:, :, :2]).all())
            True
        """
        options = SamplingOptions.of(options, **settings)
        return sample(self, n, shape, cond, prefix=prefix, prefix_mask=prefix_mask, options=options)
