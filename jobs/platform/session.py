"""The only place a SparkSession is built.

One session per process: Airflow's ``dags test`` runs every task of a DAG run in one process, and
starting Spark (a JVM, its JARs, the Delta extensions) costs more than most small tasks do, so tasks share it. The Delta JARs come from a local cache (see
scripts/bootstrap.sh) through ``spark.jars``: no Ivy resolution, no network at session start.

On a cluster (any master that is not ``local``) the executors know nothing of the repository: the
session ships the project's packages to them as one zip (``addPyFile``), built once per code version
and named by its content hash. ``python -m jobs.platform.session submit-args`` prints the matching
``spark-submit`` options (client deploy mode) for running a job with ``spark-submit`` instead.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import zipfile
from pathlib import Path

from jobs.platform import storage
from jobs.platform.settings import DELTA_VERSION, REPO_ROOT, Settings, get_settings

_lock = threading.Lock()
# The packages the jobs import; data_samples (the generator), dags and tests stay on the driver.
SHIPPED_PACKAGES = ("jobs", "schemas", "models")
_SKIPPED_PARTS = {"__pycache__", ".pytest_cache"}
# A fixed timestamp keeps the archive's bytes a function of the code alone.
_ZIP_DATE_TIME = (2020, 1, 1, 0, 0, 0)


def _project_files(root: Path = REPO_ROOT) -> list[tuple[str, Path]]:
    files = []
    for package in SHIPPED_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not (_SKIPPED_PARTS & set(relative.parts)) and path.suffix != ".pyc":
                files.append((relative.as_posix(), path))
    return files


def code_archive(settings: Settings | None = None, root: Path = REPO_ROOT) -> Path:
    """The zip of the project's packages for executors, ``<code_cache_dir>/coalchain-<sha>.zip``.

    The name is the hash of every shipped file's path and bytes, so a changed file gives a new archive
    (executors never run stale code) and an unchanged tree reuses the one already built.
    """
    settings = settings or get_settings()
    files = _project_files(root)
    digest = hashlib.sha256()
    contents = []
    for name, path in files:
        data = path.read_bytes()
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        contents.append((name, data))
    target = settings.code_cache_dir / f"coalchain-{digest.hexdigest()[:16]}.zip"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    os.replace(partial, target)  # atomic: a concurrent builder of the same archive writes the same bytes
    return target


def is_local_master(master: str) -> bool:
    return master == "local" or master.startswith("local[") or master.startswith("local-cluster[")


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands its port to Python; the builder then joins that JVM
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _require_files(jars: list[Path], what: str, fetch_command: str) -> list[str]:
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise FileNotFoundError(f"{what} not found: {', '.join(missing)}. Run {fetch_command} once with "
                                "network access to fetch them through Maven.")
    return [str(j) for j in jars]


def delta_jars(settings: Settings) -> list[str]:
    return _require_files([settings.jar_dir / f"delta-spark_2.13-{DELTA_VERSION}.jar",
                         settings.jar_dir / f"delta-storage-{DELTA_VERSION}.jar"],
                        "Delta Lake JARs", "scripts/bootstrap.sh (or `make run`)")


def s3_jars(settings: Settings) -> list[str]:
    """hadoop-aws and the AWS SDK bundle (Spark's s3a connector), fetched by `bootstrap.sh cluster`."""
    return _require_files([settings.s3_jar_dir / name for name in storage.S3_JAR_NAMES],
                        "S3 JARs for Spark", "`scripts/bootstrap.sh cluster` (or `make test-cluster`)")


def session_jars(settings: Settings) -> list[str]:
    """Delta's JARs, and the S3 connector's when the lake or the landing zone is in a bucket."""
    jars = delta_jars(settings)
    if storage.uses_object_store(settings):
        jars += s3_jars(settings)
    return jars


def get_spark(app_name: str = "coalchain"):
    """Return the process-wide SparkSession, creating it on first use."""
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        settings = get_settings()
        # Workers must run the same interpreter as the driver (the project's venv) unless told otherwise.
        os.environ.setdefault("PYSPARK_PYTHON", settings.spark_python or sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        submitted = _launched_by_spark_submit()
        builder = SparkSession.builder.appName(app_name)
        if not submitted:  # under spark-submit its --master and --jars hold
            builder = builder.master(settings.spark_master).config("spark.jars", ",".join(session_jars(settings)))
        if settings.spark_python:
            builder = builder.config("spark.pyspark.python", settings.spark_python)
        builder = (
            builder
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
        for key, value in {**storage.spark_conf(settings), **settings.spark_conf}.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        master = spark.sparkContext.master
        if not is_local_master(master) and not (submitted and spark.conf.get("spark.submit.pyFiles", "")):
            archive = code_archive(settings)
            spark.sparkContext.addPyFile(str(archive))
            # addPyFile also puts the zip first on the driver's own path; the driver keeps importing the
            # checkout it runs from (modules that read their data files beside them need a real folder)
            sys.path[:] = [p for p in sys.path if Path(p).name != archive.name]
        return spark


def submit_args(settings: Settings | None = None) -> list[str]:
    """The ``spark-submit`` options that run a project job on a cluster (JARs, code, interpreter)."""
    settings = settings or get_settings()
    # No --py-files: spark-submit would put the zip first on the driver's own path as well; the session
    # ships it to the executors itself (client deploy mode: the driver runs from the checkout).
    args = ["--master", settings.spark_master, "--jars", ",".join(session_jars(settings))]
    python = settings.spark_python or sys.executable
    args += ["--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={sys.executable}"]
    return args


def scheduler_pool(spark, name: str) -> None:
    """Run this thread's Spark jobs in the fair-scheduler pool ``name`` (created on first use)."""
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="python -m jobs.platform.session", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit-args", help="print the spark-submit options for the configured master")
    commands.add_parser("code-archive", help="build (or reuse) the executors' code zip and print its path")
    args = parser.parse_args(argv)
    if args.command == "submit-args":
        print(" ".join(shlex.quote(a) for a in submit_args()))
    else:
        print(code_archive())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
