# The two commands a newcomer needs: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SCALE  ?= 2.5
DAYS   ?= 547
START  ?= 2024-01-01
SEED   ?= 42
# Where dbt builds in `make bench` (duckdb or spark: docs/spark.md)
ENGINE ?= duckdb
# Test files run on this many workers (each builds its own tiny session warehouse; the
# default-scale one is built once and shared).
TEST_WORKERS ?= 2

# Telemetry off everywhere: these machines have no internet and nothing may wait on it.
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false
export DAGSTER_DISABLE_TELEMETRY := true

.PHONY: run test dev data docs bench clean install install-dev bi bi-install spark-install test-spark-full

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make spark-install: the Spark extra (dbt-spark, pyspark) and, where `java` is missing, Debian's
## headless JRE (docs/spark.md)
$(VENV)/.installed-spark: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[spark]'
	touch $@

spark-install: $(VENV)/.installed-spark
	@command -v java >/dev/null 2>&1 || apt-get install -y default-jre-headless >/dev/null

## make run: generate sample data if data/landing is empty, then ingest -> build -> gate -> publish
run: $(VENV)/.installed
	$(BIN)/cs-warehouse run --generate-if-empty --scale $(SCALE) --start $(START) --days $(DAYS) --seed $(SEED)

## make test: the whole test suite (tiny scale)
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## make test-spark-full: the Spark test file with dbt's unit tests on Spark too (2-4 more minutes)
test-spark-full: $(VENV)/.installed-dev $(VENV)/.installed-spark
	CSWH_TEST_SPARK_FULL=1 $(BIN)/python -m pytest tests/spark $(PYTEST_ARGS)

## make dev: the Dagster UI on the embedded defaults (http://127.0.0.1:3000)
dev: $(VENV)/.installed
	$(BIN)/cs-warehouse dev

## make data SCALE=1 DAYS=365: (re)generate the sample landing files
data: $(VENV)/.installed
	$(BIN)/cs-warehouse generate --scale $(SCALE) --start $(START) --days $(DAYS) --seed $(SEED)

## make docs: dbt docs, offline, under data/reports/dbt-docs/
docs: $(VENV)/.installed
	$(BIN)/cs-warehouse docs

## make bench SCALE=1 [ENGINE=spark]: the scale benchmark against its DuckDB-only floor
bench: $(VENV)/.installed
	$(BIN)/cs-warehouse bench --scale $(SCALE) --engine $(ENGINE)

## make bi: Superset on http://127.0.0.1:8088 with the dashboards imported (reads the published file)
# Superset has its own venv: it needs SQLAlchemy 1.4, the pipeline 2.0 (docs/bi.md#superset-dashboards).
BI_VENV := .venv-bi
$(BI_VENV)/.installed: bi/superset/requirements.txt
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BI_VENV)/bin/python -m pip install --quiet -r bi/superset/requirements.txt
	touch $@

bi-install: $(BI_VENV)/.installed

bi: $(VENV)/.installed $(BI_VENV)/.installed
	$(BIN)/python bi/superset/run.py

clean:
	rm -rf data/warehouse data/reports data/outbox data/dagster_home dbt/target dbt/logs
