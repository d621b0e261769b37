"""The only place Delta tables are located, created, read and written.

Every write here is idempotent for the slice it covers: bronze/quarantine rows of a file are replaced
by file checksum, silver rows are MERGEd on the natural key (with the touched partitions in the
condition so Delta prunes files), gold rows are replaced per day (``replaceWhere``). Re-running any
job therefore converges to the same tables.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.settings import Settings, get_settings
from schemas.tables import TableSpec

_LAYER_ROOT = {"bronze": "bronze_root", "silver": "silver_root", "gold": "gold_root"}
_CONCURRENT_RETRIES = 5


def table_path(spec: TableSpec, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    root = getattr(settings, _LAYER_ROOT[spec.layer]) if spec.layer in _LAYER_ROOT else settings.lake_root / spec.layer
    return root / spec.name


def table_exists(spec: TableSpec, settings: Settings | None = None) -> bool:
    return (table_path(spec, settings) / "_delta_log").is_dir()


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
        if spec.stats_cols:
            builder = builder.property("delta.dataSkippingStatsColumns", ",".join(spec.stats_cols))
        builder.execute()

    if not table_exists(spec, settings):
        with_retry(create)
    return path


def read_table(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> DataFrame:
    path = ensure_table(spark, spec, settings)
    return spark.read.format("delta").load(path)


def read_existing(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> DataFrame:
    """Read a table that must already exist, for read-only jobs (delivery): never creates it, so a
    missing table is an error instead of a new empty table in someone's lake."""
    if not table_exists(spec, settings):
        raise FileNotFoundError(f"table {spec.name} does not exist at {table_path(spec, settings)}")
    return spark.read.format("delta").load(str(table_path(spec, settings)))


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Select the declared columns, in order, cast to the declared types (the write contract)."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.schema.fields])


def replace_where(df: DataFrame, spec: TableSpec, condition: str, settings: Settings | None = None) -> None:
    """Atomically replace the rows matching ``condition`` with ``df`` (which must match it too)."""
    path = ensure_table(df.sparkSession, spec, settings)
    writer = conform(df, spec).write.format("delta").mode("overwrite").option("replaceWhere", condition)
    if spec.layer == "bronze":
        # a bronze table written by an earlier layout (telematics before its frames were parsed at bronze)
        # gains the new columns; its old rows keep theirs
        writer = writer.option("mergeSchema", "true")
    with_retry(lambda: writer.save(path))


def rows_written(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> int:
    """Rows written by the table's latest commit (its ``numOutputRows``): a write's row count read from the
    Delta log instead of counting the rows again."""
    from delta.tables import DeltaTable

    last = DeltaTable.forPath(spark, str(table_path(spec, settings))).history(1).select("operationMetrics").first()
    return int(((last["operationMetrics"] or {}) if last else {}).get("numOutputRows", 0))


def last_commit_metadata(spec: TableSpec, settings: Settings | None = None) -> str | None:
    """The user metadata of a table's latest commit (None if the table does not exist or has none), read
    from the Delta log with delta-rs: no Spark job."""
    if not table_exists(spec, settings):
        return None
    from deltalake import DeltaTable as LogReader

    last = LogReader(str(table_path(spec, settings))).history(1)
    return last[0].get("userMetadata") if last else None


def append(df: DataFrame, spec: TableSpec, settings: Settings | None = None) -> None:
    path = ensure_table(df.sparkSession, spec, settings)
    with_retry(lambda: conform(df, spec).write.format("delta").mode("append").save(path))


def merge_upsert(
    df: DataFrame,
    spec: TableSpec,
    *,
    partition_values: Iterable | None = None,
    settings: Settings | None = None,
) -> dict[str, int]:
    """MERGE ``df`` into the table on its natural key: insert new keys, update keys whose values changed.

    ``df`` must already hold one row per key. ``partition_values`` (values of the table's single
    partition column present in ``df``) are added to the join condition so only those partitions are
    scanned; when all of them are still empty the rows are written with a ``replaceWhere`` of those
    partitions instead (no join). Returns the operation metrics (inserted / updated rows).
    """
    from delta.tables import DeltaTable

    spark = df.sparkSession
    path = ensure_table(spark, spec, settings)
    source = conform(df, spec)
    key_cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in spec.natural_key)
    partition_cond = None
    if spec.partition_cols and partition_values is not None:
        if not {str(v) for v in partition_values}:
            return {"inserted": 0, "updated": 0}
        partition_cond = in_list_condition(spec.partition_cols[0], partition_values)
        key_cond = f"t.{partition_cond} AND {key_cond}"
    lineage = {"source_file", "record_no", "ingested_at"}
    value_cols = [f.name for f in spec.schema.fields if f.name not in lineage and f.name not in spec.natural_key]
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in value_cols) or "false"

    def run() -> str:
        # The common daily case: every touched partition is still empty (a new day). Then there is
        # nothing to match and a replaceWhere of those partitions writes the same rows as MERGE without
        # joining against the table. It stays safe with a concurrent writer: the overwrite reads those
        # partitions, so a competing commit into them fails this one, and the retry decides again.
        target = spark.read.format("delta").load(path)
        if partition_cond is not None and target.filter(partition_cond).limit(1).count() == 0:
            (source.write.format("delta").mode("overwrite").option("replaceWhere", partition_cond).save(path))
            return "WRITE"
        (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(source.alias("s"), key_cond)
            .whenMatchedUpdateAll(condition=changed)
            .whenNotMatchedInsertAll()
            .execute()
        )
        return "MERGE"

    operation = with_retry(run)
    metrics = DeltaTable.forPath(spark, path).history(1).select("operation", "operationMetrics").first()
    om = (metrics["operationMetrics"] or {}) if metrics else {}
    if operation == "WRITE":
        return {"inserted": int(om.get("numOutputRows", 0)), "updated": 0}
    if metrics and metrics["operation"] != "MERGE":
        om = {}
    return {
        "inserted": int(om.get("numTargetRowsInserted", 0)),
        "updated": int(om.get("numTargetRowsUpdated", 0)),
    }


def in_list_condition(column: str, values: Iterable) -> str:
    vals = sorted({str(v) for v in values})
    if not vals:
        return "false"
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in vals)
    return f"`{column}` IN ({quoted})"


def col_in(column: str, values: Iterable) -> Column:
    return F.col(column).isin(sorted({str(v) for v in values}))


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
