"""Ingest DAG: Fleet telematics: the truck register and GB/T 32960-like frames of every truck.

Each daily run scans the landing folders of its delivery day and the lateness allowance before it,
ingests files not seen before (by checksum) into bronze, types them into silver (bad rows to
quarantine) and updates one Asset per silver table (a source without a new file is skipped and
updates none). Params: `lookback_days`, `from_date`, `to_date`.
"""
from __future__ import annotations

from airflow.sdk import dag

from _ingest import chain_sources, ingest_dag_kwargs

SOURCES = ("trucks", "telematics")


@dag(**ingest_dag_kwargs("fleet_telematics"), doc_md=__doc__)
def ingest_fleet_telematics():
    chain_sources(SOURCES)


ingest_fleet_telematics()
