"""Load flexibility of charging stations: energy that could have been moved in time without missing any
departure, and the peak a schedule using that room would have removed.

Per session (:func:`session_slack`), with ``connector_kw`` = the rated power of its connector:

* ``dwell_h`` = plug-out − plug-in; ``min_charge_h`` = energy ÷ connector_kw;
  ``slack_h`` = dwell_h − min_charge_h, the plugged-in time not needed to charge at full power.
* Status: ``ok``; ``energy_exceeds_capacity`` when energy > connector_kw × dwell_h (a data error: the
  meter, a timestamp or the rating is wrong) - its slack is clipped to 0, the excess is reported in
  ``capacity_excess_kwh``, and the session is never rescheduled: its metered energy stays where it was
  charged, as fixed load; ``no_connector_power`` when the connector has no rating (fixed load too).

Per session and local hour t (:func:`charging_flexibility_hourly`), ``energy_kwh`` is the energy as
charged (spread evenly over charge start → end, else plug-in → plug-out: the rule of the utilisation
KPIs, so ``as_charged_kwh`` equals ``gold_charging_station_hourly.energy_kwh``). A session may charge
in hour t at most ``cap`` = connector_kw × its plugged-in hours in t (or what it actually charged there,
if more: a meter that outran the rating is taken as fact, so the as-charged profile is always a valid
schedule). Then

* ``must_run`` = max(0, energy − Σ cap of its other hours): what hour t holds in every schedule that
  delivers the session's energy by plug-out;
* ``flexible`` = energy in t − must_run: what could be moved out of hour t into the session's other
  hours. Sessions on different connectors do not compete (no station power limit is known), so the
  station's ``flexible_kwh`` of an hour is exactly what that hour alone could shed. Hours do not add up:
  shedding several hours at once needs room in the others.

Per station and local day: ``day_peak_as_charged_kw`` = the highest hourly energy (kWh per hour = the
hour's mean kW); ``day_min_peak_kw`` = the lowest peak any schedule reaches that gives each session its
energy of that day within its plugged-in hours of that day and its caps (fixed sessions as charged);
``day_peak_removed_kw`` = the difference. A session across midnight keeps the energy it was charged on
each day on that day (conservative: moving energy across midnight is not counted in the peak). The
minimum is exact, found by bisection on the peak with a max-flow feasibility check
(:func:`minimum_peak_kw`); earliest-deadline-first is not exact once sessions have power limits.
"""
from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable, Mapping

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.kpi._common import epoch_s, local_ts, ratio

DEFINITIONS_VERSION = "charging_flex_defs_v2026.1"
OK, EXCEEDS, NO_POWER = "ok", "energy_exceeds_capacity", "no_connector_power"
# kWh a session may exceed connector_kw x dwell by before it is a data error: meters count in Wh and
# timestamps in seconds, so a session charged at exactly the rated power must not be flagged for rounding
CAPACITY_TOLERANCE_KWH = 1e-6
FORECAST_HISTORY_DAYS = 28


def _hour() -> Column:
    return F.expr("INTERVAL 1 HOUR")


def _micro() -> Column:
    return F.expr("INTERVAL 1 MICROSECOND")


# --- exact minimum peak (plain Python: one station-day at a time) ---------------------------------------
def _max_flow(n: int, edges: list[tuple[int, int, float]], source: int, sink: int) -> float:
    """Dinic's algorithm on a small graph of float capacities."""
    graph: list[list[int]] = [[] for _ in range(n)]
    to, cap = [], []
    for u, v, c in edges:
        graph[u].append(len(to)); to.append(v); cap.append(c)
        graph[v].append(len(to)); to.append(u); cap.append(0.0)
    eps, flow = 1e-12, 0.0
    while True:
        level = [-1] * n
        level[source] = 0
        queue = deque([source])
        while queue:
            u = queue.popleft()
            for e in graph[u]:
                if cap[e] > eps and level[to[e]] < 0:
                    level[to[e]] = level[u] + 1
                    queue.append(to[e])
        if level[sink] < 0:
            return flow
        it = [0] * n

        def push(u: int, pushed: float) -> float:
            if u == sink:
                return pushed
            while it[u] < len(graph[u]):
                e = graph[u][it[u]]
                v = to[e]
                if cap[e] > eps and level[v] == level[u] + 1:
                    got = push(v, min(pushed, cap[e]))
                    if got > eps:
                        cap[e] -= got
                        cap[e ^ 1] += got
                        return got
                it[u] += 1
            return 0.0

        while (got := push(source, float("inf"))) > eps:
            flow += got


def _feasible(peak_kw: float, sessions: list[tuple[float, dict]], base: dict, slots: list) -> bool:
    """Can every session get its energy within its caps while no hour exceeds ``peak_kw`` (x 1 h)?"""
    index = {t: 2 + len(sessions) + k for k, t in enumerate(slots)}
    source, sink = 0, 1
    edges = [(source, 2 + i, e) for i, (e, _) in enumerate(sessions)]
    edges += [(2 + i, index[t], c) for i, (_, caps) in enumerate(sessions) for t, c in caps.items()]
    edges += [(index[t], sink, max(0.0, peak_kw - base.get(t, 0.0))) for t in slots]
    total = sum(e for e, _ in sessions)
    return _max_flow(2 + len(sessions) + len(slots), edges, source, sink) >= total - 1e-12 * max(1.0, total)


def minimum_peak_kw(sessions: Iterable[tuple[float, Mapping]], base_kwh: Mapping | None = None, *,
                    rel_tol: float = 1e-12) -> float:
    """The lowest hourly peak (kW = kWh per 1-h slot) of any schedule giving each session its energy.

    ``sessions``: (energy_kwh, {slot: cap_kwh}) - the most the session can take in each slot;
    ``base_kwh``: {slot: kWh} fixed load. The answer P is the smallest with a feasible flow source →
    session (energy) → slot (cap) → sink (P − base); found by bisection to ``rel_tol`` and returned
    rounded to 1e-6 kW. Raises ValueError when a session's energy exceeds the sum of its caps.
    """
    base = {t: float(v) for t, v in (base_kwh or {}).items()}
    todo = [(float(e), {t: float(c) for t, c in caps.items() if c > 0}) for e, caps in sessions if e > 0]
    for e, caps in todo:
        if sum(caps.values()) < e - 1e-9 * max(1.0, e):
            raise ValueError(f"session energy {e} kWh exceeds its caps {caps}: no schedule exists")
    floor = max(base.values(), default=0.0)
    if not todo:
        return round(floor, 6)
    slots = sorted(set(base) | {t for _, caps in todo for t in caps})
    # every session anywhere within its caps: always feasible
    hi = max(base.get(t, 0.0) + sum(caps.get(t, 0.0) for _, caps in todo) for t in slots)
    lo = max(floor, (sum(e for e, _ in todo) + sum(base.values())) / len(slots))
    if _feasible(lo, todo, base, slots):
        return round(lo, 6)
    while hi - lo > rel_tol * max(1.0, hi):
        mid = (lo + hi) / 2
        if _feasible(mid, todo, base, slots):
            hi = mid
        else:
            lo = mid
    return round(hi, 6)


# --- sessions -----------------------------------------------------------------------------------------
def session_slack(sessions: DataFrame, *, connectors: DataFrame) -> DataFrame:
    """Per session: its connector's power, dwell, minimum charging time, slack and data-error status.

    Columns: session_id, station_id, connector_id, event_date_local, plug_in_local, plug_out_local,
    charge_start_local, charge_end_local (the as-charged interval), energy_kwh, connector_kw, dwell_h,
    min_charge_h, slack_h, slack_kwh (connector_kw x slack_h: the room left in the window),
    capacity_excess_kwh, flex_status, definition_version.
    """
    c = connectors.select("station_id", "connector_id", F.col("rated_kw").alias("connector_kw"))
    s = sessions.select(
        "session_id", "station_id", "connector_id", "event_date_local", "energy_kwh",
        local_ts("plug_in_ts_utc").alias("plug_in_local"), local_ts("plug_out_ts_utc").alias("plug_out_local"),
        local_ts(F.coalesce("charge_start_ts_utc", "plug_in_ts_utc")).alias("charge_start_local"),
        local_ts(F.coalesce("charge_end_ts_utc", "plug_out_ts_utc")).alias("charge_end_local"),
    ).join(c, on=["station_id", "connector_id"], how="left")
    # a charging interval of no duration puts its energy in the hour it happened (as the utilisation KPIs do)
    s = s.withColumn("charge_end_local", F.when(F.col("charge_end_local") > F.col("charge_start_local"),
                                                F.col("charge_end_local")).otherwise(F.col("charge_start_local") + _micro()))
    dwell_h = F.greatest(epoch_s("plug_out_local") - epoch_s("plug_in_local"), F.lit(0.0)) / F.lit(3600.0)
    s = s.withColumn("dwell_h", dwell_h).withColumn("min_charge_h", ratio("energy_kwh", "connector_kw"))
    status = (F.when(F.col("connector_kw").isNull() | (F.col("connector_kw") <= 0), F.lit(NO_POWER))
              .when(F.col("energy_kwh") > F.col("connector_kw") * F.col("dwell_h") + F.lit(CAPACITY_TOLERANCE_KWH),
                    F.lit(EXCEEDS))
              .otherwise(F.lit(OK)))
    s = s.withColumn("flex_status", status)
    ok = F.col("flex_status") == OK
    s = s.withColumn("slack_h", F.when(ok, F.greatest(F.col("dwell_h") - F.col("min_charge_h"), F.lit(0.0)))
                     .otherwise(F.lit(0.0)))
    return s.select(
        "session_id", "station_id", "connector_id", "event_date_local", "plug_in_local", "plug_out_local",
        "charge_start_local", "charge_end_local", F.col("energy_kwh").cast("double").alias("energy_kwh"),
        F.col("connector_kw").cast("double").alias("connector_kw"), "dwell_h", "min_charge_h", "slack_h",
        F.when(ok, F.col("connector_kw") * F.col("slack_h")).otherwise(F.lit(0.0)).alias("slack_kwh"),
        F.when(F.col("flex_status") == EXCEEDS, F.col("energy_kwh") - F.col("connector_kw") * F.col("dwell_h"))
        .otherwise(F.lit(0.0)).alias("capacity_excess_kwh"),
        "flex_status", F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


def _overlap_h(start: str, end: str) -> Column:
    """Hours of [start, end) inside [hour_start, hour_start + 1 h)."""
    lo = F.greatest(F.col(start), F.col("hour_start"))
    hi = F.least(F.col(end), F.col("hour_start") + _hour())
    return F.greatest(epoch_s(hi) - epoch_s(lo), F.lit(0.0)) / F.lit(3600.0)


def session_hours(slack: DataFrame) -> DataFrame:
    """One row per session and local hour it is plugged in or charging in, with its as-charged energy,
    cap, must-run and flexible energy and its share of slack hours.

    Columns: session_id, station_id, flex_status, hour_start, plugged_h, energy_kwh, cap_kwh, must_run_kwh,
    flexible_kwh, slack_h, capacity_excess_kwh.
    """
    span_start = F.least("plug_in_local", "charge_start_local")
    span_end = F.greatest("plug_out_local", "charge_end_local")
    hours = F.sequence(F.date_trunc("hour", span_start), F.date_trunc("hour", span_end - _micro()), _hour())
    h = slack.withColumn("hour_start", F.explode(hours))
    charge_h = (epoch_s("charge_end_local") - epoch_s("charge_start_local")) / F.lit(3600.0)
    h = h.withColumn("plugged_h", _overlap_h("plug_in_local", "plug_out_local")).withColumn(
        "energy_h_kwh", F.col("energy_kwh") * _overlap_h("charge_start_local", "charge_end_local") / charge_h)
    ok = F.col("flex_status") == OK
    # fixed sessions may take exactly what they charged: no room to move
    h = h.withColumn("cap_kwh", F.when(ok, F.greatest(F.col("connector_kw") * F.col("plugged_h"), F.col("energy_h_kwh")))
                     .otherwise(F.col("energy_h_kwh")))
    session = Window.partitionBy("session_id", "station_id").rowsBetween(Window.unboundedPreceding,
                                                                        Window.unboundedFollowing)
    others_cap = F.sum("cap_kwh").over(session) - F.col("cap_kwh")
    must = F.least(F.col("energy_h_kwh"), F.greatest(F.col("energy_kwh") - others_cap, F.lit(0.0)))
    h = h.withColumn("must_run_kwh", F.when(ok, must).otherwise(F.col("energy_h_kwh")))
    h = h.filter((F.col("plugged_h") > 0) | (F.col("energy_h_kwh") > 0))
    return h.select(
        "session_id", "station_id", "flex_status", "hour_start", "plugged_h",
        F.col("energy_h_kwh").alias("energy_kwh"), "cap_kwh", "must_run_kwh",
        (F.col("energy_h_kwh") - F.col("must_run_kwh")).alias("flexible_kwh"),
        F.when(F.col("dwell_h") > 0, F.col("slack_h") * F.col("plugged_h") / F.col("dwell_h"))
        .otherwise(F.lit(0.0)).alias("slack_h"),
        # the excess of a flagged session sits where its energy was charged
        F.coalesce(F.col("capacity_excess_kwh") * ratio("energy_h_kwh", "energy_kwh"), F.lit(0.0)).alias("capacity_excess_kwh"),
    )


_PEAK_SCHEMA = "station_id string, date_local date, day_peak_as_charged_kw double, day_min_peak_kw double"


def _station_day_peaks(rows: pd.DataFrame) -> pd.DataFrame:
    """One station-day's session-hours -> its as-charged and minimum hourly peak (kW)."""
    load = rows.groupby("hour_local")["energy_kwh"].sum()
    fixed = rows[rows["flex_status"] != OK]
    base = fixed.groupby("hour_local")["energy_kwh"].sum().to_dict()
    movable = rows[rows["flex_status"] == OK]
    pieces = [(float(g["energy_kwh"].sum()), dict(zip(g["hour_local"].astype(int), g["cap_kwh"].astype(float))))
              for _, g in movable.groupby("session_id")]
    return pd.DataFrame([{
        "station_id": rows["station_id"].iloc[0], "date_local": rows["date_local"].iloc[0],
        "day_peak_as_charged_kw": float(load.max()) if len(load) else 0.0,
        "day_min_peak_kw": minimum_peak_kw(pieces, base),
    }])


def station_day_peaks(hours: DataFrame) -> DataFrame:
    """Per station and local day with sessions: ``day_peak_as_charged_kw`` and ``day_min_peak_kw``.

    The optimisation is not expressible in Spark's built-ins; it runs per station-day (a few dozen
    session-hours) in Python. Columns: station_id, date_local, day_peak_as_charged_kw, day_min_peak_kw.
    """
    h = hours.select("station_id", "session_id", "flex_status", F.to_date("hour_start").alias("date_local"),
                     F.hour("hour_start").alias("hour_local"), "energy_kwh", "cap_kwh")
    return h.groupBy("station_id", "date_local").applyInPandas(_station_day_peaks, _PEAK_SCHEMA).select(
        "station_id", "date_local", "day_peak_as_charged_kw", "day_min_peak_kw")


_HOURLY_SUMS = ("plugged_in_h", "slack_h", "as_charged_kwh", "must_run_kwh", "flexible_kwh", "capacity_excess_kwh")
_HOURLY_COUNTS = ("sessions", "flexible_sessions", "capacity_exceeded_sessions", "unrated_sessions")


def charging_flexibility_hourly(
    sessions: DataFrame, *, connectors: DataFrame, stations: DataFrame, start_date: dt.date, end_date: dt.date,
) -> DataFrame:
    """Per charging station and local hour of [start_date, end_date] (every station with connectors, every
    hour). ``sessions`` must include the sessions plugged in the day before (a session across midnight).

    Columns: date_local, hour_local, station_id, company_id, banner, sessions (plugged in or charging in
    the hour), flexible_sessions (of them, with slack), capacity_exceeded_sessions, unrated_sessions,
    plugged_in_h, slack_h, as_charged_kwh, must_run_kwh, flexible_kwh, flexible_share_pct,
    capacity_excess_kwh, day_peak_as_charged_kw, day_min_peak_kw, day_peak_removed_kw (the station-day's
    values, repeated on each of its hours: take one, never sum them), definition_version.
    """
    w_start = F.lit(start_date).cast("timestamp")
    w_end = F.lit(end_date + dt.timedelta(days=1)).cast("timestamp")
    hours = session_hours(session_slack(sessions, connectors=connectors)).filter(
        (F.col("hour_start") >= w_start) & (F.col("hour_start") < w_end))
    keys = ["station_id", "hour_start"]

    def count(cond: Column) -> Column:
        return F.count_distinct(F.when(cond, F.col("session_id")))

    per_hour = hours.groupBy(*keys).agg(
        count(F.lit(True)).alias("sessions"),
        count(F.col("slack_h") > 0).alias("flexible_sessions"),
        count(F.col("flex_status") == EXCEEDS).alias("capacity_exceeded_sessions"),
        count(F.col("flex_status") == NO_POWER).alias("unrated_sessions"),
        F.sum("plugged_h").alias("plugged_in_h"), F.sum("slack_h").alias("slack_h"),
        F.sum("energy_kwh").alias("as_charged_kwh"), F.sum("must_run_kwh").alias("must_run_kwh"),
        F.sum("flexible_kwh").alias("flexible_kwh"), F.sum("capacity_excess_kwh").alias("capacity_excess_kwh"),
    )
    grid = connectors.select("station_id").distinct().select(
        "station_id", F.explode(F.sequence(w_start, w_end - _hour(), _hour())).alias("hour_start"))
    out = grid.join(per_hour, on=keys, how="left").withColumn("date_local", F.to_date("hour_start"))
    out = out.join(station_day_peaks(hours), on=["station_id", "date_local"], how="left").join(
        stations.select("station_id", "company_id", "banner"), on="station_id", how="left")
    zero = F.lit(0.0)
    out = out.select(
        "date_local", F.hour("hour_start").alias("hour_local"), "station_id", "company_id", "banner",
        *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in _HOURLY_COUNTS],
        *[F.coalesce(F.col(c), zero).alias(c) for c in _HOURLY_SUMS],
        F.coalesce(F.col("day_peak_as_charged_kw"), zero).alias("day_peak_as_charged_kw"),
        F.coalesce(F.col("day_min_peak_kw"), zero).alias("day_min_peak_kw"),
    )
    return out.select(
        "date_local", "hour_local", "station_id", "company_id", "banner", *_HOURLY_COUNTS,
        "plugged_in_h", "slack_h", "as_charged_kwh", "must_run_kwh", "flexible_kwh",
        ratio("flexible_kwh", "as_charged_kwh", 100.0).alias("flexible_share_pct"), "capacity_excess_kwh",
        "day_peak_as_charged_kw", "day_min_peak_kw",
        (F.col("day_peak_as_charged_kw") - F.col("day_min_peak_kw")).alias("day_peak_removed_kw"),
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )


# --- the forecast day ---------------------------------------------------------------------------------
def charging_flexibility_forecast(forecast: DataFrame, *, flexibility_hourly: DataFrame,
                                  history_days: int = FORECAST_HISTORY_DAYS) -> DataFrame:
    """Flexible energy per station and hour of the forecast day of each forecast run.

    A run of as-of day D (``gold_charging_forecast``, ``forecast_date_local`` = D) forecasts from D + 1
    00:00; its forecast day is D + 1 (leads 1-24). The estimate is the hour's P50 x the station's
    historical flexible share of that local hour: Σ flexible_kwh ÷ Σ as_charged_kwh over the
    ``history_days`` days D − history_days + 1 .. D of ``flexibility_hourly`` (ratio of sums, basis
    ``station_hour``); an hour of day without charged energy in that history takes the station's share
    over all hours (``station``); a station without any is null (``none``).

    Columns: forecast_date_local, date_local, hour_local, station_id, ts_local, lead_h, p50_kwh,
    flexible_share_pct, flexible_p50_kwh, share_basis, history_days, method, model_version,
    definition_version.
    """
    run_day = F.col("forecast_date_local")
    fc = forecast.select("forecast_date_local", "station_id", "ts_local", "lead_h", "p50_kwh", "method",
                         "model_version").filter(F.to_date("ts_local") == F.date_add(run_day, 1))
    runs = fc.select("forecast_date_local", "station_id").distinct()
    hist = flexibility_hourly.select("date_local", "hour_local", "station_id", "as_charged_kwh", "flexible_kwh")
    window = runs.join(hist, on=(runs["station_id"] == hist["station_id"])
                       & hist["date_local"].between(F.date_sub(run_day, history_days - 1), run_day), how="inner"
                       ).select("forecast_date_local", runs["station_id"], "date_local", "hour_local",
                                "as_charged_kwh", "flexible_kwh")
    run_keys = ["forecast_date_local", "station_id"]
    by_hour = window.groupBy(*run_keys, "hour_local").agg(
        ratio(F.sum("flexible_kwh"), F.sum("as_charged_kwh"), 100.0).alias("_hour_share_pct"))
    by_station = window.groupBy(*run_keys).agg(
        ratio(F.sum("flexible_kwh"), F.sum("as_charged_kwh"), 100.0).alias("_station_share_pct"),
        F.count_distinct("date_local").alias("history_days"))
    out = (fc.withColumn("hour_local", F.hour("ts_local"))
           .join(by_hour, on=[*run_keys, "hour_local"], how="left").join(by_station, on=run_keys, how="left"))
    share = F.coalesce("_hour_share_pct", "_station_share_pct")
    basis = (F.when(F.col("_hour_share_pct").isNotNull(), F.lit("station_hour"))
             .when(F.col("_station_share_pct").isNotNull(), F.lit("station")).otherwise(F.lit("none")))
    return out.select(
        "forecast_date_local", F.to_date("ts_local").alias("date_local"), "hour_local", "station_id", "ts_local",
        "lead_h", "p50_kwh", share.alias("flexible_share_pct"),
        (F.col("p50_kwh") * share / F.lit(100.0)).alias("flexible_p50_kwh"), basis.alias("share_basis"),
        F.coalesce(F.col("history_days"), F.lit(0)).cast("long").alias("history_days"), "method", "model_version",
        F.lit(DEFINITIONS_VERSION).alias("definition_version"),
    )
