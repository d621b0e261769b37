"""The only place a SparkSession is built.

One session per process: Airflow's ``dags test`` runs every task of a DAG run in one process, and
starting Spark (a JVM, its JARs, the Delta extensions) costs more than most small tasks do, so tasks share it. The Delta JARs come from a local cache (see
scripts/bootstrap.sh) through ``spark.jars``: no Ivy resolution, no network at session start.

On a cluster (any master that is not ``local``) the executors know nothing of the repository: the
session ships the project's packages to them as one zip (``addPyFile``), built once per code version
and named by its content hash. ``python -m jobs.platform.session submit-args`` prints the matching
``spark-submit`` options (client deploy mode) for running a job with ``spark-submit`` instead.

With ``COALCHAIN_SPARK_REMOTE=sc://host:port`` the process starts no Spark at all: the session is a client of
a Spark Connect server (``python -m jobs.platform.session connect-server``), one long-lived application
that serves every task; each client session uploads the code archive for its Python functions, and is
released on the server when the process exits.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import socket
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


class CodeChangedSinceStart(RuntimeError):
    """The project's code on disk is not the code this process imported, so its executors would run other
    code than its driver (a task forked from a scheduler started before an upgrade)."""


# (root, digest) of the code this process imported, when it pinned it (:func:`pin_loaded_code`)
_code_loaded: tuple[Path, str] | None = None


def _code_digest(root: Path) -> tuple[str, list[tuple[str, bytes]]]:
    files = _project_files(root)
    digest = hashlib.sha256()
    contents = []
    for name, path in files:
        data = path.read_bytes()
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        contents.append((name, data))
    return digest.hexdigest()[:16], contents


def pin_loaded_code(root: Path = REPO_ROOT) -> str:
    """Record the code under ``root`` as the code this process imports (call it before importing the jobs):
    from then on :func:`code_archive` refuses to ship other code. Returns the code's digest."""
    global _code_loaded
    digest = _code_digest(root)[0]
    _code_loaded = (root, digest)
    return digest


def code_archive(settings: Settings | None = None, root: Path = REPO_ROOT) -> Path:
    """The zip of the project's packages for executors, ``<code_cache_dir>/coalchain-<sha>.zip``.

    The name is the hash of every shipped file's path and bytes, so a changed file gives a new archive
    (executors never run stale code) and an unchanged tree reuses the one already built. In a process that
    pinned its code (the scheduler the stack's tasks are forked from) a changed tree raises
    :class:`CodeChangedSinceStart` instead: the task's own modules are the pinned ones.
    """
    settings = settings or get_settings()
    digest, contents = _code_digest(root)
    if _code_loaded is not None and _code_loaded[0] == root and _code_loaded[1] != digest:
        raise CodeChangedSinceStart(
            f"the project's code under {root} changed after this process imported it (code {_code_loaded[1]} "
            f"imported, {digest} on disk): its Spark executors would run other code than it does. Restart the "
            "Airflow scheduler the tasks are forked from (the stack: make stack-down && make stack-up)")
    target = settings.code_cache_dir / f"coalchain-{digest}.zip"
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


# SQL settings a session may set itself (on an in-process session or on a Spark Connect server's session)
def sql_conf(settings: Settings) -> dict[str, str]:
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    if settings.spark_profile == "small":   # "small": tiny inputs, where planning costs more than the query
        conf.update({"spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false",
                     "spark.sql.codegen.factoryMode": "NO_CODEGEN"})
    return conf


def application_conf(settings: Settings) -> dict[str, str]:
    """Properties fixed when the Spark application starts: extensions, scheduler, JVM, storage, the user's own."""
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # jobs submitted side by side (domains of one ingest run, KPI families of one gold build) share
        # the cores by pool, so a small source's tasks do not queue behind all of telematics' tasks
        "spark.scheduler.mode": "FAIR",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if settings.spark_python:
        conf["spark.pyspark.python"] = settings.spark_python
    return {**conf, **sql_conf(settings), **storage.spark_conf(settings), **settings.spark_conf}


_remote_session = None
# A Connect client sends unresolved plans: the server resolves a whole chain of transforms at once, which for
# the larger gold transforms takes more analyzer passes than the default 100 (an in-process session resolves
# each step as it is built)
REMOTE_SQL_CONF = {"spark.sql.analyzer.maxIterations": "1000"}


def get_spark(app_name: str = "coalchain", *, in_process: bool = False, master: str | None = None,
              settings: Settings | None = None):
    """Return the process-wide SparkSession, creating it on first use: in-process, or a client of the
    Spark Connect server when ``COALCHAIN_SPARK_REMOTE`` is set (``in_process``: never a client; for code
    that needs the driver's JVM, such as the SQL CLI's plan checks). ``master`` overrides
    ``COALCHAIN_SPARK_MASTER`` for a session this call creates; ``settings`` (default: the environment's)
    configure it (its JARs and object-store connector follow their lake and landing zone)."""
    from pyspark.sql import SparkSession

    global _remote_session
    with _lock:
        settings = settings or get_settings()
        if settings.spark_remote and not in_process:
            if _remote_session is None:
                _require_reachable(settings.spark_remote)
                _remote_session = SparkSession.builder.remote(settings.spark_remote).appName(app_name).getOrCreate()
                for key, value in {**sql_conf(settings), **REMOTE_SQL_CONF, **_runtime_user_conf(settings)}.items():
                    _remote_session.conf.set(key, value)
                # the server's Python workers import the jobs' UDFs from the code this client runs: each session
                # uploads its own archive (a server outlives code versions; its sessions' code never mixes)
                _remote_session.addArtifacts(str(code_archive(settings)), pyfile=True)
                atexit.register(_release_remote_session)
            return _remote_session
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        # Workers must run the same interpreter as the driver (the project's venv) unless told otherwise.
        os.environ.setdefault("PYSPARK_PYTHON", settings.spark_python or sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        submitted = _launched_by_spark_submit()
        builder = SparkSession.builder.appName(app_name)
        if not submitted:  # under spark-submit its --master and --jars hold
            builder = builder.master(master or settings.spark_master).config("spark.jars",
                                                                              ",".join(session_jars(settings)))
        for key, value in application_conf(settings).items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        # scheduler_pool's pools are meant to be created on first use with the default weight; Spark warns once
        # per pool that it "has not been configured" (a dozen lines per gold build)
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            FAIR_POOL_LOGGER, jvm.org.apache.logging.log4j.Level.ERROR)
        master = spark.sparkContext.master
        if not is_local_master(master) and not (submitted and spark.conf.get("spark.submit.pyFiles", "")):
            archive = code_archive(settings)
            spark.sparkContext.addPyFile(str(archive))
            # addPyFile also puts the zip first on the driver's own path; the driver keeps importing the
            # checkout it runs from (modules that read their data files beside them need a real folder)
            sys.path[:] = [p for p in sys.path if Path(p).name != archive.name]
        return spark


# How long a process waits at exit for the server to release its session: the client retries an unreachable
# server for minutes, and a task's exit should not.
RELEASE_TIMEOUT_S = 10.0


def _release_remote_session(timeout_s: float = RELEASE_TIMEOUT_S) -> None:
    """Release this process's Connect session on the server (its state, cached data and uploaded code stay
    there until the server's idle timeout otherwise); at most ``timeout_s``, errors only logged."""
    session = _remote_session
    if session is None:
        return

    def release() -> None:
        try:
            # the client releases each finished operation in a thread pool; let those calls end first, or the
            # server logs an error for every operation released after its session
            from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator

            ExecutePlanResponseReattachableIterator.shutdown()
        except Exception:  # noqa: BLE001 - best effort: stop() below releases the session regardless
            pass
        session.stop()

    worker = threading.Thread(target=release, name="spark-connect-release", daemon=True)
    worker.start()
    worker.join(timeout_s)


class SparkServerUnavailable(ConnectionError):
    """The Spark Connect server of COALCHAIN_SPARK_REMOTE does not accept connections."""


def _require_reachable(remote: str, timeout_s: float = 10.0) -> None:
    # the Connect client retries an unreachable server with backoff for minutes; a task should say at once
    from urllib.parse import urlparse

    url = urlparse(remote)
    if url.scheme != "sc" or not url.hostname:
        raise ValueError(f"COALCHAIN_SPARK_REMOTE={remote!r} is not a Spark Connect URL (sc://host:port)")
    try:
        socket.create_connection((url.hostname, url.port or 15002), timeout=timeout_s).close()
    except OSError as exc:
        raise SparkServerUnavailable(f"the Spark Connect server {url.hostname}:{url.port or 15002} "
                                     f"(COALCHAIN_SPARK_REMOTE) does not accept connections: {exc}") from exc


def _runtime_user_conf(settings: Settings) -> dict[str, str]:
    # of the user's own properties, the SQL ones can be set per session; the rest belong to the server
    return {k: v for k, v in settings.spark_conf.items() if k.startswith(("spark.sql.", "spark.databricks."))}


def is_remote(spark) -> bool:
    """Whether ``spark`` is a Spark Connect client session (no SparkContext in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def parallelism(spark) -> int:
    """How many tasks the session's cores run at once (a Connect client asks the server's SQL settings)."""
    if is_remote(spark):
        return int(spark.conf.get("spark.sql.shuffle.partitions"))
    return spark.sparkContext.defaultParallelism


def submit_args(settings: Settings | None = None) -> list[str]:
    """The ``spark-submit`` options that run a project job on a cluster (JARs, code, interpreter)."""
    settings = settings or get_settings()
    # No --py-files: spark-submit would put the zip first on the driver's own path as well; the session
    # ships it to the executors itself (client deploy mode: the driver runs from the checkout).
    args = ["--master", settings.spark_master, "--jars", ",".join(session_jars(settings))]
    python = settings.spark_python or sys.executable
    args += ["--conf", f"spark.pyspark.python={python}", "--conf", f"spark.pyspark.driver.python={sys.executable}"]
    return args


FAIR_POOL_LOGGER = "org.apache.spark.scheduler.FairSchedulableBuilder"


def scheduler_pool(spark, name: str) -> None:
    """Run this thread's Spark jobs in the fair-scheduler pool ``name`` (created on first use). A Connect
    client has no thread-local properties: the server schedules each client's operations fairly itself."""
    if not is_remote(spark):
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", name)


CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def connect_server_command(host: str, port: int, settings: Settings | None = None) -> list[str]:
    """The ``spark-submit`` command of a Spark Connect server for the jobs: the configured master, Delta's
    (and the S3 connector's) JARs, every application property of an in-process session, listening on
    ``host:port``. No project code: each client session uploads its own code archive (get_spark)."""
    import pyspark

    settings = settings or get_settings()
    spark_home = Path(pyspark.__file__).parent
    command = [str(spark_home / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS, "--name", "coalchain-connect",
               "--master", settings.spark_master, "--jars", ",".join(session_jars(settings))]
    # Spark 4.0 keeps a Python worker daemon per Connect session until the application ends (about 55 MB on
    # every executor that ran one of the session's Python functions; only its idle workers go after a minute):
    # without the daemon each task starts its own worker, which exits with the task
    conf = {"spark.python.use.daemon": "false", **application_conf(settings),
            "spark.connect.grpc.binding.address": host, "spark.connect.grpc.binding.port": str(port),
            "spark.pyspark.python": settings.spark_python or sys.executable,
            "spark.pyspark.driver.python": sys.executable}
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command


def main(argv: list[str] | None = None) -> int:
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="python -m jobs.platform.session", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("submit-args", help="print the spark-submit options for the configured master")
    commands.add_parser("code-archive", help="build (or reuse) the executors' code zip and print its path")
    server = commands.add_parser("connect-server", help="run a Spark Connect server for the jobs (foreground); "
                                 "clients set COALCHAIN_SPARK_REMOTE=sc://HOST:PORT")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    server.add_argument("--port", type=int, default=15002)
    server.add_argument("--print", action="store_true", help="print the spark-submit command instead of running it")
    args = parser.parse_args(argv)
    if args.command == "submit-args":
        print(" ".join(shlex.quote(a) for a in submit_args()))
    elif args.command == "connect-server":
        command = connect_server_command(args.host, args.port)
        if args.print:
            print(" ".join(shlex.quote(a) for a in command))
            return 0
        # the server starts its Python workers with PYSPARK_PYTHON (its planner reads the environment, not
        # spark.pyspark.python)
        settings = get_settings()
        env = {**os.environ, "PYSPARK_PYTHON": settings.spark_python or sys.executable,
               "PYSPARK_DRIVER_PYTHON": sys.executable}
        os.execve(command[0], command, env)
    else:
        print(code_archive())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
