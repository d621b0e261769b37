"""Telematics landing files → staged bronze and typed Parquet, in one pass inside the Spark tasks.

A telematics day is millions of frames. Handing them from the Python tasks to the JVM and back costs
more than parsing and typing them (measured: a round trip of the 23 bronze columns took longer than the
Arrow parse and the NumPy typing together, and caching the typed rows longer still). So one Spark task
per landing file parses it (``frames``), types it (``telematics``) and writes Parquet files with pyarrow
into a staging folder of the run: the bronze rows, the silver rows and the bad rows. Each is already in
the shape of its table:
- bronze: one file per landing file in its landing-day folder, without the partition column;
- silver: one file per landing file and event day, in the event-day folder, with the silver columns. A
  key the file holds twice keeps only its last record (the order silver keeps: the last delivered
  version), so a file's silver rows hold each key once;
- bad: the typed rows that failed a check, with their errors, for the quarantine.
Only a few count rows per file come back to Spark, and a 64-bit hash of each silver row's natural key, from
which the driver finds the files that share a key with another file of the run (``files_sharing_keys``)
without shuffling every key. Bronze files and the silver files of the other files can be committed as
they are (``delta_log.add_files``, ``delta_log.add_files_to_empty``); the rest go through Spark's MERGE.

The staging folder is the run's own (``<lake>/_staging/telematics/<run id>``) and is removed when the
run ends; a file a retried task writes again replaces its earlier attempt (the name is the file's
checksum). Nothing counts as ingested until the files ledger says so, as for every source. With the lake
in a bucket the staging folder is a prefix of it: the tasks write their Parquet objects through the
storage layer's pyarrow filesystem (an object appears only when its upload completes, so no partial file
is ever listed), and the driver reads their footers and commits them by server-side copy.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs.platform import delta_log, storage
from jobs.ingest.bronze import each_file, file_meta, landing_files
from jobs.ingest.frames import BRONZE_FRAME_ARROW, frame_batches
from jobs.ingest.landing import LandingFile
from jobs.ingest.parse import DEFAULT_MAX_RECORD_BYTES, FileRejected
from jobs.ingest.telematics import arrow_schema, type_frame_batch, typed_schema
from schemas.tables import BRONZE_TELEMATICS_SCHEMA, SILVER

STAGING_DIR = "_staging"
STALE_AFTER_S = 24 * 3600        # a staging folder this old belongs to a run that was killed
_NO_DAY = -(2 ** 31)            # count key of rows without an event day
COUNTS_SCHEMA = T.StructType([
    T.StructField("file_sha256", T.StringType()), T.StructField("_bad", T.BooleanType()),
    T.StructField("event_date_local", T.DateType()), T.StructField("n", T.LongType()),
    T.StructField("key_hashes", T.BinaryType()),   # the file's good rows' key hashes (int64), on one row
    T.StructField("rejected", T.StringType()),     # why the whole file was rejected (then its only row)
])
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: spreads the timestamps' low bits


# a bronze table file: the frame columns without the partition column, which the file's folder names
_BRONZE_FILE_ARROW = BRONZE_FRAME_ARROW.remove(BRONZE_FRAME_ARROW.get_field_index("landing_date"))
_SILVER = SILVER["telematics"]
_SILVER_PARTITION = _SILVER.partition_cols[0]
# a silver table file: the silver columns without the partition column
_SILVER_FILE_COLUMNS = [f.name for f in _SILVER.schema.fields if f.name != _SILVER_PARTITION]


@dataclass
class StagedFrames:
    """The staged rows of one run's new telematics files, and their counts per file, row state and day."""
    bronze: DataFrame
    bad: DataFrame              # typed rows that failed a check, + ``_errors``
    counts: list                # Rows of (file_sha256, _bad, event_date_local, n): typed rows, before dedupe
    bronze_files: list[delta_log.DataFile]   # the staged bronze files, ready for ``delta_log.add_files``
    silver_files: list[delta_log.DataFile]   # the staged silver files (one per landing file and event day)
    files_sharing_keys: set[str]      # checksums of the landing files that may share a key with another one
    rejected: dict[str, str] = field(default_factory=dict)   # checksum → why the whole file was rejected

    def silver_rows(self, spark: SparkSession, files: list[delta_log.DataFile]) -> DataFrame:
        """The rows of some staged silver files, with their event day from the folder name, as in the table."""
        paths = [storage.spark_uri(f.path) for f in files]
        base = storage.spark_uri(files[0].path.parent.parent) if files else None
        return spark.read.schema(_SILVER.schema).option("basePath", base).parquet(*paths)


def staging_root(lake_root: storage.Location) -> storage.Location:
    return lake_root / STAGING_DIR / "telematics"


def staging_folder(lake_root: storage.Location, run_id: str) -> storage.Location:
    return staging_root(lake_root) / run_id


def _settings(settings):
    if settings is None:
        from jobs.platform.settings import get_settings

        return get_settings()
    return settings


def remove_staging(lake_root: storage.Location, run_id: str, settings=None) -> None:
    """Remove a run's staged files (once its Delta writes are done, or failed)."""
    storage.remove_tree(_settings(settings), staging_folder(lake_root, run_id))


def remove_stale(lake_root: storage.Location, now: float | None = None, settings=None) -> list[storage.Location]:
    """Remove staging folders left by runs killed more than ``STALE_AFTER_S`` ago (never a live run's): in a
    folder by the run folder's time, in a bucket by the newest object of the run's prefix."""
    root, now = staging_root(lake_root), now or time.time()
    if storage.is_object_store(root):
        settings = _settings(settings)
        newest: dict[str, float] = {}
        for stored in storage.list_files(settings, root):
            run = stored.rel_key.split("/", 1)[0]
            newest[run] = max(newest.get(run, 0.0), stored.mtime_s or now)
        stale = [root / run for run, mtime_s in sorted(newest.items()) if now - mtime_s > STALE_AFTER_S]
    else:
        stale = [p for p in root.glob("*") if p.is_dir() and now - p.stat().st_mtime > STALE_AFTER_S] if root.is_dir() else []
    for location in stale:
        storage.remove_tree(settings, location)
    return stale


def stage_frames(spark: SparkSession, files: list[LandingFile], ingested_at: dt.datetime, tz: str,
                 lateness_days: int, lake_root: storage.Location, run_id: str,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, settings=None) -> StagedFrames:
    """Parse, type and stage ``files`` (one Spark task per file); returns the staged rows and counts."""
    folder = staging_folder(lake_root, run_id)
    bronze_dir, silver_dir, bad_dir = folder / "bronze", folder / "silver", folder / "bad"
    # the tasks write through this filesystem (it travels with them, credentials included, never logged)
    out_fs = storage.filesystem(_settings(settings) if storage.is_object_store(folder) else settings, folder)
    meta = file_meta(files)
    typed_arrow = arrow_schema(typed_schema())
    bronze_str, silver_str, bad_str = (storage.fs_path(d) for d in (bronze_dir, silver_dir, bad_dir))

    def stage_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for content, rel_path, landing_date, sha in each_file(batches, meta):
            lineage = {"source": "telematics", "landing_date": landing_date, "source_file": rel_path,
                       "file_sha256": sha, "ingested_at": ingested_at}
            try:
                counts, hashes = _stage_file(content, rel_path, lineage, tz, lateness_days, typed_arrow,
                                             _bronze_file(bronze_str, landing_date, sha), silver_str, sha,
                                             f"{bad_str}/{sha}.parquet", max_record_bytes, out_fs)
            except FileRejected as exc:   # nothing of the file was staged
                yield _rejected_batch(sha, exc.reason)
                continue
            yield _counts_batch(sha, counts, hashes)

    rows = landing_files(spark, meta).mapInArrow(stage_files, COUNTS_SCHEMA).collect()
    rejected = {r["file_sha256"]: r["rejected"] for r in rows if r["rejected"] is not None}
    counts = [r for r in rows if r["n"]]
    silver_days = sorted({(r["file_sha256"], r["event_date_local"]) for r in counts if not r["_bad"]})
    sharing = sharing_keys({r["file_sha256"]: np.frombuffer(r["key_hashes"], np.int64) for r in rows if r["key_hashes"]})
    silver_files = [_silver_data_file(silver_dir / _silver_rel(day, sha), day, sha, out_fs)
                    for sha, day in silver_days]
    bronze_uri, bad_uri = storage.spark_uri(bronze_dir), storage.spark_uri(bad_dir)
    # every file that was not rejected left a bronze and a bad-rows file (maybe of 0 rows); with none, there
    # is no folder (nor prefix) to read
    staged_any = any(sha not in rejected for _, _, sha in meta.values())
    return StagedFrames(
        # landing_date comes from the folder names, as in the table
        bronze=(spark.read.schema(BRONZE_TELEMATICS_SCHEMA).option("basePath", bronze_uri).parquet(bronze_uri)
                if staged_any else spark.createDataFrame([], BRONZE_TELEMATICS_SCHEMA)),
        bad=spark.read.schema(typed_schema()).parquet(bad_uri) if staged_any else spark.createDataFrame([], typed_schema()),
        counts=counts,
        bronze_files=[f for f in (_bronze_data_file(bronze_dir / _bronze_rel(day, sha), day, sha, rel_path, out_fs)
                                  for rel_path, day, sha in meta.values() if sha not in rejected) if f.num_records],
        silver_files=combine_small(silver_files, sharing, filesystem=out_fs),
        files_sharing_keys=sharing,
        rejected=rejected,
    )


SMALL_FILE_ROWS = 100_000   # staged silver files below this many rows are combined per event day


def combine_small(files: list[delta_log.DataFile], sharing: set[str], small_rows: int = SMALL_FILE_ROWS,
                  filesystem=None) -> list[delta_log.DataFile]:
    """The staged silver files with those of fewer than ``small_rows`` rows combined into one file per
    event day, so that late and small deliveries do not leave the table many tiny files. Only files that
    share no key with another file are combined (their rows stay distinct); the combined file has no
    single landing file (``key_value`` None)."""
    from pyarrow import fs as pafs

    filesystem = filesystem or pafs.LocalFileSystem()
    small: dict[str, list[delta_log.DataFile]] = {}
    kept = []
    for f in files:
        if f.num_records < small_rows and f.key_value not in sharing:
            small.setdefault(f.partition_values[_SILVER_PARTITION], []).append(f)
        else:
            kept.append(f)
    for day, group in small.items():
        if len(group) == 1:
            kept.extend(group)
            continue
        path = group[0].path.parent / f"combined-{uuid.uuid4().hex}.parquet"
        rows = pa.concat_tables([_read_file(filesystem, f.path) for f in group])
        written = _begin(filesystem, storage.fs_path(path))
        pq.write_table(rows, written, filesystem=filesystem)
        _finish(written, storage.fs_path(path))
        kept.append(_silver_data_file(path, dt.date.fromisoformat(day), None, filesystem))
    return kept


def sharing_keys(hashes_by_file: dict[str, np.ndarray]) -> set[str]:
    """The files holding a key hash that another file holds too (each file's hashes are distinct)."""
    if not hashes_by_file:
        return set()
    shared = repeated(np.concatenate(list(hashes_by_file.values())))
    return {sha for sha, h in hashes_by_file.items() if np.isin(h, shared).any()} if len(shared) else set()


def repeated(hashes: np.ndarray) -> np.ndarray:
    """The values found more than once in ``hashes``."""
    values, n = np.unique(hashes, return_counts=True)
    return values[n > 1]


def key_hashes(vin: pa.Array, event_ts_utc: pa.Array) -> np.ndarray:
    """A 64-bit hash of each (vin, event_ts_utc) key, the same in every process (no Python ``hash``).
    Equal keys have equal hashes; two keys sharing a hash only send both rows through the exact ranking."""
    codes = vin.dictionary_encode()
    vin_hash = np.array([int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little")
                         for v in codes.dictionary.to_pylist()], np.uint64)
    ts = event_ts_utc.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.uint64)
    codes_np = pc.fill_null(codes.indices, 0).to_numpy(zero_copy_only=False)
    return (vin_hash[codes_np] ^ (ts * _GOLDEN)).view(np.int64)


def _bronze_rel(landing_date: dt.date, sha: str) -> str:
    return f"landing_date={landing_date.isoformat()}/{sha}.parquet"


def _silver_rel(event_day: dt.date, sha: str) -> str:
    return f"{_SILVER_PARTITION}={event_day.isoformat()}/{sha}.parquet"


def _bronze_file(folder: str, landing_date: dt.date, sha: str) -> str:
    return f"{folder}/{_bronze_rel(landing_date, sha)}"


def _silver_file(folder: str, event_day: dt.date, sha: str) -> str:
    return f"{folder}/{_silver_rel(event_day, sha)}"


def _local(filesystem) -> bool:
    from pyarrow import fs as pafs

    return isinstance(filesystem, pafs.LocalFileSystem)


def _begin(filesystem, path: str) -> str:
    """The name a staged file is written under until it is complete. In a folder: a hidden name (Spark's
    reader skips it) renamed by ``_finish``, so a task that dies mid-file leaves no partial file for the
    Delta writes to read. In a bucket: the object's own key, since an object appears only once its upload
    completes (an interrupted upload is never listed)."""
    if not _local(filesystem):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return _hidden(path)


def _finish(written: str, path: str) -> None:
    if written != path:
        os.replace(written, path)


def _read_file(filesystem, location: storage.Location) -> pa.Table:
    """One staged Parquet file's columns (no partition column from its folder name)."""
    with filesystem.open_input_file(storage.fs_path(location)) as fh:
        return pq.ParquetFile(fh).read()


def _footer(filesystem, location: storage.Location) -> tuple[pq.FileMetaData, int]:
    """A staged file's Parquet footer and size in bytes."""
    from pyarrow import fs as pafs

    filesystem = filesystem or pafs.LocalFileSystem()
    with filesystem.open_input_file(storage.fs_path(location)) as fh:
        return pq.read_metadata(fh), fh.size()


def _footer_range(meta: pq.FileMetaData, column: str) -> tuple:
    """(min, max, null count) of a column over a Parquet file's row groups, from its footer."""
    at = meta.schema.names.index(column)
    groups = [meta.row_group(i).column(at).statistics for i in range(meta.num_row_groups)]
    low = min((g.min for g in groups if g is not None and g.has_min_max), default=None)
    high = max((g.max for g in groups if g is not None and g.has_min_max), default=None)
    return low, high, sum(g.null_count for g in groups if g is not None)


def _bronze_data_file(path: storage.Location, landing_date: dt.date, sha: str, rel_path: str,
                      filesystem=None) -> delta_log.DataFile:
    """A staged bronze file with the statistics the bronze table keeps (file, source file, record range),
    read from its Parquet footer. A file without rows has no record range; it is not committed."""
    meta, size_bytes = _footer(filesystem, path)
    low, high, _ = _footer_range(meta, "record_no")
    return delta_log.DataFile(
        path=path, partition_values={"landing_date": landing_date.isoformat()}, key_value=sha,
        num_records=meta.num_rows,
        min_values={"file_sha256": sha, "source_file": rel_path, "record_no": low},
        max_values={"file_sha256": sha, "source_file": rel_path, "record_no": high},
        null_count={"file_sha256": 0, "source_file": 0, "record_no": 0}, size_bytes=size_bytes,
    )


def _silver_data_file(path: storage.Location, event_day: dt.date, sha: str | None,
                      filesystem=None) -> delta_log.DataFile:
    """A staged silver file with the statistics the silver table keeps (its natural key's columns)."""
    meta, size_bytes = _footer(filesystem, path)
    low, high, nulls = {}, {}, {}
    for column in _SILVER.stats_cols:
        low[column], high[column], nulls[column] = _footer_range(meta, column)
    return delta_log.DataFile(path=path, partition_values={_SILVER_PARTITION: event_day.isoformat()}, key_value=sha,
                       num_records=meta.num_rows, min_values=low, max_values=high, null_count=nulls,
                       size_bytes=size_bytes)


def _stage_file(content: bytes, rel_path: str, lineage: dict, tz: str, lateness_days: int,
                typed_arrow: pa.Schema, bronze_path: str, silver_folder: str, sha: str,
                bad_path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
                filesystem=None) -> tuple[Counter, np.ndarray]:
    """Write one landing file's bronze rows, its silver rows (one file per event day, each key once) and
    its bad rows; return the typed rows' counts by (bad, local event day) and the silver rows' key hashes."""
    from pyarrow import fs as pafs

    filesystem = filesystem or pafs.LocalFileSystem()
    counts: Counter = Counter()
    good_batches: list[pa.RecordBatch] = []
    batches = frame_batches(content, rel_path, lineage, max_record_bytes=max_record_bytes)
    first = next(batches, None)   # a file rejected as a whole raises here, before anything is written
    # never a partial file where the Delta writes read (see _begin)
    bronze_tmp, bad_tmp = _begin(filesystem, bronze_path), _begin(filesystem, bad_path)
    bronze_out = pq.ParquetWriter(bronze_tmp, _BRONZE_FILE_ARROW, filesystem=filesystem)
    bad_out = pq.ParquetWriter(bad_tmp, typed_arrow, filesystem=filesystem)
    try:
        for bronze in _chain(first, batches):
            bronze_out.write_batch(bronze.drop_columns(["landing_date"]))
            typed = type_frame_batch(bronze, tz, lateness_days, typed_arrow)
            bad = pc.greater(pc.list_value_length(typed.column("_errors")), 0)
            good_rows = typed.filter(pc.invert(bad))
            if good_rows.num_rows:
                good_batches.append(good_rows.select(_SILVER_FILE_COLUMNS + [_SILVER_PARTITION]))
            if good_rows.num_rows < typed.num_rows:
                bad_out.write_batch(typed.filter(bad))
            days = pc.fill_null(typed.column("event_date_local").cast(pa.int32()), _NO_DAY)
            keys = days.to_numpy().astype(np.int64) * 2 + bad.to_numpy(zero_copy_only=False)
            for key, n in zip(*np.unique(keys, return_counts=True)):
                day = int(key // 2)
                counts[(bool(key % 2), None if day == _NO_DAY else day)] += int(n)
    finally:
        bronze_out.close()
        bad_out.close()
    hashes = np.zeros(0, np.int64)
    if good_batches:
        good = pa.Table.from_batches(good_batches)
        hashes = key_hashes(good.column("vin").combine_chunks(), good.column("event_ts_utc").combine_chunks())
        keep = last_record_per_key(good, hashes)
        good, hashes = good.filter(keep), hashes[keep]
        _write_silver_days(good, silver_folder, sha, filesystem)
    _finish(bronze_tmp, bronze_path)
    _finish(bad_tmp, bad_path)
    return counts, hashes


def last_record_per_key(rows: pa.Table, hashes: np.ndarray) -> np.ndarray:
    """Mask of the rows to keep so that each (vin, event_ts_utc) of one file's rows is kept once, by its
    highest ``record_no`` (the last delivered version, as silver keeps across files). Only the rows whose
    hash repeats are compared, exactly by key: two keys sharing a hash are both kept."""
    keep = np.ones(len(hashes), bool)
    candidates = np.flatnonzero(np.isin(hashes, repeated(hashes)))
    if not len(candidates):
        return keep
    picked = rows.select(["vin", "event_ts_utc", "record_no"]).take(pa.array(candidates)).append_column(
        "_at", pa.array(candidates, pa.int64()))
    picked = picked.sort_by([("vin", "ascending"), ("event_ts_utc", "ascending"), ("record_no", "descending")])
    vin = picked.column("vin").to_numpy(zero_copy_only=False)
    ts = picked.column("event_ts_utc").cast(pa.int64()).to_numpy(zero_copy_only=False)
    same_as_previous = np.zeros(len(vin), bool)
    same_as_previous[1:] = (vin[1:] == vin[:-1]) & (ts[1:] == ts[:-1])
    keep[picked.column("_at").to_numpy()[same_as_previous]] = False
    return keep


def _write_silver_days(rows: pa.Table, folder: str, sha: str, filesystem) -> None:
    """One silver file per event day of ``rows``, without the partition column (the folder names it)."""
    days = rows.column(_SILVER_PARTITION)
    if days.null_count:  # typing rejects a frame without an event day; this would be a bug, not bad input
        raise ValueError(f"{sha}: {days.null_count} typed rows without {_SILVER_PARTITION}")
    for day in pc.unique(days).to_pylist():
        path = _silver_file(folder, day, sha)
        written = _begin(filesystem, path)
        pq.write_table(rows.filter(pc.equal(days, day)).select(_SILVER_FILE_COLUMNS), written, filesystem=filesystem)
        _finish(written, path)


def _hidden(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}")


def _chain(first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if first is not None:
        yield first
        yield from rest


def _rejected_batch(sha: str, reason: str) -> pa.RecordBatch:
    """The one row of a file rejected as a whole: no counts, no keys, the reason."""
    return pa.RecordBatch.from_arrays([
        pa.array([sha], pa.string()), pa.array([False], pa.bool_()), pa.array([None], pa.date32()),
        pa.array([0], pa.int64()), pa.array([None], pa.binary()), pa.array([reason], pa.string()),
    ], names=[f.name for f in COUNTS_SCHEMA.fields])


def _counts_batch(sha: str, counts: Counter, hashes: np.ndarray) -> pa.RecordBatch:
    """The file's counts, and one more row (n = 0) carrying its key hashes."""
    items = list(counts.items())
    return pa.RecordBatch.from_arrays([
        pa.array([sha] * (len(items) + 1), pa.string()),
        pa.array([bad for (bad, _), _ in items] + [False], pa.bool_()),
        pa.array([day for (_, day), _ in items] + [None], pa.int32()).cast(pa.date32()),
        pa.array([n for _, n in items] + [0], pa.int64()),
        pa.array([None] * len(items) + [hashes.tobytes()], pa.binary()),
        pa.nulls(len(items) + 1, pa.string()),
    ], names=[f.name for f in COUNTS_SCHEMA.fields])
