#!/usr/bin/env bash
# One-time (then cached) set-up shared by `make run` and `make test`:
#   1. a virtual environment in .venv with the pinned dependencies of requirements.lock;
#   2. the Delta Lake JARs for the pinned delta-spark, resolved once through Maven into a cache
#      outside the repo, so later runs need no network;
#   3. an Airflow home in .airflow (ignored) with an initialised metadata database;
#   4. Debian's chromium (headless), which the report tests use to render the HTML reports.
# `bootstrap.sh cluster` (make test-cluster, make bench with --cluster) also resolves, once:
#   5. hadoop-aws and the AWS SDK bundle matching PySpark's Hadoop (Spark's s3a connector), cached;
#   6. moto's standalone S3 server in its own venv from requirements-s3server.lock (the test object store).
# `bootstrap.sh stack` (make stack-up: the native production stack, scripts/stack.sh) does 5-6 and also:
#   7. Debian's PostgreSQL server (Airflow's metadata database), installed with apt when it is missing.
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
# fetch_jars <dir> <what> <group:artifact:version>...: copy the JARs into <dir> through Maven
fetch_jars() {
  local dir="$1" what="$2"; shift 2
  command -v mvn >/dev/null 2>&1 || { log "ERROR: mvn not found; it is needed once to fetch the $what"; exit 1; }
  log "resolving the $what with Maven into $dir"
  mkdir -p "$dir"
  for artifact in "$@"; do
    mvn -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$dir" \
      || { log "ERROR: Maven could not fetch $artifact"; exit 1; }
  done
}
if [[ ! -f "$JAR_DIR/delta-spark_2.13-$DELTA_VERSION.jar" || ! -f "$JAR_DIR/delta-storage-$DELTA_VERSION.jar" ]]; then
  fetch_jars "$JAR_DIR" "Delta Lake $DELTA_VERSION JARs" \
    "io.delta:delta-spark_2.13:$DELTA_VERSION" "io.delta:delta-storage:$DELTA_VERSION"
fi

# 3. Airflow home ---------------------------------------------------------------------------------
mkdir -p "$AIRFLOW_HOME"
if [[ ! -f "$AIRFLOW_HOME/airflow.db" ]]; then
  log "initialising Airflow metadata database in $AIRFLOW_HOME"
  env AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags" \
    "$VENV/bin/airflow" db migrate >"$AIRFLOW_HOME/db_migrate.log" 2>&1 \
    || { log "ERROR: airflow db migrate failed; see $AIRFLOW_HOME/db_migrate.log"; tail -20 "$AIRFLOW_HOME/db_migrate.log"; exit 1; }
fi
# 4. Headless Chromium for the report tests (Debian package; skipped when already installed) -------
if [[ ! -x /usr/bin/chromium ]]; then
  command -v apt-get >/dev/null 2>&1 \
    || { log "ERROR: /usr/bin/chromium is missing and apt-get is not available; install Chromium by hand"; exit 1; }
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
      || { log "ERROR: /usr/bin/chromium is missing; installing it needs root (apt-get install chromium)"; exit 1; }
    SUDO="sudo -n"
  fi
  log "installing Debian's chromium package (headless browser for the report tests)"
  apt_log="$(mktemp -t chromium_install.XXXXXX.log)"
  if ! { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } \
       >"$apt_log" 2>&1; then
    log "ERROR: apt-get could not install chromium (network? package mirror?); full log: $apt_log"
    tail -20 "$apt_log" >&2
    exit 1
  fi
  [[ -x /usr/bin/chromium ]] || { log "ERROR: apt-get finished but /usr/bin/chromium is still missing"; exit 1; }
fi
# 5-6. Object storage: the s3a JARs and the test S3 server (only for `bootstrap.sh cluster`) ----------
if [[ "${1:-}" == "cluster" || "${1:-}" == "stack" ]]; then
  HADOOP_AWS_VERSION="3.4.1"      # = PySpark's Hadoop (pyspark/jars/hadoop-client-api-3.4.1.jar)
  AWS_SDK_VERSION="2.24.6"        # = hadoop-project 3.4.1's aws-java-sdk-v2.version
  S3_JAR_DIR="${COALCHAIN_S3_JAR_DIR:-$HOME/.cache/coalchain/jars/hadoop-aws-$HADOOP_AWS_VERSION}"
  if [[ ! -f "$S3_JAR_DIR/hadoop-aws-$HADOOP_AWS_VERSION.jar" || ! -f "$S3_JAR_DIR/bundle-$AWS_SDK_VERSION.jar" ]]; then
    fetch_jars "$S3_JAR_DIR" "hadoop-aws $HADOOP_AWS_VERSION and AWS SDK bundle $AWS_SDK_VERSION JARs" \
      "org.apache.hadoop:hadoop-aws:$HADOOP_AWS_VERSION" "software.amazon.awssdk:bundle:$AWS_SDK_VERSION"
  fi
  S3_VENV="$HOME/.cache/coalchain/s3server-venv"
  s3_hash="$(sha256sum requirements-s3server.lock | cut -c1-16)"
  if [[ ! -x "$S3_VENV/bin/moto_server" || "$(cat "$S3_VENV/.lock_hash" 2>/dev/null)" != "$s3_hash" ]]; then
    log "installing the test S3 server (moto) into $S3_VENV"
    "$PYTHON" -m venv "$S3_VENV"
    "$S3_VENV/bin/python" -m pip install --quiet --no-deps -r requirements-s3server.lock
    echo "$s3_hash" > "$S3_VENV/.lock_hash"
  fi
fi
# 7. PostgreSQL for the native stack (Debian package; skipped when a server is installed) ----------------
if [[ "${1:-}" == "stack" ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  command -v apt-get >/dev/null 2>&1 \
    || { log "ERROR: PostgreSQL is missing and apt-get is not available; install the postgresql package by hand"; exit 1; }
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: installing PostgreSQL needs root (apt-get install postgresql)"; exit 1; }
    SUDO="sudo -n"
  fi
  log "installing Debian's postgresql package (Airflow's metadata database of the native stack)"
  apt_log="$(mktemp -t postgresql_install.XXXXXX.log)"
  # only the server binaries are used: the stack runs its own server (initdb + postgres) on its own port
  if ! { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends postgresql; } >"$apt_log" 2>&1; then
    log "ERROR: apt-get could not install postgresql (network? package mirror?); full log: $apt_log"
    tail -20 "$apt_log" >&2
    exit 1
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || { log "ERROR: postgresql installed but no initdb found"; exit 1; }
fi
log "ready: venv=.venv jars=$JAR_DIR airflow_home=$AIRFLOW_HOME chromium=/usr/bin/chromium"
