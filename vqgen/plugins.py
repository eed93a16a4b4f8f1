"""Plugin discovery: the first time a registry is consulted, the built-in implementations are imported and every
entry point of the ``vqgen.plugins`` group is loaded and registered (see [`vqgen.registry`][vqgen.registry]).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["load_once"]

logger = logging.getLogger("vqgen.registry")  # where plugin failures were always logged

_plugins_loaded = False


def load_once(registries: Mapping[str, Registry], group: str) -> None:
    """Import the built-in implementations and every entry point of ``group`` once, registering each
    ``kind.name = module:Class`` in ``registries[kind]``; a broken plugin is logged, never fatal."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from . import _builtin  # noqa: F401  (registers the built-in implementations)

    for entry_point in metadata.entry_points(group=group):
        try:
            obj = entry_point.load()
        except Exception as error:  # a third party's bug must not break vqgen
            logger.warning("vqgen plugin %r (%s) failed to load: %s", entry_point.name, entry_point.value, error)
            continue
        kind, _, name = entry_point.name.partition(".")
        if name and inspect.isclass(obj) and kind in registries:
            try:
                registries[kind].add(name, obj)
            except (TypeError, ValueError) as error:
                logger.warning("vqgen plugin %r could not be registered: %s", entry_point.name, error)
