#!/usr/bin/env bash
# One-shot set-up before the Airflow services start (the `airflow-init` service of compose.yaml):
#   1. create or upgrade the metadata schema in PostgreSQL (`airflow db migrate`, idempotent);
#   2. write the UI login of Airflow's simple auth manager (the user of AIRFLOW_ADMIN_USERNAME with the
#      password of AIRFLOW_ADMIN_PASSWORD) into its passwords file, readable by the service user only.
set -euo pipefail

: "${AIRFLOW_ADMIN_USERNAME:?set AIRFLOW_ADMIN_USERNAME}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?set AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"

echo "[airflow-init] airflow db migrate"
airflow db migrate

echo "[airflow-init] writing the login of ${AIRFLOW_ADMIN_USERNAME} to ${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"
python - <<'PY'
import json
import os

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
os.makedirs(os.path.dirname(path), exist_ok=True)
descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(descriptor, "w") as file:
    json.dump({os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, file)
    file.write("\n")
os.chmod(path, 0o600)
PY
echo "[airflow-init] done"
