"""Registries of interchangeable components, and the one door to build them.

There is one [`Registry`][Registry] per kind of component (``quantizer``, ``encoder``, ``decoder``, ``prior``,
``model``). Implementations register under a short name::

    @vqgen.register("prior", "my_prior")
    class MyPrior(AutoregressivePrior): ...

    prior = vqgen.build("prior", "my_prior", num_categories=512)

Third-party packages need not be imported by hand: vqgen loads every entry point of the group ``vqgen.plugins`` the
first time a registry is consulted. An entry point named ``kind.name`` (``prior.my_prior = my_pkg.priors:MyPrior``)
registers the object it points to under that kind and name; any other entry point is simply imported, so a module
that registers its classes with the decorator works too.
"""

from __future__ import annotations

import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from .config import Configurable, is_spec

if TYPE_CHECKING:
    from .interfaces import AutoregressivePrior, Component, Decoder, Encoder, Quantizer

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "Registry", "available", "build", "build_from_spec", "register", "registry"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vqgen.plugins"
KINDS = ("quantizer", "encoder", "decoder", "prior", "model")

T = TypeVar("T", bound=type)


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Registry:
    """Name → class for one kind of component.

    Args:
        kind: the kind's name, used in error messages.
        base: classes registered here must subclass it (checked lazily, since the interfaces import this module).
    """

    def __init__(self, kind: str, base: Callable[[], type] | None = None) -> None:
        self.kind = kind
        self._base = base
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator storing the class under ``name``; returns the class unchanged."""
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
            raise ValueError(f"{self.kind} name must be an identifier-like string, got {name!r}")

        def decorator(cls: T) -> T:
            self.add(name, cls)
            return cls

        return decorator

    def add(self, name: str, cls: type) -> None:
        """Store ``cls`` under ``name``; a name can be registered once."""
        if not inspect.isclass(cls) or not issubclass(cls, Configurable):
            raise TypeError(f"only vqgen components (Configurable subclasses) can be registered, got {cls!r}")
        base = self._base() if self._base is not None else None
        if base is not None and not issubclass(cls, base):
            raise TypeError(f"a {self.kind} must subclass {base.__name__}, but {cls.__name__} does not")
        if name in self._entries and self._entries[name] is not cls:
            raise ValueError(
                f"{self.kind} {name!r} is already registered to {self._entries[name].__qualname__}; choose another name"
            )
        self._entries[name] = cls
        if cls.__dict__.get("_registry_name") is None:
            cls._registry_kind, cls._registry_name = self.kind, name

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, naturally sorted, optionally filtered by a shell-style ``pattern`` (``"*pixel*"``)."""
        _load_plugins()
        names = self._entries if pattern is None else fnmatch.filter(self._entries, pattern)
        return sorted(names, key=_natural_key)

    def get(self, name: str) -> type:
        """The class registered under ``name``; an unknown name raises a ``ValueError`` listing the known ones."""
        _load_plugins()
        if name not in self._entries:
            known = ", ".join(self.names()) or "(none)"
            raise ValueError(f"unknown {self.kind} {name!r}; available {self.kind}s: {known}")
        return self._entries[name]

    def build(self, name: str, **config: Any) -> Configurable:
        """Instantiate ``name`` with ``config``; ``None`` values are dropped so that unset options keep defaults."""
        cls = self.get(name)
        config = {k: v for k, v in config.items() if v is not None}
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        unknown = sorted(set(config) - set(params))
        if unknown:
            raise TypeError(f"{self.kind} {name!r} got unknown config keys {unknown}; it accepts {params}")
        return cls(**config)

    def __contains__(self, name: object) -> bool:
        _load_plugins()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


def _interface(name: str) -> Callable[[], type]:
    def resolve() -> type:
        from . import interfaces

        return getattr(interfaces, name)

    return resolve


_REGISTRIES: dict[str, Registry] = {
    "quantizer": Registry("quantizer", _interface("Quantizer")),
    "encoder": Registry("encoder", _interface("Encoder")),
    "decoder": Registry("decoder", _interface("Decoder")),
    "prior": Registry("prior", _interface("AutoregressivePrior")),
    "model": Registry("model"),
}


def registry(kind: str) -> Registry:
    """The registry of one kind: ``quantizer``, ``encoder``, ``decoder``, ``prior`` or ``model``."""
    if kind not in _REGISTRIES:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {list(KINDS)}")
    return _REGISTRIES[kind]


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: ``@register("quantizer", "vq")`` makes the class buildable as ``build("quantizer", "vq")``."""
    return registry(kind).register(name)


@overload
def build(kind: Literal["quantizer"], name: str, **config: Any) -> Quantizer: ...
@overload
def build(kind: Literal["encoder"], name: str, **config: Any) -> Encoder: ...
@overload
def build(kind: Literal["decoder"], name: str, **config: Any) -> Decoder: ...
@overload
def build(kind: Literal["prior"], name: str, **config: Any) -> AutoregressivePrior: ...
@overload
def build(kind: Literal["model"], name: str, **config: Any) -> Component: ...
@overload
def build(kind: str, name: str, **config: Any) -> Configurable: ...
def build(kind: str, name: str, **config: Any) -> Configurable:
    """Build a registered component by kind and name: ``build("prior", "gated_pixelcnn", num_categories=512)``."""
    return registry(kind).build(name, **config)


def available(kind: str, pattern: str | None = None) -> list[str]:
    """Names registered for ``kind``, optionally filtered by a shell pattern: ``available("prior", "*pixel*")``."""
    return registry(kind).names(pattern)


def build_from_spec(spec: Mapping[str, Any]) -> Configurable:
    """Rebuild a component from ``{"kind", "name", "config"}`` as produced by ``component.to_spec()``."""
    if not is_spec(spec):
        raise ValueError(f"a component spec needs exactly the keys 'kind', 'name' and 'config', got {sorted(spec)}")
    if not isinstance(spec["config"], Mapping):
        raise TypeError(f"spec['config'] must be a mapping, got {type(spec['config']).__name__}")
    return build(spec["kind"], spec["name"], **spec["config"])


_plugins_loaded = False


def _load_plugins() -> None:
    """Import every ``vqgen.plugins`` entry point once; a broken plugin is logged, never fatal."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from . import _builtin  # noqa: F401  (registers the built-in implementations)

    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = entry_point.load()
        except Exception as error:  # a third party's bug must not break vqgen
            logger.warning("vqgen plugin %r (%s) failed to load: %s", entry_point.name, entry_point.value, error)
            continue
        kind, _, name = entry_point.name.partition(".")
        if name and inspect.isclass(obj) and kind in _REGISTRIES:
            try:
                _REGISTRIES[kind].add(name, obj)
            except (TypeError, ValueError) as error:
                logger.warning("vqgen plugin %r could not be registered: %s", entry_point.name, error)
