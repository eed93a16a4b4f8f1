"""The contract tests of every kind of component, shipped with the package, for plugin authors.

A prior, quantizer or encoder/decoder pair registered with vqgen (in your own package, say) must pass the same tests
as the built-in ones: shapes and dtypes, causality of every value (by gradients), cached sampling equal to naive
sampling, save/load round trips, clear errors for bad input. Three ways to run them, none needing a vqgen checkout
(pytest must be installed: ``pip install "vqgen[testing]"``)::

    # one call, anywhere (a script, a notebook, your own test): raises AssertionError naming the failing case
    import vqgen.testing
    import my_priors                                   # registers "bigram"
    vqgen.testing.check_prior("bigram")

    # every registered implementation of every kind, plugins found through their entry points included
    pytest --pyargs vqgen.testing

    # in your own test suite, one pytest test per case
    @pytest.mark.parametrize(("case", "kwargs"), vqgen.testing.contract_cases("prior"))
    def test_bigram_contract(case, kwargs, tmp_path):
        vqgen.testing.run_case(case, kwargs, name="bigram", tmp_path=tmp_path)

The contracts themselves are the modules [`test_priors`][vqgen.testing.test_priors],
[`test_quantizers`][vqgen.testing.test_quantizers] and [`test_autoencoders`][vqgen.testing.test_autoencoders]; their
docstrings say what a component must do to be covered (a prior's ``input`` submodule, ``tiny_config``, ...).
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

try:
    import pytest
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(
        "vqgen.testing runs vqgen's contract tests and needs pytest: pip install 'vqgen[testing]'"
    ) from error

from .seeding import seeded

__all__ = ["ContractReport", "check_autoencoder", "check_prior", "check_quantizer", "contract_cases", "run_case"]

Kind = Literal["prior", "quantizer", "autoencoder"]
_MODULES = {"prior": "test_priors", "quantizer": "test_quantizers", "autoencoder": "test_autoencoders"}


def contract_cases(kind: Kind) -> list:
    """Every contract test of ``kind`` with each of its parametrisations except the component's ``name``.

    Tests added to the contract later are picked up automatically.

    Args:
        kind: ``"prior"``, ``"quantizer"`` or ``"autoencoder"``.

    Returns:
        ``pytest.param(test, kwargs, id=...)`` entries for ``@pytest.mark.parametrize(("case", "kwargs"), ...)``;
        run each with [`run_case`][run_case].

    Raises:
        ValueError: ``kind`` is not one of ``"prior"``, ``"quantizer"``, ``"autoencoder"``.

    Examples:
        >>> import vqgen.testing
        >>> cases = vqgen.testing.contract_cases("quantizer")
        >>> len(cases) > 10, cases[0].id
        (True, 'embed_matches_quantized_in_eval')
    """
    if kind not in _MODULES:
        raise ValueError(f"kind must be one of {sorted(_MODULES)}, got {kind!r}")
    module = importlib.import_module(f"{__name__}.{_MODULES[kind]}")
    cases = []
    for test_name, test in sorted(vars(module).items()):
        if not test_name.startswith("test_") or "name" not in inspect.signature(test).parameters:
            continue
        axes = [
            [(mark.args[0], value) for value in mark.args[1]]
            for mark in getattr(test, "pytestmark", [])
            if mark.name == "parametrize" and mark.args[0] != "name"
        ]
        for combo in itertools.product(*axes):
            kwargs = dict(combo)
            label = "-".join([test_name.removeprefix("test_"), *map(str, kwargs.values())])
            cases.append(pytest.param(test, kwargs, id=label))
    return cases


def run_case(case: Callable[..., None], kwargs: Mapping[str, object], *, name: str, tmp_path: Path) -> None:
    """Run one contract case on the component registered as ``name`` (``tmp_path``: a scratch folder), from torch's
    seed 0 as under pytest (the global generator is restored after).

    Args:
        case: a contract test, from [`contract_cases`][contract_cases].
        kwargs: its parametrisation, from the same entry.
        name: the registered name of the component to test.
        tmp_path: a scratch folder for cases that save and load.

    Raises:
        AssertionError: the component fails the case (``pytest.skip.Exception`` when it does not apply).

    Examples:
        >>> import vqgen.testing
        >>> for param in vqgen.testing.contract_cases("quantizer")[:3]:    # in a suite: one test per case
        ...     case, kwargs = param.values
        ...     vqgen.testing.run_case(case, kwargs, name="ema", tmp_path="scratch")
    """
    wanted = inspect.signature(case).parameters
    with seeded():
        case(name=name, **kwargs, **({"tmp_path": Path(tmp_path)} if "tmp_path" in wanted else {}))


@dataclass
class ContractReport:
    """What [`check_prior`][check_prior] (and the others) ran: the ids of the cases that passed, and of those
    skipped with the reason (a variant the component does not take, say).

    Args:
        passed: the ids of the cases that passed.
        skipped: ``{case id: reason}`` of the cases skipped.

    Examples:
        >>> import vqgen.testing
        >>> report = vqgen.testing.check_autoencoder("flat")
        >>> len(report.passed) > 0, report.skipped
        (True, {})
    """

    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _check(kind: Kind, name: str) -> ContractReport:
    import vqgen

    registry_kind = "encoder" if kind == "autoencoder" else kind
    if name not in vqgen.available(registry_kind):
        raise ValueError(
            f"no {registry_kind} registered as {name!r}; register it with @vqgen.register({registry_kind!r}, "
            f"{name!r}) and import its module first (registered: {vqgen.available(registry_kind)})"
        )
    report = ContractReport()
    for param in contract_cases(kind):
        (case, kwargs), case_id = param.values, param.id
        with tempfile.TemporaryDirectory(prefix="vqgen-contract-") as tmp:
            try:
                run_case(case, kwargs, name=name, tmp_path=Path(tmp))
            except pytest.skip.Exception as skip:
                report.skipped[case_id] = str(skip.msg)
                continue
            except Exception as error:
                raise AssertionError(f"{kind} {name!r} fails the contract case {case_id}: {error}") from error
        report.passed.append(case_id)
    return report


def check_prior(name: str) -> ContractReport:
    """Run the whole prior contract on the prior registered as ``name``; returns what passed and was skipped.

    Args:
        name: a registered prior (a plugin's module imported first, or found through its entry point).

    Returns:
        The ids of the cases that passed, and of those skipped with the reason.

    Raises:
        AssertionError: naming the first case that fails, with the failure chained.
        ValueError: no prior is registered as ``name``.

    Examples:
        >>> import vqgen.testing
        >>> report = vqgen.testing.check_prior("independent")
        >>> report.passed[1]                                           # one case, one variant
        'cached_sampling_equals_naive-grey-plain'
        >>> vqgen.testing.check_prior("bigram")
        Traceback (most recent call last):
        ValueError: no prior registered as 'bigram'; register it with @vqgen.register('prior', 'bigram') and ...
    """
    return _check("prior", name)


def check_quantizer(name: str) -> ContractReport:
    """Run the whole quantizer contract on the quantizer registered as ``name`` (see [`check_prior`][check_prior]).

    Args:
        name: a registered quantizer.

    Returns:
        The ids of the cases that passed, and of those skipped with the reason.

    Raises:
        AssertionError: naming the first case that fails, with the failure chained.
        ValueError: no quantizer is registered as ``name``.

    Examples:
        >>> import vqgen.testing
        >>> len(vqgen.testing.check_quantizer("fsq").passed) > 10
        True
    """
    return _check("quantizer", name)


def check_autoencoder(name: str) -> ContractReport:
    """Run the autoencoder contract on the encoder and decoder registered as ``name`` (see
    [`check_prior`][check_prior]).

    Args:
        name: the name of a registered encoder and decoder pair.

    Returns:
        The ids of the cases that passed, and of those skipped with the reason.

    Raises:
        AssertionError: naming the first case that fails, with the failure chained.
        ValueError: no encoder is registered as ``name``.

    Examples:
        >>> import vqgen.testing
        >>> len(vqgen.testing.check_autoencoder("conv").passed) > 0
        True
    """
    return _check("autoencoder", name)
