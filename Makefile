# The two commands of the README: `make run` and `make test`. Both create/refresh .venv idempotently.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): requirements.txt constraints.lock.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.lock.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/b2ner run $(ARGS)

# Fast suite first (default pytest selection), then the marked slow suites (Spark, Ray, training).
test: $(STAMP)
	$(VENV)/bin/pytest -q
	$(VENV)/bin/pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

.PHONY: install run test lint
