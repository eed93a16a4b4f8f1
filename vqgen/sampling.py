"""Autoregressive sampling: one loop for every prior, naive or cached.

Sampling visits the values of a ``(C, H, W)`` grid in raster order (row by row, left to right, channel by channel)
and draws each from the prior's logits given everything drawn before. Where those logits come from is a
[`Stepper`][Stepper]:

- [`NaiveStepper`][NaiveStepper] runs the whole network for every value — ``H·W·C`` forward passes. It is the reference.
- A prior's own stepper (``prior.incremental(cond, shape)``) computes only what the next value needs and caches the
  rest, as in Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models" (arXiv:1704.06001).

Both feed the same loop and the same random draws, so with one ``torch.Generator`` seed the two methods return
identical samples whenever their logits agree. The logits of a value are what the prior's
[`likelihood`][vqgen.likelihoods.Likelihood] gives for it (a softmax head's logits, or a mixture's 256 bin
probabilities), so every output head samples through this one loop.

Completion: the positions that every example keeps from a ``prefix``, from the first in raster order on, are known
before the loop starts; a stepper with a ``prefill`` takes them in one pass (a transformer's keys and values, an RNN's
state), and the loop draws from the first position after them. Their random draws are still taken, so a seed gives
the same samples with and without ``prefill``.

How to draw (temperature, top-k, top-p, method, generator, progress) is one frozen [`SamplingOptions`][SamplingOptions],
defined and validated here once; every entry point
([`vqgen.AutoregressivePrior.sample`][vqgen.interfaces.AutoregressivePrior.sample],
[`vqgen.TwoStageModel`][vqgen.TwoStageModel]'s ``sample``, ``sample_codes`` and ``complete``, the ``vqgen sample`` and
``vqgen complete`` commands) takes either an ``options=SamplingOptions(...)`` or the same fields as keywords. Sampling
runs under ``torch.inference_mode``.

This module sits beside [`vqgen.interfaces`][vqgen.interfaces], whose
[`sample`][vqgen.interfaces.AutoregressivePrior.sample] it implements; it imports no prior, so the interface needs no
lazy import. How many CPU threads the loop uses is the prior's choice through the
[`SamplingThreads`][vqgen.threads.SamplingThreads] mixin (the convolutional priors have it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm.auto import tqdm

from . import checks
from .prefix import check_shape, known_positions, prepare_prefix
from .sampling_options import METHODS, SamplingMethod, SamplingOptions, SamplingSettings
from .steppers import NaiveStepper, Stepper
from .threads import SamplingThreads

if TYPE_CHECKING:
    from .interfaces import AutoregressivePrior

__all__ = [
    "METHODS",
    "NaiveStepper",
    "SamplingMethod",
    "SamplingOptions",
    "SamplingSettings",
    "Stepper",
    "draw",
    "filter_logits",
    "sample",
]


def filter_logits(
    logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """Scale ``logits`` ``(n, K)`` by ``1 / temperature`` and mask all but the top-k / nucleus (top-p) categories.

    Masked categories get ``-inf``. Nucleus sampling keeps the smallest set of most likely categories whose
    probability mass reaches ``top_p`` (Holtzman et al., arXiv:1904.09751); the most likely category always stays.

    Args:
        logits: ``(n, K)`` logits of one value per row.
        temperature: divides the logits (1: unchanged).
        top_k: keep the ``top_k`` most likely categories of each row; ``None`` keeps all.
        top_p: keep the nucleus of mass ``top_p``; ``None`` (or 1) keeps all.

    Returns:
        ``(n, K)`` float32 logits, ``-inf`` where masked.

    Examples:
        >>> import torch
        >>> from vqgen.sampling import filter_logits
        >>> logits = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
        >>> filter_logits(logits, temperature=2.0, top_k=2)
        tensor([[2.0000, 1.5000,   -inf,   -inf]])
        >>> filter_logits(logits, top_p=0.9)                 # the first three hold 0.64 + 0.24 + 0.09 of the mass
        tensor([[4., 3., 2., -inf]])
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (n, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        mass_before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        drop_sorted = mass_before >= top_p  # never drops the first (most likely) category
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def draw(logits: Tensor, generator: torch.Generator | None = None, uniform: Tensor | None = None) -> Tensor:
    """One category per row of ``logits`` ``(n, K)`` → ``(n,)`` int64, by inverting the CDF at a uniform draw.

    Exactly one uniform number is drawn per row (or taken from ``uniform`` ``(n, 1)``), so two samplers that consume
    the generator in the same order and see the same probabilities draw the same categories.

    Args:
        logits: ``(n, K)`` logits; ``-inf`` categories are never drawn.
        generator: the ``torch.Generator`` to draw the uniform numbers from; ``None`` uses torch's global one.
        uniform: ``(n, 1)`` uniform numbers in ``[0, 1)`` to use instead of drawing them.

    Returns:
        ``(n,)`` int64 categories in ``[0, K)``.

    Examples:
        >>> import torch
        >>> from vqgen.sampling import draw
        >>> logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]))
        >>> draw(logits, uniform=torch.tensor([[0.4], [0.6]]))          # the CDF is 0.5, 0.75, 1
        tensor([0, 1])
        >>> draw(logits, torch.Generator().manual_seed(0)).shape
        torch.Size([2])
    """
    cdf = logits.softmax(-1).cumsum(-1)  # (n, K)
    u = uniform
    if u is None:
        u = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device, dtype=cdf.dtype)
    u = u * cdf[:, -1:]  # guards against a last CDF value a rounding error below 1
    return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def sample(
    prior: AutoregressivePrior,
    n: int,
    shape: Sequence[int],
    cond: Tensor | None = None,
    *,
    prefix: Tensor | None = None,
    prefix_mask: Tensor | None = None,
    options: SamplingOptions | None = None,
) -> Tensor:
    """Draw ``n`` grids from ``prior``; see
    [`vqgen.AutoregressivePrior.sample`][vqgen.interfaces.AutoregressivePrior.sample] for the arguments.

    The loop runs under ``torch.inference_mode``; the result is an ordinary tensor (usable in autograd later).

    Args:
        prior: the [`AutoregressivePrior`][vqgen.AutoregressivePrior] to draw from (put in eval mode for the loop,
            then back).
        n: the number of grids.
        shape: ``(H, W)`` of the grids.
        cond: ``(n,)`` class labels or ``(n, cond_dim)`` vectors for a conditional prior.
        prefix: ``(n, C, H, W)`` values to keep (or ``(n, C, h0, W)``: the first ``h0`` rows).
        prefix_mask: ``(n, C, H, W)`` or ``(n, 1, H, W)`` bool, True where ``prefix`` is kept.
        options: how to draw; ``None`` for the defaults.

    Returns:
        ``(n, C, H, W)`` int64 values in ``[0, K)``.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``n`` or ``shape`` is not positive, ``cond`` or the prefix does not fit, or ``generator`` is on
            another device than the prior.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.sampling import SamplingOptions, sample
        >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1)
        >>> naive = SamplingOptions(method="naive", generator=torch.Generator().manual_seed(0))
        >>> cached = SamplingOptions(method="cached", generator=torch.Generator().manual_seed(0))
        >>> samples = sample(prior, 2, (4, 4), options=naive)
        >>> samples.shape, torch.equal(samples, sample(prior, 2, (4, 4), options=cached))  # same draws, fast or slow
        (torch.Size([2, 1, 4, 4]), True)
    """
    options = SamplingOptions.of(options)
    checks.check_positive(n, name="n", integer=True)
    height, width = check_shape(shape)
    prior.check_cond(cond, batch=n)
    prefix, prefix_mask = prepare_prefix(prior, n, height, width, prefix, prefix_mask)

    device, generator = prior.device, options.generator
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device}, but the prior is on {device}; create it there")
    if cond is not None:
        cond = cond.to(device)
    x = torch.zeros(n, prior.channels, height, width, dtype=torch.long, device=device)
    if prefix is not None:
        prefix, prefix_mask = prefix.to(device), prefix_mask.to(device)
        x = torch.where(prefix_mask, prefix, x)

    with torch.inference_mode():
        x = _sample_loop(prior, x, cond, prefix_mask, options)
    return x.clone()  # outside inference mode: an ordinary tensor


def _sample_loop(
    prior: AutoregressivePrior, x: Tensor, cond: Tensor | None, prefix_mask: Tensor | None, options: SamplingOptions
) -> Tensor:
    """Fill ``x`` ``(n, C, H, W)`` in raster order (keeping it where ``prefix_mask``), in eval mode; returns it.

    A prior with the [`SamplingThreads`][vqgen.threads.SamplingThreads] mixin chooses the context of the loop (one
    thread) and may split the batch into slices, each filled by its own stepper in its own thread. The uniform numbers
    of every draw are then taken from the generator up front, in the order the one-thread loop would draw them, so the
    samples are the same either way.
    """
    n, method = x.shape[0], options.method
    threads = prior if isinstance(prior, SamplingThreads) else None
    was_training = prior.training
    prior.eval()
    try:
        shards = max(1, min(int(threads.sampling_shards(n, method)), n)) if threads else 1
        with threads.sampling_context(n, method) if threads else contextlib.nullcontext():  # e.g. one thread
            if shards == 1:
                _fill(prior, x, cond, prefix_mask, options)
            else:
                _fill_sharded(prior, x, cond, prefix_mask, options, shards)
    finally:
        prior.train(was_training)
    return x


def _fill(
    prior: AutoregressivePrior,
    x: Tensor,
    cond: Tensor | None,
    prefix_mask: Tensor | None,
    options: SamplingOptions,
    noise: Tensor | None = None,
    stop: threading.Event | None = None,
) -> None:
    """The raster loop over ``x`` ``(n, C, H, W)``, in place; ``noise`` ``(H·W·C, n, 1)``: the uniform draws.

    The known leading positions of ``prefix_mask`` ([`known_positions`][known_positions]) go to the stepper's
    ``prefill`` (or through its ``logits``, one value at a time, when it has none); their draws are taken and dropped,
    so that the generator is where the one-value-at-a-time loop would leave it.
    """
    n, channels, height, width = x.shape
    method = options.method
    stepper = prior.incremental(cond, (height, width)) if method == "cached" else NaiveStepper(prior, cond)
    known = known_positions(prefix_mask)
    if known:
        prefill = getattr(stepper, "prefill", None)
        if prefill is not None:
            prefill(x, known)
        else:
            for position in range(known):
                for c in range(channels):
                    stepper.logits(x, *divmod(position, width), c)
        if noise is None:
            for _ in range(known * channels):
                torch.rand(n, 1, generator=options.generator, device=x.device)
    step = known * channels
    first_row = known // width
    for i in tqdm(range(first_row, height), desc=f"sampling ({method})", disable=not options.progress, leave=False):
        if stop is not None and stop.is_set():
            return
        for j in range(known - i * width if i == first_row else 0, width):
            for c in range(channels):
                logits = stepper.logits(x, i, j, c)
                logits = filter_logits(
                    logits, temperature=options.temperature, top_k=options.top_k, top_p=options.top_p
                )
                values = draw(logits, options.generator, None if noise is None else noise[step])
                if prefix_mask is not None:
                    values = torch.where(prefix_mask[:, c, i, j], x[:, c, i, j], values)
                x[:, c, i, j] = values
                step += 1


def _fill_sharded(
    prior: AutoregressivePrior,
    x: Tensor,
    cond: Tensor | None,
    prefix_mask: Tensor | None,
    options: SamplingOptions,
    shards: int,
) -> None:
    """[`_fill`][_fill] on ``shards`` slices of the batch at once: the first in this thread (with the progress bar),
    each other one in a thread of its own (the operations release the GIL)."""
    n, channels, height, width = x.shape
    noise = torch.rand(height * width * channels, n, 1, generator=options.generator, device=x.device)
    bounds = [round(k * n / shards) for k in range(shards + 1)]
    stop, errors = threading.Event(), []
    inference = torch.is_inference_mode_enabled()

    def fill(k: int) -> None:
        part = slice(bounds[k], bounds[k + 1])
        try:
            with torch.inference_mode(inference):  # thread-local: entered in every thread
                _fill(
                    prior, x[part], None if cond is None else cond[part],
                    None if prefix_mask is None else prefix_mask[part],
                    dataclasses.replace(options, progress=options.progress and k == 0), noise[:, part], stop,
                )  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
            stop.set()  # the other slices stop at their next row
            errors.append(error)

    threads = [threading.Thread(target=fill, args=(k,), name=f"vqgen-sampling-{k}") for k in range(1, shards)]
    for thread in threads:
        thread.start()
    fill(0)
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # Ctrl-C while waiting: the other slices stop at their next row
        stop.set()
        raise
    if errors:
        raise errors[0]
