# Two commands: `make demo` (install + run the whole graph on generated data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PATH := $(BIN):$(PATH)

.PHONY: setup java browser postgres demo test lint validate contracts dev desk stack stack-test

$(VENV)/.installed: pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Spark 4 runs on Java 17 or 21. Install one where the machine has none and we may.
java:
	@if java -version 2>&1 | grep -qE 'version "(17|21)'; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Java 17 for Spark..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else \
		echo "NOTE: no Java 17/21 found; the Spark engine needs one (apt-get install openjdk-17-jre-headless)."; \
	fi

# The sales desk's browser tests drive the machine's Chromium (no browser download).
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Chromium for the sales desk's browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	else \
		echo "NOTE: no Chromium found; the desk's browser tests need one (apt-get install chromium)."; \
	fi

# `make stack` runs a throwaway PostgreSQL cluster from the machine's server binaries.
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing PostgreSQL for the stack..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "NOTE: no PostgreSQL server found; make stack needs one (apt-get install postgresql)."; \
	fi

setup: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml java browser postgres

demo: setup
	$(BIN)/churn-assets demo

dev: setup
	$(BIN)/dagster dev

desk: setup
	$(BIN)/churn-assets desk

# The production shape on this machine: PostgreSQL, S3 (moto), code server, webserver, daemon;
# a generated week lands in S3 and the sensors run it. Ctrl-C stops everything.
stack: setup
	$(BIN)/churn-assets stack --sample

# The stack across restarts of every service (several minutes; not in `make test` yet, see README).
stack-test: setup
	$(BIN)/python -m pytest -q -m stack_integration churn_assets_tests/test_stack_integration.py

lint: setup
	$(BIN)/ruff check churn_assets churn_assets_tests benchmarks
	$(BIN)/ruff format --check churn_assets churn_assets_tests benchmarks

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/dg check defs

# The data contracts on a generated clean history; model-quality monitors (model, drift,
# online metrics) are printed but do not gate: on a small sample they are statistical noise.
contracts: setup
	$(BIN)/churn-assets check --sample --gate contracts --failures-only

test: lint validate
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory contracts
