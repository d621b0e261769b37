"""Gold KPIs, data-aware: runs when any silver event table it reads is updated (a run that finds new rows
in one source is enough; the dimensions come with their events), and daily at 05:00 local as a sweep.
A run builds every day touched since the last build, whichever event started it; the sweep covers an
update after which no run starts at all, which Airflow does not rule out (an event that lands while a run
is created for an earlier one is linked to no run, and queued events of a DAG at its active-run limit
have been seen to wait for the next event). A sweep with nothing to do ends skipped.

1. `affected_days`: the event days the ingest runs touched since the last gold build (from the ingest
   audit); nothing to do → the rest is skipped and no gold Asset is updated.
2. `quality_gate`: Great Expectations suites of the silver tables on those days: each event table on the
   days its own ingest touched (and any day still blocked), a dimension when it was ingested; a table whose
   rows did not change is not validated again (a manual run with `from_date`/`to_date` validates every
   table on every day). A day with a failed critical expectation is blocked; if every day is blocked this
   task fails. Warnings are recorded.
3. `build_gold`: rebuilds the daily KPI tables for exactly the days that passed (each run of consecutive
   days at once) and the monthly tables of their months; every row carries its factor/rule versions.
   Blocked days are recorded and stay affected until a later run builds them; then the task fails, so
   a blocked day is never a silent success.
"""
from __future__ import annotations

import datetime as dt

from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from _defaults import DEFAULT_ARGS, LOCAL_TZ, START_DATE
from assets import GOLD_BUILT, SILVER

GOLD_INPUTS = ("mines", "washing_plants", "trucks", "charging_stations", "charging_connectors", "h2_stations",
               "mine_production", "washing", "telematics", "weighbridge", "charging_sessions", "connector_status",
               "h2_fills", "shipments")
EVENT_TABLES = GOLD_INPUTS[6:]
SWEEP_CRON = "0 5 * * *"   # after the ingest DAGs' midnight runs, before kpi_monthly (06:00 on the 1st)

@dag(
    # any, not all (a list of Assets would wait until every one of them is updated again); the cron is the sweep
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(SWEEP_CRON, timezone=LOCAL_TZ),
                                 assets=AssetAny(*(SILVER[s] for s in EVENT_TABLES))),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retry_delay": dt.timedelta(minutes=2)},
    tags=["gold", "kpi"],
    doc_md=__doc__,
)
def kpi_daily():
    @task(multiple_outputs=True)
    def affected_days(params=None) -> dict:
        from jobs.kpi.build import affected_with_plan

        params = params or {}
        read_at = dt.datetime.now(dt.timezone.utc).isoformat()   # before the read: what the build records
        if params.get("from_date") and params.get("to_date"):   # an operator's days: every table validated
            start, end = dt.date.fromisoformat(params["from_date"]), dt.date.fromisoformat(params["to_date"])
            return {"days": [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)],
                    "tables": None, "read_at": read_at}
        # from the ops tables (no Spark job): the days, and per silver table the days its rows changed on
        days, plan = affected_with_plan()
        return {"days": [d.isoformat() for d in days], "read_at": read_at,
                "tables": {name: [d.isoformat() for d in ds] for name, ds in plan.items()}}

    @task
    def quality_gate(days: list[str], tables: dict | None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.quality.validation import QualityGateError
        from jobs.quality.gate import gate_silver
        from jobs.platform.session import get_spark

        try:
            # no affected day (a re-run found nothing new): nothing to validate, no Spark session to start
            spark = get_spark("kpi_daily") if days else None
            plan = None if tables is None else {t: [dt.date.fromisoformat(d) for d in ds] for t, ds in tables.items()}
            return gate_silver(spark, [dt.date.fromisoformat(d) for d in days], tables=plan)
        except QualityGateError as exc:  # bad data: retrying would not change it
            summary = getattr(exc, "summary", None)
            if not summary or not summary["passed_days"]:
                raise AirflowFailException(str(exc)) from exc
            return {**summary, "error": str(exc)}

    @task(outlets=list(GOLD_BUILT))
    def build_gold(days: list[str], read_at: str, quality: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from jobs.kpi.build import build_passed_days
        from jobs.platform.session import get_spark

        if not days:   # skipped, not succeeded: no gold Asset event, so nothing downstream runs for nothing
            raise AirflowSkipException("no day touched by ingestion since the last gold build: gold unchanged")
        blocked = {dt.date.fromisoformat(d): why for d, why in (quality.get("blocked_days") or {}).items()}
        passed = [dt.date.fromisoformat(d) for d in quality.get("passed_days", days)]
        built = build_passed_days(get_spark("kpi_daily"), passed, blocked, dt.datetime.fromisoformat(read_at))
        if blocked:
            raise AirflowFailException(f"gold built for {sorted(built)}; blocked for {sorted(d.isoformat() for d in blocked)}:\n"
                                       + quality.get("error", ""))
        return {"built": built}

    affected = affected_days()
    build_gold(affected["days"], affected["read_at"], quality_gate(affected["days"], affected["tables"]))

kpi_daily()
