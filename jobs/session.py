"""The only place a SparkSession is built.

One session per process: Airflow's ``dags test`` runs every task of a DAG run in one process, and a
Spark start costs ~10 s, so tasks share it. The Delta JARs come from a local cache (see
scripts/bootstrap.sh) through ``spark.jars``: no Ivy resolution, no network at session start.
"""
from __future__ import annotations

import os
import sys
import threading

from jobs.settings import DELTA_VERSION, Settings, get_settings

_lock = threading.Lock()


def delta_jars(settings: Settings) -> list[str]:
    jars = [
        settings.jar_dir / f"delta-spark_2.13-{DELTA_VERSION}.jar",
        settings.jar_dir / f"delta-storage-{DELTA_VERSION}.jar",
    ]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Delta Lake JARs not found: {', '.join(missing)}. Run scripts/bootstrap.sh "
            "(or `make run`) once with network access to fetch them through Maven."
        )
    return [str(j) for j in jars]


def get_spark(app_name: str = "coalchain"):
    """Return the process-wide SparkSession, creating it on first use."""
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        settings = get_settings()
        # Workers must run the same interpreter as the driver (the project's venv).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.appName(app_name)
            .master(settings.spark_master)
            .config("spark.jars", ",".join(delta_jars(settings)))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.adaptive.enabled", "true")  # "small" profile turns it off below
            .config("spark.databricks.delta.snapshotPartitions", "2")
            .config("spark.databricks.delta.retentionDurationCheck.enabled", "false")
            .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
            # jobs submitted side by side (domains of one ingest run, KPI families of one gold build) share
            # the cores by pool, so a small source's tasks do not queue behind all of telematics' tasks
            .config("spark.scheduler.mode", "FAIR")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        )
        if settings.spark_profile == "small":
            builder = (builder.config("spark.sql.adaptive.enabled", "false")
                       .config("spark.sql.codegen.wholeStage", "false")
                       .config("spark.sql.codegen.factoryMode", "NO_CODEGEN"))
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        return spark


def scheduler_pool(spark, name: str) -> None:
    """Run this thread's Spark jobs in the fair-scheduler pool ``name`` (created on first use)."""
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)
