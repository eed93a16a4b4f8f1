"""The figures of the README and the docs, by job: ``readme_models`` (pictures of trained models),
``benchmark_charts`` (charts of the speed and quality benchmarks' JSON), ``quality_charts`` (charts of the quality
per CPU-minute experiments); ``common`` holds the footer and the PNG writer. ``scripts/make_figures.py`` runs them."""
