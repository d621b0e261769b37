"""Ingest DAG: Charging: stations, connectors, charging sessions (OCPP-like) and connector status events (T/CEC 102).

Each daily run scans the landing folders of its delivery day and the lateness allowance before it,
ingests files not seen before (by checksum) into bronze, types them into silver (bad rows to
quarantine) and updates one Asset per silver table. Params: `lookback_days`, `from_date`, `to_date`.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from _ingest import DEFAULT_ARGS, PARAMS_DOC, chain_sources

SOURCES = ("charging_stations", "charging_connectors", "charging_sessions", "connector_status")


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ingest", "charging"],
    doc_md=__doc__,
    params={
        "lookback_days": Param(None, type=["null", "integer"], minimum=0, description=PARAMS_DOC["lookback_days"]),
        "from_date": Param(None, type=["null", "string"], description=PARAMS_DOC["from_date"]),
        "to_date": Param(None, type=["null", "string"], description=PARAMS_DOC["to_date"]),
    },
)
def ingest_charging():
    chain_sources(SOURCES)


ingest_charging()
