"""The table layer (jobs/platform/delta_log.py and delta_tables.py) on a real S3 HTTP endpoint: moto's standalone server on 127.0.0.1.

Every write path the pipeline uses, against one table in a bucket, through the storage module only:
Spark creates the table (s3a), delta-rs appends, replaces by predicate and MERGEs, a staged Parquet file
is uploaded and committed by the hand-written delta-rs commit, Spark MERGEs and replaces by condition; after
each step Spark (s3a) and delta-rs read the same rows. Run by `make test-cluster` (its own process: the
Spark session is built with the object-store settings).
"""
from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from jobs.tools.local_cluster import LocalS3Server
from schemas.tables import TableSpec

pytestmark = pytest.mark.cluster

SPEC = TableSpec("obj_trips", "silver", T.StructType([
    T.StructField("trip_id", T.StringType(), False),
    T.StructField("energy_kwh", T.DoubleType(), True),
    T.StructField("event_date", T.DateType(), False),
]), natural_key=("trip_id",), partition_cols=("event_date",))
D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


@pytest.fixture(scope="module")
def s3_lake(tmp_path_factory):
    from jobs.platform import settings as settings_module

    saved = dict(os.environ)
    with LocalS3Server(log_path=tmp_path_factory.mktemp("s3") / "moto.log") as server:
        server.create_bucket("lake")
        os.environ.update(server.environment())
        os.environ["COALCHAIN_LAKE_ROOT"] = "s3://lake/test"
        settings_module.get_settings.cache_clear()
        from jobs.platform.session import get_spark

        spark = get_spark("object-store-tests")
        try:
            yield spark, settings_module.get_settings()
        finally:
            spark.stop()
            os.environ.clear()
            os.environ.update(saved)
            settings_module.get_settings.cache_clear()


def rows_both_ways(spark, settings):
    """The table's rows as Spark reads them (s3a) and as delta-rs reads them, as sorted tuples."""
    from jobs.platform import delta_log, delta_tables

    by_spark = sorted((r.trip_id, r.energy_kwh, r.event_date) for r in delta_tables.read_existing(spark, SPEC, settings).collect())
    table = delta_log.log_table(str(delta_log.table_path(SPEC, settings))).to_pyarrow_table()
    by_delta_rs = sorted((r["trip_id"], r["energy_kwh"], r["event_date"]) for r in table.to_pylist())
    assert by_spark == by_delta_rs
    return by_spark


def test_every_write_path_on_the_bucket(s3_lake, tmp_path):
    from jobs.platform import delta_log, delta_tables
    from jobs.platform.storage import S3Location, list_files

    spark, settings = s3_lake
    assert delta_log.table_path(SPEC, settings) == S3Location("lake", "test/silver/obj_trips")
    assert not delta_log.table_exists(SPEC, settings)
    delta_log.ensure_table(spark, SPEC, settings)                       # Spark commit, version 0
    assert delta_log.table_exists(SPEC, settings)
    assert rows_both_ways(spark, settings) == []

    delta_log.append_rows(spark, SPEC, [("t1", 10.0, D1), ("t2", 20.0, D1)], settings)      # delta-rs append
    assert rows_both_ways(spark, settings) == [("t1", 10.0, D1), ("t2", 20.0, D1)]

    # delta-rs replace by predicate: day D1 becomes t1 = 11.0 only
    delta_log.replace_rows(spark, SPEC, pa.table({"trip_id": ["t1"], "energy_kwh": [11.0], "event_date": [D1]}),
                    "event_date = '2026-11-02'", settings)
    assert rows_both_ways(spark, settings) == [("t1", 11.0, D1)]

    # delta-rs MERGE on the natural key: t1 updated to 12.0, t3 inserted
    delta_log.merge_rows(spark, SPEC, pa.table({"trip_id": ["t1", "t3"], "energy_kwh": [12.0, 30.0],
                                         "event_date": [D1, D2]}), settings=settings)
    assert rows_both_ways(spark, settings) == [("t1", 12.0, D1), ("t3", 30.0, D2)]

    # a staged Parquet file uploaded into the table prefix and committed by delta-rs (add_files)
    staged = tmp_path / "staged.parquet"
    pq.write_table(pa.table({"trip_id": ["t4", "t4b"], "energy_kwh": [40.0, 50.0]}), staged)
    committed = delta_log.add_files(spark, SPEC, [delta_log.DataFile(staged, {"event_date": "2026-11-03"}, "t4", 2,
                                                       {"trip_id": "t4"}, {"trip_id": "t4b"}, {"trip_id": 0})],
                             "trip_id", settings)
    assert committed
    assert rows_both_ways(spark, settings) == [("t1", 12.0, D1), ("t3", 30.0, D2), ("t4", 40.0, D2),
                                               ("t4b", 50.0, D2)]

    # Spark MERGE: t4 updated to 44.0, t6 inserted
    source = spark.createDataFrame([("t4", 44.0, D2), ("t6", 60.0, D2)], SPEC.schema)
    delta_tables.merge_upsert(source, SPEC, partition_values=[D2], settings=settings)
    assert rows_both_ways(spark, settings) == [("t1", 12.0, D1), ("t3", 30.0, D2), ("t4", 44.0, D2),
                                               ("t4b", 50.0, D2), ("t6", 60.0, D2)]

    # Spark replaceWhere of day D1
    delta_tables.replace_where(spark.createDataFrame([("t7", 70.0, D1)], SPEC.schema), SPEC,
                     "event_date = '2026-11-02'", settings)
    assert rows_both_ways(spark, settings) == [("t3", 30.0, D2), ("t4", 44.0, D2), ("t4b", 50.0, D2),
                                               ("t6", 60.0, D2), ("t7", 70.0, D1)]
    # 7 commits in one log, read through delta-rs: 0 create, 1 append, 2 replace, 3 merge, 4 add, 5-6 Spark
    assert delta_log.log_table(str(delta_log.table_path(SPEC, settings))).version() == 6

    # created by delta-rs on the bucket with a checkpoint every 10 commits (delta-rs's own default is 100):
    # four more delta-rs appends, versions 7..10; delta-rs checkpoints the tenth commit (version 9)
    table = delta_log.log_table(str(delta_log.table_path(SPEC, settings)))
    assert table.metadata().configuration["delta.checkpointInterval"] == "10"
    for i in range(7, 11):
        delta_log.append_rows(spark, SPEC, [(f"c{i}", float(i), D2)], settings)
    keys = {f.rel_key for f in list_files(settings, delta_log.table_path(SPEC, settings) / "_delta_log")}
    assert sorted(k for k in keys if k.endswith(".checkpoint.parquet")) == ["00000000000000000009.checkpoint.parquet"], keys
