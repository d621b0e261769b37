"""DuckDB peer of the pipeline: the same telematics ingestion and four gold KPI families, in SQL.

Written from the rules (``schemas/sources.py``, the KPI module docstrings, ``docs/kpis.md``), not
translated from our Spark code, so that agreement means something. Contract and comparison:
``jobs/tools/bench/peer_contract.py``.

Ingestion (:func:`ingest_telematics`): ``read_ndjson`` with explicit columns and ``ignore_errors``; a
malformed line (truncated, invalid JSON) comes back as a row of nulls and is rejected as missing its
required fields. DuckDB reads some values Spark's JSON reader rejects, and keeps those frames: a
fraction, a numeric string or a boolean in a raw integer field (35.2 -> 35, "352" -> 352, true -> 1),
an integer beyond a long (-> null), a block that is not an object (-> a block of nulls). The generator
writes none of these, so the counts agree on generated data; the pandas peer rejects them as Spark does.
Both peers reject a line with text after its JSON object, which Spark reads (ignoring the rest).

Gold (:func:`gold_kpis`): our silver Delta tables are read with delta-rs (partition-pruned Arrow
tables) and queried in DuckDB.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import time
from pathlib import Path

import duckdb
import pandas as pd

from jobs.tools.bench import peer_contract as pc
from schemas.sources import SOURCES, TELEMATICS_ENCODING

# (silver column, JSON struct, field, encoding) of the decoded GB/T 32960 values
_DECODED = (
    ("speed_kmh", "vehicle", "speed", "speed"),
    ("odometer_km", "vehicle", "odometer", "odometer"),
    ("total_voltage_v", "vehicle", "total_voltage", "total_voltage"),
    ("total_current_a", "vehicle", "total_current", "total_current"),
    ("soc_pct", "vehicle", "soc", "soc"),
    ("h2_remaining_pct", "fuel_cell", "h2_remaining", "h2_remaining"),
    ("fuel_total_l", "engine", "fuel_total", "fuel_total"),
)
_FRAME_COLUMNS = {
    "vin": "VARCHAR", "msg_type": "VARCHAR", "collect_time": "VARCHAR",
    "vehicle": "STRUCT(speed BIGINT, odometer BIGINT, total_voltage BIGINT, total_current BIGINT, soc BIGINT)",
    "fuel_cell": "STRUCT(h2_remaining BIGINT)",
    "engine": "STRUCT(fuel_total BIGINT)",
    "position": "STRUCT(valid BIGINT, coord_sys VARCHAR, lon BIGINT, lat BIGINT)",
}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (all cores) with the helpers the queries use."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # seconds since the epoch as a double, as our Spark code takes them (unix_micros / 1e6)
    con.execute("CREATE MACRO _epoch_s(t) AS CAST(epoch_us(t) AS DOUBLE) / 1000000.0")
    return con


def _with_connection(compute):
    """Let a KPI query run on the caller's connection, or on its own one (closed after)."""
    @functools.wraps(compute)
    def run(lake_root: Path, start: dt.date, end: dt.date, con: duckdb.DuckDBPyConnection | None = None):
        if con is not None:
            return compute(Path(lake_root), start, end, con)
        own = connect()
        try:
            return compute(Path(lake_root), start, end, own)
        finally:
            own.close()
    return run


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _decode(raw: str, encoding: str) -> str:
    """raw x scale + offset; a sentinel -> NULL. Scales below 1 divide (x / 10 is the double nearest
    the decimal value, x * 0.1 is not always)."""
    enc = TELEMATICS_ENCODING[encoding]
    scaled = (f"CAST({raw} AS DOUBLE) / {float(round(1 / enc.scale))!r}" if enc.scale < 1
              else f"CAST({raw} AS DOUBLE) * {float(enc.scale)!r}")
    sentinels = ", ".join(str(s) for s in enc.sentinels)
    return f"CASE WHEN {raw} IS NULL OR {raw} IN ({sentinels}) THEN NULL ELSE {scaled} + {float(enc.offset)!r} END"


def _out_of_range(raw: str, encoding: str) -> str:
    enc = TELEMATICS_ENCODING[encoding]
    sentinels = ", ".join(str(s) for s in enc.sentinels)
    return (f"({raw} IS NOT NULL AND {raw} NOT IN ({sentinels}) "
            f"AND ({raw} > {enc.valid_max_raw} OR {raw} < 0))")


# GCJ-02 -> WGS84: subtract the published "Mars coordinates" offset computed at the GCJ point (one
# inverse step, ~1-2 m error), the same approximation our ingestion states.
_A, _EE = 6378245.0, 0.00669342162296594323


def _gcj_offset_sql(lon: str, lat: str) -> tuple[str, str]:
    x, y = f"({lon} - 105.0)", f"({lat} - 35.0)"
    pi = repr(math.pi)
    t_lat = (f"(-100.0 + 2.0 * {x} + 3.0 * {y} + 0.2 * {y} * {y} + 0.1 * {x} * {y} + 0.2 * sqrt(abs({x}))"
             f" + (20.0 * sin(6.0 * {x} * {pi}) + 20.0 * sin(2.0 * {x} * {pi})) * 2.0 / 3.0"
             f" + (20.0 * sin({y} * {pi}) + 40.0 * sin({y} / 3.0 * {pi})) * 2.0 / 3.0"
             f" + (160.0 * sin({y} / 12.0 * {pi}) + 320.0 * sin({y} * {pi} / 30.0)) * 2.0 / 3.0)")
    t_lon = (f"(300.0 + {x} + 2.0 * {y} + 0.1 * {x} * {x} + 0.1 * {x} * {y} + 0.1 * sqrt(abs({x}))"
             f" + (20.0 * sin(6.0 * {x} * {pi}) + 20.0 * sin(2.0 * {x} * {pi})) * 2.0 / 3.0"
             f" + (20.0 * sin({x} * {pi}) + 40.0 * sin({x} / 3.0 * {pi})) * 2.0 / 3.0"
             f" + (150.0 * sin({x} / 12.0 * {pi}) + 300.0 * sin({x} / 30.0 * {pi})) * 2.0 / 3.0)")
    rad = f"({lat} / 180.0 * {pi})"
    magic = f"(1 - {_EE!r} * sin({rad}) * sin({rad}))"
    dlat = f"(({t_lat} * 180.0) / (({_A!r} * (1 - {_EE!r})) / ({magic} * sqrt({magic})) * {pi}))"
    dlon = f"(({t_lon} * 180.0) / ({_A!r} / sqrt({magic}) * cos({rad}) * {pi}))"
    return dlon, dlat


def ingest_telematics(files: list[Path], out_parquet: Path, source_timezone: str = "Asia/Shanghai", *,
                      lateness_allowance_days: int = pc.LATENESS_ALLOWANCE_DAYS) -> dict:
    """Landing telematics files (JSON lines, gzip or not) -> silver telematics columns in one Parquet file.

    Rejected: malformed lines, missing required fields, unreadable ``collect_time``, raw values outside
    their valid range, events more than ``lateness_allowance_days`` before their delivery day or more
    than one day after it. Kept: one row per (vin, event_ts_utc), the last delivered (delivery day, file
    name, line). Returns rows_in (non-blank lines), rows_out, rows_rejected, rows_duplicate, seconds.
    """
    started = time.perf_counter()
    ordered = pc.delivery_order(files)
    out_parquet = Path(out_parquet)
    out_parquet.parent.mkdir(parents=True, exist_ok=True)
    con = connect()
    try:
        con.execute("SET preserve_insertion_order = true")   # row_number() OVER () = line order per file
        file_list = pd.DataFrame({
            "filename": [str(p) for _, p in ordered],
            "landing_date": [d for d, _ in ordered],
            "file_rank": range(len(ordered)),
        })
        con.register("landing_files", file_list)
        paths = "[" + ", ".join(_sql_text(str(p)) for _, p in ordered) + "]"
        columns = "{" + ", ".join(f"{_sql_text(k)}: {_sql_text(v)}" for k, v in _FRAME_COLUMNS.items()) + "}"
        required = " OR ".join(f"{name} IS NULL" for name in SOURCES["telematics"].required)
        raw_of = {silver: f"{block}.{fld}" for silver, block, fld, _ in _DECODED}
        range_errors = " OR ".join(
            [_out_of_range(raw_of[s], enc) for s, _, _, enc in _DECODED]
            + [_out_of_range("position.lon", "lon"), _out_of_range("position.lat", "lat")])
        decoded = ",\n".join(f"{_decode(raw_of[s], enc)} AS {s}" for s, _, _, enc in _DECODED)
        dlon, dlat = _gcj_offset_sql("lon_deg", "lat_deg")
        con.execute(f"""
            CREATE TEMP TABLE checked AS
            WITH frames AS (
                SELECT row_number() OVER () AS line_rank, *
                FROM read_ndjson({paths}, columns = {columns}, ignore_errors = true, filename = true,
                                 format = 'newline_delimited')
            ),
            timed AS (
                SELECT f.*, l.landing_date, l.file_rank,
                       try_strptime(collect_time, '%Y-%m-%d %H:%M:%S') AS local_ts
                FROM frames f JOIN landing_files l USING (filename)
            )
            SELECT vin, msg_type, local_ts, timezone({_sql_text(source_timezone)}, local_ts) AS event_ts_utc,
                   landing_date, file_rank, line_rank,
                   {decoded},
                   upper(position.coord_sys) IN ('GCJ02', 'GCJ-02') AS is_gcj,
                   {_decode("position.lon", "lon")} AS lon_deg,
                   {_decode("position.lat", "lat")} AS lat_deg,
                   ({required} OR local_ts IS NULL OR {range_errors}
                    OR date_diff('day', CAST(local_ts AS DATE), landing_date) > {int(lateness_allowance_days)}
                    OR date_diff('day', CAST(local_ts AS DATE), landing_date) < -1) AS rejected
            FROM timed
        """)
        rows_in, rows_rejected = con.execute("SELECT count(*), count(*) FILTER (WHERE rejected) FROM checked").fetchone()
        decoded_cols = ", ".join(s for s, _, _, _ in _DECODED)
        rows_out = con.execute(f"""
            COPY (
                SELECT vin, event_ts_utc, msg_type,
                       {decoded_cols},
                       CASE WHEN is_gcj THEN lon_deg - {dlon} ELSE lon_deg END AS lon_wgs84_deg,
                       CASE WHEN is_gcj THEN lat_deg - {dlat} ELSE lat_deg END AS lat_wgs84_deg,
                       CAST(local_ts AS DATE) AS event_date_local
                FROM checked
                WHERE NOT rejected
                QUALIFY row_number() OVER (PARTITION BY vin, event_ts_utc
                                           ORDER BY file_rank DESC, line_rank DESC) = 1
            ) TO {_sql_text(str(out_parquet))} (FORMAT parquet)
        """).fetchone()[0]
    finally:
        con.close()
    return {"rows_in": int(rows_in), "rows_out": int(rows_out), "rows_rejected": int(rows_rejected),
            "rows_duplicate": int(rows_in - rows_rejected - rows_out),
            "seconds": round(time.perf_counter() - started, 3)}


# --- gold KPIs ----------------------------------------------------------------------------------------------
_TELEMATICS_READ = ("vin", "event_ts_utc", "event_date_local", "speed_kmh", "odometer_km", "total_voltage_v",
                    "total_current_a", "h2_remaining_pct", "fuel_total_l")


@_with_connection
def truck_energy_daily(lake_root: Path, start: dt.date, end: dt.date,
                       con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Per (date_local, vin), rules of jobs/kpi/truck_energy.py and docs/kpis.md section 3:

    * each frame opens an interval to the truck's NEXT frame; dt = next - this;
    * integrated when the next frame is at most ``max_integration_gap_s`` away and V and I are known;
      energy V x I x dt / 3.6e6 kWh, positive current = discharge; negative current while moving
      (speed > 0 or odometer advancing) = regen; integrated_s / gap_s split the time to the next frame;
    * distance = odometer advance to the next frame (a backwards step is no distance);
    * H2 = decreases of remaining % x tank kg / 100 over consecutive frames (gaps included);
      diesel = increases of the cumulative fuel counter;
    * day = local day of the interval's first frame.

    Frames are read for start-1 .. end+1 plus each truck's first frame after end+1, so the last interval
    of ``end`` closes on the frame that really follows it.
    """
    gap_s = pc.rule_parameters("truck_energy", end)["max_integration_gap_s"]
    window = pc.read_delta(lake_root, "silver_telematics", _TELEMATICS_READ, "event_date_local",
                           start - dt.timedelta(days=1), end + dt.timedelta(days=1))
    later = pc.read_delta(lake_root, "silver_telematics", _TELEMATICS_READ, "event_date_local",
                          end + dt.timedelta(days=2), None)
    trucks = pc.read_delta(lake_root, "silver_trucks", ("vin", "company_id", "powertrain", "h2_tank_kg"))
    con.register("window_frames", window)
    con.register("later_frames", later)
    con.register("trucks", trucks)
    return con.execute(f"""
        WITH frames AS (
            SELECT * FROM window_frames
            UNION ALL
            SELECT * FROM later_frames QUALIFY row_number() OVER (PARTITION BY vin ORDER BY event_ts_utc) = 1
        ),
        intervals AS (
            SELECT vin, event_date_local AS date_local, event_ts_utc AS ts, speed_kmh, odometer_km,
                   total_voltage_v AS volt, total_current_a AS amp, h2_remaining_pct, fuel_total_l,
                   lead(event_ts_utc) OVER w AS next_ts,
                   lead(odometer_km) OVER w - odometer_km AS odo_step,
                   h2_remaining_pct - lead(h2_remaining_pct) OVER w AS h2_drop,
                   lead(fuel_total_l) OVER w - fuel_total_l AS fuel_step
            FROM frames
            WINDOW w AS (PARTITION BY vin ORDER BY event_ts_utc)
        ),
        flagged AS (
            SELECT i.*, t.company_id, t.powertrain, t.h2_tank_kg,
                   _epoch_s(next_ts) - _epoch_s(ts) AS dt_s,
                   coalesce(speed_kmh > 0, false) OR coalesce(odo_step > 0, false) AS moving
            FROM intervals i LEFT JOIN trucks t USING (vin)
            WHERE date_local BETWEEN DATE '{start}' AND DATE '{end}'
        ),
        valued AS (
            SELECT *,
                   next_ts IS NOT NULL AND dt_s <= {gap_s!r} AND volt IS NOT NULL AND amp IS NOT NULL AS integrated,
                   volt * amp * dt_s / 3.6e6 AS e_kwh,
                   CASE WHEN odo_step >= 0 THEN odo_step END AS distance
            FROM flagged
        )
        SELECT date_local, vin, any_value(company_id) AS company_id, any_value(powertrain) AS powertrain,
               count(*) AS frames,
               sum(CASE WHEN integrated THEN dt_s ELSE 0.0 END) AS integrated_s,
               sum(CASE WHEN NOT integrated AND next_ts IS NOT NULL THEN dt_s ELSE 0.0 END) AS gap_s,
               sum(coalesce(distance, 0.0)) AS distance_km,
               sum(CASE WHEN integrated THEN coalesce(distance, 0.0) ELSE 0.0 END) AS integrated_distance_km,
               sum(CASE WHEN integrated AND amp > 0 THEN e_kwh ELSE 0.0 END) AS battery_discharge_kwh,
               sum(CASE WHEN integrated AND amp < 0 AND moving THEN -e_kwh ELSE 0.0 END) AS regen_kwh,
               sum(CASE WHEN h2_drop > 0 THEN h2_drop * h2_tank_kg / 100.0 ELSE 0.0 END) AS h2_used_kg,
               sum(CASE WHEN fuel_step > 0 THEN fuel_step ELSE 0.0 END) AS diesel_l
        FROM valued
        GROUP BY date_local, vin
    """).df().assign(battery_net_kwh=lambda d: d["battery_discharge_kwh"] - d["regen_kwh"]).sort_values(
        ["date_local", "vin"], ignore_index=True)


@_with_connection
def mine_energy_daily(lake_root: Path, start: dt.date, end: dt.date,
                      con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Per (shift_date, mine_id), rules of jobs/kpi/mine_energy.py: sums over the mine's shifts of the
    shift-day; kgce = electricity kWh x electricity factor (equivalent basis, the basis our build grades
    on) + diesel kg x diesel factor + other kgce, factors in force on the shift-day; empty diesel or
    other energy = 0. Quantities are summed as DECIMAL(22,6) and multiplied exactly, like ours."""
    production = pc.read_delta(
        lake_root, "silver_mine_production",
        ("mine_id", "shift_date", "raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce"),
        "event_date_local", start, end)
    con.register("production", production)
    for carrier in ("electricity", "diesel"):
        factors = pc.conversion_factors(carrier, "equivalent")[["factor_text", "effective_from", "effective_to"]]
        con.register(f"{carrier}_factors", factors)
    return con.execute("""
        WITH day AS (
            SELECT shift_date, mine_id,
                   sum(CAST(raw_coal_t AS DECIMAL(22, 6))) AS raw_coal_t,
                   sum(CAST(electricity_kwh AS DECIMAL(22, 6))) AS electricity_kwh,
                   sum(CAST(coalesce(diesel_kg, 0.0) AS DECIMAL(22, 6))) AS diesel_kg,
                   sum(CAST(coalesce(other_energy_kgce, 0.0) AS DECIMAL(22, 6))) AS other_energy_kgce
            FROM production GROUP BY shift_date, mine_id
        ),
        valued AS (
            SELECT d.*,
                   CAST(d.electricity_kwh * CAST(e.factor_text AS DECIMAL(15, 7))
                        + d.diesel_kg * CAST(f.factor_text AS DECIMAL(15, 7))
                        + d.other_energy_kgce AS DECIMAL(30, 13)) AS energy_kgce
            FROM day d
            LEFT JOIN electricity_factors e
                   ON (e.effective_from IS NULL OR e.effective_from <= d.shift_date)
                  AND (e.effective_to IS NULL OR d.shift_date < e.effective_to)
            LEFT JOIN diesel_factors f
                   ON (f.effective_from IS NULL OR f.effective_from <= d.shift_date)
                  AND (f.effective_to IS NULL OR d.shift_date < f.effective_to)
        )
        SELECT shift_date, mine_id, raw_coal_t, electricity_kwh, diesel_kg, other_energy_kgce, energy_kgce,
               CASE WHEN raw_coal_t > 0 THEN CAST(energy_kgce AS DOUBLE) / CAST(raw_coal_t AS DOUBLE) END
                   AS energy_kgce_per_t
        FROM valued ORDER BY shift_date, mine_id
    """).df()


@_with_connection
def charging_station_daily(lake_root: Path, start: dt.date, end: dt.date,
                           con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Per (date_local, station_id) for every station with connectors and every day start..end, rules of
    jobs/kpi/charging_utilisation.py: a session's kWh are spread evenly over its charging time (charge
    start -> charge end, each falling back to plug-in / plug-out; no duration = all at its start), cut at
    local day edges and at the window [start 00:00, end+1 00:00); sessions are counted on their plug-in
    local day. Sessions are read from plug-in day start-1 (our build's look-back)."""
    sessions = pc.read_delta(
        lake_root, "silver_charging_sessions",
        ("session_id", "station_id", "connector_id", "plug_in_ts_utc", "charge_start_ts_utc", "charge_end_ts_utc",
         "plug_out_ts_utc", "energy_kwh", "event_date_local"),
        "event_date_local", start - dt.timedelta(days=1), end)
    connectors = pc.read_delta(lake_root, "silver_charging_connectors", ("station_id", "connector_id"))
    con.register("sessions", sessions)
    con.register("connectors", connectors)
    tz = _sql_text(pc.LOCAL_TZ)
    return con.execute(f"""
        WITH s AS (
            SELECT s.session_id, s.station_id, s.connector_id, s.energy_kwh, s.event_date_local,
                   timezone({tz}, coalesce(charge_start_ts_utc, plug_in_ts_utc)) AS s_start,
                   timezone({tz}, coalesce(charge_end_ts_utc, plug_out_ts_utc)) AS s_end_raw
            FROM sessions s JOIN connectors c USING (station_id, connector_id)
        ),
        spans AS (
            SELECT *, _epoch_s(s_end) - _epoch_s(s_start) AS duration_s,
                   greatest(s_start, TIMESTAMP '{start} 00:00:00') AS w_start,
                   least(s_end, TIMESTAMP '{end + dt.timedelta(days=1)} 00:00:00') AS w_end
            FROM (SELECT *, CASE WHEN s_end_raw > s_start THEN s_end_raw
                                 ELSE s_start + INTERVAL 1 MICROSECOND END AS s_end FROM s)
        ),
        per_day AS (
            SELECT station_id, CAST(day AS DATE) AS date_local,
                   energy_kwh * (_epoch_s(least(w_end, day + INTERVAL 1 DAY)) - _epoch_s(greatest(w_start, day)))
                       / duration_s AS energy_kwh
            FROM spans,
                 unnest(generate_series(date_trunc('day', w_start), date_trunc('day', w_end - INTERVAL 1 MICROSECOND),
                                        INTERVAL 1 DAY)) AS g(day)
            WHERE w_end > w_start
        ),
        energy AS (SELECT date_local, station_id, sum(energy_kwh) AS energy_kwh FROM per_day GROUP BY ALL),
        counted AS (
            SELECT event_date_local AS date_local, station_id, count(session_id) AS sessions
            FROM s WHERE event_date_local BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY ALL
        ),
        grid AS (
            SELECT CAST(d AS DATE) AS date_local, station_id
            FROM (SELECT DISTINCT station_id FROM connectors),
                 unnest(generate_series(DATE '{start}', DATE '{end}', INTERVAL 1 DAY)) AS g(d)
        )
        SELECT g.date_local, g.station_id, coalesce(e.energy_kwh, 0.0) AS energy_kwh,
               coalesce(c.sessions, 0) AS sessions
        FROM grid g
        LEFT JOIN energy e USING (date_local, station_id)
        LEFT JOIN counted c USING (date_local, station_id)
        ORDER BY date_local, station_id
    """).df()


@_with_connection
def rail_share_monthly(lake_root: Path, start: dt.date, end: dt.date,
                       con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Per month touching start..end and company, rules of jobs/kpi/rail_share.py: shipments of raw
    coal, clean coal and coke beyond ``long_haul_threshold_km`` (strictly, unless inclusive) are in
    scope; one counts as rail (whole tonnes) when rail km > 0 and rail km >= ``multimodal_rail_min_km_share``
    x distance, compared in exact decimals; share = rail t / long-haul t x 100 over the whole month."""
    rules = pc.rule_parameters("rail_share", end)
    months = pc.months_between(start, end)
    shipments = pc.read_delta(
        lake_root, "silver_shipments", ("shipment_id", "mine_id", "product", "tonnes", "distance_km", "rail_km",
                                        "ship_date"),
        "event_date_local", months[0], pc.month_end(months[-1]))
    mines = pc.read_delta(lake_root, "silver_mines", ("mine_id", "company_id"))
    con.register("shipments", shipments)
    con.register("mines", mines)
    beyond = ">=" if rules["long_haul_bound_inclusive"] else ">"
    return con.execute(f"""
        WITH c AS (
            SELECT date_trunc('month', ship_date)::DATE AS month_start, m.company_id, s.tonnes,
                   s.rail_km > 0 AND CAST(s.rail_km AS DECIMAL(22, 6))
                       >= CAST(s.distance_km AS DECIMAL(22, 6)) * CAST('{rules["multimodal_rail_min_km_share"]!r}'
                                                                       AS DECIMAL(15, 7)) AS counted_as_rail
            FROM shipments s LEFT JOIN mines m USING (mine_id)
            WHERE s.product IN ('raw_coal', 'clean_coal', 'coke')
              AND s.distance_km {beyond} {rules["long_haul_threshold_km"]!r}
        ),
        agg AS (
            SELECT month_start, company_id AS scope_id,
                   sum(CAST(tonnes AS DECIMAL(22, 6))) AS long_haul_t,
                   sum(CASE WHEN counted_as_rail THEN CAST(tonnes AS DECIMAL(22, 6)) ELSE 0 END) AS rail_t
            FROM c GROUP BY ALL
        )
        SELECT month_start, 'company' AS scope_level, scope_id, long_haul_t, rail_t,
               CASE WHEN long_haul_t > 0 THEN CAST(rail_t AS DOUBLE) / CAST(long_haul_t AS DOUBLE) * 100.0 END
                   AS rail_share_tonnes_pct
        FROM agg ORDER BY month_start, scope_id
    """).df()


_FAMILIES = {
    pc.TRUCK_ENERGY.table: truck_energy_daily,
    pc.MINE_ENERGY.table: mine_energy_daily,
    pc.CHARGING_STATION.table: charging_station_daily,
    pc.RAIL_SHARE.table: rail_share_monthly,
}


def gold_kpis(lake_root: Path, start: dt.date, end: dt.date) -> dict[str, pd.DataFrame]:
    """The four KPI families for local days start..end from our silver tables, keyed by our gold table
    name. Each frame's ``attrs["seconds"]`` is its wall-clock time, reading included."""
    out: dict[str, pd.DataFrame] = {}
    con = connect()
    try:
        for table, compute in _FAMILIES.items():
            started = time.perf_counter()
            df = compute(Path(lake_root), start, end, con)
            df.attrs["seconds"] = round(time.perf_counter() - started, 3)
            out[table] = df
    finally:
        con.close()
    return out
