"""Deprecated: this grab-bag was split by concern in vqgen 0.2; it will be removed in 0.3.

Import from the module that now holds each name (importing from here still works and warns):

- ``TrainConfig``, ``DEFAULT_EPOCHS``: [`vqgen.training.config`][vqgen.training.config];
- ``seed_everything``, ``resolve_device``: [`vqgen.training.runtime`][vqgen.training.runtime];
- ``InMemoryData``, ``TrainData``, ``as_images``, ``check_unit_range``, ``images_to_float``, ``batch_indices``:
  [`vqgen.training.inputs`][vqgen.training.inputs];
- ``make_adam``, ``make_schedule``: [`vqgen.training.optim`][vqgen.training.optim];
- ``METRICS_NAME``, ``RunningMeans``, ``MetricsHistory``, ``CheckpointKeeper``, ``progress``:
  [`vqgen.training.history`][vqgen.training.history].

``TrainConfig``, ``MetricsHistory``, ``RunningMeans``, ``CheckpointKeeper``, ``seed_everything`` and ``resolve_device``
are also in [`vqgen.training`][vqgen.training] itself.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    **dict.fromkeys(("TrainConfig", "DEFAULT_EPOCHS"), "config"),
    **dict.fromkeys(("seed_everything", "resolve_device"), "runtime"),
    **dict.fromkeys(
        ("InMemoryData", "TrainData", "as_images", "check_unit_range", "images_to_float", "batch_indices"), "inputs"
    ),
    **dict.fromkeys(("make_adam", "make_schedule"), "optim"),
    **dict.fromkeys(("METRICS_NAME", "RunningMeans", "MetricsHistory", "CheckpointKeeper", "progress"), "history"),
}

__all__: list[str] = []  # nothing is documented here any more


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"vqgen.training.{_MOVED[name]}"
    warnings.warn(
        f"vqgen.training.common is deprecated and will be removed in vqgen 0.3; import {name} from {module}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
