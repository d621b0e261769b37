"""Landing → bronze → silver on tiny hand-written landing folders: real Spark, real Delta tables."""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables
from jobs.ingest.runner import ingest_source
from jobs.platform.settings import Settings
from schemas.tables import BRONZE, INGESTED_FILES, QUARANTINE, SILVER

SESSION_HEADER = ("session_id,station_id,connector_id,vin,plug_in_local,charge_start_local,charge_end_local,"
                  "plug_out_local,meter_start_kwh,meter_stop_kwh,max_power_kw,stop_reason")
D1, D3 = dt.date(2026, 11, 2), dt.date(2026, 11, 4)


def frame(vin: str, t: str, *, speed=352, odometer=1234567, voltage=6120, current=31000, soc=78,
          coord="WGS84", msg="realtime") -> str:
    return json.dumps({
        "vin": vin, "msg_type": msg, "collect_time": t,
        "vehicle": {"speed": speed, "odometer": odometer, "total_voltage": voltage, "total_current": current, "soc": soc},
        "fuel_cell": None, "engine": None,
        "position": {"valid": 1, "coord_sys": coord, "lon": 109781234, "lat": 39608765},
    })


def put(root: Path, rel: str, text: str, gz: bool = False) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path


@pytest.fixture
def lake(tmp_path) -> Settings:
    return Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")


def silver(spark, source, settings):
    return delta_tables.read_table(spark, SILVER[source], settings)


def test_telematics_units_time_zone_and_sentinels(spark, lake):
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", "\n".join([
        frame("V1", "2026-11-02 07:30:00"),
        frame("V1", "2026-11-02 07:30:30", speed=0xFFFF, current=29000, soc=0xFE, odometer=1234570),
    ]) + "\n")
    ingest_source(spark, "telematics", D1, D1, lake)
    rows = {r["record_no"]: r for r in silver(spark, "telematics", lake).collect()}
    first, second = rows[1], rows[2]
    # Beijing 2026-11-02 07:30:00 (UTC+8, no DST) = 2026-11-01 23:30:00 UTC, still local day 2026-11-02
    assert first["event_ts_utc"] == dt.datetime(2026, 11, 1, 23, 30, 0)
    assert first["event_date_local"] == dt.date(2026, 11, 2)
    # odometer 1234567 × 0.1 km = 123456.7 km; speed 352 × 0.1 = 35.2 km/h; voltage 6120 × 0.1 = 612.0 V
    assert first["odometer_km"] == pytest.approx(123456.7, abs=1e-9)
    assert first["speed_kmh"] == pytest.approx(35.2) and first["total_voltage_v"] == pytest.approx(612.0)
    # current: 31000 × 0.1 − 3000 = +100 A (discharge); 29000 × 0.1 − 3000 = −100 A (regen / charging)
    assert first["total_current_a"] == pytest.approx(100.0)
    assert second["total_current_a"] == pytest.approx(-100.0)
    # 0xFFFF speed and 0xFE SOC are "invalid/abnormal" sentinels → null, the frame is kept
    assert second["speed_kmh"] is None and second["soc_pct"] is None and first["soc_pct"] == 78


def test_gcj02_positions_are_converted_back_to_wgs84():
    import numpy as np

    from jobs.ingest.telematics import gcj02_offset, gcj02_to_wgs84

    lon, lat = np.array([109.78, 121.47]), np.array([39.61, 31.23])   # Ordos, Shanghai (WGS84)
    dlon, dlat = gcj02_offset(lon, lat)
    gcj_lon, gcj_lat = lon + dlon, lat + dlat
    # The GCJ-02 offset in China is hundreds of metres (1e-3 deg ≈ 85 m of longitude at 39.6° N) ...
    assert (np.abs(gcj_lon - lon) > 1e-3).all()
    back_lon, back_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    # ... and one inverse step recovers WGS84 to within ~2 m (2e-5 deg ≈ 1.7 m of longitude)
    assert np.abs(back_lon - lon).max() < 2e-5 and np.abs(back_lat - lat).max() < 2e-5


def test_bad_rows_are_quarantined_with_file_row_field_and_reason(spark, lake):
    put(lake.landing_root, "charging_sessions/2026-11-02/s.csv", "\n".join([
        SESSION_HEADER,
        "S1,CS1,1,V1,2026-11-02 07:30:00,2026-11-02 07:32:00,2026-11-02 08:30:00,2026-11-02 08:35:00,1000.0,1250.5,300,full",
        "S2,CS1,2,V2,2026-11-02 09:00:00,,,2026-11-02 10:00:00,abc,1300,300,",
        "S3,CS1,2,V2,2026-11-02 11:00:00,,,2026-11-02 12:00:00,1300,1200,300,",
    ]) + "\n")
    result = ingest_source(spark, "charging_sessions", D1, D1, lake)
    assert (result.bronze_rows, result.quarantined_rows, result.silver_inserted) == (3, 2, 1)
    s1 = silver(spark, "charging_sessions", lake).first()
    assert s1["energy_kwh"] == pytest.approx(250.5)  # 1250.5 − 1000.0 kWh
    q = {r["record_no"]: r for r in delta_tables.read_table(spark, QUARANTINE, lake).collect()}
    assert q[2]["source_file"] == "charging_sessions/2026-11-02/s.csv" and q[2]["line_no"] == 3
    assert q[2]["field"] == "meter_start_kwh" and "cannot read 'abc' as double" in q[2]["reason"]
    assert q[3]["field"] == "meter_stop_kwh" and "below meter_start_kwh" in q[3]["reason"]


def test_reingesting_and_renamed_replays_change_nothing(spark, lake):
    body = SESSION_HEADER + "\nS1,CS1,1,V1,2026-11-02 07:30:00,,,2026-11-02 08:35:00,1000,1250,300,\n"
    put(lake.landing_root, "charging_sessions/2026-11-02/s.csv", body)
    ingest_source(spark, "charging_sessions", D1, D3, lake)
    versions = {n: _version(spark, spec, lake) for n, spec in
                (("bronze", BRONZE["charging_sessions"]), ("silver", SILVER["charging_sessions"]))}
    # the same landing folder again, plus the same file delivered again two days later under a new name
    put(lake.landing_root, "charging_sessions/2026-11-04/s_again.csv", body)
    again = ingest_source(spark, "charging_sessions", D1, D3, lake)
    assert (again.files_new, again.files_skipped) == (0, 2)
    assert _version(spark, BRONZE["charging_sessions"], lake) == versions["bronze"]
    assert _version(spark, SILVER["charging_sessions"], lake) == versions["silver"]
    assert silver(spark, "charging_sessions", lake).count() == 1


def test_the_landing_scan_given_is_the_one_ingested_a_file_landed_since_waits_for_the_next_run(spark, lake):
    from jobs.ingest.runner import has_new_files, landing_files

    first = SESSION_HEADER + "\nS1,CS1,1,V1,2026-11-02 07:30:00,,,2026-11-02 08:35:00,1000,1250,300,\n"
    later = SESSION_HEADER + "\nS2,CS1,1,V2,2026-11-03 09:00:00,,,2026-11-03 10:00:00,1250,1400,300,\n"
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", first)
    found = landing_files("charging_sessions", D1, D3, lake)
    assert [f.rel_path for f in found.files] == ["charging_sessions/2026-11-02/a.csv"]
    put(lake.landing_root, "charging_sessions/2026-11-03/b.csv", later)   # lands after the scan
    assert has_new_files("charging_sessions", D1, D3, lake, found=found)
    result = ingest_source(spark, "charging_sessions", D1, D3, lake, found=found)
    assert (result.files_new, result.files_skipped) == (1, 0)
    assert [r["session_id"] for r in silver(spark, "charging_sessions", lake).collect()] == ["S1"]
    # the next run scans again: b.csv is new, a.csv known
    assert has_new_files("charging_sessions", D1, D3, lake)
    again = ingest_source(spark, "charging_sessions", D1, D3, lake)
    assert (again.files_new, again.files_skipped) == (1, 1)
    assert sorted(r["session_id"] for r in silver(spark, "charging_sessions", lake).collect()) == ["S1", "S2"]
    assert not has_new_files("charging_sessions", D1, D3, lake)


def test_late_record_lands_in_its_event_day_and_too_late_or_future_ones_are_quarantined(spark, lake):
    # delivered on 2026-11-09: one frame of 11-04 (5 days late, allowed), one of 10-30 (10 days late),
    # one dated 2031 (a clock jump)
    put(lake.landing_root, "telematics/2026-11-09/late.jsonl.gz", "\n".join([
        frame("V1", "2026-11-04 10:00:00", msg="resend"),
        frame("V1", "2026-10-30 10:00:00", msg="resend"),
        frame("V1", "2031-11-09 10:00:00"),
    ]) + "\n", gz=True)
    result = ingest_source(spark, "telematics", dt.date(2026, 11, 9), dt.date(2026, 11, 9), lake)
    assert result.event_dates == ["2026-11-04"]
    reasons = sorted(r["reason"] for r in delta_tables.read_table(spark, QUARANTINE, lake).collect())
    assert "collect_time: event day 2026-10-30 is 10 days before delivery day 2026-11-09 (lateness allowance 7 days)" in reasons
    assert "collect_time: event day 2031-11-09 is after delivery day 2026-11-09: clock jump" in reasons


def test_duplicates_inside_a_batch_balance(spark, lake):
    rows = [frame("V1", "2026-11-02 07:30:00"), frame("V1", "2026-11-02 07:30:00", msg="resend"),
            frame("V1", "2026-11-02 07:31:00"), '{"vin":"V1","collect_time":"2026-11-02 07:3']
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", "\n".join(rows) + "\n")
    r = ingest_source(spark, "telematics", D1, D1, lake)
    # 4 records: 1 truncated line → quarantine; 3 valid with 2 distinct keys → 2 silver + 1 duplicate
    assert (r.bronze_rows, r.quarantined_rows, r.silver_inserted, r.duplicate_rows) == (4, 1, 2, 1)
    assert r.bronze_rows == r.silver_inserted + r.duplicate_rows + r.quarantined_rows
    # the run's staged Parquet is gone once its Delta writes are done
    assert list((lake.lake_root / "_staging" / "telematics").iterdir()) == []


def test_names_that_try_to_escape_are_rejected(spark, lake, tmp_path):
    outside = put(tmp_path, "outside/evil.csv", SESSION_HEADER + "\n")
    link_dir = lake.landing_root / "charging_sessions" / "2026-11-02"
    link_dir.mkdir(parents=True)
    (link_dir / "link.csv").symlink_to(outside)
    put(lake.landing_root, "charging_sessions/2026-11-02/" + "x" * 210 + ".csv", SESSION_HEADER + "\n")
    put(lake.landing_root, "charging_sessions/..%2F..%2Fetc/a.csv", SESSION_HEADER + "\n")
    result = ingest_source(spark, "charging_sessions", D1, D1, lake)
    reasons = sorted(reason for _, reason in result.files_rejected)
    assert reasons == ["file name longer than 200 characters", "folder name is not a yyyy-mm-dd delivery day",
                       "symlink pointing outside the landing root"]
    assert result.files_new == 0


def _version(spark, spec, settings) -> int:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, str(delta_log.table_path(spec, settings))).history(1).first()["version"]


def test_malformed_files_are_rejected_once_good_files_land_drift_reported(spark, lake):
    row = "S{n},CS1,1,V1,2026-11-02 07:30:00,,,2026-11-02 08:35:00,1000,1250,300,{reason}"
    # GBK-encoded with a Chinese stop reason and an unknown extra column
    put(lake.landing_root, "charging_sessions/2026-11-02/gbk.csv", "")
    (lake.landing_root / "charging_sessions/2026-11-02/gbk.csv").write_bytes(
        (SESSION_HEADER + ",operator_note\n" + row.format(n=1, reason="充满") + ",备注\n").encode("gbk"))
    # UTF-8 with a byte-order mark
    put(lake.landing_root, "charging_sessions/2026-11-02/bom.csv", "\ufeff" + SESSION_HEADER + "\n" + row.format(n=2, reason="full") + "\n")
    # the required column meter_start_kwh is missing
    put(lake.landing_root, "charging_sessions/2026-11-02/missing.csv",
        SESSION_HEADER.replace("meter_start_kwh,", "") + "\nS3,CS1,1,V1,2026-11-02 07:30:00,,,2026-11-02 08:35:00,1250,300,\n")
    put(lake.landing_root, "charging_sessions/2026-11-02/empty.csv", "")
    result = ingest_source(spark, "charging_sessions", D1, D1, lake)

    sessions = {r["session_id"]: r for r in silver(spark, "charging_sessions", lake).collect()}
    assert sorted(sessions) == ["S1", "S2"] and sessions["S1"]["stop_reason"] == "充满"
    assert result.header_drift["charging_sessions/2026-11-02/gbk.csv"] == \
        "unknown columns ignored: operator_note; file decoded as gb18030, not UTF-8"
    # the file without meter_start_kwh is rejected once (no row of it quarantined), the 0-byte file too
    assert delta_tables.read_table(spark, QUARANTINE, lake).count() == 0
    rejected = dict(result.files_rejected)
    assert rejected["charging_sessions/2026-11-02/missing.csv"].startswith(
        "header does not match the contract: required column(s) missing: meter_start_kwh (header: 'session_id,")
    assert rejected["charging_sessions/2026-11-02/empty.csv"] == "empty file (0 bytes)"
    assert result.status == "succeeded_with_rejects"
    files = {r["source_file"]: r for r in delta_tables.read_table(spark, INGESTED_FILES, lake).collect()}
    assert {k: (v["status"], v["records"]) for k, v in files.items()} == {
        "charging_sessions/2026-11-02/gbk.csv": ("ingested", 1), "charging_sessions/2026-11-02/bom.csv": ("ingested", 1),
        "charging_sessions/2026-11-02/missing.csv": ("rejected", 0), "charging_sessions/2026-11-02/empty.csv": ("rejected", 0)}
    assert files["charging_sessions/2026-11-02/missing.csv"]["reason"] == rejected["charging_sessions/2026-11-02/missing.csv"]
    assert files["charging_sessions/2026-11-02/gbk.csv"]["header_drift"].startswith("unknown columns ignored")
    # a re-run reads none of them again: the rejected files are known by their checksum and name
    again = ingest_source(spark, "charging_sessions", D1, D1, lake)
    assert (again.files_new, again.files_skipped, again.files_rejected) == (0, 4, [])


def test_partially_overlapping_redelivery_adds_only_new_keys(spark, lake):
    rows = [f"S{n},CS1,1,V1,2026-11-02 0{n}:00:00,,,2026-11-02 0{n}:30:00,{n}00,{n}50,300," for n in range(1, 5)]
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", "\n".join([SESSION_HEADER, *rows[:3]]) + "\n")
    ingest_source(spark, "charging_sessions", D1, D3, lake)
    # the operator re-sends sessions 2..4: 2 and 3 again (identical), 4 is new
    put(lake.landing_root, "charging_sessions/2026-11-03/b.csv", "\n".join([SESSION_HEADER, *rows[1:]]) + "\n")
    r = ingest_source(spark, "charging_sessions", D1, D3, lake)
    assert (r.files_new, r.bronze_rows, r.silver_inserted, r.silver_updated, r.duplicate_rows) == (1, 3, 1, 0, 2)
    assert sorted(x["session_id"] for x in silver(spark, "charging_sessions", lake).collect()) == ["S1", "S2", "S3", "S4"]


def test_a_bronze_telematics_table_of_the_earlier_text_layout_is_migrated_on_write(spark, lake):
    """Lakes created before telematics frames were parsed at bronze hold bronze_telematics with the common
    text layout (raw_record + fields). Ingesting into such a lake adds the frame columns instead of failing."""
    from delta.tables import DeltaTable

    from schemas.tables import BRONZE_SCHEMA

    path = str(delta_log.table_path(BRONZE["telematics"], lake))
    DeltaTable.createIfNotExists(spark).location(path).addColumns(BRONZE_SCHEMA).partitionedBy("landing_date").execute()
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", frame("V1", "2026-11-02 07:30:00") + "\n")
    result = ingest_source(spark, "telematics", D1, D1, lake)
    assert (result.bronze_rows, result.silver_inserted) == (1, 1)
    bronze = spark.read.format("delta").load(path)
    assert {"fields", "vehicle_odometer"} <= set(bronze.columns)
    # odometer 1234567 × 0.1 km = 123456.7 km, as from a fresh lake
    assert silver(spark, "telematics", lake).first()["odometer_km"] == pytest.approx(123456.7, abs=1e-9)


def test_latest_per_key_keeps_the_last_delivered_version(spark):
    from jobs.ingest import runner

    rows = [("V1", 1, D1, "t/2026-11-02/a", 1, 10.0), ("V1", 1, dt.date(2026, 11, 3), "t/2026-11-03/b", 1, 11.0),
            ("V1", 2, D1, "t/2026-11-02/a", 2, 20.0),                           # unique key
            ("V2", 1, D1, "t/2026-11-02/a", 3, 30.0), ("V2", 1, D1, "t/2026-11-02/a", 4, 31.0),  # later record
            ("V3", 1, D1, "t/2026-11-02/z", 5, 50.0), ("V3", 1, dt.date(2026, 11, 3), "t/2026-11-03/b", 2, 51.0)]
    df = spark.createDataFrame(rows, "vin string, ts long, landing_date date, source_file string, record_no long, "
                                     "v double")
    # the later delivery day wins for (V1, 1) and (V3, 1) (over file z, a later name on an earlier day), the
    # later record of the same file for (V2, 1)
    expected = {("V1", 1): 11.0, ("V1", 2): 20.0, ("V2", 1): 31.0, ("V3", 1): 51.0}

    def latest(frame) -> dict:
        return {(r["vin"], r["ts"]): r["v"] for r in runner.latest_per_key(frame, ("vin", "ts")).collect()}

    assert latest(df) == expected
    # staged silver rows have no landing_date: the file path, which starts with the landing day, orders them
    assert latest(df.drop("landing_date")) == expected


def test_key_hashes_match_for_equal_keys_only_and_repeats_are_found():
    import numpy as np
    import pyarrow as pa

    from jobs.ingest.frame_stage import key_hashes, repeated

    ts = pa.array([dt.datetime(2026, 11, 2, 7, 30, s) for s in (0, 0, 0, 10)], pa.timestamp("us", tz="UTC"))
    h = key_hashes(pa.array(["V1", "V1", "V2", "V1"]), ts)
    assert h[0] == h[1] and len({h[0], h[2], h[3]}) == 3
    # the same keys in another batch (another dictionary order) hash the same
    again = key_hashes(pa.array(["V2", "V1"]), ts.slice(2, 2))
    assert (again[0], again[1]) == (h[2], h[3])
    assert repeated(np.array([5, 3, 5, 9, 3, 5])).tolist() == [3, 5]   # 5 three times, 3 twice, 9 once


def test_large_tables_keep_statistics_only_on_the_columns_filters_use(spark, lake):
    # statistics cost write time per column, so bronze keeps them on its file columns and silver on its
    # natural key; read back from the add actions of the Delta log the writes made
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", frame("V1", "2026-11-02 07:30:00") + "\n")
    ingest_source(spark, "telematics", D1, D1, lake)

    def stats_columns(spec):
        log = delta_log.table_path(spec, lake) / "_delta_log"
        adds = [json.loads(line)["add"] for f in sorted(log.glob("*.json")) for line in f.read_text().splitlines()
                if line.startswith('{"add"')]
        assert adds, spec.name
        return {col for a in adds for col in json.loads(a["stats"])["minValues"]}

    assert stats_columns(BRONZE["telematics"]) == {"file_sha256", "source_file", "record_no"}
    assert stats_columns(SILVER["telematics"]) == {"vin", "event_ts_utc"}


def _last_commit(spec, settings) -> list[dict]:
    log = delta_log.table_path(spec, settings) / "_delta_log"
    return [json.loads(line) for line in sorted(log.glob("*.json"))[-1].read_text().splitlines()]


def _forget_ingested_files(spark, source, settings) -> None:
    """What a run that died after its bronze write and before the files ledger leaves behind."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, str(delta_log.table_path(INGESTED_FILES, settings))).delete(F.col("source") == source)


def test_staged_bronze_telematics_files_are_committed_as_they_are_and_replaced_by_a_rerun(spark, lake):
    import hashlib

    text = "\n".join([frame("V1", "2026-11-02 07:30:00"), frame("V1", "2026-11-02 07:30:10"), "not json"]) + "\n"
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", text)
    sha = hashlib.sha256(text.encode()).hexdigest()
    bronze_spec = BRONZE["telematics"]
    ingest_source(spark, "telematics", D1, D1, lake)
    # one add action for the one landing file: its 3 lines (2 frames + 1 unparsable), records 1..3, and
    # statistics naming its checksum, so a rerun finds it from the log alone
    adds = [a["add"] for a in _last_commit(bronze_spec, lake) if "add" in a]
    assert len(adds) == 1 and adds[0]["partitionValues"] == {"landing_date": "2026-11-02"}
    stats = json.loads(adds[0]["stats"])
    assert stats["numRecords"] == 3
    assert (stats["minValues"]["record_no"], stats["maxValues"]["record_no"]) == (1, 3)
    assert stats["minValues"]["file_sha256"] == stats["maxValues"]["file_sha256"] == sha
    assert (delta_log.table_path(bronze_spec, lake) / adds[0]["path"]).is_file()

    # a run that died before the files ledger: the rerun removes its file and adds its own
    _forget_ingested_files(spark, "telematics", lake)
    again = ingest_source(spark, "telematics", D1, D1, lake)
    assert again.files_new == 1
    commit = _last_commit(bronze_spec, lake)
    assert [a["remove"]["path"] for a in commit if "remove" in a] == [adds[0]["path"]]
    assert len([a for a in commit if "add" in a]) == 1
    assert delta_tables.read_table(spark, bronze_spec, lake).count() == 3

    # rows of the file written by Spark (statistics truncated, possibly beside other files' rows): a rerun
    # cannot tell from the log which files hold only this file's rows, so it replaces them through Spark
    delta_tables.append(delta_tables.read_table(spark, bronze_spec, lake), bronze_spec, lake)
    assert delta_tables.read_table(spark, bronze_spec, lake).count() == 6      # 3 + the same 3 again
    _forget_ingested_files(spark, "telematics", lake)
    ingest_source(spark, "telematics", D1, D1, lake)
    bronze = delta_tables.read_table(spark, bronze_spec, lake)
    assert bronze.count() == 3 and sorted(r["record_no"] for r in bronze.collect()) == [1, 2, 3]
    assert silver(spark, "telematics", lake).count() == 2


def test_a_files_repeated_keys_keep_their_last_record_exactly_even_when_hashes_collide():
    import numpy as np
    import pyarrow as pa

    from jobs.ingest.frame_stage import last_record_per_key

    t0, t1 = dt.datetime(2026, 11, 2, 7, 30, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 2, 7, 31, tzinfo=dt.timezone.utc)
    rows = pa.table({"vin": ["V1", "V1", "V2", "V1", "V3", "V2"], "event_ts_utc": pa.array(
        [t0, t1, t0, t0, t0, t0], pa.timestamp("us", tz="UTC")), "record_no": [1, 2, 3, 4, 5, 6]})
    # hashes by hand: (V1, t1) collides with (V1, t0) on 7; (V1, t0) at records 1 and 4, (V2, t0) at 3 and 6
    hashes = np.array([7, 7, 9, 7, 5, 9], np.int64)
    # kept: the later record of each repeated key (4 over 1, 6 over 3), the colliding (V1, t1), the lone V3
    assert last_record_per_key(rows, hashes).tolist() == [False, True, False, True, True, True]


def test_files_sharing_a_key_hash_are_found():
    import numpy as np

    from jobs.ingest.frame_stage import sharing_keys

    hashes = {"a": np.array([1, 2, 3]), "b": np.array([4, 5]), "c": np.array([3, 6])}
    assert sharing_keys(hashes) == {"a", "c"}        # 3 is in a and c; b shares nothing
    assert sharing_keys({"a": np.array([1, 2])}) == set() and sharing_keys({}) == set()


def _silver_speeds(spark, settings) -> dict:
    return {(r["vin"], r["event_ts_utc"].strftime("%m-%d %H:%M:%S")): r["speed_kmh"]
            for r in silver(spark, "telematics", settings).collect()}


def test_staged_silver_files_are_committed_to_new_days_and_merged_into_days_with_rows(spark, lake):
    # 2026-11-02 delivery: a.jsonl repeats (V1, 07:30:00) at its end with another speed; b.jsonl is V2.
    # Beijing time is UTC+8, so 07:30 local is 23:30 UTC of the day before.
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", "\n".join([
        frame("V1", "2026-11-02 07:30:00", speed=100), frame("V1", "2026-11-02 07:30:10", speed=110),
        frame("V1", "2026-11-02 07:30:00", speed=120, msg="resend")]) + "\n")
    put(lake.landing_root, "telematics/2026-11-02/b.jsonl", frame("V2", "2026-11-02 07:30:00", speed=200) + "\n")
    first = ingest_source(spark, "telematics", D1, D1, lake)
    # 4 frames, 3 keys: 3 inserted, 1 duplicate; the file's later record wins (speed raw 120 × 0.1 km/h)
    assert (first.bronze_rows, first.silver_inserted, first.duplicate_rows) == (4, 3, 1)
    assert _silver_speeds(spark, lake) == {("V1", "11-01 23:30:00"): 12.0, ("V1", "11-01 23:30:10"): 11.0,
                                           ("V2", "11-01 23:30:00"): 20.0}
    # committed as staged, by delta-rs (no Spark MERGE): the two small files in one file of the new day
    commit = _last_commit(SILVER["telematics"], lake)
    adds = [a["add"] for a in commit if "add" in a]
    assert [json.loads(a["stats"])["numRecords"] for a in adds] == [3]
    assert {a["partitionValues"]["event_date_local"] for a in adds} == {"2026-11-02"}
    assert sorted(json.loads(adds[0]["stats"])["minValues"]) == ["event_ts_utc", "vin"]
    assert not any("commitInfo" in a and a["commitInfo"].get("operation") == "MERGE" for a in commit)

    # 2026-11-03 delivery: a late frame changes (V1, 07:30:10) of 11-02, another is new to 11-02, and one
    # is of 11-03. The 11-02 rows go through MERGE (that day has rows); 11-03 is a new day.
    put(lake.landing_root, "telematics/2026-11-03/c.jsonl", "\n".join([
        frame("V1", "2026-11-02 07:30:10", speed=111, msg="resend"), frame("V1", "2026-11-02 07:40:00", speed=130),
        frame("V1", "2026-11-03 08:00:00", speed=140)]) + "\n")
    second = ingest_source(spark, "telematics", D1, dt.date(2026, 11, 3), lake)
    assert (second.files_new, second.silver_inserted, second.silver_updated) == (1, 2, 1)
    assert second.event_dates == ["2026-11-02", "2026-11-03"]
    assert _silver_speeds(spark, lake) == {("V1", "11-01 23:30:00"): 12.0, ("V1", "11-01 23:30:10"): 11.1,
                                           ("V1", "11-01 23:40:00"): 13.0, ("V2", "11-01 23:30:00"): 20.0,
                                           ("V1", "11-03 00:00:00"): 14.0}


def test_files_of_one_run_sharing_a_key_are_ranked_through_spark(spark, lake):
    # two files of 2026-11-04 hold (V3, 09:00) with different speeds: the later file name wins; f.jsonl
    # shares nothing and is committed as staged beside them
    put(lake.landing_root, "telematics/2026-11-04/d.jsonl", "\n".join([
        frame("V3", "2026-11-04 09:00:00", speed=300), frame("V3", "2026-11-04 09:00:10", speed=301)]) + "\n")
    put(lake.landing_root, "telematics/2026-11-04/e.jsonl", frame("V3", "2026-11-04 09:00:00", speed=310) + "\n")
    put(lake.landing_root, "telematics/2026-11-04/f.jsonl", frame("V4", "2026-11-04 09:00:00", speed=400) + "\n")
    r = ingest_source(spark, "telematics", D3, D3, lake)
    # 4 frames, 3 keys
    assert (r.bronze_rows, r.silver_inserted, r.duplicate_rows) == (4, 3, 1)
    assert _silver_speeds(spark, lake) == {("V3", "11-04 01:00:00"): 31.0, ("V3", "11-04 01:00:10"): 30.1,
                                           ("V4", "11-04 01:00:00"): 40.0}


def test_small_staged_silver_files_are_combined_per_day_unless_they_share_keys(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.ingest.frame_stage import combine_small

    def staged(name: str, day: str, n: int) -> delta_log.DataFile:
        path = tmp_path / f"event_date_local={day}" / f"{name}.parquet"
        path.parent.mkdir(exist_ok=True)
        ts = pa.array([dt.datetime(2026, 11, 2, 0, 0, r, tzinfo=dt.timezone.utc) for r in range(n % 60)]
                      + [dt.datetime(2026, 11, 2, 1, tzinfo=dt.timezone.utc)] * (n - n % 60), pa.timestamp("us", tz="UTC"))
        pq.write_table(pa.table({"vin": [name] * n, "event_ts_utc": ts, "record_no": list(range(n))}), path)
        return delta_log.DataFile(path=path, partition_values={"event_date_local": day}, key_value=name, num_records=n)

    a, b, big = staged("a", "2026-11-02", 5), staged("b", "2026-11-02", 3), staged("big", "2026-11-02", 200)
    shared, alone = staged("shared", "2026-11-02", 2), staged("other_day", "2026-11-03", 4)
    out = combine_small([a, b, big, shared, alone], sharing={"shared"}, small_rows=100)
    # a + b (5 + 3 rows) become one file; big is not small, shared shares a key, other_day is alone on its day
    combined = [f for f in out if f.key_value is None]
    assert len(out) == 4 and len(combined) == 1 and combined[0].num_records == 8
    assert sorted(f.key_value for f in out if f.key_value) == ["big", "other_day", "shared"]
    assert sorted(pq.read_table(combined[0].path).column("vin").to_pylist()) == ["a"] * 5 + ["b"] * 3
    # its statistics are read from the combined file: vin a..b, times 00:00:00 (a's and b's first) to 00:00:04
    assert (combined[0].min_values["vin"], combined[0].max_values["vin"]) == ("a", "b")
    assert (combined[0].min_values["event_ts_utc"].second, combined[0].max_values["event_ts_utc"].second) == (0, 4)


def _ledger_rows(settings) -> dict[str, dict]:
    """The files ledger through delta-rs: source_file -> row."""
    table = delta_log.log_table(str(delta_log.table_path(INGESTED_FILES, settings))).to_pyarrow_table()
    return {r["source_file"]: r for r in table.to_pylist()}


def test_a_known_file_is_not_read_again_until_its_size_or_modification_time_changes(spark, lake):
    import hashlib
    import os
    import time

    from jobs.ingest.runner import has_new_files, landing_files

    rel = "charging_sessions/2026-11-02/s.csv"
    body_a = SESSION_HEADER + "\nS1,CS1,1,V1,2026-11-02 07:30:00,,,2026-11-02 08:35:00,1000,1250,300,\n"
    body_b = body_a.replace("S1,CS1", "S9,CS1")   # same length, other content
    path = put(lake.landing_root, rel, body_a)
    hour_ago_ns = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(hour_ago_ns, hour_ago_ns))
    ingest_source(spark, "charging_sessions", D1, D3, lake)
    # the stamp is "<bytes>:<mtime ns>": the header is 12 names of 148 letters + 11 commas = 159 chars, the
    # row 57 characters of values + 11 commas = 68; with two line ends 159 + 1 + 68 + 1 = 229 bytes
    assert _ledger_rows(lake)[rel]["file_stamp"] == f"229:{hour_ago_ns}"

    # same name, size and time: the checksum comes from the ledger and the file is not read. Proof: bytes
    # rewritten behind the stamp's back (size and time put back) still carry the first content's checksum
    path.write_bytes(body_b.encode())
    os.utime(path, ns=(hour_ago_ns, hour_ago_ns))
    found = landing_files("charging_sessions", D1, D3, lake)
    assert (found.checksums_read, [f.sha256 for f in found.files]) == (0, [hashlib.sha256(body_a.encode()).hexdigest()])
    assert not has_new_files("charging_sessions", D1, D3, lake, found=found)

    # a new modification time: read again, the new content is new and lands
    os.utime(path, ns=(hour_ago_ns + 10**9, hour_ago_ns + 10**9))
    found = landing_files("charging_sessions", D1, D3, lake)
    assert (found.checksums_read, [f.sha256 for f in found.files]) == (1, [hashlib.sha256(body_b.encode()).hexdigest()])
    assert ingest_source(spark, "charging_sessions", D1, D3, lake, found=found).files_new == 1
    assert sorted(r["session_id"] for r in silver(spark, "charging_sessions", lake).collect()) == ["S1", "S9"]

    # a file modified less than 2 s before the scan (it may still be being written within its clock tick)
    # gets no stamp, so every scan reads it until it has settled; its time is set a minute ahead so that no
    # pause of a busy machine between writing and scanning can make it look settled
    fresh = "charging_sessions/2026-11-03/t.csv"
    ahead_ns = time.time_ns() + 60 * 10**9
    os.utime(put(lake.landing_root, fresh, body_a.replace("S1,CS1", "S2,CS1")), ns=(ahead_ns, ahead_ns))
    ingest_source(spark, "charging_sessions", D1, D3, lake)
    assert _ledger_rows(lake)[fresh]["file_stamp"] is None
    assert landing_files("charging_sessions", D1, D3, lake).checksums_read == 1

