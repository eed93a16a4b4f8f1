"""Figures (``make_figures.py``, ``figures/``), experiment drivers (``experiments/``) and ``bench_data.py``; run them
from the repository root (see each script's ``--help``)."""
