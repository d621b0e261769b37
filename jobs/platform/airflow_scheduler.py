"""`airflow scheduler` with the modules the pipeline's tasks import loaded first.

Usage: ``python -m jobs.platform.airflow_scheduler [airflow scheduler arguments]`` (what `make stack-up`
and docker/compose.yaml start instead of ``airflow scheduler``).

The LocalExecutor forks its workers from the scheduler process, and each task process is forked from a
worker, so a module the scheduler has imported is already in every task process. Without this, every
task imports the jobs, PySpark's Connect client (with pandas, pyarrow and gRPC) on its own, about 1 CPU-s
before its work starts, and a quality-gate task Great Expectations as well, about 3 CPU-s more; an ingest
backfill of the sample runs 70 such tasks. Imported here once, each task starts on its own work. No
module of the list opens a connection, reads the settings or starts a Python thread when imported.
"""
from __future__ import annotations

import importlib
import logging
import sys
import time

# what the tasks of dags/ import (the DAG files themselves are parsed in the task process)
PRELOAD = (
    "pyspark.sql.connect.session",      # the tasks' Spark client (pandas, pyarrow, gRPC)
    "jobs.platform.session",
    "jobs.platform.alerts",
    "jobs.ingest.runner",
    "jobs.kpi.build",
    "jobs.quality.gate",
    "jobs.quality.validation",
    "great_expectations",               # the quality gate of kpi_daily
    "jobs.forecast.charging_demand",
    "jobs.delivery.extracts",
)

log = logging.getLogger("coalchain.airflow_scheduler")


def preload(modules: tuple[str, ...] = PRELOAD, pin_code: bool = False) -> list[str]:
    """Import ``modules``; returns the ones that failed (each is logged: a task importing it fails the
    same way and names the error in its own log, so the scheduler still starts). ``pin_code``: first record
    the project's code on disk as the code the forked tasks run (:func:`jobs.platform.session.pin_loaded_code`),
    so that after an upgrade without a restart a task fails clearly instead of shipping its executors code
    its own modules are not."""
    if pin_code:
        from jobs.platform.session import pin_loaded_code

        pin_loaded_code()
    # GX logs one INFO line per documented function while it is imported
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal: the scheduler runs other DAGs too
            failed.append(name)
            log.warning("preload of %s failed: %s: %s", name, type(exc).__name__, exc)
    return failed


def main(argv: list[str] | None = None) -> None:
    started = time.process_time()
    failed = preload(pin_code=True)
    print(f"coalchain: {len(PRELOAD) - len(failed)} task modules preloaded in {time.process_time() - started:.1f} "
          f"CPU-s" + (f" ({', '.join(failed)} failed)" if failed else ""), file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", "scheduler", *(sys.argv[1:] if argv is None else argv)]
    airflow_main()


if __name__ == "__main__":
    main()
