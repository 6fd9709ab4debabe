# Two commands do everything: `make demo` (set up, then every recipe in quick mode) and
# `make test` (set up, then the test suite). Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATASETS ?= ../shared/datasets
export ZOO_DATA_DIR ?= $(HOME)/tensorflow_datasets
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

.PHONY: demo test test-slow bench import-data clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,backends]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/zoo run all --quick
	$(BIN)/zoo results --results-dir runs/quick-results

# The whole suite on TensorFlow, then the tests marked `backends` (the builders, the GAN's and
# VAE's train steps, the README's builder examples) on JAX and on PyTorch.
# Two pytest workers by default (pytest-xdist; each test file stays on one worker, so a module's
# fixtures run once). TEST_WORKERS=0: one process.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -ra --durations=20 $(XDIST)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -ra -m "backends and not slow" --durations=5 $(XDIST)
	KERAS_BACKEND=torch $(BIN)/python -m pytest -ra -m "backends and not slow" --durations=5 $(XDIST)

# Full-dataset runs (tens of minutes on a CPU); they need the raw files in $(SHARED_DATASETS).
test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -ra -m slow

# Each family trained as its recipe does, as plain Keras and as plain PyTorch, one after the other; rows to results/benchmarks.csv (about 15 minutes on 2 cores; needs `make import-data` once).
bench: $(BIN)/.installed
	$(BIN)/zoo bench all

# Prepare MNIST, Fashion-MNIST and the CIFAR-10 JPEG copy in $(ZOO_DATA_DIR) from local raw files.
import-data: $(BIN)/.installed
	$(BIN)/zoo data import mnist --from $(SHARED_DATASETS)/mnist
	$(BIN)/zoo data import fashion_mnist --from $(SHARED_DATASETS)/fashion_mnist
	$(BIN)/zoo data import cifar10 --from $(SHARED_DATASETS)/cifar10_jpeg75
	$(BIN)/zoo data import imdb_reviews --from $(SHARED_DATASETS)/imdb_reviews
	$(BIN)/zoo data import tiny_shakespeare --from $(SHARED_DATASETS)/tiny_shakespeare

clean:
	rm -rf runs .pytest_cache
