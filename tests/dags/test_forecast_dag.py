"""The forecast DAG: which day a run forecasts from, and end to end through real Airflow (`airflow dags test
forecast_charging_demand`) on a 60-day operations world, where it trains and serves the model. On the
committed sample (3 days of sessions: too short to train) the stack test runs it and checks the fallback."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from jobs.platform.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_as_of_day_from_param_triggering_ingest_runs_or_logical_date():
    import importlib
    from types import SimpleNamespace

    import pendulum

    dags = str(REPO / "dags")
    if dags not in sys.path:                      # what Airflow does for its DAG folder
        sys.path.insert(0, dags)
    module = importlib.import_module("forecast_charging_demand")

    def event(logical_date):
        return SimpleNamespace(source_dag_run=SimpleNamespace(logical_date=logical_date))

    # two queued ingest runs (daily, at local midnight after their delivery day): the newest day wins
    events = {module.SESSIONS: [event(pendulum.datetime(2026, 11, 5, tz="Asia/Shanghai")),
                                event(pendulum.datetime(2026, 11, 6, tz="Asia/Shanghai")), event(None)]}
    assert module.as_of_day({}, None, events, pendulum.datetime(2026, 11, 6, 0, 7, tz="UTC")) == "2026-11-05"
    assert module.as_of_day({"as_of": "2026-10-01"}, None, events, None) == "2026-10-01"
    # manual run / `airflow dags test`: 2026-11-04 16:00 UTC = 11-05 00:00 local -> the day before
    assert module.as_of_day({}, pendulum.datetime(2026, 11, 4, 16, tz="UTC"), {}, None) == "2026-11-04"
    # no source run known: the last day completed when the run was queued (11-05 04:00 local -> 11-04)
    assert module.as_of_day({}, None, None, pendulum.datetime(2026, 11, 4, 20, tz="UTC")) == "2026-11-04"
    # the 05:30 sweep of 11-05 (logical date 2026-11-04 21:30 UTC): the day completed at its midnight, 11-04;
    # read as a manual run's logical date it would be 11-05, a day still in progress
    sweep = pendulum.datetime(2026, 11, 4, 21, 30, tz="UTC")
    assert module.as_of_day({}, sweep, None, sweep, scheduled=True) == "2026-11-04"
    assert module.as_of_day({}, sweep, None, sweep) == "2026-11-05"


# slow: a 60-day slice of the long world is generated and ingested, then Airflow trains a model
@pytest.mark.slow
def test_forecast_dag_trains_and_serves_the_model_on_a_60_day_operations_world(spark, tmp_path):
    from jobs.tools.forecast_demo import ensure_world, ingest_world, run_dag

    landing = tmp_path / "landing"
    manifest, _ = ensure_world(landing, days=60)
    start = dt.date.fromisoformat(manifest["window"]["start_local"][:10])
    as_of = start + dt.timedelta(days=59)
    settings = Settings(lake_root=tmp_path / "lake", landing_root=landing)
    statuses = ingest_world(spark, settings, start, as_of + dt.timedelta(days=3))
    assert set(statuses.values()) <= {"succeeded", "succeeded_with_rejects"}, statuses
    out = run_dag(settings, as_of)
    log = out.stdout + out.stderr
    assert out.returncode == 0 and "state=success" in log, log[-3000:]

    gold = spark.read.format("delta").load(str(tmp_path / "lake" / "gold" / "gold_charging_forecast")).toPandas()
    stations = manifest["ground_truth"]["charging_stations"]
    assert len(gold) == 168 * len(stations)
    # 60 days >= 21: a model was trained and serves every row (no seasonal-naive fallback)
    assert "seasonal_naive_daily" not in set(gold.model_version)
    assert set(gold.method) <= {"gbm_quantile", "level_shape", "gbm_level_mix", "snaive_daily", "snaive_weekly"}
    [version] = set(gold.model_version)
    meta = json.loads((tmp_path / "lake" / "models" / "charging_forecast" / version / "metadata.json").read_text())
    # the plan reached the model as exogenous input
    assert meta["run_info"]["plan_features"] == ["plan_trucks_share", "plan_trucks_share_prev", "plan_tonnes_ratio"]
    assert meta["run_info"]["as_of_date"] == as_of.isoformat()
