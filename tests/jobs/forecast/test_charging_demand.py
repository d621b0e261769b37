"""The forecast job on a tiny synthetic lake: weekly retraining, daily predictions into gold, lineage, idempotence.

Timestamps in silver are UTC; Asia/Shanghai is UTC+8 all year (no DST), so local 08:00 = 00:00 UTC.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from jobs.forecast import charging_demand as job
from jobs.platform import delta_tables
from jobs.platform.settings import Settings
from schemas.gold_forecast import GOLD_CHARGING_FORECAST
from schemas.tables import SILVER
from tests.models.conftest import FAST, make_series

AS_OF = dt.date(2026, 10, 24)          # the synthetic history covers 2026-10-01 .. 2026-10-24 (24 days)
STATIONS = ("CS01", "CS02")
UTC8 = dt.timedelta(hours=8)


def session_rows(days: int, last_day: dt.date, seed: int = 0) -> list[dict]:
    """6-8 sessions per station and day starting at random local times up to 21:30, 20-90 min, 20-120 kWh, all in UTC."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        day = last_day - dt.timedelta(days=days - 1 - d)
        for j, st in enumerate(STATIONS):
            for k in range(6 + j * 2):
                start_local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=int(rng.integers(0, 1290)))
                dur = dt.timedelta(minutes=int(rng.integers(20, 90)))
                rows.append(_session(f"{st}-{day:%m%d}-{k}", st, start_local - UTC8, dur,
                                     float(rng.uniform(20, 120))))
    return rows


def _session(sid: str, station: str, start_utc: dt.datetime, dur: dt.timedelta, kwh: float,
             charge_times: bool = True) -> dict:
    return {
        "session_id": sid, "station_id": station, "connector_id": "1", "vin": "LZTB0000000000001",
        "plug_in_ts_utc": start_utc - dt.timedelta(minutes=2),
        "charge_start_ts_utc": start_utc if charge_times else None,
        "charge_end_ts_utc": start_utc + dur if charge_times else None,
        "plug_out_ts_utc": start_utc + dur + dt.timedelta(minutes=2),
        "meter_start_kwh": 0.0, "meter_stop_kwh": kwh, "energy_kwh": kwh, "max_power_kw": 200.0,
        "stop_reason": "Local", "event_date_local": (start_utc + UTC8).date(),
        "source_file": "synthetic.csv", "record_no": 1, "ingested_at": dt.datetime(2026, 11, 1),
    }


def write_silver(spark, settings: Settings, sessions: list[dict]) -> None:
    spec = SILVER["charging_sessions"]
    delta_tables.append(spark.createDataFrame(sessions, spec.schema), spec, settings)
    conn = SILVER["charging_connectors"]
    rows = [{"station_id": st, "connector_id": str(c), "rated_kw": 240.0, "source_file": "synthetic.csv",
             "record_no": 1, "ingested_at": dt.datetime(2026, 11, 1)} for st in STATIONS for c in (1, 2)]
    delta_tables.append(spark.createDataFrame(rows, conn.schema), conn, settings)


def gold(spark, settings: Settings):
    return delta_tables.read_table(spark, GOLD_CHARGING_FORECAST, settings)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("forecast")
    settings = Settings(lake_root=root / "lake", landing_root=root / "landing")
    write_silver(spark, settings, session_rows(24, AS_OF))
    return settings


def test_cutoff_is_local_midnight_after_the_as_of_day():
    local, utc = job.cutoff_for(dt.date(2026, 11, 4))
    assert local == pd.Timestamp("2026-11-05 00:00") and utc == dt.datetime(2026, 11, 4, 16, 0)


def test_to_model_sessions_uses_charge_times_else_plug_times_in_local_time(spark):
    rows = [
        # charge 00:30-01:30 UTC = 08:30-09:30 local
        _session("a", "CS01", dt.datetime(2026, 11, 4, 0, 30), dt.timedelta(hours=1), 10.0),
        # no charge times: plug-in 00:28, plug-out 01:32 UTC -> 08:28-09:32 local
        _session("b", "CS02", dt.datetime(2026, 11, 4, 0, 30), dt.timedelta(hours=1), 20.0, charge_times=False),
        # starts exactly at the cut-off (16:00 UTC = local midnight): not known at the cut-off
        _session("c", "CS01", dt.datetime(2026, 11, 4, 16, 0), dt.timedelta(hours=1), 30.0),
    ]
    df = spark.createDataFrame(rows, SILVER["charging_sessions"].schema)
    got = df.transform(job.to_model_sessions, cutoff_utc=dt.datetime(2026, 11, 4, 16)).orderBy("site_id").collect()
    assert [tuple(r) for r in got] == [
        ("CS01", dt.datetime(2026, 11, 4, 8, 30), dt.datetime(2026, 11, 4, 9, 30), 10.0),
        ("CS02", dt.datetime(2026, 11, 4, 8, 28), dt.datetime(2026, 11, 4, 9, 32), 20.0),
    ]


def test_hourly_history_zero_fills_only_through_the_last_delivered_day():
    sessions = pd.DataFrame({"site_id": ["A", "B"],
                             "start_ts": pd.to_datetime(["2026-11-02 10:30", "2026-11-03 05:00"]),
                             "end_ts": pd.to_datetime(["2026-11-02 11:30", "2026-11-03 06:00"]),
                             "energy_kwh": [40.0, 8.0]})
    stations = pd.DataFrame({"site_id": ["A", "B"], "n_connectors": [2.0, 1.0], "rated_kw": [480.0, 120.0]})
    # as-of 11-05, but the feed delivered nothing after 11-03: 11-04 and 11-05 are unknown, not zero
    inputs = job.Inputs(sessions, stations, "silver_charging_sessions@v3", None)
    series, complete_until = job.hourly_history(inputs, dt.date(2026, 11, 5))
    assert complete_until == pd.Timestamp("2026-11-04 00:00")
    # 40 kWh over 10:30-11:30 -> 20 kWh in hour 10 and 20 in hour 11; a zero marks 11-03 23:00 as observed
    a = series[series.site_id == "A"].set_index("ts")["energy_kwh"]
    assert a.to_dict() == {pd.Timestamp("2026-11-02 10:00"): 20.0, pd.Timestamp("2026-11-02 11:00"): 20.0,
                           pd.Timestamp("2026-11-03 23:00"): 0.0}
    assert series.loc[series.site_id == "B", "rated_kw"].eq(120.0).all()
    assert job.history_days(series, complete_until) == 2.0
    # a charging-sessions file delivered for 11-05 makes every hour up to the cut-off observed
    inputs.last_delivery_day = dt.date(2026, 11, 5)
    _, complete_until = job.hourly_history(inputs, dt.date(2026, 11, 5))
    assert complete_until == pd.Timestamp("2026-11-06 00:00")


def test_quick_backtest_scores_24_and_168_hours_or_says_why_not():
    series = make_series(n_days=35)
    metrics = job.quick_backtest(series, 35.0, (), FAST, min_backtest_days=28)
    assert metrics["status"] == "backtested" and set(metrics["horizons_h"]) == {"24", "168"}
    for h, m in metrics["horizons_h"].items():
        assert m["setup"]["horizon_steps"] == int(h) and m["setup"]["n_refits"] <= 2
        assert {"model", "snaive_daily", "snaive_weekly"} <= set(m["overall"])
        # the test window is the last 28 days at most (here a third of 35 days)
        assert pd.Timestamp(m["setup"]["test_end"]) - pd.Timestamp(m["setup"]["test_start"]) < pd.Timedelta(days=12)
    assert job.quick_backtest(series, 35.0, (), FAST, min_backtest_days=56)["status"] == "insufficient_history"


def test_train_then_predict_writes_168_hours_per_station_traced_to_the_model(spark, lake):
    result = job.train(spark, AS_OF, settings=lake, params=FAST)
    assert result["status"] == "trained", result
    registry = job.registry_root(lake)
    latest = (registry / "LATEST").read_text().strip()
    assert latest == result["model_version"]
    meta = json.loads((registry / latest / "metadata.json").read_text())
    version = job.table_version(spark, SILVER["charging_sessions"], lake)
    assert meta["data_version"] == f"silver_charging_sessions@v{version}"
    assert meta["training_window"] == {"start": "2026-10-01 00:00:00", "end": "2026-10-24 23:00:00"}
    assert meta["run_info"]["as_of_date"] == "2026-10-24"
    assert meta["run_info"]["feature_cutoff_ts_utc"] == "2026-10-24T16:00:00"
    assert meta["features"]["exog"] == ["n_connectors", "rated_kw"]
    metrics = json.loads((registry / latest / "metrics.json").read_text())
    assert metrics["status"] == "insufficient_history" and "56" in metrics["reason"]   # 24 days: no backtest

    out = job.predict(spark, AS_OF, settings=lake, issued_at=dt.datetime(2026, 10, 25, 0, 5))
    assert out["rows"] == 168 * len(STATIONS)
    rows = gold(spark, lake).filter(F.col("forecast_date_local") == AS_OF).toPandas()
    assert len(rows) == 168 * len(STATIONS)
    assert set(rows.model_version) == {latest} and set(rows.method) == {"gbm_quantile"}
    assert set(rows.data_version) == {meta["data_version"]}
    assert rows.groupby("station_id").lead_h.apply(lambda s: sorted(s) == list(range(1, 169))).all()
    first = rows[rows.lead_h == 1].iloc[0]
    # lead 1 = the first local hour after the cut-off: 10-25 00:00 local = 10-24 16:00 UTC
    assert first.ts_local == pd.Timestamp("2026-10-25 00:00") and first.ts_utc == pd.Timestamp("2026-10-24 16:00")
    assert (rows.feature_cutoff_ts_utc == pd.Timestamp("2026-10-24 16:00")).all()
    assert ((rows.p10_kwh <= rows.p50_kwh) & (rows.p50_kwh <= rows.p90_kwh) & (rows.p10_kwh >= 0)).all()
    assert rows.p90_kwh.sum() > 0


def test_predict_again_for_the_same_day_replaces_and_other_days_are_kept(spark, lake):
    again = dt.datetime(2026, 10, 25, 6, 0)
    job.predict(spark, AS_OF, settings=lake, issued_at=again)
    rows = gold(spark, lake).filter(F.col("forecast_date_local") == AS_OF)
    assert rows.count() == 168 * len(STATIONS)
    assert [r[0] for r in rows.select("issued_at").distinct().collect()] == [again]
    # a backfill for the day before must not use the model trained on data up to AS_OF: it has no eligible
    # model, so it is served by the seasonal-naive fallback, in its own partition
    job.predict(spark, AS_OF - dt.timedelta(days=1), settings=lake)
    table = gold(spark, lake)
    assert table.count() == 2 * 168 * len(STATIONS)
    prev = {r[0] for r in table.filter(F.col("forecast_date_local") == AS_OF - dt.timedelta(days=1))
            .select("model_version").distinct().collect()}
    assert prev == {"seasonal_naive_daily"}


def test_predict_keeps_a_forecast_issued_by_the_same_model_from_the_same_data(spark, lake):
    """The DAG's re-triggered run on unchanged sessions (a second backfill) writes no new table version."""
    job.predict(spark, AS_OF, settings=lake)
    version = job.table_version(spark, GOLD_CHARGING_FORECAST, lake)
    kept = job.predict(spark, AS_OF, settings=lake, keep_unchanged=True)
    assert kept["status"] == "unchanged"
    assert job.table_version(spark, GOLD_CHARGING_FORECAST, lake) == version
    # a day not forecast yet is written
    assert job.predict(spark, AS_OF - dt.timedelta(days=2), settings=lake, keep_unchanged=True)["status"] == "written"
    # a manual run of a kept day (keep_unchanged=False: the runbook's re-run) issues it again, as a new version
    reissued_at = dt.datetime(2026, 10, 25, 7, 0)
    again = job.predict(spark, AS_OF, settings=lake, issued_at=reissued_at)
    assert again["status"] == "written" and again["rows"] == 168 * len(STATIONS)
    assert job.table_version(spark, GOLD_CHARGING_FORECAST, lake) > version
    rows = gold(spark, lake).filter(F.col("forecast_date_local") == AS_OF)
    assert [r[0] for r in rows.select("issued_at").distinct().collect()] == [reissued_at]


def test_retrain_is_skipped_under_7_days_and_happens_at_7(spark, lake):
    registry = job.registry_root(lake)
    first = (registry / "LATEST").read_text().strip()
    skipped = job.train(spark, AS_OF + dt.timedelta(days=6), settings=lake, params=FAST)
    assert skipped["status"] == "skipped" and skipped["model_version"] == first
    retrained = job.train(spark, AS_OF + dt.timedelta(days=7), settings=lake, params=FAST)
    assert retrained["status"] == "trained" and retrained["model_version"] != first
    assert (registry / "LATEST").read_text().strip() == retrained["model_version"]
    meta = json.loads((registry / retrained["model_version"] / "metadata.json").read_text())
    assert meta["run_info"]["as_of_date"] == "2026-10-31"
    # no data after 10-24 arrived: the week after it is unknown, not zero, so the window still ends on 10-24
    assert meta["training_window"]["end"] == "2026-10-24 23:00:00"
    # predicting for AS_OF still uses the model trained for AS_OF, not the newer one
    assert job.model_for(AS_OF, lake)["model_version"] == first
    assert job.train(spark, AS_OF + dt.timedelta(days=7), settings=lake, params=FAST)["status"] == "skipped"


def test_three_days_of_history_serve_the_seasonal_naive_fallback(spark, tmp_path):
    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    as_of = dt.date(2026, 11, 4)
    # two random days, then an as-of day worked by hand (local time = UTC + 8 h):
    #   CS01 charges 60 kWh over 00:30-01:30 local -> 30 kWh in hour 00 and 30 kWh in hour 01
    #   CS02 charges 40 kWh over 10:00-10:30 local, with no charge times (plug-in/out 09:58-10:32 local):
    #        34 min spread as 2/34 to hour 09 and 32/34 to hour 10 -> 2.353 and 37.647 kWh
    sessions = session_rows(2, as_of - dt.timedelta(days=1), seed=1) + [
        _session("h1", "CS01", dt.datetime(2026, 11, 3, 16, 30), dt.timedelta(hours=1), 60.0),
        _session("h2", "CS02", dt.datetime(2026, 11, 4, 2, 0), dt.timedelta(minutes=30), 40.0, charge_times=False),
    ]
    write_silver(spark, settings, sessions)
    # the earliest plug-in is on 11-02 local (the first random day) and the cut-off is 11-05 00:00 local: at
    # most 3 days, read without Spark; so no Spark session is needed to decide it
    assert job.history_days_at_most(as_of, settings) == 3.0
    assert job.train(None, as_of, settings=settings) == {
        "status": "insufficient_history", "history_days_at_most": 3.0, "min_train_days": 21,
        "served_instead": "seasonal_naive_daily"}
    assert not job.registry_root(settings).exists()
    out = job.predict(spark, as_of, settings=settings)
    assert out["model_version"] == "seasonal_naive_daily" and out["rows"] == 168 * len(STATIONS)
    rows = gold(spark, settings).toPandas()
    assert set(rows.model_version) == set(rows.method) == {"seasonal_naive_daily"}
    # P50 = the same local hour of the as-of day, on each of the 7 days ahead
    p50 = rows.assign(hour=rows.ts_local.dt.hour).groupby(["station_id", "hour"]).p50_kwh
    assert (p50.nunique() == 1).all() and (p50.size() == 7).all()
    p50 = p50.first()
    assert p50["CS01"][[0, 1, 2]].tolist() == [30.0, 30.0, 0.0]
    assert p50["CS02"][[9, 10, 11]].round(3).tolist() == [2.353, 37.647, 0.0]
    assert ((rows.p10_kwh <= rows.p50_kwh) & (rows.p50_kwh <= rows.p90_kwh)).all()


def test_history_bound_is_an_upper_bound(spark, tmp_path):
    as_of = dt.date(2026, 11, 4)
    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    assert job.history_days_at_most(as_of, settings) == 0.0          # no sessions table yet
    # one session charging from 2026-10-01 16:00 UTC = 10-02 00:00 local, plugged in 2 min before: 10-01 23:58
    # local. Bound: 10-01 00:00 .. cut-off 11-05 00:00 local = 35 days >= 21, so train reads the table and finds
    # 1 day (hourly series from 10-02 00:00; complete until the day after the last session day, 10-03 00:00)
    write_silver(spark, settings, [_session("old", "CS01", dt.datetime(2026, 10, 1, 16, 0), dt.timedelta(hours=1), 10.0)])
    assert job.history_days_at_most(as_of, settings) == 35.0
    out = job.train(spark, as_of, settings=settings)
    assert out["status"] == "insufficient_history" and out["history_days"] == 1.0
    # a charge start recorded before its plug-in (bad clocks are not rejected) starts the bound: a session
    # plugged in on 11-03 local whose charge start is 09-20 22:00 UTC = 09-21 06:00 local -> 09-21 .. 11-05 = 45 days
    bad = _session("bad", "CS02", dt.datetime(2026, 11, 3, 2, 0), dt.timedelta(hours=1), 10.0)
    bad["charge_start_ts_utc"] = dt.datetime(2026, 9, 20, 22, 0)
    write_silver(spark, settings, [bad])
    assert job.history_days_at_most(as_of, settings) == 45.0


def test_the_sweep_sees_the_newest_delivery_day_of_a_sessions_file(spark, tmp_path):
    from jobs.platform import delta_log
    from schemas.tables import INGESTED_FILES

    settings = Settings(lake_root=tmp_path / "lake")
    assert job.delivered_through(settings) is None                      # nothing ingested yet

    def row(source: str, day: dt.date, status: str = "ingested") -> dict:
        return {"source": source, "landing_date": day, "source_file": f"{source}/{day}/a.csv",
                "file_sha256": f"{source}{day}", "file_bytes": 10, "records": 1, "status": status,
                "ingested_at": dt.datetime(2026, 11, 7, tzinfo=dt.timezone.utc)}

    delta_log.insert_missing(spark, INGESTED_FILES, [
        row("charging_sessions", dt.date(2026, 11, 2)), row("charging_sessions", dt.date(2026, 11, 4)),
        row("connector_status", dt.date(2026, 11, 6)),                  # another source's later delivery
    ], "t.file_sha256 = s.file_sha256", settings)
    assert job.delivered_through(settings) == dt.date(2026, 11, 4)
