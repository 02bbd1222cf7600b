# QianLi 签离 — `make run` serves the API on http://127.0.0.1:8000; `make test` runs the whole suite.
# Both set everything up first (Debian packages, .venv, Redis, PostgreSQL for tests), idempotently.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
PG_TEST_URL := postgresql+psycopg://qianli:qianli@127.0.0.1:5432/qianli_test
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system python services run test test-sqlite test-postgres lint bench demo contract lock clean

setup: system python services

system:
	@bash scripts/install-system.sh

python:
	@bash scripts/install-python.sh 2> >(grep -v "is ignored: it is neither" >&2)

services:
	@bash scripts/services.sh --postgres

run: setup
	@bash scripts/run-dev.sh

lint: python
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup lint test-sqlite test-postgres

test-sqlite:
	QIANLI_ENV=test QIANLI_TEST_REDIS_DB=2 $(PYTEST) -q -p no:cacheprovider

test-postgres:
	QIANLI_ENV=test QIANLI_TEST_REDIS_DB=4 QIANLI_TEST_DATABASE_URL=$(PG_TEST_URL) $(PYTEST) -q -p no:cacheprovider -m db

lock:
	@bash scripts/lock-python.sh

contract: python
	QIANLI_ENV=development $(VENV)/bin/qianli openapi miniprogram_contract/openapi.json

bench: setup
	$(PY) bench/face.py
	$(PY) bench/sign.py
	$(PY) bench/reminders.py
	$(PY) bench/api.py

demo: setup
	@bash scripts/demo.sh

clean:
	rm -rf var .pytest_cache
