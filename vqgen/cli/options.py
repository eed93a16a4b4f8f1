"""The vocabulary every ``vqgen`` subcommand shares: one flag name per concept, number types, deprecated spellings,
and the helpers that register a subcommand and its dataset flags the same way everywhere.

| concept | flag | old spellings (deprecated, still accepted with a warning) |
| --- | --- | --- |
| how many samples to draw (and score) | ``--num-samples`` / ``-n`` | ``--n`` (``sample``), ``--samples`` (``demo``) |
| how many held-out images to show or complete | ``--num-images`` | ``--n``, ``-n`` (``complete``, ``fit-vqvae``) |
| training-time cap, per stage | ``--max-seconds S`` | ``--max-minutes M`` (``fit-prior``) |
| class-conditional prior | on when the data has labels; ``--unconditional`` | ``--conditional`` (``fit-prior``) |
| progress bars | ``--progress`` / ``--no-progress`` | |
| checkpoint kept | ``--keep best|last`` | |
| logging, CPU threads | ``-v``, ``--threads N`` before or after the subcommand | |

Numbers are checked by the ``argparse`` types of ``vqgen.cli.values`` (re-exported here), so a bad number is a usage
error (exit status 2) with the flag's name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .values import fraction, non_negative_int, positive_float, positive_int, probability

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RUNTIME_ERROR",
    "EXIT_USAGE",
    "DefaultsHelpFormatter",
    "add_command",
    "add_common_arguments",
    "add_data_arguments",
    "add_deprecated_alias",
    "add_device_argument",
    "add_output_argument",
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


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a meaningful default the help does not state, and
    keeps the indented lines of a description or epilog (the examples) as they are written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        default = action.default
        meaningful = default is not None and default is not False and default is not argparse.SUPPRESS
        if meaningful and action.nargs != 0 and "default" not in help and action.option_strings:
            help += " (default: %(default)s)"
        return help

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if any(line.startswith(" ") for line in block.splitlines()):
                blocks.append("\n".join(indent + line for line in block.splitlines()))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)


_REFERENCE = re.compile(r"\[`([^`]+)`\]\[[^\]]*\]")  # [`Name`][vqgen.Name], an mkdocstrings cross-reference
_COMMAND_DOC = re.compile(  # title, description, Examples:: and its indented lines (see add_command)
    r"``vqgen (?P<name>[a-z-]+)``: (?P<help>.+?)\.?\n\n(?P<body>.*?)\n\nExamples::\n\n(?P<ex>.*?)(?:\n\n|\n?$)", re.S
)


def add_command(subparsers: Any, doc: str) -> argparse.ArgumentParser:
    """Register the subcommand that the module docstring ``doc`` describes, every option's default shown.

    ``doc`` is the subcommand's one source of help, written as every module of this package writes it::

        ``vqgen NAME``: the one-line help, shown in ``vqgen --help``.

        The description: paragraphs up to ``Examples::``, shown at the top of ``vqgen NAME --help``.

        Examples::

            vqgen NAME ...          # command lines, each with an optional comment: the help's epilog

        Paragraphs after the examples, for readers of the code only.

    Raises:
        ValueError: ``doc`` does not have that shape (every subcommand's help shows at least one example, and
            ``tests/cli/test_help.py`` runs them all).
    """
    match = _COMMAND_DOC.match(doc or "")
    if match is None:
        raise ValueError(f"a subcommand's docstring must have a title, a description and Examples::, got {doc!r}")
    description = _REFERENCE.sub(r"\1", match["body"]).replace("``", "")
    return subparsers.add_parser(
        match["name"],
        help=_REFERENCE.sub(r"\1", match["help"]).replace("``", ""),
        description=" ".join(description.split()),
        epilog="examples:\n" + "\n".join(f"  {line.strip()}" for line in match["ex"].splitlines()),
        formatter_class=DefaultsHelpFormatter,
    )


#: What ``--dataset`` accepts, in every command's help.
DATASET_HELP = "digits, mnist, fashion-mnist, cifar10, or a folder of images (one sub-folder per class) / .npy / .npz"


def add_data_arguments(
    parser: argparse.ArgumentParser,
    *,
    default: str | None = "digits",
    shown: str | None = None,
    subsets: Sequence[str] = ("train", "eval"),
) -> Any:
    """The ``data`` group: ``--dataset`` (``default``, described in the help as ``shown`` when it is computed later),
    ``--data-root``, ``--download`` and ``--train-subset`` / ``--eval-subset`` for the ``subsets`` named.

    ``--download`` defaults to ``None`` (off), so that a ``--config`` file can turn it on; the group is returned for
    the command's own data flags.
    """
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset", metavar="DATA", default=default, help=f"{DATASET_HELP} (default: {shown or default})"
    )
    group.add_argument(
        "--data-root", metavar="DIR", help="folder holding the named datasets (default: $VQGEN_DATA, else the cache)"
    )
    group.add_argument(
        "--download", action="store_true", default=None, help="download a named dataset if it is missing (checksummed)"
    )
    what = {"train": "train on the first N training images", "eval": "evaluate on the first N held-out images"}
    for subset in subsets:
        group.add_argument(f"--{subset}-subset", type=positive_int, metavar="N", help=f"{what[subset]} (default: all)")
    return group


def add_output_argument(parser: Any, *, kind: str, help: str, **kwargs: Any) -> None:
    """``--output`` / ``-o`` with its ``kind`` (``DIR``, ``PNG`` or ``JSON``) as the metavar."""
    parser.add_argument("--output", "-o", metavar=kind, help=help, **kwargs)


def add_device_argument(parser: Any) -> None:
    """``--device``, the same in every command."""
    parser.add_argument(
        "--device",
        help="cpu, cuda, cuda:1, ... (default: CUDA when available, under torchrun cuda:LOCAL_RANK; else cpu)",
    )


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
    """Stores into the new flag's ``dest`` (times ``factor``; ``const`` for a flag without a value) and warns that the
    old spelling is deprecated, saying what to use instead (``new``)."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, factor: float | None = None, **kw: Any):
        self.new, self.factor = new, factor
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        hint = f" (given in minutes: {values} min = {values * self.factor:g} s)" if self.factor else ""
        advice = f"use {self.new}" if self.new.startswith("-") else self.new
        print(f"vqgen: warning: {option_string} is deprecated; {advice}{hint}", file=sys.stderr)
        if self.nargs == 0:
            values = self.const
        setattr(namespace, self.dest, values * self.factor if self.factor else values)


def add_deprecated_alias(
    parser: Any,
    old: str,
    *,
    new: str,
    dest: str,
    type: Callable[[str], Any] | None = None,
    factor: float | None = None,
    const: Any = None,
) -> None:
    """Accept ``old`` as a hidden, warning spelling of ``new`` (whose value lands in ``dest``, times ``factor``).

    Without ``type`` the old flag takes no value and stores ``const``. A ``new`` that is not a flag is the whole
    advice (``--conditional``: "it is no longer needed: ...").
    """
    value = {"type": type} if type is not None else {"nargs": 0, "const": const}
    parser.add_argument(
        old, dest=dest, action=_DeprecatedAlias, new=new, factor=factor, default=argparse.SUPPRESS,
        help=argparse.SUPPRESS, **value,
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
        help="YAML or JSON file of options (keys: long flag names, e.g. num-samples); flags given override it "
        "(default: none)",
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
