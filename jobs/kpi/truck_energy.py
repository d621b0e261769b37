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
* Charging loss (battery-electric trucks): grid kWh of the sessions - energy into the battery at
  standstill (``charge_in_battery_kwh``, integrated V x I of the charging intervals); as a share of
  the grid kWh. Per truck-day it inherits the plug-in-day attribution (a session across midnight can
  make one day negative and the next too high); over a month it balances.
* Applicability: a ratio that does not apply to the truck's powertrain is null, not 0 - battery,
  SOC, grid, regen and charging-loss figures for BEV only, hydrogen for FCEV only, diesel for DIESEL
  only (``APPLIES_TO``). A FCEV's buffer-pack current mixes regen and fuel-cell charging, so its
  battery-side ratios are not a consumption figure. The sums stay as measured.
* Loaded vs empty: a truck is loaded from a weighbridge ticket's load time until the first stop of
  at least ``unload_stop_min_s`` (speed 0) that starts after it has moved ``min_loaded_km`` from the
  loading point, or the truck's next ticket, and at most ``max_loaded_h`` hours. Tonne-km = net
  tonnes x loaded km; the energy of the empty return stays in the numerator of kWh per tonne-km.
* Day = local day (``event_date_local``) of the interval's first frame; an interval across midnight
  (at most 5 min when integrated) stays in the day it started.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.kpi._common import month_start, ratio


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


# charging losses of battery-electric trucks (derived from the sums, so a month recomputes them)
_LOSSES = ("charging_loss_kwh", "charging_loss_pct")
# the powertrain each ratio applies to; for other powertrains it is null (undefined, not 0)
APPLIES_TO = {
    **{c: "BEV" for c in ("battery_kwh_per_100km", "soc_kwh_per_100km", "grid_kwh_per_100km",
                          "loaded_battery_kwh_per_100km", "empty_battery_kwh_per_100km", "battery_kwh_per_tkm",
                          "battery_kwh_per_delivered_t", "grid_kwh_per_delivered_t", "regen_share_pct", *_LOSSES)},
    **{c: "FCEV" for c in ("h2_kg_per_100km", "h2_kg_per_tkm", "h2_kg_per_delivered_t")},
    **{c: "DIESEL" for c in ("diesel_l_per_100km", "diesel_l_per_tkm", "diesel_l_per_delivered_t")},
}
# the battery-vs-grid check counted per fleet-month (battery-electric rows; null for other powertrains)
CHECK_COUNTS = ("bev_trucks_checked", "bev_trucks_check_ok", "bev_trucks_outside_losses",
                "bev_trucks_not_applicable_swaps", "bev_trucks_no_grid_energy", "battery_grid_check_version")


_TS = pa.timestamp("us", tz="UTC")
_ARROW_INTERVALS = pa.schema([
    ("vin", pa.string()), ("company_id", pa.string()), ("powertrain", pa.string()), ("date_local", pa.date32()),
    ("ts", _TS), ("next_ts", _TS), ("dt_s", pa.float64()), ("integrated", pa.bool_()), ("moving", pa.bool_()),
    ("loaded", pa.bool_()), ("ticket_id", pa.string()), ("net_t", pa.float64()), ("soc_pct", pa.float64()),
    ("distance_km", pa.float64()), ("integrated_distance_km", pa.float64()), ("battery_discharge_kwh", pa.float64()),
    ("regen_kwh", pa.float64()), ("charge_in_battery_kwh", pa.float64()), ("soc_net_kwh", pa.float64()),
    ("suspected_swap", pa.bool_()), ("h2_used_kg", pa.float64()), ("h2_refilled_kg", pa.float64()),
    ("diesel_l", pa.float64()), ("rule_version", pa.string()),
])
_F = pa.float64()
_ARROW_SUMS = pa.schema(
    [("date_local", pa.date32()), ("vin", pa.string()), ("company_id", pa.string()), ("powertrain", pa.string()),
     ("ticket_id", pa.string()), ("rule_version", pa.string()), ("frames", pa.int64())]
    + [(c, _F) for c in ("integrated_s", "gap_s", "distance_km", "integrated_distance_km", "loaded_km",
                         "loaded_integrated_km", "empty_integrated_km", "battery_discharge_kwh", "regen_kwh",
                         "loaded_battery_net_kwh", "empty_battery_net_kwh", "charge_in_battery_kwh", "soc_net_kwh")]
    + [("suspected_swaps", pa.int64())]
    + [(c, _F) for c in ("h2_used_kg", "h2_refilled_kg", "loaded_h2_kg", "diesel_l", "tonne_km", "integrated_tonne_km")]
    + [("first_ts", _TS), ("soc_first_pct", _F), ("last_ts", _TS), ("soc_last_pct", _F), ("loaded_frames", pa.int64()),
       ("trip_loaded_km", _F), ("trip_loaded_battery_net_kwh", _F), ("trip_loaded_h2_kg", _F)]
)
_SQL_TYPE = {pa.string(): "string", pa.date32(): "date", _TS: "timestamp", _F: "double", pa.bool_(): "boolean",
             pa.int64(): "bigint"}


@dataclass(frozen=True)
class IntervalRules:
    max_integration_gap_s: float
    unload_stop_min_s: float
    min_loaded_km: float
    max_loaded_h: float
    swap_min_soc_jump_pct: float
    rule_version: str


def _cogrouped(telematics: DataFrame, trucks: DataFrame, tickets: DataFrame, rules: dict, per_truck,
               schema: str) -> DataFrame:
    """Each truck's frames (with its pack and tank sizes) and tickets, met in one Python task (``cogroup``),
    through ``per_truck(frames, tickets, rules=IntervalRules)``."""
    tr = trucks.select("vin", "company_id", "powertrain", "battery_kwh", "h2_tank_kg")
    frames = telematics.select(
        "vin", F.col("event_ts_utc").alias("ts"), F.col("event_date_local").alias("date_local"), "speed_kmh",
        "odometer_km", "total_voltage_v", "total_current_a", "soc_pct", "h2_remaining_pct", "fuel_total_l",
    ).join(F.broadcast(tr), on="vin", how="left")
    t = tickets.select("vin", "ticket_id", F.col("load_ts_utc").alias("load_ts"), "net_t")
    return frames.groupBy("vin").cogroup(t.groupBy("vin")).applyInArrow(
        partial(per_truck, rules=IntervalRules(**rules)), schema)


def truck_intervals(telematics: DataFrame, *, trucks: DataFrame, tickets: DataFrame, **rules) -> DataFrame:
    """One row per frame and the interval to the truck's next frame (``rules``: the ``truck_energy`` rule
    parameters, see ``IntervalRules``): what ``truck_interval_sums`` adds up, frame by frame, to look into.

    Columns: vin, company_id, powertrain, date_local, ts, next_ts, dt_s, integrated, moving, loaded,
    ticket_id, net_t, soc_pct, distance_km, integrated_distance_km, battery_discharge_kwh, regen_kwh,
    charge_in_battery_kwh, soc_net_kwh, suspected_swap, h2_used_kg, h2_refilled_kg, diesel_l, rule_version.
    """
    return _cogrouped(telematics, trucks, tickets, rules, intervals_of_truck, _sql_schema(_ARROW_INTERVALS))


def truck_interval_sums(telematics: DataFrame, *, trucks: DataFrame, tickets: DataFrame, **rules) -> DataFrame:
    """The intervals summed per truck-day and ticket: everything the daily rows and the trips need, in a few
    rows per truck-day instead of one per frame.

    Each truck is walked in time order with numpy in one Python task (one shuffle by truck, a few
    milliseconds per truck-day), and only its sums leave the task: the same rules as window functions
    over every frame took four sorts of all frames.

    Columns: date_local, vin, company_id, powertrain, ticket_id, rule_version, <daily sums>, first_ts,
    soc_first_pct, last_ts, soc_last_pct, loaded_frames, trip_loaded_km, trip_loaded_battery_net_kwh,
    trip_loaded_h2_kg.
    """
    return _cogrouped(telematics, trucks, tickets, rules, sums_of_truck, _sql_schema(_ARROW_SUMS))


def _sql_schema(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {_SQL_TYPE[f.type]}" for f in schema)


def _floats(table, name: str) -> np.ndarray:
    """A double column as float64 with NaN for null (no silver value is NaN)."""
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _micros(table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _truck_arrays(frames: pa.Table, tickets: pa.Table, rules: IntervalRules):
    """The frames of one truck in time order, its tickets in load order, and per frame: the index of its
    ticket (-1: none) and the interval values (numpy; NaN = null), by the rules of the module docstring.

    Null inputs follow SQL: a comparison with null is false, and a value the rule takes as it is stays null
    (e.g. SOC energy of a truck without a pack size)."""
    frames = frames.take(pc.sort_indices(frames, [("ts", "ascending")]))
    tickets = tickets.take(pc.sort_indices(tickets, [("load_ts", "ascending"), ("ticket_id", "ascending")]))
    n = frames.num_rows
    ts = _micros(frames, "ts")
    ts_s = ts / 1e6
    has_next = np.arange(n) < n - 1
    next_ts_s = np.append(ts_s[1:], np.nan)

    def nxt(values: np.ndarray) -> np.ndarray:
        return np.append(values[1:], np.nan)

    odo, soc, h2, fuel = (_floats(frames, c) for c in ("odometer_km", "soc_pct", "h2_remaining_pct", "fuel_total_l"))
    speed, volt, amp = (_floats(frames, c) for c in ("speed_kmh", "total_voltage_v", "total_current_a"))
    battery_kwh, tank_kg = _floats(frames, "battery_kwh"), _floats(frames, "h2_tank_kg")
    with np.errstate(invalid="ignore"):
        odo_step = nxt(odo) - odo
        moving = (speed > 0) | (odo_step > 0)        # NaN compares false: unknown counts as not moving
        stopped = ~moving

        # loaded: from the truck's last ticket weighed at or before the frame (a ticket sorts before a frame
        # of the same instant) until the first stop of unload_stop_min_s that starts min_loaded_km after
        # loading, the next ticket, or max_loaded_h
        load_ts = _micros(tickets, "load_ts")
        which = np.searchsorted(load_ts, ts, side="right") - 1
        has_ticket = which >= 0
        if tickets.num_rows:
            load_ts_s = np.where(has_ticket, (load_ts / 1e6)[which], np.nan)
            net_t = np.where(has_ticket, _floats(tickets, "net_t")[which], np.nan)
        else:
            load_ts_s = net_t = np.full(n, np.nan)
        # runs of frames in the same moving state; a run lasts from its first frame to the frame after its last
        run_id = np.cumsum(np.append(True, stopped[1:] != stopped[:-1])) - 1
        run_first = np.flatnonzero(np.append(True, run_id[1:] != run_id[:-1]))
        run_last = np.append(run_first[1:] - 1, n - 1)
        run_start_s = ts_s[run_first][run_id]
        run_s = (np.where(has_next[run_last], next_ts_s[run_last], ts_s[run_last]) - ts_s[run_first])[run_id]
        # per ticket (frames before the first ticket are a group of their own): km above its lowest odometer
        group = which + 1
        km_since_load = odo - _group_min(odo, group)
        unload_candidate = (stopped & (run_s >= rules.unload_stop_min_s) & (km_since_load >= rules.min_loaded_km)
                            & (ts_s >= load_ts_s))
        unload_s = _group_min(np.where(unload_candidate, run_start_s, np.nan), group)
        loaded = (has_ticket & (ts_s >= load_ts_s) & (ts_s < load_ts_s + rules.max_loaded_h * 3600.0)
                  & (np.isnan(unload_s) | (ts_s < unload_s)))

        dt_s = next_ts_s - ts_s
        integrated = has_next & (dt_s <= rules.max_integration_gap_s) & ~np.isnan(volt) & ~np.isnan(amp)
        e_kwh = volt * amp * dt_s / 3.6e6
        distance = np.where(odo_step >= 0, odo_step, np.nan)
        soc_drop = soc - nxt(soc)
        soc_counted = integrated & ~np.isnan(soc_drop) & ~(stopped & (soc_drop < 0))
        h2_drop = h2 - nxt(h2)
        fuel_step = nxt(fuel) - fuel
        zero = np.zeros(n)
        values = {
            "dt_s": dt_s, "integrated": integrated, "moving": moving, "loaded": loaded, "net_t": net_t,
            "soc_pct": soc, "distance_km": distance, "integrated_distance_km": np.where(integrated, distance, np.nan),
            "battery_discharge_kwh": np.where(integrated & (amp > 0), e_kwh, zero),
            "regen_kwh": np.where(integrated & (amp < 0) & moving, -e_kwh, zero),
            "charge_in_battery_kwh": np.where(integrated & (amp < 0) & stopped, -e_kwh, zero),
            "soc_net_kwh": np.where(soc_counted, soc_drop * battery_kwh / 100.0, zero),
            "suspected_swap": stopped & (-soc_drop >= rules.swap_min_soc_jump_pct) & (np.nan_to_num(amp, nan=0.0) >= 0),
            "h2_used_kg": np.where(h2_drop > 0, h2_drop * tank_kg / 100.0, zero),
            "h2_refilled_kg": np.where(h2_drop < 0, -h2_drop * tank_kg / 100.0, zero),
            "diesel_l": np.where(fuel_step > 0, fuel_step, zero),
        }
    return frames, tickets, which, values


def _group_min(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per row, the minimum of ``values`` (NaN = null, ignored) over the rows of its group (NaN if none);
    ``group`` holds small non-negative integers."""
    out = np.full(group.max() + 1, np.inf)
    np.minimum.at(out, group, np.where(np.isnan(values), np.inf, values))
    out[np.isinf(out)] = np.nan
    return out[group]


def _ticket_ids(tickets: pa.Table, which: np.ndarray):
    return tickets.column("ticket_id").take(pa.array(which, mask=which < 0))


def _arrow(columns: dict, schema: pa.Schema) -> pa.Table:
    """numpy columns (NaN = null) and Arrow columns → a table of ``schema``."""
    return pa.table({name: pa.array(v, from_pandas=True) if isinstance(v, np.ndarray) else v
                     for name, v in columns.items()}).cast(schema)


def intervals_of_truck(frames: pa.Table, tickets: pa.Table, *, rules: IntervalRules) -> pa.Table:
    """The intervals of one truck, one row per frame (see ``truck_intervals``)."""
    if frames.num_rows == 0:
        return _ARROW_INTERVALS.empty_table()
    frames, tickets, which, v = _truck_arrays(frames, tickets, rules)
    n = frames.num_rows
    next_ts = np.append(_micros(frames, "ts")[1:], 0)
    head = {c: frames.column(c) for c in ("vin", "company_id", "powertrain", "date_local", "ts")}
    return _arrow({**head, "next_ts": pa.array(next_ts, mask=np.arange(n) == n - 1).cast(_TS),
                   **{c: v[c] for c in ("dt_s", "integrated", "moving", "loaded")},
                   "ticket_id": _ticket_ids(tickets, which),
                   **{c: v[c] for c in _ARROW_INTERVALS.names[11:-1]},
                   "rule_version": pa.array([rules.rule_version] * n, pa.string())}, _ARROW_INTERVALS)


def sums_of_truck(frames: pa.Table, tickets: pa.Table, *, rules: IntervalRules) -> pa.Table:
    """The intervals of one truck summed per local day and ticket (see ``truck_interval_sums``). A sum over
    rows that are all null is null, as in SQL."""
    if frames.num_rows == 0:
        return _ARROW_SUMS.empty_table()
    frames, tickets, which, v = _truck_arrays(frames, tickets, rules)
    days = frames.column("date_local").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    key = days * (tickets.num_rows + 1) + which + 1          # (local day, ticket or none) as one integer
    keys, first, group = np.unique(key, return_index=True, return_inverse=True)
    last = len(key) - 1 - np.unique(key[::-1], return_index=True)[1]
    size = len(keys)

    def total(values: np.ndarray) -> np.ndarray:
        """SQL sum per group: NaN (null) rows left out, null where every row is null."""
        known = ~np.isnan(values)
        sums = np.bincount(group, weights=np.where(known, values, 0.0), minlength=size)
        return np.where(np.bincount(group, weights=known, minlength=size) > 0, sums, np.nan)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=mask, minlength=size).astype(np.int64)

    dist, loaded, integ = v["distance_km"], v["loaded"], v["integrated"]
    net = v["battery_discharge_kwh"] - v["regen_kwh"]
    none = np.full(len(days), np.nan)
    head = frames.select(["vin", "company_id", "powertrain"]).take(pa.array(first))
    ts = frames.column("ts")
    return _arrow({
        "date_local": frames.column("date_local").take(pa.array(first)),
        **{c: head.column(c) for c in head.column_names}, "ticket_id": _ticket_ids(tickets, which[first]),
        "rule_version": pa.array([rules.rule_version] * size, pa.string()),
        "frames": np.bincount(group, minlength=size).astype(np.int64),
        "integrated_s": total(np.where(integ, v["dt_s"], 0.0)),
        "gap_s": total(np.where(~integ & ~np.isnan(v["dt_s"]), v["dt_s"], 0.0)),
        "distance_km": total(np.nan_to_num(dist, nan=0.0)),
        "integrated_distance_km": total(np.nan_to_num(v["integrated_distance_km"], nan=0.0)),
        "loaded_km": total(np.where(loaded, dist, 0.0)),
        "loaded_integrated_km": total(np.where(loaded & integ, dist, 0.0)),
        "empty_integrated_km": total(np.where(~loaded & integ, dist, 0.0)),
        "battery_discharge_kwh": total(v["battery_discharge_kwh"]), "regen_kwh": total(v["regen_kwh"]),
        "loaded_battery_net_kwh": total(np.where(loaded, net, 0.0)),
        "empty_battery_net_kwh": total(np.where(~loaded, net, 0.0)),
        "charge_in_battery_kwh": total(v["charge_in_battery_kwh"]), "soc_net_kwh": total(v["soc_net_kwh"]),
        "suspected_swaps": count(v["suspected_swap"]),
        "h2_used_kg": total(v["h2_used_kg"]), "h2_refilled_kg": total(v["h2_refilled_kg"]),
        "loaded_h2_kg": total(np.where(loaded, v["h2_used_kg"], 0.0)), "diesel_l": total(v["diesel_l"]),
        "tonne_km": total(np.where(loaded, dist * v["net_t"], 0.0)),
        "integrated_tonne_km": total(np.where(loaded & integ, dist * v["net_t"], 0.0)),
        # frames are in time order: a group's first row has its earliest frame, its last row the latest
        "first_ts": ts.take(pa.array(first)), "soc_first_pct": v["soc_pct"][first],
        "last_ts": ts.take(pa.array(last)), "soc_last_pct": v["soc_pct"][last],
        # the trip of the ticket: its loaded intervals only
        "loaded_frames": count(loaded),
        "trip_loaded_km": total(np.where(loaded, np.nan_to_num(dist, nan=0.0), none)),
        "trip_loaded_battery_net_kwh": total(np.where(loaded, net, none)),
        "trip_loaded_h2_kg": total(np.where(loaded, v["h2_used_kg"], none)),
    }, _ARROW_SUMS)


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
    bev = F.col("powertrain") == "BEV"
    df = df.withColumn("charging_loss_kwh", F.when(bev, F.col("grid_kwh") - F.col("charge_in_battery_kwh"))).withColumn(
        "charging_loss_pct", ratio("charging_loss_kwh", "grid_kwh", 100.0))
    for name, powertrain in APPLIES_TO.items():
        df = df.withColumn(name, F.when(F.col("powertrain") == powertrain, F.col(name)))
    return df


# the sums of ``truck_interval_sums`` added up per truck-day; the rest of _SUMS is derived from them or joined
_DAY_SUMS = tuple(c for c in _SUMS if c not in (
    "empty_km", "battery_net_kwh", "tickets", "delivered_t", "charging_sessions", "grid_kwh"))


def truck_energy_daily(sums: DataFrame, *, tickets: DataFrame, charging_sessions: DataFrame) -> DataFrame:
    """Per truck and local day, from ``truck_interval_sums``: distances, battery / SOC / grid / H2 / diesel energy,
    loaded-empty split, tonne-km, delivered tonnes and the intensities.

    Columns: date_local, vin, company_id, powertrain, <sums: see _SUMS>, soc_start_pct, soc_end_pct,
    <ratios: see _RATIOS>, charging_loss_kwh, charging_loss_pct, rule_version.
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
        "date_local", "vin", "company_id", "powertrain", *_SUMS, "soc_start_pct", "soc_end_pct", *_RATIOS, *_LOSSES,
        "rule_version",
    )


def truck_energy_monthly(daily: DataFrame, *, grain: str = "fleet") -> DataFrame:
    """Monthly ratios of sums per truck (``grain='truck'``: month_start, vin, company_id, powertrain) or per
    fleet (``grain='fleet'``: month_start, company_id, powertrain, trucks). Also: truck_days, <sums>,
    soc_start_pct / soc_end_pct (truck grain), <ratios>, charging_loss_kwh, charging_loss_pct, rule_version.
    The fleet grain's battery-vs-grid check columns are added by :func:`with_battery_grid_check`."""
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
    return _with_ratios(m).select(*head, "truck_days", *_SUMS, *tail, *_RATIOS, *_LOSSES, "rule_version")


def truck_trips(sums: DataFrame, *, tickets: DataFrame) -> DataFrame:
    """Per weighbridge ticket, from ``truck_interval_sums``: the loaded trip it opened. Columns: ticket_id, vin,
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
    rule_version: str, per_month: bool = False,
) -> DataFrame:
    """Cross-check per battery-electric truck over the whole input period (``per_month``: per truck and
    month, with a leading ``month_start`` column): the energy the battery must have taken in (battery
    net out + rise in stored energy) against the grid energy of its sessions.

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
    keys = [month_start("date_local").alias("month_start")] if per_month else []
    per = d.groupBy(*keys, "vin", "company_id").agg(
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
        *(["month_start"] if per_month else []), "vin", "company_id", "days", "battery_net_kwh", "stored_change_kwh", "battery_in_kwh", "grid_kwh",
        "charge_in_battery_kwh", ratio("battery_in_kwh", "grid_kwh").alias("implied_charge_efficiency"),
        ratio("charge_in_battery_kwh", "grid_kwh").alias("measured_charge_efficiency"), "soc_tolerance_kwh",
        status.alias("check_status"), F.lit(rule_version).alias("rule_version"),
    )


def with_battery_grid_check(fleet_monthly: DataFrame, *, check: DataFrame) -> DataFrame:
    """The fleet-month rows with the battery-vs-grid check of their trucks counted by status
    (``check``: :func:`check_battery_vs_grid` with ``per_month=True``). Battery-electric rows only; a
    fleet without a checked truck has 0 checked, other powertrains null.

    Adds: bev_trucks_checked, bev_trucks_check_ok, bev_trucks_outside_losses,
    bev_trucks_not_applicable_swaps, bev_trucks_no_grid_energy, battery_grid_check_version.
    """
    def n(status: str):
        return F.count(F.when(F.col("check_status") == status, F.col("vin")))

    counts = check.groupBy("month_start", "company_id").agg(
        F.count("vin").alias("bev_trucks_checked"), n("ok").alias("bev_trucks_check_ok"),
        n("outside_losses").alias("bev_trucks_outside_losses"),
        n("not_applicable_swaps").alias("bev_trucks_not_applicable_swaps"),
        n("no_grid_energy").alias("bev_trucks_no_grid_energy"),
        F.array_join(F.array_sort(F.collect_set("rule_version")), "+").alias("battery_grid_check_version"),
    ).withColumn("powertrain", F.lit("BEV"))
    out = fleet_monthly.join(counts, on=["month_start", "company_id", "powertrain"], how="left")
    bev = F.col("powertrain") == "BEV"
    for c in CHECK_COUNTS[:-1]:
        out = out.withColumn(c, F.when(bev, F.coalesce(F.col(c), F.lit(0)).cast("long")))
    return out.select(*fleet_monthly.columns, *CHECK_COUNTS)
