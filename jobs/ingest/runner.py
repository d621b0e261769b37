"""Ingest one source (or one domain) for a window of delivery days: landing → bronze → silver + quarantine.

Run by the ingest DAGs and by hand::

    python -m jobs.ingest.runner --domain charging --to 2026-11-04 [--from 2026-11-01]
    python -m jobs.ingest.runner --source telematics --to 2026-11-04
    python -m jobs.ingest.runner --all --to 2026-11-04              # every source: small ones, then telematics

Crash safety: bronze and quarantine rows are replaced per file checksum, silver is MERGEd on the
natural key (telematics files of event days without rows yet are committed as staged, each key once:
what that MERGE would insert), and a file is recorded in ``ingested_files`` only after all three writes.
A run killed at any point leaves consistent tables (Delta commits are atomic) and the next run redoes
exactly the unfinished files: their days hold rows by then, so their silver rows go through MERGE.

Hostile input: a file that cannot be read as a whole is rejected (``ingested_files`` status ``rejected`` with
the reason; nothing of it in bronze, silver or quarantine), a bad record is quarantined, a bad folder is
skipped and reported; none of them stops the other files or sources. The command line exits 0 (clean),
3 (succeeded with rejects) or 1 (a source failed); see docs/reliability.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
import uuid
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.platform import delta_log, delta_tables
from jobs.ingest.bronze import bronze_table
from jobs.ingest.dimensions import type_dimension
from jobs.ingest.events import type_event
from jobs.ingest.frame_stage import StagedFrames, remove_stale, remove_staging, stage_frames
from jobs.ingest.landing import Discovery, LandingFile, discover
from jobs.ingest.casting import event_window_check, finalize_errors
from jobs.platform.session import scheduler_pool
from jobs.platform.settings import Settings, get_settings
from schemas.sources import DOMAINS, SOURCES, SourceSpec, sources_of
from schemas.tables import BRONZE, INGEST_AUDIT, INGESTED_FILES, QUARANTINE, SILVER, TableSpec

log = logging.getLogger(__name__)

# Local-day column of each event source checked against the delivery day (late data / clock jumps).
_EVENT_TIME_FIELD = {
    "production_plan": "published_local",
    "mine_production": "shift_date", "washing": "prod_date", "telematics": "collect_time",
    "weighbridge": "load_time_local", "charging_sessions": "plug_in_local",
    "connector_status": "status_time_local", "h2_fills": "start_local", "shipments": "ship_date",
}


SUCCEEDED, WITH_REJECTS, FAILED = "succeeded", "succeeded_with_rejects", "failed"
# exit status of the command line: every file landed whole / some input rejected or quarantined / a source failed
EXIT_STATUS = {SUCCEEDED: 0, WITH_REJECTS: 3, FAILED: 1}


@dataclass
class SourceResult:
    source: str
    files_new: int = 0
    files_skipped: int = 0
    files_rejected: list[tuple[str, str]] = field(default_factory=list)
    bronze_rows: int = 0
    quarantined_rows: int = 0
    duplicate_rows: int = 0
    silver_inserted: int = 0
    silver_updated: int = 0
    event_dates: list[str] = field(default_factory=list)
    header_drift: dict[str, str] = field(default_factory=dict)
    # wall-clock seconds per stage (discover, bronze, typing, quarantine, silver, bookkeeping)
    stage_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None      # the source failed (an error that is not about its input): why

    @property
    def status(self) -> str:
        """``failed``, ``succeeded_with_rejects`` (a file or folder rejected, or rows quarantined) or
        ``succeeded``."""
        if self.error is not None:
            return FAILED
        return WITH_REJECTS if self.files_rejected or self.quarantined_rows else SUCCEEDED

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_s[name] = round(self.stage_s.get(name, 0.0) + time.perf_counter() - started, 3)


def typed_rows(bronze: DataFrame, spec: SourceSpec, settings: Settings) -> DataFrame:
    """Bronze rows → silver columns + ``_errors`` (pure transform)."""
    tz = settings.source_timezone
    if spec.is_dimension:
        df = type_dimension(bronze, spec.name, tz)
    else:
        df = type_event(bronze, spec.name, tz)
    if not spec.is_dimension:
        df = event_window_check(df, "event_date_local", _EVENT_TIME_FIELD[spec.name], settings.lateness_allowance_days)
    return finalize_errors(df)


def _quarantine_field_reason() -> tuple[Column, Column]:
    """The first failing field of a typed row with errors, and every reason ("field: reason; ...")."""
    reasons = F.transform("_errors", lambda e: F.concat_ws(": ", e["field"], e["reason"]))
    return F.col("_errors")[0]["field"], F.array_join(reasons, "; ")


_QUARANTINE_LINEAGE = ("source", "landing_date", "source_file", "file_sha256", "record_no", "line_no")


def quarantine_rows(typed: DataFrame) -> DataFrame:
    bad = typed.filter(F.size("_errors") > 0)
    field_, reason = _quarantine_field_reason()
    return bad.select(*_QUARANTINE_LINEAGE, field_.alias("field"), reason.alias("reason"), "raw_record",
                      F.col("ingested_at").alias("quarantined_at"))


def _newest_first(columns: list[str]) -> list[Column]:
    """The most recently delivered version of a key first: landing day, file, record. Rows without a
    ``landing_date`` column (staged silver rows) rank by file alone, whose path starts with its landing-day
    folder (``<source>/<yyyy-mm-dd>/...``)."""
    return [F.col(c).desc() for c in ("landing_date", "source_file", "record_no") if c in columns]


def latest_per_key(valid: DataFrame, natural_key: tuple[str, ...]) -> DataFrame:
    """One row per natural key: the most recently delivered version (see ``_newest_first``)."""
    window = Window.partitionBy(*natural_key).orderBy(*_newest_first(valid.columns))
    return valid.withColumn("_rank", F.row_number().over(window)).filter("_rank = 1").drop("_rank")


def checked_rows(bronze: DataFrame, spec: SourceSpec, natural_key: tuple[str, ...], settings: Settings) -> DataFrame:
    """Typed bronze rows with everything the writes need, for one collect: ``_bad`` with the quarantine's
    ``_q_field`` / ``_q_reason`` (the raw text kept for bad rows only: good rows carry it in bronze), and
    ``_latest``: the good row silver keeps for its key."""
    typed = typed_rows(bronze, spec, settings)
    bad = F.size("_errors") > 0
    field_, reason = _quarantine_field_reason()
    rank = F.row_number().over(Window.partitionBy(bad, *natural_key).orderBy(*_newest_first(typed.columns)))
    return typed.select(
        *[c for c in typed.columns if c != "raw_record"], F.when(bad, F.col("raw_record")).alias("raw_record"),
        bad.alias("_bad"), F.when(bad, field_).alias("_q_field"), F.when(bad, reason).alias("_q_reason"),
        (~bad & (rank == 1)).alias("_latest"),
    )


def _quarantine_table(checked: pa.Table | None) -> pa.Table:
    """The quarantine rows of ``checked_rows`` (collected), as ``quarantine_rows`` selects them (none when
    nothing was typed)."""
    if checked is None:
        return pa.table({name: pa.array([], pa.string()) for name in QUARANTINE.schema.fieldNames()})
    bad = checked.filter(pc.field("_bad"))
    return bad.select([*_QUARANTINE_LINEAGE, "_q_field", "_q_reason", "raw_record", "ingested_at"]).rename_columns(
        QUARANTINE.schema.fieldNames())


def _counts(checked: pa.Table, partitioned: bool) -> list[dict]:
    """Rows per file, good vs bad (and per event day): the rows of ``stats``."""
    groups = ["file_sha256", "_bad"] + (["event_date_local"] if partitioned else [])
    counted = checked.group_by(groups).aggregate([("record_no", "count")])
    return [{**r, "n": r.pop("record_no_count")} for r in counted.to_pylist()]


def merge_staged_silver(spark: SparkSession, staged: StagedFrames, spec: TableSpec,
                        settings: Settings) -> dict[str, int]:
    """Silver rows staged as files (telematics) into the silver table; returns inserted / updated rows.

    A staged file holds each key once. One that shares no key with another file of the run, for an event day
    the table has no rows of yet, holds exactly what MERGE would insert: it is committed as it is. The
    others (late rows for days that have rows, files sharing a key) are ranked and MERGEd through Spark;
    that is a few files on a daily run, and every file on a replay of days already ingested.
    """
    alone = [f for f in staged.silver_files if f.key_value not in staged.files_sharing_keys]
    left = delta_log.add_files_to_empty(spark, spec, alone, settings)
    left_paths = {f.path for f in left}
    inserted = sum(f.num_records for f in alone if f.path not in left_paths)
    rest = [f for f in staged.silver_files if f.key_value in staged.files_sharing_keys] + left
    if not rest:
        return {"inserted": inserted, "updated": 0}
    days = {f.partition_values[spec.partition_cols[0]] for f in rest}
    latest = _new_or_changed(spark, latest_per_key(staged.silver_rows(spark, rest), spec.natural_key), spec, days,
                             settings)
    if latest.isEmpty():   # every row is in the table already, as it is: no commit
        return {"inserted": inserted, "updated": 0}
    merged = delta_tables.merge_upsert(latest, spec, partition_values=days, settings=settings)
    return {"inserted": inserted + merged["inserted"], "updated": merged["updated"]}


def _new_or_changed(spark: SparkSession, rows: DataFrame, spec: TableSpec, days: set[str],
                    settings: Settings) -> DataFrame:
    """The rows whose key the table's ``days`` do not hold with the same values (lineage aside): what a
    MERGE would insert or update."""
    lineage = {"source_file", "record_no", "ingested_at"}
    compared = [f.name for f in spec.schema.fields if f.name not in lineage]
    table = delta_tables.read_table(spark, spec, settings).filter(delta_tables.col_in(spec.partition_cols[0], days)).select(*compared)
    same = [rows[c].eqNullSafe(table[c]) for c in compared]
    condition = same[0]
    for c in same[1:]:
        condition = condition & c
    return rows.join(table, on=condition, how="left_anti")


def _nothing() -> None:
    pass


def landing_files(source: str, start: dt.date, end: dt.date, settings: Settings | None = None) -> Discovery:
    """The landing files of ``source`` delivered on ``start``..``end`` with their checksums, checked against
    the files ledger (read once, kept in the result): a file the ledger holds under its name, size and
    modification time is not read; any other is read once (a landing zone in a bucket: downloaded once).
    Give it to `has_new_files` and `ingest_source` so that a task scans the window and reads the ledger
    once, not once per call."""
    settings = settings or get_settings()
    ledger = _ledger(source, settings)
    found = discover(settings.landing_root, SOURCES[source], start, end, settings, known=ledger.stamps)
    found.ledger = ledger
    log.info("landing %s %s..%s: %d file(s), %d read for their checksum, %d known by size and time",
             source, start, end, len(found.files), found.checksums_read, len(found.files) - found.checksums_read)
    return found


def has_new_files(source: str, start: dt.date, end: dt.date, settings: Settings | None = None,
                  found: Discovery | None = None) -> bool:
    """Whether the landing window (or ``found``, its `landing_files`) holds a file of ``source`` that the files
    ledger does not know. Without one, `ingest_source` reads nothing and writes nothing through Spark (only
    delta-rs, and only when a known file comes again under another name), so it may be given ``spark=None``:
    a re-run or a backfill of days already ingested then starts no JVM."""
    settings = settings or get_settings()
    found = found if found is not None else landing_files(source, start, end, settings)
    return bool(_split_new(found.files, found.ledger or _ledger(source, settings)).new)


def ingest_source(spark: SparkSession | None, source: str, start: dt.date, end: dt.date,
                  settings: Settings | None = None, run_id: str | None = None,
                  found: Discovery | None = None) -> SourceResult:
    """Ingest the files of ``source`` delivered on ``start``..``end`` that the files ledger does not know
    (``found``: the window's `landing_files` taken already; a file landed since is left to the next run)."""
    settings = settings or get_settings()
    spec = SOURCES[source]
    run_id = run_id or uuid.uuid4().hex[:12]
    started_at = dt.datetime.now(dt.timezone.utc)
    result = SourceResult(source)

    with result.stage("discover"):
        if found is None:
            found = landing_files(source, start, end, settings)
        result.files_rejected = list(found.rejected)
        split = _split_new(found.files, found.ledger or _ledger(source, settings))
        new_files, duplicate_files = split.new, split.duplicates
        result.files_new, result.files_skipped = len(new_files), len(found.files) - len(new_files)
        # read nothing of a file without bytes (a delivery that failed, usually): rejected as it is
        rejected = dict(split.rejected)
        rejected.update({f.sha256: EMPTY_FILE for f in new_files if f.size_bytes == 0})
    readable = [f for f in new_files if f.sha256 not in rejected]

    silver_spec = SILVER[source]
    staged, notes, per_file = None, {}, {}
    release = partial(remove_staging, settings.lake_root, run_id, settings) if source == "telematics" else _nothing
    try:
        if readable:
            staged, notes, per_file = _ingest_files(spark, source, spec, silver_spec, readable, rejected, result,
                                                    started_at, run_id, settings)
    finally:
        release()

    # only now: the files count as ingested (or rejected)
    with result.stage("bookkeeping"):
        rejected_files = [f for f in new_files if f.sha256 in rejected]
        result.files_rejected += [(f.rel_path, rejected[f.sha256]) for f in rejected_files]
        for f in rejected_files:
            log.warning("ingest %s: rejected %s: %s", source, f.rel_path, rejected[f.sha256])
        ingested = [f for f in new_files if f.sha256 not in rejected]
        result.header_drift = {f.rel_path: notes[f.sha256] for f in ingested if notes.get(f.sha256)}
        for path, drift in result.header_drift.items():
            log.warning("schema drift in %s: %s", path, drift)
        _record_files(spark, source, ingested, duplicate_files, rejected_files, rejected, per_file, notes,
                      started_at, settings)
        if new_files:
            _audit(spark, run_id, result, started_at, settings)
    log.info("ingest %s: %s", source, json.dumps(asdict(result), default=str))
    return result


EMPTY_FILE = "empty file (0 bytes)"


def _ingest_files(spark, source: str, spec: SourceSpec, silver_spec: TableSpec, files: list[LandingFile],
                  rejected: dict[str, str], result: SourceResult, started_at, run_id: str, settings: Settings):
    """Landing → bronze → silver + quarantine for the readable new ``files``; files found unreadable as a
    whole are added to ``rejected`` (checksum → reason) and write nothing. Returns (staged frames or None,
    notes per checksum, records per checksum)."""
    new_sha = [f.sha256 for f in files]
    # the conditions cover every new file, rejected ones too: rows an earlier run left for them are removed
    sha_cond = delta_log.in_list_condition("file_sha256", new_sha)
    dates_cond = delta_log.in_list_condition("landing_date", {f.landing_date.isoformat() for f in files})
    staged, notes = None, {}
    # 1. bronze: replace this batch's files (idempotent if a crashed run wrote them already)
    if source == "telematics":  # parsed, typed and staged in one pass per file (see frame_stage)
        with result.stage("parse"):
            remove_stale(settings.lake_root, settings=settings)
            staged = stage_frames(spark, files, started_at, settings.source_timezone,
                                  settings.lateness_allowance_days, settings.lake_root, run_id,
                                  settings.max_record_bytes, settings)
        rejected.update(staged.rejected)
        stats = staged.counts
        with result.stage("bronze"):
            # staged files are committed as they are; through Spark only where that cannot be done safely
            if not delta_log.add_files(spark, BRONZE[source], staged.bronze_files, "file_sha256", settings):
                delta_tables.replace_where(staged.bronze, BRONZE[source], f"{dates_cond} AND {sha_cond}", settings)
    else:  # a few thousand rows: split here, typed by one Spark job, written through delta-rs
        with result.stage("bronze"):
            batch = bronze_table(files, spec, started_at, settings.max_record_bytes, settings)
            rejected.update(batch.rejected)
            notes = batch.notes
            bronze = batch.table
            if bronze.num_rows or _left_by_earlier_run(BRONZE[source], None, new_sha, settings):
                delta_log.replace_rows(spark, BRONZE[source], bronze, f"{dates_cond} AND {sha_cond}", settings)
        # 2. typing; bad rows → quarantine (replaced per file)
        stats, checked = [], None
        if bronze.num_rows:
            with result.stage("typing"):
                checked = checked_rows(spark.createDataFrame(bronze), spec, silver_spec.natural_key, settings).toArrow()
                stats = _counts(checked, bool(silver_spec.partition_cols))
    per_file: dict[str, int] = {}
    for row in stats:
        per_file[row["file_sha256"]] = per_file.get(row["file_sha256"], 0) + row["n"]
    result.bronze_rows = sum(r["n"] for r in stats)
    result.quarantined_rows = sum(r["n"] for r in stats if r["_bad"])
    q_cond = f"source = '{source}' AND {sha_cond}"
    with result.stage("quarantine"):
        # also when no row is bad now: an earlier, interrupted run of the same files may have left some
        left_before = _left_by_earlier_run(QUARANTINE, source, new_sha, settings)
        if result.quarantined_rows or left_before:
            bad_rows = quarantine_rows(staged.bad).toArrow() if staged is not None else _quarantine_table(checked)
            delta_log.replace_rows(spark, QUARANTINE, bad_rows, q_cond, settings)

    # 3. silver: dedupe within the batch, MERGE on the natural key over the touched partitions
    with result.stage("silver"):
        partitions = None
        if silver_spec.partition_cols:
            partitions = sorted({r["event_date_local"] for r in stats if not r["_bad"] and r["event_date_local"]})
            result.event_dates = [d.isoformat() for d in partitions]
        if staged is not None:
            metrics = merge_staged_silver(spark, staged, silver_spec, settings)
        elif result.bronze_rows > result.quarantined_rows:
            metrics = delta_log.merge_rows(spark, silver_spec, checked.filter(pc.field("_latest")),
                                    partition_values=partitions, settings=settings)
        else:   # nothing good to merge: no silver commit
            metrics = {"inserted": 0, "updated": 0}
    result.silver_inserted, result.silver_updated = metrics["inserted"], metrics["updated"]
    result.duplicate_rows = result.bronze_rows - result.quarantined_rows - result.silver_inserted
    return staged, notes, per_file


def _left_by_earlier_run(spec: TableSpec, source: str | None, shas: list[str], settings: Settings) -> bool:
    """Whether the table (its partition of ``source``) holds rows of some of these files (written by an
    earlier, interrupted run)."""
    partition = ("source", source) if source is not None else None
    return bool(set(shas) & set(delta_log.read_column(spec, "file_sha256", partition, settings)))


@dataclass
class _Split:
    new: list[LandingFile]
    duplicates: list[LandingFile]       # content already ingested (a replay, maybe under another name)
    rejected: dict[str, str]            # new names of content already rejected: checksum → reason


@dataclass
class _Ledger:
    by_sha: dict[str, tuple[str, str | None, set[str]]]   # checksum → (status, reason, names delivered under)
    stamps: dict[tuple[str, str], str]                     # (name, stamp) → checksum: the quick check


def _ledger(source: str, settings: Settings) -> _Ledger:
    """The files ledger of one source. Read with delta-rs (no Spark job); a ledger of an earlier layout
    may lack the reason and stamp columns."""
    if not delta_log.table_exists(INGESTED_FILES, settings):
        return _Ledger({}, {})

    table = delta_log.log_table(str(delta_log.table_path(INGESTED_FILES, settings)))
    present = table.schema().to_arrow().names
    columns = [c for c in ("file_sha256", "source_file", "status", "reason", "file_stamp") if c in present]
    rows = table.to_pyarrow_table(partitions=[("source", "=", source)], columns=columns).to_pylist()
    ledger = _Ledger({}, {})
    for r in rows:
        status, reason, names = ledger.by_sha.get(r["file_sha256"], (r["status"], r.get("reason"), set()))
        if status == "rejected" and r["status"] != "rejected":
            status, reason = r["status"], None
        names.add(r["source_file"])
        ledger.by_sha[r["file_sha256"]] = (status, reason, names)
        if r.get("file_stamp"):
            ledger.stamps[(r["source_file"], r["file_stamp"])] = r["file_sha256"]
    return ledger


def _split_new(files: list[LandingFile], ledger: _Ledger) -> _Split:
    """New files, files whose exact content was already ingested, and new names of rejected content (rejected
    again, for the same reason: an empty file is rejected under each of its names)."""
    split, batch_sha = _Split([], [], {}), set()
    for f in files:
        status, reason, names = ledger.by_sha.get(f.sha256, (None, None, set()))
        if status == "rejected" and f.rel_path not in names:
            split.new.append(f)
            split.rejected[f.sha256] = reason or "rejected before under another name"
        elif status is not None or f.sha256 in batch_sha:
            split.duplicates.append(f)
        else:
            split.new.append(f)
            batch_sha.add(f.sha256)
    return split


def _add_ledger_columns(settings: Settings) -> None:
    """A files ledger of an earlier layout lacks ``reason`` (why a file was rejected) or ``file_stamp`` (the
    quick check): add them (a metadata commit; the old rows read null, so their files are read again)."""
    if not delta_log.table_exists(INGESTED_FILES, settings):
        return
    from deltalake.schema import Field as LogField

    path = str(delta_log.table_path(INGESTED_FILES, settings))
    present = [f.name for f in delta_log.log_table(path).schema().fields]
    missing = [LogField(name, "string", nullable=True) for name in ("reason", "file_stamp") if name not in present]
    if missing:
        delta_log.with_retry(lambda: delta_log.log_table(path).alter.add_columns(missing))


def _record_files(spark, source, ingested, duplicate_files, rejected_files, reasons, per_file, notes, now,
                  settings) -> None:
    rows = [(f.source, f.landing_date, f.rel_path, f.sha256, f.size_bytes, int(per_file.get(f.sha256, 0)),
             "ingested", now, notes.get(f.sha256), None, f.stamp) for f in ingested]
    rows += [(f.source, f.landing_date, f.rel_path, f.sha256, f.size_bytes, 0, "rejected", now, None,
              reasons[f.sha256], f.stamp) for f in rejected_files]
    rows += [(f.source, f.landing_date, f.rel_path, f.sha256, f.size_bytes, 0, "duplicate_content", now, None, None,
              f.stamp) for f in duplicate_files]
    if not rows:
        return
    _add_ledger_columns(settings)
    # by name: a ledger that gained its columns one by one holds them in the order they were added
    rows = [dict(zip(INGESTED_FILES.schema.fieldNames(), r)) for r in rows]
    # the source as a literal confines the check to its partition: sources ingested side by side do not
    # conflict over the ledger
    delta_log.insert_missing(spark, INGESTED_FILES, rows, f"t.source = '{source}' AND t.source = s.source "
                      "AND t.file_sha256 = s.file_sha256 AND t.source_file = s.source_file", settings)


def _audit(spark, run_id, r: SourceResult, started_at, settings) -> None:
    row = (run_id, r.source, r.files_new, r.files_skipped, r.bronze_rows, r.quarantined_rows, r.duplicate_rows,
           r.silver_inserted, r.silver_updated, ",".join(r.event_dates), started_at, dt.datetime.now(dt.timezone.utc))
    delta_log.append_rows(spark, INGEST_AUDIT, [row], settings)


class IngestFailed(RuntimeError):
    """Some sources of a run failed (every other source of the run was ingested)."""

    def __init__(self, results: list[SourceResult]):
        self.results = results
        failed = [r for r in results if r.error is not None]
        super().__init__("; ".join(f"{r.source}: {r.error}" for r in failed))


def _checked(results: list[SourceResult], keep_going: bool) -> list[SourceResult]:
    if not keep_going and any(r.error is not None for r in results):
        raise IngestFailed(results)
    return results


def ingest_domain(spark: SparkSession, domain: str, start: dt.date, end: dt.date,
                  settings: Settings | None = None, keep_going: bool = False) -> list[SourceResult]:
    """Every source of a domain, in order. A source that fails does not stop the next ones; once all
    ran, ``IngestFailed`` is raised, or with ``keep_going`` the failed ones are returned with their error."""
    run_id = uuid.uuid4().hex[:12]
    return _checked([_isolated(spark, s.name, start, end, settings, run_id) for s in sources_of(domain)], keep_going)


def _isolated(spark: SparkSession, source: str, start: dt.date, end: dt.date, settings: Settings | None,
              run_id: str) -> SourceResult:
    """``ingest_source``, with a failure kept to its source: the run goes on with the next source and
    reports this one as failed. (Bad input never fails a source; this is for the rest, e.g. a full disk.)"""
    try:
        return ingest_source(spark, source, start, end, settings, run_id)
    except Exception as exc:  # noqa: BLE001 - reported in the result and the exit status
        log.exception("ingest %s failed", source)
        return SourceResult(source, error=f"{type(exc).__name__}: {exc}"[:2000])


# Sources of millions of rows a day. They run after the others, alone, with every core: beside the large
# source the small sources wait for its long tasks and slow it (docs/benchmarks.md). The small sources'
# own time is mostly the planning of their one Spark typing job each (their writes are small delta-rs
# commits), which running them beside the large source would not save.
LARGE_SOURCES = ("telematics",)


def ingest_all(spark: SparkSession, start: dt.date, end: dt.date, settings: Settings | None = None,
               threads: int | None = None, keep_going: bool = False) -> list[SourceResult]:
    """Every source: the domains' small sources side by side (``threads`` domains at a time, each
    domain's sources in their order, each domain in its own fair-scheduler pool), then the large ones.
    Failures as in ``ingest_domain``."""
    settings = settings or get_settings()
    run_id = uuid.uuid4().hex[:12]

    def small_sources(domain: str) -> list[SourceResult]:
        scheduler_pool(spark, domain)
        return [_isolated(spark, s.name, start, end, settings, run_id) for s in sources_of(domain)
                if s.name not in LARGE_SOURCES]

    with ThreadPoolExecutor(max_workers=threads or settings.ingest_threads, thread_name_prefix="ingest") as pool:
        futures = [pool.submit(small_sources, d) for d in DOMAINS]
        results = [r for f in futures for r in f.result()]
    large = [s.name for d in DOMAINS for s in sources_of(d) if s.name in LARGE_SOURCES]
    return _checked(results + [_isolated(spark, name, start, end, settings, run_id) for name in large], keep_going)


def window_for(end: dt.date, lookback_days: int | None, start: dt.date | None = None,
               settings: Settings | None = None) -> tuple[dt.date, dt.date]:
    """Delivery days to scan: [end - lookback, end]; the default lookback is the lateness allowance."""
    settings = settings or get_settings()
    if start is None:
        lookback = settings.lateness_allowance_days if lookback_days is None else lookback_days
        start = end - dt.timedelta(days=lookback)
    return start, end


def exit_status(results: list[SourceResult]) -> int:
    """1 if a source failed, else 3 if some input was rejected or quarantined, else 0."""
    return max((EXIT_STATUS[r.status] for r in results), key=lambda code: (code == 1, code), default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--domain", help="ingest every source of a domain (one ingest DAG)")
    target.add_argument("--source", help="ingest one source")
    target.add_argument("--all", action="store_true", help="ingest every source (the small ones, then telematics)")
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat, required=True, help="last delivery day")
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat, help="first delivery day")
    parser.add_argument("--lookback-days", type=int, help="days before --to to scan (default: lateness allowance)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from jobs.platform.session import get_spark

    spark = get_spark("ingest")
    start, end = window_for(args.end, args.lookback_days, args.start)
    if args.all:
        results = ingest_all(spark, start, end, keep_going=True)
    elif args.domain:
        results = ingest_domain(spark, args.domain, start, end, keep_going=True)
    else:
        results = [_isolated(spark, args.source, start, end, None, uuid.uuid4().hex[:12])]
    for r in results:
        print(json.dumps({**asdict(r), "status": r.status}, default=str))
    return exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
