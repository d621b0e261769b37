"""Landing files → bronze rows (raw text + lineage) as Arrow batches. The small sources split their files in
the driver (``bronze_table``); telematics frames are parsed, typed and staged in one pass per file inside
Spark tasks (``jobs.ingest.frame_stage``, which reads the files through ``landing_files``)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from jobs.ingest.landing import LandingFile
from jobs.ingest.parse import DEFAULT_MAX_RECORD_BYTES, FileRejected, parse_file
from jobs.platform import session, storage
from schemas.sources import SourceSpec

_ARROW_SCHEMA = pa.schema([
    ("source", pa.string()), ("landing_date", pa.date32()), ("source_file", pa.string()),
    ("file_sha256", pa.string()), ("record_no", pa.int64()), ("line_no", pa.int64()),
    ("raw_record", pa.string()), ("fields", pa.map_(pa.string(), pa.string())),
    ("parse_error", pa.string()), ("ingested_at", pa.timestamp("us", tz="UTC")),
])
_BATCH_ROWS = 50_000


def _strip_scheme(uri: str) -> str:
    return uri[len("file:"):] if uri.startswith("file:") else uri


def file_meta(files: list[LandingFile]) -> dict[str, tuple[str, dt.date, str]]:
    """Path → (rel_path, landing_date, sha256) of each landing file, for the tasks that read them; the path
    as Spark reads it (a local path, or ``s3a://bucket/key``)."""
    return {storage.spark_uri(f.path): (f.rel_path, f.landing_date, f.sha256) for f in files}


def landing_files(spark: SparkSession, meta: dict[str, tuple]) -> DataFrame:
    """The files' bytes (``path``, ``content``), spread over the tasks: one file is read by one task."""
    paths = sorted(meta)
    return (spark.read.format("binaryFile").load(paths).select("path", "content")
            .repartition(max(1, min(len(paths), session.parallelism(spark) * 2))))


def each_file(batches, meta: dict[str, tuple]):
    """(content, rel_path, landing_date, sha256) of every file in a task's ``landing_files`` batches."""
    for batch in batches:
        for path_uri, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
            yield (content, *meta[_strip_scheme(path_uri)])


def file_batches(content: bytes, rel_path: str, landing_date: dt.date, sha: str, spec: SourceSpec,
                 ingested_at: dt.datetime, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES):
    """The bronze rows of one landing file, as Arrow batches of at most ``_BATCH_ROWS`` rows, and the file's
    notes; ``FileRejected`` when the file cannot be read as a whole."""
    records, notes = parse_file(content, rel_path, spec.file_format, spec.fields, spec.required, max_record_bytes)
    batches = []
    cols: dict[str, list] = {n: [] for n in ("record_no", "line_no", "raw_record", "fields", "parse_error")}
    for rec in records:
        cols["record_no"].append(rec.record_no)
        cols["line_no"].append(rec.line_no)
        cols["raw_record"].append(rec.raw_record)
        cols["fields"].append(list(rec.fields.items()) if rec.fields is not None else None)
        cols["parse_error"].append(rec.parse_error)
        if len(cols["record_no"]) >= _BATCH_ROWS:
            batches.append(_to_batch(cols, spec.name, landing_date, rel_path, sha, ingested_at))
            cols = {n: [] for n in cols}
    if cols["record_no"]:
        batches.append(_to_batch(cols, spec.name, landing_date, rel_path, sha, ingested_at))
    return batches, notes


@dataclass
class BronzeBatch:
    """The bronze rows of a run's files, each readable file's notes (header drift, encoding) and the
    files rejected as a whole (checksum → reason)."""
    table: pa.Table
    notes: dict[str, str | None] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


def bronze_table(files: list[LandingFile], spec: SourceSpec, ingested_at: dt.datetime,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, settings=None) -> BronzeBatch:
    """One bronze row per record of the readable ``files``, read and split in this process: the small
    sources' few thousand rows a day cost less to split here than to plan a Spark job for. ``settings``
    give the object store's endpoint and credentials for files in a bucket."""
    out = BronzeBatch(pa.Table.from_batches([], schema=_ARROW_SCHEMA))
    batches = []
    if settings is None and any(storage.is_object_store(f.path) for f in files):
        from jobs.platform.settings import get_settings

        settings = get_settings()
    for f in files:
        try:
            file_rows, notes = file_batches(storage.read_bytes(settings, f.path), f.rel_path, f.landing_date,
                                            f.sha256, spec, ingested_at, max_record_bytes)
        except FileRejected as exc:
            out.rejected[f.sha256] = exc.reason
            continue
        batches.extend(file_rows)
        out.notes[f.sha256] = notes.header_drift
    out.table = pa.Table.from_batches(batches, schema=_ARROW_SCHEMA)
    return out


def _to_batch(cols: dict[str, list], source: str, landing_date: dt.date, rel_path: str, sha: str,
              ingested_at: dt.datetime) -> pa.RecordBatch:
    n = len(cols["record_no"])
    return pa.RecordBatch.from_arrays([
        pa.array([source] * n, pa.string()),
        pa.array([landing_date] * n, pa.date32()),
        pa.array([rel_path] * n, pa.string()),
        pa.array([sha] * n, pa.string()),
        pa.array(cols["record_no"], pa.int64()),
        pa.array(cols["line_no"], pa.int64()),
        pa.array(cols["raw_record"], pa.string()),
        pa.array(cols["fields"], pa.map_(pa.string(), pa.string())),
        pa.array(cols["parse_error"], pa.string()),
        pa.array([ingested_at] * n, pa.timestamp("us", tz="UTC")),
    ], schema=_ARROW_SCHEMA)
