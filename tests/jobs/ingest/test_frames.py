"""Telematics lines → bronze frame rows with Arrow's JSON reader (jobs.ingest.frames), no Spark needed.

Every expected value below is read off the hand-written lines of each test.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json

import pyarrow as pa
import pytest

from jobs.ingest import frames
from jobs.ingest.frames import MALFORMED, frame_batches

LINEAGE = {"source": "telematics", "landing_date": dt.date(2026, 11, 2), "source_file": "telematics/2026-11-02/f.jsonl",
           "file_sha256": "abc", "ingested_at": dt.datetime(2026, 11, 2, 1, tzinfo=dt.timezone.utc)}


def frame(vin: str, t: str, speed=0, soc=80, **extra) -> str:
    doc = {"vin": vin, "msg_type": "realtime", "collect_time": f"2026-11-02 {t}",
           "vehicle": {"speed": speed, "odometer": 1000, "total_voltage": 6100, "total_current": 30000, "soc": soc},
           "fuel_cell": None, "engine": None,
           "position": {"valid": 1, "coord_sys": "WGS84", "lon": 110000000, "lat": 39000000}}
    doc.update(extra)
    return json.dumps(doc, separators=(",", ":"))


def rows(content: bytes, **kw) -> list[dict]:
    out = []
    for batch in frame_batches(content, "f.jsonl", LINEAGE, **kw):
        assert batch.schema == frames.BRONZE_FRAME_ARROW
        out.extend(batch.to_pylist())
    return sorted(out, key=lambda r: r["record_no"])


def test_valid_frames_keep_their_raw_fields_and_no_text():
    content = "\n".join([frame("A", "08:00:00", speed=352, soc=78), frame("B", "08:00:10")]).encode()
    got = rows(content)
    assert [(r["record_no"], r["line_no"], r["vin"], r["vehicle_speed"], r["vehicle_soc"]) for r in got] == [
        (1, 1, "A", 352, 78), (2, 2, "B", 0, 80)]
    first = got[0]
    assert first["raw_record"] is None and first["parse_error"] is None
    assert (first["collect_time"], first["position_lon"], first["position_coord_sys"]) == (
        "2026-11-02 08:00:00", 110000000, "WGS84")
    # "fuel_cell": null and "engine": null → their fields are null
    assert first["fuel_cell_h2_remaining"] is None and first["engine_fuel_total"] is None
    assert {k: first[k] for k in ("source", "landing_date", "source_file", "file_sha256")} == {
        "source": "telematics", "landing_date": dt.date(2026, 11, 2), "source_file": "telematics/2026-11-02/f.jsonl",
        "file_sha256": "abc"}


def test_bad_lines_keep_their_text_and_good_lines_around_them_still_parse():
    good = [frame("A", f"08:00:{s:02d}") for s in range(0, 60, 10)]
    truncated = good[1][:57]                                          # cut mid-object
    wrong_type = frame("C", "08:01:00", speed="fast")                 # a string where an integer code belongs
    fractional = frame("D", "08:02:00", soc=78.5)                     # a fraction where an integer code belongs
    not_object = "[1, 2, 3]"
    lines = [good[0], truncated, good[2], "", wrong_type, good[3], "   ", not_object, good[4], fractional, good[5]]
    got = rows("\n".join(lines).encode())
    # 11 lines, 2 blank → 9 records; line_no counts blank lines, record_no does not
    assert [r["line_no"] for r in got] == [1, 2, 3, 5, 6, 8, 9, 10, 11]
    assert [r["record_no"] for r in got] == list(range(1, 10))
    bad = {r["line_no"]: r for r in got if r["parse_error"]}
    assert sorted(bad) == [2, 5, 8, 10]
    assert bad[2]["raw_record"] == truncated and bad[5]["raw_record"] == wrong_type
    assert all(r["parse_error"] == MALFORMED and r["vin"] is None for r in bad.values())
    ok = [r for r in got if not r["parse_error"]]
    assert [r["collect_time"][-2:] for r in ok] == ["00", "20", "30", "40", "50"]
    assert all(r["raw_record"] is None and r["vin"] == "A" for r in ok)


@pytest.mark.parametrize("chunk_lines", [4, 16_384])
def test_many_scattered_faults_across_chunks_lose_no_line(monkeypatch, chunk_lines):
    """Faults every 7th line over 200 lines, read in chunks of 4 (many chunks, each refused) or one chunk."""
    monkeypatch.setattr(frames, "_CHUNK_LINES", chunk_lines)
    monkeypatch.setattr(frames, "_SLOW_BELOW_LINES", 2)
    lines = []
    for i in range(200):
        text = frame(f"V{i:03d}", f"09:{i // 60:02d}:{i % 60:02d}", speed=i)
        if i % 7 == 3:
            text = text[:40]                           # truncated
        elif i % 7 == 5:
            text = text.replace(f'"speed":{i}', f'"speed":{i}.5')  # conversion error (no row in Arrow's message)
        lines.append(text)
    got = rows("\n".join(lines).encode(), max_rows=37)
    assert len(got) == 200 and [r["line_no"] for r in got] == list(range(1, 201))
    bad = [r["line_no"] - 1 for r in got if r["parse_error"]]
    # i % 7 == 3 for i < 200: 3, 10, ..., 199 → 29 lines; i % 7 == 5: 5, 12, ..., 194 → 28 lines; 57 in all
    assert bad == [i for i in range(200) if i % 7 in (3, 5)] and len(bad) == 57
    assert [r["vehicle_speed"] for r in got if not r["parse_error"]] == [i for i in range(200) if i % 7 not in (3, 5)]


def test_permissive_reading_like_spark():
    lines = [
        frame("A", "08:00:00", extra_key={"x": [1, 2]}),          # unknown keys are ignored
        '{"vin":"B","collect_time":"2026-11-02 08:00:10"}',        # absent objects → nulls, still a frame
        '{"vin":12345,"collect_time":"2026-11-02 08:00:20"}',      # a number where text belongs → its JSON text
        '{"vin":"D","vehicle":{"speed":99999999999999999999}}',    # beyond int64 → malformed
        '{"vin":"E","vehicle":5}',                                 # an object field that is not an object → malformed
    ]
    got = {r["line_no"]: r for r in rows("\n".join(lines).encode())}
    assert got[1]["vin"] == "A" and got[1]["parse_error"] is None
    assert got[2]["vin"] == "B" and got[2]["vehicle_speed"] is None and got[2]["parse_error"] is None
    assert got[3]["vin"] == "12345" and got[3]["parse_error"] is None
    assert got[4]["parse_error"] == MALFORMED and got[5]["parse_error"] == MALFORMED


def test_gzip_bom_crlf_and_gbk_are_decoded():
    text = frame("A", "08:00:00") + "\r\n" + frame("B", "08:00:10", msg_type="补发") + "\r\n"
    for content in (gzip.compress(b"\xef\xbb\xbf" + text.encode("utf-8")), text.encode("gbk")):
        got = rows(content)
        assert [(r["vin"], r["msg_type"], r["parse_error"]) for r in got] == [
            ("A", "realtime", None), ("B", "补发", None)]


def test_empty_and_blank_files_have_no_rows():
    assert rows(b"") == [] and rows(b"\n  \n\r\n") == []


def test_bronze_arrow_schema_matches_the_declared_delta_schema():
    from schemas.tables import BRONZE_TELEMATICS_SCHEMA

    declared = [(f.name, f.dataType.simpleString()) for f in BRONZE_TELEMATICS_SCHEMA.fields]
    spark_names = {pa.string(): "string", pa.int64(): "bigint", pa.date32(): "date"}
    arrow = [(f.name, spark_names.get(f.type, "timestamp")) for f in frames.BRONZE_FRAME_ARROW]
    assert arrow == declared
