"""Shared by the quality tests: Spark settings for their tiny batches."""
from __future__ import annotations

import pytest

# Tiny batches: Spark's code generation and adaptive re-planning cost more than the queries (as in the
# KPI tests); results do not depend on them. Restored after each module.
_TINY_QUERY_CONF = {"spark.sql.adaptive.enabled": "false", "spark.sql.codegen.wholeStage": "false",
                    "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


@pytest.fixture(scope="module", autouse=True)
def _interpreted_tiny_queries(spark):
    previous = {k: spark.conf.get(k, None) for k in _TINY_QUERY_CONF}
    for k, v in _TINY_QUERY_CONF.items():
        spark.conf.set(k, v)
    yield
    for k, v in previous.items():
        spark.conf.unset(k) if v is None else spark.conf.set(k, v)
