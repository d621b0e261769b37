"""Truck energy per truck-day and per fleet-month, from GB/T 32960 telematics, weighbridge tickets and
charging sessions.

Rules (parameters in ``rule_parameters.csv``, rules ``truck_energy`` and ``battery_grid_check``):

* Frames of a truck are ordered by time; each frame opens an interval to the truck's NEXT frame.
* Battery energy is integrated: V x I x dt, holding the frame's voltage and current until the next
  frame (left Riemann sum). An interval longer than ``max_integration_gap_s`` (300 s) is a gap and is
  not integrated; its distance is reported (``distance_km``) but left out of the battery intensities,
  which divide by ``integrated_distance_km`` only. Positive current = discharge; negative current
  while moving = regenerative braking; negative current at standstill (speed 0 and no odometer
  advance) = charging, which is not consumption.
* SOC cross-check: SOC drops x pack kWh over integrated intervals, leaving out standstill SOC rises
  (charging or a swap). A standstill rise of ``swap_min_soc_jump_pct`` points or more without
  charging current is a suspected battery swap.
* Hydrogen: the sum of the DECREASES of remaining-H2 % x tank kg between consecutive frames (gaps
  included: the level is a state, not a rate), so a refill mid-day does not cancel consumption the
  way start - end levels would. Diesel: the increases of the cumulative fuel counter (L).
* Grid side: energy of the truck's charging sessions on their plug-in local day. Per truck-day it is
  an attribution by charging day; it is meaningful over a month. Battery swap stations charge packs
  off the truck and are not in the sessions.
* Loaded vs empty: a truck is loaded from a weighbridge ticket's load time until the first stop of
  at least ``unload_stop_min_s`` (speed 0) that starts after it has moved ``min_loaded_km`` from the
  loading point, or the truck's next ticket, and at most ``max_loaded_h`` hours. Tonne-km = net
  tonnes x loaded km; the energy of the empty return stays in the numerator of kWh per tonne-km.
* Day = local day (``event_date_local``) of the interval's first frame; an interval across midnight
  (at most 5 min when integrated) stays in the day it started.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.kpi._common import epoch_s, month_start, ratio

_UNBOUNDED = (Window.unboundedPreceding, Window.unboundedFollowing)

_SUMS = (
    "frames", "integrated_s", "gap_s", "distance_km", "integrated_distance_km", "loaded_km", "empty_km",
    "loaded_integrated_km", "empty_integrated_km", "battery_discharge_kwh", "regen_kwh", "battery_net_kwh",
    "loaded_battery_net_kwh", "empty_battery_net_kwh", "charge_in_battery_kwh", "soc_net_kwh", "suspected_swaps",
    "h2_used_kg", "h2_refilled_kg", "loaded_h2_kg", "diesel_l", "tonne_km", "integrated_tonne_km",
    "tickets", "delivered_t", "charging_sessions", "grid_kwh",
)
_RATIOS = (
    "battery_kwh_per_100km", "soc_kwh_per_100km", "grid_kwh_per_100km", "h2_kg_per_100km", "diesel_l_per_100km",
    "loaded_battery_kwh_per_100km", "empty_battery_kwh_per_100km", "battery_kwh_per_tkm", "h2_kg_per_tkm",
    "diesel_l_per_tkm", "battery_kwh_per_delivered_t", "grid_kwh_per_delivered_t", "h2_kg_per_delivered_t",
    "diesel_l_per_delivered_t", "regen_share_pct", "integration_coverage_pct",
)


def _loaded_state(frames: DataFrame, tickets: DataFrame, *, unload_stop_min_s: float, min_loaded_km: float,
                  max_loaded_h: float) -> DataFrame:
    """Add ticket_id, net_t and ``loaded`` to every frame (see the module rule)."""
    t = tickets.select("vin", "ticket_id", F.col("load_ts_utc").alias("ts"), "net_t", F.lit(1).alias("is_ticket"))
    f = frames.withColumn("ticket_id", F.lit(None).cast("string")).withColumn("net_t", F.lit(None).cast("double")).withColumn(
        "is_ticket", F.lit(0))
    both = f.unionByName(t, allowMissingColumns=True)
    # a ticket sorts before a frame of the same instant, so that frame is already loaded
    upto = Window.partitionBy("vin").orderBy("ts", F.desc("is_ticket")).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    both = both.select(
        *[c for c in both.columns if c not in ("ticket_id", "net_t")],
        F.last("ticket_id", ignorenulls=True).over(upto).alias("ticket_id"),
        F.last("net_t", ignorenulls=True).over(upto).alias("net_t"),
        F.last(F.when(F.col("is_ticket") == 1, F.col("ts")), ignorenulls=True).over(upto).alias("load_ts"),
    ).filter(F.col("is_ticket") == 0).drop("is_ticket")

    ordered = Window.partitionBy("vin").orderBy("ts")
    prev = ordered.rowsBetween(-1, -1)
    upto_frame = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    both = both.withColumn("_prev_stopped", F.first("stopped").over(prev)).withColumn(
        "_run_id", F.sum(F.when(F.col("_prev_stopped").eqNullSafe(F.col("stopped")), 0).otherwise(1)).over(upto_frame)
    )
    run = Window.partitionBy("vin", "_run_id").orderBy("ts").rowsBetween(*_UNBOUNDED)
    ticket = Window.partitionBy("vin", "ticket_id").orderBy("ts").rowsBetween(*_UNBOUNDED)
    both = both.withColumn("_run_start", F.min("ts").over(run)).withColumn(
        "_run_s", epoch_s(F.max(F.coalesce("next_ts", "ts")).over(run)) - epoch_s(F.min("ts").over(run))
    ).withColumn("_km_since_load", F.col("odometer_km") - F.min("odometer_km").over(ticket))
    unload_candidate = (
        F.col("stopped") & (F.col("_run_s") >= F.lit(float(unload_stop_min_s)))
        & (F.col("_km_since_load") >= F.lit(float(min_loaded_km))) & (F.col("ts") >= F.col("load_ts"))
    )
    both = both.withColumn("unload_ts", F.min(F.when(unload_candidate, F.col("_run_start"))).over(ticket))
    within_max = epoch_s("ts") < epoch_s("load_ts") + F.lit(float(max_loaded_h) * 3600.0)
    loaded = (
        F.col("ticket_id").isNotNull() & (F.col("ts") >= F.col("load_ts")) & within_max
        & (F.col("unload_ts").isNull() | (F.col("ts") < F.col("unload_ts")))
    )
    return both.withColumn("loaded", F.coalesce(loaded, F.lit(False))).drop(
        "_prev_stopped", "_run_id", "_run_start", "_run_s", "_km_since_load")


def truck_intervals(
    telematics: DataFrame, *, trucks: DataFrame, tickets: DataFrame, max_integration_gap_s: float,
    unload_stop_min_s: float, min_loaded_km: float, max_loaded_h: float, swap_min_soc_jump_pct: float,
    rule_version: str,
) -> DataFrame:
    """One row per frame and the interval to the truck's next frame.

    Columns: vin, company_id, powertrain, date_local, ts, next_ts, dt_s, integrated, moving, loaded,
    ticket_id, net_t, soc_pct, distance_km, integrated_distance_km, battery_discharge_kwh, regen_kwh,
    charge_in_battery_kwh, soc_net_kwh, suspected_swap, h2_used_kg, h2_refilled_kg, diesel_l, rule_version.
    """
    tr = trucks.select("vin", "company_id", "powertrain", "battery_kwh", "h2_tank_kg")
    f = telematics.select(
        "vin", F.col("event_ts_utc").alias("ts"), F.col("event_date_local").alias("date_local"), "speed_kmh",
        "odometer_km", "total_voltage_v", "total_current_a", "soc_pct", "h2_remaining_pct", "fuel_total_l",
    )
    nxt = Window.partitionBy("vin").orderBy("ts").rowsBetween(1, 1)
    for c in ("ts", "odometer_km", "soc_pct", "h2_remaining_pct", "fuel_total_l"):
        f = f.withColumn(f"next_{c}" if c != "ts" else "next_ts", F.first(c).over(nxt))
    odo_step = F.col("next_odometer_km") - F.col("odometer_km")
    # moving = speed above 0 OR the odometer advancing (a truck pulling away can report speed 0 while
    # its odometer already steps); standstill needs both to say so. Unknown counts as not moving.
    moving = F.coalesce(F.col("speed_kmh") > 0, F.lit(False)) | F.coalesce(odo_step > 0, F.lit(False))
    f = f.withColumn("moving", moving).withColumn(
        "stopped", ~F.col("moving"))
    f = _loaded_state(f, tickets.select("vin", "ticket_id", "load_ts_utc", "net_t"), unload_stop_min_s=unload_stop_min_s,
                      min_loaded_km=min_loaded_km, max_loaded_h=max_loaded_h)
    f = f.join(tr, on="vin", how="left")

    dt_s = epoch_s("next_ts") - epoch_s("ts")
    current = F.col("total_current_a")
    integrated = (
        F.col("next_ts").isNotNull() & (dt_s <= F.lit(float(max_integration_gap_s)))
        & F.col("total_voltage_v").isNotNull() & current.isNotNull()
    )
    e_kwh = F.col("total_voltage_v") * current * dt_s / F.lit(3.6e6)
    distance = F.when(odo_step >= 0, odo_step)
    soc_drop = F.col("soc_pct") - F.col("next_soc_pct")
    soc_counted = integrated & ~(F.col("stopped") & (soc_drop < 0))
    h2_drop = F.col("h2_remaining_pct") - F.col("next_h2_remaining_pct")
    fuel_step = F.col("next_fuel_total_l") - F.col("fuel_total_l")
    swap = F.col("stopped") & ((-soc_drop) >= F.lit(float(swap_min_soc_jump_pct))) & (F.coalesce(current, F.lit(0.0)) >= 0)

    def when_(cond: Column, value: Column) -> Column:
        return F.when(cond, value).otherwise(F.lit(0.0))

    return f.select(
        "vin", "company_id", "powertrain", "date_local", "ts", "next_ts", dt_s.alias("dt_s"),
        integrated.alias("integrated"), "moving", "loaded", "ticket_id", "net_t", "soc_pct",
        distance.alias("distance_km"),
        F.when(integrated, distance).alias("integrated_distance_km"),
        when_(integrated & (current > 0), e_kwh).alias("battery_discharge_kwh"),
        when_(integrated & (current < 0) & F.col("moving"), -e_kwh).alias("regen_kwh"),
        when_(integrated & (current < 0) & F.col("stopped"), -e_kwh).alias("charge_in_battery_kwh"),
        when_(soc_counted & soc_drop.isNotNull(), soc_drop * F.col("battery_kwh") / 100.0).alias("soc_net_kwh"),
        F.coalesce(swap, F.lit(False)).alias("suspected_swap"),
        when_(h2_drop > 0, h2_drop * F.col("h2_tank_kg") / 100.0).alias("h2_used_kg"),
        when_(h2_drop < 0, -h2_drop * F.col("h2_tank_kg") / 100.0).alias("h2_refilled_kg"),
        when_(fuel_step > 0, fuel_step).alias("diesel_l"),
        F.lit(rule_version).alias("rule_version"),
    )


def _with_ratios(df: DataFrame) -> DataFrame:
    pairs = {
        "battery_kwh_per_100km": ("battery_net_kwh", "integrated_distance_km", 100.0),
        "soc_kwh_per_100km": ("soc_net_kwh", "integrated_distance_km", 100.0),
        "grid_kwh_per_100km": ("grid_kwh", "distance_km", 100.0),
        "h2_kg_per_100km": ("h2_used_kg", "distance_km", 100.0),
        "diesel_l_per_100km": ("diesel_l", "distance_km", 100.0),
        "loaded_battery_kwh_per_100km": ("loaded_battery_net_kwh", "loaded_integrated_km", 100.0),
        "empty_battery_kwh_per_100km": ("empty_battery_net_kwh", "empty_integrated_km", 100.0),
        "battery_kwh_per_tkm": ("battery_net_kwh", "integrated_tonne_km", 1.0),
        "h2_kg_per_tkm": ("h2_used_kg", "tonne_km", 1.0),
        "diesel_l_per_tkm": ("diesel_l", "tonne_km", 1.0),
        "battery_kwh_per_delivered_t": ("battery_net_kwh", "delivered_t", 1.0),
        "grid_kwh_per_delivered_t": ("grid_kwh", "delivered_t", 1.0),
        "h2_kg_per_delivered_t": ("h2_used_kg", "delivered_t", 1.0),
        "diesel_l_per_delivered_t": ("diesel_l", "delivered_t", 1.0),
        "regen_share_pct": ("regen_kwh", "battery_discharge_kwh", 100.0),
        "integration_coverage_pct": ("integrated_s", F.col("integrated_s") + F.col("gap_s"), 100.0),
    }
    for name, (num, den, scale) in pairs.items():
        df = df.withColumn(name, ratio(num, den, scale))
    return df


def interval_sums(intervals: DataFrame) -> DataFrame:
    """Intervals summed per truck-day and ticket: everything the daily rows and the trips need, in a few rows
    per truck-day instead of one per frame (what a build keeps in memory between the two tables).

    Columns: date_local, vin, company_id, powertrain, ticket_id, rule_version, <daily sums>, first_ts,
    soc_first_pct, last_ts, soc_last_pct, loaded_frames, trip_loaded_km, trip_loaded_battery_net_kwh,
    trip_loaded_h2_kg.
    """
    net = F.col("battery_discharge_kwh") - F.col("regen_kwh")
    loaded, integ = F.col("loaded"), F.col("integrated")
    zero = F.lit(0.0)
    return intervals.groupBy("date_local", "vin", "company_id", "powertrain", "ticket_id", "rule_version").agg(
        F.count(F.lit(1)).alias("frames"),
        F.sum(F.when(integ, F.col("dt_s")).otherwise(zero)).alias("integrated_s"),
        F.sum(F.when(~integ & F.col("next_ts").isNotNull(), F.col("dt_s")).otherwise(zero)).alias("gap_s"),
        F.sum(F.coalesce("distance_km", zero)).alias("distance_km"),
        F.sum(F.coalesce("integrated_distance_km", zero)).alias("integrated_distance_km"),
        F.sum(F.when(loaded, F.col("distance_km")).otherwise(zero)).alias("loaded_km"),
        F.sum(F.when(loaded & integ, F.col("distance_km")).otherwise(zero)).alias("loaded_integrated_km"),
        F.sum(F.when(~loaded & integ, F.col("distance_km")).otherwise(zero)).alias("empty_integrated_km"),
        F.sum("battery_discharge_kwh").alias("battery_discharge_kwh"), F.sum("regen_kwh").alias("regen_kwh"),
        F.sum(F.when(loaded, net).otherwise(zero)).alias("loaded_battery_net_kwh"),
        F.sum(F.when(~loaded, net).otherwise(zero)).alias("empty_battery_net_kwh"),
        F.sum("charge_in_battery_kwh").alias("charge_in_battery_kwh"), F.sum("soc_net_kwh").alias("soc_net_kwh"),
        F.sum(F.col("suspected_swap").cast("int")).alias("suspected_swaps"),
        F.sum("h2_used_kg").alias("h2_used_kg"), F.sum("h2_refilled_kg").alias("h2_refilled_kg"),
        F.sum(F.when(loaded, F.col("h2_used_kg")).otherwise(zero)).alias("loaded_h2_kg"),
        F.sum("diesel_l").alias("diesel_l"),
        F.sum(F.when(loaded, F.col("distance_km") * F.col("net_t")).otherwise(zero)).alias("tonne_km"),
        F.sum(F.when(loaded & integ, F.col("distance_km") * F.col("net_t")).otherwise(zero)).alias("integrated_tonne_km"),
        F.min("ts").alias("first_ts"), F.min_by("soc_pct", "ts").alias("soc_first_pct"),
        F.max("ts").alias("last_ts"), F.max_by("soc_pct", "ts").alias("soc_last_pct"),
        # the trip of the ticket: its loaded intervals only
        F.sum(loaded.cast("int")).alias("loaded_frames"),
        F.sum(F.when(loaded, F.coalesce("distance_km", zero))).alias("trip_loaded_km"),
        F.sum(F.when(loaded, net)).alias("trip_loaded_battery_net_kwh"),
        F.sum(F.when(loaded, F.col("h2_used_kg"))).alias("trip_loaded_h2_kg"),
    )


# the sums of ``interval_sums`` added up per truck-day; the rest of _SUMS is derived from them or joined
_DAY_SUMS = tuple(c for c in _SUMS if c not in (
    "empty_km", "battery_net_kwh", "tickets", "delivered_t", "charging_sessions", "grid_kwh"))


def truck_energy_daily(sums: DataFrame, *, tickets: DataFrame, charging_sessions: DataFrame) -> DataFrame:
    """Per truck and local day, from ``interval_sums``: distances, battery / SOC / grid / H2 / diesel energy,
    loaded-empty split, tonne-km, delivered tonnes and the intensities.

    Columns: date_local, vin, company_id, powertrain, <sums: see _SUMS>, soc_start_pct, soc_end_pct,
    <ratios: see _RATIOS>, rule_version.
    """
    day = sums.groupBy("date_local", "vin", "company_id", "powertrain").agg(
        *[F.sum(c).alias(c) for c in _DAY_SUMS],
        F.min_by("soc_first_pct", "first_ts").alias("soc_start_pct"),
        F.max_by("soc_last_pct", "last_ts").alias("soc_end_pct"),
        F.array_join(F.array_sort(F.collect_set("rule_version")), "+").alias("rule_version"),
    ).withColumn("battery_net_kwh", F.col("battery_discharge_kwh") - F.col("regen_kwh")).withColumn(
        "empty_km", F.col("distance_km") - F.col("loaded_km"))
    keys = ["date_local", "vin"]
    tk = tickets.groupBy(F.col("event_date_local").alias("date_local"), "vin").agg(
        F.count("ticket_id").alias("tickets"), F.sum("net_t").alias("delivered_t"))
    grid = charging_sessions.filter(F.col("vin").isNotNull()).groupBy(
        F.col("event_date_local").alias("date_local"), "vin").agg(
        F.count("session_id").alias("charging_sessions"), F.sum("energy_kwh").alias("grid_kwh"))
    # days with tickets or charging but no telematics are dropped: every intensity needs distance
    day = day.join(tk, on=keys, how="left").join(grid, on=keys, how="left")
    day = day.fillna({"tickets": 0, "delivered_t": 0.0, "charging_sessions": 0, "grid_kwh": 0.0})
    return _with_ratios(day).select(
        "date_local", "vin", "company_id", "powertrain", *_SUMS, "soc_start_pct", "soc_end_pct", *_RATIOS, "rule_version",
    )


def truck_energy_monthly(daily: DataFrame, *, grain: str = "fleet") -> DataFrame:
    """Monthly ratios of sums per truck (``grain='truck'``: month_start, vin, company_id, powertrain) or per
    fleet (``grain='fleet'``: month_start, company_id, powertrain, trucks). Also: truck_days, <sums>,
    soc_start_pct / soc_end_pct (truck grain), <ratios>, rule_version."""
    if grain not in ("truck", "fleet"):
        raise ValueError("grain must be 'truck' or 'fleet'")
    d = daily.select("date_local", "vin", "company_id", "powertrain", *_SUMS, "soc_start_pct", "soc_end_pct", "rule_version")
    keys = [month_start("date_local").alias("month_start"), "company_id", "powertrain"]
    extra = []
    if grain == "truck":
        keys.insert(1, "vin")
        extra = [F.min_by("soc_start_pct", "date_local").alias("soc_start_pct"),
                 F.max_by("soc_end_pct", "date_local").alias("soc_end_pct")]
    else:
        extra = [F.countDistinct("vin").alias("trucks")]
    m = d.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("truck_days"), *[F.sum(c).alias(c) for c in _SUMS], *extra,
        F.array_join(F.array_sort(F.collect_set("rule_version")), "+").alias("rule_version"),
    )
    if grain == "truck":
        head = ["month_start", "vin", "company_id", "powertrain"]
    else:
        head = ["month_start", "company_id", "powertrain", "trucks"]
    tail = ["soc_start_pct", "soc_end_pct"] if grain == "truck" else []
    return _with_ratios(m).select(*head, "truck_days", *_SUMS, *tail, *_RATIOS, "rule_version")


def truck_trips(sums: DataFrame, *, tickets: DataFrame) -> DataFrame:
    """Per weighbridge ticket, from ``interval_sums``: the loaded trip it opened. Columns: ticket_id, vin,
    mine_id, load_ts_utc, date_local, net_t, loaded_km, tonne_km, loaded_battery_net_kwh, loaded_h2_kg,
    rule_version. A ticket without telematics has null km (not zero)."""
    legs = sums.filter(F.col("loaded_frames") > 0).groupBy("ticket_id").agg(
        F.sum("trip_loaded_km").alias("loaded_km"),
        F.sum("trip_loaded_battery_net_kwh").alias("loaded_battery_net_kwh"),
        F.sum("trip_loaded_h2_kg").alias("loaded_h2_kg"),
        F.first("rule_version").alias("rule_version"),
    )
    t = tickets.select("ticket_id", "vin", "mine_id", "load_ts_utc", F.col("event_date_local").alias("date_local"), "net_t")
    out = t.join(legs, on="ticket_id", how="left")
    return out.select("ticket_id", "vin", "mine_id", "load_ts_utc", "date_local", "net_t", "loaded_km",
                      (F.col("net_t") * F.col("loaded_km")).alias("tonne_km"), "loaded_battery_net_kwh",
                      "loaded_h2_kg", "rule_version")


def check_battery_vs_grid(
    daily: DataFrame, *, trucks: DataFrame, charge_efficiency_min: float, charge_efficiency_max: float,
    rule_version: str,
) -> DataFrame:
    """Cross-check per battery-electric truck over the whole input period: the energy the battery must
    have taken in (battery net out + rise in stored energy) against the grid energy of its sessions.

    battery_in_kwh = battery_net_kwh + (soc_end - soc_start) / 100 x pack kWh; it must lie within
    [min x grid - tol, max x grid + tol], tol = one SOC point of the pack (SOC is reported in whole %).
    Columns: vin, company_id, days, battery_net_kwh, stored_change_kwh, battery_in_kwh, grid_kwh,
    charge_in_battery_kwh, implied_charge_efficiency, measured_charge_efficiency, soc_tolerance_kwh,
    check_status (ok | outside_losses | not_applicable_swaps | no_grid_energy), rule_version.
    """
    pack = trucks.select("vin", "battery_kwh")
    d = daily.filter(F.col("powertrain") == "BEV").select(
        "date_local", "vin", "company_id", "battery_net_kwh", "grid_kwh", "charge_in_battery_kwh", "suspected_swaps",
        "soc_start_pct", "soc_end_pct")
    per = d.groupBy("vin", "company_id").agg(
        F.count(F.lit(1)).alias("days"), F.sum("battery_net_kwh").alias("battery_net_kwh"),
        F.sum("grid_kwh").alias("grid_kwh"), F.sum("charge_in_battery_kwh").alias("charge_in_battery_kwh"),
        F.sum("suspected_swaps").alias("suspected_swaps"),
        F.min_by("soc_start_pct", "date_local").alias("soc_start_pct"),
        F.max_by("soc_end_pct", "date_local").alias("soc_end_pct"),
    ).join(pack, on="vin", how="left")
    stored = (F.col("soc_end_pct") - F.col("soc_start_pct")) / 100.0 * F.col("battery_kwh")
    per = per.withColumn("stored_change_kwh", stored).withColumn(
        "battery_in_kwh", F.col("battery_net_kwh") + F.col("stored_change_kwh")).withColumn(
        "soc_tolerance_kwh", F.col("battery_kwh") / 100.0)
    lo = F.lit(float(charge_efficiency_min)) * F.col("grid_kwh") - F.col("soc_tolerance_kwh")
    hi = F.lit(float(charge_efficiency_max)) * F.col("grid_kwh") + F.col("soc_tolerance_kwh")
    status = (
        F.when(F.col("suspected_swaps") > 0, F.lit("not_applicable_swaps"))
        .when(F.col("grid_kwh") <= 0, F.lit("no_grid_energy"))
        .when(F.col("battery_in_kwh").between(lo, hi), F.lit("ok"))
        .otherwise(F.lit("outside_losses"))
    )
    return per.select(
        "vin", "company_id", "days", "battery_net_kwh", "stored_change_kwh", "battery_in_kwh", "grid_kwh",
        "charge_in_battery_kwh", ratio("battery_in_kwh", "grid_kwh").alias("implied_charge_efficiency"),
        ratio("charge_in_battery_kwh", "grid_kwh").alias("measured_charge_efficiency"), "soc_tolerance_kwh",
        status.alias("check_status"), F.lit(rule_version).alias("rule_version"),
    )
