"""Split a landing file into bronze records (pure Python: the small sources' files, in the driver).

Nothing is typed here; every record keeps its original text, and CSV fields are mapped by header.
Two kinds of problem:
- a problem of the whole file raises ``FileRejected`` with the reason, and no record of the file lands:
  a gzip stream that is truncated or corrupt, bytes that are neither UTF-8 (with or without byte-order
  mark) nor clean GB18030, a CSV file without a header or whose header does not match the contract
  (a required column missing, e.g. because of another delimiter, or a column named twice);
- a problem of one record is attached to it as ``parse_error``, so the file's good records still land and
  the bad one is quarantined: a ragged or unreadable CSV row, an unterminated quoted field, a record above
  ``max_record_bytes`` (of which only the first ``RECORD_PREFIX_BYTES`` are kept, with its size).

CSV follows RFC 4180: a quoted field may hold commas, doubled quotes and line breaks; a record is as many
physical lines as its quotes need. Lines are cut from the bytes with a bound: a line above the record limit
is never copied, decoded or parsed whole.
"""
from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

UTF8_BOM = b"\xef\xbb\xbf"
RECORD_PREFIX_BYTES = 1000      # characters bronze and quarantine keep of a record above max_record_bytes
DEFAULT_MAX_RECORD_BYTES = 1 << 20
HEADER_MISMATCH = "header does not match the contract"

# the record size is bounded before the csv module sees a record; its own field limit (128 KiB) must not
# cut a valid field first
csv.field_size_limit(2 ** 31 - 1)


class FileRejected(ValueError):
    """A landing file that cannot be read as a whole: none of its records lands."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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


@dataclass(frozen=True)
class Line:
    """One physical line: its bytes without the line break (only the first ``limit`` bytes of a longer
    line), its full size and how many ``"`` it holds (counted over the whole line)."""
    data: bytes
    size_bytes: int
    quotes: int

    @property
    def cut(self) -> bool:
        return self.size_bytes > len(self.data)


def unwrap(content: bytes) -> bytes:
    """Landing bytes as text bytes: gunzipped (gzip by magic number), UTF-8 byte-order mark stripped."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (EOFError, OSError, zlib.error) as exc:
            raise FileRejected(f"gzip stream is truncated or corrupt: {exc}") from None
    if content.startswith(UTF8_BOM):
        content = content[len(UTF8_BOM):]
    return content


def split_lines(content: bytes, limit: int, count_quotes: bool = True) -> list[Line]:
    """The physical lines of ``content`` (``\\n`` or ``\\r\\n`` ends a line), each cut at ``limit`` bytes."""
    buf = np.frombuffer(content, np.uint8)
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], ends + 1))
    ends = np.concatenate((ends, [len(content)]))
    if starts[-1] == len(content):      # the last line break ends the file: no line after it
        starts, ends = starts[:-1], ends[:-1]
    quotes = None
    if count_quotes:
        at = np.flatnonzero(buf == 34)
        quotes = np.searchsorted(at, ends) - np.searchsorted(at, starts)
    lines = []
    for k, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        if e > s and content[e - 1] == 13:   # CR of a CRLF line break
            e -= 1
        n = e - s
        lines.append(Line(content[s:s + min(n, limit)], n, int(quotes[k]) if quotes is not None else 0))
    return lines


def _decode_cut(data: bytes, encoding: str) -> str:
    """A line's kept bytes as text; a line cut at the limit may end inside a character."""
    for drop in range(4):
        try:
            return data[:len(data) - drop].decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode(encoding, errors="replace")


def _foreign_gb18030(chars: set[str]) -> str | None:
    """A character that GB18030 gave but that is most likely another encoding read as GB18030: one whose
    bytes after the first are ASCII (0x30-0x7E), as when a Windows-1252 letter such as é (0xE9) is
    followed by a plain letter. Chinese text is almost all in GB2312, whose characters are two bytes of
    0xA1-0xFE."""
    for ch in sorted(chars):
        encoded = ch.encode("gb18030")
        if len(encoded) > 1 and any(b < 0x80 for b in encoded[1:]):
            return ch
    return None


def decode_lines(lines: list[Line]) -> tuple[list[str], str]:
    """Each line's text and the file's encoding: UTF-8, else GB18030 (a superset of GBK). Anything else
    raises ``FileRejected`` naming the first line that does not decode."""
    try:
        return [_decode_cut(ln.data, "utf-8") if ln.cut else ln.data.decode("utf-8") for ln in lines], "utf-8"
    except UnicodeDecodeError:
        pass
    first_bad = next(i for i, ln in enumerate(lines, start=1) if not _decodes(ln, "utf-8"))
    try:
        texts = [_decode_cut(ln.data, "gb18030") if ln.cut else ln.data.decode("gb18030") for ln in lines]
    except UnicodeDecodeError:
        at = next(i for i, ln in enumerate(lines, start=1) if not _decodes(ln, "gb18030"))
        raise FileRejected(f"bytes that are neither UTF-8 nor GB18030 (first at line {at}); "
                           "deliver the file as UTF-8") from None
    foreign = _foreign_gb18030({c for t in texts for c in t if c > "\x7f"})
    if foreign is not None:
        at = next(i for i, t in enumerate(texts, start=1) if foreign in t)
        raise FileRejected(f"not UTF-8 (line {first_bad}), and read as GB18030 it gives {foreign!r} at line {at}, "
                           "most likely another encoding (e.g. Windows-1252); deliver the file as UTF-8")
    return texts, "gb18030"


def _decodes(line: Line, encoding: str) -> bool:
    try:
        _decode_cut(line.data, encoding) if line.cut else line.data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def oversized_reason(size_bytes: int, limit: int) -> str:
    return (f"record is {size_bytes} bytes, above the limit of {limit} bytes (max_record_bytes); "
            f"only its first {RECORD_PREFIX_BYTES} characters are kept")


def parse_jsonl(texts: list[str], lines: list[Line], limit: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[Record]:
    record_no = 0
    for line_no, (text, line) in enumerate(zip(texts, lines), start=1):
        if not text.strip():
            continue
        record_no += 1
        if line.size_bytes > limit:
            yield Record(record_no, line_no, text[:RECORD_PREFIX_BYTES], None, oversized_reason(line.size_bytes, limit))
        else:
            yield Record(record_no, line_no, text, None, None)


@dataclass
class _Raw:
    line_no: int
    text: str
    size_bytes: int
    error: str | None = None


def _csv_records(texts: list[str], lines: list[Line], limit: int) -> Iterator[_Raw]:
    """RFC 4180 records: physical lines joined while a quoted field is open (an odd number of quotes so
    far). A record above ``limit`` keeps only its first bytes."""
    parts: list[str] = []
    first, size, quotes = 0, 0, 0
    for line_no, (text, line) in enumerate(zip(texts, lines), start=1):
        if not parts:
            if not line.cut and not text.strip():
                continue
            first, size, quotes = line_no, 0, 0
        size += line.size_bytes + (1 if parts else 0)
        quotes += line.quotes
        if size <= limit:
            parts.append(text)
        elif sum(len(p) for p in parts) < RECORD_PREFIX_BYTES:
            parts.append(text[:RECORD_PREFIX_BYTES])
        if quotes % 2 == 0:
            yield _Raw(first, "\n".join(parts), size)
            parts = []
    if parts:
        yield _Raw(first, "\n".join(parts), size, f"quoted field opened in line {first} is never closed")


def parse_csv(texts: list[str] | str, expected_fields: tuple[str, ...], required: tuple[str, ...],
              lines: list[Line] | None = None, limit: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[list[Record], str | None]:
    """Records of a CSV file and a description of header drift (unknown or missing optional columns).
    ``texts``: the file's lines as text (or the whole text); ``lines`` their sizes and quote counts."""
    if isinstance(texts, str):
        lines = split_lines(texts.encode("utf-8"), limit)
        texts = decode_lines(lines)[0]
    raws = _csv_records(texts, lines, limit)
    head = next(raws, None)
    if head is None:
        raise FileRejected("no header line: the file holds no text")
    if head.error or head.size_bytes > limit:
        raise FileRejected(f"{HEADER_MISMATCH}: the header line is unreadable "
                           f"({head.error or oversized_reason(head.size_bytes, limit)})")
    try:
        header = [h.strip() for h in next(csv.reader([head.text], strict=True))]
    except csv.Error as exc:
        raise FileRejected(f"{HEADER_MISMATCH}: the header line is unreadable ({exc})") from None
    shown = head.text[:200]
    missing_required = [f for f in required if f not in header]
    if missing_required:
        raise FileRejected(f"{HEADER_MISMATCH}: required column(s) missing: {', '.join(missing_required)} "
                           f"(header: {shown!r}; expected comma-separated {', '.join(expected_fields)})")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise FileRejected(f"{HEADER_MISMATCH}: column(s) named more than once: {', '.join(twice)} (header: {shown!r})")
    unknown = [h for h in header if h not in expected_fields]
    missing = [f for f in expected_fields if f not in header]
    drift_parts = []
    if unknown:
        drift_parts.append("unknown columns ignored: " + ", ".join(unknown))
    if missing:
        drift_parts.append("missing columns: " + ", ".join(missing))
    drift = "; ".join(drift_parts) or None
    records: list[Record] = []
    for record_no, raw in enumerate(raws, start=1):
        if raw.size_bytes > limit:
            records.append(Record(record_no, raw.line_no, raw.text[:RECORD_PREFIX_BYTES], None,
                                  oversized_reason(raw.size_bytes, limit)))
            continue
        if raw.error:
            records.append(Record(record_no, raw.line_no, raw.text[:RECORD_PREFIX_BYTES], None, raw.error))
            continue
        try:
            values = next(csv.reader([raw.text], strict=True))
        except csv.Error as exc:
            records.append(Record(record_no, raw.line_no, raw.text, None, f"unreadable CSV row: {exc}"))
            continue
        error = None
        if len(values) != len(header):
            error = f"expected {len(header)} fields as in the header, got {len(values)}"
        fields = {h: v for h, v in zip(header, values) if h in expected_fields}
        records.append(Record(record_no, raw.line_no, raw.text, fields, error))
    return records, drift


def parse_file(content: bytes, name: str, file_format: str, expected_fields: tuple[str, ...],
               required: tuple[str, ...], max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
               ) -> tuple[list[Record], FileNotes]:
    """The records of one landing file and its notes; ``FileRejected`` if the file cannot be read."""
    lines = split_lines(unwrap(content), max_record_bytes, count_quotes=file_format == "csv")
    texts, encoding = decode_lines(lines)
    if file_format == "csv":
        records, drift = parse_csv(texts, expected_fields, required, lines, max_record_bytes)
    else:
        records, drift = list(parse_jsonl(texts, lines, max_record_bytes)), None
    if encoding != "utf-8":
        drift = "; ".join(p for p in (drift, f"file decoded as {encoding}, not UTF-8") if p)
    return records, FileNotes(encoding, drift)


def decode(content: bytes, name: str = "") -> tuple[str, str]:
    """Bytes → text and its encoding (gunzipped, BOM stripped; UTF-8 or clean GB18030, else ``FileRejected``)."""
    content = unwrap(content)
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    texts, encoding = decode_lines(split_lines(content, max(len(content), 1), count_quotes=False))
    return "\n".join(texts) + ("\n" if content.endswith(b"\n") else ""), encoding
