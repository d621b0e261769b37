"""Monthly KPI roll-up: on the 1st (local time), rebuild the whole previous month — every day of it and
its monthly tables — so the month closes on complete, late-data-corrected figures."""
from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from _defaults import DEFAULT_ARGS, START_DATE, local_day_before, run_moment
from assets import GOLD_BUILT


@dag(
    schedule="0 6 1 * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retry_delay": dt.timedelta(minutes=5)},
    tags=["gold", "kpi", "monthly"],
    doc_md=__doc__,
)
def kpi_monthly():
    @task(outlets=list(GOLD_BUILT))
    def rebuild_previous_month(logical_date=None, dag_run=None) -> dict:
        from jobs.kpi.build import build, record_build
        from jobs.platform.session import get_spark

        local = local_day_before(run_moment(logical_date, dag_run))
        month_end = local.replace(day=1) - dt.timedelta(days=1)
        spark = get_spark("kpi_monthly")
        started_at = dt.datetime.now(dt.timezone.utc)
        result = build(spark, month_end.replace(day=1), month_end)
        record_build(spark, result, started_at)
        return {"month": month_end.replace(day=1).isoformat(), "tables": result.tables}

    rebuild_previous_month()


kpi_monthly()
