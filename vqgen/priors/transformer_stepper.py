"""The cached stepper of [`TransformerPrior`][vqgen.priors.transformer.TransformerPrior]: one token per step through
every layer, attending to a key/value cache allocated once per grid, or a known prefix in one pass.

Re-exported by [`vqgen.priors.transformer`][vqgen.priors.transformer], whose ``incremental`` returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor

from .attention import KVCache

if TYPE_CHECKING:
    from .transformer import TransformerPrior

__all__ = ["TransformerStepper"]


class TransformerStepper:
    """Cached sampling for [`TransformerPrior`][vqgen.priors.transformer.TransformerPrior]: every layer's keys and
    values in a [`KVCache`][vqgen.priors.attention.KVCache].

    Each call feeds the previous value in raster order (or the start token) through every layer as one new token,
    appending its keys and values to the caches, and returns the logits ``(n, K)`` of the next value. Calls must come
    in raster order, each value once, as the sampling loop of [`vqgen.sampling`][vqgen.sampling] makes them (a call
    at the first value starts a new grid in the same buffers). Since every step reads the value before it from ``x``
    itself, completions may keep any values (``prefix_mask`` of any shape): the loop writes a kept value into ``x``
    before the step that reads it. With parallel channels a position is one token: its C distributions are computed
    at ``c = 0`` and returned one by one.

    Args:
        prior: the prior (in eval mode while sampling).
        cond: ``(n,)`` class labels or ``(n, cond_dim)`` vectors, as the prior takes; checked here.
        shape: ``(H, W)`` of the grid: the caches hold its ``L`` tokens.
    """

    def __init__(self, prior: TransformerPrior, cond: Tensor | None, shape: Sequence[int]) -> None:
        if len(shape) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            raise ValueError(f"shape must be (H, W) with two positive ints, got {shape!r}")
        prior.check_cond(cond, batch=cond.shape[0] if isinstance(cond, Tensor) and cond.ndim else 0)
        self.prior, self.shape = prior, (int(shape[0]), int(shape[1]))
        self.tokens_per_position = prior.tokens_per_position
        self.length = self.shape[0] * self.shape[1] * self.tokens_per_position
        self.caches = [KVCache(self.length) for _ in prior.blocks]
        with torch.no_grad():
            self.positions = prior.positions(*self.shape)
            bias = prior.condition(cond)  # (n, 1, D) or None
            channels = prior.channel_embedding.weight[:, None, None]  # (P, 1, 1, D): P tokens per position
            self.bias = channels if bias is None else channels + bias  # (P, n or 1, 1, D): all a token adds
        self.filled = 0  # tokens in the caches
        self.last: Tensor | None = None  # parallel channels: the C distributions of the current position

    @property
    def nbytes(self) -> int:
        """Bytes held by the key/value buffers (allocated at the first step)."""
        return sum(cache.nbytes for cache in self.caches)

    @torch.inference_mode()
    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        height, width = self.shape
        if self.tokens_per_position == 1 and c > 0:  # parallel: computed with channel 0
            return self.last[:, c]
        token = (i * width + j) * self.tokens_per_position + c
        if not (0 <= i < height and 0 <= j < width) or token >= self.length:
            raise ValueError(
                f"value (i={i}, j={j}, c={c}) lies outside the {height}x{width} grid this stepper's key/value cache "
                f"was allocated for ({self.length} tokens); start a stepper for the larger grid"
            )
        if token and token != self.filled:
            position, channel = divmod(self.filled, self.tokens_per_position)
            expected = (*divmod(position, width), channel)
            raise ValueError(
                f"values must be stepped in raster order, each once: the next is (i, j, c) = {expected}, got "
                f"{(i, j, c)}; a prefix goes in with prefill(x, positions)"
            )
        if x.shape[-2:] != self.shape:
            raise ValueError(f"x must be a {height}x{width} grid, as the stepper was built for; got {tuple(x.shape)}")
        prior = self.prior
        if token == 0:  # a new grid in the same buffers
            previous = prior.start.expand(x.shape[0], 1, -1)  # (n, 1, F)
        else:
            p, pc = divmod(token - 1, self.tokens_per_position)  # the value read: its position and channel
            pi, pj = divmod(p, width)
            if self.tokens_per_position == 1:
                previous = prior.input.embed_values(x[:, :, pi, pj])[:, None]  # (n, 1, C * E)
            else:
                previous = prior.input.embed_values(x[:, pc, pi, pj, None], pc)[:, None]  # (n, 1, E)
        h = prior.input_projection(previous) + self.bias[token % self.tokens_per_position]  # (n, 1, D)
        out = prior.run(h, self.positions.window(token, token + 1), self.caches, token)[:, 0]  # (n, S · K)
        self.filled = token + 1
        if self.tokens_per_position == 1 and prior.channels > 1:
            self.last = out.view(x.shape[0], prior.channels, -1)  # (n, C, K)
            return self.last[:, 0]
        return out

    @torch.inference_mode()
    def prefill(self, x: Tensor, positions: int) -> None:
        """Run the tokens of the first ``positions`` positions of ``x`` ``(n, C, H, W)`` through every layer in one
        pass, filling the caches, so that the next call is ``logits(x, i, j, 0)`` at position ``positions``; only
        those positions of ``x`` are read."""
        height, width = self.shape
        if isinstance(positions, bool) or not isinstance(positions, int) or not 0 <= positions <= height * width:
            raise ValueError(f"positions must be an int in [0, {height * width}], got {positions}")
        if x.shape[-2:] != self.shape:
            raise ValueError(f"x must be a {height}x{width} grid, as the stepper was built for; got {tuple(x.shape)}")
        self.filled = 0
        tokens = positions * self.tokens_per_position
        if tokens == 0:
            return
        prior, rows = self.prior, -(-positions // width)  # the rows that hold the prefix
        features = rearrange(prior.input(x[:, :, :rows]), "b (c e) h w -> b (h w c) e", c=self.tokens_per_position)
        previous = torch.cat([prior.start.expand(x.shape[0], 1, -1), features[:, : tokens - 1]], dim=1)  # (n, T, F)
        channel = torch.arange(tokens, device=x.device) % self.tokens_per_position  # (T,)
        bias = self.bias[channel][:, :, 0].transpose(0, 1)  # (n or 1, T, D)
        prior.run(prior.input_projection(previous) + bias, self.positions.window(0, tokens), self.caches, 0)
        self.filled = tokens
