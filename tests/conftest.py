"""Shared fixtures: one real SparkSession (with Delta) for the whole test session."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small, fast settings for tests; set before jobs.platform.settings is first read.
os.environ.setdefault("COALCHAIN_SPARK_MASTER", "local[2]")
os.environ.setdefault("COALCHAIN_SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("COALCHAIN_SPARK_DRIVER_MEMORY", "2g")
os.environ.setdefault("COALCHAIN_SPARK_PROFILE", "small")
# Airflow: the project's home and DAG folder (Airflow puts the DAG folder on sys.path), no examples.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# py4j logs "Closing down clientserver connection" from finalizers at interpreter exit, after pytest has
# closed the streams its handlers write to ("--- Logging error ---" at the end of every run)
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark():
    from jobs.platform.session import get_spark

    session = get_spark("coalchain-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module", autouse=True)
def release_spark_caches():
    """After each test module, drop what the shared session keeps per table it has read: Delta's log cache
    holds every table's snapshot (about 2 MB each) and the suite writes thousands of tables in temporary
    lakes; with them the 2 GB driver heap filled up and spent most of a run in full garbage collections
    (measured: 150 small tables keep ~300 MB, the two calls below free ~250 MB of it). A process of the
    project reads a fixed set of tables, so only the tests need this."""
    yield
    if "pyspark.sql" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None or not hasattr(session, "_jsc"):   # none, or a Spark Connect client (no JVM of its own)
        return
    session._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    session.catalog.clearCache()


@pytest.fixture(scope="session")
def sample_lake(spark, tmp_path_factory):
    """The committed sample world ingested once (all sources) into a temporary lake, shared by tests
    that only read it."""
    import datetime as dt

    from jobs.ingest.runner import ingest_all
    from jobs.platform.settings import Settings

    settings = Settings(lake_root=tmp_path_factory.mktemp("sample_lake"),
                        landing_root=REPO / "data_samples" / "landing")
    # three domains side by side (the default is one at a time): every test reading this lake also checks
    # that sources ingested concurrently lose nothing
    ingest_all(spark, dt.date(2026, 11, 1), dt.date(2026, 11, 30), settings, threads=3)
    return settings


@pytest.fixture(scope="session")
def sample_gold_lake(spark, sample_lake, tmp_path_factory):
    """The sample world with gold built for its full month (2026-11-01..30), shared read-only by the
    delivery tests (extracts, reports). Returns (settings, BuildResult). Tests that change the lake
    copy it first (see `copy_lake`)."""
    import datetime as dt
    import shutil

    from jobs.kpi.build import build, record_build
    from jobs.platform.settings import Settings

    lake = tmp_path_factory.mktemp("sample_gold") / "lake"
    shutil.copytree(sample_lake.lake_root, lake)
    settings = Settings(lake_root=lake, landing_root=sample_lake.landing_root)
    started = dt.datetime.now(dt.timezone.utc)
    result = build(spark, dt.date(2026, 11, 1), dt.date(2026, 11, 30), settings)
    record_build(spark, result, started, settings)
    return settings, result


def copy_lake(settings, destination: Path):
    """A private copy of a test lake (Delta tables are plain directories), for tests that write."""
    import shutil

    from jobs.platform.settings import Settings

    shutil.copytree(settings.lake_root, destination)
    return Settings(lake_root=destination, landing_root=settings.landing_root)
