"""Split a landing file into bronze records: pure Python, runs inside Spark tasks (``mapInArrow``).

Nothing is typed here; every record keeps its original text, and CSV fields are mapped by header.
File-level problems (bad encoding, missing columns, ragged rows) are attached to the records they
affect as ``parse_error``, so good records of the same file still land and bad ones are quarantined.
"""
from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Record:
    record_no: int
    line_no: int
    raw_record: str | None
    fields: dict[str, str] | None
    parse_error: str | None


@dataclass(frozen=True)
class FileNotes:
    encoding: str
    header_drift: str | None


def unwrap(content: bytes) -> bytes:
    """Landing bytes as text bytes: gunzipped (gzip by magic number), UTF-8 byte-order mark stripped."""
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    if content.startswith(UTF8_BOM):
        content = content[len(UTF8_BOM):]
    return content


def decode(content: bytes, name: str) -> tuple[str, str]:
    """Bytes → text. Gzip by magic number; UTF-8 (BOM stripped) or, failing that, GB18030 (superset of GBK)."""
    content = unwrap(content)
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        return content.decode("utf-8", errors="replace"), "utf-8-with-replacements"


def parse_jsonl(text: str) -> Iterator[Record]:
    record_no = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record_no += 1
        yield Record(record_no, line_no, line, None, None)


def parse_csv(text: str, expected_fields: tuple[str, ...], required: tuple[str, ...]) -> tuple[list[Record], str | None]:
    """Records of a CSV text and a description of header drift (unknown or missing columns), if any."""
    lines = text.splitlines()
    records: list[Record] = []
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if header_idx is None:
        return records, None
    header = [h.strip() for h in next(csv.reader([lines[header_idx]]))]
    unknown = [h for h in header if h not in expected_fields]
    missing = [f for f in expected_fields if f not in header]
    missing_required = [f for f in required if f not in header]
    drift_parts = []
    if unknown:
        drift_parts.append("unknown columns ignored: " + ", ".join(unknown))
    if missing:
        drift_parts.append("missing columns: " + ", ".join(missing))
    drift = "; ".join(drift_parts) or None
    file_error = None
    if missing_required:
        file_error = f"required column(s) missing from header: {', '.join(missing_required)} (header: {lines[header_idx][:200]})"
    record_no = 0
    for offset, line in enumerate(lines[header_idx + 1:], start=header_idx + 2):
        if not line.strip():
            continue
        record_no += 1
        try:
            values = next(csv.reader([line]))
        except csv.Error as exc:
            records.append(Record(record_no, offset, line, None, f"unreadable CSV row: {exc}"))
            continue
        error = file_error
        if error is None and len(values) != len(header):
            error = f"expected {len(header)} fields as in the header, got {len(values)}"
        fields = {h: v for h, v in zip(header, values) if h in expected_fields}
        records.append(Record(record_no, offset, line, fields, error))
    return records, drift


def parse_file(content: bytes, name: str, file_format: str, expected_fields: tuple[str, ...],
               required: tuple[str, ...]) -> tuple[list[Record] | Iterator[Record], FileNotes]:
    text, encoding = decode(content, name)
    if file_format == "csv":
        records, drift = parse_csv(text, expected_fields, required)
    else:
        records, drift = parse_jsonl(text), None
    if encoding != "utf-8":
        drift = "; ".join(p for p in (drift, f"file decoded as {encoding}, not UTF-8") if p)
    return records, FileNotes(encoding, drift)
