"""The ``vqgen`` command: ``vqgen <subcommand> [options]`` (also ``python -m vqgen``).

Each subcommand lives in its own module of this package, which defines ``add_parser(subparsers)`` (registering the
subcommand, its help and its options, and setting ``func``) and the function that runs it. Add a new module's name to
``SUBCOMMANDS`` below.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["DefaultsHelpFormatter", "build_parser", "main"]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a meaningful default the help does not state."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        default = action.default
        meaningful = default is not None and default is not False and default is not argparse.SUPPRESS
        if meaningful and action.nargs != 0 and "default" not in help and action.option_strings:
            help += " (default: %(default)s)"
        return help


SUBCOMMANDS: list[str] = ["fit", "fit_vqvae", "fit_prior", "sample", "complete", "evaluate", "demo"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="vqgen",
        description="Train, sample and evaluate two-stage generative image models (VQ-VAE + autoregressive prior).",
        epilog="Run 'vqgen <command> --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"vqgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch CPU threads (default: torch's choice; 1 is often fastest for small models on a busy machine)",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        # User errors: print the message, not a traceback (run with -v for the traceback).
        if args.verbose:
            raise
        print(f"vqgen {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
