"""Weekly lake maintenance (Sunday 03:00 local), one task per layer, one after the other.

Each task runs ``jobs.platform.maintenance`` for its layer (the same as
``python -m jobs.platform.maintenance --layer <layer>``): table health measured into `ops/table_health`,
retention properties raised to the time-travel window, partitions with two or more small files compacted
(Z-ordered on the columns planners filter by for the silver event tables), VACUUM with
`COALCHAIN_MAINTENANCE_VACUUM_RETENTION_HOURS` (refused below 720 h, the 30-day time-travel window the
SQL CLI documents), a checkpoint and expired log entries removed, health measured again.
Layers run in sequence so that two compactions never compete for the same cores.
"""
from __future__ import annotations

from airflow.sdk import chain, dag, task

from _defaults import DEFAULT_ARGS, START_DATE

LAYERS = ("silver", "gold", "bronze", "ops")


@dag(
    schedule="0 3 * * 0",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["maintenance", "ops"],
    doc_md=__doc__,
)
def lake_maintenance():
    def layer_task(layer: str):
        @task(task_id=f"maintain_{layer}")
        def maintain(run_id=None) -> dict:
            from jobs.platform import maintenance

            result = maintenance.run(layers=(layer,), run_id=f"{run_id}:{layer}" if run_id else None)
            return {k: v for k, v in result.items() if k != "reports"}

        return maintain()

    chain(*(layer_task(layer) for layer in LAYERS))


lake_maintenance()
