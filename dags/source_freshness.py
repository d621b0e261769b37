"""Source freshness, every three hours: a source with no new landing file for longer than its limit
(`COALCHAIN_STALE_SOURCE_HOURS`, per source `COALCHAIN_STALE_SOURCE_HOURS_PER_SOURCE`) is stale, and one
alert listing every stale source goes out by e-mail and/or webhook (`COALCHAIN_ALERT_*`). The task
succeeds either way (the check worked); the alert repeats at every check while a source stays stale.
By hand: `python -m jobs.ingest.freshness`.
"""
from __future__ import annotations

from airflow.sdk import dag, task

from _defaults import DEFAULT_ARGS, START_DATE


@dag(
    schedule="0 */3 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ops", "alerts"],
    doc_md=__doc__,
)
def source_freshness():
    @task
    def check_sources(run_id=None) -> dict:
        from jobs.ingest.freshness import check_and_alert

        outcome = check_and_alert(dag_id="source_freshness", task_id="check_sources", run_id=run_id)
        return {"checked": outcome["checked"], "stale": outcome["stale"], "alerted_by": outcome["alerted_by"]}

    check_sources()


source_freshness()
