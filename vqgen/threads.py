"""CPU threads for cached sampling: one intra-op thread per step, the batch split over threads instead.

A cached sampling step (arXiv:1704.06001) is a chain of small operations: a ``(B, ~200) @ (~200, 2h)`` product, a gate,
a softmax over ``(B, K)``. Split over PyTorch's intra-op threads, each operation waits for all of them: a
synchronisation per operation that costs more than it saves at these sizes, and far more on a busy machine, where a
waiting thread may not be scheduled for milliseconds (on 2 cores at load 4, whole-grid sampling ran 8-20x slower on two
threads; docs/benchmarks/method.md). So:

- [`one_thread`][one_thread] runs a block on one intra-op thread (restoring the count after);
- a prior that mixes in [`SamplingThreads`][SamplingThreads] tells the sampling loop of
  [`vqgen.sampling`][vqgen.sampling] to run every step and draw of a batch up to [`ONE_THREAD_BATCH`][ONE_THREAD_BATCH]
  on one thread, and to use the other threads by splitting the batch into slices of at least
  [`MIN_SHARD`][MIN_SHARD] grids, each filled by its own one-thread loop in its own Python thread.

This is a policy of the CPU, not of the model: the abstract [`AutoregressivePrior`][vqgen.AutoregressivePrior] knows
nothing of it, and a prior without the mixin samples on PyTorch's threads as configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["MIN_SHARD", "ONE_THREAD_BATCH", "SamplingThreads", "one_thread"]

ONE_THREAD_BATCH = 256
"""Up to this batch size a step's operations (matrices of ``batch`` rows, a few hundred columns) run on one thread."""

MIN_SHARD = 32
"""The fewest grids a thread of cached sampling gets (see [`SamplingThreads.sampling_shards`][SamplingThreads]).

Measured on 2 idle cores (docs/benchmarks/method.md#flops): with 15-layer gated priors, slices of 32–128 grids sampled
1.1–1.8x faster than one loop, slices of 8 were 20 % slower (a step's operations too small for its Python overhead
to hide); with the 6-layer prior, slices of 32 were 12 % slower and of 128 1.45x faster."""


@contextlib.contextmanager
def one_thread(batch: int) -> Iterator[None]:
    """Run the block on one intra-op thread when ``batch <= ONE_THREAD_BATCH`` (the thread count is restored after).

    The per-row work of a cached step (products of ``W * B`` rows) runs on one thread too: on an idle machine two
    threads make it up to 1.3x faster, on a busy one (load 4 on 2 cores) they made whole-grid sampling 8-20x slower.
    """
    threads = torch.get_num_threads()
    if threads == 1 or batch > ONE_THREAD_BATCH:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class SamplingThreads:
    """Mixin for priors whose cached steps are chains of small operations (the convolutional priors).

    The sampling loop asks a prior with this mixin for the context of the whole loop
    ([`sampling_context`][sampling_context]) and for the number of slices to split the batch into
    ([`sampling_shards`][sampling_shards]); needs the ``device`` property of [`vqgen.Component`][vqgen.Component].
    """

    def sampling_context(self, n: int, method: str) -> contextlib.AbstractContextManager:
        """Cached sampling of ``n <= ONE_THREAD_BATCH`` grids, or of a batch split into slices, runs on one thread per
        slice, draws included (the drawing between steps — softmax, cumulative sum, search over ``(n, K)`` — pays the
        same synchronisation per operation as the steps would). Naive sampling keeps every thread."""
        if method != "cached":
            return contextlib.nullcontext()
        sharded = self.sampling_shards(n, method) > 1
        return one_thread(1 if sharded else n)  # sharded: every slice on one thread, whatever its size

    def sampling_shards(self, n: int, method: str) -> int:
        """Into how many slices the loop splits a batch of ``n`` grids, each filled in its own thread: on the CPU, one
        per intra-op thread with at least ``MIN_SHARD`` grids each; 1 for naive sampling and on accelerators.

        Slices share nothing but the prior's weights: each has its own stepper, and the random draws are taken up front
        in the one-slice order, so the samples do not depend on the count.
        """
        if method != "cached" or self.device.type != "cpu":  # type: ignore[attr-defined]
            return 1
        return max(1, min(torch.get_num_threads(), n // MIN_SHARD))
