"""Ingest DAG: Charging: stations, connectors, charging sessions (OCPP-like) and connector status events (T/CEC 102).

Each daily run scans the landing folders of its delivery day and the lateness allowance before it,
ingests files not seen before (by checksum) into bronze, types them into silver (bad rows to
quarantine) and updates one Asset per silver table (a source without a new file is skipped and
updates none). Params: `lookback_days`, `from_date`, `to_date`.
"""
from __future__ import annotations

from airflow.sdk import dag

from _ingest import chain_sources, ingest_dag_kwargs

SOURCES = ("charging_stations", "charging_connectors", "charging_sessions", "connector_status")


@dag(**ingest_dag_kwargs("charging"), doc_md=__doc__)
def ingest_charging():
    chain_sources(SOURCES)


ingest_charging()
