"""The ``vqgen`` command: ``vqgen <subcommand> [options]`` (also ``python -m vqgen``).

Each subcommand lives in its own module of this package, which defines ``add_parser(subparsers)`` (registering the
subcommand with [`add_command`][vqgen.cli.options.add_command], whose one-line help, description and examples are the
module's docstring, adding its options and setting ``func``) and the function that runs it. Add a new module's name to
``SUBCOMMANDS`` below. The flags that several subcommands share are spelt once, in ``vqgen.cli.options``; every
subcommand also takes ``-v``, ``--threads``, ``--device`` and ``--config``.

Exit status: 0 success; 1 a runtime error (missing data, a corrupt or wrong checkpoint, an invalid setting found while
running: the message, without a traceback unless ``-v``); 2 a usage error (argparse: unknown flag, missing argument, bad
number); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .options import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME_ERROR,
    EXIT_USAGE,
    DefaultsHelpFormatter,
    add_common_arguments,
    add_config_argument,
    add_device_argument,
    apply_config,
)

__all__ = ["DefaultsHelpFormatter", "build_parser", "main", "parse_args"]


SUBCOMMANDS: list[str] = ["fit", "fit_vqvae", "fit_prior", "sample", "complete", "evaluate", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="vqgen",
        description="Train, sample and evaluate two-stage generative image models (VQ-VAE + autoregressive prior).",
        epilog="Run 'vqgen <command> --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"vqgen {__version__}")
    add_common_arguments(parser, top_level=True)
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    for subparser in subparsers.choices.values():  # -v and --threads after the subcommand too, --device there only
        general = subparser.add_argument_group("general")
        add_common_arguments(general, top_level=False)
        add_device_argument(general)
        if not any("--config" in action.option_strings for action in subparser._actions):
            add_config_argument(subparser)  # every subcommand takes --config; fit and fit-vqvae read their own
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; a subcommand's ``--config`` file supplies the defaults of its flags, so flags given win.

    Raises:
        ValueError: the ``--config`` file names an option the subcommand does not have, or a value its flag rejects.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "flags_from_config", False) and args.config:
        (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        apply_config(subparsers.choices[args.command], args.config)
        args = parser.parse_args(argv)
    return args


def _message(error: BaseException) -> str:
    """The error's message, with the library's hints turned into the command line's spelling."""
    text = str(error).replace("pass download=True", "pass --download").replace("(download=True)", "(--download)")
    return text.replace("point root= / $VQGEN_DATA", "point --data-root or $VQGEN_DATA")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    group_before = _process_group_running()
    try:
        if getattr(args, "flags_from_config", False) and args.config:
            args = parse_args(argv)
        return int(args.func(args) or EXIT_OK)
    except (ValueError, TypeError, OSError, RuntimeError) as error:
        # Runtime errors: print the message, not a traceback (run with -v for the traceback).
        if args.verbose:
            raise
        print(f"vqgen {args.command}: error: {_message(error)}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if not group_before and _process_group_running():  # joined under torchrun by this command: leave it
            import torch.distributed

            torch.distributed.destroy_process_group()


def _process_group_running() -> bool:
    """[`is_distributed`][vqgen.distributed.is_distributed], without importing torch when the command did not."""
    if "torch.distributed" not in sys.modules:
        return False
    from ..distributed import is_distributed

    return is_distributed()
