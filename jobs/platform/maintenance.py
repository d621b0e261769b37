"""Lake maintenance: compaction with Z-order, VACUUM, checkpoints and log retention, table health.

    python -m jobs.platform.maintenance                                  # every Delta table of the lake
    python -m jobs.platform.maintenance --layer silver --table silver_telematics
    python -m jobs.platform.maintenance --health-only                    # measure, change nothing
    python -m jobs.platform.maintenance --retention-hours 1000           # keep removed files longer

For every Delta table under ``<lake>/{bronze,silver,gold,ops}`` (found by listing the lake, so a new
table is maintained without being named here), one run:

1. measures it (files, bytes, small files per partition) into ``ops/table_health`` (stage ``before``);
2. makes its retention properties at least the time-travel window (``delta.logRetentionDuration`` and
   ``delta.deletedFileRetentionDuration``): a checkpoint drops tombstones older than the latter, and a
   file whose tombstone is gone can no longer be told apart from an orphan;
3. compacts every partition holding two or more small files: Z-ordered on the columns planners filter
   by (``ZORDER_COLUMNS``; within the day partitions, so day + truck or day + station), bin-packed for
   the other tables. A partition already compacted is left alone, so a weekly run rewrites only what
   the week's ingestion added;
4. VACUUMs files removed longer ago than the retention (and untracked files older than it, which a
   crashed write leaves behind). A retention shorter than the time-travel window the SQL CLI documents
   (``docs/queries.md``: old versions stay readable for 30 days) is refused with
   :class:`RetentionTooShortError` before anything is deleted;
5. writes a checkpoint and removes log entries older than the log retention;
6. measures it again (stage ``after``).

Engine: delta-rs (the ``deltalake`` package the project already writes small tables with), not
delta-spark's ``OPTIMIZE``. Both compact and Z-order; delta-rs needs no JVM or Spark session (the weekly
task starts in a second instead of a Spark driver's ten), reads the lake in a bucket with the same
storage options as every other delta-rs call (``jobs.platform.storage``), and offers per-partition
filters, checkpoints and log clean-up from the same object. Its commits are ordinary Delta commits,
read by Spark like any other (tested).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
import uuid
from dataclasses import asdict, dataclass

from jobs.platform import storage
from jobs.platform.settings import Settings, get_settings

log = logging.getLogger("jobs.platform.maintenance")

LAYERS = ("bronze", "silver", "gold", "ops")
# The window in which the SQL CLI's time travel is documented to work (docs/queries.md, section 10:
# old versions stay readable for 30 days, Delta's default log retention). VACUUM may not go below it.
TIME_TRAVEL_WINDOW_HOURS = 30 * 24
# Columns planners filter by, beside the day partition: one truck's frames, one station's sessions.
# Z-order interleaves them so that each file covers a narrow range of each and the min/max statistics
# skip the rest. Tables not named here are bin-packed only.
ZORDER_COLUMNS: dict[str, tuple[str, ...]] = {
    "silver_telematics": ("vin", "event_ts_utc"),
    "silver_weighbridge": ("mine_id", "vin"),
    "silver_charging_sessions": ("station_id", "connector_id"),
    "silver_connector_status": ("station_id", "connector_id"),
    "silver_h2_fills": ("station_id", "vin"),
    "silver_mine_production": ("mine_id",),
    "silver_production_plan": ("mine_id",),
    "silver_washing": ("plant_id",),
    "silver_shipments": ("mine_id",),
}
_INTERVAL = re.compile(r"^\s*interval\s+(\d+)\s+(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)
_UNIT_HOURS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}
RETENTION_PROPERTIES = ("delta.logRetentionDuration", "delta.deletedFileRetentionDuration")


class RetentionTooShortError(ValueError):
    """A VACUUM or log retention shorter than the documented time-travel window: versions the SQL CLI
    promises to read would lose their files or log entries."""

    def __init__(self, what: str, retention_hours: float):
        self.retention_hours = retention_hours
        super().__init__(
            f"{what} of {retention_hours:g} h is shorter than the time-travel window of "
            f"{TIME_TRAVEL_WINDOW_HOURS} h (30 days, docs/queries.md): versions within the window would "
            f"become unreadable; use at least {TIME_TRAVEL_WINDOW_HOURS} h")


def check_retention(retention_hours: float, what: str = "VACUUM retention") -> None:
    if retention_hours < TIME_TRAVEL_WINDOW_HOURS:
        raise RetentionTooShortError(what, retention_hours)


def interval_hours(text: str, *, where: str) -> float:
    """Hours of a Delta interval property ("interval 30 days")."""
    match = _INTERVAL.match(text)
    if not match:
        raise ValueError(f"{where}: cannot read the interval {text!r} (expected e.g. 'interval 30 days')")
    return int(match.group(1)) * _UNIT_HOURS[match.group(2).lower()]


@dataclass(frozen=True)
class LakeTable:
    layer: str
    name: str
    location: storage.Location

    @property
    def uri(self) -> str:
        return storage.delta_uri(self.location)


@dataclass(frozen=True)
class PartitionHealth:
    layer: str
    table_name: str
    table_version: int
    partition: str                     # "col=value/col2=value2"; "" for an unpartitioned table
    partition_filters: tuple           # delta-rs filters selecting the partition
    files: int
    bytes: int
    small_files: int
    small_file_bytes: int

    @property
    def small_file_share(self) -> float:
        return self.small_files / self.files if self.files else 0.0


@dataclass
class TableReport:
    table: str
    partitions_compacted: int = 0
    files_removed: int = 0
    files_added: int = 0
    files_vacuumed: int = 0
    properties_set: dict | None = None
    version_before: int = -1
    version_after: int = -1


# --- finding and opening tables ------------------------------------------------------------------------
def discover_tables(settings: Settings, layers: tuple[str, ...] = LAYERS) -> list[LakeTable]:
    """Every Delta table (a folder with a committed ``_delta_log``) directly under the layer folders."""
    from pyarrow import fs

    filesystem = storage.filesystem(settings, settings.lake_root)
    found = []
    for layer in layers:
        root = settings.lake_root / layer
        entries = filesystem.get_file_info(fs.FileSelector(storage.fs_path(root), allow_not_found=True))
        for entry in sorted(entries, key=lambda e: e.base_name):
            if entry.type != fs.FileType.Directory or entry.base_name.startswith((".", "_")):
                continue
            log_dir = root / entry.base_name / "_delta_log"
            commits = filesystem.get_file_info(fs.FileSelector(storage.fs_path(log_dir), allow_not_found=True))
            if any(c.base_name.endswith(".json") or c.base_name == "_last_checkpoint" for c in commits):
                found.append(LakeTable(layer, entry.base_name, root / entry.base_name))
    return found


def open_table(table: LakeTable, settings: Settings, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(table.uri, version=version,
                      storage_options=storage.delta_storage_options(settings, table.location))


# --- measuring -----------------------------------------------------------------------------------------
def measure(table: LakeTable, settings: Settings, small_file_bytes: int | None = None) -> list[PartitionHealth]:
    """Files, bytes and small files per partition of the table's current version."""
    import pyarrow as pa

    small_file_bytes = small_file_bytes or small_file_threshold_bytes(settings)
    delta = open_table(table, settings)
    version = delta.version()
    part_cols = list(delta.metadata().partition_columns)
    adds = pa.table(delta.get_add_actions(flatten=True))
    sizes = adds.column("size_bytes").to_pylist()
    values = [adds.column(f"partition.{c}").to_pylist() for c in part_cols]
    groups: dict[tuple, list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(tuple(v[i] for v in values), []).append(size)
    if not groups:
        return [PartitionHealth(table.layer, table.name, version, "", (), 0, 0, 0, small_file_bytes)]
    rows = []
    for key, group in sorted(groups.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])):
        text = "/".join(f"{c}={_partition_text(v)}" for c, v in zip(part_cols, key))
        filters = tuple((c, "=", _partition_text(v)) for c, v in zip(part_cols, key) if v is not None)
        rows.append(PartitionHealth(table.layer, table.name, version, text, filters, len(group), sum(group),
                                    sum(1 for s in group if s < small_file_bytes), small_file_bytes))
    return rows


def _partition_text(value) -> str:
    if value is None:
        return "__HIVE_DEFAULT_PARTITION__"
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def small_file_threshold_bytes(settings: Settings) -> int:
    return int(settings.maintenance_small_file_mb * 1024 * 1024)


def record_health(settings: Settings, run_id: str, stage: str, rows: list[PartitionHealth],
                  measured_at: dt.datetime) -> None:
    """Append the measurements to ``ops/table_health`` (one delta-rs commit)."""
    import pyarrow as pa
    from deltalake import write_deltalake
    from pyspark.sql.pandas.types import to_arrow_schema

    from schemas.table_health import TABLE_HEALTH

    if not rows:
        return
    schema = to_arrow_schema(TABLE_HEALTH.schema)
    data = pa.Table.from_pylist([
        {"run_id": run_id, "stage": stage, "measured_at": measured_at, "layer": r.layer,
         "table_name": r.table_name, "table_version": r.table_version, "partition": r.partition,
         "files": r.files, "bytes": r.bytes, "small_files": r.small_files,
         "small_file_share": r.small_file_share, "small_file_bytes": r.small_file_bytes}
        for r in rows], schema=schema)
    location = settings.lake_root / TABLE_HEALTH.layer / TABLE_HEALTH.name
    from jobs.platform.delta_log import with_retry

    with_retry(lambda: write_deltalake(storage.delta_uri(location), data, mode="append",
                                       storage_options=storage.delta_storage_options(settings, location)))


# --- the operations ------------------------------------------------------------------------------------
def ensure_retention_properties(table: LakeTable, settings: Settings, retention_hours: int) -> dict:
    """Raise the table's log and deleted-file retention to ``retention_hours`` where shorter (never lower
    a longer one); returns the properties set ({} when already long enough: no commit)."""
    check_retention(retention_hours)
    delta = open_table(table, settings)
    configuration = delta.metadata().configuration
    wanted = {}
    for prop in RETENTION_PROPERTIES:
        current = configuration.get(prop)
        # unset = Delta's defaults: 30 days of log, 7 days of tombstones
        current_hours = interval_hours(current, where=f"{table.name} {prop}") if current else (
            720 if prop == "delta.logRetentionDuration" else 168)
        if current_hours < retention_hours:
            wanted[prop] = f"interval {retention_hours} hours"
    if wanted:
        from jobs.platform.delta_log import with_retry

        with_retry(lambda: open_table(table, settings).alter.set_table_properties(wanted))
    return wanted


def compact(table: LakeTable, settings: Settings, health: list[PartitionHealth]) -> dict:
    """Compact (Z-order where configured) every partition with two or more small files."""
    from jobs.platform.delta_log import with_retry

    zorder = ZORDER_COLUMNS.get(table.name)
    target_bytes = settings.maintenance_target_file_mb * 1024 * 1024
    totals = {"partitions": 0, "files_removed": 0, "files_added": 0}
    for part in health:
        if part.small_files < 2:
            continue
        filters = list(part.partition_filters) or None

        def run(filters=filters):
            from deltalake import CommitProperties

            optimizer = open_table(table, settings).optimize
            if zorder:   # the columns are named in the commit (DESCRIBE HISTORY), as Spark's OPTIMIZE does
                return optimizer.z_order(list(zorder), partition_filters=filters, target_size=target_bytes,
                                         commit_properties=CommitProperties(
                                             custom_metadata={"zOrderBy": json.dumps(list(zorder))}))
            return optimizer.compact(partition_filters=filters, target_size=target_bytes)

        metrics = with_retry(run)
        totals["partitions"] += 1
        totals["files_removed"] += int(metrics.get("numFilesRemoved", 0))
        totals["files_added"] += int(metrics.get("numFilesAdded", 0))
        log.info("%s %s: %s files -> %s (%s)", table.name, part.partition or "(whole table)",
                 metrics.get("numFilesRemoved"), metrics.get("numFilesAdded"), "z-order" if zorder else "bin-pack")
    return totals


def vacuum(table: LakeTable, settings: Settings, retention_hours: int, dry_run: bool = False) -> list[str]:
    """Delete files removed more than ``retention_hours`` ago and untracked files older than that."""
    check_retention(retention_hours)
    return open_table(table, settings).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                             enforce_retention_duration=True, full=True)


def checkpoint_and_clean_log(table: LakeTable, settings: Settings) -> None:
    """A checkpoint at the current version, then log entries older than the log retention removed
    (only entries before a checkpoint can go, so the table stays readable from the checkpoint on)."""
    delta = open_table(table, settings)
    delta.create_checkpoint()
    delta.cleanup_metadata()


def maintain_table(table: LakeTable, settings: Settings, retention_hours: int, run_id: str,
                   health_before: list[PartitionHealth]) -> TableReport:
    report = TableReport(table.name, version_before=health_before[0].table_version)
    report.properties_set = ensure_retention_properties(table, settings, retention_hours)
    done = compact(table, settings, health_before)
    report.partitions_compacted = done["partitions"]
    report.files_removed, report.files_added = done["files_removed"], done["files_added"]
    report.files_vacuumed = len(vacuum(table, settings, retention_hours))
    checkpoint_and_clean_log(table, settings)
    report.version_after = open_table(table, settings).version()
    return report


def run(settings: Settings | None = None, *, layers: tuple[str, ...] = LAYERS, tables: tuple[str, ...] = (),
        retention_hours: int | None = None, health_only: bool = False, run_id: str | None = None) -> dict:
    """Maintain (or only measure) the lake's tables; health rows are appended before and after."""
    settings = settings or get_settings()
    retention_hours = settings.maintenance_vacuum_retention_hours if retention_hours is None else retention_hours
    check_retention(retention_hours)           # refused before any table is touched
    run_id = run_id or f"maintenance_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    found = [t for t in discover_tables(settings, layers) if not tables or t.name in tables]
    missing = sorted(set(tables) - {t.name for t in found})
    if missing:
        raise FileNotFoundError(f"no Delta table named {', '.join(missing)} under {settings.lake_root} "
                                f"(layers {', '.join(layers)})")
    before = {t.name: measure(t, settings) for t in found}
    record_health(settings, run_id, "before", [r for rows in before.values() for r in rows],
                  dt.datetime.now(dt.timezone.utc))
    reports = []
    if not health_only:
        for table in found:
            reports.append(maintain_table(table, settings, retention_hours, run_id, before[table.name]))
    after = [r for t in found for r in measure(t, settings)]
    record_health(settings, run_id, "after", after, dt.datetime.now(dt.timezone.utc))
    return {"run_id": run_id, "tables": len(found), "retention_hours": retention_hours,
            "files_before": sum(r.files for rows in before.values() for r in rows),
            "files_after": sum(r.files for r in after),
            "reports": [asdict(r) for r in reports]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.platform.maintenance", description=__doc__.split("\n\n")[0])
    p.add_argument("--layer", action="append", choices=LAYERS, help="only these layers (repeatable)")
    p.add_argument("--table", action="append", default=[], help="only these tables (repeatable)")
    p.add_argument("--retention-hours", type=int, default=None,
                   help=f"VACUUM retention (default: COALCHAIN_MAINTENANCE_VACUUM_RETENTION_HOURS; "
                        f"at least {TIME_TRAVEL_WINDOW_HOURS})")
    p.add_argument("--health-only", action="store_true", help="only measure into ops/table_health")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run(layers=tuple(args.layer or LAYERS), tables=tuple(args.table),
                     retention_hours=args.retention_hours, health_only=args.health_only)
    except RetentionTooShortError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
