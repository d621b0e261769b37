"""Declared schema of the data-quality results table (ops layer), written by ``jobs.quality.validation``.

One row per expectation per validation run of a silver table. A run is identified by ``run_id`` (the
Airflow run id, or one given on the command line); re-running the same run id for a table replaces
its rows, so task retries never duplicate results, and distinct runs are kept as history.
"""
from __future__ import annotations

from pyspark.sql import types as T

from schemas.tables import TableSpec

S_, D, TS, L, B = T.StringType(), T.DoubleType(), T.TimestampType(), T.LongType(), T.BooleanType()

QUALITY_RESULTS_SCHEMA = T.StructType([
    T.StructField("run_id", S_, False),
    T.StructField("table_name", S_, False),                   # silver table validated
    T.StructField("event_dates", T.ArrayType(T.DateType(), False), True),  # null: dimension, validated whole
    T.StructField("expectation_type", S_, False),             # e.g. expect_column_values_to_be_between
    T.StructField("column_name", S_, True),                   # null for table-level; "a,b" for several
    T.StructField("severity", S_, False),                     # critical | warning
    T.StructField("success", B, False),
    T.StructField("element_count", L, True),                  # rows in the batch (after any row_condition)
    T.StructField("missing_count", L, True),                  # nulls, which column-map expectations skip
    T.StructField("unexpected_count", L, True),
    T.StructField("unexpected_percent", D, True),             # of non-null values, as GX reports it
    T.StructField("observed_value", S_, True),                # JSON; aggregate expectations only
    T.StructField("sample_values", S_, True),                 # JSON list of a few unexpected values
    T.StructField("sample_rows", S_, True),                   # JSON list of their rows' keys
    T.StructField("exception_message", S_, True),             # the check itself could not run
    T.StructField("kwargs_json", S_, False),                  # the expectation's parameters (thresholds used)
    T.StructField("notes", S_, True),
    T.StructField("thresholds_version", S_, False),           # version(s) of schemas/quality_thresholds.csv
    T.StructField("rows_validated", L, False),
    T.StructField("validation_s", D, False),                  # wall time of the GX validation of the run
    T.StructField("validated_at", TS, False),
])

QUALITY_RESULTS = TableSpec(
    "quality_results", "ops", QUALITY_RESULTS_SCHEMA,
    natural_key=("table_name", "run_id", "expectation_type", "column_name", "kwargs_json"),
    partition_cols=("table_name",),
)
