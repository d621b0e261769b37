"""Shared fixtures: one real SparkSession (with Delta) for the whole test session."""
from __future__ import annotations

import os

import pytest

# Small, fast settings for tests; set before jobs.settings is first read.
os.environ.setdefault("COALCHAIN_SPARK_MASTER", "local[2]")
os.environ.setdefault("COALCHAIN_SPARK_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("COALCHAIN_SPARK_DRIVER_MEMORY", "2g")


@pytest.fixture(scope="session")
def spark():
    from jobs.session import get_spark

    session = get_spark("coalchain-tests")
    yield session
    session.stop()
