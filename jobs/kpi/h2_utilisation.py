"""Hydrogen refuelling station utilisation per station and day / month, rolled up per company, banner, city.

Definitions (named in the columns):

* ``nameplate_utilisation_pct``  = kg dispensed / (nameplate kg/day x days)
* ``fills_per_dispenser_day``    = fills / (dispensers x days)
* ``kg_per_fill``                = kg dispensed / fills
* ``dispenser_busy_pct``         = dispensing time (fill start -> end) / (dispensers x calendar time)
* ``active_dispenser_share_pct`` = dispensers with at least one fill / dispensers (per day)
* ``days_with_fills_pct``        = station-days with at least one fill / station-days

Dispenser availability (fault / maintenance time) is not observable: there is no H2 dispenser status
source, only fills. ``active_dispenser_share_pct`` and ``days_with_fills_pct`` are the observable
proxies and are named as such; a station-day without fills may be down or merely idle.

A fill belongs to the local day it started (``event_date_local``); a station with no fill on a day of
the window still gets a row (0 kg), so monthly ratios divide by every calendar day.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.kpi._common import epoch_s, month_start, ratio, rollup_scopes

DEFINITIONS_VERSION = "h2_util_defs_v2026.1"
DAY_S = 86400.0

_SUMS = ("station_days", "nameplate_kg", "dispenser_days", "fills", "h2_kg", "dispensing_s", "station_days_with_fills")
_RATIOS = ("nameplate_utilisation_pct", "fills_per_dispenser_day", "kg_per_fill", "dispenser_busy_pct",
           "days_with_fills_pct")


def _with_ratios(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("nameplate_utilisation_pct", ratio("h2_kg", "nameplate_kg", 100.0))
        .withColumn("fills_per_dispenser_day", ratio("fills", "dispenser_days"))
        .withColumn("kg_per_fill", ratio("h2_kg", "fills"))
        .withColumn("dispenser_busy_pct", ratio("dispensing_s", F.col("dispenser_days") * F.lit(DAY_S), 100.0))
        .withColumn("days_with_fills_pct", ratio("station_days_with_fills", "station_days", 100.0))
    )


def h2_station_daily(fills: DataFrame, *, stations: DataFrame, start_date: dt.date, end_date: dt.date) -> DataFrame:
    """Per station and local day of [start_date, end_date], including days without fills.

    Columns: date_local, station_id, company_id, banner, nameplate_kg_per_day, dispensers, <sums>,
    active_dispensers, <ratios>, active_dispenser_share_pct, definition_version.
    """
    st = stations.select("station_id", "company_id", "banner", "nameplate_kg_per_day", "dispensers")
    days = F.explode(F.sequence(F.lit(start_date), F.lit(end_date), F.expr("INTERVAL 1 DAY")))
    grid = st.select("*", days.alias("date_local"))
    f = fills.filter(F.col("event_date_local").between(F.lit(start_date), F.lit(end_date))).select(
        F.col("event_date_local").alias("date_local"), "station_id", "dispenser_id", "fill_id", "h2_kg",
        F.greatest(epoch_s("end_ts_utc") - epoch_s("start_ts_utc"), F.lit(0.0)).alias("fill_s"),
    )
    per_day = f.groupBy("date_local", "station_id").agg(
        F.count("fill_id").alias("fills"), F.sum("h2_kg").alias("h2_kg"), F.sum("fill_s").alias("dispensing_s"),
        F.countDistinct("dispenser_id").alias("active_dispensers"),
    )
    out = grid.join(per_day, on=["date_local", "station_id"], how="left").select(
        "date_local", "station_id", "company_id", "banner", "nameplate_kg_per_day", "dispensers",
        F.lit(1).alias("station_days"), F.col("nameplate_kg_per_day").alias("nameplate_kg"),
        F.col("dispensers").alias("dispenser_days"),
        F.coalesce(F.col("fills"), F.lit(0)).alias("fills"), F.coalesce(F.col("h2_kg"), F.lit(0.0)).alias("h2_kg"),
        F.coalesce(F.col("dispensing_s"), F.lit(0.0)).alias("dispensing_s"),
        (F.coalesce(F.col("fills"), F.lit(0)) > 0).cast("int").alias("station_days_with_fills"),
        F.coalesce(F.col("active_dispensers"), F.lit(0)).alias("active_dispensers"),
    )
    return _with_ratios(out).select(
        "date_local", "station_id", "company_id", "banner", "nameplate_kg_per_day", "dispensers", *_SUMS,
        "active_dispensers", *_RATIOS, ratio("active_dispensers", "dispensers", 100.0).alias("active_dispenser_share_pct"),
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


def h2_station_monthly(daily: DataFrame) -> DataFrame:
    """Per station and month (ratios of the summed days). Columns: month_start, station_id, company_id,
    banner, <sums>, <ratios>, definition_version."""
    d = daily.select("date_local", "station_id", "company_id", "banner", *_SUMS)
    m = d.groupBy(month_start("date_local").alias("month_start"), "station_id", "company_id", "banner").agg(
        *[F.sum(c).alias(c) for c in _SUMS]
    )
    return _with_ratios(m).select("month_start", "station_id", "company_id", "banner", *_SUMS, *_RATIOS,
                                  F.lit(DEFINITIONS_VERSION).alias("definition_version"))


def h2_rollup(station_rows: DataFrame, *, period_col: str) -> DataFrame:
    """Company / banner / city roll-up of daily (``date_local``) or monthly (``month_start``) station rows.
    Columns: <period_col>, scope_level, scope_id, stations, <sums>, <ratios>, definition_version."""
    d = station_rows.select(period_col, "station_id", "company_id", "banner", *_SUMS)
    out = rollup_scopes(d, period_cols=[period_col],
                        aggs=[F.countDistinct("station_id").alias("stations"), *[F.sum(c).alias(c) for c in _SUMS]])
    return _with_ratios(out).select(period_col, "scope_level", "scope_id", "stations", *_SUMS, *_RATIOS,
                                    F.lit(DEFINITIONS_VERSION).alias("definition_version"))
