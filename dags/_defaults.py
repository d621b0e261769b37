"""What every DAG shares, read from the project's settings object (configuration only)."""
from __future__ import annotations

import datetime as dt

import pendulum

from jobs.platform.alerts import on_task_failure
from jobs.platform.settings import get_settings

_SETTINGS = get_settings()

# The zone of the delivery day and of the cron schedules: the sources' own local time.
LOCAL_TZ = _SETTINGS.source_timezone
START_DATE = pendulum.datetime(2026, 1, 1, tz=LOCAL_TZ)
# Retries absorb transient failures (e.g. a Delta write conflict that outlived its in-job retries).
# A task that fails for good alerts by e-mail and/or webhook (COALCHAIN_ALERT_*; a blocked quality gate
# names its failing expectations).
DEFAULT_ARGS = {"retries": _SETTINGS.task_retries, "retry_delay": dt.timedelta(minutes=2),
                "retry_exponential_backoff": True, "on_failure_callback": on_task_failure}


def run_moment(logical_date, dag_run):
    """The moment a run stands for: its logical date; a run triggered without one (Airflow 3's manual runs,
    from the CLI or the UI, unless a date is given) has only the time it was queued for, ``run_after``."""
    return logical_date if logical_date is not None else dag_run.run_after


def local_day_before(moment) -> dt.date:
    """The local day in which the second before ``moment`` falls: a daily cron run fires at local
    midnight after the day it covers, hence the one-second step back."""
    return (pendulum.instance(moment) - dt.timedelta(seconds=1)).in_timezone(LOCAL_TZ).date()
