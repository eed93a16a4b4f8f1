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
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import plugins
from .config import Configurable, is_spec

if TYPE_CHECKING:
    from .interfaces import AutoregressivePrior, Component, Decoder, Encoder, Quantizer

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "Registry", "available", "build", "build_from_spec", "register", "registry"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vqgen.plugins"
"""The entry-point group whose entry points vqgen loads the first time a registry is consulted."""

KINDS = ("quantizer", "encoder", "decoder", "prior", "model")
"""The kinds of component, one [`Registry`][Registry] each."""

T = TypeVar("T", bound=type)


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Registry:
    """Name → class for one kind of component.

    Args:
        kind: the kind's name, used in error messages.
        base: a function returning the class that classes registered here must subclass (called lazily, since the
            interfaces import this module), or ``None`` for no such requirement.

    Examples:
        >>> import vqgen
        >>> priors = vqgen.registry("prior")
        >>> priors.names("*pixel*")
        ['gated_pixelcnn', 'pixelcnn', 'pixelcnn_pp']
        >>> priors.get("rnn").__name__, "rnn" in priors
        ('RNNPrior', True)
    """

    def __init__(self, kind: str, base: Callable[[], type] | None = None) -> None:
        self.kind = kind
        self._base = base
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator storing the class under ``name``; returns the class unchanged.

        Args:
            name: an identifier-like name (letters, digits, ``_`` and ``-``, not starting with a digit).

        Returns:
            The decorator, which calls [`add`][add] and returns its class.

        Raises:
            ValueError: if ``name`` is not identifier-like.

        Examples:
            >>> import torch, vqgen
            >>> @vqgen.registry("model").register("doubler")
            ... class Doubler(vqgen.Component):
            ...     def forward(self, x):
            ...         return 2 * x
            >>> vqgen.build("model", "doubler")(torch.ones(2))
            tensor([2., 2.])
        """
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
            raise ValueError(f"{self.kind} name must be an identifier-like string, got {name!r}")

        def decorator(cls: T) -> T:
            self.add(name, cls)
            return cls

        return decorator

    def add(self, name: str, cls: type) -> None:
        """Store ``cls`` under ``name``; a name can be registered once.

        Args:
            name: the name to build it by.
            cls: a [`Configurable`][vqgen.config.Configurable] class, subclassing the kind's interface.

        Raises:
            TypeError: if ``cls`` is not a Configurable class, or not a subclass of the kind's interface.
            ValueError: if ``name`` is already registered to another class.

        Examples:
            >>> import vqgen
            >>> from vqgen.quantizers import VectorQuantizer
            >>> vqgen.registry("quantizer").add("my_vq", VectorQuantizer)
            >>> vqgen.build("quantizer", "my_vq", num_codes=8, dim=4).num_codes
            8
            >>> vqgen.registry("quantizer").add("vq", dict)
            Traceback (most recent call last):
            TypeError: only vqgen components (Configurable subclasses) can be registered, got <class 'dict'>
        """
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
        """Registered names, naturally sorted, optionally filtered by a shell-style ``pattern`` (``"*pixel*"``).

        Args:
            pattern: an ``fnmatch`` pattern; ``None`` lists every name.

        Returns:
            The names, plugins included.

        Examples:
            >>> import vqgen
            >>> vqgen.registry("encoder").names()
            ['conv', 'flat']
        """
        _load_plugins()
        names = self._entries if pattern is None else fnmatch.filter(self._entries, pattern)
        return sorted(names, key=_natural_key)

    def get(self, name: str) -> type:
        """The class registered under ``name``; an unknown name raises a ``ValueError`` listing the known ones.

        Args:
            name: a registered name.

        Returns:
            The class.

        Raises:
            ValueError: if nothing is registered under ``name``; the message lists what is.

        Examples:
            >>> import vqgen
            >>> vqgen.registry("encoder").get("conv").__name__
            'ConvEncoder'
            >>> vqgen.registry("encoder").get("resnet")
            Traceback (most recent call last):
            ValueError: unknown encoder 'resnet'; available encoders: conv, flat
        """
        _load_plugins()
        if name not in self._entries:
            known = ", ".join(self.names()) or "(none)"
            raise ValueError(f"unknown {self.kind} {name!r}; available {self.kind}s: {known}")
        return self._entries[name]

    def build(self, name: str, **config: Any) -> Configurable:
        """Instantiate ``name`` with ``config``; ``None`` values are dropped so that unset options keep defaults.

        Args:
            name: a registered name.
            **config: constructor arguments; those that are ``None`` are left out.

        Returns:
            The new component.

        Raises:
            TypeError: if ``config`` holds a key the constructor does not take; the message lists those it takes.
            ValueError: if ``name`` is unknown.

        Examples:
            >>> import vqgen
            >>> vqgen.registry("quantizer").build("vq", num_codes=8, dim=4, beta=None).config["beta"]   # the default
            0.25
            >>> vqgen.registry("quantizer").build("vq", codes=8)
            Traceback (most recent call last):
            TypeError: quantizer 'vq' got unknown config keys ['codes']; it accepts [...]
        """
        cls = self.get(name)
        config = {k: v for k, v in config.items() if v is not None}
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        unknown = sorted(set(config) - set(params))
        if unknown:
            raise TypeError(f"{self.kind} {name!r} got unknown config keys {unknown}; it accepts {params}")
        return cls(**config)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered (plugins loaded first)."""
        _load_plugins()
        return name in self._entries

    def __repr__(self) -> str:
        """``Registry('kind', [names])``."""
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
    """The registry of one kind: ``quantizer``, ``encoder``, ``decoder``, ``prior`` or ``model``.

    Args:
        kind: one of [`KINDS`][KINDS].

    Returns:
        The kind's one [`Registry`][Registry].

    Raises:
        ValueError: if ``kind`` is not one of them.

    Examples:
        >>> import vqgen
        >>> vqgen.registry("decoder").names()
        ['conv', 'flat']
        >>> vqgen.registry("priors")
        Traceback (most recent call last):
        ValueError: unknown component kind 'priors'; expected one of ['quantizer', 'encoder', 'decoder', 'prior', ...]
    """
    if kind not in _REGISTRIES:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {list(KINDS)}")
    return _REGISTRIES[kind]


def register(kind: str, name: str) -> Callable[[T], T]:
    """Class decorator: ``@register("quantizer", "vq")`` makes the class buildable as ``build("quantizer", "vq")``.

    The class must be a vqgen component (a subclass of the kind's interface: [`Quantizer`][vqgen.Quantizer],
    [`Encoder`][vqgen.Encoder], [`Decoder`][vqgen.Decoder], [`AutoregressivePrior`][vqgen.AutoregressivePrior], or
    [`Component`][vqgen.Component] for ``"model"``) whose ``__init__`` takes explicit keyword arguments, so that its
    config is captured and it can be saved and rebuilt by name. A package can register its classes without being
    imported by hand through an entry point (see the module docstring).

    Args:
        kind: one of [`KINDS`][KINDS].
        name: the name to build it by; a name is registered once.

    Returns:
        The decorator; it returns the class unchanged.

    Raises:
        ValueError: if ``kind`` is unknown or ``name`` is not identifier-like; when decorating, if ``name`` is taken.
        TypeError: when decorating, if the class is not a component of that kind.

    Examples:
        >>> import torch, vqgen
        >>> @vqgen.register("model", "scaler")
        ... class Scaler(vqgen.Component):
        ...     def __init__(self, factor: float = 2.0) -> None:
        ...         super().__init__()
        ...         self.factor = factor
        ...
        ...     def forward(self, x):
        ...         return self.factor * x
        >>> scaler = vqgen.build("model", "scaler", factor=3.0)
        >>> scaler(torch.ones(2)), scaler.to_spec()
        (tensor([3., 3.]), {'kind': 'model', 'name': 'scaler', 'config': {'factor': 3.0}})
    """
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
    """Build a registered component by kind and name: ``build("prior", "gated_pixelcnn", num_categories=512)``.

    The one door to every implementation, built-in or plugin. Options left ``None`` are dropped, so that unset
    command-line flags keep the constructor's defaults.

    Args:
        kind: one of [`KINDS`][KINDS].
        name: a name registered for that kind (see [`available`][available]).
        **config: the constructor's keyword arguments.

    Returns:
        The new component (a [`Quantizer`][vqgen.Quantizer] for ``"quantizer"``, and so on).

    Raises:
        ValueError: if ``kind`` or ``name`` is unknown; the message lists the known names.
        TypeError: if ``config`` holds a key the constructor does not take.

    Examples:
        >>> import vqgen
        >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=512, num_classes=10)
        >>> type(prior).__name__, prior.num_categories, prior.num_classes
        ('GatedPixelCNN', 512, 10)
        >>> vqgen.build("prior", "pixel_cnn")
        Traceback (most recent call last):
        ValueError: unknown prior 'pixel_cnn'; available priors: gated_pixelcnn, independent, pixelcnn, ...
    """
    return registry(kind).build(name, **config)


def available(kind: str, pattern: str | None = None) -> list[str]:
    """Names registered for ``kind``, optionally filtered by a shell pattern: ``available("prior", "*pixel*")``.

    Args:
        kind: one of [`KINDS`][KINDS].
        pattern: an ``fnmatch`` pattern; ``None`` lists every name.

    Returns:
        The names, naturally sorted, plugins included.

    Raises:
        ValueError: if ``kind`` is unknown.

    Examples:
        >>> import vqgen
        >>> vqgen.available("encoder"), vqgen.available("prior", "*pixelcnn")
        (['conv', 'flat'], ['gated_pixelcnn', 'pixelcnn'])
    """
    return registry(kind).names(pattern)


def build_from_spec(spec: Mapping[str, Any]) -> Configurable:
    """Rebuild a component from ``{"kind", "name", "config"}`` as produced by ``component.to_spec()``.

    Args:
        spec: a mapping with exactly the keys ``kind``, ``name`` and ``config`` (the constructor's arguments).

    Returns:
        The new component, with fresh weights.

    Raises:
        ValueError: if ``spec`` has other keys, or its kind or name is unknown.
        TypeError: if ``spec["config"]`` is not a mapping, or holds a key the constructor does not take.

    Examples:
        >>> import vqgen
        >>> spec = vqgen.build("quantizer", "ema", num_codes=8, dim=4).to_spec()
        >>> spec["kind"], spec["name"], spec["config"]["num_codes"]
        ('quantizer', 'ema', 8)
        >>> vqgen.build_from_spec(spec).num_codes
        8
    """
    if not is_spec(spec):
        raise ValueError(f"a component spec needs exactly the keys 'kind', 'name' and 'config', got {sorted(spec)}")
    if not isinstance(spec["config"], Mapping):
        raise TypeError(f"spec['config'] must be a mapping, got {type(spec['config']).__name__}")
    return build(spec["kind"], spec["name"], **spec["config"])


def _load_plugins() -> None:
    """Register the built-in implementations and every plugin, once (see ``vqgen/plugins.py``)."""
    plugins.load_once(_REGISTRIES, ENTRY_POINT_GROUP)
