"""Command lines of the long quality experiments: each parses its arguments and calls a ``run_*`` function of its
benchmark module in ``benchmarks/quality/``."""
