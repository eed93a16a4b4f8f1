"""Every subcommand's ``--help`` shows each option's default and at least one example; every example parses, and runs
end to end on small data (slow), so that the examples cannot rot.

The examples are read from the help text itself, as a user sees them, then run through ``vqgen.cli.main`` in one
working folder, in the order of ``SUBCOMMANDS`` (``vqgen fit``'s examples write the runs the later examples read),
with the named datasets replaced by the offline ``digits`` and ``SMALL`` appended (later flags win in argparse).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vqgen.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [name.replace("_", "-") for name in SUBCOMMANDS]
TRAIN = ["--train-subset", "64", "--eval-subset", "16", "--batch-size", "16", "--max-steps", "1", "--no-progress"]
SMALL = {  # appended to each command's examples: small data, one step, few samples
    "fit": TRAIN,
    "fit-vqvae": [*TRAIN, "--num-images", "4"],
    "fit-prior": [*TRAIN, "--num-samples", "2"],
    "sample": ["--num-samples", "2"],
    "complete": ["--num-images", "2"],
    "evaluate": ["--num-samples", "8", "--classifier-subset", "64", "--classifier-epochs", "1"],
    "demo": ["--train-subset", "64", "--vqvae-epochs", "1", "--prior-epochs", "1", "--num-samples", "8", *TRAIN[-1:]],
}


def help_text(command: str) -> str:
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return subparsers.choices[command].format_help()


def option_helps(text: str) -> dict[str, str]:
    """``{first flag: its whole entry}`` for every option listed in an argparse help ``text``."""
    entries: dict[str, str] = {}
    flag = None
    for line in text.split("\nexamples:")[0].splitlines():
        start = re.match(r"  (-{1,2}[\w-]+)", line)
        if start:
            flag = start.group(1)
            entries[flag] = line
        elif flag and line.startswith("   "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


def examples(text: str) -> list[str]:
    """The command lines of the help's ``examples:`` epilog."""
    assert "\nexamples:\n" in text
    return [line.strip() for line in text.split("\nexamples:\n", 1)[1].splitlines() if line.strip()]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_every_default_and_an_example(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = help_text(command)
    entries = option_helps(text)
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    taking_values = [
        action.option_strings[0]
        for action in subparsers.choices[command]._actions
        if action.option_strings and action.nargs != 0 and action.help != "==SUPPRESS=="
    ]
    assert taking_values and set(taking_values) <= set(entries)
    silent = [flag for flag in taking_values if "default" not in entries[flag] and "required" not in entries[flag]]
    assert not silent, f"vqgen {command} --help shows no default for {silent}"
    lines = examples(text)
    assert lines and all(line == f"vqgen {command}" or line.startswith(f"vqgen {command} ") for line in lines)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_parses(command):
    for line in examples(help_text(command)):
        args = build_parser().parse_args(shlex.split(line, comments=True)[1:])
        assert args.command == command and callable(args.func), line


def small(argv: list[str]) -> list[str]:
    """``argv`` with named datasets replaced by ``digits`` and the command's ``SMALL`` flags appended."""
    argv = [
        "digits" if before == "--dataset" and arg in ("mnist", "fashion-mnist", "cifar10") else arg
        for before, arg in zip(["", *argv], argv)
    ]
    return [*argv, *SMALL[argv[0]]]


@pytest.mark.slow  # every example of every command, each trained for a step: ~1-2 minutes on a busy 2-core machine
def test_every_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (run_file,) = re.findall(r"```yaml\n(dataset: .*?)```", (ROOT / "docs" / "cli.md").read_text(), re.S)
    (tmp_path / "run.yaml").write_text(run_file)  # the run file of docs/cli.md, which an example of fit reads
    for command in COMMANDS:
        for line in examples(help_text(command)):
            argv = small(shlex.split(line, comments=True)[1:])
            assert main(argv) == 0, (line, capsys.readouterr().err)


def documented_command_lines() -> list[str]:
    """The ``vqgen`` command lines of docs/cli.md's bash blocks (continued lines joined) and the README's inline ones
    that pass flags (``vqgen <command> --help`` aside)."""
    cli = (ROOT / "docs" / "cli.md").read_text()
    lines = [
        line.strip()
        for block in re.findall(r"^```bash\n(.*?)^```", cli, re.S | re.M)
        for line in block.replace("\\\n", " ").splitlines()
        if line.startswith("vqgen ")
    ]
    readme = re.findall(r"`(vqgen [^`<]*? --[^`]*)`", (ROOT / "README.md").read_text())
    return lines + [line for line in readme if "--help" not in line]


def test_every_documented_command_line_parses():
    lines = documented_command_lines()
    assert any("--fid-reference all" in line for line in lines)  # the README's figures, in docs/cli.md
    for line in lines:
        args = build_parser().parse_args(shlex.split(line, comments=True)[1:])
        assert callable(args.func), line
