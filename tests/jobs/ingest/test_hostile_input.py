"""Hostile landing input: every bad file, row or folder is rejected or quarantined, named, and stops nothing
else. One test per way a run could crash or land wrong data; real Spark, real Delta tables."""
from __future__ import annotations

import datetime as dt
import gzip

import pytest
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables
from jobs.ingest.runner import IngestFailed, SourceResult, exit_status, ingest_domain, ingest_source
from schemas.tables import BRONZE, INGESTED_FILES, QUARANTINE, SILVER
from tests.jobs.ingest.test_runner import SESSION_HEADER, frame, put

D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)
SHIPMENT_HEADER = "shipment_id,mine_id,product,tonnes,ship_date,destination,distance_km,legs"
SESSION = "S{n},CS1,1,V1,2026-11-02 0{n}:30:00,,,2026-11-02 0{n}:50:00,1000,1250,300,{reason}"


@pytest.fixture
def lake(tmp_path):
    from jobs.platform.settings import Settings

    return Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")


def table(spark, spec, settings):
    return delta_tables.read_table(spark, spec, settings)


def ledger(spark, settings) -> dict[str, tuple]:
    return {r["source_file"]: (r["status"], r["records"], r["reason"])
            for r in table(spark, INGESTED_FILES, settings).collect()}


def version(spec, settings) -> int:
    from deltalake import DeltaTable

    return DeltaTable(str(delta_log.table_path(spec, settings))).version()


def test_a_leg_without_km_is_quarantined_on_legs_and_the_other_sources_still_run(spark, lake):
    put(lake.landing_root, "shipments/2026-11-02/s.csv", "\n".join([
        SHIPMENT_HEADER,
        "SH1,M1,raw_coal,1000,2026-11-02,Port,1155,road:35|rail:1120",   # 35 + 1120 = 1155 km
        "SH2,M1,raw_coal,1000,2026-11-02,Port,1155,rail",                # no ':km'
    ]) + "\n")
    put(lake.landing_root, "weighbridge/2026-11-02/w.csv",
        "ticket_id,vin,mine_id,load_time_local,gross_t,tare_t,net_t,destination_id\n"
        "T1,V1,M1,2026-11-02 08:00:00,49,17,32,P1\n")
    # the logistics domain runs weighbridge, then shipments
    results = {r.source: r for r in ingest_domain(spark, "logistics", D1, D1, lake)}
    assert (results["weighbridge"].silver_inserted, results["shipments"].silver_inserted) == (1, 1)
    [q] = table(spark, QUARANTINE, lake).collect()
    assert (q["source_file"], q["record_no"], q["line_no"], q["field"]) == ("shipments/2026-11-02/s.csv", 2, 3, "legs")
    assert q["reason"] == "legs: legs 'rail' is not 'mode:km|...' with modes road, rail, belt"
    assert results["shipments"].status == "succeeded_with_rejects"
    assert table(spark, SILVER["shipments"], lake).first()["rail_km"] == 1120.0


@pytest.mark.parametrize("source, name, body", [
    ("charging_sessions", "b.csv.gz", SESSION_HEADER + "\n" + SESSION.format(n=2, reason="full") + "\n"),
    ("telematics", "b.jsonl.gz", frame("V2", "2026-11-02 07:30:00") + "\n" + frame("V2", "2026-11-02 07:30:10") + "\n"),
])
def test_a_truncated_gzip_file_is_rejected_by_name_and_the_other_files_land(spark, lake, source, name, body):
    good = (SESSION_HEADER + "\n" + SESSION.format(n=1, reason="full") if source == "charging_sessions"
            else frame("V1", "2026-11-02 07:30:00")) + "\n"
    put(lake.landing_root, f"{source}/2026-11-02/a.{name.split('.', 1)[1]}", good, gz=True)
    whole = gzip.compress(body.encode(), mtime=0)
    (lake.landing_root / source / "2026-11-02" / name).write_bytes(whole[:len(whole) - 12])   # no end marker
    result = ingest_source(spark, source, D1, D1, lake)
    rel = f"{source}/2026-11-02/{name}"
    reason = "gzip stream is truncated or corrupt: Compressed file ended before the end-of-stream marker was reached"
    assert result.files_rejected == [(rel, reason)]
    assert ledger(spark, lake)[rel] == ("rejected", 0, reason)
    # the good file: 1 record, in silver; nothing of the truncated one in bronze
    assert (result.bronze_rows, result.silver_inserted) == (1, 1)
    assert table(spark, BRONZE[source], lake).filter(F.col("source_file") == rel).count() == 0


def test_a_telematics_run_whose_only_file_is_truncated_writes_nothing_but_the_ledger(spark, lake):
    whole = gzip.compress((frame("V1", "2026-11-02 07:30:00") + "\n").encode(), mtime=0)
    path = lake.landing_root / "telematics" / "2026-11-02" / "cut.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(whole[:len(whole) - 12])
    result = ingest_source(spark, "telematics", D1, D1, lake)
    assert [rel for rel, _ in result.files_rejected] == ["telematics/2026-11-02/cut.jsonl.gz"]
    assert (result.bronze_rows, result.silver_inserted) == (0, 0)
    assert ledger(spark, lake)["telematics/2026-11-02/cut.jsonl.gz"][0] == "rejected"
    assert not delta_log.table_exists(SILVER["telematics"], lake) or table(spark, SILVER["telematics"], lake).count() == 0


@pytest.mark.parametrize("source, rel, body, expected", [
    ("telematics", "telematics/2026-11-02/empty.jsonl", "", ("rejected", 0, "empty file (0 bytes)")),
    ("charging_sessions", "charging_sessions/2026-11-02/empty.csv", "", ("rejected", 0, "empty file (0 bytes)")),
    ("charging_sessions", "charging_sessions/2026-11-02/header.csv", SESSION_HEADER + "\n", ("ingested", 0, None)),
])
def test_an_empty_or_header_only_file_alone_does_not_crash(spark, lake, source, rel, body, expected):
    put(lake.landing_root, rel, body)
    result = ingest_source(spark, source, D1, D1, lake)
    assert ledger(spark, lake) == {rel: expected}
    assert (result.files_new, result.bronze_rows, result.silver_inserted) == (1, 0, 0)
    # nothing was written but the ledger and the audit
    assert not delta_log.table_exists(SILVER[source], lake) or table(spark, SILVER[source], lake).count() == 0
    assert result.status == ("succeeded_with_rejects" if expected[0] == "rejected" else "succeeded")


def test_a_date_folder_linked_outside_the_landing_root_is_rejected_the_others_land(spark, lake, tmp_path):
    outside = tmp_path / "outside"
    put(outside, "s.csv", SESSION_HEADER + "\n" + SESSION.format(n=9, reason="stolen") + "\n")
    folder = lake.landing_root / "charging_sessions" / "2026-11-03"
    folder.parent.mkdir(parents=True)
    folder.symlink_to(outside, target_is_directory=True)
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", SESSION_HEADER + "\n" + SESSION.format(n=1, reason="") + "\n")
    result = ingest_source(spark, "charging_sessions", D1, D2, lake)
    where = lake.landing_root.resolve() / "charging_sessions" / "2026-11-03"
    assert result.files_rejected == [(str(where), "folder is a symlink pointing outside the landing root")]
    assert [r["session_id"] for r in table(spark, SILVER["charging_sessions"], lake).collect()] == ["S1"]


def test_a_quoted_field_with_line_breaks_lands_whole(spark, lake):
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", "\r\n".join([
        SESSION_HEADER, SESSION.format(n=1, reason='"Multi\r\nline, ""quoted"""'), SESSION.format(n=2, reason="full")]) + "\r\n")
    result = ingest_source(spark, "charging_sessions", D1, D1, lake)
    assert (result.bronze_rows, result.quarantined_rows, result.silver_inserted) == (2, 0, 2)
    rows = {r["session_id"]: r for r in table(spark, SILVER["charging_sessions"], lake).collect()}
    assert rows["S1"]["stop_reason"] == 'Multi\nline, "quoted"'
    # S2 starts on physical line 4: the header is line 1, S1 lines 2-3
    assert (rows["S1"]["record_no"], rows["S2"]["record_no"]) == (1, 2)
    bronze = {r["record_no"]: r["line_no"] for r in table(spark, BRONZE["charging_sessions"], lake).collect()}
    assert bronze == {1: 2, 2: 4}


def test_encodings_utf8_bom_and_gb18030_land_windows_1252_is_rejected(spark, lake):
    header = "company_id,company_name\n"
    put(lake.landing_root, "companies/2026-11-02/utf8.csv", header + "C1,伊泰煤炭\n")
    put(lake.landing_root, "companies/2026-11-02/bom.csv", "\ufeff" + header + "C2,Société Minière\n")
    (lake.landing_root / "companies/2026-11-02/gb.csv").write_bytes((header + "C3,神华准格尔\n").encode("gb18030"))
    (lake.landing_root / "companies/2026-11-02/cp1252.csv").write_bytes((header + "C4,Société Minière\n").encode("cp1252"))
    result = ingest_source(spark, "companies", D1, D1, lake)
    names = {r["company_id"]: r["company_name"] for r in table(spark, SILVER["companies"], lake).collect()}
    assert names == {"C1": "伊泰煤炭", "C2": "Société Minière", "C3": "神华准格尔"}
    rel = "companies/2026-11-02/cp1252.csv"
    assert dict(result.files_rejected) == {
        rel: "bytes that are neither UTF-8 nor GB18030 (first at line 2); deliver the file as UTF-8"}
    assert ledger(spark, lake)[rel][0] == "rejected"
    assert table(spark, BRONZE["companies"], lake).filter(F.col("source_file") == rel).count() == 0


@pytest.mark.parametrize("header, missing", [
    (SESSION_HEADER.replace(",", ";"), "session_id, station_id"),      # another delimiter: one unknown column
    (SESSION_HEADER.replace("meter_start_kwh,", ""), "meter_start_kwh"),
])
def test_a_header_off_the_contract_rejects_the_file_once(spark, lake, header, missing):
    rows = [SESSION.format(n=n, reason="full") for n in (1, 2, 3)]
    if ";" in header:
        rows = [r.replace(",", ";") for r in rows]
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", "\n".join([header, *rows]) + "\n")
    result = ingest_source(spark, "charging_sessions", D1, D1, lake)
    [(rel, reason)] = result.files_rejected
    assert rel == "charging_sessions/2026-11-02/a.csv"
    assert reason.startswith(f"header does not match the contract: required column(s) missing: {missing}")
    # rejected once: no row of it quarantined one by one
    assert result.quarantined_rows == 0 and not delta_log.table_exists(QUARANTINE, lake)


def test_records_above_the_size_limit_keep_a_prefix_and_their_size(spark, lake):
    settings = lake.model_copy(update={"max_record_bytes": 4096})
    # a 100 000-character stop reason: the record is 100 000 + the 57 characters before it
    long_row = SESSION.format(n=1, reason="x" * 100_000)
    put(lake.landing_root, "charging_sessions/2026-11-02/a.csv", "\n".join([
        SESSION_HEADER, long_row, SESSION.format(n=2, reason="full")]) + "\n")
    # a valid frame padded by an unknown key to 200 000 bytes, between two normal frames
    padded = frame("V1", "2026-11-02 07:30:10")[:-1] + ', "pad": "' + "y" * 200_000 + '"}'
    put(lake.landing_root, "telematics/2026-11-02/t.jsonl", "\n".join([
        frame("V1", "2026-11-02 07:30:00"), padded, frame("V1", "2026-11-02 07:30:20")]) + "\n")
    # sessions: 2 records, the long one quarantined; frames: 3 records, the padded one quarantined
    for source, size, records in (("charging_sessions", len(long_row), 2), ("telematics", len(padded), 3)):
        result = ingest_source(spark, source, D1, D1, settings)
        assert (result.bronze_rows, result.quarantined_rows, result.silver_inserted) == (records, 1, records - 1)
        [q] = table(spark, QUARANTINE, settings).filter(F.col("source") == source).collect()
        assert q["reason"] == (f"record is {size} bytes, above the limit of 4096 bytes (max_record_bytes); "
                               "only its first 1000 characters are kept")
        assert len(q["raw_record"]) == 1000 and q["line_no"] == 2
        [b] = table(spark, BRONZE[source], settings).filter(F.col("line_no") == 2).collect()
        assert len(b["raw_record"]) == 1000


def test_a_telematics_batch_with_nothing_new_commits_no_silver_version(spark, lake):
    lines = [frame("V1", "2026-11-02 07:30:00"), frame("V1", "2026-11-02 07:30:10")]
    put(lake.landing_root, "telematics/2026-11-02/a.jsonl", "\n".join(lines) + "\n")
    ingest_source(spark, "telematics", D1, D1, lake)
    before = version(SILVER["telematics"], lake)
    # next day: the same two frames in the other order (a new file, nothing new in it), and a file of one
    # truncated line (nothing good in it)
    put(lake.landing_root, "telematics/2026-11-03/b.jsonl", "\n".join(reversed(lines)) + "\n")
    put(lake.landing_root, "telematics/2026-11-03/c.jsonl", lines[0][:40] + "\n")
    result = ingest_source(spark, "telematics", D1, D2, lake)
    # 3 records: 2 duplicates of silver rows, 1 quarantined
    assert (result.files_new, result.bronze_rows, result.duplicate_rows, result.quarantined_rows) == (2, 3, 2, 1)
    assert (result.silver_inserted, result.silver_updated) == (0, 0)
    assert version(SILVER["telematics"], lake) == before


def test_a_failing_source_is_reported_and_the_next_ones_still_run(spark, lake):
    put(lake.landing_root, "weighbridge/2026-11-02/w.csv",
        "ticket_id,vin,mine_id,load_time_local,gross_t,tare_t,net_t,destination_id\n"
        "T1,V1,M1,2026-11-02 08:00:00,49,17,32,P1\n")
    put(lake.landing_root, "shipments/2026-11-02/s.csv",
        SHIPMENT_HEADER + "\nSH1,M1,raw_coal,1000,2026-11-02,Port,1155,road:35|rail:1120\n")
    # not bad input: the weighbridge silver table's folder is taken by a plain file, so its writes fail
    blocker = delta_log.table_path(SILVER["weighbridge"], lake)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a table")
    results = {r.source: r for r in ingest_domain(spark, "logistics", D1, D1, lake, keep_going=True)}
    assert results["weighbridge"].status == "failed" and results["weighbridge"].error
    assert (results["shipments"].status, results["shipments"].silver_inserted) == ("succeeded", 1)
    assert exit_status(list(results.values())) == 1
    # without keep_going the failure is raised, once every source ran (shipments is known by now: skipped)
    with pytest.raises(IngestFailed, match="^weighbridge: "):
        ingest_domain(spark, "logistics", D1, D1, lake)


def test_exit_status_tells_clean_runs_from_rejects_and_failures():
    clean, quarantined = SourceResult("a"), SourceResult("b", quarantined_rows=1)
    rejected, failed = SourceResult("c", files_rejected=[("c/x.csv", "empty file (0 bytes)")]), SourceResult("d", error="E")
    assert [exit_status(r) for r in ([], [clean], [clean, quarantined], [rejected], [quarantined, failed, clean])] == \
        [0, 0, 3, 3, 1]


@pytest.mark.parametrize("missing", [("reason", "file_stamp"), ("file_stamp",), ("reason",)],
                         ids=["first_layout", "without_stamps", "stamps_before_reasons"])
def test_a_files_ledger_of_an_earlier_layout_gains_the_missing_columns(spark, lake, missing):
    import os
    import time

    from delta.tables import DeltaTable
    from pyspark.sql import types as T

    old = T.StructType([f for f in INGESTED_FILES.schema.fields if f.name not in missing])
    DeltaTable.createIfNotExists(spark).location(str(delta_log.table_path(INGESTED_FILES, lake))).addColumns(old) \
        .partitionedBy("source").execute()
    put(lake.landing_root, "charging_sessions/2026-11-02/e.csv", "")
    path = put(lake.landing_root, "charging_sessions/2026-11-02/one.csv", SESSION_HEADER + "\n")
    hour_ago_ns = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(hour_ago_ns, hour_ago_ns))
    ingest_source(spark, "charging_sessions", D1, D1, lake)
    # each value in its own column, whatever order the columns were added in: the header-only file is
    # ingested with 0 records, its stamp is its size (the header and its line end) and modification time
    assert ledger(spark, lake) == {"charging_sessions/2026-11-02/e.csv": ("rejected", 0, "empty file (0 bytes)"),
                                   "charging_sessions/2026-11-02/one.csv": ("ingested", 0, None)}
    stamps = {r["source_file"]: r["file_stamp"] for r in table(spark, INGESTED_FILES, lake).collect()}
    assert stamps["charging_sessions/2026-11-02/one.csv"] == f"160:{hour_ago_ns}"   # the 159-char header + "\n"


def test_a_plan_published_after_its_shift_started_is_quarantined(spark, lake):
    # a plan is only a plan before its shift starts: one released later would leak into a forecast
    put(lake.landing_root, "production_plan/2026-11-02/p.csv", "\n".join([
        "mine_id,shift_date,shift_no,shift_start_local,planned_raw_coal_t,trucks_dispatched,published_local",
        "M1,2026-11-03,1,2026-11-03 08:00:00,6000,12,2026-11-02 19:30:00",    # the evening before: kept
        "M1,2026-11-02,2,2026-11-02 16:00:00,6000,12,2026-11-02 16:30:00",    # 30 min into its shift
        "M1,2026-11-03,2,2026-11-03 16:00:00,-6000,12,2026-11-02 19:30:00",   # negative tonnes
        "M1,2026-11-03,3,2026-11-04 00:00:00,4000,many,2026-11-02 19:30:00",  # trucks not a number
    ]) + "\n")
    result = ingest_source(spark, "production_plan", D1, D1, lake)
    assert (result.silver_inserted, result.status) == (1, "succeeded_with_rejects")
    [kept] = table(spark, SILVER["production_plan"], lake).collect()
    # 19:30 and 08:00 Beijing time are 11:30 and 00:00 UTC; the event day is the publication day
    assert (kept["published_ts_utc"], kept["shift_start_ts_utc"], kept["trucks_dispatched"]) == (
        dt.datetime(2026, 11, 2, 11, 30), dt.datetime(2026, 11, 3, 0, 0), 12)
    assert kept["event_date_local"] == dt.date(2026, 11, 2)
    reasons = {q["record_no"]: (q["field"], q["reason"]) for q in table(spark, QUARANTINE, lake).collect()}
    assert reasons[2] == ("published_local",
                          "published_local: plan published at or after the start of the shift it plans")
    assert reasons[3][0] == "planned_raw_coal_t" and reasons[4][0] == "trucks_dispatched"
