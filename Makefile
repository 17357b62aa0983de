# The two commands of the README: `make run` and `make test`. Both create/refresh .venv idempotently.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): requirements.txt constraints.lock.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.lock.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $(STAMP)

# Delta Lake jars for the Spark session (spark_jobs/session.py puts them on spark.jars; nothing is downloaded
# at run time). Fetched once with the machine's Maven; a jar already in place is never fetched again.
DELTA_VERSION := 4.4.0
DELTA_SCALA := 4.2_2.13
JARS ?= $(VENV)/jars
DELTA_JARS := $(JARS)/delta-spark_$(DELTA_SCALA)-$(DELTA_VERSION).jar $(JARS)/delta-storage-$(DELTA_VERSION).jar
MVN ?= mvn

$(JARS)/delta-spark_$(DELTA_SCALA)-$(DELTA_VERSION).jar:
	$(MVN) -q dependency:copy -Dartifact=io.delta:delta-spark_$(DELTA_SCALA):$(DELTA_VERSION) -DoutputDirectory=$(JARS)

$(JARS)/delta-storage-$(DELTA_VERSION).jar:
	$(MVN) -q dependency:copy -Dartifact=io.delta:delta-storage:$(DELTA_VERSION) -DoutputDirectory=$(JARS)

jars: $(DELTA_JARS)

install: $(STAMP) $(DELTA_JARS)

run: $(STAMP) $(DELTA_JARS)
	$(VENV)/bin/b2ner run $(ARGS)

# Fast suite first (default pytest selection), then the marked slow suites (Spark, Ray, training).
test: $(STAMP) $(DELTA_JARS)
	$(VENV)/bin/pytest -q
	$(VENV)/bin/pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

.PHONY: install jars run test lint
