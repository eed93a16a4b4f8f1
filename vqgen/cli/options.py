"""The vocabulary every ``vqgen`` subcommand shares: one flag name per concept, number types, deprecated spellings.

| concept | flag | old spellings (deprecated, still accepted with a warning) |
| --- | --- | --- |
| how many samples to draw | ``--num-samples`` / ``-n`` | ``--n`` (``sample``), ``--samples`` (``demo``) |
| how many held-out images to show or complete | ``--num-images`` / ``-n`` | ``--n`` (``complete``) |
| training-time cap | ``--max-seconds S`` | ``--max-minutes M`` (``fit-prior``) |
| progress bars | ``--progress`` / ``--no-progress`` | |
| checkpoint kept | ``--keep best|last`` | |
| logging, CPU threads | ``-v``, ``--threads N`` before or after the subcommand | |

Numbers are checked by ``argparse`` types, so a bad number is a usage error (exit status 2) with the flag's name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RUNTIME_ERROR",
    "EXIT_USAGE",
    "add_common_arguments",
    "add_deprecated_alias",
    "add_progress_argument",
    "fraction",
    "load_yaml",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
]

EXIT_OK = 0
#: The command ran but could not finish: missing data, a corrupt or wrong checkpoint, an invalid setting found late.
EXIT_RUNTIME_ERROR = 1
#: The command line itself is wrong: an unknown flag, a missing argument, a bad number (argparse's convention).
EXIT_USAGE = 2
#: Stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _number(convert: Callable[[str], Any], check: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected  # argparse names the type in "invalid <name> value" messages
    return parse


#: Where the training data comes from: the options ``fit`` and ``fit-vqvae`` share (flag and file-key names).
DATA_DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "data_root": None,
    "download": False,
    "train_subset": None,
    "eval_subset": None,
}

positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def add_common_arguments(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``-v`` and ``--threads``, accepted before the subcommand (``top_level``) and after it.

    After the subcommand they default to ``SUPPRESS``, so that a value given before it is not overwritten.
    """
    default: dict[str, Any] = {} if top_level else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debugging details and show tracebacks", **default
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch CPU threads (default: torch's choice; 1 is often fastest for small models on a busy machine)",
        **default,
    )


def add_progress_argument(parser: Any, *, default: bool, what: str = "progress bars") -> None:
    """``--progress`` / ``--no-progress`` (``argparse.BooleanOptionalAction``)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default,
        help=f"show {what} (default: {'on' if default else 'off'})",
    )


class _DeprecatedAlias(argparse.Action):
    """Stores into the new flag's ``dest`` (times ``factor``) and warns that the old spelling is deprecated."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, factor: float | None = None, **kw: Any):
        self.new, self.factor = new, factor
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        hint = f" (given in minutes: {values} min = {values * self.factor:g} s)" if self.factor else ""
        print(f"vqgen: warning: {option_string} is deprecated; use {self.new}{hint}", file=sys.stderr)
        setattr(namespace, self.dest, values * self.factor if self.factor else values)


def add_deprecated_alias(
    parser: Any, old: str, *, new: str, dest: str, type: Callable[[str], Any], factor: float | None = None
) -> None:
    """Accept ``old`` as a hidden, warning spelling of ``new`` (whose value lands in ``dest``, times ``factor``)."""
    parser.add_argument(
        old, dest=dest, type=type, action=_DeprecatedAlias, new=new, factor=factor, default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )  # fmt: skip


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, but ``1e-3`` is a float (YAML 1.2), not the string PyYAML's YAML 1.1 rules make it."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


_YAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def read_options_file(
    path: str | Path, known: Iterable[str], *, noun: str = "options", shown: Iterable[str] | None = None
) -> dict[str, Any]:
    """A JSON or YAML file of options → ``{dest: value}``; keys are long flag names (``batch-size``, ``batch_size``).

    Raises:
        ValueError: a key not in ``known`` (the message lists ``shown``, default ``known``, as the ``noun``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config file {path} does not exist")
    text = path.read_text()
    options = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text)
    if not isinstance(options, dict):
        raise ValueError(f"--config file {path} must hold a mapping of options, got {type(options).__name__}")
    options = {str(key).removeprefix("--").replace("-", "_"): value for key, value in options.items()}
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = sorted(known if shown is None else shown)
        raise ValueError(f"--config file {path} has unknown {noun} {unknown}; known {noun}: {listed}")
    return options


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` for a subcommand whose options are all flags: the file's values become the flags' defaults,
    so flags given on the command line override it (see [`apply_config`][vqgen.cli.options.apply_config])."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of options (keys: long flag names, e.g. num-samples); flags given override it",
    )
    parser.set_defaults(flags_from_config=True)


def apply_config(parser: argparse.ArgumentParser, path: str | Path) -> None:
    """Make the options of the ``--config`` file at ``path`` the defaults of ``parser``'s flags.

    Raises:
        ValueError: a key that is not one of the parser's flags (the message lists them), or a value the flag's
            type rejects.
    """
    flags = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")}
    options = read_options_file(path, flags, shown=[name.replace("_", "-") for name in flags])
    for dest, value in options.items():
        convert = flags[dest].type
        if callable(convert) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                value = convert(str(value))
            except (argparse.ArgumentTypeError, ValueError) as error:
                raise ValueError(f"--config file {path}: {dest.replace('_', '-')}: {error}") from None
        choices = flags[dest].choices
        if choices is not None and value not in choices:
            raise ValueError(
                f"--config file {path}: {dest.replace('_', '-')} must be one of {list(choices)}, got {value!r}"
            )
    parser.set_defaults(**options)
