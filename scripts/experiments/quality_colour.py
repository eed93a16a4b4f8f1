"""Colour quality, one run per process: the command line of ``benchmarks/quality/test_colour.py``.

Run from the repository root, single-threaded (two runs side by side on a 2-core machine share it alike)::

    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data python scripts/experiments/quality_colour.py two-stage
    python scripts/experiments/quality_colour.py pixel                          # both channel orders, 3 min each
    python scripts/experiments/quality_colour.py pixel sequential 30            # one order for 30 minutes
    python scripts/experiments/quality_colour.py pixels cifar10-subset pixelcnn_pp 30

The work is done by ``run_two_stage``, ``run_pixel``, ``run_pixel_curve`` and ``run_pixels`` of the benchmark module
(whose docstring says what each measures); this script parses the arguments, sets one torch thread and calls one.
``VQGEN_BENCH_TIME_SCALE=0.01`` scales every time budget, to check a run in a minute.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: the benchmarks package

import torch  # noqa: E402

from benchmarks.common import MissingDataError, positive_number  # noqa: E402
from benchmarks.quality import test_colour as colour  # noqa: E402


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    runs = parser.add_subparsers(dest="run", required=True, metavar="{two-stage,pixel,pixels}")
    runs.add_parser("two-stage", help="the two-stage model on the CIFAR-10 subset")
    pixel = runs.add_parser("pixel", help="the pixel PixelCNN, both channel orders (or ORDER for MINUTES, a curve)")
    pixel.add_argument("order", nargs="?", choices=colour.CHANNEL_ORDERS)
    pixel.add_argument("minutes", nargs="?", type=positive_number)
    pixels = runs.add_parser("pixels", help="one pixel prior on MNIST or CIFAR-10 pixels for MINUTES, a curve")
    pixels.add_argument("dataset", choices=list(colour.PIXELS_DATASETS))
    pixels.add_argument("prior", choices=list(colour.PIXEL_PRIORS))
    pixels.add_argument("minutes", type=positive_number)
    return parser


def main(argv: list[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    if args.run == "pixel" and (args.order is None) != (args.minutes is None):
        command.error("pixel takes both ORDER and MINUTES, or neither")
    torch.set_num_threads(colour.THREADS)
    try:
        if args.run == "two-stage":
            colour.run_two_stage()
        elif args.run == "pixels":
            colour.run_pixels(args.dataset, args.prior, args.minutes)
        elif args.order is not None:
            colour.run_pixel_curve(args.order, args.minutes)
        else:
            colour.run_pixel()
    except MissingDataError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
