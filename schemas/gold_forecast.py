"""Declared schema of ``gold_charging_forecast``: hourly charging-energy forecasts per station, written by
``jobs.forecast.charging_demand predict`` (the ``forecast_charging_demand`` DAG).

One forecast run per as-of day: at the end of local day D (the feature cut-off, local midnight) the next
168 hours are forecast for every station with session history. ``forecast_date_local`` = D is the run key
and the partition column; re-running day D replaces its partition (``replaceWhere``), so a day never holds
two runs and a backfill is the same code path as the daily run.

Every row names what produced it: ``model_version`` is a folder of the model registry
(``<lake_root>/models/charging_forecast/<model_version>/metadata.json`` holds the training window, data
version and metrics) or ``seasonal_naive_daily`` for the fallback served while history is too short to
train; ``method`` says what the row's P50 is (``gbm_quantile``, ``level_shape``, ``gbm_level_mix``,
``snaive_daily``, ``snaive_weekly``: see docs/forecasting.md); ``data_version`` is the Delta version of
``silver_charging_sessions`` the features were read from.
"""
from __future__ import annotations

from pyspark.sql import types as T

from schemas.tables import TableSpec

S_, D, TS, I, DATE = T.StringType(), T.DoubleType(), T.TimestampType(), T.IntegerType(), T.DateType()

GOLD_CHARGING_FORECAST_SCHEMA = T.StructType([
    T.StructField("station_id", S_, False),
    T.StructField("ts_utc", TS, False),                       # start of the forecast hour (UTC)
    T.StructField("ts_local", TS, False),                     # the same hour as Asia/Shanghai wall-clock time
    T.StructField("lead_h", I, False),                        # hours after the cut-off: 1 = the first hour
    T.StructField("p10_kwh", D, False),                       # energy delivered in the hour, 10 % quantile
    T.StructField("p50_kwh", D, False),                       # median: the point forecast
    T.StructField("p90_kwh", D, False),                       # 90 % quantile
    # what the P50 is: gbm_quantile; snaive_daily / snaive_weekly (the model's refit check found that baseline
    # better over the two weeks before training and serves it); seasonal_naive_daily (no model yet)
    T.StructField("method", S_, False),
    T.StructField("model_version", S_, False),                # registry folder, or seasonal_naive_daily
    T.StructField("data_version", S_, False),                 # silver_charging_sessions@v<N>
    T.StructField("feature_cutoff_ts_utc", TS, False),        # no data at or after this instant was used
    T.StructField("issued_at", TS, False),                    # wall-clock time of the run (UTC)
    T.StructField("forecast_date_local", DATE, False),        # as-of day D: run key and partition
])

GOLD_CHARGING_FORECAST = TableSpec(
    "gold_charging_forecast", "gold", GOLD_CHARGING_FORECAST_SCHEMA,
    natural_key=("forecast_date_local", "station_id", "ts_utc"),
    partition_cols=("forecast_date_local",),
)
