"""``delta_log.add_files``: Parquet files committed to a Delta table as they are, on real Delta tables (Spark
creates and reads them, delta-rs commits)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from jobs.platform import delta_log, delta_tables
from jobs.platform.settings import Settings
from schemas.tables import TableSpec

SPEC = TableSpec("files_test", "bronze", T.StructType([
    T.StructField("file_key", T.StringType()), T.StructField("value_kwh", T.DoubleType()),
    T.StructField("day", T.StringType())]), partition_cols=("day",), stats_cols=("file_key",))


@pytest.fixture
def lake(tmp_path) -> Settings:
    return Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")


def staged(tmp_path, key: str, values: list[float], day: str = "d1") -> delta_log.DataFile:
    path = tmp_path / "staged" / f"{key}-{len(list(tmp_path.glob('staged/*')))}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"file_key": [key] * len(values), "value_kwh": values}), path)
    return delta_log.DataFile(path=path, partition_values={"day": day}, key_value=key, num_records=len(values),
                       min_values={"file_key": key}, max_values={"file_key": key}, null_count={"file_key": 0})


def total_kwh(spark, lake) -> float:
    return sum(r["value_kwh"] for r in delta_tables.read_table(spark, SPEC, lake).collect())


def other_run_commits_first(monkeypatch, lake, other: delta_log.DataFile) -> None:
    """Make the next delta-rs commit to the table land after another run's commit of ``other`` (in d1)."""
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction

    table = delta_log.table_path(SPEC, lake)
    real_commit = DeltaTable.create_write_transaction

    def commit_after_the_other_run(self, actions, *args, **kwargs):
        monkeypatch.setattr(DeltaTable, "create_write_transaction", real_commit)
        rel = "day=d1/other-run.parquet"
        (table / rel).write_bytes(other.path.read_bytes())
        DeltaTable(str(table)).create_write_transaction(
            [AddAction(rel, other.path.stat().st_size, {"day": "d1"}, 0, True, other.stats_json())],
            mode="append", schema=self.schema(), partition_by=["day"])
        return real_commit(self, actions, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", commit_after_the_other_run)


def test_files_are_added_and_a_second_delivery_of_a_key_replaces_the_first(spark, lake, tmp_path):
    assert delta_log.add_files(spark, SPEC, [staged(tmp_path, "a", [1.0, 2.0]), staged(tmp_path, "b", [10.0])], "file_key", lake)
    assert total_kwh(spark, lake) == 13.0                        # 1 + 2 + 10
    assert delta_log.add_files(spark, SPEC, [staged(tmp_path, "a", [4.0])], "file_key", lake)
    assert total_kwh(spark, lake) == 14.0                        # a's 1 + 2 replaced by 4; b's 10 stays
    # the same key in another partition is another slice: nothing there is replaced
    assert delta_log.add_files(spark, SPEC, [staged(tmp_path, "a", [100.0], day="d2")], "file_key", lake)
    assert total_kwh(spark, lake) == 114.0


def test_a_file_that_may_hold_other_keys_too_is_left_to_spark(spark, lake, tmp_path):
    # a Spark-written file with keys a and c: only a rewrite could remove a's rows from it
    delta_tables.append(spark.createDataFrame([("a", 1.0, "d1"), ("c", 5.0, "d1")], SPEC.schema).coalesce(1), SPEC, lake)
    from deltalake import DeltaTable

    before = DeltaTable(str(delta_log.table_path(SPEC, lake))).version()
    assert not delta_log.add_files(spark, SPEC, [staged(tmp_path, "a", [2.0])], "file_key", lake)
    assert DeltaTable(str(delta_log.table_path(SPEC, lake))).version() == before   # nothing committed
    assert total_kwh(spark, lake) == 6.0


def test_rows_of_the_same_key_added_by_a_concurrent_writer_are_reported(spark, lake, tmp_path, monkeypatch):
    """Two runs of the same input at once: the other run's commit lands between this run's look at the
    table and its own commit. delta-rs commits both (neither removes a file the other removes), so
    ``add_files`` must notice the second copy and say so; the caller then replaces through Spark."""
    delta_log.add_files(spark, SPEC, [staged(tmp_path, "b", [10.0])], "file_key", lake)
    other_run_commits_first(monkeypatch, lake, staged(tmp_path, "a", [1.0]))
    assert not delta_log.add_files(spark, SPEC, [staged(tmp_path, "a", [1.0])], "file_key", lake)
    assert total_kwh(spark, lake) == 12.0                        # 10 + a's 1 twice: the caller's to replace
    delta_tables.replace_where(spark.createDataFrame([("a", 1.0, "d1")], SPEC.schema), SPEC,
                     "day = 'd1' AND file_key = 'a'", lake)
    assert total_kwh(spark, lake) == 11.0


def test_files_for_empty_partitions_are_committed_and_the_others_returned(spark, lake, tmp_path):
    delta_tables.append(spark.createDataFrame([("x", 7.0, "d2")], SPEC.schema), SPEC, lake)
    new_day, old_day = staged(tmp_path, "a", [1.0, 2.0], day="d1"), staged(tmp_path, "b", [10.0], day="d2")
    assert delta_log.add_files_to_empty(spark, SPEC, [new_day, old_day], lake) == [old_day]
    assert total_kwh(spark, lake) == 10.0                        # 7 + a's 1 + 2; b is the caller's to MERGE
    # d1 holds rows now: a second file for it is returned too
    assert delta_log.add_files_to_empty(spark, SPEC, [staged(tmp_path, "c", [5.0], day="d1")], lake) != []


def test_files_for_empty_partitions_a_concurrent_writer_fills_are_taken_back(spark, lake, tmp_path, monkeypatch):
    """Two runs of the same input at once: the other run's file lands in the partition between this run's
    look and its commit. Both commits succeed (appends do not conflict in delta-rs), so this run must see
    the other file, take its own back and hand its rows to the caller's MERGE."""
    delta_log.add_files_to_empty(spark, SPEC, [staged(tmp_path, "b", [10.0], day="d2")], lake)
    other_run_commits_first(monkeypatch, lake, staged(tmp_path, "a", [1.0]))
    ours = staged(tmp_path, "a", [1.0])
    assert delta_log.add_files_to_empty(spark, SPEC, [ours], lake) == [ours]
    assert total_kwh(spark, lake) == 11.0                        # b's 10 + the other run's 1; ours removed


def test_timestamp_statistics_are_written_as_the_delta_log_writes_them():
    import datetime as dt

    f = delta_log.DataFile(path=None, partition_values={}, key_value=None, num_records=1,
                    min_values={"ts": dt.datetime(2026, 11, 2, 7, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))},
                    max_values={"day": dt.date(2026, 11, 2)})
    # 07:30:00.123456 at UTC+8 is 23:30:00.123 UTC of the day before, cut to the millisecond
    assert '"ts": "2026-11-01T23:30:00.123Z"' in f.stats_json() and '"day": "2026-11-02"' in f.stats_json()
