"""The scheduler launcher (jobs/platform/airflow_scheduler.py): the tasks' modules imported before Airflow's
scheduler starts, safely for the processes it forks, then the real `airflow scheduler` command."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.platform.airflow_scheduler import preload

REPO = Path(__file__).resolve().parents[3]

# In a fresh interpreter: preload everything, report what a forked task process would inherit, then run the
# launcher's main as `python -m jobs.platform.airflow_scheduler --help` does (one interpreter, one preload).
PROBE = """
import sys, threading
from jobs.platform import airflow_scheduler, settings
failed = airflow_scheduler.preload(pin_code=True)
print("failed", failed)
print("python_threads", threading.active_count())
print("settings_read", settings.get_settings.cache_info().currsize)
print("loaded", all(m in sys.modules for m in airflow_scheduler.PRELOAD))
from jobs.platform import session
print("pinned", session._code_loaded == (session.REPO_ROOT, session._code_digest(session.REPO_ROOT)[0]), flush=True)
airflow_scheduler.main(["--help"])
"""
REPORT_KEYS = ("failed", "python_threads", "settings_read", "loaded", "pinned")


@pytest.fixture(scope="module")
def probe() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_preload_imports_every_module_without_threads_or_settings(probe):
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = dict(line.split(" ", 1) for line in probe.stdout.splitlines() if line.startswith(REPORT_KEYS))
    assert report == {"failed": "[]", "python_threads": "1", "settings_read": "0", "loaded": "True",
                      "pinned": "True"}, probe.stdout
    # and GX's import-time INFO lines (one per documented function) stay out of the scheduler's log
    assert "Skipping registering function" not in probe.stdout + probe.stderr


def test_a_module_that_fails_to_import_is_reported_and_the_rest_still_load(caplog):
    with caplog.at_level(logging.WARNING, logger="coalchain.airflow_scheduler"):
        failed = preload(("json", "jobs.no_such_module", "csv"))
    assert failed == ["jobs.no_such_module"]
    assert "preload of jobs.no_such_module failed: ModuleNotFoundError" in caplog.text
    assert {"json", "csv"} <= set(sys.modules)


def test_the_launcher_runs_airflow_scheduler_with_its_arguments(probe):
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert "Usage: airflow scheduler" in probe.stdout and "--skip-serve-logs" in probe.stdout, probe.stdout[:2000]
    assert "task modules preloaded in" in probe.stderr and "failed" not in probe.stderr, probe.stderr[-2000:]
