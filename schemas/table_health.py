"""Declared schema of the table-health table (ops layer), appended by ``jobs.platform.maintenance``.

One row per Delta table and partition per measurement: how many data files the table's current version
references there, their bytes, and how many of them are small (below ``maintenance_small_file_mb``).
Each maintenance run measures twice (``stage`` = ``before`` compaction and ``after`` the whole run), so
the table shows what compaction achieved and how small files accumulate between runs.
"""
from __future__ import annotations

from pyspark.sql import types as T

from schemas.tables import TableSpec

S_, D, TS, L = T.StringType(), T.DoubleType(), T.TimestampType(), T.LongType()

TABLE_HEALTH_SCHEMA = T.StructType([
    T.StructField("run_id", S_, False),                       # one maintenance run
    T.StructField("stage", S_, False),                        # before | after
    T.StructField("measured_at", TS, False),                  # UTC
    T.StructField("layer", S_, False),                        # bronze | silver | gold | ops
    T.StructField("table_name", S_, False),
    T.StructField("table_version", L, False),                 # Delta version measured
    T.StructField("partition", S_, False),                    # "event_date_local=2026-11-03"; "" unpartitioned
    T.StructField("files", L, False),                         # data files of the current version
    T.StructField("bytes", L, False),
    T.StructField("small_files", L, False),                   # files below small_file_bytes
    T.StructField("small_file_share", D, False),              # small_files / files (0 when no files)
    T.StructField("small_file_bytes", L, False),              # the threshold used
])

TABLE_HEALTH = TableSpec("table_health", "ops", TABLE_HEALTH_SCHEMA)
