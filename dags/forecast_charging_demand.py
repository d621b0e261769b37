"""Forecast DAG: hourly charging energy per station for the next 168 hours, with P10/P50/P90.

**Schedule: data-aware**, on the `silver_charging_sessions` Asset. A run starts when `ingest_charging`
has updated the sessions, so a forecast never runs on a day whose sessions have not landed yet (a second
`@daily` clock at the same midnight as the ingest would race it, and any fixed delay is a guess). The
run's *as-of day* D is the delivery day of the ingest run that triggered it (the newest one if several
are queued); D's end, local midnight in the source time zone, is the feature cut-off.
A daily sweep at 05:30 local forecasts the day completed at its midnight, for a sessions update after
which no run started (Airflow links an Asset event that lands while a run is being created to no run):
it ends skipped until a sessions file of that day has been ingested, and writes nothing when the day was
already issued by the same model from the same data.

1. `train_if_due`: retrains the model when the newest one eligible for D was trained for a day 7 or more
   days before D (weekly retraining), or is missing, or `force_retrain` is set. The model is saved to the
   registry `<lake_root>/models/charging_forecast/<model_version>/` with its metrics, training window and
   data version (`silver_charging_sessions@v<N>`). Under 21 days of history nothing is trained.
2. `predict`: forecasts the 168 hours after the cut-off and replaces the partition
   `forecast_date_local = D` of `gold_charging_forecast` (a re-run or backfill of D never duplicates). A
   run the Asset triggered keeps a day already issued by the same model from the same sessions version (no
   new table version); a manual run re-issues it, with the flexible energy below from the gold of that moment.
   Every row carries its `model_version` (a registry folder, or `seasonal_naive_daily`: the fallback
   served while history is too short to train), `data_version` and `feature_cutoff_ts_utc`. Then it replaces
   the same partition of `gold_charging_flexibility_forecast`: the flexible energy of day D + 1 per station
   and hour (docs/kpis.md §5a), once the gold build has written `gold_charging_flexibility_hourly`.

Params: `as_of` (yyyy-mm-dd) overrides the as-of day (backfills: trigger once per day); `force_retrain`.
The work is `jobs.forecast.charging_demand` (`python -m jobs.forecast.charging_demand train|predict --as-of D` by hand).
"""
from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from _defaults import DEFAULT_ARGS, LOCAL_TZ, START_DATE
from _ingest import delivery_day
from assets import GOLD, SILVER

SESSIONS = SILVER["charging_sessions"]
SWEEP_CRON = "30 5 * * *"   # after the ingest's midnight run and kpi_daily's 05:00 sweep


def as_of_day(params: dict, logical_date, triggering_asset_events, run_after, scheduled: bool = False) -> str:
    """The as-of day: the `as_of` param, else the delivery day of the newest triggering ingest run, else the
    day of this run's logical date (manual runs, `airflow dags test`; same convention as the ingest DAGs),
    else (the daily sweep, a run without a logical date) the last local day completed when the run was
    queued: never a day still in progress."""
    if params.get("as_of"):
        return pendulum.parse(params["as_of"]).date().isoformat()
    days = []
    for event in (triggering_asset_events or {}).get(SESSIONS, []):
        source = event.source_dag_run
        if source is not None and source.logical_date is not None:
            days.append(delivery_day(pendulum.instance(source.logical_date), None))
    if days:
        return max(days).isoformat()
    if logical_date is not None and not scheduled:
        return delivery_day(pendulum.instance(logical_date), None).isoformat()
    queued = logical_date if logical_date is not None else run_after
    return pendulum.instance(queued).in_timezone(LOCAL_TZ).subtract(days=1).date().isoformat()


def run_type_of(dag_run) -> str:
    return str(getattr(dag_run, "run_type", "")).lower()


def keeps_unchanged(dag_run) -> bool:
    """An Asset-triggered run and the sweep keep a day already issued by the same model from the same data
    (a second backfill of the ingest, or a sweep after the day's own run, writes no forecast); a manual
    run of a day re-issues it."""
    return run_type_of(dag_run).endswith(("asset_triggered", "scheduled"))


@dag(
    # the sessions, or the daily sweep
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(SWEEP_CRON, timezone=LOCAL_TZ), assets=SESSIONS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["forecast", "charging", "gold"],
    doc_md=__doc__,
    params={
        "as_of": Param(None, type=["null", "string"], format="date",
                       description="As-of day yyyy-mm-dd (local time of the sources); default: the triggering ingest's day."),
        "force_retrain": Param(False, type="boolean", description="Retrain even if the model is < 7 days old."),
    },
)
def forecast_charging_demand():
    @task
    def train_if_due(params=None, logical_date=None, triggering_asset_events=None, dag_run=None) -> dict:
        import datetime as dt

        from airflow.sdk.exceptions import AirflowSkipException

        from jobs.forecast import charging_demand
        from jobs.platform.session import get_spark

        params = params or {}
        sweep = run_type_of(dag_run).endswith("scheduled")
        as_of = as_of_day(params, logical_date, triggering_asset_events, getattr(dag_run, "run_after", None),
                          scheduled=sweep)
        if sweep and ((through := charging_demand.delivered_through()) is None or through.isoformat() < as_of):
            raise AirflowSkipException(f"sweep: charging sessions delivered through {through}; the forecast "
                                       f"for {as_of} is made once a sessions file of that day is ingested")
        result = charging_demand.train(get_spark("forecast_charging_demand"), dt.date.fromisoformat(as_of),
                                    force=bool(params.get("force_retrain")))
        return {"as_of": as_of, **result}

    @task(outlets=[GOLD["gold_charging_forecast"], GOLD["gold_charging_flexibility_forecast"]])
    def predict(trained: dict, dag_run=None) -> dict:
        import datetime as dt

        from jobs.forecast import charging_demand
        from jobs.platform.session import get_spark

        return charging_demand.predict(get_spark("forecast_charging_demand"), dt.date.fromisoformat(trained["as_of"]),
                                       keep_unchanged=keeps_unchanged(dag_run))

    predict(train_if_due())


forecast_charging_demand()
