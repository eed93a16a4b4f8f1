"""The base of every vqgen module: an ``nn.Module`` with a captured config, a device, and save/load by directory."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from . import persistence
from .config import Configurable, is_spec

__all__ = ["Component"]


class Component(Configurable, nn.Module):
    """Base of every vqgen module: an ``nn.Module`` with a captured config and save/load by directory.

    Subclasses are [`Configurable`][vqgen.config.Configurable]: the arguments of their ``__init__`` are captured as
    [`config`][config], so [`save_pretrained`][save_pretrained] writes them beside the weights and
    [`from_pretrained`][from_pretrained] rebuilds the same module.

    Examples:
        >>> import vqgen
        >>> quantizer = vqgen.build("quantizer", "vq", num_codes=8, dim=4)
        >>> isinstance(quantizer, vqgen.Component), dict(quantizer.config)["num_codes"]
        (True, 8)
        >>> quantizer.save_pretrained("runs/quantizer")
        >>> type(vqgen.Component.from_pretrained("runs/quantizer")).__name__
        'VectorQuantizer'
    """

    TINY_CONFIG: ClassVar[Mapping[str, Any]] = {}
    """What [`tiny_config`][tiny_config] returns (a copy): a class sets it to its small keyword arguments."""

    @classmethod
    def tiny_config(cls) -> dict:
        """A small configuration that builds in milliseconds, for contract tests and examples.

        The shared tests parametrised over the registry build every implementation with it, so a plugin that sets
        [`TINY_CONFIG`][TINY_CONFIG] (or overrides this method) is tested for free. The default, ``{}``, means the
        constructor defaults are already small.

        Returns:
            Keyword arguments for ``cls(**config)`` (a new dict each call).

        Examples:
            >>> from vqgen.quantizers import VectorQuantizer
            >>> VectorQuantizer.tiny_config()
            {'num_codes': 16, 'dim': 8}
            >>> VectorQuantizer(**VectorQuantizer.tiny_config()).num_codes
            16
        """
        return copy.deepcopy(dict(cls.TINY_CONFIG))

    @property
    def config(self) -> Mapping[str, Any]:
        """The constructor arguments as plain JSON types, read-only; component arguments as their *current* specs.

        An argument that was a component (an encoder handed to a composite, say) is described by the spec of the
        submodule that now fills its place ([`config_child`][config_child]), not by a copy taken at construction:
        replacing a part (``model.prior = other``) can never leave a checkpoint whose ``config.json`` disagrees with its
        weights.

        Examples:
            >>> import vqgen
            >>> config = vqgen.build("quantizer", "ema", num_codes=8, dim=4).config
            >>> config["num_codes"], config["decay"]
            (8, 0.99)
        """
        captured = dict(super().config)
        for key, value in captured.items():
            child = self.config_child(key) if is_spec(value) else None
            if child is not None:
                captured[key] = child.to_spec()
        return MappingProxyType(captured)

    def config_child(self, argument: str) -> Configurable | None:
        """The component that constructor ``argument`` became: by default the submodule of the same name.

        [`config`][config] describes a component argument by this child's current spec; override it when an argument
        is stored under another name.

        Args:
            argument: the name of a constructor argument.

        Returns:
            The submodule, or ``None`` when no [`Configurable`][vqgen.config.Configurable] submodule has that name.

        Examples:
            >>> import vqgen
            >>> from vqgen.autoencoders import VQVAE
            >>> vqvae = VQVAE.from_names({"encoder": "conv", "quantizer": "vq"})
            >>> type(vqvae.config_child("quantizer")).__name__, vqvae.config_child("beta")
            ('VectorQuantizer', None)
        """
        child = self._modules.get(argument)
        return child if isinstance(child, Configurable) else None

    @property
    def device(self) -> torch.device:
        """Where the component's parameters (or, without any, its buffers) live; the CPU if it has neither.

        Examples:
            >>> import vqgen
            >>> vqgen.build("quantizer", "vq", num_codes=8, dim=4).device
            device(type='cpu')
        """
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def save_pretrained(self, directory: str, *, overwrite: bool = True) -> None:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (see
        [`vqgen.persistence`][vqgen.persistence]).

        Args:
            directory: the folder to write (created if needed).
            overwrite: replace an earlier save in ``directory``; ``False`` refuses to (see
                [`vqgen.save_pretrained`][vqgen.save_pretrained]).

        Examples:
            >>> import vqgen
            >>> vqgen.build("quantizer", "vq", num_codes=8, dim=4).save_pretrained("runs/vq")
            >>> sorted(path.name for path in __import__("pathlib").Path("runs/vq").iterdir())
            ['config.json', 'model.safetensors']
        """
        persistence.save_pretrained(self, directory, overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory: str, *, device: str | torch.device | None = None) -> Component:
        """Rebuild a component saved with [`save_pretrained`][save_pretrained]; checks that it is an instance of
        ``cls``.

        Args:
            directory: a folder written by [`save_pretrained`][save_pretrained].
            device: where to put the weights (default: the CPU).

        Returns:
            The rebuilt module, with the saved weights, in eval mode.

        Raises:
            TypeError: if the folder holds a component of another class.

        Examples:
            >>> import vqgen
            >>> from vqgen.quantizers import VectorQuantizer
            >>> vqgen.build("quantizer", "vq", num_codes=8, dim=4).save_pretrained("runs/vq")
            >>> VectorQuantizer.from_pretrained("runs/vq").num_codes
            8
            >>> vqgen.Encoder.from_pretrained("runs/vq")
            Traceback (most recent call last):
            TypeError: 'runs/vq' holds a VectorQuantizer, not a Encoder; load it with vqgen.from_pretrained(...) instead
        """
        module = persistence.from_pretrained(directory, device=device)
        if not isinstance(module, cls):
            raise TypeError(
                f"{directory!r} holds a {type(module).__name__}, not a {cls.__name__}; "
                f"load it with vqgen.from_pretrained({directory!r}) instead"
            )
        return module
