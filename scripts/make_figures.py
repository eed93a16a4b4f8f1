"""Regenerate every picture of the README and the docs (``make figures``); nothing is drawn by hand.

Run from the repository root::

    python scripts/make_figures.py                  # everything: pictures of trained models, then the charts
    python scripts/make_figures.py --only charts    # only the charts (seconds; reads docs/data/*.json)
    python scripts/make_figures.py --only readme gallery --quick   # tiny budgets, to check the script itself
    python scripts/make_figures.py --only quality   # quality per CPU-minute (docs/data/quality_*.json)
    python scripts/make_figures.py --only readme --model runs/mnist    # readme.png of a trained mnist-small model

One module per job in ``scripts/figures/``: ``readme_models`` (``readme``: the README's configuration, the preset
``mnist-small``, trained for its 5 + 15 CPU-minutes or read from ``--model``, its samples checked by the classifier of
the README's figures, trained or read from ``--classifier``; ``gallery``: small models of the demo presets trained
with fixed seeds; both drawn as labelled PNGs), ``benchmark_charts`` (``charts``: the benchmark results in
``docs/data/*.json``, written by ``make bench-data``, see ``docs/benchmarks/method.md``, as matplotlib charts) and
``quality_charts`` (``quality``: those of ``scripts/experiments/``, ``docs/data/quality_*.json``).

Every figure carries a footer with the command that made it, the machine and the date. PNGs are stored with an
adaptive palette (at most 256 colours), which keeps each one well under 200 KB.
"""

from __future__ import annotations

import argparse
import shlex
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
    parser.add_argument(
        "--model", type=Path, metavar="DIR",
        help="readme.png: draw this trained TwoStageModel of the mnist-small preset (a save_pretrained or vqgen fit "
        "folder, e.g. runs/mnist) instead of training one here (20 CPU-minutes)",
    )  # fmt: skip
    parser.add_argument(
        "--classifier", type=Path, metavar="DIR",
        help="readme.png: check the samples with this saved FeatureClassifier instead of training one here (as "
        "vqgen evaluate --classifier-subset 30000 --classifier-epochs 2 does)",
    )  # fmt: skip
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    which = set(args.only or JOBS)
    if (args.model or args.classifier) and "readme" not in which:
        parser.error("--model and --classifier are for readme.png: add --only readme")
    command = shlex.join(["python", "scripts/make_figures.py", *argv])
    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    if which & {"readme", "gallery"}:
        try:
            readme_models.make_pictures(which, args.quick, args.out, command=command, model_path=args.model,
                                        classifier_path=args.classifier)  # fmt: skip
        except (ValueError, FileNotFoundError) as error:  # not a model of the preset, not a classifier, no folder
            print(f"make_figures.py: error: {error}", file=sys.stderr)
            return 2
    if "charts" in which:
        benchmark_charts.make_charts(args.out)
    if "quality" in which:
        quality_charts.make_quality_charts(args.out)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
