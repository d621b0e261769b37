"""Telematics landing files (JSON lines) → bronze frame rows, parsed with Arrow's JSON reader.

Runs inside Spark tasks (``mapInArrow``): one task reads one file. Lines are parsed in chunks by
``pyarrow.json`` against the frame schema (compiled C++, no per-line Python); a chunk that Arrow
refuses is narrowed down to the lines at fault, which are read one by one with ``json.loads``.
A line that is not a valid frame (truncated, not JSON, a field of the wrong JSON type) becomes a row
with ``parse_error`` set and its original text in ``raw_record``; a valid frame keeps its raw fields
as delivered (integer codes, local time text) and no copy of its text: the landing file, which is kept
and checksummed, has it at ``line_no``.

Semantics follow Spark's permissive JSON reader: unknown keys are ignored, a missing or null key is
null, a number where text is expected is read as its JSON text, and anything else of the wrong type
makes the whole line malformed.
"""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from jobs.ingest.parse import (
    DEFAULT_MAX_RECORD_BYTES, RECORD_PREFIX_BYTES, decode_lines, oversized_reason, split_lines, unwrap,
)

MALFORMED = "malformed JSON (truncated or invalid line)"

# (bronze column, path in the frame, Arrow type): the frame layout of schemas.sources TELEMATICS
FRAME_COLUMNS: tuple[tuple[str, tuple[str, ...], pa.DataType], ...] = (
    ("vin", ("vin",), pa.string()),
    ("msg_type", ("msg_type",), pa.string()),
    ("collect_time", ("collect_time",), pa.string()),
    ("vehicle_speed", ("vehicle", "speed"), pa.int64()),
    ("vehicle_odometer", ("vehicle", "odometer"), pa.int64()),
    ("vehicle_total_voltage", ("vehicle", "total_voltage"), pa.int64()),
    ("vehicle_total_current", ("vehicle", "total_current"), pa.int64()),
    ("vehicle_soc", ("vehicle", "soc"), pa.int64()),
    ("fuel_cell_h2_remaining", ("fuel_cell", "h2_remaining"), pa.int64()),
    ("engine_fuel_total", ("engine", "fuel_total"), pa.int64()),
    ("position_valid", ("position", "valid"), pa.int64()),
    ("position_coord_sys", ("position", "coord_sys"), pa.string()),
    ("position_lon", ("position", "lon"), pa.int64()),
    ("position_lat", ("position", "lat"), pa.int64()),
)
# bronze column of a frame field, by its dotted path ("vehicle.soc" → "vehicle_soc")
BRONZE_COLUMN = {".".join(path): name for name, path, _ in FRAME_COLUMNS}

LINEAGE_ARROW = (
    ("source", pa.string()), ("landing_date", pa.date32()), ("source_file", pa.string()),
    ("file_sha256", pa.string()), ("record_no", pa.int64()), ("line_no", pa.int64()),
    ("raw_record", pa.string()), ("parse_error", pa.string()), ("ingested_at", pa.timestamp("us", tz="UTC")),
)
BRONZE_FRAME_ARROW = pa.schema([*LINEAGE_ARROW, *[(name, typ) for name, _, typ in FRAME_COLUMNS]])


def _json_schema() -> pa.Schema:
    """The nested schema Arrow's reader parses against (top-level fields and one level of objects)."""
    top: dict[str, pa.DataType | dict[str, pa.DataType]] = {}
    for _, path, typ in FRAME_COLUMNS:
        if len(path) == 1:
            top[path[0]] = typ
        else:
            top.setdefault(path[0], {})[path[1]] = typ  # type: ignore[index]
    return pa.schema([(k, pa.struct(list(v.items())) if isinstance(v, dict) else v) for k, v in top.items()])


_JSON_SCHEMA = _json_schema()
_PARSE = pj.ParseOptions(explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="ignore")
_CHUNK_LINES = 16_384
_SLOW_BELOW_LINES = 32          # a refused chunk this small is read line by line
_ROW_IN_ERROR = re.compile(r"in row (\d+)")
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _is_utf8(content: bytes, chunk_bytes: int = 4 << 20) -> bool:
    """Whether ``content`` is valid UTF-8, checked a few MiB at a time (no text copy of the whole file)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    try:
        for at in range(0, len(content), chunk_bytes):
            decoder.decode(view[at:at + chunk_bytes])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def utf8_bytes(content: bytes, name: str) -> bytes:
    """Landing bytes → UTF-8 bytes (gunzipped, BOM stripped; GB18030 re-encoded). ``FileRejected`` for a
    truncated or corrupt gzip stream and for bytes that are neither UTF-8 nor clean GB18030."""
    content = unwrap(content)
    if _is_utf8(content):
        return content
    texts, _encoding = decode_lines(split_lines(content, len(content) + 1, count_quotes=False))
    return "\n".join(texts).encode("utf-8")


def _longest_line_bytes(data: bytes) -> int:
    breaks = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    bounds = np.concatenate(([-1], breaks, [len(data)]))
    return int(np.diff(bounds).max()) - 1


def frame_batches(content: bytes, name: str, lineage: dict, max_rows: int = 50_000,
                  max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[pa.RecordBatch]:
    """Bronze frame rows of one file (every non-blank line once). ``lineage``: source, landing_date,
    source_file, file_sha256, ingested_at (the same for every row). A line above ``max_record_bytes`` is
    not parsed: it becomes a row with the reason and its first characters. ``FileRejected`` (raised before
    the first row) when the file cannot be read as a whole."""
    data = utf8_bytes(content, name)
    sizes = None
    if len(data) <= max_record_bytes or _longest_line_bytes(data) <= max_record_bytes:
        lines = data.split(b"\n")
    else:   # cut every line at the limit: the long ones are never copied whole
        cut = split_lines(data, max_record_bytes, count_quotes=False)
        lines, sizes = [ln.data for ln in cut], [ln.size_bytes for ln in cut]
    del data
    objects: list[tuple[int, int, bytes]] = []   # (record_no, line_no, text) of lines shaped like an object
    others: list[tuple[int, int, bytes]] = []    # the rest (mostly truncated lines): read one by one
    oversized: list[tuple[int, int, bytes, int]] = []
    record_no = 0
    for i, line in enumerate(lines):
        if sizes is not None and sizes[i] > max_record_bytes:
            record_no += 1
            oversized.append((record_no, i + 1, line[:RECORD_PREFIX_BYTES], sizes[i]))
            continue
        body = line.strip()
        if body:
            record_no += 1
            (objects if body[:1] == b"{" and body[-1:] == b"}" else others).append((record_no, i + 1, body))
    del lines
    text = _Lines(objects)
    pieces: list[pa.RecordBatch] = []
    rows = 0
    for start in range(0, len(objects), _CHUNK_LINES):
        for table, first, count in _parse_range(text, start, min(start + _CHUNK_LINES, len(objects))):
            pieces.append(_with_lineage(table, text.record_no.slice(first, count), text.line_no.slice(first, count),
                                        lineage))
            rows += count
            if rows >= max_rows:
                yield from _combine(pieces)
                pieces, rows = [], 0
    if others:
        pieces.append(_with_lineage(_slow_table([body for _, _, body in others]),
                                    pa.array([r for r, _, _ in others], pa.int64()),
                                    pa.array([n for _, n, _ in others], pa.int64()), lineage))
    if oversized:
        pieces.append(_with_lineage(
            _error_table([p.decode("utf-8", errors="ignore")[:RECORD_PREFIX_BYTES] for _, _, p, _ in oversized],
                         [oversized_reason(size, max_record_bytes) for _, _, _, size in oversized]),
            pa.array([r for r, _, _, _ in oversized], pa.int64()),
            pa.array([n for _, n, _, _ in oversized], pa.int64()), lineage))
    if pieces:
        yield from _combine(pieces)


def _error_table(texts: list[str], errors: list[str]) -> pa.Table:
    """Rows that are not frames: their text and why, every frame column null."""
    n = len(texts)
    return pa.table({"raw_record": pa.array(texts, pa.string()), "parse_error": pa.array(errors, pa.string()),
                     **{name: pa.nulls(n, typ) for name, _, typ in FRAME_COLUMNS}})


class _Lines:
    """Lines of a file joined by newlines once, sliced without copying."""

    def __init__(self, numbered: list[tuple[int, int, bytes]]):
        data = b"\n".join([body for _, _, body in numbered])
        self.data, self.buffer = data, pa.py_buffer(data)
        self.record_no = pa.array([r for r, _, _ in numbered], pa.int64())
        self.line_no = pa.array([n for _, n, _ in numbered], pa.int64())
        # line k is data[starts[k]:starts[k + 1] - 1]
        self.starts = [0, *accumulate(len(body) + 1 for _, _, body in numbered)]

    def line(self, k: int) -> bytes:
        return self.data[self.starts[k]:self.starts[k + 1] - 1]

    def block(self, first: int, end: int) -> pa.Buffer:
        return self.buffer.slice(self.starts[first], self.starts[end] - 1 - self.starts[first])


def _combine(pieces: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield from pa.Table.from_batches(pieces, BRONZE_FRAME_ARROW).combine_chunks().to_batches()


def _parse_range(text: _Lines, start: int, end: int) -> Iterator[tuple[pa.Table, int, int]]:
    """(frame table, index of its first line, row count) for lines [start, end), in order."""
    while start < end:
        if end - start <= _SLOW_BELOW_LINES:
            yield _slow_table([text.line(k) for k in range(start, end)]), start, end - start
            return
        try:
            block = text.block(start, end)
            # one block (error row numbers are then relative to ``start``), sized to the range
            table = pj.read_json(pa.BufferReader(block),
                                 read_options=pj.ReadOptions(block_size=block.size + 1, use_threads=False),
                                 parse_options=_PARSE)
        except pa.ArrowInvalid as exc:
            at = _ROW_IN_ERROR.search(str(exc))
            if at is None or int(at.group(1)) >= end - start:
                # a conversion error names no row: halve until the bad lines are isolated
                middle = (start + end) // 2
                yield from _parse_range(text, start, middle)
                start = middle
                continue
            bad = start + int(at.group(1))
            yield from _parse_range(text, start, bad)
            yield _slow_table([text.line(bad)]), bad, 1
            start = bad + 1
            continue
        if table.num_rows != end - start:  # never expected: one row per non-blank line
            yield _slow_table([text.line(k) for k in range(start, end)]), start, end - start
        else:
            yield _flat(table), start, end - start
        return


def _flat(table: pa.Table) -> pa.Table:
    flat = table.flatten()  # struct children carry their parent's nulls
    columns = {c: flat.column(c) for c in flat.column_names}
    out = [columns[".".join(path)] for _, path, _ in FRAME_COLUMNS]
    n = table.num_rows
    return pa.table([pa.nulls(n, pa.string()), pa.nulls(n, pa.string()), *out],
                    names=["raw_record", "parse_error", *[name for name, _, _ in FRAME_COLUMNS]])


def _slow_table(lines: list[bytes]) -> pa.Table:
    """Lines read one by one: a valid frame gets its fields, anything else its text and the error."""
    cols: dict[str, list] = {"raw_record": [], "parse_error": [], **{name: [] for name, _, _ in FRAME_COLUMNS}}
    for line in lines:
        values = _frame_values(line)
        if values is None:
            cols["raw_record"].append(line.decode("utf-8", errors="replace"))
            cols["parse_error"].append(MALFORMED)
            for name, _, _ in FRAME_COLUMNS:
                cols[name].append(None)
        else:
            cols["raw_record"].append(None)
            cols["parse_error"].append(None)
            for (name, _, _), value in zip(FRAME_COLUMNS, values):
                cols[name].append(value)
    types = {"raw_record": pa.string(), "parse_error": pa.string(), **{n: t for n, _, t in FRAME_COLUMNS}}
    return pa.table({name: pa.array(values, types[name]) for name, values in cols.items()})


def _frame_values(line: bytes) -> list | None:
    """The frame's values in FRAME_COLUMNS order, or None when the line is not a valid frame."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    values = []
    for _, path, typ in FRAME_COLUMNS:
        node = obj
        for key in path[:-1]:
            node = node.get(key)
            if node is None:
                break
            if not isinstance(node, dict):
                return None
        value = None if node is None else node.get(path[-1])
        if value is None:
            values.append(None)
        elif typ == pa.int64():
            if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
                return None
            values.append(value)
        elif isinstance(value, str):
            values.append(value)
        elif isinstance(value, (int, float)):
            values.append(json.dumps(value))
        else:
            return None
    return values


def _with_lineage(table: pa.Table, record_no: pa.Array, line_no: pa.Array, lineage: dict) -> pa.RecordBatch:
    arrays = {name: pa.repeat(pa.scalar(value, BRONZE_FRAME_ARROW.field(name).type), table.num_rows)
              for name, value in lineage.items()}
    arrays.update(record_no=record_no, line_no=line_no)
    columns = [arrays[f.name] if f.name in arrays else table.column(f.name).combine_chunks()
               for f in BRONZE_FRAME_ARROW]
    return pa.RecordBatch.from_arrays(columns, schema=BRONZE_FRAME_ARROW)
