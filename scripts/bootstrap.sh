#!/usr/bin/env bash
# One-time (then cached) set-up shared by `make run` and `make test`:
#   1. a virtual environment in .venv with the pinned dependencies of requirements.lock;
#   2. the Delta Lake JARs for the pinned delta-spark, resolved once through Maven into a cache
#      outside the repo, so later runs need no network;
#   3. an Airflow home in .airflow (ignored) with an initialised metadata database.
# Re-running is cheap: each step is skipped when its stamp matches.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="$ROOT/.venv"
DELTA_VERSION="4.0.1"
JAR_DIR="${COALCHAIN_JAR_DIR:-$HOME/.cache/coalchain/jars/delta-$DELTA_VERSION}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# 1. Python environment -------------------------------------------------------------------------
lock_hash="$(sha256sum requirements.lock | cut -c1-16)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.lock_hash" 2>/dev/null)" != "$lock_hash" ]]; then
  log "creating virtual environment in .venv (pinned by requirements.lock)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements.lock
  # Guard against the known pyspark-client clash: pyspark must import after the install.
  "$VENV/bin/python" -c "import pyspark, delta, airflow, great_expectations" >/dev/null 2>&1 \
    || { log "ERROR: installed packages do not import (pyspark/delta/airflow/great_expectations)"; exit 1; }
  echo "$lock_hash" > "$VENV/.lock_hash"
fi

# 2. Delta Lake JARs through Maven, cached outside the repo --------------------------------------
if [[ ! -f "$JAR_DIR/delta-spark_2.13-$DELTA_VERSION.jar" || ! -f "$JAR_DIR/delta-storage-$DELTA_VERSION.jar" ]]; then
  command -v mvn >/dev/null 2>&1 || { log "ERROR: mvn not found; it is needed once to fetch the Delta JARs"; exit 1; }
  log "resolving Delta Lake $DELTA_VERSION JARs with Maven into $JAR_DIR"
  mkdir -p "$JAR_DIR"
  for artifact in "io.delta:delta-spark_2.13:$DELTA_VERSION" "io.delta:delta-storage:$DELTA_VERSION"; do
    mvn -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$JAR_DIR" \
      || { log "ERROR: Maven could not fetch $artifact"; exit 1; }
  done
fi

# 3. Airflow home ---------------------------------------------------------------------------------
mkdir -p "$AIRFLOW_HOME"
if [[ ! -f "$AIRFLOW_HOME/airflow.db" ]]; then
  log "initialising Airflow metadata database in $AIRFLOW_HOME"
  env AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags" \
    "$VENV/bin/airflow" db migrate >"$AIRFLOW_HOME/db_migrate.log" 2>&1 \
    || { log "ERROR: airflow db migrate failed; see $AIRFLOW_HOME/db_migrate.log"; tail -20 "$AIRFLOW_HOME/db_migrate.log"; exit 1; }
fi
log "ready: venv=.venv jars=$JAR_DIR airflow_home=$AIRFLOW_HOME"
