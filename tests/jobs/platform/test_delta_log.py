"""The bookkeeping's reads and writes that go through the Delta log with delta-rs (no Spark job), checked
against what Spark reads and writes on the same real tables."""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import types as T

from jobs.platform import delta_log, delta_tables
from jobs.platform.settings import Settings
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
    assert delta_log.read_column(SPEC, "sha", ("source", "a"), lake) == []           # no table yet: no values
    delta_tables.append(spark.createDataFrame([("a", "s1", 3, AT)], SPEC.schema), SPEC, lake)   # Spark creates and writes
    delta_log.append_rows(spark, SPEC, [("a", "s2", 5, AT), ("b", "s3", 7, AT)], lake)
    rows = sorted((r["source"], r["sha"], r["rows"], r["at"].replace(tzinfo=dt.timezone.utc))
                  for r in delta_tables.read_table(spark, SPEC, lake).collect())
    assert rows == [("a", "s1", 3, AT), ("a", "s2", 5, AT), ("b", "s3", 7, AT)]
    assert sorted(delta_log.read_column(SPEC, "sha", ("source", "a"), lake)) == ["s1", "s2"]
    assert delta_log.last_commit(SPEC, lake)["operation"] == "WRITE"


def test_a_table_is_checkpointed_every_ten_commits_whichever_engine_commits(spark, lake):
    """delta-rs checkpoints every 100 commits unless the table says otherwise; the tables say 10, so an open
    replays at most nine commit files (the files ledger gets one commit per ingest run)."""
    delta_tables.append(spark.createDataFrame([("a", "s0", 1, AT)], SPEC.schema), SPEC, lake)   # Spark: v0 create, v1
    log = delta_log.table_path(SPEC, lake) / "_delta_log"
    assert delta_log.log_table(str(delta_log.table_path(SPEC, lake))).metadata().configuration[
        "delta.checkpointInterval"] == "10"
    for i in range(2, 9):                                          # delta-rs: versions 2..8, no checkpoint yet
        delta_log.append_rows(spark, SPEC, [("a", f"s{i}", i, AT)], lake)
    assert not list(log.glob("*.checkpoint.parquet"))
    # version 9 is the tenth commit (counting version 0): delta-rs checkpoints it
    delta_log.append_rows(spark, SPEC, [("b", "s9", 9, AT)], lake)
    assert [p.name for p in log.glob("*.checkpoint.parquet")] == ["00000000000000000009.checkpoint.parquet"]
    # the rows, read from the checkpoint: s0 (v1), s2..s8 (v2..v8), s9 (v9) = 1 + 7 + 1
    assert len(delta_log.read_column(SPEC, "sha", settings=lake)) == 9


# --- the small sources' writes through delta-rs: replace_rows, merge_rows, insert_missing -------------------
DAY_SPEC = TableSpec("rows_test", "silver", T.StructType([
    T.StructField("k", T.StringType(), False), T.StructField("v", T.DoubleType(), True),
    T.StructField("event_date_local", T.DateType(), False), T.StructField("source_file", T.StringType(), False)]),
    natural_key=("k",), partition_cols=("event_date_local",))
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def arrow_rows(rows: list[tuple]):
    import pyarrow as pa

    return pa.Table.from_pylist([dict(zip(("k", "v", "event_date_local", "source_file"), r)) for r in rows])


def spark_rows(spark, lake) -> list[tuple]:
    return sorted((r["k"], r["v"], r["event_date_local"], r["source_file"])
                  for r in delta_tables.read_table(spark, DAY_SPEC, lake).collect())


def test_merge_rows_inserts_new_keys_updates_changed_values_only_and_counts_them(spark, lake):
    first = delta_log.merge_rows(spark, DAY_SPEC, arrow_rows([("a", 1.0, D1, "f1"), ("b", 2.0, D1, "f1")]),
                          partition_values=[D1], settings=lake)
    assert first == {"inserted": 2, "updated": 0}
    # a: same value from a later file (lineage only: not an update); b: changed; c: new; a key of another
    # day is not matched because the partitions touched are in the condition
    second = delta_log.merge_rows(spark, DAY_SPEC, arrow_rows([("a", 1.0, D1, "f2"), ("b", 2.5, D1, "f2"), ("c", 3.0, D1, "f2")]),
                           partition_values=[D1], settings=lake)
    assert second == {"inserted": 1, "updated": 1}
    assert spark_rows(spark, lake) == [("a", 1.0, D1, "f1"), ("b", 2.5, D1, "f2"), ("c", 3.0, D1, "f2")]
    # a null value compares null-safely: null → null is no change, 3.0 → null is one
    third = delta_log.merge_rows(spark, DAY_SPEC, arrow_rows([("c", None, D1, "f3")]), partition_values=[D1], settings=lake)
    assert third == {"inserted": 0, "updated": 1}
    assert delta_log.merge_rows(spark, DAY_SPEC, arrow_rows([("c", None, D1, "f4")]), partition_values=[D1],
                         settings=lake) == {"inserted": 0, "updated": 0}
    assert delta_log.merge_rows(spark, DAY_SPEC, arrow_rows([("d", 1.0, D2, "f4")]), partition_values=[],
                         settings=lake) == {"inserted": 0, "updated": 0}     # no partition touched: no write


def test_replace_rows_replaces_exactly_the_rows_of_its_condition(spark, lake):
    delta_log.replace_rows(spark, DAY_SPEC, arrow_rows([("a", 1.0, D1, "f1"), ("b", 2.0, D1, "f2"), ("c", 3.0, D2, "f1")]),
                    "true", lake)
    # file f1 of day 1 again, now with one row: a and c (other day) stay as they are except a is replaced
    delta_log.replace_rows(spark, DAY_SPEC, arrow_rows([("a2", 9.0, D1, "f1")]),
                    "`event_date_local` IN ('2026-11-01') AND `source_file` IN ('f1')", lake)
    assert spark_rows(spark, lake) == [("a2", 9.0, D1, "f1"), ("b", 2.0, D1, "f2"), ("c", 3.0, D2, "f1")]
    from deltalake.exceptions import DeltaError

    # a row outside its own condition is refused by delta-rs's predicate check, nothing is written
    with pytest.raises(DeltaError, match="rows failed validation check"):
        delta_log.replace_rows(spark, DAY_SPEC, arrow_rows([("z", 0.0, D2, "f9")]), "`source_file` IN ('f1')", lake)
    assert len(spark_rows(spark, lake)) == 3


def test_insert_missing_adds_only_rows_not_there_and_a_concurrent_insert_is_retried_not_duplicated(spark, lake):
    cond = "t.source = 'a' AND t.source = s.source AND t.sha = s.sha"
    assert delta_log.insert_missing(spark, SPEC, [("a", "s1", 3, AT)], cond, lake) == 1
    assert delta_log.insert_missing(spark, SPEC, [("a", "s1", 3, AT), ("a", "s2", 4, AT)], cond, lake) == 1

    # another run inserts s3 between this run's read of the table and its commit: the commit conflicts,
    # is retried on the new version, and finds s3 there
    from deltalake import DeltaTable as LogTable

    real_merge = LogTable.merge
    raced = []

    def merge_after_other_run(self, *args, **kwargs):
        builder = real_merge(self, *args, **kwargs)
        if not raced:
            raced.append(1)
            delta_log.append_rows(spark, SPEC, [("a", "s3", 5, AT)], lake)
        return builder

    LogTable.merge = merge_after_other_run
    try:
        assert delta_log.insert_missing(spark, SPEC, [("a", "s3", 5, AT)], cond, lake) == 0
    finally:
        LogTable.merge = real_merge
    assert raced == [1]
    assert sorted(delta_log.read_column(SPEC, "sha", ("source", "a"), lake)) == ["s1", "s2", "s3"]


def test_replace_rows_with_exact_columns_refuses_rows_of_another_shape(spark, lake):
    import pyarrow as pa

    delta_log.replace_rows(spark, DAY_SPEC, arrow_rows([("a", 1.0, D1, "f1")]), "true", lake, exact_columns=True)
    wider = arrow_rows([("a", 2.0, D1, "f1")]).append_column("new_kpi", pa.array([1.0]))
    with pytest.raises(ValueError, match=r"new \['new_kpi'\], missing \[\]"):
        delta_log.replace_rows(spark, DAY_SPEC, wider, "true", lake, exact_columns=True)
    narrower = arrow_rows([("a", 2.0, D1, "f1")]).drop_columns(["v"])
    with pytest.raises(ValueError, match=r"missing \['v'\]"):
        delta_log.replace_rows(spark, DAY_SPEC, narrower, "true", lake, exact_columns=True)
    assert spark_rows(spark, lake) == [("a", 1.0, D1, "f1")]          # nothing was written
    delta_log.replace_rows(spark, DAY_SPEC, wider, "true", lake)               # without it, extra columns are left out
    assert spark_rows(spark, lake) == [("a", 2.0, D1, "f1")]
