"""The naive raster RNN prior: an LSTM (or GRU) over the grid flattened into one long sequence.

The grid ``(C, H, W)`` is read as a sequence of ``H·W·C`` values in raster order (row by row, left to right, channel
by channel). Step ``t`` sees the value at step ``t - 1`` (a learned start token at ``t = 0``) and predicts the value
at step ``t``; the recurrence carries everything earlier. This is exactly causal by construction, and it is the
baseline that PixelRNN (van den Oord et al., arXiv:1601.06759) improves on with two-dimensional recurrences: a single
state must remember the pixel directly above across a whole row of steps, which is why it models images poorly.

With ``channel_order="parallel"`` the sequence has one step per *position* (``H·W`` steps): step ``t`` sees all C
values of position ``t - 1`` and predicts the C values of position ``t`` independently of each other, like the
parallel colour channels of the convolutional priors.

Cached sampling carries the recurrent state: one step per value (per position when parallel), ``O(H·W·C)`` in all,
against ``O((H·W·C)²)`` for the naive sampler that reruns the whole sequence for every value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from ..interfaces import AutoregressivePrior
from ..registry import register
from .embedding import IndexInput

__all__ = ["RNNPrior", "RNNStepper"]

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@register("prior", "rnn")
class RNNPrior(AutoregressivePrior):
    """A recurrent network over the raster-ordered sequence of values, teacher-forced in training.

    Input at each step: the features of the previous value (from the shared
    [`IndexInput`][vqgen.priors.embedding.IndexInput] submodule ``input``: the value scaled to ``[0, 1]`` for pixels, a
    learned embedding for codes; a learned start vector before the first value), projected to ``hidden_size``, plus a
    learned embedding of the channel being predicted (so colour images need no counting modulo ``C``), plus the
    condition (a class embedding or a projected vector), added at every step. With ``channel_order="parallel"`` a step
    reads all C values of the previous position and the head predicts all C values of the current one (no channel
    embedding).

    Args:
        num_categories: K, categories per value (256 for pixels, the codebook size for VQ-VAE codes).
        channels: C, values per position (1 for codes or grey pixels, 3 for colour).
        hidden_size: width of the embeddings and of the recurrent state.
        num_layers: stacked recurrent layers.
        cell: ``"lstm"`` (default) or ``"gru"``.
        num_classes: condition on ``(B,)`` int64 class labels in ``[0, num_classes)``.
        cond_dim: condition on ``(B, cond_dim)`` float vectors.
        input_mode: ``"auto"`` (scaled values for ``K = 256``, embeddings otherwise), ``"scale"`` or ``"embed"``
            (see [`resolve_input_mode`][vqgen.priors.embedding.resolve_input_mode]).
        embed_dim: width of the learned value embeddings (``input_mode="embed"``).
        channel_order: ``"sequential"`` (one step per value, channel ``c`` sees channels ``< c`` of its position)
            or ``"parallel"`` (one step per position, its C values predicted independently given the past).

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, or ``cell``, ``channel_order`` or ``input_mode`` is unknown.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "rnn", num_categories=512, num_classes=10, hidden_size=32)   # codes
        >>> codes, labels = torch.randint(512, (2, 1, 7, 7)), torch.tensor([1, 7])
        >>> prior(codes, labels).shape, prior.sample(2, (7, 7), labels).shape
        (torch.Size([2, 512, 1, 7, 7]), torch.Size([2, 1, 7, 7]))
        >>> vqgen.build("prior", "rnn", cell="transformer")
        Traceback (most recent call last):
        ValueError: cell must be one of ['gru', 'lstm'], got 'transformer'
    """

    def __init__(
        self,
        num_categories: int = 256,
        channels: int = 1,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        num_classes: int | None = None,
        cond_dim: int | None = None,
        input_mode: str = "auto",
        embed_dim: int = 64,
        channel_order: str = "sequential",
    ) -> None:
        super().__init__(num_categories, channels, num_classes, cond_dim, channel_order)
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.input = IndexInput(num_categories, channels, mode=input_mode, embed_dim=embed_dim)  # checks K >= 2
        # One step per value (sequential), or per position: all C values in, all C distributions out (parallel).
        self.per_step = 1 if channel_order == "sequential" else channels
        step_features = self.input.embed_dim * self.per_step
        self.start = nn.Parameter(torch.zeros(step_features))  # stands for the value(s) before the first
        self.input_projection = nn.Linear(step_features, hidden_size)
        self.channel_embedding = nn.Embedding(channels, hidden_size) if channel_order == "sequential" else None
        self.class_embedding = nn.Embedding(num_classes, hidden_size) if num_classes else None
        self.cond_projection = nn.Linear(cond_dim, hidden_size) if cond_dim else None
        self.rnn = _CELLS[cell](hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_categories * self.per_step)

    TINY_CONFIG = {"hidden_size": 16, "num_layers": 1, "embed_dim": 8}
    """One recurrent layer of 16 units, embeddings of 8."""

    def _inputs(self, previous: Tensor, channel: Tensor | None, cond: Tensor | None) -> Tensor:
        """Step inputs ``(B, L, hidden)`` from previous-step features ``(B, L, F)`` and target channels ``(L,)``."""
        inputs = self.input_projection(previous)  # (B, L, hidden)
        if self.channel_embedding is not None:
            inputs = inputs + self.channel_embedding(channel)
        if cond is not None:
            if cond.is_floating_point():
                inputs = inputs + self.cond_projection(cond)[:, None]
            else:
                inputs = inputs + self.class_embedding(cond)[:, None]
        return inputs

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)`` for ``x`` ``(B, C, H, W)`` int64, one recurrent pass over the sequence.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: as in [`check_cond`][vqgen.interfaces.AutoregressivePrior.check_cond].

        Returns:
            ``(B, K, C, H, W)`` logits, each value's from the values before it in raster order.

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch, vqgen
            >>> colour = vqgen.build("prior", "rnn", channels=3, hidden_size=16)           # 256 values, R → G → B
            >>> colour(torch.randint(256, (2, 3, 4, 4))).shape
            torch.Size([2, 256, 3, 4, 4])
        """
        self.check_input(x, cond)
        batch, channels, height, width = x.shape
        c = channels // self.per_step  # values per sequence step's position-part: C (sequential) or 1 (parallel)
        # (B, L, F): L = H·W·C steps of one value each, or H·W steps of all C values
        features = rearrange(self.input(x), "b (c e) h w -> b (h w c) e", c=c)
        start = self.start.expand(batch, 1, -1)  # (B, 1, F)
        previous = torch.cat([start, features[:, :-1]], dim=1)  # (B, L, F): shifted right by one step
        channel = torch.arange(channels, device=x.device).repeat(height * width) if self.per_step == 1 else None
        hidden, _ = self.rnn(self._inputs(previous, channel, cond))  # (B, L, hidden)
        logits = self.head(hidden)  # (B, L, per_step * K)
        return rearrange(logits, "b (h w c) (s k) -> b k (c s) h w", h=height, w=width, c=c, s=self.per_step)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> RNNStepper:
        """A stepper that advances the recurrence by one step per value (see [`RNNStepper`][RNNStepper]).

        Args:
            cond: the condition of the grids to sample, or ``None``.
            shape: ``(H, W)`` of the grids.

        Returns:
            A new [`RNNStepper`][RNNStepper].

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
            >>> type(prior.incremental(None, (4, 4))).__name__
            'RNNStepper'
        """
        return RNNStepper(self, cond, shape)


class RNNStepper:
    """Cached sampling for [`RNNPrior`][RNNPrior]: the recurrent state is the cache.

    Each call feeds the previous value in raster order (or the start token) through one recurrent step and returns
    the logits ``(n, K)`` of the next value; a known prefix goes through the recurrence in one call
    ([`prefill`][prefill]). Calls must come in raster order, each value once, as the sampling loop
    of [`vqgen.sampling`][vqgen.sampling] makes them. With parallel channels a position is one step: its C distributions
    are computed at ``c = 0`` and returned one by one.
    """

    def __init__(self, prior: RNNPrior, cond: Tensor | None, shape: Sequence[int]) -> None:
        self.prior, self.cond = prior, cond
        self.width = int(shape[1])
        self.state: Tensor | tuple[Tensor, Tensor] | None = None
        self.last: Tensor | None = None

    @torch.inference_mode()
    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        prior, channels = self.prior, self.prior.channels
        if prior.per_step > 1:  # parallel: one step per position, its C distributions kept for c > 0
            if c == 0:
                self.last = self._step(x, i * self.width + j, None)  # (n, C * K)
            return self.last.view(x.shape[0], channels, -1)[:, c]
        return self._step(x, (i * self.width + j) * channels + c, c)

    @torch.inference_mode()
    def prefill(self, x: Tensor, positions: int) -> None:
        """Run the recurrence over the first ``positions`` positions of ``x`` in one call (one sequence step per value,
        or per position when parallel), so that the next call is ``logits(x, i, j, 0)`` at position ``positions``."""
        prior, (batch, channels) = self.prior, x.shape[:2]
        c = channels // prior.per_step
        steps = positions * c  # sequence steps of the known positions; their inputs are the start and steps - 1 values
        features = rearrange(prior.input(x), "b (c e) h w -> b (h w c) e", c=c)[:, : steps - 1]  # (B, steps - 1, F)
        previous = torch.cat([prior.start.expand(batch, 1, -1), features], dim=1)  # (B, steps, F)
        channel = torch.arange(channels, device=x.device).repeat(positions) if prior.per_step == 1 else None
        _, self.state = prior.rnn(prior._inputs(previous, channel, self.cond))

    def _step(self, x: Tensor, step: int, c: int | None) -> Tensor:
        """Feed the step before ``step`` (or the start token) and return the head output ``(n, per_step * K)``."""
        prior, channels = self.prior, self.prior.channels
        if step == 0:  # a new grid: forget the state of the previous one
            self.state = None
            previous = prior.start.expand(x.shape[0], 1, -1)  # (n, 1, F)
        elif prior.per_step > 1:
            pi, pj = divmod(step - 1, self.width)
            features = prior.input(x[:, :, pi : pi + 1, pj : pj + 1])  # (n, C * E, 1, 1)
            previous = rearrange(features, "n f 1 1 -> n 1 f")  # (n, 1, C * E)
        else:
            pi, rest = divmod(step - 1, self.width * channels)
            pj, pc = divmod(rest, channels)
            features = prior.input(x[:, :, pi : pi + 1, pj : pj + 1])  # (n, C * E, 1, 1)
            previous = rearrange(features, "n (c e) 1 1 -> n c e", c=channels)[:, pc : pc + 1]  # (n, 1, E)
        channel = torch.tensor([c], device=x.device) if c is not None else None
        inputs = prior._inputs(previous, channel, self.cond)  # (n, 1, hidden)
        hidden, self.state = prior.rnn(inputs, self.state)  # (n, 1, hidden)
        return prior.head(hidden[:, 0])  # (n, per_step * K)
