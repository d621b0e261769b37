"""The bookkeeping's reads and writes that go through the Delta log with delta-rs (no Spark job), checked
against what Spark reads and writes on the same real tables."""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import types as T

from jobs import io
from jobs.settings import Settings
from schemas.tables import TableSpec

SPEC = TableSpec("log_test", "ops", T.StructType([
    T.StructField("source", T.StringType(), False), T.StructField("sha", T.StringType(), False),
    T.StructField("rows", T.LongType(), False), T.StructField("at", T.TimestampType(), False)]),
    partition_cols=("source",))
AT = dt.datetime(2026, 11, 2, 7, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def lake(tmp_path) -> Settings:
    return Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")


def test_rows_appended_by_delta_rs_read_back_by_spark_and_by_partition(spark, lake):
    assert io.read_column(SPEC, "sha", ("source", "a"), lake) == []           # no table yet: no values
    io.append(spark.createDataFrame([("a", "s1", 3, AT)], SPEC.schema), SPEC, lake)   # Spark creates and writes
    io.append_rows(spark, SPEC, [("a", "s2", 5, AT), ("b", "s3", 7, AT)], lake)
    rows = sorted((r["source"], r["sha"], r["rows"], r["at"].replace(tzinfo=dt.timezone.utc))
                  for r in io.read_table(spark, SPEC, lake).collect())
    assert rows == [("a", "s1", 3, AT), ("a", "s2", 5, AT), ("b", "s3", 7, AT)]
    assert sorted(io.read_column(SPEC, "sha", ("source", "a"), lake)) == ["s1", "s2"]
    assert io.last_commit(SPEC, lake)["operation"] == "WRITE"


def test_rows_written_is_the_last_commits_output_rows(spark, lake):
    io.append(spark.createDataFrame([("a", f"s{n}", n, AT) for n in range(4)], SPEC.schema), SPEC, lake)
    assert io.rows_written(spark, SPEC, lake) == 4
    io.replace_where(spark.createDataFrame([("a", "s9", 9, AT)], SPEC.schema), SPEC, "source = 'a'", lake)
    assert io.rows_written(spark, SPEC, lake) == 1                         # the overwrite wrote 1 row
