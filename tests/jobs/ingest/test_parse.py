"""Splitting landing files into records: encodings, headers, ragged rows (pure Python, no Spark)."""
from __future__ import annotations

import gzip

from jobs.ingest.parse import decode, parse_csv, parse_file
from schemas.sources import SOURCES

FIELDS = ("a", "b", "c")


def test_csv_fields_are_mapped_by_header_and_numbered():
    records, drift = parse_csv("b,a,c\n2,1,3\n\n5,4,6\n", FIELDS, ("a",))
    assert drift is None
    # record numbers skip blank lines; line numbers are physical (header = line 1, blank = line 3)
    assert [(r.record_no, r.line_no) for r in records] == [(1, 2), (2, 4)]
    assert records[1].fields == {"a": "4", "b": "5", "c": "6"}
    assert all(r.parse_error is None for r in records)


def test_unknown_column_is_reported_and_ignored_missing_required_column_fails_rows():
    records, drift = parse_csv("a,b,c,extra\n1,2,3,x\n", FIELDS, ("a",))
    assert drift == "unknown columns ignored: extra"
    assert records[0].fields == {"a": "1", "b": "2", "c": "3"} and records[0].parse_error is None

    records, drift = parse_csv("b,c\n2,3\n", FIELDS, ("a",))
    assert drift == "missing columns: a"
    assert "required column(s) missing from header: a" in records[0].parse_error


def test_wrong_delimiter_reads_as_one_column_and_every_row_is_flagged():
    records, drift = parse_csv("a;b;c\n1;2;3\n", FIELDS, ("a",))
    assert "unknown columns ignored: a;b;c" in drift
    assert records[0].parse_error.startswith("required column(s) missing from header: a")


def test_ragged_row_is_flagged_not_dropped():
    records, _ = parse_csv("a,b,c\n1,2\n1,2,3\n", FIELDS, ())
    assert records[0].parse_error == "expected 3 fields as in the header, got 2"
    assert records[1].parse_error is None


def test_bom_gzip_and_gbk_are_decoded():
    assert decode(b"\xef\xbb\xbfa,b\n", "x.csv") == ("a,b\n", "utf-8")
    assert decode(gzip.compress("x\n".encode()), "x.csv.gz") == ("x\n", "utf-8")
    text, encoding = decode("矿,井\n".encode("gbk"), "x.csv")
    assert (text, encoding) == ("矿,井\n", "gb18030")


def test_empty_file_has_no_records():
    spec = SOURCES["shipments"]
    records, notes = parse_file(b"", "e.csv", "csv", spec.fields, spec.required)
    assert list(records) == [] and notes.header_drift is None


def test_jsonl_keeps_every_nonblank_line_verbatim():
    spec = SOURCES["telematics"]
    records, _ = parse_file(b'{"vin":"A"}\n\n{"vin":\n', "t.jsonl", "jsonl", spec.fields, spec.required)
    records = list(records)
    assert [(r.record_no, r.line_no, r.raw_record) for r in records] == [(1, 1, '{"vin":"A"}'), (2, 3, '{"vin":')]
