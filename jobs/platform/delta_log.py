"""The log side of the Delta tables: where a table's ``_delta_log`` lives, whether it has a commit, the
table's creation (its first commit), and every read and commit made on the log with delta-rs, no Spark job.

delta-rs writes the small tables and slices (the small sources' rows, gold tables, the bookkeeping:
``replace_rows``, ``merge_rows``, ``insert_missing``, ``append_rows``), where a Spark write stage and a Spark
Delta commit cost about a second each against a few milliseconds; ``add_files`` and ``add_files_to_empty``
commit finished Parquet files as they are, from their own statistics. Every commit keeps Delta's
optimistic concurrency: a conflicting commit fails and ``with_retry`` runs the write again on the new
version. The Spark side (DataFrame reads, ``replaceWhere`` and MERGE through Spark) is
:mod:`jobs.platform.delta_tables`, which builds on this module and not the other way round.
"""
from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pyspark.sql import SparkSession

from jobs.platform import session, storage
from jobs.platform.settings import Settings, get_settings
from schemas.tables import TableSpec


_LAYER_ROOT = {"bronze": "bronze_root", "silver": "silver_root", "gold": "gold_root"}
_CONCURRENT_RETRIES = 5
CHECKPOINT_INTERVAL = 10   # commits between two checkpoints of a table (see table_properties)


def table_path(spec: TableSpec, settings: Settings | None = None) -> storage.Location:
    settings = settings or get_settings()
    root = getattr(settings, _LAYER_ROOT[spec.layer]) if spec.layer in _LAYER_ROOT else settings.lake_root / spec.layer
    return root / spec.name


def table_exists(spec: TableSpec, settings: Settings | None = None) -> bool:
    """Whether the table has a first commit (a ``_delta_log`` folder alone is a table another thread or
    process is creating at this moment: no reader can open it yet)."""
    log = table_path(spec, settings) / "_delta_log"
    if storage.is_object_store(log):
        return storage.has_commit(settings or get_settings(), log)
    return (log / "_last_checkpoint").is_file() or next(log.glob("*.json"), None) is not None


def log_table(path: str):
    """delta-rs's view of the table at ``path`` (a folder, or the s3a:// URI Spark reads)."""
    from deltalake import DeltaTable as LogTable

    return LogTable(path, storage_options=storage.options_for(path))


def table_properties(spec: TableSpec) -> dict[str, str]:
    """The Delta properties a table is created with. A checkpoint every ``CHECKPOINT_INTERVAL`` commits,
    whichever engine commits: Spark's default, but delta-rs (the small appends of the ops tables: the files
    ledger gets one per ingest run) checkpoints every 100 commits unless the table says otherwise, and
    every open of the table reads each commit file since the last checkpoint (one GET each on a bucket)."""
    properties = {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}
    if spec.stats_cols:
        properties["delta.dataSkippingStatsColumns"] = ",".join(spec.stats_cols)
    return properties


def ensure_table(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> str:
    """Create the table with its declared schema and partitioning if it does not exist."""
    from delta.tables import DeltaTable

    path = str(table_path(spec, settings))

    def create() -> None:
        # re-checked on every attempt: another process may have created it meanwhile
        if table_exists(spec, settings):
            return
        builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(spec.schema)
        if spec.partition_cols:
            builder = builder.partitionedBy(*spec.partition_cols)
        for key, value in table_properties(spec).items():
            builder = builder.property(key, value)
        builder.execute()

    def create_in_bucket() -> None:
        # delta-rs writes version 0 with a conditional PUT: of two first runs creating the table at once
        # exactly one commit lands, where Spark's S3 log store could let both write it
        from deltalake import DeltaTable as LogTable
        from pyspark.sql.pandas.types import to_arrow_schema

        try:
            LogTable.create(storage.delta_uri(storage.parse_location(path)), to_arrow_schema(spec.schema),
                            mode="ignore", partition_by=list(spec.partition_cols) or None,
                            configuration=table_properties(spec), storage_options=storage.options_for(path))
        except Exception:  # noqa: BLE001 - lost the race for version 0: the table now exists
            if not table_exists(spec, settings):
                raise

    if not table_exists(spec, settings):
        # a Spark Connect client has no DeltaTable builder (the server has no Delta Connect plugin)
        by_log_writer = storage.is_object_store(table_path(spec, settings)) or session.is_remote(spark)
        with_retry(create_in_bucket if by_log_writer else create)
    return path


def with_retry(fn, retries: int = _CONCURRENT_RETRIES):
    """Retry Delta optimistic-concurrency conflicts with exponential backoff (two writers, same table)."""
    delay_s = 0.5
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:  # Delta raises Py4J-wrapped ConcurrentModification/Append exceptions
            text = (type(exc).__name__ + " " + str(exc)[:2000]).lower()
            retryable = any(k in text for k in ("concurrent", "protocolchanged", "metadatachanged",
                                                "filealreadyexists", "already exists",
                                                # a table another process is creating at this moment
                                                "create_table_with_non_empty_location"))
            if not retryable or attempt == retries:
                raise
            time.sleep(delay_s)
            delay_s *= 2


def last_commit(spec: TableSpec, settings: Settings | None = None) -> dict:
    """The commit information of a table's latest commit ({} if the table does not exist), read from the
    Delta log with delta-rs: no Spark job."""
    if not table_exists(spec, settings):
        return {}
    last = log_table(str(table_path(spec, settings))).history(1)
    return last[0] if last else {}


def last_commit_metadata(spec: TableSpec, settings: Settings | None = None) -> str | None:
    """The user metadata of a table's latest commit (None if the table does not exist or has none)."""
    return last_commit(spec, settings).get("userMetadata")


def read_arrow(spec: TableSpec, columns: list[str], partition: tuple[str, str] | None = None,
               settings: Settings | None = None):
    """Some columns of a table (of one partition: ``(column, value)``) as a pyarrow table, read with delta-rs:
    no Spark job, for the small lookups of the bookkeeping. None for a table that does not exist yet."""
    if not table_exists(spec, settings):
        return None
    return log_table(str(table_path(spec, settings))).to_pyarrow_table(
        partitions=[(partition[0], "=", partition[1])] if partition else None, columns=columns)


def read_rows(spec: TableSpec, columns: list[str], settings: Settings | None = None) -> list[dict]:
    """Some columns of every row of a small table, as dicts (none for a table that does not exist yet)."""
    table = read_arrow(spec, columns, settings=settings)
    return table.to_pylist() if table is not None else []


def read_column(spec: TableSpec, column: str, partition: tuple[str, str] | None = None,
                settings: Settings | None = None) -> list:
    """One column's values (of one partition: ``(column, value)``); none for a table that does not exist yet."""
    table = read_arrow(spec, [column], partition, settings)
    return table.column(column).to_pylist() if table is not None else []


def merge_conditions(spec: TableSpec, partition_values: Iterable | None) -> tuple[str, str, str | None] | None:
    """(match condition, changed-values condition, partition condition) of a MERGE on the natural key; the
    touched partitions are part of the match so only they are scanned. None: no partition is touched."""
    key_cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in spec.natural_key)
    partition_cond = None
    if spec.partition_cols and partition_values is not None:
        if not {str(v) for v in partition_values}:
            return None
        partition_cond = in_list_condition(spec.partition_cols[0], partition_values)
        key_cond = f"t.{partition_cond} AND {key_cond}"
    lineage = {"source_file", "record_no", "ingested_at"}
    value_cols = [f.name for f in spec.schema.fields if f.name not in lineage and f.name not in spec.natural_key]
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in value_cols) or "false"
    return key_cond, changed, partition_cond


def in_list_condition(column: str, values: Iterable) -> str:
    vals = sorted({str(v) for v in values})
    if not vals:
        return "false"
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in vals)
    return f"`{column}` IN ({quoted})"


# --- small writes through delta-rs: Arrow tables of a few thousand rows, no Spark job ----------------------
def rows_table(path: str, rows: list[tuple | dict]):
    """Rows (tuples in the table's column order, or dicts by column name: a table that gained columns
    after it was created has them in the order they were added) → an Arrow table of the table's schema."""
    import pyarrow as pa

    schema = pa.schema(log_table(path).schema().to_arrow())
    return pa.Table.from_pylist([r if isinstance(r, dict) else dict(zip(schema.names, r)) for r in rows], schema=schema)


def _as_table_schema(path: str, data, exact_columns: bool = False) -> object:
    """``data`` (an Arrow table) with the table's columns, in order, cast to its types (the write contract).
    Columns the table does not have are left out, or refused with ``exact_columns``."""
    import pyarrow as pa

    schema = pa.schema(log_table(path).schema().to_arrow())
    ours, theirs = set(data.column_names), set(schema.names)
    if exact_columns and ours != theirs:
        raise ValueError(f"{path}: the rows' columns differ from the table's: new {sorted(ours - theirs)}, "
                         f"missing {sorted(theirs - ours)}")
    return data.select(schema.names).cast(schema)


def append_rows(spark: SparkSession, spec: TableSpec, rows: list[tuple], settings: Settings | None = None) -> None:
    """Append a few rows (tuples in the table's column order) with delta-rs: one commit, no Spark job."""
    from deltalake import write_deltalake

    path = ensure_table(spark, spec, settings)
    data = rows_table(path, rows)
    with_retry(lambda: write_deltalake(path, data, mode="append",
                                                  storage_options=storage.options_for(path)))


def replace_rows(spark: SparkSession, spec: TableSpec, data, condition: str, settings: Settings | None = None, *,
                 exact_columns: bool = False) -> None:
    """``replace_where`` for an Arrow table, through delta-rs: the rows matching ``condition`` are replaced
    by ``data`` (which must match it too) in one commit. A new table is created with ``spec``'s schema;
    ``exact_columns`` refuses rows whose columns are not exactly the table's."""
    from deltalake import write_deltalake

    path = ensure_table(spark, spec, settings)
    rows = _as_table_schema(path, data, exact_columns)
    with_retry(lambda: write_deltalake(path, rows, mode="overwrite", predicate=condition,
                                                  storage_options=storage.options_for(path)))


def merge_rows(spark: SparkSession, spec: TableSpec, data, *, partition_values: Iterable | None = None,
               settings: Settings | None = None) -> dict[str, int]:
    """``merge_upsert`` for an Arrow table (one row per key), through delta-rs: the same match and
    changed-values conditions, one commit, and the same counts back (inserted / updated rows)."""

    path = ensure_table(spark, spec, settings)
    conditions = merge_conditions(spec, partition_values)
    if conditions is None or data.num_rows == 0:
        return {"inserted": 0, "updated": 0}
    key_cond, changed, _partition_cond = conditions
    rows = _as_table_schema(path, data)
    metrics = with_retry(lambda: log_table(path).merge(rows, key_cond, source_alias="s", target_alias="t")
                         .when_matched_update_all(predicate=changed).when_not_matched_insert_all().execute())
    return {"inserted": int(metrics["num_target_rows_inserted"]), "updated": int(metrics["num_target_rows_updated"])}


def insert_missing(spark: SparkSession, spec: TableSpec, rows: list[tuple | dict], condition: str,
                   settings: Settings | None = None) -> int:
    """Insert the rows (tuples in the table's column order, or dicts by column name) that match no row of the table under
    ``condition`` (``t.`` = table, ``s.`` = the new rows), through delta-rs; returns the rows inserted."""

    path = ensure_table(spark, spec, settings)
    data = rows_table(path, rows)
    metrics = with_retry(lambda: log_table(path).merge(data, condition, source_alias="s", target_alias="t")
                         .when_not_matched_insert_all().execute())
    return int(metrics["num_target_rows_inserted"])


@dataclass(frozen=True)
class DataFile:
    """A finished Parquet file of one partition of a table (its data columns, no partition column), to be
    committed as it is: what ``add_files`` takes. ``path`` is a local file or an object in a bucket."""
    path: storage.Location
    partition_values: dict[str, str]
    key_value: str | None                # the value of the file's key column, if every row has the same one
    num_records: int
    min_values: dict = field(default_factory=dict)
    max_values: dict = field(default_factory=dict)
    null_count: dict = field(default_factory=dict)
    size_bytes: int | None = None        # known already (an object in a bucket); else read from the file

    def file_size_bytes(self) -> int:
        return self.size_bytes if self.size_bytes is not None else Path(self.path).stat().st_size

    def stats_json(self) -> str:
        return json.dumps({"numRecords": self.num_records, "minValues": self.min_values,
                           "maxValues": self.max_values, "nullCount": self.null_count}, default=_stats_value)


def _stats_value(value) -> str:
    """A statistic as the Delta log writes it: timestamps in UTC to the millisecond (cut, as Delta cuts them)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def add_files(spark: SparkSession, spec: TableSpec, files: list[DataFile], key: str,
              settings: Settings | None = None) -> bool:
    """Commit ``files`` to the table in one Delta commit without rewriting them, replacing the table's
    files that hold their ``key`` values (left by an earlier, interrupted run of the same input).

    Each file is hard-linked into the table folder (copied where links are not possible), and the commit is
    made with delta-rs from the files' own statistics: no Spark job reads or encodes the rows again. This is
    ``replace_where`` for data that is already Parquet, with two limits where it returns False and the
    caller writes through Spark instead:
    - before committing, when a file of the table might hold one of the key values beside others (only a
      rewrite can replace part of a file) or the table's columns differ from the declared ones;
    - after committing, when another writer added rows of the same key values meanwhile (two runs of the
      same input at once). delta-rs checks concurrent commits for files both remove, not for rows both add,
      so this is checked on the table as committed; the caller's ``replace_where`` then leaves one copy.
    """

    if not files:
        return True
    path = ensure_table(spark, spec, settings)
    keys = sorted({f.key_value for f in files})
    partitions = {_partition(f) for f in files}
    added: list[str] = []

    def commit() -> bool:
        log = log_table(path)
        if not _same_columns(log, spec):
            return False
        existing = _files_holding(log, partitions, key, keys)
        if any(not exact for _, exact in existing):
            return False
        added[:] = _commit_files(log, spec, path, files, [a for a, _ in existing])
        return True

    if not with_retry(commit):
        return False
    ours = set(added)
    return all(a["path"] in ours for a, _ in _files_holding(log_table(path), partitions, key, keys))


def add_files_to_empty(spark: SparkSession, spec: TableSpec, files: list[DataFile],
                       settings: Settings | None = None) -> list[DataFile]:
    """Commit, as they are, the ``files`` whose partition of the table holds no rows yet; return the others.

    For rows already deduplicated and holding no key of each other (silver telematics: one file per landing
    file and event day, each key once, no key shared between files): in a partition without rows nothing
    can match them, so they are what MERGE would insert. Files of partitions that hold rows are returned
    to the caller for a MERGE. So are all of them when the table's columns differ from the declared ones,
    or when another writer added files to the same partitions while this commit was made (two runs of the
    same input at once: this run's files are removed again, in a second commit, and its MERGE then finds
    the other run's rows).
    """

    if not files:
        return []
    path = ensure_table(spark, spec, settings)
    committed: list[DataFile] = []
    added: list[str] = []

    def commit() -> None:
        log = log_table(path)
        committed.clear()
        added.clear()
        if not _same_columns(log, spec):
            return
        taken = {_partition_of(a) for a in _add_actions(log)}
        committed.extend(f for f in files if _partition(f) not in taken)
        if committed:
            added.extend(_commit_files(log, spec, path, committed, []))

    with_retry(commit)
    if not committed:
        return list(files)
    partitions, ours = {_partition(f) for f in committed}, set(added)
    mine = [a for a in _add_actions(log_table(path)) if _partition_of(a) in partitions]
    if any(a["path"] not in ours for a in mine):
        # take ours back: a commit that removes them and adds nothing
        with_retry(lambda: _commit_files(log_table(path), spec, path, [], [a for a in mine if a["path"] in ours]))
        return list(files)
    return [f for f in files if f not in committed]


def _commit_files(log, spec: TableSpec, path: str, files: list[DataFile], removes: list[dict]) -> list[str]:
    """Link ``files`` into the table folder and commit them, and the removal of the table's files
    ``removes`` (add actions as ``_add_actions`` gives them), in one delta-rs commit; returns the table
    paths of the added files. Nothing is left behind if the commit fails."""
    from deltalake.transaction import AddAction, CommitProperties, RemoveAction

    now_ms = int(time.time() * 1000)
    actions = [RemoveAction(a["path"], True, now_ms, a["size_bytes"], dict(_partition_of(a))) for a in removes]
    added: list[str] = []
    try:
        for f in files:
            rel = "/".join([*[f"{k}={v}" for k, v in f.partition_values.items()],
                            f"part-{uuid.uuid4().hex}-{PurePosixPath(f.path.name).stem}.parquet"])
            _link(f.path, path, rel)
            added.append(rel)
            actions.append(AddAction(rel, f.file_size_bytes(), f.partition_values, now_ms, True, f.stats_json()))
        log.create_write_transaction(actions, mode="append", schema=log.schema(),
                                     partition_by=list(spec.partition_cols) or None,
                                     commit_properties=CommitProperties(custom_metadata={
                                         "numOutputRows": str(sum(f.num_records for f in files))}))
    except Exception:
        for rel in added:  # not committed: no reader will look for them
            _unlink(path, rel)
        raise
    return added


def _same_columns(log, spec: TableSpec) -> bool:
    return [f.name for f in log.schema().fields] == [f.name for f in spec.schema.fields]


def _add_actions(log) -> list[dict]:
    import pyarrow as pa

    return pa.table(log.get_add_actions(flatten=True)).to_pylist()


def _partition(f: DataFile) -> tuple:
    return tuple(sorted(f.partition_values.items()))


def _partition_of(add: dict) -> tuple:
    """The partition values of an add action (flattened), as ``_partition`` gives them for a ``DataFile``."""
    return tuple(sorted((k[len("partition."):], None if v is None else str(v))
                        for k, v in add.items() if k.startswith("partition.")))


def _files_holding(log, partitions: set[tuple], key: str, keys: list[str]) -> list[tuple[dict, bool]]:
    """(add action, exact) of the table's files in ``partitions`` that may hold one of ``keys`` (sorted) in
    column ``key``, by their statistics; ``exact``: the file holds that one value only (min = max). A file
    without statistics on ``key`` may hold any."""
    found = []
    for a in _add_actions(log):
        if _partition_of(a) not in partitions:
            continue
        low, high = a.get(f"min.{key}"), a.get(f"max.{key}")
        if low is None or high is None:
            found.append((a, False))
            continue
        at = bisect.bisect_left(keys, low)
        if at < len(keys) and keys[at] <= high:
            found.append((a, low == high))
    return found


def _link(source: storage.Location, table: str, rel: str) -> None:
    """Put the staged file ``source`` at ``rel`` in the table folder without copying its bytes where the
    file system allows (a hard link: the staged file stays readable for a fallback write until the run
    removes its staging folder); into a bucket it is copied inside the store (or uploaded from disk)."""
    location = storage.parse_location(table)
    if storage.is_object_store(location):
        storage.copy(get_settings(), source, location / rel)
        return
    target = Path(table) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _unlink(table: str, rel: str) -> None:
    location = storage.parse_location(table)
    if storage.is_object_store(location):
        storage.delete(get_settings(), location / rel)
    else:
        (Path(table) / rel).unlink(missing_ok=True)
