# Every target installs what it needs into .venv from pyproject.toml: a fresh clone needs only
# Python >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA := data
RUN_ENV := BILLHOOK_EGRESS_ALLOW=$${BILLHOOK_EGRESS_ALLOW:-127.0.0.0/8,::1/128}

.PHONY: run test test-fast lint typecheck pytest screenshots receiver bench bench-quick wrk clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "billhook needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

$(DATA)/.api_key: | $(BIN)/python
	mkdir -p -m 700 $(DATA)
	$(BIN)/python -c 'import secrets; print("bh_" + secrets.token_urlsafe(32))' > $@
	chmod 600 $@

# The key endpoint secrets are sealed with at rest (keep it apart from the database's backups).
$(DATA)/.secret_key: | $(BIN)/python
	mkdir -p -m 700 $(DATA)
	(umask 077; $(BIN)/python -c 'import secrets; print("bsk_" + secrets.token_urlsafe(32))' > $@)

## make run: install, migrate, start the hub on SQLite (./data/billhook.db) at http://127.0.0.1:8080
## (the URL and the API key are printed once the port is bound)
run: $(VENV)/.installed $(DATA)/.api_key $(DATA)/.secret_key
	@export BILLHOOK_API_KEY=$${BILLHOOK_API_KEY:-$$(cat $(DATA)/.api_key)} $(RUN_ENV) \
	  BILLHOOK_SECRET_KEY=$${BILLHOOK_SECRET_KEY:-$$(cat $(DATA)/.secret_key)}; \
	exec $(BIN)/billhook serve --show-key

## make receiver SECRET=whsec_...: the bundled reference receiver on http://127.0.0.1:9000/webhooks
receiver: $(VENV)/.installed
	mkdir -p $(DATA)
	$(BIN)/python -m subscribers.receiver --port $${PORT:-9000} --db $(DATA)/received.db --secret "$${SECRET:?set SECRET=whsec_... (the endpoint's secret)}"

## make test: ruff (lint + format check), mypy, the whole pytest suite
test: lint typecheck pytest

## make test-fast: the suite without the tests that start billhook processes (marked slow)
test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

## make screenshots: the browser test run that takes docs/console.png (the README's picture)
screenshots: $(VENV)/.installed-dev
	BILLHOOK_SCREENSHOTS=docs $(BIN)/pytest -q tests/test_console_browser.py -k outage

## make bench: every scenario, 3 runs each, with peers and ceilings (docs/performance.md);
## make bench DB=postgres: PostgreSQL beside SQLite in the same run (this machine's PostgreSQL)
## make bench BROKERS=1: delivery into and ingest from RabbitMQ, NATS and Redis beside HTTP
bench: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench $(if $(DB),--db $(DB)) $(if $(BROKERS),--brokers)

## make bench-quick: small sizes, one run each (< 60 s), a sanity check
bench-quick: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench --quick $(if $(DB),--db $(DB)) $(if $(BROKERS),--brokers)

# wrk (Debian package) is the closed-loop load generator; without it the bench uses its own.
wrk:
	@command -v wrk >/dev/null 2>&1 || (apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1) \
	  || sudo -n apt-get install -y -qq wrk >/dev/null 2>&1) \
	  || echo "wrk could not be installed: the benchmark uses its Python load generator"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
