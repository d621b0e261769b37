"""The Spark side of the Delta tables: DataFrames read from and written to them.

Every write here is idempotent for the slice it covers: bronze/quarantine rows of a file are replaced
by file checksum, silver rows are MERGEd on the natural key (with the touched partitions in the
condition so Delta prunes files), gold rows are replaced per day (``replaceWhere``). Re-running any
job therefore converges to the same tables.

Spark writes the large slices (telematics that cannot be committed as staged files); where tables are
located and created, and the small writes and staged-file commits made on the log with delta-rs, are
:mod:`jobs.platform.delta_log`. Both keep Delta's optimistic concurrency: a conflicting commit fails and
``delta_log.with_retry`` runs the write again on the new version.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.platform import delta_log
from jobs.platform.settings import Settings
from schemas.tables import TableSpec


def read_table(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> DataFrame:
    path = delta_log.ensure_table(spark, spec, settings)
    return spark.read.format("delta").load(path)


def read_existing(spark: SparkSession, spec: TableSpec, settings: Settings | None = None) -> DataFrame:
    """Read a table that must already exist, for read-only jobs (delivery): never creates it, so a
    missing table is an error instead of a new empty table in someone's lake."""
    if not delta_log.table_exists(spec, settings):
        raise FileNotFoundError(f"table {spec.name} does not exist at {delta_log.table_path(spec, settings)}")
    return spark.read.format("delta").load(str(delta_log.table_path(spec, settings)))


def conform(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Select the declared columns, in order, cast to the declared types (the write contract)."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in spec.schema.fields])


def replace_where(df: DataFrame, spec: TableSpec, condition: str, settings: Settings | None = None) -> None:
    """Atomically replace the rows matching ``condition`` with ``df`` (which must match it too)."""
    path = delta_log.ensure_table(df.sparkSession, spec, settings)
    writer = conform(df, spec).write.format("delta").mode("overwrite").option("replaceWhere", condition)
    if spec.layer == "bronze":
        # a bronze table written by an earlier layout (telematics before its frames were parsed at bronze)
        # gains the new columns; its old rows keep theirs
        writer = writer.option("mergeSchema", "true")
    delta_log.with_retry(lambda: writer.save(path))


def append(df: DataFrame, spec: TableSpec, settings: Settings | None = None) -> None:
    path = delta_log.ensure_table(df.sparkSession, spec, settings)
    delta_log.with_retry(lambda: conform(df, spec).write.format("delta").mode("append").save(path))


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
    spark = df.sparkSession
    path = delta_log.ensure_table(spark, spec, settings)
    source = conform(df, spec)
    conditions = delta_log.merge_conditions(spec, partition_values)
    if conditions is None:
        return {"inserted": 0, "updated": 0}
    key_cond, changed, partition_cond = conditions

    def run() -> str:
        # The common daily case: every touched partition is still empty (a new day). Then there is
        # nothing to match and a replaceWhere of those partitions writes the same rows as MERGE without
        # joining against the table. It stays safe with a concurrent writer: the overwrite reads those
        # partitions, so a competing commit into them fails this one, and the retry decides again.
        target = spark.read.format("delta").load(path)
        if partition_cond is not None and target.filter(partition_cond).limit(1).count() == 0:
            (source.write.format("delta").mode("overwrite").option("replaceWhere", partition_cond).save(path))
            return "WRITE"
        # SQL rather than the DeltaTable builder: the same statement runs in-process and through Spark Connect
        view = f"merge_source_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        try:
            spark.sql(f"MERGE INTO delta.`{path.replace('`', '``')}` AS t USING {view} AS s ON {key_cond} "
                      f"WHEN MATCHED AND ({changed}) THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *").collect()
        finally:
            spark.catalog.dropTempView(view)
        return "MERGE"

    operation = delta_log.with_retry(run)
    metrics = delta_log.last_commit(spec, settings)
    om = metrics.get("operationMetrics") or {}
    if operation == "WRITE":
        return {"inserted": int(om.get("numOutputRows", 0)), "updated": 0}
    if metrics.get("operation") != "MERGE":
        om = {}
    return {
        "inserted": int(om.get("numTargetRowsInserted", 0)),
        "updated": int(om.get("numTargetRowsUpdated", 0)),
    }


def col_in(column: str, values: Iterable) -> Column:
    return F.col(column).isin(sorted({str(v) for v in values}))
