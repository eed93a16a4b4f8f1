"""Regenerate the benchmark JSON that ``docs/benchmarks.md`` cites from ``docs/data/`` (``make bench-data``).

Run from the repository root, on a quiet machine (check ``uptime``), with the real data in ``$VQGEN_DATA``::

    python scripts/bench_data.py --list                       # each JSON and the command that writes it
    python scripts/bench_data.py --only sampling-speed quantizer-speed prior_flops     # the speed charts (minutes)
    python scripts/bench_data.py --only 'quality_trial_*'     # shell-style patterns over the JSON names
    python scripts/bench_data.py                              # everything, one command after another: about 8 hours
    python scripts/bench_data.py --check                      # runs nothing: every cited JSON has a command that exists

``SOURCES`` below is the one table of which command writes which JSON; each command runs with
``VQGEN_BENCH_JSON=docs/data`` (and its own environment, e.g. one thread for the hour-long curves), in the order of
the table (the curves reuse the stage-1 model that ``main mnist`` saves in ``$VQGEN_BENCH_OUT``). A JSON from a run
that was never repeated keeps its own ``command``, which names the script of its time.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
PAGE = ROOT / "docs" / "benchmarks.md"
PYTEST = ("pytest", "--benchmark-only", "-p", "no:cacheprovider")
BUDGET = ("python", "scripts/experiments/quality_budget.py")
COLOUR = ("python", "scripts/experiments/quality_colour.py")
ONE_THREAD = {"VQGEN_BENCH_THREADS": "1"}  # the hour-long curves ran on one core each, two side by side


@dataclass(frozen=True)
class Source:
    """A command (run from the repository root) and the JSON it writes into ``docs/data`` (names without ``.json``)."""

    outputs: tuple[str, ...]
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as a user types it, its environment first."""
        return " ".join([*(f"{key}={value}" for key, value in self.env.items()), *map(shlex.quote, self.command)])


TRIALS = ("baseline", "batch128", "cosine", "dropout", "grid14", "k1024", "k128", "latent32", "lr2e-3", "prior_large",
          "weight_average")  # fmt: skip
SOURCES = [
    Source(("sampling-speed",), (*PYTEST, "benchmarks/speed/test_sampling.py")),
    Source(("quantizer-speed",), (*PYTEST, "benchmarks/speed/test_quantizers.py")),
    Source(("prior_flops",), (*PYTEST, "benchmarks/speed/test_prior_flops.py")),
    Source(("prior_flops_1t",), (*PYTEST, "benchmarks/speed/test_prior_flops.py"), {"PRIOR_FLOPS_THREADS": "1"}),
    Source(("prior-quality",), (*PYTEST, "--quality", "benchmarks/quality/test_pixel_priors.py")),
    Source(("two-stage-quality",), (*PYTEST, "--quality", "benchmarks/quality/test_two_stage.py")),
    Source(("quality_budget_mnist",), (*BUDGET, "main", "mnist")),
    Source(("quality_budget_fashion-mnist",), (*BUDGET, "main", "fashion-mnist")),
    *(Source((f"quality_curve_mnist_{prior}",), (*BUDGET, "curve", "mnist", prior))
      for prior in ("rnn", "pixelcnn", "gated_default")),
    *(Source((f"quality_curve_mnist_{prior}_60min",), (*BUDGET, "curve", "mnist", prior, "60"), ONE_THREAD)
      for prior in ("gated_readme", "gated_default")),
    *(Source((f"quality_curve_mnist_{prior}_10min",), (*BUDGET, "curve", "mnist", prior, "10"), ONE_THREAD)
      for prior in ("gated_readme_average", "gated_readme_dropout")),
    *(Source((f"quality_budget_{dataset}_{variant}",), (*BUDGET, "main", dataset, variant))
      for dataset, variant in (("mnist", "k128"), ("mnist", "weight_average"), ("fashion-mnist", "grid14"),
                               ("fashion-mnist", "grid14_k128"), ("fashion-mnist", "grid14_40min"),
                               ("fashion-mnist", "grid14_deep"))),
    *(Source((f"quality_trial_mnist_{name}",), (*BUDGET, "trial", "mnist", name)) for name in TRIALS),
    Source(("quality_colour_two-stage",), (*COLOUR, "two-stage")),
    Source(("quality_colour_pixel",), (*COLOUR, "pixel")),
    *(Source((f"quality_colour_pixel_{order}_30min",), (*COLOUR, "pixel", order, "30"))
      for order in ("sequential", "parallel")),
]  # fmt: skip


def by_output() -> dict[str, Source]:
    """``{JSON name: the source that writes it}``."""
    return {name: source for source in SOURCES for name in source.outputs}


def cited() -> set[str]:
    """The JSON names of ``docs/data`` that the benchmarks page cites: by name, or by a pattern such as
    ``docs/data/quality_*.json`` or ``docs/data/*.json`` (matched against the files there)."""
    files = {path.stem for path in DATA.glob("*.json")}
    names = set()
    for pattern in re.findall(r"docs/data/([\w.*-]+)\.json", PAGE.read_text()):
        names |= set(fnmatch.filter(files, pattern)) if "*" in pattern else {pattern}
    return names


def _driver(script: Path):
    """The driver script ``script`` as a module (its ``parser()`` checks a command's arguments)."""
    spec = importlib.util.spec_from_file_location(f"bench_data_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def problems() -> list[str]:
    """What keeps ``SOURCES`` from regenerating the cited JSON: a cited JSON no command writes, a JSON written twice,
    a command whose file is missing or whose arguments its driver refuses. Empty when all is well."""
    found = []
    outputs = [name for source in SOURCES for name in source.outputs]
    found += [f"{name}.json is written by more than one command" for name in sorted(set(outputs)) if
              outputs.count(name) > 1]  # fmt: skip
    found += [f"docs/benchmarks.md cites docs/data/{name}.json but no command of SOURCES writes it"
              for name in sorted(cited() - set(outputs))]  # fmt: skip
    drivers: dict[Path, object] = {}
    for source in SOURCES:
        program, *args = source.command
        paths = [arg for arg in args if arg.endswith(".py")]
        missing = [path for path in paths if not (ROOT / path).is_file()]
        if missing:
            found.append(f"{source.shell()}: no {', '.join(missing)}")
            continue
        if program == "python":
            script = ROOT / paths[0]
            driver = drivers.setdefault(script, _driver(script))
            try:
                driver.parser().parse_args(args[1:])
            except SystemExit:
                found.append(f"{source.shell()}: {paths[0]} refuses these arguments")
    return found


def run(source: Source) -> int:
    """Run ``source``'s command from the repository root with ``VQGEN_BENCH_JSON=docs/data``; its exit status."""
    program, *args = source.command
    argv = [sys.executable, *(["-m", "pytest"] if program == "pytest" else []), *args]
    env = {**os.environ, "VQGEN_BENCH_JSON": str(DATA), **source.env}
    print(f"$ {source.shell()}", flush=True)
    started = time.perf_counter()
    status = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
    print(f"  exit {status} after {time.perf_counter() - started:.0f} s", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="JSON names or shell patterns (default: all)")
    parser.add_argument("--list", action="store_true", help="print each JSON and its command, run nothing")
    parser.add_argument("--check", action="store_true", help="check the table against the page, run nothing")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    chosen = [s for s in SOURCES if not args.only or any(fnmatch.filter(s.outputs, p) for p in args.only)]
    if not chosen:
        parser.error(f"--only {' '.join(args.only)} matches no JSON; see --list")
    if args.list:
        for source in chosen:
            print(f"{', '.join(name + '.json' for name in source.outputs):<48} {source.shell()}")
        return 0
    failed = [source.shell() for source in chosen if run(source) != 0]
    for command in failed:
        print(f"failed: {command}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
