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
checksum). Nothing counts as ingested until the files ledger says so, as for every source.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs.platform import delta_log
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
        paths = [str(f.path) for f in files]
        base = str(Path(paths[0]).parent.parent) if paths else None
        return spark.read.schema(_SILVER.schema).option("basePath", base).parquet(*paths)


def staging_root(lake_root: Path) -> Path:
    return Path(lake_root) / STAGING_DIR / "telematics"


def staging_folder(lake_root: Path, run_id: str) -> Path:
    return staging_root(lake_root) / run_id


def remove_staging(lake_root: Path, run_id: str) -> None:
    """Remove a run's staged files (once its Delta writes are done, or failed)."""
    shutil.rmtree(staging_folder(lake_root, run_id), ignore_errors=True)


def remove_stale(lake_root: Path, now: float | None = None) -> list[Path]:
    """Remove staging folders left by runs killed more than ``STALE_AFTER_S`` ago (never a live run's)."""
    root, now = staging_root(lake_root), now or time.time()
    stale = [p for p in root.glob("*") if p.is_dir() and now - p.stat().st_mtime > STALE_AFTER_S] if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def stage_frames(spark: SparkSession, files: list[LandingFile], ingested_at: dt.datetime, tz: str,
                 lateness_days: int, lake_root: Path, run_id: str,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> StagedFrames:
    """Parse, type and stage ``files`` (one Spark task per file); returns the staged rows and counts."""
    folder = staging_folder(lake_root, run_id)
    bronze_dir, silver_dir, bad_dir = folder / "bronze", folder / "silver", folder / "bad"
    for d in (bronze_dir, silver_dir, bad_dir):
        d.mkdir(parents=True, exist_ok=True)
    meta = file_meta(files)
    typed_arrow = arrow_schema(typed_schema())
    bronze_str, silver_str, bad_str = str(bronze_dir), str(silver_dir), str(bad_dir)

    def stage_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for content, rel_path, landing_date, sha in each_file(batches, meta):
            lineage = {"source": "telematics", "landing_date": landing_date, "source_file": rel_path,
                       "file_sha256": sha, "ingested_at": ingested_at}
            try:
                counts, hashes = _stage_file(content, rel_path, lineage, tz, lateness_days, typed_arrow,
                                             _bronze_file(bronze_str, landing_date, sha), silver_str, sha,
                                             f"{bad_str}/{sha}.parquet", max_record_bytes)
            except FileRejected as exc:   # nothing of the file was staged
                yield _rejected_batch(sha, exc.reason)
                continue
            yield _counts_batch(sha, counts, hashes)

    rows = landing_files(spark, meta).mapInArrow(stage_files, COUNTS_SCHEMA).collect()
    rejected = {r["file_sha256"]: r["rejected"] for r in rows if r["rejected"] is not None}
    counts = [r for r in rows if r["n"]]
    silver_days = sorted({(r["file_sha256"], r["event_date_local"]) for r in counts if not r["_bad"]})
    sharing = sharing_keys({r["file_sha256"]: np.frombuffer(r["key_hashes"], np.int64) for r in rows if r["key_hashes"]})
    silver_files = [_silver_data_file(Path(_silver_file(silver_str, day, sha)), day, sha) for sha, day in silver_days]
    return StagedFrames(
        # landing_date comes from the folder names, as in the table
        bronze=spark.read.schema(BRONZE_TELEMATICS_SCHEMA).option("basePath", bronze_str).parquet(bronze_str),
        bad=spark.read.schema(typed_schema()).parquet(bad_str),
        counts=counts,
        bronze_files=[f for f in (_bronze_data_file(Path(_bronze_file(bronze_str, day, sha)), day, sha, rel_path)
                                  for rel_path, day, sha in meta.values() if sha not in rejected) if f.num_records],
        silver_files=combine_small(silver_files, sharing),
        files_sharing_keys=sharing,
        rejected=rejected,
    )


SMALL_FILE_ROWS = 100_000   # staged silver files below this many rows are combined per event day


def combine_small(files: list[delta_log.DataFile], sharing: set[str], small_rows: int = SMALL_FILE_ROWS) -> list[delta_log.DataFile]:
    """The staged silver files with those of fewer than ``small_rows`` rows combined into one file per
    event day, so that late and small deliveries do not leave the table many tiny files. Only files that
    share no key with another file are combined (their rows stay distinct); the combined file has no
    single landing file (``key_value`` None)."""
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
        tmp = _hidden(str(path))
        pq.write_table(pa.concat_tables([pq.ParquetFile(f.path).read() for f in group]), tmp)
        os.replace(tmp, path)
        kept.append(_silver_data_file(path, dt.date.fromisoformat(day), None))
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


def _bronze_file(folder: str, landing_date: dt.date, sha: str) -> str:
    return f"{folder}/landing_date={landing_date.isoformat()}/{sha}.parquet"


def _silver_file(folder: str, event_day: dt.date, sha: str) -> str:
    return f"{folder}/{_SILVER_PARTITION}={event_day.isoformat()}/{sha}.parquet"


def _footer_range(meta: pq.FileMetaData, column: str) -> tuple:
    """(min, max, null count) of a column over a Parquet file's row groups, from its footer."""
    at = meta.schema.names.index(column)
    groups = [meta.row_group(i).column(at).statistics for i in range(meta.num_row_groups)]
    low = min((g.min for g in groups if g is not None and g.has_min_max), default=None)
    high = max((g.max for g in groups if g is not None and g.has_min_max), default=None)
    return low, high, sum(g.null_count for g in groups if g is not None)


def _bronze_data_file(path: Path, landing_date: dt.date, sha: str, rel_path: str) -> delta_log.DataFile:
    """A staged bronze file with the statistics the bronze table keeps (file, source file, record range),
    read from its Parquet footer. A file without rows has no record range; it is not committed."""
    meta = pq.read_metadata(path)
    low, high, _ = _footer_range(meta, "record_no")
    return delta_log.DataFile(
        path=path, partition_values={"landing_date": landing_date.isoformat()}, key_value=sha,
        num_records=meta.num_rows,
        min_values={"file_sha256": sha, "source_file": rel_path, "record_no": low},
        max_values={"file_sha256": sha, "source_file": rel_path, "record_no": high},
        null_count={"file_sha256": 0, "source_file": 0, "record_no": 0},
    )


def _silver_data_file(path: Path, event_day: dt.date, sha: str | None) -> delta_log.DataFile:
    """A staged silver file with the statistics the silver table keeps (its natural key's columns)."""
    meta = pq.read_metadata(path)
    low, high, nulls = {}, {}, {}
    for column in _SILVER.stats_cols:
        low[column], high[column], nulls[column] = _footer_range(meta, column)
    return delta_log.DataFile(path=path, partition_values={_SILVER_PARTITION: event_day.isoformat()}, key_value=sha,
                       num_records=meta.num_rows, min_values=low, max_values=high, null_count=nulls)


def _stage_file(content: bytes, rel_path: str, lineage: dict, tz: str, lateness_days: int,
                typed_arrow: pa.Schema, bronze_path: str, silver_folder: str, sha: str,
                bad_path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[Counter, np.ndarray]:
    """Write one landing file's bronze rows, its silver rows (one file per event day, each key once) and
    its bad rows; return the typed rows' counts by (bad, local event day) and the silver rows' key hashes."""
    counts: Counter = Counter()
    good_batches: list[pa.RecordBatch] = []
    # written under hidden names (Spark's reader skips them) and renamed when complete: a task that dies
    # mid-file leaves no partial file for the Delta writes to read
    bronze_tmp, bad_tmp = _hidden(bronze_path), _hidden(bad_path)
    os.makedirs(os.path.dirname(bronze_path), exist_ok=True)
    batches = frame_batches(content, rel_path, lineage, max_record_bytes=max_record_bytes)
    first = next(batches, None)   # a file rejected as a whole raises here, before anything is written
    bronze_out = pq.ParquetWriter(bronze_tmp, _BRONZE_FILE_ARROW)
    bad_out = pq.ParquetWriter(bad_tmp, typed_arrow)
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
        _write_silver_days(good, silver_folder, sha)
    os.replace(bronze_tmp, bronze_path)
    os.replace(bad_tmp, bad_path)
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


def _write_silver_days(rows: pa.Table, folder: str, sha: str) -> None:
    """One silver file per event day of ``rows``, without the partition column (the folder names it)."""
    days = rows.column(_SILVER_PARTITION)
    if days.null_count:  # typing rejects a frame without an event day; this would be a bug, not bad input
        raise ValueError(f"{sha}: {days.null_count} typed rows without {_SILVER_PARTITION}")
    for day in pc.unique(days).to_pylist():
        path = _silver_file(folder, day, sha)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = _hidden(path)
        pq.write_table(rows.filter(pc.equal(days, day)).select(_SILVER_FILE_COLUMNS), tmp)
        os.replace(tmp, path)


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
