"""The forecast day's flexible energy job on a tiny lake: reads the run of D and D-27..D of flexibility
history, replaces its partition, and skips a lake without gold flexibility."""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.forecast.flexibility import FLEXIBILITY_HOURLY, TABLE_NAME, write_flexibility_forecast
from jobs.platform import delta_tables
from jobs.platform.settings import Settings
from schemas.gold_forecast import GOLD_CHARGING_FORECAST, GOLD_CHARGING_FORECAST_SCHEMA
from schemas.tables import TableSpec

AS_OF = dt.date(2026, 10, 2)


def forecast_row(ts_local: dt.datetime, lead_h: int, p50_kwh: float) -> tuple:
    return ("ST1", ts_local - dt.timedelta(hours=8), ts_local, lead_h, 0.5 * p50_kwh, p50_kwh, 2 * p50_kwh,
            "seasonal_naive_daily", "seasonal_naive_daily", "silver_charging_sessions@v1",
            dt.datetime(2026, 10, 2, 16), dt.datetime(2026, 10, 2, 17), AS_OF)


def test_writes_the_forecast_day_and_replaces_on_rerun(spark, tmp_path):
    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    assert write_flexibility_forecast(spark, AS_OF, settings)["status"] == "skipped"     # nothing built yet
    fc = spark.createDataFrame([forecast_row(dt.datetime(2026, 10, 3, 8), 9, 40.0),
                                forecast_row(dt.datetime(2026, 10, 4, 8), 33, 40.0)], GOLD_CHARGING_FORECAST_SCHEMA)
    delta_tables.replace_where(fc, GOLD_CHARGING_FORECAST, f"forecast_date_local = '{AS_OF}'", settings)
    history = spark.createDataFrame([(dt.date(2026, 10, 1), 8, "ST1", 200.0, 50.0)],
                                    "date_local date, hour_local int, station_id string, as_charged_kwh double, "
                                    "flexible_kwh double")
    history.write.format("delta").save(str(delta_tables.table_path(FLEXIBILITY_HOURLY, settings)))
    for _ in range(2):
        out = write_flexibility_forecast(spark, AS_OF, settings)
    assert out == {"status": "written", "rows": 1, "stations_without_history": 0, "forecast_date_local": "2026-10-02"}
    rows = delta_tables.read_existing(spark, TableSpec(TABLE_NAME, "gold", None), settings).filter(
        F.col("forecast_date_local") == AS_OF).collect()
    # only 10-03 (the forecast day); 50 / 200 = 25 % of the 40 kWh P50 = 10 kWh; the re-run replaced, not appended
    assert len(rows) == 1 and rows[0].flexible_p50_kwh == pytest.approx(10.0) and rows[0].hour_local == 8
