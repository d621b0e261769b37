"""Shared task factory of the ingest DAGs (configuration only; the work is in jobs.ingest.runner)."""
from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import Param, cross_downstream, task

from _defaults import DEFAULT_ARGS, START_DATE, local_day_before, run_moment
from assets import SILVER

log = logging.getLogger(__name__)

PARAMS_DOC = {
    "lookback_days": "Delivery days before the run's day to scan for unseen files (default: lateness allowance).",
    "from_date": "First delivery day to scan (yyyy-mm-dd); overrides lookback_days.",
    "to_date": "Last delivery day to scan (yyyy-mm-dd); default: the run's local day.",
}


def delivery_day(moment, override: str | None) -> dt.date:
    """The delivery day a run covers: the local day in which its moment (`run_moment`) falls."""
    if override:
        return dt.date.fromisoformat(override)
    return local_day_before(moment)


def ingest_task(source: str):
    """A task that ingests ``source`` for the run's delivery-day window and updates its silver Asset."""

    # a dimension skipped for want of new files does not hold back the events after it
    @task(task_id=f"ingest_{source}", outlets=[SILVER[source]], trigger_rule="none_failed")
    def _ingest(logical_date=None, params=None, dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from jobs.ingest.runner import has_new_files, ingest_source, landing_files, window_for
        from jobs.platform.session import get_spark

        params = params or {}
        end = delivery_day(run_moment(logical_date, dag_run), params.get("to_date"))
        start_param = params.get("from_date")
        start, end = window_for(
            end, params.get("lookback_days"), dt.date.fromisoformat(start_param) if start_param else None)
        found = landing_files(source, start, end)   # checksums: a file the ledger knows by name, size, time is not read
        # no unseen file in the window (a day without deliveries, a re-run, a backfill of ingested days):
        # nothing to read, so no Spark session either
        spark = get_spark(f"ingest_{source}") if has_new_files(source, start, end, found=found) else None
        result = ingest_source(spark, source, start, end, found=found)
        if result.status != "succeeded":
            # bad input never fails the task: it says so here and in its return value
            log.warning("ingest_%s succeeded with rejects: %d row(s) quarantined (ops/quarantine), %d file(s) "
                        "or folder(s) rejected%s", source, result.quarantined_rows, len(result.files_rejected),
                        "".join(f"\n  {path}: {reason}" for path, reason in result.files_rejected))
        if not result.files_new:
            # skipped, not succeeded: a skipped task updates no Asset, so the DAGs scheduled on the silver
            # table (kpi_daily, the forecast) do not run for a day that brought nothing new
            raise AirflowSkipException(f"no new {source} file delivered for {start}..{end} "
                                       f"({result.files_skipped} already ingested): silver_{source} unchanged")
        return {
            "status": result.status,
            "source": result.source, "files_new": result.files_new, "files_skipped": result.files_skipped,
            "bronze_rows": result.bronze_rows, "quarantined_rows": result.quarantined_rows,
            "duplicate_rows": result.duplicate_rows, "silver_inserted": result.silver_inserted,
            "silver_updated": result.silver_updated, "event_dates": result.event_dates,
            "files_rejected": [list(r) for r in result.files_rejected], "header_drift": result.header_drift,
        }

    return _ingest()


def chain_sources(sources: tuple[str, ...]) -> None:
    """The DAG's dimensions side by side, then its events side by side. No source's ingest reads another
    source, so only this order matters: an event table's Asset (which starts kpi_daily and the forecast,
    whose quality gate checks events against the dimensions) is updated after the run's dimensions are in."""
    from schemas.sources import SOURCES as SPECS

    dimensions = [ingest_task(s) for s in sources if SPECS[s].is_dimension]
    events = [ingest_task(s) for s in sources if not SPECS[s].is_dimension]
    cross_downstream(dimensions, events)   # no edge where either list is empty


def ingest_dag_kwargs(domain: str) -> dict:
    """The ``@dag`` arguments every ingest DAG shares (schedule, start, catch-up, retries, params)."""
    return dict(
        schedule="@daily",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["ingest", domain],
        params={
            "lookback_days": Param(None, type=["null", "integer"], minimum=0, description=PARAMS_DOC["lookback_days"]),
            "from_date": Param(None, type=["null", "string"], description=PARAMS_DOC["from_date"]),
            "to_date": Param(None, type=["null", "string"], description=PARAMS_DOC["to_date"]),
        },
    )
