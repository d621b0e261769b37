"""Per-company monthly KPI extract packs, after the monthly roll-up.

**Schedule: data-aware**, on the gold Assets of the tables in the packs (the gold catalogue,
schemas/gold.py, says which). `kpi_monthly` (1st of the month) and `kpi_daily` both update them; a run builds packs only for the months that a triggering `kpi_monthly` run
closed — the month before that run's logical date in the source time zone, the month `kpi_monthly` rebuilt.
A run triggered by `kpi_daily` alone is skipped: packs are delivered for closed months, not for a
month still changing.

A manual run (no triggering event, e.g. `airflow dags test kpi_extracts 2026-12-01`) builds the month
before its logical date; the `month` param (yyyy-mm) overrides it (backfills: one run per month).

`build_packs` runs `jobs.delivery.extracts` (`python -m jobs.delivery.extracts --month yyyy-mm` by hand): for every
company a folder `<extracts_root>/<yyyy-mm>/<company_key>/` with CSV, Parquet, an Excel workbook and a
checksum manifest, swapped into place whole; a re-run replaces the packs. See docs/extracts.md.
"""
from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, task

from _defaults import DEFAULT_ARGS, START_DATE, local_day_before
from assets import GOLD_EXTRACTED

MONTHLY_PRODUCER = "kpi_monthly"


def month_before(when) -> str:
    """The month before ``when``'s local time — what kpi_monthly rebuilds (its run fires on the 1st; the
    one-second step back keeps a run at exactly 00:00 on the 1st in the month before)."""
    local = local_day_before(when)
    return (local.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def months_to_extract(params: dict, logical_date, triggering_asset_events, run_after) -> list[str]:
    """The months to build: the `month` param; else the months of the triggering kpi_monthly runs (none
    when only kpi_daily triggered); else, with no triggering event (manual run), the month before the
    logical date or, lacking one, before the time the run was queued."""
    if params.get("month"):
        return [pendulum.parse(params["month"] + "-01").strftime("%Y-%m")]
    events = [e for evs in (triggering_asset_events or {}).values() for e in evs]
    if events:
        months = set()
        for event in events:
            if getattr(event, "source_dag_id", None) != MONTHLY_PRODUCER:
                continue
            source = event.source_dag_run
            when = None if source is None else (source.logical_date or getattr(source, "run_after", None))
            if when is not None:
                months.add(month_before(when))
        return sorted(months)
    return [month_before(logical_date if logical_date is not None else run_after)]


@dag(
    schedule=list(GOLD_EXTRACTED),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retry_delay": dt.timedelta(minutes=5)},
    tags=["delivery", "kpi", "monthly"],
    doc_md=__doc__,
    params={"month": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$",
                           description="Month yyyy-mm; default: the month the triggering kpi_monthly run closed.")},
)
def kpi_extracts():
    @task
    def build_packs(params=None, logical_date=None, triggering_asset_events=None, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        months = months_to_extract(params or {}, logical_date, triggering_asset_events,
                                   getattr(dag_run, "run_after", None))
        if not months:
            raise AirflowSkipException("triggered by kpi_daily only: packs are built when kpi_monthly closes a month")

        from jobs.delivery.extracts import ExtractError, build_extracts
        from jobs.platform.session import get_spark

        spark = get_spark("kpi_extracts")
        packs = {}
        for month in months:
            try:
                results = build_extracts(spark, dt.date.fromisoformat(month + "-01"))
            except ExtractError as exc:  # no gold for the month, unknown company: a retry would not help
                raise AirflowFailException(str(exc)) from exc
            packs[month] = {r.company_key: sum(r.table_rows.values()) for r in results}
        return packs

    build_packs()


kpi_extracts()
