"""Charging-station utilisation per connector, station, day and hour, with each definition named.

Four incompatible "utilisation" figures are in use; all are published side by side, over the same
calendar bucket (an hour = 3,600 s, a day = 86,400 s; stations are open 24 h, so a bucket's calendar
time is its available time):

* ``time_based_utilisation_pct``            = charging time / calendar time
* ``occupancy_pct``                         = plugged-in time (occupied-not-charging + charging) / calendar time
* ``availability_adjusted_utilisation_pct`` = charging time / (calendar time - fault time)
* ``energy_based_utilisation_pct``          = kWh delivered / (rated kW x calendar hours)

plus ``sessions_per_connector_day``, ``kwh_per_connector_day`` and ``peak_concurrent_charging``
(the most connectors of a station charging at the same instant within the bucket).

Sources and rules:

* Times come from silver_connector_status: a status (T/CEC 102: 1 idle, 2 occupied not charging,
  3 charging, 4 reserved, 255 fault) holds until the connector's next event; the last event holds to
  the end of the window. The input must include each connector's last event before the window (a
  look-back): before a connector's first known event its status is unknown and counted in
  ``status_unknown_s`` - the percentages are then lower bounds.
* Energy comes from silver_charging_sessions, spread evenly over the session's charging time
  (charge start -> charge end, else plug-in -> plug-out) and cut at bucket edges, so a session
  across midnight puts its kWh into both days. Sessions are counted on their plug-in local day.
* Buckets are Asia/Shanghai local hours and days of the UTC timestamps (China has no DST).
* Station, company, banner and city figures are ratios of sums over connector-seconds and rated
  capacity, never means of connector percentages. Queueing is not visible in these sources.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.kpi._common import epoch_s, local_ts, month_start, ratio, rollup_scopes

DEFINITIONS_VERSION = "charging_util_defs_v2026.1"
CHARGING, OCCUPIED, FAULT = 3, 2, 255

_TIME_SUMS = ("calendar_s", "status_unknown_s", "charging_s", "plugged_in_s", "fault_s", "energy_kwh", "rated_capacity_kwh")
_PCTS = ("time_based_utilisation_pct", "occupancy_pct", "availability_adjusted_utilisation_pct",
         "energy_based_utilisation_pct")


def _window(start_date: dt.date, end_date: dt.date) -> tuple[Column, Column]:
    """[start 00:00, end + 1 day 00:00) in local wall-clock time."""
    return (F.lit(start_date).cast("timestamp"), F.lit(end_date + dt.timedelta(days=1)).cast("timestamp"))


def _split_by_hour(df: DataFrame, start_col: str, end_col: str) -> DataFrame:
    """One row per local hour an interval [start, end) touches, with ``hour_start`` and ``overlap_s``."""
    hours = F.sequence(
        F.date_trunc("hour", F.col(start_col)),
        F.date_trunc("hour", F.col(end_col) - F.expr("INTERVAL 1 MICROSECOND")),
        F.expr("INTERVAL 1 HOUR"),
    )
    out = df.filter(F.col(end_col) > F.col(start_col)).withColumn("hour_start", F.explode(hours))
    overlap = epoch_s(F.least(F.col(end_col), F.col("hour_start") + F.expr("INTERVAL 1 HOUR"))) - epoch_s(
        F.greatest(F.col(start_col), F.col("hour_start"))
    )
    return out.withColumn("overlap_s", overlap).filter(F.col("overlap_s") > 0)


def _status_intervals(status: DataFrame, *, start_date: dt.date, end_date: dt.date) -> DataFrame:
    """Status intervals in local time, clipped to the window: station_id, connector_id, status_code, start, end."""
    w_start, w_end = _window(start_date, end_date)
    by_connector = Window.partitionBy("station_id", "connector_id").orderBy("ts").rowsBetween(0, 1)
    s = status.select("station_id", "connector_id", local_ts("status_ts_utc").alias("ts"), "status_code")
    s = s.withColumn("next_ts", F.last("ts").over(by_connector))
    s = s.withColumn("next_ts", F.when(F.col("next_ts") > F.col("ts"), F.col("next_ts")).otherwise(w_end))
    return s.select(
        "station_id", "connector_id", "status_code",
        F.greatest(F.col("ts"), w_start).alias("start"), F.least(F.col("next_ts"), w_end).alias("end"),
    ).filter(F.col("end") > F.col("start"))


def _hour_grid(connectors: DataFrame, *, start_date: dt.date, end_date: dt.date) -> DataFrame:
    w_start, w_end = _window(start_date, end_date)
    hours = F.explode(F.sequence(w_start, w_end - F.expr("INTERVAL 1 HOUR"), F.expr("INTERVAL 1 HOUR")))
    return connectors.select("station_id", "connector_id", "rated_kw", hours.alias("hour_start"))


def _with_pcts(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("time_based_utilisation_pct", ratio("charging_s", "calendar_s", 100.0))
        .withColumn("occupancy_pct", ratio("plugged_in_s", "calendar_s", 100.0))
        .withColumn("availability_adjusted_utilisation_pct",
                    ratio("charging_s", F.col("calendar_s") - F.col("fault_s"), 100.0))
        .withColumn("energy_based_utilisation_pct", ratio("energy_kwh", "rated_capacity_kwh", 100.0))
    )


def charging_connector_hourly(
    status: DataFrame, *, sessions: DataFrame, connectors: DataFrame, start_date: dt.date, end_date: dt.date,
) -> DataFrame:
    """Per connector and local hour of [start_date, end_date].

    Columns: date_local, hour_local, station_id, connector_id, rated_kw, calendar_s, status_unknown_s,
    charging_s, plugged_in_s, fault_s, energy_kwh, rated_capacity_kwh, time_based_utilisation_pct,
    occupancy_pct, availability_adjusted_utilisation_pct, energy_based_utilisation_pct, definition_version.
    """
    keys = ["station_id", "connector_id", "hour_start"]
    st = _split_by_hour(_status_intervals(status, start_date=start_date, end_date=end_date), "start", "end")
    times = st.groupBy(*keys).agg(
        F.sum("overlap_s").alias("observed_s"),
        F.sum(F.when(F.col("status_code") == CHARGING, F.col("overlap_s")).otherwise(0.0)).alias("charging_s"),
        F.sum(F.when(F.col("status_code").isin(OCCUPIED, CHARGING), F.col("overlap_s")).otherwise(0.0)).alias("plugged_in_s"),
        F.sum(F.when(F.col("status_code") == FAULT, F.col("overlap_s")).otherwise(0.0)).alias("fault_s"),
    )
    w_start, w_end = _window(start_date, end_date)
    se = sessions.select(
        "station_id", "connector_id", "energy_kwh",
        local_ts(F.coalesce("charge_start_ts_utc", "plug_in_ts_utc")).alias("s_start"),
        local_ts(F.coalesce("charge_end_ts_utc", "plug_out_ts_utc")).alias("s_end"),
    )
    # a session with no duration puts all its energy in the hour it happened
    se = se.withColumn("s_end", F.when(F.col("s_end") > F.col("s_start"), F.col("s_end"))
                       .otherwise(F.col("s_start") + F.expr("INTERVAL 1 MICROSECOND")))
    se = se.withColumn("duration_s", epoch_s("s_end") - epoch_s("s_start")).select(
        "station_id", "connector_id", "energy_kwh", "duration_s",
        F.greatest("s_start", w_start).alias("start"), F.least("s_end", w_end).alias("end"),
    )
    energy = _split_by_hour(se, "start", "end").groupBy(*keys).agg(
        F.sum(F.col("energy_kwh") * F.col("overlap_s") / F.col("duration_s")).alias("energy_kwh")
    )
    grid = _hour_grid(connectors, start_date=start_date, end_date=end_date)
    out = grid.join(times, on=keys, how="left").join(energy, on=keys, how="left")
    out = out.select(
        F.to_date("hour_start").alias("date_local"), F.hour("hour_start").alias("hour_local"),
        "station_id", "connector_id", "rated_kw",
        F.lit(3600.0).alias("calendar_s"),
        (F.lit(3600.0) - F.coalesce(F.col("observed_s"), F.lit(0.0))).alias("status_unknown_s"),
        *[F.coalesce(F.col(c), F.lit(0.0)).alias(c) for c in ("charging_s", "plugged_in_s", "fault_s", "energy_kwh")],
        F.col("rated_kw").alias("rated_capacity_kwh"),      # rated kW x 1 h
    )
    return _with_pcts(out).select(
        "date_local", "hour_local", "station_id", "connector_id", "rated_kw", *_TIME_SUMS, *_PCTS,
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


def charging_connector_daily(
    connector_hourly: DataFrame, *, sessions: DataFrame, start_date: dt.date, end_date: dt.date,
) -> DataFrame:
    """Per connector and local day: the hourly sums, the four percentages, sessions and kWh per connector-day.

    Columns: date_local, station_id, connector_id, rated_kw, <time sums>, <four pcts>,
    sessions_per_connector_day, kwh_per_connector_day, definition_version.
    """
    h = connector_hourly.select("date_local", "station_id", "connector_id", "rated_kw", *_TIME_SUMS)
    keys = ["date_local", "station_id", "connector_id"]
    day = h.groupBy(*keys, "rated_kw").agg(*[F.sum(c).alias(c) for c in _TIME_SUMS])
    counts = (
        sessions.filter(F.col("event_date_local").between(F.lit(start_date), F.lit(end_date)))
        .groupBy(F.col("event_date_local").alias("date_local"), "station_id", "connector_id")
        .agg(F.count("session_id").alias("sessions"))
    )
    day = day.join(counts, on=keys, how="left")
    return _with_pcts(day).select(
        *keys, "rated_kw", *_TIME_SUMS, *_PCTS,
        F.coalesce(F.col("sessions"), F.lit(0)).cast("long").alias("sessions_per_connector_day"),
        F.col("energy_kwh").alias("kwh_per_connector_day"),
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


def peak_concurrency_hourly(status: DataFrame, *, start_date: dt.date, end_date: dt.date) -> DataFrame:
    """Most connectors of a station charging at once within each local hour (hours with charging only).

    Columns: date_local, hour_local, station_id, peak_concurrent_charging, definition_version.
    A connector that stops at the instant another starts is not counted twice (ends sort first).
    """
    iv = _status_intervals(status, start_date=start_date, end_date=end_date).filter(F.col("status_code") == CHARGING)
    events = iv.select("station_id", F.col("start").alias("ts"), F.lit(1).alias("delta")).unionByName(
        iv.select("station_id", F.col("end").alias("ts"), F.lit(-1).alias("delta"))
    )
    running = Window.partitionBy("station_id").orderBy("ts", "delta").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    following = Window.partitionBy("station_id").orderBy("ts", "delta").rowsBetween(1, 1)
    seg = events.select(
        "station_id", "ts",
        F.sum("delta").over(running).alias("charging_connectors"),
        F.max("ts").over(following).alias("next_ts"),
    ).filter(F.col("next_ts").isNotNull() & (F.col("charging_connectors") > 0))
    per_hour = _split_by_hour(seg, "ts", "next_ts").groupBy("station_id", "hour_start").agg(
        F.max("charging_connectors").cast("int").alias("peak_concurrent_charging")
    )
    return per_hour.select(F.to_date("hour_start").alias("date_local"), F.hour("hour_start").alias("hour_local"),
                           "station_id", "peak_concurrent_charging", F.lit(DEFINITIONS_VERSION).alias("definition_version"))


def _station_sums() -> list[Column]:
    return [F.countDistinct("connector_id").alias("connectors"), *[F.sum(c).alias(c) for c in _TIME_SUMS]]


def charging_station_hourly(connector_hourly: DataFrame, *, concurrency: DataFrame, stations: DataFrame) -> DataFrame:
    """Per station and local hour: connector-second sums, four percentages (ratios of sums), peak concurrency.

    Columns: date_local, hour_local, station_id, company_id, banner, connectors, <time sums>, <four pcts>,
    peak_concurrent_charging, definition_version.
    """
    keys = ["date_local", "hour_local", "station_id"]
    h = connector_hourly.select(*keys, "connector_id", *_TIME_SUMS).groupBy(*keys).agg(*_station_sums())
    out = h.join(concurrency.select(*keys, "peak_concurrent_charging"), on=keys, how="left").join(
        stations.select("station_id", "company_id", "banner"), on="station_id", how="left"
    )
    return _with_pcts(out).select(
        *keys, "company_id", "banner", "connectors", *_TIME_SUMS, *_PCTS,
        F.coalesce(F.col("peak_concurrent_charging"), F.lit(0)).alias("peak_concurrent_charging"),
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


LOSS_COLUMNS = ("traced_grid_kwh", "charge_in_battery_kwh", "charging_loss_kwh", "charging_loss_pct")


def station_charging_losses(sessions: DataFrame, *, truck_daily: DataFrame) -> DataFrame:
    """Charging losses per station and local day (the sessions' plug-in day): grid kWh of the sessions of
    battery-electric trucks with telematics that day, against the energy that reached their batteries.

    A truck-day's energy into the battery at standstill (``truck_energy_daily.charge_in_battery_kwh``) is
    shared among its sessions of that day by their kWh, so a truck charging at two stations splits it.
    Sessions without a truck, of other powertrains, or of trucks without telematics that day are not
    traced (their kWh stay out of ``traced_grid_kwh``). Like the truck-day figure this is an attribution
    by plug-in day: a session across midnight can leave one day negative; a month balances.

    Columns: date_local, station_id, traced_grid_kwh, charge_in_battery_kwh, charging_loss_kwh,
    charging_loss_pct.
    """
    se = sessions.filter(F.col("vin").isNotNull()).groupBy(
        F.col("event_date_local").alias("date_local"), "vin", "station_id").agg(F.sum("energy_kwh").alias("session_kwh"))
    td = truck_daily.filter(F.col("powertrain") == "BEV").select(
        "date_local", "vin", F.col("grid_kwh").alias("_truck_grid_kwh"), F.col("charge_in_battery_kwh").alias("_truck_in_kwh"))
    x = se.join(td, on=["date_local", "vin"], how="inner")
    x = x.withColumn("_in_kwh", F.col("_truck_in_kwh") * ratio("session_kwh", "_truck_grid_kwh"))
    out = x.groupBy("date_local", "station_id").agg(
        F.sum("session_kwh").alias("traced_grid_kwh"), F.sum("_in_kwh").alias("charge_in_battery_kwh"))
    out = out.withColumn("charging_loss_kwh", F.col("traced_grid_kwh") - F.col("charge_in_battery_kwh"))
    return out.select("date_local", "station_id", "traced_grid_kwh", "charge_in_battery_kwh", "charging_loss_kwh",
                      ratio("charging_loss_kwh", "traced_grid_kwh", 100.0).alias("charging_loss_pct"))


def charging_station_daily(connector_daily: DataFrame, *, concurrency: DataFrame, stations: DataFrame,
                           losses: DataFrame | None = None) -> DataFrame:
    """Per station and local day. Columns: date_local, station_id, company_id, banner, connectors,
    <time sums>, sessions, <four pcts>, sessions_per_connector_day, kwh_per_connector_day,
    peak_concurrent_charging, traced_grid_kwh, charge_in_battery_kwh, charging_loss_kwh, charging_loss_pct
    (``losses``: :func:`station_charging_losses`; null without it or for a day without traced sessions),
    definition_version."""
    keys = ["date_local", "station_id"]
    d = connector_daily.select(*keys, "connector_id", *_TIME_SUMS, "sessions_per_connector_day").groupBy(*keys).agg(
        *_station_sums(), F.sum("sessions_per_connector_day").alias("sessions"),
    )
    peak = concurrency.groupBy(*keys).agg(F.max("peak_concurrent_charging").alias("peak_concurrent_charging"))
    out = d.join(peak, on=keys, how="left").join(stations.select("station_id", "company_id", "banner"),
                                                 on="station_id", how="left")
    if losses is not None:
        out = out.join(losses.select(*keys, *LOSS_COLUMNS), on=keys, how="left")
    else:
        out = out.select("*", *[F.lit(None).cast("double").alias(c) for c in LOSS_COLUMNS])
    return _per_connector_day(_with_pcts(out.withColumn("connector_days", F.col("connectors")))).select(
        *keys, "company_id", "banner", "connectors", *_TIME_SUMS, "sessions", *_PCTS, "sessions_per_connector_day",
        "kwh_per_connector_day", F.coalesce(F.col("peak_concurrent_charging"), F.lit(0)).alias("peak_concurrent_charging"),
        *[F.col(c).cast("double").alias(c) for c in LOSS_COLUMNS], F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


def _per_connector_day(df: DataFrame) -> DataFrame:
    return df.withColumn("sessions_per_connector_day", ratio("sessions", "connector_days")).withColumn(
        "kwh_per_connector_day", ratio("energy_kwh", "connector_days")
    )


def charging_station_monthly(station_daily: DataFrame) -> DataFrame:
    """Per station and month from the daily rows. Columns: month_start, station_id, company_id, banner,
    connectors (the most of any day of the month), connector_days, <time sums>, sessions, <four pcts>,
    sessions_per_connector_day, kwh_per_connector_day, peak_concurrent_charging (max of the days),
    definition_version."""
    d = station_daily.select("date_local", "station_id", "company_id", "banner", "connectors", *_TIME_SUMS, "sessions",
                             "peak_concurrent_charging", "definition_version")
    m = d.groupBy(month_start("date_local").alias("month_start"), "station_id", "company_id", "banner").agg(
        F.max("connectors").alias("connectors"), F.sum("connectors").alias("connector_days"),
        *[F.sum(c).alias(c) for c in _TIME_SUMS],
        F.sum("sessions").alias("sessions"), F.max("peak_concurrent_charging").alias("peak_concurrent_charging"),
        F.array_join(F.array_sort(F.collect_set("definition_version")), "+").alias("definition_version"),
    )
    return _per_connector_day(_with_pcts(m)).select(
        "month_start", "station_id", "company_id", "banner", "connectors", "connector_days", *_TIME_SUMS, "sessions",
        *_PCTS, "sessions_per_connector_day", "kwh_per_connector_day", "peak_concurrent_charging", "definition_version",
    )


def charging_rollup(station_rows: DataFrame, *, period_col: str) -> DataFrame:
    """Company / banner / city roll-up of station daily (``date_local``) or monthly (``month_start``) rows.

    Columns: <period_col>, scope_level, scope_id, stations, connector_days, <time sums>, sessions,
    <four pcts>, sessions_per_connector_day, kwh_per_connector_day, max_station_peak_concurrent_charging,
    definition_version. (Concurrency does not add across stations: the roll-up reports the largest station peak.)
    """
    connector_days = "connectors" if period_col == "date_local" else "connector_days"
    d = station_rows.select(period_col, "station_id", "company_id", "banner", F.col(connector_days).alias("connector_days"),
                            *_TIME_SUMS, "sessions", "peak_concurrent_charging", "definition_version")
    out = rollup_scopes(d, period_cols=[period_col], aggs=[
        F.countDistinct("station_id").alias("stations"), F.sum("connector_days").alias("connector_days"),
        *[F.sum(c).alias(c) for c in _TIME_SUMS], F.sum("sessions").alias("sessions"),
        F.max("peak_concurrent_charging").alias("max_station_peak_concurrent_charging"),
        F.array_join(F.array_sort(F.collect_set("definition_version")), "+").alias("definition_version"),
    ])
    return _per_connector_day(_with_pcts(out)).select(
        period_col, "scope_level", "scope_id", "stations", "connector_days", *_TIME_SUMS, "sessions", *_PCTS,
        "sessions_per_connector_day", "kwh_per_connector_day", "max_station_peak_concurrent_charging",
        "definition_version",
    )
