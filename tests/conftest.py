"""Shared fixtures: one real SparkSession (with Delta) for the whole test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small, fast settings for tests; set before jobs.settings is first read.
os.environ.setdefault("COALCHAIN_SPARK_MASTER", "local[2]")
os.environ.setdefault("COALCHAIN_SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("COALCHAIN_SPARK_DRIVER_MEMORY", "2g")
# Airflow: the project's home and DAG folder (Airflow puts the DAG folder on sys.path), no examples.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def spark():
    from jobs.session import get_spark

    session = get_spark("coalchain-tests")
    yield session
    session.stop()
