# django-smsfly developer commands. The README's quick start is `make demo` and `make test`.
#
#   make demo       run the example site with its status sync (SQLite + sandbox, no API key,
#                   no network) on any Python 3.10+; log in at http://127.0.0.1:8000/admin/
#                   as admin / admin (DEMO_ADDR=127.0.0.1:8001 for another address)
#   make test       run the whole test suite: Django 6.1 on Python 3.12+ and Django 5.2 on
#                   Python 3.10+ (a leg without its Python is skipped, and said so), on
#                   SQLite, and on PostgreSQL too when DATABASE_URL is set;
#                   the browser tests (headless Chromium) on Django 6.1 + SQLite only
#                   and, with SMSFLY_ENGINE_TESTS=1, the real task engines (db_worker on
#                   PostgreSQL, RQ on Redis, Celery on RabbitMQ) once
#   make matrix     the compatibility matrix with nox (Python 3.10-3.13 x Django 5.2-6.1)
#   make release-check  build, twine check, run the example site off the wheel
#   make lint       ruff check + ruff format --check
#   make typecheck  mypy --strict with django-stubs
#   make docs       build the Sphinx docs with warnings as errors
#   make bench      run the benchmarks (make bench-quick for a short run)
#   make bench-send the send benchmark alone: PostgreSQL, SQLite, SQLite WAL side by side
#   make bench-campaign  the campaign benchmark: a 100,000-row upload, sends at the shared
#                   rate and at a high rate, one SENDMESSAGE per valid row (a few minutes)
#   make bench-campaign-list  the campaign list's page query as campaigns pile up

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_NEW ?= $(shell scripts/find-python 3.12 --at-least 2>/dev/null)
PY_OLD ?= $(shell scripts/find-python 3.10 --at-least 2>/dev/null)
PY_DEMO ?= $(or $(PY_NEW),$(PY_OLD))

VENV     := .venv
VENV_OLD := .venv-dj52
VENV_DEMO := .venv-demo
PIP_FLAGS := --quiet --disable-pip-version-check
PYTEST_ARGS ?=
# The browser tests (headless Chromium) are slow: they run on one leg only, Django 6.1 on
# SQLite. BROWSER_TESTS=0 leaves them out there too.
BROWSER_TESTS ?= 1
NO_BROWSER := -m "not browser and not engines"
NEW_SQLITE_ARGS := $(if $(filter 1,$(BROWSER_TESTS)),-m "not engines",$(NO_BROWSER))
DEMO_ADDR ?= 127.0.0.1:8000

.PHONY: help demo test test-new test-old test-engines matrix release-check lint typecheck docs clean

help:
	@sed -n 's/^#   //p' Makefile

# A virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -n "$(PY_NEW)" || { echo "Python >= 3.12 is required for $(VENV)"; exit 1; }
	test -x $(VENV)/bin/python || $(PY_NEW) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[dev]' 'Django>=6.1,<6.2'
	touch $@

$(VENV_OLD)/.installed: pyproject.toml
	@test -n "$(PY_OLD)" || { echo "Python >= 3.10 is required for $(VENV_OLD)"; exit 1; }
	test -x $(VENV_OLD)/bin/python || $(PY_OLD) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_OLD)/bin/pip install $(PIP_FLAGS) -e '.[test,demo]' 'Django>=5.2,<5.3'
	touch $@

# The demo's own virtualenv: the newest supported Python here (Django 6.1 on 3.12+,
# Django 5.2 below), with only what the site needs (the app and its demo extra).
$(VENV_DEMO)/.installed: pyproject.toml
	@test -n "$(PY_DEMO)" || { echo "Python >= 3.10 is required for the demo"; exit 1; }
	test -x $(VENV_DEMO)/bin/python || $(PY_DEMO) -m venv $(VENV_DEMO)
	$(VENV_DEMO)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_DEMO)/bin/pip install $(PIP_FLAGS) -e '.[demo]' 'Django>=5.2,<6.2'
	touch $@

# Migrates, creates the admin user, then runs the site and `smsfly_sync --loop` together
# until Ctrl+C (see example_project/run_demo.py). Settings: example_project/.env.example.
demo: $(VENV_DEMO)/.installed
	cd example_project && ../$(VENV_DEMO)/bin/python run_demo.py $(DEMO_ADDR)

# Each leg runs on SQLite; with DATABASE_URL set it runs on that database as well.
# $(3): extra pytest arguments for the SQLite run (the other runs leave the browser out).
# The database runs are independent too: a failure on SQLite does not hide PostgreSQL's.
define run_suite
	@echo "== $(2): SQLite"; \
	env -u DATABASE_URL $(1)/bin/python -m pytest $(3) $(PYTEST_ARGS); status=$$?; \
	if [ -n "$$DATABASE_URL" ]; then \
		echo "== $(2): $${DATABASE_URL%%://*}"; \
		$(1)/bin/python -m pytest $(NO_BROWSER) $(PYTEST_ARGS) || status=1; \
	fi; \
	exit $$status
endef

# Every leg runs whatever became of the others; a summary ends the run (scripts/run-tests).
test:
	@MAKE="$(MAKE)" bash scripts/run-tests

# Real engines with worker processes: opt in with SMSFLY_ENGINE_TESTS=1 (CI does).
test-engines: $(VENV)/.installed
	@if [ "$$SMSFLY_ENGINE_TESTS" = 1 ]; then \
		echo "== real task engines"; \
		$(VENV)/bin/python -m pytest tests/test_engines.py -m engines -s $(PYTEST_ARGS); \
	else \
		echo "== real task engines: skipped (set SMSFLY_ENGINE_TESTS=1)"; \
	fi

# Every cell of the matrix (slow); NOX_SESSIONS picks some, e.g. "tests(3.13-6.0)".
NOX_SESSIONS ?= tests
matrix: $(VENV)/.installed
	$(VENV)/bin/nox -s '$(NOX_SESSIONS)'

release-check: $(VENV)/.installed
	bash scripts/release-check

test-new: $(VENV)/.installed
	$(call run_suite,$(VENV),Django 6.1 / Python 3.12,$(NEW_SQLITE_ARGS))

test-old: $(VENV_OLD)/.installed
	$(call run_suite,$(VENV_OLD),Django 5.2 / Python 3.10,$(NO_BROWSER))

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(VENV_OLD) $(VENV_DEMO) docs/_build .mypy_cache .ruff_cache .pytest_cache

# Benchmarks (see benchmarks/run.py): figures recorded in docs/performance.rst.
# PostgreSQL for the send benchmark: SMSFLY_BENCH_PG_URL (default
# postgres://postgres@127.0.0.1:5432/smsfly_bench, created if missing; skipped if down).
.PHONY: bench bench-quick bench-send
bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run

bench-quick: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --quick

bench-send: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.run --send-only

.PHONY: bench-peer bench-bulk
bench-peer: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.peer

bench-bulk: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.bulk

# SQLite by default; BENCH_CAMPAIGN_ARGS="--database-url postgres://..." for PostgreSQL
# (see benchmarks/bench_campaign.py for the options).
.PHONY: bench-campaign
BENCH_CAMPAIGN_ARGS ?=
bench-campaign: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.bench_campaign $(BENCH_CAMPAIGN_ARGS)

# The campaign list's page query as campaigns pile up (same BENCH_CAMPAIGN_ARGS).
.PHONY: bench-campaign-list
bench-campaign-list: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.bench_campaign_list $(BENCH_CAMPAIGN_ARGS)
