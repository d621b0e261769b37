"""Telematics landing files → staged bronze and typed Parquet, in one pass inside the Spark tasks.

A telematics day is millions of frames. Handing them from the Python tasks to the JVM and back costs
more than parsing and typing them (measured: a round trip of the 23 bronze columns took longer than the
Arrow parse and the NumPy typing together, and caching the typed rows longer still). So one Spark task
per landing file parses it (``frames``), types it (``telematics``) and writes three Parquet files with
pyarrow into a staging folder of the run: the bronze rows, the typed good rows and the typed bad rows.
Only a few count rows per file come back to Spark, and a 64-bit hash of each good row's natural key, from
which the driver finds the few keys that may repeat without shuffling every key (``repeated_key_hashes``).
The bronze files are already what the bronze table holds (one file per landing file, in its landing-day
folder, without the partition column), so they are committed to it as they are (``io.add_files``);
quarantine reads the bad rows' files and silver the good rows' files, with Spark's vectorised Parquet
reader.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs import io
from jobs.ingest.bronze import each_file, file_meta, landing_files
from jobs.ingest.frames import BRONZE_FRAME_ARROW, frame_batches
from jobs.ingest.landing import LandingFile
from jobs.ingest.telematics import arrow_schema, type_frame_batch, typed_schema
from schemas.tables import BRONZE_TELEMATICS_SCHEMA

STAGING_DIR = "_staging"
STALE_AFTER_S = 24 * 3600        # a staging folder this old belongs to a run that was killed
_NO_DAY = -(2 ** 31)            # count key of rows without an event day
COUNTS_SCHEMA = T.StructType([
    T.StructField("file_sha256", T.StringType()), T.StructField("_bad", T.BooleanType()),
    T.StructField("event_date_local", T.DateType()), T.StructField("n", T.LongType()),
    T.StructField("key_hashes", T.BinaryType()),   # the file's good rows' key hashes (int64), on one row
])
KEY_HASH = "_key_hash"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: spreads the timestamps' low bits


# a bronze table file: the frame columns without the partition column, which the file's folder names
_BRONZE_FILE_ARROW = BRONZE_FRAME_ARROW.remove(BRONZE_FRAME_ARROW.get_field_index("landing_date"))


def staged_typed_schema() -> T.StructType:
    return T.StructType([*typed_schema().fields, T.StructField("_bad", T.BooleanType()),
                         T.StructField(KEY_HASH, T.LongType())])


@dataclass
class StagedFrames:
    """The staged rows of one run's new telematics files, and their counts per file, row state and day."""
    bronze: DataFrame
    good: DataFrame             # typed rows that passed every check, + ``_errors`` (empty), ``_bad``, ``_key_hash``
    bad: DataFrame              # typed rows that failed a check, the same columns
    counts: list                # Rows of (file_sha256, _bad, event_date_local, n)
    repeated_key_hashes: np.ndarray   # key hashes found on more than one good row: those rows may repeat a key
    bronze_files: list[io.DataFile]   # the staged bronze files, ready for ``io.add_files``


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
                 lateness_days: int, lake_root: Path, run_id: str) -> StagedFrames:
    """Parse, type and stage ``files`` (one Spark task per file); returns the staged rows and counts."""
    folder = staging_folder(lake_root, run_id)
    bronze_dir, typed_dir, bad_dir = folder / "bronze", folder / "typed", folder / "bad"
    for d in (bronze_dir, typed_dir, bad_dir):
        d.mkdir(parents=True, exist_ok=True)
    meta = file_meta(files)
    typed_arrow = arrow_schema(typed_schema())
    staged_arrow = typed_arrow.append(pa.field("_bad", pa.bool_())).append(pa.field(KEY_HASH, pa.int64()))
    bronze_str, typed_str, bad_str = str(bronze_dir), str(typed_dir), str(bad_dir)

    def stage_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for content, rel_path, landing_date, sha in each_file(batches, meta):
            lineage = {"source": "telematics", "landing_date": landing_date, "source_file": rel_path,
                       "file_sha256": sha, "ingested_at": ingested_at}
            counts, hashes = _stage_file(content, rel_path, lineage, tz, lateness_days, typed_arrow, staged_arrow,
                                         _bronze_file(bronze_str, landing_date, sha), f"{typed_str}/{sha}.parquet",
                                         f"{bad_str}/{sha}.parquet")
            yield _counts_batch(sha, counts, hashes)

    rows = landing_files(spark, meta).mapInArrow(stage_files, COUNTS_SCHEMA).collect()
    hashes = [np.frombuffer(r["key_hashes"], np.int64) for r in rows if r["key_hashes"]]
    counts = [r for r in rows if r["n"]]
    repeated_hashes = repeated(np.concatenate(hashes) if hashes else np.zeros(0, np.int64))
    good_schema = staged_typed_schema()
    return StagedFrames(
        # landing_date comes from the folder names, as in the table
        bronze=spark.read.schema(BRONZE_TELEMATICS_SCHEMA).option("basePath", bronze_str).parquet(bronze_str),
        good=spark.read.schema(good_schema).parquet(typed_str),
        bad=spark.read.schema(good_schema).parquet(bad_str),
        counts=counts,
        repeated_key_hashes=repeated_hashes,
        bronze_files=[f for f in (_data_file(Path(_bronze_file(bronze_str, day, sha)), day, sha, rel_path)
                                  for rel_path, day, sha in meta.values()) if f.num_records],
    )


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


def _data_file(path: Path, landing_date: dt.date, sha: str, rel_path: str) -> io.DataFile:
    """A staged bronze file with the statistics the bronze table keeps (file, source file, record range),
    read from its Parquet footer. A file without rows has no record range; it is not committed."""
    meta = pq.read_metadata(path)
    record_no = meta.schema.names.index("record_no")
    groups = [meta.row_group(i).column(record_no).statistics for i in range(meta.num_row_groups)]
    n = meta.num_rows
    low = min((g.min for g in groups if g is not None and g.has_min_max), default=None)
    high = max((g.max for g in groups if g is not None and g.has_min_max), default=None)
    return io.DataFile(
        path=path, partition_values={"landing_date": landing_date.isoformat()}, key_value=sha, num_records=n,
        min_values={"file_sha256": sha, "source_file": rel_path, "record_no": low},
        max_values={"file_sha256": sha, "source_file": rel_path, "record_no": high},
        null_count={"file_sha256": 0, "source_file": 0, "record_no": 0},
    )


def _stage_file(content: bytes, rel_path: str, lineage: dict, tz: str, lateness_days: int,
                typed_arrow: pa.Schema, staged_arrow: pa.Schema, bronze_path: str, typed_path: str,
                bad_path: str) -> tuple[Counter, np.ndarray]:
    """Write one landing file's bronze rows and its typed good and bad rows; return row counts by (bad,
    local event day) and the good rows' key hashes."""
    counts: Counter = Counter()
    hashes: list[np.ndarray] = []
    # written under hidden names (Spark's reader skips them) and renamed when complete: a task that dies
    # mid-file leaves no partial file for the Delta writes to read
    bronze_tmp, typed_tmp, bad_tmp = _hidden(bronze_path), _hidden(typed_path), _hidden(bad_path)
    os.makedirs(os.path.dirname(bronze_path), exist_ok=True)
    bronze_out = pq.ParquetWriter(bronze_tmp, _BRONZE_FILE_ARROW)
    typed_out = pq.ParquetWriter(typed_tmp, staged_arrow)
    bad_out = pq.ParquetWriter(bad_tmp, staged_arrow)
    try:
        for bronze in frame_batches(content, rel_path, lineage):
            bronze_out.write_batch(bronze.drop_columns(["landing_date"]))
            typed = type_frame_batch(bronze, tz, lateness_days, typed_arrow)
            bad = pc.greater(pc.list_value_length(typed.column("_errors")), 0)
            good = pc.invert(bad)
            rows = pa.RecordBatch.from_arrays([*typed.columns, bad, pa.nulls(typed.num_rows, pa.int64())],
                                              schema=staged_arrow)
            good_rows = rows.filter(good)
            if good_rows.num_rows:
                batch_hashes = key_hashes(good_rows.column("vin"), good_rows.column("event_ts_utc"))
                hashes.append(batch_hashes)
                typed_out.write_batch(good_rows.set_column(staged_arrow.get_field_index(KEY_HASH), KEY_HASH,
                                                           pa.array(batch_hashes, pa.int64())))
            if good_rows.num_rows < rows.num_rows:
                bad_out.write_batch(rows.filter(bad))
            days = pc.fill_null(typed.column("event_date_local").cast(pa.int32()), _NO_DAY)
            keys = days.to_numpy().astype(np.int64) * 2 + bad.to_numpy(zero_copy_only=False)
            for key, n in zip(*np.unique(keys, return_counts=True)):
                day = int(key // 2)
                counts[(bool(key % 2), None if day == _NO_DAY else day)] += int(n)
    finally:
        bronze_out.close()
        typed_out.close()
        bad_out.close()
    os.replace(bronze_tmp, bronze_path)
    os.replace(typed_tmp, typed_path)
    os.replace(bad_tmp, bad_path)
    return counts, np.concatenate(hashes) if hashes else np.zeros(0, np.int64)


def _hidden(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}")


def _counts_batch(sha: str, counts: Counter, hashes: np.ndarray) -> pa.RecordBatch:
    """The file's counts, and one more row (n = 0) carrying its key hashes."""
    items = list(counts.items())
    return pa.RecordBatch.from_arrays([
        pa.array([sha] * (len(items) + 1), pa.string()),
        pa.array([bad for (bad, _), _ in items] + [False], pa.bool_()),
        pa.array([day for (_, day), _ in items] + [None], pa.int32()).cast(pa.date32()),
        pa.array([n for _, n in items] + [0], pa.int64()),
        pa.array([None] * len(items) + [hashes.tobytes()], pa.binary()),
    ], names=[f.name for f in COUNTS_SCHEMA.fields])
