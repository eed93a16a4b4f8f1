"""Where batches come from: one ``DataLoader`` path for in-memory tensors, datasets and streams.

[`make_loader`][make_loader] turns what a fit was given into an [`EpochLoader`][EpochLoader], whose ``epoch(e, skip=k)``
iterates over the batches of epoch ``e`` after the first ``k`` (to resume part-way through an epoch):

- tensors (``(N, ...)``, plus optional per-example condition tensors) → a batched map-style dataset read by a
  ``DataLoader`` whose sampler is [`EpochBatchSampler`][EpochBatchSampler]: one ``torch.randperm`` per epoch, seeded by
  ``seed + epoch``, sharded over ranks like ``DistributedSampler``; skipping costs nothing;
- a map-style ``torch.utils.data.Dataset`` (e.g. a lazily decoded image folder) → the same sampler, items collated
  by the ``DataLoader`` (``num_workers`` processes decode in parallel);
- an ``IterableDataset`` or a ready ``DataLoader`` → iterated as given (the dataset shards itself over ranks; a
  sampler with ``set_epoch`` is told the epoch); skipping consumes batches.

Order depends on ``(seed, epoch)`` only, so it needs no generator state to resume.

Evaluation streams held-out data the same way, in order and in batches ([`eval_batches`][eval_batches]), never loading
it whole; [`item_shape`][item_shape] reads the shape of one example to check it before training starts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

__all__ = [
    "EpochBatchSampler", "EpochLoader", "TensorBatches", "eval_batches", "first_tensor", "is_stream", "item_shape",
    "loader_for", "make_loader",
]  # fmt: skip


class TensorBatches(Dataset):
    """Tensors held in memory, read a whole batch at a time: ``dataset[indices] -> tuple of (B, ...) tensors``."""

    def __init__(self, *tensors: Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: Sequence[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(index, dtype=torch.long)
        return tuple(t[index] for t in self.tensors)


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices for one epoch: shuffled by ``seed + epoch``, this rank's shard, after ``skip`` batches.

    With ``world_size`` ranks the order is padded (repeating its start) to a multiple of ``world_size`` and rank
    ``r`` takes every ``world_size``-th index from ``r``, as ``DistributedSampler`` does: batch ``j`` of all ranks
    together holds the same examples as batch ``j`` of one process with ``world_size`` times the batch size.
    """

    def __init__(
        self, n: int, batch_size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(math.ceil(self.n / self.world_size) / self.batch_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.skip)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            padded = math.ceil(self.n / self.world_size) * self.world_size
            order = torch.cat([order, order[: padded - self.n]])[self.rank :: self.world_size]
        for batch in order.split(self.batch_size)[self.skip :]:
            yield batch.tolist()


class EpochLoader:
    """A ``DataLoader`` and how to start an epoch part-way: ``for batch in loader.epoch(e, skip=k)``."""

    def __init__(self, loader: DataLoader, sampler: EpochBatchSampler | None, seed: int) -> None:
        self.loader, self.sampler, self.seed = loader, sampler, seed

    @property
    def batches_per_epoch(self) -> int | None:
        """Batches per epoch on this rank, when known."""
        if self.sampler is not None:
            return self.sampler.batches_per_epoch
        try:
            return len(self.loader)
        except TypeError:
            return None

    def epoch(self, epoch: int, *, skip: int = 0) -> Iterator[Any]:
        """The batches of ``epoch`` (1-based) after the first ``skip``."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, skip)
        elif hasattr(getattr(self.loader, "sampler", None), "set_epoch"):
            self.loader.sampler.set_epoch(epoch)
        if self.loader.generator is not None:  # worker seeds: a function of (seed, epoch), not of the global RNG
            self.loader.generator.manual_seed(self.seed + epoch)
        with torch.random.fork_rng(devices=[]):  # starting the iterator must not move the global generator
            iterator = iter(self.loader)
        if self.sampler is None and skip:
            iterator = itertools.islice(iterator, skip, None)
        return iterator


def make_loader(
    data: Any,
    *extra: Tensor | None,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> EpochLoader:
    """An [`EpochLoader`][EpochLoader] over ``data`` (see the module docstring), with optional per-example ``extra``
    tensors (labels, conditions; ``None`` ones are left out) when ``data`` is a tensor."""
    if isinstance(data, DataLoader):
        return EpochLoader(data, None, seed)
    if isinstance(data, Tensor):
        dataset: Dataset = TensorBatches(data, *[t for t in extra if t is not None])
        collate = _first
    elif isinstance(data, IterableDataset):
        loader = DataLoader(data, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory)
        return EpochLoader(loader, None, seed)
    elif isinstance(data, Dataset):
        dataset, collate = data, None
    else:
        raise TypeError(
            f"data must be a tensor, a torch Dataset, an IterableDataset or a DataLoader, got {type(data).__name__}"
        )
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    if collate is _first:  # the dataset reads whole batches: the sampler's batches are its indices
        loader = DataLoader(dataset, sampler=sampler, batch_size=None, collate_fn=collate, num_workers=num_workers,
                            pin_memory=pin_memory, generator=torch.Generator())  # fmt: skip
    else:
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                            generator=torch.Generator())  # fmt: skip
    return EpochLoader(loader, sampler, seed)


def _first(batch: Any) -> Any:
    return batch


def loader_for(data: Any, *extra: Tensor | None, config: Any, shuffle: bool = True) -> Any:
    """A function of the process's [`DistContext`][vqgen.training.distributed.DistContext] that builds its loader with
    ``config.batch_size``, ``config.seed`` and ``config.num_workers`` (what [`train`][vqgen.training.engine.train]
    takes)."""

    def build(ctx: Any) -> EpochLoader:
        return make_loader(
            data, *extra, batch_size=config.batch_size, shuffle=shuffle, seed=config.seed, rank=ctx.rank,
            world_size=ctx.world_size, num_workers=config.num_workers, pin_memory=ctx.device.type == "cuda",
        )  # fmt: skip

    return build


def first_tensor(batch: Any) -> Tensor:
    """The inputs of a batch: the batch itself, or the first element of an ``(inputs, labels, ...)`` tuple."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def is_stream(data: Any) -> bool:
    """True for data the engine streams as given (a Dataset without in-memory ``.images``, or a DataLoader)."""
    if isinstance(getattr(data, "images", None), Tensor):
        return False
    return isinstance(data, (Dataset, IterableDataset, DataLoader))


def eval_batches(data: Any, batch_size: int, *, num_workers: int = 0) -> Iterator[Any]:
    """The batches of streamed ``data`` in order, for evaluation: a ``DataLoader`` as given, else one over the dataset
    (``batch_size`` items a batch, no shuffling).

    Iterating does not move the global generator (the ``DataLoader`` draws its workers' base seed from it, a dataset
    may draw random flips), so an evaluation between epochs leaves training as it would be without one.
    """
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, num_workers=num_workers)
    with torch.random.fork_rng(devices=[]):
        yield from loader


def item_shape(data: Any) -> tuple[int, ...] | None:
    """The shape of one example of streamed ``data``: its ``image_shape`` when it has one, else its first item's;
    ``None`` for a ``DataLoader`` or an ``IterableDataset``, which cannot be looked into without consuming them."""
    shape = getattr(data, "image_shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    if isinstance(data, (DataLoader, IterableDataset)) or not isinstance(data, Dataset):
        return None
    try:
        if len(data) == 0:  # type: ignore[arg-type]
            return None
    except TypeError:  # a Dataset without __len__
        return None
    with torch.random.fork_rng(devices=[]):  # an item may draw a random flip
        return tuple(first_tensor(data[0]).shape)
