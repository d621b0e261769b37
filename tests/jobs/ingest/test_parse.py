"""Splitting landing files into records: encodings, headers, RFC 4180 records, sizes (pure Python, no Spark)."""
from __future__ import annotations

import gzip

import pytest

from jobs.ingest.parse import FileRejected, decode, parse_csv, parse_file
from schemas.sources import SOURCES

FIELDS = ("a", "b", "c")


def csv_file(content: bytes, required=("a",), **kw):
    return parse_file(content, "x.csv", "csv", FIELDS, required, **kw)


def test_csv_fields_are_mapped_by_header_and_numbered():
    records, drift = parse_csv("b,a,c\n2,1,3\n\n5,4,6\n", FIELDS, ("a",))
    assert drift is None
    # record numbers skip blank lines; line numbers are physical (header = line 1, blank = line 3)
    assert [(r.record_no, r.line_no) for r in records] == [(1, 2), (2, 4)]
    assert records[1].fields == {"a": "4", "b": "5", "c": "6"}
    assert all(r.parse_error is None for r in records)


def test_unknown_column_is_reported_and_ignored_missing_optional_column_is_drift():
    records, drift = parse_csv("a,b,c,extra\n1,2,3,x\n", FIELDS, ("a",))
    assert drift == "unknown columns ignored: extra"
    assert records[0].fields == {"a": "1", "b": "2", "c": "3"} and records[0].parse_error is None

    records, drift = parse_csv("a,c\n1,3\n", FIELDS, ("a",))
    assert drift == "missing columns: b" and records[0].fields == {"a": "1", "c": "3"}


def test_missing_required_column_rejects_the_file_once_naming_the_columns():
    with pytest.raises(FileRejected) as rejected:
        parse_csv("c\n3\n3\n", FIELDS, ("a", "b"))
    assert rejected.value.reason.startswith("header does not match the contract: required column(s) missing: a, b")


def test_wrong_delimiter_rejects_the_file_with_the_header_shown():
    with pytest.raises(FileRejected) as rejected:
        csv_file(b"a;b;c\n1;2;3\n")
    assert rejected.value.reason == ("header does not match the contract: required column(s) missing: a "
                                     "(header: 'a;b;c'; expected comma-separated a, b, c)")


def test_a_column_named_twice_rejects_the_file():
    with pytest.raises(FileRejected, match="column\\(s\\) named more than once: b"):
        csv_file(b"a,b,b\n1,2,3\n")


def test_ragged_row_is_flagged_not_dropped():
    records, _ = parse_csv("a,b,c\n1,2\n1,2,3\n", FIELDS, ())
    assert records[0].parse_error == "expected 3 fields as in the header, got 2"
    assert records[1].parse_error is None


def test_rfc4180_quoted_fields_keep_commas_quotes_and_line_breaks():
    # record 1 spans lines 2-4 (two line breaks inside quotes, CRLF endings), record 2 starts at line 5
    content = b'a,b,c\r\n1,"Multi\r\nline, with ""quotes""\r\nend",3\r\n4,5,6\r\n'
    records, _ = csv_file(content)
    assert [(r.record_no, r.line_no) for r in records] == [(1, 2), (2, 5)]
    assert records[0].fields == {"a": "1", "b": 'Multi\nline, with "quotes"\nend', "c": "3"}
    assert records[0].parse_error is None and records[1].fields == {"a": "4", "b": "5", "c": "6"}


def test_an_unterminated_quote_is_one_bad_record_and_a_quote_after_a_closed_field_is_unreadable():
    records, _ = csv_file(b'a,b,c\n1,"ab"x,3\n2,"open,3\n4,5,6\n')
    assert records[0].parse_error.startswith("unreadable CSV row")
    # the open quote of line 3 runs to the end of the file: lines 3 and 4 are one record
    assert (records[1].line_no, records[1].parse_error) == (3, "quoted field opened in line 3 is never closed")
    assert len(records) == 2


def test_bom_gzip_and_gbk_are_decoded():
    assert decode(b"\xef\xbb\xbfa,b\n", "x.csv") == ("a,b\n", "utf-8")
    assert decode(gzip.compress("x\n".encode()), "x.csv.gz") == ("x\n", "utf-8")
    text, encoding = decode("矿,井\n".encode("gbk"), "x.csv")
    assert (text, encoding) == ("矿,井\n", "gb18030")
    records, notes = csv_file("a,b,c\n充满,备注,3\n".encode("gb18030"))
    assert records[0].fields["a"] == "充满" and notes.header_drift == "file decoded as gb18030, not UTF-8"


@pytest.mark.parametrize("name, reason_start", [
    # é (0xE9) then a space: no GB18030 character
    ("Société Minière", "bytes that are neither UTF-8 nor GB18030 (first at line 2)"),
    # ü (0xFC) then 'l' (0x6C) is a GB18030 character, but one with an ASCII second byte: another encoding
    ("Müller", "not UTF-8 (line 2), and read as GB18030 it gives '黮' at line 2"),
])
def test_windows_1252_text_is_rejected_never_stored_garbled(name, reason_start):
    with pytest.raises(FileRejected) as rejected:
        csv_file(f"a,b,c\n{name},2,3\n".encode("cp1252"))
    assert rejected.value.reason.startswith(reason_start)


def test_truncated_gzip_rejects_the_file():
    whole = gzip.compress(b"a,b,c\n1,2,3\n" * 100)
    with pytest.raises(FileRejected, match="^gzip stream is truncated or corrupt: Compressed file ended"):
        csv_file(whole[: len(whole) // 2])


def test_a_record_above_the_limit_keeps_its_size_and_a_prefix_only():
    # record 1: 5000 'x' + ',2,3' = 5004 bytes > 2000; record 2 is normal
    records, _ = csv_file(b"a,b,c\n" + b"x" * 5000 + b",2,3\n1,2,3\n", max_record_bytes=2000)
    big, normal = records
    assert big.parse_error == ("record is 5004 bytes, above the limit of 2000 bytes (max_record_bytes); "
                               "only its first 1000 characters are kept")
    assert big.raw_record == "x" * 1000 and big.fields is None
    assert normal.fields == {"a": "1", "b": "2", "c": "3"} and normal.line_no == 3


def test_empty_and_blank_csv_files_have_no_header_and_are_rejected():
    for content in (b"", b"\n\n", gzip.compress(b"")):
        with pytest.raises(FileRejected, match="^no header line"):
            csv_file(content)


def test_header_only_csv_has_no_records():
    spec = SOURCES["shipments"]
    records, notes = parse_file((",".join(spec.fields) + "\n").encode(), "h.csv", "csv", spec.fields, spec.required)
    assert records == [] and notes.header_drift is None


def test_jsonl_keeps_every_nonblank_line_verbatim():
    spec = SOURCES["telematics"]
    records, _ = parse_file(b'{"vin":"A"}\n\n{"vin":\n', "t.jsonl", "jsonl", spec.fields, spec.required)
    assert [(r.record_no, r.line_no, r.raw_record) for r in records] == [(1, 1, '{"vin":"A"}'), (2, 3, '{"vin":')]
