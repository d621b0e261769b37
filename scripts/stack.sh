#!/usr/bin/env bash
# The native production stack (make stack-up / stack-down / stack-status): PostgreSQL, Airflow 3 with the
# LocalExecutor, a Spark standalone cluster and an S3 server, on 127.0.0.1 only. See jobs/tools/stack.py.
#   scripts/stack.sh up | down | status | env | airflow <args> | run <cmd> | rotate-credentials | load-sample | destroy
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -x "$ROOT/.venv/bin/python" ]] || { echo "[stack] .venv missing: run scripts/bootstrap.sh stack" >&2; exit 1; }
PYTHONPATH="$ROOT" exec "$ROOT/.venv/bin/python" -m jobs.tools.stack "$@"
