"""Quality per CPU-minute, one run per process: the command line of ``benchmarks/quality/test_budget.py``.

Run from the repository root (the README's configuration for 20 minutes, another prior's curve on its stage-1 model,
a one-change trial)::

    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data python scripts/experiments/quality_budget.py main mnist
    python scripts/experiments/quality_budget.py main fashion-mnist grid14          # a variant, its own budget
    python scripts/experiments/quality_budget.py curve mnist rnn                    # CURVE_SECONDS of the prior
    python scripts/experiments/quality_budget.py curve mnist gated_readme 60        # 60 minutes instead
    python scripts/experiments/quality_budget.py curve fashion-mnist transformer 20 grid14  # on main's grid14 model
    VQGEN_BENCH_THREADS=1 python scripts/experiments/quality_budget.py sweep mnist  # the transformer's tuning sweep
    python scripts/experiments/quality_budget.py temperatures fashion-mnist 20 gated_readme transformer --variant grid14
    python scripts/experiments/quality_budget.py trial mnist k128

The work is done by ``run_main``, ``run_curve`` and ``run_trial`` of the benchmark module (whose docstring says what
each measures); this script parses the arguments, sets ``VQGEN_BENCH_THREADS`` torch threads (default 2) and calls
one. ``VQGEN_BENCH_TIME_SCALE=0.01`` scales every time budget, to check a run in a minute or two.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: the benchmarks package

import torch  # noqa: E402

from benchmarks.common import MissingDataError, positive_number  # noqa: E402
from benchmarks.quality import test_budget as budget  # noqa: E402


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    runs = parser.add_subparsers(dest="run", required=True, metavar="{main,curve,sweep,temperatures,trial}")
    main = runs.add_parser("main", help="the README's configuration (or a VARIANT): floor, stage 1, prior curve")
    main.add_argument("dataset", choices=budget.DATASETS)
    main.add_argument("variant", nargs="?", choices=list(budget.VARIANTS), help="a trial's change, its own budget")
    curve = runs.add_parser("curve", help="another prior on the stage-1 model `main DATASET` saved")
    curve.add_argument("dataset", choices=budget.DATASETS)
    curve.add_argument("prior", choices=list(budget.CURVE_PRIORS))
    curve.add_argument("minutes", nargs="?", type=positive_number, help="train for this long instead of CURVE_SECONDS")
    curve.add_argument("variant", nargs="?", choices=list(budget.VARIANTS), help="on main VARIANT's stage 1")
    sweep = runs.add_parser("sweep", help="the transformer's tuning sweep: every TRANSFORMER_TRIALS curve")
    sweep.add_argument("dataset", choices=budget.DATASETS)
    sweep.add_argument("minutes", nargs="?", default="4", type=positive_number, help="each trial's minutes")
    temps = runs.add_parser("temperatures", help="the final priors of curves MINUTES [VARIANT] at two temperatures")
    temps.add_argument("dataset", choices=budget.DATASETS)
    temps.add_argument("minutes", type=positive_number)
    temps.add_argument("priors", nargs="+", choices=list(budget.CURVE_PRIORS), metavar="PRIOR")
    temps.add_argument("--variant", choices=list(budget.VARIANTS), help="the curves ran on main VARIANT's stage 1")
    trial = runs.add_parser("trial", help="one change to the README's configuration, at TRIAL_SECONDS")
    trial.add_argument("dataset", choices=budget.DATASETS)
    trial.add_argument("name", choices=list(budget.TRIALS))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(budget.THREADS)
    try:
        if args.run == "main":
            budget.run_main(args.dataset, args.variant)
        elif args.run == "curve":
            budget.run_curve(args.dataset, args.prior, args.minutes, args.variant)
        elif args.run == "temperatures":
            budget.run_temperatures(args.dataset, args.minutes, args.variant, args.priors)
        elif args.run == "sweep":
            budget.run_sweep(args.dataset, args.minutes)
        else:
            budget.run_trial(args.dataset, args.name)
    except MissingDataError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
