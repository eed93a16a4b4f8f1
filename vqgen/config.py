"""Configuration captured from ``__init__`` arguments.

Every vqgen component is rebuilt from a small JSON dict, so the dict must be exactly what the constructor was called
with. Rather than asking each class to write ``get_config()`` by hand (and forget an argument),
[`Configurable`][Configurable] binds the arguments of the outermost ``__init__`` call through ``inspect.signature``,
fills in the defaults and freezes them into ``self.config`` — the approach of diffusers' ``register_to_config``, without
per-model special cases.

A component passed to another component's constructor (an encoder handed to ``TwoStageModel``, say) is stored as its
*spec* ``{"kind": ..., "name": ..., "config": {...}}``, so compositions nest naturally.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["CheckpointWarning", "Configurable", "drop_unknown_keys", "is_spec", "to_jsonable"]


class CheckpointWarning(UserWarning):
    """A checkpoint loads, but not exactly as written: unknown keys ignored, or no checksum to verify it by.

    Examples:
        >>> import json, warnings, vqgen
        >>> from pathlib import Path
        >>> from vqgen.config import CheckpointWarning
        >>> vqgen.build("quantizer", "vq", num_codes=8, dim=4).save_pretrained("runs/vq")
        >>> config = json.loads(Path("runs/vq/config.json").read_text())
        >>> del config["config_sha256"]                  # as in a checkpoint written before checksums existed
        >>> _ = Path("runs/vq/config.json").write_text(json.dumps(config))
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", CheckpointWarning)    # refuse what would load only with a warning
        ...     vqgen.from_pretrained("runs/vq")
        Traceback (most recent call last):
        vqgen.config.CheckpointWarning: runs/vq/config.json has no config_sha256, so damage to it cannot be ...
    """


def _version() -> str:
    from . import __version__

    return __version__


def is_spec(value: Any) -> bool:
    """True for a component spec: a mapping with exactly the keys ``kind``, ``name`` and ``config``."""
    return isinstance(value, Mapping) and set(value) == {"kind", "name", "config"}


def to_jsonable(value: Any, *, where: str) -> Any:
    """Convert a constructor argument to plain JSON types; components become specs.

    Raises:
        TypeError: if the value (or something inside it) has no JSON form; ``where`` names the argument.
    """
    if isinstance(value, Configurable):
        return value.to_spec()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where}={value!r} cannot be stored in a JSON config; use a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} must have string keys to be stored in a JSON config, got {list(value)!r}")
        return {k: to_jsonable(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"{where} has type {type(value).__name__}, which cannot be stored in a JSON config; "
        "pass plain numbers, strings, lists, dicts or vqgen components"
    )


class Configurable:
    """Mixin that records the arguments of ``__init__`` as a read-only [`config`][config] mapping.

    Subclasses write an ordinary ``__init__`` with keyword arguments (no ``*args``/``**kwargs``). The registry sets
    ``_registry_kind`` and ``_registry_name`` on registered classes, which [`to_spec`][to_spec] needs.

    Raises:
        TypeError: when a subclass is defined whose ``__init__`` takes ``*args`` or ``**kwargs``; when one is built
            with an argument that has no JSON form (a tensor, a NaN, an object).

    Examples:
        >>> import vqgen
        >>> class Scale(vqgen.Configurable):
        ...     def __init__(self, factor: float = 2.0, name: str = "scale") -> None:
        ...         self.factor = factor
        >>> dict(Scale(3.0).config)
        {'factor': 3.0, 'name': 'scale'}
        >>> class Loose(vqgen.Configurable):
        ...     def __init__(self, **options) -> None: ...
        Traceback (most recent call last):
        TypeError: Loose.__init__ takes **options; Configurable components need explicit arguments so that ...
    """

    _registry_kind: str | None = None
    _registry_name: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the subclass's own ``__init__`` so that the outermost call records its arguments."""
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__dict__["__init__"]
        signature = inspect.signature(init)
        for param in list(signature.parameters.values())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                stars = "*" if param.kind == param.VAR_POSITIONAL else "**"
                raise TypeError(
                    f"{cls.__name__}.__init__ takes {stars}{param.name}; Configurable components need explicit "
                    "arguments so that their config can be captured"
                )

        @functools.wraps(init)
        def capturing_init(self: Configurable, *args: Any, **kw: Any) -> None:
            # Only the outermost __init__ (the class actually built) records its arguments.
            if "_config" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                captured = {
                    name: to_jsonable(value, where=f"{type(self).__name__}({name})")
                    for name, value in list(bound.arguments.items())[1:]
                }
                object.__setattr__(self, "_config", captured)
            init(self, *args, **kw)

        cls.__init__ = capturing_init  # type: ignore[method-assign]

    @property
    def config(self) -> Mapping[str, Any]:
        """The constructor arguments, defaults filled in, as plain JSON types (read-only).

        Examples:
            >>> import vqgen
            >>> config = vqgen.build("encoder", "conv", latent_dim=16).config
            >>> config["latent_dim"], config["in_channels"]
            (16, 1)
        """
        return MappingProxyType(self.__dict__.get("_config", {}))

    def to_spec(self) -> dict[str, Any]:
        """``{"kind", "name", "config"}``: everything [`vqgen.build_from_spec`][vqgen.build_from_spec] needs to rebuild
        this component.

        Returns:
            A new dict of plain JSON types.

        Raises:
            TypeError: if the class is not registered.

        Examples:
            >>> import vqgen
            >>> vqgen.build("quantizer", "fsq", levels=[5, 4], dim=8).to_spec()
            {'kind': 'quantizer', 'name': 'fsq', 'config': {'levels': [5, 4], 'dim': 8}}
        """
        if self._registry_kind is None or self._registry_name is None:
            raise TypeError(
                f"{type(self).__name__} is not registered, so it cannot be saved or rebuilt by name; "
                "decorate it with @vqgen.register(kind, name)"
            )
        # A JSON round trip deep-copies and guarantees the spec is serialisable.
        config = json.loads(json.dumps(dict(self.config)))
        return {"kind": self._registry_kind, "name": self._registry_name, "config": config}


def drop_unknown_keys(value: Any, *, source: str | os.PathLike[str], where: str = "") -> Any:
    """``value`` with every key that its (nested) components' constructors do not take removed, with a warning."""
    from .registry import registry  # the registry imports this module

    if is_spec(value) and isinstance(value["config"], Mapping):
        kind, name = value["kind"], value["name"]
        try:
            accepted = list(inspect.signature(registry(kind).get(name).__init__).parameters)[1:]
        except (TypeError, ValueError):  # an unknown kind or name: building it reports that
            return value
        config, unknown = {}, []
        for key, item in value["config"].items():
            if key in accepted:
                config[key] = drop_unknown_keys(item, source=source, where=f"{where}[{key!r}]")
            else:
                unknown.append(key)
        if unknown:
            place = f"at config{where}" if where else "at the top level"
            warnings.warn(
                f"{source}: the {kind} {name!r} {place} takes no {sorted(unknown)} in this vqgen ({_version()}); "
                "written by a newer version? Ignored: those options take their defaults",
                CheckpointWarning,
                stacklevel=4,
            )
        return {**value, "config": config}
    if isinstance(value, Mapping):
        return {key: drop_unknown_keys(item, source=source, where=f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list):
        return [drop_unknown_keys(item, source=source, where=f"{where}[{i}]") for i, item in enumerate(value)]
    return value
