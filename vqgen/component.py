"""The base of every vqgen module: an ``nn.Module`` with a captured config, a device, and save/load by directory."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from . import persistence
from .config import Configurable, is_spec

__all__ = ["Component"]


class Component(Configurable, nn.Module):
    """Base of every vqgen module: an ``nn.Module`` with a captured config and save/load by directory."""

    @classmethod
    def tiny_config(cls) -> dict:
        """A small configuration that builds in milliseconds, for contract tests and examples.

        The shared tests parametrised over the registry build every implementation with it, so a plugin that
        overrides it is tested for free. The default, ``{}``, means the constructor defaults are already small.
        """
        return {}

    @property
    def config(self) -> Mapping[str, Any]:
        """The constructor arguments as plain JSON types, read-only; component arguments as their *current* specs.

        An argument that was a component (an encoder handed to a composite, say) is described by the spec of the
        submodule that now fills its place ([`config_child`][config_child]), not by a copy taken at construction:
        replacing a part (``model.prior = other``) can never leave a checkpoint whose ``config.json`` disagrees with its
        weights.
        """
        captured = dict(super().config)
        for key, value in captured.items():
            child = self.config_child(key) if is_spec(value) else None
            if child is not None:
                captured[key] = child.to_spec()
        return MappingProxyType(captured)

    def config_child(self, argument: str) -> Configurable | None:
        """The component that constructor ``argument`` became: by default the submodule of the same name."""
        child = self._modules.get(argument)
        return child if isinstance(child, Configurable) else None

    @property
    def device(self) -> torch.device:
        """Where the component's parameters (or, without any, its buffers) live; the CPU if it has neither."""
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def save_pretrained(self, directory: str, *, overwrite: bool = True) -> None:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (see
        [`vqgen.persistence`][vqgen.persistence])."""
        persistence.save_pretrained(self, directory, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory: str, *, device: str | torch.device | None = None) -> Component:
        """Rebuild a component saved with [`save_pretrained`][save_pretrained]; checks that it is an instance of
        ``cls``."""
        module = persistence.from_pretrained(directory, device=device)
        if not isinstance(module, cls):
            raise TypeError(
                f"{directory!r} holds a {type(module).__name__}, not a {cls.__name__}; "
                f"load it with vqgen.from_pretrained({directory!r}) instead"
            )
        return module
