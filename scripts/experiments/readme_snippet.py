"""The README's first Python block, executed as written on MNIST and scored: the command line of
``benchmarks/quality/test_readme_snippet.py``.

Run from the repository root::

    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data python scripts/experiments/readme_snippet.py
    python scripts/experiments/readme_snippet.py --time-scale 0.01      # the preset's two budgets x 0.01

The work is done by ``run_snippet`` of the benchmark module (whose docstring says what it records); this script
parses the arguments, sets the torch threads of the quality budget benchmark and calls it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: the benchmarks package

import torch  # noqa: E402

from benchmarks.common import MissingDataError, positive_number  # noqa: E402
from benchmarks.quality import test_readme_snippet as snippet  # noqa: E402


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--time-scale", type=positive_number, default=os.environ.get(snippet.SCALE, "1"),
        help=f"multiplies the two max_seconds of the preset the snippet trains (default ${snippet.SCALE}, else 1)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(snippet.THREADS)
    try:
        snippet.run_snippet(float(args.time_scale))
    except MissingDataError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
