"""The scheduler launcher (jobs/platform/airflow_scheduler.py): the tasks' modules imported before Airflow's
scheduler starts, safely for the processes it forks, then the real `airflow scheduler` command."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from jobs.platform.airflow_scheduler import preload

REPO = Path(__file__).resolve().parents[3]

# In a fresh interpreter: preload everything, then report what a forked task process would inherit.
PROBE = """
import sys, threading
from jobs.platform import airflow_scheduler, settings
failed = airflow_scheduler.preload()
print("failed", failed)
print("python_threads", threading.active_count())
print("settings_read", settings.get_settings.cache_info().currsize)
print("loaded", all(m in sys.modules for m in airflow_scheduler.PRELOAD))
"""


def test_the_preload_imports_every_module_without_threads_or_settings():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert report == {"failed": "[]", "python_threads": "1", "settings_read": "0", "loaded": "True"}, done.stdout
    # and GX's import-time INFO lines (one per documented function) stay out of the scheduler's log
    assert "Skipping registering function" not in done.stdout + done.stderr


def test_a_module_that_fails_to_import_is_reported_and_the_rest_still_load(caplog):
    with caplog.at_level(logging.WARNING, logger="coalchain.airflow_scheduler"):
        failed = preload(("json", "jobs.no_such_module", "csv"))
    assert failed == ["jobs.no_such_module"]
    assert "preload of jobs.no_such_module failed: ModuleNotFoundError" in caplog.text
    assert {"json", "csv"} <= set(sys.modules)


def test_the_launcher_runs_airflow_scheduler_with_its_arguments():
    done = subprocess.run([sys.executable, "-m", "jobs.platform.airflow_scheduler", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Usage: airflow scheduler" in done.stdout and "--skip-serve-logs" in done.stdout, done.stdout[:2000]
    assert "task modules preloaded in" in done.stderr and "failed" not in done.stderr, done.stderr[-2000:]
