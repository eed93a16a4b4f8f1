"""A decoder-only transformer prior over the raster sequence of a grid, with an exact key/value cache for sampling.

The prior the field uses over code grids since VQGAN (taming-transformers, arXiv:2012.09841), DALL-E's discrete VAE
(arXiv:2102.12092) and LlamaGen (arXiv:2406.06525): a causal transformer (GPT-2's pre-norm blocks,
[`vqgen.priors.attention`][vqgen.priors.attention]) over the values of a grid in raster order. Unlike a PixelCNN, whose
last position sees only the rows within its receptive field (``rows_in_view``), every position attends to every value
before it.

Sequence. Token ``t`` predicts value ``t`` of the raster order (row by row, left to right; the sub-pixels of a colour
pixel R → G → B inside the sequence) and reads value ``t - 1`` (a learned start vector at ``t = 0``), so the model is
causal by construction, as the RNN prior is. With ``channel_order="parallel"`` a token is a whole position: it reads
the C values of the previous position and predicts the C values of its own independently of each other.

Positions. 2-D rotary embeddings over ``(row, column)`` plus a learned embedding of the channel a token predicts. A
token's query turns by the position it predicts and its key by the position of the value it reads (``(-1, W - 1)``
for the start, the position "before the first"), so a score depends only on the offset from the predicted position
to the value read: ``(-1, 0)`` is always "the value above", whatever the grid. Rotary angles are computed from the
positions on the fly, so one model runs on any grid size, with no table to outgrow and no limit on the grid (its
quality away from the grid sizes it was trained on is another matter). Factorised learned row and column tables
would stop at the size they were built with; absolute tables would also tie what a model learns about "the value
above" to each position separately.

Sampling. [`TransformerStepper`][TransformerStepper] keeps every layer's keys and values in buffers allocated once per
grid, ``(B, heads, L, head_dim)`` with ``L`` the grid's tokens, filled in place: a step computes one token through
every layer and attends its query to the filled part of the cache (the mask of that case: see
[`attend`][vqgen.priors.attention.attend]); a known prefix goes through in one pass
([`prefill`][TransformerStepper.prefill]). Samples are those of the naive sampler, seed for seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from .. import checks
from ..interfaces import AutoregressivePrior
from ..registry import register
from ..threads import SamplingThreads
from .attention import Block, KVCache, Positions, rotary_factors
from .embedding import IndexInput
from .transformer_stepper import TransformerStepper

__all__ = ["PRESETS", "TransformerPrior", "TransformerStepper"]

PRESETS = {
    # The default, for 2 CPU cores: the best of a tuning sweep on MNIST codes at 4 and 8 CPU-minutes
    # (docs/benchmarks/method.md#transformer); train it with lr=2e-3 and no warm-up.
    "cpu": dict(hidden_size=128, num_layers=2, num_heads=4),
    # For a GPU: LlamaGen-B-like width on code grids up to 32x32 (86 M parameters with K = 1024), with
    # dropout against over-fitting the small datasets vqgen is tried on. Train it with precision="bf16".
    "gpu": dict(hidden_size=768, num_layers=12, num_heads=12, dropout=0.1),
}
"""Named sizes: ``vqgen.build("prior", "transformer", num_categories=K, **PRESETS["gpu"])``."""


@register("prior", "transformer")
class TransformerPrior(SamplingThreads, AutoregressivePrior):
    """A causal transformer over the raster-ordered values of ``(B, C, H, W)`` grids (see the module docstring).

    Input of token ``t``: the features of value ``t - 1`` (from the shared
    [`IndexInput`][vqgen.priors.embedding.IndexInput] submodule ``input``, projected to ``hidden_size``; a learned start
    vector for ``t = 0``), plus a learned embedding of the channel token ``t`` predicts, plus the condition (a class
    embedding or a projected vector) at every token. Then ``num_layers`` pre-norm blocks, a final layer norm and a
    linear head to K logits (C · K with parallel channels).

    Args:
        num_categories: K, categories per value (256 for pixels, the codebook size for codes).
        channels: C, values per position (1 for codes or grey pixels, 3 for colour).
        hidden_size: D, the model width.
        num_layers: transformer blocks.
        num_heads: attention heads; ``D / num_heads`` must be a multiple of 4 (2-D rotary positions).
        dropout: on the token embeddings, the attention weights and the residual branches, in training only.
        channel_order: ``"sequential"`` (one token per value) or ``"parallel"`` (one token per position, its C values
            independent given the past).
        input_mode: ``"auto"`` (scaled values for ``K = 256``, embeddings otherwise), ``"scale"`` or ``"embed"``.
        embed_dim: width of the learned value embeddings (``input_mode="embed"``).
        num_classes: condition on ``(B,)`` int64 class labels in ``[0, num_classes)``.
        cond_dim: condition on ``(B, cond_dim)`` float vectors.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, ``hidden_size / num_heads`` is not a whole multiple of 4, ``dropout``
            is outside ``[0, 1)``, or ``channel_order`` or ``input_mode`` is unknown.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "transformer", num_categories=16, num_classes=10, hidden_size=16, num_heads=2)
        >>> codes, labels = torch.randint(16, (2, 1, 5, 5)), torch.tensor([3, 7])
        >>> prior(codes, labels).shape, prior.sample(2, (5, 5), labels).shape    # cached: a key/value cache
        (torch.Size([2, 16, 1, 5, 5]), torch.Size([2, 1, 5, 5]))
        >>> vqgen.build("prior", "transformer", hidden_size=24, num_heads=4)      # head dimension 6
        Traceback (most recent call last):
        ValueError: hidden_size / num_heads must be a whole multiple of 4 (the head dimension, ...
    """

    def __init__(
        self,
        num_categories: int = 512,
        channels: int = 1,
        hidden_size: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        dropout: float = 0.0,
        channel_order: str = "sequential",
        input_mode: str = "auto",
        embed_dim: int = 64,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__(num_categories, channels, num_classes, cond_dim, channel_order)
        for name, value in (("hidden_size", hidden_size), ("num_layers", num_layers), ("num_heads", num_heads)):
            checks.check_positive(value, name=name, integer=True)
        if hidden_size % num_heads or (hidden_size // num_heads) % 4:
            raise ValueError(
                f"hidden_size / num_heads must be a whole multiple of 4 (the head dimension, rotated by row and by "
                f"column), got hidden_size={hidden_size}, num_heads={num_heads}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        self.input = IndexInput(num_categories, channels, mode=input_mode, embed_dim=embed_dim)  # checks K >= 2
        # Sequential: one token per value (C per position); parallel: one token per position, all C values in and out.
        self.tokens_per_position = channels if channel_order == "sequential" else 1
        self.values_per_token = channels // self.tokens_per_position
        features = self.input.embed_dim * self.values_per_token
        self.head_dim = hidden_size // num_heads
        self.start = nn.Parameter(torch.zeros(features))  # stands for the value(s) before the first
        self.input_projection = nn.Linear(features, hidden_size)
        self.channel_embedding = nn.Embedding(self.tokens_per_position, hidden_size)
        self.class_embedding = nn.Embedding(num_classes, hidden_size) if num_classes else None
        self.cond_projection = nn.Linear(cond_dim, hidden_size) if cond_dim else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, dropout, num_layers) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, num_categories * self.values_per_token)
        for embedding in (self.channel_embedding, self.class_embedding):
            if embedding is not None:
                nn.init.normal_(embedding.weight, std=0.02)

    TINY_CONFIG = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 8}
    """One block of width 16, two heads, embeddings of 8."""

    def init_embedding_from(self, codebook: Tensor) -> None:
        """Start the input embedding from a quantizer's codebook ``(K, D)`` (needs ``input_mode="embed"``).

        Args:
            codebook: ``(K, D)``, with ``D`` the prior's ``embed_dim``.

        Raises:
            ValueError: if the prior does not embed its inputs, or the codebook's shape is not ``(K, embed_dim)``.

        Examples:
            >>> import torch, vqgen
            >>> quantizer = vqgen.build("quantizer", "vq", num_codes=64, dim=8)
            >>> prior = vqgen.build("prior", "transformer", num_categories=64, embed_dim=8, hidden_size=16)
            >>> prior.init_embedding_from(quantizer.codebook)
            >>> torch.equal(prior.input.embedding.weight, quantizer.codebook)
            True
        """
        self.input.init_embedding_from(codebook)

    def sampling_shards(self, n: int, method: str) -> int:
        """Cached sampling runs on one intra-op thread ([`SamplingThreads`][vqgen.threads.SamplingThreads]), the batch
        in one slice.

        On the shared 2-core machine (load 3-7), sampling 64 grids of 7x7 or 16x16 codes on two intra-op threads was
        5-10x slower than on one, every time; splitting the batch into two slices of one thread each (the
        convolutional priors' policy) was faster in 2 of 6 comparisons and slower in 4
        (``benchmarks/speed/test_transformer_sampling.py::test_threads``, docs/benchmarks/method.md#transformer).

        Args:
            n: grids to sample.
            method: ``"cached"`` or ``"naive"``.

        Returns:
            1, whatever the batch, method or device.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, hidden_size=16, num_heads=2)
            >>> prior.sampling_shards(64, "cached")
            1
        """
        return 1

    def rows_in_view(self, height: int, width: int) -> int:
        """Every row: attention reaches every value before a position.

        Args:
            height: H, the grid's rows.
            width: W, the grid's columns.

        Returns:
            ``height``.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, hidden_size=16, num_heads=2)
            >>> prior.rows_in_view(32, 32)     # a PixelCNN of a few layers sees only a few rows up
            32
        """
        return height

    def positions(self, height: int, width: int) -> Positions:
        """Rotary factors of the ``L = H·W·C`` tokens of an ``(H, W)`` grid (``H·W`` with parallel channels).

        Queries sit at the position their token predicts, keys at the position of the value it reads: the previous
        one in raster order, ``(-1, W - 1)`` for the start token.

        Args:
            height: H, the grid's rows.
            width: W, the grid's columns.

        Returns:
            The query and key factors, ``(2, L, head_dim / 2)`` each, on the prior's device.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, hidden_size=16, num_heads=2)
            >>> prior.positions(3, 4).query.shape          # L = 12 tokens, head_dim = 8
            torch.Size([2, 12, 4])
        """
        device = self.start.device
        token = torch.arange(height * width * self.tokens_per_position, device=device)  # (L,)
        predicted = token // self.tokens_per_position  # raster index of the position each token predicts
        read = torch.div(token - 1, self.tokens_per_position, rounding_mode="floor")  # of the value it reads; -1 first
        query = rotary_factors(predicted // width, predicted % width, self.head_dim)
        key = rotary_factors(torch.div(read, width, rounding_mode="floor"), read % width, self.head_dim)
        return Positions(query, key)

    def condition(self, cond: Tensor | None) -> Tensor | None:
        """What the condition adds to every token: ``(B, 1, D)``, or ``None`` for an unconditional prior.

        Args:
            cond: ``(B,)`` int64 class labels, ``(B, cond_dim)`` float vectors, or ``None`` (not checked here).

        Returns:
            ``(B, 1, D)``: the class embedding or the projected vector, or ``None`` when ``cond`` is ``None``.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, num_classes=10, num_heads=2)
            >>> prior.condition(torch.tensor([3, 7])).shape
            torch.Size([2, 1, 128])
        """
        if cond is None:
            return None
        if cond.is_floating_point():
            return self.cond_projection(cond)[:, None]
        return self.class_embedding(cond)[:, None]

    def embed(self, previous: Tensor, channel: Tensor, bias: Tensor | None) -> Tensor:
        """Token inputs ``(B, T, D)`` from the features of the values they read, the channels they predict and the
        condition.

        Args:
            previous: ``(B, T, F)``, the features of the values the tokens read (the start vector for the first).
            channel: ``(T,)`` int64, the channel each token predicts (all 0 with parallel channels).
            bias: ``(B, 1, D)`` from [`condition`][condition], or ``None``.

        Returns:
            ``(B, T, D)``: projected features plus channel embedding plus condition, dropout applied in training.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, embed_dim=8, hidden_size=16, num_heads=2)
            >>> prior.embed(torch.zeros(2, 5, 8), torch.zeros(5, dtype=torch.long), None).shape
            torch.Size([2, 5, 16])
        """
        h = self.input_projection(previous) + self.channel_embedding(channel)
        return self.dropout(h if bias is None else h + bias)

    def run(self, h: Tensor, positions: Positions, caches: Sequence[KVCache] | None = None, start: int = 0) -> Tensor:
        """Tokens ``[start, start + T)`` ``(B, T, D)`` through every block and the head → ``(B, T, S · K)``.

        ``S`` is the number of values per token: 1, or C with parallel channels. With ``caches`` (one per block) the
        earlier tokens' keys and values come from them and the new ones go in.

        Args:
            h: ``(B, T, D)`` token inputs, from [`embed`][embed].
            positions: the rotary factors of these ``T`` tokens (a [`window`][vqgen.priors.attention.Positions.window]
                of [`positions`][positions]).
            caches: one [`KVCache`][vqgen.priors.attention.KVCache] per block, or ``None`` for a whole sequence.
            start: the index of the first token in the sequence (where its keys and values go in the caches).

        Returns:
            ``(B, T, S · K)`` logits.

        Raises:
            ValueError: if a cache is too short for tokens ``[start, start + T)`` or holds another batch (raised by
                [`KVCache.write`][vqgen.priors.attention.KVCache.write]).

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=32, hidden_size=16, num_heads=2)
            >>> prior.run(torch.zeros(2, 12, 16), prior.positions(3, 4)).shape      # 12 tokens of a 3x4 grid
            torch.Size([2, 12, 32])
        """
        for index, block in enumerate(self.blocks):
            h = block(h, positions, None if caches is None else caches[index], start)
        return self.head(self.norm(h))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)`` for ``x`` ``(B, C, H, W)`` int64: one causal pass over the ``L`` tokens.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: as in [`check_cond`][vqgen.interfaces.AutoregressivePrior.check_cond].

        Returns:
            ``(B, K, C, H, W)`` logits, each value's from every value before it in raster order.

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch, vqgen
            >>> colour = vqgen.build("prior", "transformer", channels=3, num_categories=256, hidden_size=16)
            >>> x = torch.randint(256, (2, 3, 4, 4))                       # R → G → B within each pixel
            >>> colour(x).shape
            torch.Size([2, 256, 3, 4, 4])
            >>> changed = x.clone()
            >>> changed[:, :, 3, 3] = 0                                    # the last pixel ...
            >>> torch.allclose(colour(x)[..., :3, :], colour(changed)[..., :3, :])   # ... not read by the rows above
            True
        """
        self.check_input(x, cond)
        batch, channels, height, width = x.shape
        tokens = self.tokens_per_position
        features = rearrange(self.input(x), "b (c e) h w -> b (h w c) e", c=tokens)  # (B, L, F)
        previous = torch.cat([self.start.expand(batch, 1, -1), features[:, :-1]], dim=1)  # (B, L, F): shifted by one
        channel = torch.arange(tokens, device=x.device).repeat(height * width)  # (L,)
        logits = self.run(self.embed(previous, channel, self.condition(cond)), self.positions(height, width))
        pattern = "b (h w c) (s k) -> b k (c s) h w"  # c: tokens per position, s: values per token
        return rearrange(logits, pattern, h=height, w=width, c=tokens, s=self.values_per_token)  # (B, K, C, H, W)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> TransformerStepper:
        """A stepper with a key/value cache: one token through every layer per step (see
        [`TransformerStepper`][TransformerStepper]).

        Args:
            cond: the condition of the grids to sample, or ``None``.
            shape: ``(H, W)`` of the grids: the caches hold their ``L`` tokens.

        Returns:
            A new [`TransformerStepper`][TransformerStepper].

        Raises:
            ValueError: if ``shape`` is not two positive ints, or ``cond`` does not fit the prior (raised by the
                stepper).

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=16, hidden_size=16, num_heads=2)
            >>> stepper = prior.incremental(None, (4, 4))
            >>> type(stepper).__name__, stepper.nbytes                  # buffers allocated at the first step
            ('TransformerStepper', 0)
        """
        return TransformerStepper(self, cond, shape)

    def kv_cache_bytes(self, batch: int, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
        """Bytes of the key/value buffers of a [`TransformerStepper`][TransformerStepper] for ``batch`` grids of
        ``shape`` ``(H, W)``: ``2 · layers · B · L · D`` numbers of ``dtype`` (``L``: the grid's tokens).

        Args:
            batch: B, grids sampled together.
            shape: ``(H, W)`` of the grids.
            dtype: of the buffers: float32, or bf16 under autocast.

        Returns:
            The bytes the caches hold once allocated.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "transformer", num_categories=512)      # the default: 2 x 128
            >>> prior.kv_cache_bytes(64, (16, 16)) // 2**20                          # MiB
            32
            >>> prior.kv_cache_bytes(64, (16, 16), torch.bfloat16) // 2**20
            16
        """
        length = int(shape[0]) * int(shape[1]) * self.tokens_per_position
        width = self.head_dim * self.blocks[0].attention.num_heads
        return 2 * len(self.blocks) * batch * length * width * torch.empty((), dtype=dtype).element_size()
