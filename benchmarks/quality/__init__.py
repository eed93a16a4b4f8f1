"""Quality benchmarks: minutes to hours each, most on real data; skipped unless ``--quality`` is given. The long
experiments also run as scripts: ``scripts/experiments/``."""
