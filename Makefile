# The README's commands. Everything a fresh machine needs (Python >= 3.11, Java >= 17, Maven)
# is installed or fetched from here; nothing is assumed installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist); each integration process starts a broker of its own.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist worksteal

.PHONY: setup system-deps demo test unit integration bench bench-smoke lint docs broker-start broker-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# prometheus, docker-compose (and java/maven if absent) from Debian, for the integration tests.
system-deps:
	scripts/system-deps.sh

demo: setup
	$(BIN)/streamlearn demo

test: setup system-deps
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest $(PYTEST_PARALLEL)

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

unit: setup
	$(BIN)/pytest tests/unit src/streamlearn

integration: setup system-deps
	$(BIN)/pytest $(PYTEST_PARALLEL) tests/integration

bench: setup
	$(PY) -m benchmarks
	$(PY) -m benchmarks.feature_value
	$(PY) -m benchmarks.metric_cost
	$(PY) -m benchmarks.scale_out
	$(PY) -m benchmarks.drift_policies
	$(PY) -m benchmarks.policy_throughput
	$(PY) -m benchmarks.guarantees

bench-smoke: setup
	$(PY) -m benchmarks --smoke

# Not in CI (its 60-second form is: tests/integration/test_soak.py). The fraud worker is
# warmed up to its steady state (~197,000 events), its maximum rate measured on that state,
# then it is fed at 70% of it for 30 minutes (about 33 min in all); lag, RSS and p99 over
# time to benchmarks/results/soak.{md,png,json}; benchmarks/README.md has the method.
# Shorter: make soak SOAK_ARGS="--minutes 5" (python -m benchmarks.soak --help).
SOAK_ARGS ?=
.PHONY: soak
soak: setup
	$(PY) -m benchmarks.soak $(SOAK_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

broker-start: setup
	$(BIN)/streamlearn broker start

broker-stop: setup
	$(BIN)/streamlearn broker stop

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
