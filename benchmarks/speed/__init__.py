"""Speed benchmarks: seconds to minutes each, run by ``pytest benchmarks/ --benchmark-only``."""
