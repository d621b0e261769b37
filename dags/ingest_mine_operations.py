"""Ingest DAG: Mine operations: companies, mines, washing plants (dimensions); day-ahead production plan and production per shift; washing plant days.

Each daily run scans the landing folders of its delivery day and the lateness allowance before it,
ingests files not seen before (by checksum) into bronze, types them into silver (bad rows to
quarantine) and updates one Asset per silver table (a source without a new file is skipped and
updates none). Params: `lookback_days`, `from_date`, `to_date`.
"""
from __future__ import annotations

from airflow.sdk import dag

from _ingest import chain_sources, ingest_dag_kwargs

SOURCES = ("companies", "mines", "washing_plants", "production_plan", "mine_production", "washing")


@dag(**ingest_dag_kwargs("mine_operations"), doc_md=__doc__)
def ingest_mine_operations():
    chain_sources(SOURCES)


ingest_mine_operations()
