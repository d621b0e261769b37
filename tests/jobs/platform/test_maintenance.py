"""Lake maintenance on small hand-built Delta tables written by Spark as the pipeline writes them: one
file per partition per append, so every append adds small files."""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from jobs.platform import delta_log, delta_tables, maintenance
from jobs.platform.maintenance import RetentionTooShortError
from jobs.platform.settings import Settings
from schemas.tables import INGEST_AUDIT, SILVER

TELEMATICS = SILVER["telematics"]


def _frames(day: dt.date, vins: list[str], start_no: int) -> list[dict]:
    at = dt.datetime(day.year, day.month, day.day, 2, 0)
    return [{"vin": vin, "event_ts_utc": at + dt.timedelta(seconds=10 * i), "speed_kmh": float(i),
             "soc_pct": 50.0 + i, "event_date_local": day, "source_file": f"telematics/{day}/f.jsonl",
             "record_no": start_no + i, "ingested_at": dt.datetime(2026, 11, 10)}
            for i, vin in enumerate(vins)]


def _append(spark, settings: Settings, rows: list[dict]) -> None:
    columns = [f.name for f in TELEMATICS.schema.fields]
    df = spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], TELEMATICS.schema)
    delta_tables.append(df.coalesce(1), TELEMATICS, settings)   # one Spark task: one file per day written


def _build_lake(spark, root: Path) -> Settings:
    """silver_telematics with 3 appends to 2026-11-02 and 2 to 2026-11-03 (5 files, all small), and an
    unpartitioned ops table with one file."""
    settings = Settings(lake_root=root / "lake", landing_root=root / "landing")
    d2, d3 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)
    _append(spark, settings, _frames(d2, ["VIN_C", "VIN_A"], 1) + _frames(d3, ["VIN_B"], 1))   # day 2: 1, day 3: 1
    _append(spark, settings, _frames(d2, ["VIN_B", "VIN_A"], 3) + _frames(d3, ["VIN_A"], 2))   # day 2: 2, day 3: 2
    _append(spark, settings, _frames(d2, ["VIN_A"], 5))                                         # day 2: 3
    delta_log.append_rows(spark, INGEST_AUDIT, [_audit_row()], settings)
    return settings


def _audit_row() -> tuple:
    at = dt.datetime(2026, 11, 10, 1, 0)
    return ("run1", "telematics", 1, 0, 8, 0, 0, 8, 0, "2026-11-02,2026-11-03", at, at)


def _table_rows(spark, settings: Settings, version: int | None = None) -> list[tuple]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    path = str(delta_log.table_path(TELEMATICS, settings))
    return sorted(tuple(r) for r in reader.load(path).collect())


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts)


def _health(spark, settings: Settings):
    rows = spark.read.format("delta").load(str(settings.lake_root / "ops" / "table_health")).collect()
    return {(r.stage, r.table_name, r.partition): r for r in rows}


def test_compaction_keeps_every_row_and_health_has_the_hand_counted_files(spark, tmp_path):
    settings = _build_lake(spark, tmp_path)
    table_dir = Path(delta_log.table_path(TELEMATICS, settings))
    before_rows = _table_rows(spark, settings)
    assert len(before_rows) == 2 + 1 + 2 + 1 + 1          # 7 frames written by the three appends
    bytes_by_day = {day: sum(p.stat().st_size for p in _data_files(table_dir / f"event_date_local={day}"))
                    for day in ("2026-11-02", "2026-11-03")}

    result = maintenance.run(settings)

    after_rows = _table_rows(spark, settings)
    assert after_rows == before_rows                      # full contents, every column
    health = _health(spark, settings)
    day2, day3 = "event_date_local=2026-11-02", "event_date_local=2026-11-03"
    # before: day 2 got a file from each of the 3 appends, day 3 from the first two; all far below 32 MiB
    assert health[("before", "silver_telematics", day2)].files == 3
    assert health[("before", "silver_telematics", day3)].files == 2
    assert health[("before", "silver_telematics", day2)].small_files == 3
    assert health[("before", "silver_telematics", day2)].small_file_share == 1.0
    assert health[("before", "silver_telematics", day2)].bytes == bytes_by_day["2026-11-02"]
    assert health[("before", "silver_telematics", day3)].bytes == bytes_by_day["2026-11-03"]
    assert health[("before", "ingest_audit", "")].files == 1
    # after: each day compacted into one file; the one-file ops table left alone
    assert health[("after", "silver_telematics", day2)].files == 1
    assert health[("after", "silver_telematics", day3)].files == 1
    assert health[("after", "ingest_audit", "")].files == 1
    report = {r["table"]: r for r in result["reports"]}
    assert report["silver_telematics"]["partitions_compacted"] == 2
    assert report["silver_telematics"]["files_removed"] == 5 and report["silver_telematics"]["files_added"] == 2
    assert report["ingest_audit"]["partitions_compacted"] == 0
    history = delta_log.log_table(str(table_dir)).history()
    optimize = [h for h in history if h["operation"] == "OPTIMIZE"]
    assert len(optimize) == 2                             # one commit per compacted day
    assert all(h["operationMetrics"]["plannerStrategy"] == "zOrder" for h in optimize), optimize
    assert all(h["zOrderBy"] == '["vin", "event_ts_utc"]' for h in optimize), optimize
    # the unpartitioned ops table has one file: nothing to compact, no OPTIMIZE commit
    audit_dir = settings.lake_root / "ops" / "ingest_audit"
    assert not [h for h in delta_log.log_table(str(audit_dir)).history() if h["operation"] == "OPTIMIZE"]


def test_second_run_changes_no_table_version(spark, tmp_path):
    settings = _build_lake(spark, tmp_path)
    maintenance.run(settings)
    first = delta_log.log_table(str(delta_log.table_path(TELEMATICS, settings))).version()
    second = {r["table"]: r for r in maintenance.run(settings)["reports"]}
    assert second["silver_telematics"]["partitions_compacted"] == 0
    assert second["silver_telematics"]["properties_set"] == {}
    assert second["silver_telematics"]["version_before"] == second["silver_telematics"]["version_after"] == first


def test_time_travel_within_the_retention_works_after_vacuum(spark, tmp_path):
    settings = _build_lake(spark, tmp_path)
    table_dir = Path(delta_log.table_path(TELEMATICS, settings))
    version_before = delta_log.log_table(str(table_dir)).version()
    rows_before = _table_rows(spark, settings)
    small_files = _data_files(table_dir)
    # an untracked file a crashed write left 40 days ago: older than the retention, VACUUM removes it
    orphan = table_dir / "event_date_local=2026-11-02" / "part-orphan-from-a-crashed-write.snappy.parquet"
    orphan.write_bytes(small_files[0].read_bytes())
    forty_days_ago = time.time() - 40 * 86400
    os.utime(orphan, (forty_days_ago, forty_days_ago))

    maintenance.run(settings)

    assert not orphan.exists()
    assert all(p.exists() for p in small_files)           # removed by compaction minutes ago: kept 720 h
    assert _table_rows(spark, settings, version=version_before) == rows_before
    assert _table_rows(spark, settings) == rows_before
    configuration = maintenance.open_table(
        maintenance.LakeTable("silver", "silver_telematics", table_dir), settings).metadata().configuration
    # tombstones: Delta's default 7 days raised to 720 h; the log's default, 30 days, is already 720 h
    assert configuration["delta.deletedFileRetentionDuration"] == "interval 720 hours"
    assert "delta.logRetentionDuration" not in configuration
    assert (table_dir / "_delta_log" / "_last_checkpoint").is_file()


def test_a_retention_shorter_than_the_time_travel_window_is_refused(spark, tmp_path):
    settings = _build_lake(spark, tmp_path)
    table_dir = Path(delta_log.table_path(TELEMATICS, settings))
    version = delta_log.log_table(str(table_dir)).version()
    files = _data_files(table_dir)

    # 719 h = one hour short of 30 days × 24 h
    with pytest.raises(RetentionTooShortError, match="719 h is shorter than the time-travel window of 720 h"):
        maintenance.run(settings, retention_hours=719)
    table = maintenance.LakeTable("silver", "silver_telematics", table_dir)
    with pytest.raises(RetentionTooShortError):
        maintenance.vacuum(table, settings, retention_hours=0)
    with pytest.raises(RetentionTooShortError):
        maintenance.run(settings.model_copy(update={"maintenance_vacuum_retention_hours": 168}))
    assert delta_log.log_table(str(table_dir)).version() == version   # nothing ran
    assert _data_files(table_dir) == files
    assert not (settings.lake_root / "ops" / "table_health").exists()
    assert maintenance.main(["--retention-hours", "24"]) == 2


def test_a_shorter_log_retention_on_a_table_is_raised_to_the_window(spark, tmp_path):
    settings = _build_lake(spark, tmp_path)
    table_dir = Path(delta_log.table_path(TELEMATICS, settings))
    table = maintenance.LakeTable("silver", "silver_telematics", table_dir)
    maintenance.open_table(table, settings).alter.set_table_properties(
        {"delta.logRetentionDuration": "interval 2 days", "delta.deletedFileRetentionDuration": "interval 60 days"})
    set_now = maintenance.ensure_retention_properties(table, settings, 720)
    # 2 days = 48 h < 720 h: raised; 60 days = 1440 h: longer than needed, kept
    assert set_now == {"delta.logRetentionDuration": "interval 720 hours"}
    configuration = maintenance.open_table(table, settings).metadata().configuration
    assert configuration["delta.deletedFileRetentionDuration"] == "interval 60 days"


def test_zorder_columns_exist_in_the_declared_silver_schemas():
    for table, columns in maintenance.ZORDER_COLUMNS.items():
        spec = SILVER[table.removeprefix("silver_")]
        names = {f.name for f in spec.schema.fields}
        assert set(columns) <= names, (table, set(columns) - names)
        assert not set(columns) & set(spec.partition_cols)   # Z-order works within a partition


def test_interval_hours_reads_delta_intervals_and_rejects_others():
    assert maintenance.interval_hours("interval 30 days", where="t") == 720
    assert maintenance.interval_hours("INTERVAL 1 week", where="t") == 168
    with pytest.raises(ValueError, match="t: cannot read the interval '30 days'"):
        maintenance.interval_hours("30 days", where="t")
