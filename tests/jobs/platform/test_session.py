"""The process-wide SparkSession (jobs/platform/session.py)."""
from __future__ import annotations

from jobs.platform.session import FAIR_POOL_LOGGER, scheduler_pool


def test_a_pool_made_on_first_use_runs_its_job_without_the_unconfigured_pool_warning(spark):
    scheduler_pool(spark, "gold_test_family")
    try:
        # 1 + 2 + 3 = 6, computed in the pool that did not exist before this job
        assert spark.range(1, 4).groupBy().sum("id").first()[0] == 6
        assert spark.sparkContext.getLocalProperty("spark.scheduler.pool") == "gold_test_family"
    finally:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)
    jvm = spark.sparkContext._jvm
    # the builder's once-per-pool WARN is below the logger's level; the rest of Spark still logs warnings
    assert str(jvm.org.apache.logging.log4j.LogManager.getLogger(FAIR_POOL_LOGGER).getLevel()) == "ERROR"
    assert str(jvm.org.apache.logging.log4j.LogManager.getRootLogger().getLevel()) == "WARN"
