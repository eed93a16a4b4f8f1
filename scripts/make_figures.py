"""Regenerate every picture of the README and the docs (``make figures``); nothing is drawn by hand.

Run from the repository root::

    python scripts/make_figures.py                  # everything: pictures of trained models, then the charts
    python scripts/make_figures.py --only charts    # only the charts (seconds; reads docs/data/*.json)
    python scripts/make_figures.py --only readme gallery --quick   # tiny budgets, to check the script itself
    python scripts/make_figures.py --only quality   # quality per CPU-minute (docs/data/quality_*.json)

One module per job in ``scripts/figures/``: ``readme_models`` (``readme`` and ``gallery``: small two-stage models
trained with fixed seeds, drawn as labelled PNGs), ``benchmark_charts`` (``charts``: the benchmark results in
``docs/data/*.json``, written by ``make bench-data``, see ``docs/benchmarks/method.md``, as matplotlib charts) and
``quality_charts`` (``quality``: those of ``scripts/experiments/``, ``docs/data/quality_*.json``).

Every figure carries a footer with the command that made it, the machine and the date. PNGs are stored with an
adaptive palette (at most 256 colours), which keeps each one well under 200 KB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: scripts.figures, benchmarks

import torch  # noqa: E402

from scripts.figures import benchmark_charts, quality_charts, readme_models  # noqa: E402
from scripts.figures.common import IMAGES  # noqa: E402

THREADS = 2
JOBS = ["readme", "gallery", "charts", "quality"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=JOBS, default=None, help="which figures (default: all)")
    parser.add_argument("--quick", action="store_true", help="a few training steps only: checks the script, ugly")
    parser.add_argument("--out", type=Path, default=IMAGES, help="output folder (default: docs/images)")
    args = parser.parse_args(argv)
    which = set(args.only or JOBS)
    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    if which & {"readme", "gallery"}:
        readme_models.make_pictures(which, args.quick, args.out)
    if "charts" in which:
        benchmark_charts.make_charts(args.out)
    if "quality" in which:
        quality_charts.make_quality_charts(args.out)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
