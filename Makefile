# Two commands do all set-up on a fresh machine: `make run` (the demo, end to end) and `make test`.
SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export PYTHONPATH := $(ROOT)
export AIRFLOW_HOME ?= $(ROOT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
PY := $(ROOT)/.venv/bin/python

.PHONY: bootstrap run test test-slow test-cluster test-stack sample clean-lake extracts report bench forecast-demo stack-up stack-down stack-status

bootstrap:
	@bash scripts/bootstrap.sh

## Land the committed sample world, run every ingest DAG through Airflow, print the summary.
run: bootstrap
	@bash scripts/run_pipeline.sh

## The test suite (real Spark, Delta, Airflow). `.ci/run` runs it, then test-slow, test-cluster and test-stack.
test: bootstrap
	@$(PY) -m pytest -m "not slow and not cluster and not stack" -q --durations=15

## Slower tests (larger generated worlds, SIGKILL and concurrent runs); not part of `make test`.
test-slow: bootstrap
	@$(PY) -m pytest -m "slow and not cluster and not stack" -q --durations=15

## The native stack (PostgreSQL, Airflow LocalExecutor, Spark cluster + Connect server, S3 server) driven by its
## scheduler, lake and landing zone in its buckets: backfill, Asset-triggered KPIs, the Airflow UI in Chromium.
test-stack:
	@bash scripts/bootstrap.sh stack
	@$(PY) -m pytest -m stack -q -s --durations=15   # -s: the stack test prints its stage timings and the commands it ran

## Jobs on a real Spark standalone cluster, a Connect server and an S3 server on loopback (tests/cluster).
test-cluster:
	@bash scripts/bootstrap.sh cluster
	@$(PY) -m pytest -m "cluster and not stack" -q --durations=15

## Regenerate the committed sample (bit-for-bit identical).
sample: bootstrap
	@$(PY) -m data_samples.generator --preset sample --seed 42 --out data_samples/landing

## Per-company KPI extract packs (CSV, Excel, Parquet + checksum manifest) for a month: MONTH=yyyy-mm.
extracts: bootstrap
	@$(PY) -m jobs.delivery.extracts $(if $(MONTH),--month $(MONTH),--latest)

## Self-contained HTML reports (one per company, one for planners) for a month: MONTH=yyyy-mm.
report: bootstrap
	@$(PY) -m jobs.delivery.report $(if $(MONTH),--month $(MONTH),--latest)

## The reference benchmark (one Ordos day at 1x/2x/4x, 30 incremental days, DuckDB and pandas peers).
## Not part of the tests; takes long. BENCH_ARGS="--scales 1 --incremental-days 5" for a quick look.
bench: bootstrap
	@$(PY) -m jobs.tools.bench $(BENCH_ARGS)

## The charging-demand forecast on a months-long generated world (cached in .demo/forecast/): the backtest with
## and without the production plan, then forecast_charging_demand through Airflow; prints the served method,
## the table and where the plots are. FORECAST_DEMO_ARGS="--days 60" for a shorter slice, "--no-dag" to skip it.
forecast-demo: bootstrap
	@$(PY) -m jobs.tools.forecast_demo $(FORECAST_DEMO_ARGS)

## The production topology natively, on 127.0.0.1 only: PostgreSQL, Airflow (api-server, scheduler, dag-processor,
## triggerer; LocalExecutor), a Spark standalone cluster, an S3 server. State in .stack/, secrets in ~/.config/coalchain/.
stack-up:
	@bash scripts/bootstrap.sh stack
	@bash scripts/stack.sh up

stack-down:
	@bash scripts/stack.sh down

stack-status:
	@bash scripts/stack.sh status

clean-lake:
	rm -rf $(ROOT)/.lake
