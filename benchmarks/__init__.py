"""vqgen's benchmarks: ``speed/`` (seconds to minutes each, the default ``pytest benchmarks/ --benchmark-only``) and
``quality/`` (long, opt-in with ``--quality``); ``common.py`` holds what they and ``scripts/experiments/`` share."""
