# Set-up and the project's two everyday jobs. `make demo` and `make test` each create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test slow bench bench-data figures docs lint clean

# torch is pinned through constraints.txt: a fresh machine gets the local CPU wheel, never a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,docs,bench]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)  ## train a small VQ-VAE + gated PixelCNN offline and write PNGs + metrics to demo-output/
	$(BIN)/vqgen demo --output demo-output

test: $(STAMP)  ## the default test suite (long tests are marked slow and left out)
	$(BIN)/python -m pytest

slow: $(STAMP)  ## the quality tests on real data
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)  ## the speed benchmarks, minutes (--quality adds the long ones; --benchmark-goals asserts the goals)
	$(BIN)/python -m pytest benchmarks/ --benchmark-only

# Every JSON the benchmarks pages cite, each from its command (scripts/bench_data.py --list); on a quiet machine
# (check `uptime`). ONLY='sampling-speed quality_trial_*' reruns some. Then the summary table of docs/benchmarks.md
# is regenerated from docs/data/*.json (scripts/bench_summary.py).
bench-data: $(STAMP)  ## rerun the benchmarks behind docs/data/*.json, writing there, and regenerate the summary (hours; needs $$VQGEN_DATA)
	$(BIN)/python scripts/bench_data.py $(if $(ONLY),--only $(ONLY))
	$(BIN)/python scripts/bench_summary.py --write

figures: $(STAMP)  ## regenerate every picture of the README and docs (fixed seeds; reads $$VQGEN_DATA; 34 min on a busy 2-core machine, plus 20 to train readme.png's model unless given one: see scripts/make_figures.py --model)
	$(BIN)/python scripts/make_figures.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check vqgen tests benchmarks scripts

clean:
	rm -rf $(VENV) site .pytest_cache .benchmarks
