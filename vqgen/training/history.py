"""What a run records: the epoch means of its step terms (``RunningMeans``), the per-epoch history
([`MetricsHistory`][MetricsHistory], saved as ``metrics.json``), the kept model (``CheckpointKeeper``: best or last)
and the progress bar.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn
from tqdm.auto import tqdm

from ..atomic import write_atomic
from ..persistence import save_pretrained

logger = logging.getLogger(__name__)

__all__ = ["METRICS_NAME", "CheckpointKeeper", "MetricsHistory", "RunningMeans", "progress"]

METRICS_NAME = "metrics.json"


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool = True) -> tqdm:
    """A tqdm progress bar over ``iterable``; ``enabled=False`` makes it silent (it still iterates)."""
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


class RunningMeans:
    """Weighted running means of named scalars (e.g. per-batch losses weighted by batch size)."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._weight = 0.0

    def add(self, values: Mapping[str, float | Tensor], *, weight: float = 1.0) -> None:
        """Accumulate ``values`` (floats or 0-d tensors) with ``weight``."""
        for key, value in values.items():
            value = float(value.detach()) if isinstance(value, Tensor) else float(value)
            self._sums[key] = self._sums.get(key, 0.0) + value * weight
        self._weight += weight

    def means(self) -> dict[str, float]:
        """The weighted means so far (empty if nothing was added)."""
        if not self._weight:
            return {}
        return {key: total / self._weight for key, total in self._sums.items()}

    def state_dict(self) -> dict[str, Any]:
        """The sums and the total weight (JSON-able), to resume an epoch part-way."""
        return {"sums": dict(self._sums), "weight": self._weight}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums = {str(key): float(value) for key, value in state["sums"].items()}
        self._weight = float(state["weight"])


class MetricsHistory(list):
    """A list of per-epoch records (plain dicts), e.g. ``{"epoch": 1, "step": 200, "train": {...}, "eval": {...}}``.

    It is a ``list``, so ``history[-1]["eval"]["reconstruction_mse"]`` reads the last held-out figure.

    Examples:
        >>> from vqgen.training import MetricsHistory
        >>> history = MetricsHistory([{"epoch": 1, "eval": {"mse": 0.3}}, {"epoch": 2, "eval": {"mse": 0.2}}])
        >>> history[-1]["eval"]["mse"], history.best("eval", "mse")["epoch"]
        (0.2, 2)
    """

    def best(self, split: str, key: str, *, mode: Literal["min", "max"] = "min") -> dict[str, Any] | None:
        """The record with the lowest (``mode="min"``) or highest ``record[split][key]``; ``None`` if none has it.

        Args:
            split: ``"train"`` or ``"eval"``.
            key: the figure, e.g. ``"bits_per_dim"``.
            mode: ``"min"`` or ``"max"``.

        Returns:
            The best record (the first of equal ones), or ``None``.

        Examples:
            >>> from vqgen.training import MetricsHistory
            >>> history = MetricsHistory([{"epoch": 1, "eval": {"accuracy": 0.9}},
            ...                            {"epoch": 2, "eval": {"accuracy": 0.8}}])
            >>> history.best("eval", "accuracy", mode="max")["epoch"], history.best("train", "loss")
            (1, None)
        """
        scored = [record for record in self if key in record.get(split, {})]
        if not scored:
            return None
        sign = 1 if mode == "min" else -1
        return min(scored, key=lambda record: sign * record[split][key])

    def save(self, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``{"history": [...], **extra}`` as JSON (``extra``: the run's settings, the best epoch, ...);
        atomically, with [`write_atomic`][vqgen.atomic.write_atomic].

        Args:
            path: the JSON file to write (its folder is created).
            extra: other keys of the file.

        Returns:
            ``path``, as a ``Path``.

        Examples:
            >>> import json
            >>> from vqgen.training import MetricsHistory
            >>> history = MetricsHistory([{"epoch": 1, "train": {"loss": 0.5}}])
            >>> path = history.save("runs/a/metrics.json", extra={"seed": 0})
            >>> json.loads(path.read_text())
            {'history': [{'epoch': 1, 'train': {'loss': 0.5}}], 'seed': 0}
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({**(extra or {}), "history": list(self)}, indent=2, sort_keys=True) + "\n")
        return path


class CheckpointKeeper:
    """Saves a model with ``save_pretrained`` plus ``metrics.json`` after each epoch, keeping the best or the last.

    Args:
        directory: the checkpoint directory; ``None`` makes [`update`][update] a no-op.
        keep: ``"best"`` saves only when ``record[monitor[0]][monitor[1]]`` improves; ``"last"`` saves every time.
        monitor: ``(split, key)`` of the metric to minimise, e.g. ``("eval", "reconstruction_mse")``.
        settings: written into ``metrics.json`` beside the history (e.g. ``TrainConfig.to_dict()``).
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        keep: Literal["best", "last"] = "best",
        monitor: tuple[str, str] = ("eval", "loss"),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.keep, self.monitor, self.settings = keep, monitor, dict(settings or {})
        self.best_value = math.inf
        self.best_epoch: int | None = None

    def update(self, model: nn.Module, history: MetricsHistory) -> bool:
        """Consider the last record of ``history``; returns True if the model was saved."""
        record = history[-1]
        split, key = self.monitor
        value = record.get(split, {}).get(key, math.nan)
        improved = value < self.best_value  # False for NaN
        if improved:
            self.best_value, self.best_epoch = value, record.get("epoch")
        if self.directory is None:
            return False
        save = self.keep == "last" or improved or self.best_epoch is None
        if save:
            save_pretrained(model, self.directory)
            logger.info("saved %s to %s (%s/%s = %.6g)", type(model).__name__, self.directory, split, key, value)
        extra = {"settings": self.settings, "keep": self.keep, "monitor": f"{split}/{key}"}
        extra["saved_epoch"] = record.get("epoch") if self.keep == "last" else self.best_epoch
        history.save(self.directory / METRICS_NAME, extra=extra)
        return save
