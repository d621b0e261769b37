"""Ingest DAG: Mine operations: companies, mines, washing plants (dimensions); production per shift; washing plant days.

Each daily run scans the landing folders of its delivery day and the lateness allowance before it,
ingests files not seen before (by checksum) into bronze, types them into silver (bad rows to
quarantine) and updates one Asset per silver table. Params: `lookback_days`, `from_date`, `to_date`.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from _ingest import DEFAULT_ARGS, PARAMS_DOC, chain_sources

SOURCES = ("companies", "mines", "washing_plants", "mine_production", "washing")


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ingest", "mine_operations"],
    doc_md=__doc__,
    params={
        "lookback_days": Param(None, type=["null", "integer"], minimum=0, description=PARAMS_DOC["lookback_days"]),
        "from_date": Param(None, type=["null", "string"], description=PARAMS_DOC["from_date"]),
        "to_date": Param(None, type=["null", "string"], description=PARAMS_DOC["to_date"]),
    },
)
def ingest_mine_operations():
    chain_sources(SOURCES)


ingest_mine_operations()
