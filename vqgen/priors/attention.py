"""The layers of the transformer prior: 2-D rotary positions, causal self-attention with a key/value cache, a block.

One code path serves the three ways a decoder-only transformer runs (Vaswani et al., arXiv:1706.03762; GPT-2's
pre-norm block): the whole sequence in training, a known prefix in one pass (``prefill``), and one token per step when
sampling. Each layer writes the keys and values of its new tokens into a [`KVCache`][KVCache] (buffers allocated once,
filled in place) and its queries attend to the filled part; [`attend`][attend] gives every case its own mask:

- ``T`` queries against the same ``T`` keys: the causal (lower-left) triangle, ``is_causal=True``;
- one query against ``S`` cached keys: no mask at all (every cached key comes before it). ``is_causal=True`` would be
  wrong here: ``scaled_dot_product_attention`` aligns its causal mask to the upper left, so the query would see only
  the first key (the trap of taming-transformers-style decoders; ``tests/priors/test_transformer_attention.py``);
- ``T`` queries that are the last ``T`` of ``S`` keys: the triangle shifted to the lower right, as an explicit mask.

Positions are 2-D rotary embeddings (RoFormer, arXiv:2104.09864; in two dimensions as in LlamaGen,
arXiv:2406.06525): the first half of every head rotates by the row, the second half by the column, so a query-key
score depends on their offset ``(di, dj)`` only, and nothing is tied to a grid size at construction.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ROTARY_BASE", "Block", "KVCache", "Positions", "SelfAttention", "attend", "rotary_factors", "rotate"]

ROTARY_BASE = 100.0
"""Wavelengths of the rotary frequencies run from ``2π`` to ``2π · ROTARY_BASE`` positions per axis: 6 to 630 rows or
columns, which resolves every offset of the code grids and pixel images vqgen models (7 to 64 a side). The usual
10 000 of language models would spend half of the frequencies on wavelengths longer than any grid here."""


class Positions(NamedTuple):
    """Rotary factors of a run of tokens, ``(2, T, head_dim / 2)`` float32 each (cosines, sines): queries and keys may
    sit at different positions (see [`rotary_factors`][rotary_factors])."""

    query: Tensor
    key: Tensor

    def window(self, start: int, stop: int) -> Positions:
        """The factors of tokens ``[start, stop)``."""
        return Positions(self.query[:, start:stop], self.key[:, start:stop])


def rotary_factors(rows: Tensor, cols: Tensor, head_dim: int, base: float = ROTARY_BASE) -> Tensor:
    """Cosines and sines ``(2, T, head_dim / 2)`` float32 of the angles of tokens at ``(rows, cols)`` ``(T,)`` (any
    integers, negative ones included): one angle per feature pair of a head.

    The first ``head_dim / 4`` pairs turn by the row times the frequencies ``base ** (-k / (head_dim / 4))``, the last
    ``head_dim / 4`` by the column times the same frequencies.
    """
    if head_dim % 4:
        raise ValueError(f"head_dim must be a multiple of 4 (two axes, pairs of features), got {head_dim}")
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, dtype=torch.float32, device=rows.device) / quarter)  # (d/4,)
    angles = torch.cat([rows.float()[:, None] * freqs, cols.float()[:, None] * freqs], dim=-1)  # (T, d/2)
    return torch.stack([angles.cos(), angles.sin()])


def rotate(x: Tensor, factors: Tensor) -> Tensor:
    """Turn each feature pair ``(a, b) = (x[2k], x[2k + 1])`` of ``x`` ``(..., T, d)`` by its angle, ``factors``
    ``(2, T, d / 2)``: ``(a cos - b sin, a sin + b cos)``. Real arithmetic (``torch.compile`` generates no code for
    complex numbers), in float32, returned in ``x``'s dtype (bf16 under autocast)."""
    a, b = x.float().unflatten(-1, (-1, 2)).unbind(-1)  # (..., T, d/2) each
    cos, sin = factors
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).to(x.dtype)


def attend(query: Tensor, key: Tensor, value: Tensor, dropout: float = 0.0) -> Tensor:
    """Causal attention of ``query`` ``(B, h, T, d)``, the last ``T`` of the ``S`` positions of ``key`` and ``value``
    ``(B, h, S, d)``, with the mask of that case (see the module docstring) → ``(B, h, T, d)``."""
    t, s = query.shape[-2], key.shape[-2]
    if t == s:  # a whole sequence or a prefix: the lower-left triangle
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, is_causal=True)
    if t == 1 and not dropout:  # a decode step: every cached key precedes the query (no mask; is_causal=True would
        # keep only the first). Written out: the CPU's fused kernel takes ~1 ms for one query whatever S is.
        scores = torch.matmul(query, key.transpose(-1, -2)) * query.shape[-1] ** -0.5  # (B, h, 1, S)
        return torch.matmul(scores.softmax(-1), value)  # (B, h, 1, d)
    if t == 1:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
    mask = torch.ones(t, s, dtype=torch.bool, device=query.device).tril(diagonal=s - t)  # (T, S), lower right
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)


class KVCache:
    """The keys and values of one attention layer for one batch of sequences of ``length`` tokens.

    Two ``(B, heads, length, head_dim)`` buffers, allocated at the first [`write`][write] (with the batch, device and
    dtype of what is written: bf16 under autocast) and filled in place after that; never concatenated anew.
    """

    def __init__(self, length: int) -> None:
        self.length = length
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the two buffers (0 before the first write)."""
        return 0 if self.keys is None else self.keys.nbytes + self.values.nbytes

    def write(self, start: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``keys``, ``values`` ``(B, h, T, d)`` at positions ``[start, start + T)``; return the filled part
        ``[0, start + T)`` of both buffers (views, ``(B, h, start + T, d)``)."""
        stop = start + keys.shape[2]
        if stop > self.length:
            raise ValueError(
                f"the key/value cache holds {self.length} positions; writing positions [{start}, {stop}) would grow "
                f"past its buffer (start a new stepper for a larger grid)"
            )
        if self.keys is None:
            shape = (*keys.shape[:2], self.length, keys.shape[3])
            self.keys = torch.empty(shape, dtype=keys.dtype, device=keys.device)
            self.values = torch.empty(shape, dtype=values.dtype, device=values.device)
        elif keys.shape[:2] != self.keys.shape[:2]:
            raise ValueError(
                f"the key/value cache was allocated for a batch of {self.keys.shape[0]} (with {self.keys.shape[1]} "
                f"heads), got keys of shape {tuple(keys.shape)}"
            )
        self.keys[:, :, start:stop] = keys
        self.values[:, :, start:stop] = values
        return self.keys[:, :, :stop], self.values[:, :, :stop]


class SelfAttention(nn.Module):
    """Multi-head causal self-attention with rotary positions and an optional [`KVCache`][KVCache].

    Args:
        width: D, the model width.
        num_heads: h; ``D / h`` (the head dimension) must be a multiple of 4 for 2-D rotary positions.
        dropout: dropout of the attention weights, in training only.
    """

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = num_heads, width // num_heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, h: Tensor, positions: Positions, cache: KVCache | None = None, start: int = 0) -> Tensor:
        """``h`` ``(B, T, D)``: tokens ``[start, start + T)`` of the sequence; earlier ones are in ``cache`` →
        ``(B, T, D)``."""
        batch, tokens, width = h.shape
        qkv = self.qkv(h).view(batch, tokens, 3, self.num_heads, self.head_dim)  # (B, T, 3, h, d)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, h, T, d)
        query, key = rotate(qkv[0], positions.query), rotate(qkv[1], positions.key)  # (B, h, T, d) each
        value = qkv[2]
        if cache is not None:
            key, value = cache.write(start, key, value)  # (B, h, start + T, d)
        out = attend(query, key, value, self.dropout if self.training else 0.0)  # (B, h, T, d)
        return self.out(out.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    """A pre-norm transformer block (GPT-2): ``h + attention(norm(h))``, then ``h + mlp(norm(h))``.

    Args:
        width: D, the model width.
        num_heads: attention heads.
        dropout: on the attention weights and on both residual branches, in training only (element-wise or per
            attention weight, so the block stays causal).
        num_layers: the depth of the whole stack: the residual projections start at ``0.02 / sqrt(2 · num_layers)``
            (GPT-2), so the residual stream's variance does not grow with depth.
    """

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0, num_layers: int = 1) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, num_heads, dropout)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)
        for linear in (self.attention.qkv, self.attention.out, self.mlp[0], self.mlp[2]):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
        for residual in (self.attention.out, self.mlp[2]):
            nn.init.normal_(residual.weight, std=0.02 / math.sqrt(2 * num_layers))

    def forward(self, h: Tensor, positions: Positions, cache: KVCache | None = None, start: int = 0) -> Tensor:
        """``h`` ``(B, T, D)`` → ``(B, T, D)`` (see [`SelfAttention.forward`][SelfAttention.forward])."""
        h = h + self.dropout(self.attention(self.attention_norm(h), positions, cache, start))
        return h + self.dropout(self.mlp(self.mlp_norm(h)))
