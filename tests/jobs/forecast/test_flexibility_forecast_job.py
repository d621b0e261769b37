"""The forecast day's flexible energy job on a tiny lake: reads the run of D and D-27..D of flexibility
history, replaces its partition through the catalogue's writer, and skips a lake without gold flexibility."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.forecast.flexibility import TABLE_NAME, write_flexibility_forecast
from jobs.kpi.build import write_declared
from jobs.platform import delta_log, delta_tables
from jobs.platform.settings import Settings
from schemas import gold
from schemas.gold_forecast import GOLD_CHARGING_FORECAST

AS_OF = dt.date(2026, 10, 2)
HISTORY_DAY = dt.date(2026, 10, 1)


def forecast_row(ts_local: dt.datetime, lead_h: int, p50_kwh: float) -> tuple:
    return ("ST1", ts_local - dt.timedelta(hours=8), ts_local, lead_h, 0.5 * p50_kwh, p50_kwh, 2 * p50_kwh,
            "seasonal_naive_daily", "seasonal_naive_daily", "silver_charging_sessions@v1",
            dt.datetime(2026, 10, 2, 16), dt.datetime(2026, 10, 2, 17), AS_OF)


def hourly_history(spark, hour_local: int, as_charged_kwh: float, flexible_kwh: float):
    """One row of gold_charging_flexibility_hourly, with the declared schema (other figures zero)."""
    schema = gold.table("gold_charging_flexibility_hourly").schema
    zero = {T.LongType: 0, T.DoubleType: 0.0, T.IntegerType: 0, T.StringType: "x", T.DateType: HISTORY_DAY}
    row = {f.name: zero[type(f.dataType)] for f in schema.fields}
    row.update(station_id="ST1", hour_local=hour_local, as_charged_kwh=as_charged_kwh, flexible_kwh=flexible_kwh)
    return spark.createDataFrame([tuple(row[f.name] for f in schema.fields)], schema)


def test_writes_the_forecast_day_and_replaces_on_rerun(spark, tmp_path):
    settings = Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing")
    assert write_flexibility_forecast(spark, AS_OF, settings)["status"] == "skipped"     # nothing built yet
    fc = spark.createDataFrame([forecast_row(dt.datetime(2026, 10, 3, 8), 9, 40.0),
                                forecast_row(dt.datetime(2026, 10, 4, 8), 33, 40.0)], GOLD_CHARGING_FORECAST.schema)
    delta_tables.replace_where(fc, GOLD_CHARGING_FORECAST, f"forecast_date_local = '{AS_OF}'", settings)
    write_declared(spark, "gold_charging_flexibility_hourly", hourly_history(spark, 8, 200.0, 50.0), [HISTORY_DAY],
                   settings)
    for _ in range(2):
        out = write_flexibility_forecast(spark, AS_OF, settings)
    assert out == {"status": "written", "rows": 1, "stations_without_history": 0, "forecast_date_local": "2026-10-02"}
    table = gold.table(TABLE_NAME)
    rows = delta_tables.read_existing(spark, table.spec, settings).filter(
        F.col("forecast_date_local") == AS_OF).collect()
    # only 10-03 (the forecast day); 50 / 200 = 25 % of the 40 kWh P50 = 10 kWh; the re-run replaced, not appended
    assert len(rows) == 1 and rows[0].flexible_p50_kwh == pytest.approx(10.0) and rows[0].hour_local == 8
    assert rows[0].share_basis == "station_hour" and rows[0].history_days == 1
    # written with the schema the catalogue declares (names, types, nullability), as the Delta log states it
    from deltalake import DeltaTable

    path = str(delta_log.table_path(table.spec, settings))
    assert T.StructType.fromJson(json.loads(DeltaTable(path).schema().to_json())) == table.schema
