"""KPI tests run many small, differently shaped queries on a few rows each: Spark's code generation
(Janino compiles every new plan) and adaptive re-planning cost more than the queries themselves and
about halve the suite's run time when switched off. Results do not depend on either (Spark runs the
same expressions interpreted). The settings are restored after this package, so other tests see the
shared session unchanged; set COALCHAIN_KPI_TEST_CODEGEN=1 to run the KPI tests with them on."""
from __future__ import annotations

import os

import pytest

FAST_TINY_QUERIES = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


@pytest.fixture(scope="package", autouse=True)
def _interpreted_tiny_queries(spark):
    if os.environ.get("COALCHAIN_KPI_TEST_CODEGEN") == "1":
        yield
        return
    previous = {k: spark.conf.get(k, None) for k in FAST_TINY_QUERIES}
    for k, v in FAST_TINY_QUERIES.items():
        spark.conf.set(k, v)
    yield
    for k, v in previous.items():
        if v is None:
            spark.conf.unset(k)
        else:
            spark.conf.set(k, v)
