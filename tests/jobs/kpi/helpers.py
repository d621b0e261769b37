"""Small builders for KPI tests: silver rows with the declared schemas, reference rows, approx checks."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType

from schemas.reference_tables import REFERENCE, read_reference
from schemas.tables import SILVER

_LINEAGE = {"source_file": "test.csv", "ingested_at": dt.datetime(2026, 1, 1)}


def _coerce(data_type, value):
    """Let tests write 0 for 0.0 in double columns."""
    if isinstance(data_type, DoubleType) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _rows(schema, records: list[dict], defaults: dict) -> list[tuple]:
    names = [f.name for f in schema]
    out = []
    for i, rec in enumerate(records):
        unknown = set(rec) - set(names)
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}; schema has {names}")
        row = {n: None for n in names}
        row.update({k: v for k, v in defaults.items() if k in row})
        if "record_no" in row:
            row["record_no"] = i + 1
        row.update(rec)
        out.append(tuple(_coerce(f.dataType, row[f.name]) for f in schema))
    return out


def silver(spark: SparkSession, source: str, records: list[dict]) -> DataFrame:
    """A silver table of ``records`` (dicts of column -> value); missing columns are null."""
    schema = SILVER[source].schema
    return spark.createDataFrame(_rows(schema, records, _LINEAGE), schema)


def reference(spark: SparkSession, name: str, records: list[dict] | None = None) -> DataFrame:
    """The checked-in reference table, or a test table of ``records`` with the same schema."""
    if records is None:
        return read_reference(spark, name)
    schema = REFERENCE[name].schema
    defaults = {"needs_review": False, "version": "test_v1"}
    fixed = [{k: (Decimal(str(v)) if isinstance(v, float) else v) for k, v in r.items()} for r in records]
    return spark.createDataFrame(_rows(schema, fixed, defaults), schema)


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def ts(s: str) -> dt.datetime:
    """A naive datetime meaning UTC (the session time zone is UTC)."""
    return dt.datetime.fromisoformat(s)


def by(rows, *keys):
    """Index collected rows by one or more key columns."""
    if len(keys) == 1:
        return {r[keys[0]]: r for r in rows}
    return {tuple(r[k] for k in keys): r for r in rows}
