"""Declared schemas of every Delta table: bronze (common shape), silver (one per source), quarantine.

Silver tables are read and written only with these schemas (no inference). Units are in column names;
timestamps are UTC (``*_ts_utc``); ``event_date_local`` is the Asia/Shanghai calendar day of the event
and the partition column, so one day can be rewritten alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

from schemas import sources as S


@dataclass(frozen=True)
class TableSpec:
    name: str                          # table name = folder under its layer root
    layer: str                         # bronze | silver | gold | ops
    schema: T.StructType
    natural_key: tuple[str, ...] = ()
    partition_cols: tuple[str, ...] = ()
    source: str | None = None          # landing source it is built from
    # columns Delta keeps min/max statistics for (file skipping); () = Delta's default, the first 32.
    # Statistics cost write time on every column they cover (measured: 23 % of the telematics bronze
    # write), so the large tables keep them only where a filter uses them.
    stats_cols: tuple[str, ...] = ()


def _struct(*fields: tuple[str, T.DataType] | tuple[str, T.DataType, bool]) -> T.StructType:
    return T.StructType([T.StructField(f[0], f[1], f[2] if len(f) > 2 else True) for f in fields])


S_, D, TS, I, L, B, DATE = T.StringType(), T.DoubleType(), T.TimestampType(), T.IntegerType(), T.LongType(), T.BooleanType(), T.DateType()

# Lineage columns every silver row carries: where it came from, so any number traces to a file and line.
LINEAGE = (("source_file", S_, False), ("record_no", L, False), ("ingested_at", TS, False))

# --- bronze: the same shape for every source but telematics; raw text, nothing typed --------------------------------
BRONZE_SCHEMA = _struct(
    ("source", S_, False),
    ("landing_date", DATE, False),          # delivery-day folder
    ("source_file", S_, False),             # path relative to the landing root
    ("file_sha256", S_, False),
    ("record_no", L, False),                # 1-based data record number in the file (CSV: header excluded)
    ("line_no", L, False),                  # 1-based physical line number in the file
    ("raw_record", S_, True),               # the record's original text (one line)
    ("fields", T.MapType(S_, S_), True),    # CSV: header -> raw value; JSON lines: null
    ("parse_error", S_, True),              # file-level reading problem for this record, else null
    ("ingested_at", TS, False),
)

# Telematics (JSON lines, millions a day) is stored parsed: a frame's raw fields exactly as delivered
# (integer codes, local time text; named after their path in the frame), so typing needs no JSON parse.
# The original text is kept only for lines that are not a valid frame; the landing file, kept and
# checksummed, has every line at ``line_no``.
BRONZE_TELEMATICS_SCHEMA = _struct(
    ("source", S_, False), ("landing_date", DATE, False), ("source_file", S_, False),
    ("file_sha256", S_, False), ("record_no", L, False), ("line_no", L, False),
    ("raw_record", S_, True),               # original text of a line that is not a valid frame, else null
    ("parse_error", S_, True),              # why the line is not a valid frame, else null
    ("ingested_at", TS, False),
    ("vin", S_), ("msg_type", S_), ("collect_time", S_),
    ("vehicle_speed", L), ("vehicle_odometer", L), ("vehicle_total_voltage", L), ("vehicle_total_current", L),
    ("vehicle_soc", L), ("fuel_cell_h2_remaining", L), ("engine_fuel_total", L),
    ("position_valid", L), ("position_coord_sys", S_), ("position_lon", L), ("position_lat", L),
)

INGESTED_FILES_SCHEMA = _struct(
    ("source", S_, False), ("landing_date", DATE, False), ("source_file", S_, False),
    ("file_sha256", S_, False), ("file_bytes", L, False), ("records", L, False),
    ("status", S_, False),                  # ingested | duplicate_content (same checksum seen under another name)
                                            # | rejected (the file could not be read as a whole: see reason)
    ("ingested_at", TS, False), ("header_drift", S_, True),
    ("reason", S_, True),                   # why a rejected file was rejected, else null
    ("file_stamp", S_, True),               # "size:mtime_ns" when the file was scanned (null: it had just
                                            # changed); the same name and stamp again is not read again
)

QUARANTINE_SCHEMA = _struct(
    ("source", S_, False), ("landing_date", DATE, False), ("source_file", S_, False),
    ("file_sha256", S_, False), ("record_no", L, False), ("line_no", L, False),
    ("field", S_, True), ("reason", S_, False), ("raw_record", S_, True), ("quarantined_at", TS, False),
)

INGEST_AUDIT_SCHEMA = _struct(
    ("run_id", S_, False), ("source", S_, False), ("files_new", L, False), ("files_skipped", L, False),
    ("bronze_rows", L, False), ("quarantined_rows", L, False), ("duplicate_rows", L, False),
    ("silver_inserted", L, False), ("silver_updated", L, False), ("event_dates", S_, True),
    ("started_at", TS, False), ("finished_at", TS, False),
)

# --- silver ------------------------------------------------------------------------------------------
SILVER_COLUMNS: dict[str, tuple] = {
    "companies": (("company_id", S_, False), ("company_name", S_)),
    "mines": (("mine_id", S_, False), ("company_id", S_, False), ("mine_name", S_), ("mine_type", S_, False),
              ("banner", S_, False), ("capacity_mt_per_yr", D), ("intelligent_since", DATE), ("lat_deg", D),
              ("lon_deg", D), ("shift_day_start_local", S_)),
    "washing_plants": (("plant_id", S_, False), ("company_id", S_, False), ("mine_id", S_), ("plant_name", S_),
                       ("banner", S_), ("coal_type", S_, False), ("process", S_, False), ("capacity_mt_per_yr", D)),
    "trucks": (("vin", S_, False), ("company_id", S_, False), ("powertrain", S_, False), ("battery_kwh", D),
               ("h2_tank_kg", D), ("rated_payload_t", D), ("swap_capable", B)),
    "charging_stations": (("station_id", S_, False), ("company_id", S_, False), ("station_name", S_),
                          ("banner", S_, False), ("in_mine_area", B), ("lat_deg", D), ("lon_deg", D)),
    "charging_connectors": (("station_id", S_, False), ("connector_id", S_, False), ("rated_kw", D, False)),
    "h2_stations": (("station_id", S_, False), ("company_id", S_, False), ("station_name", S_), ("banner", S_),
                    ("in_mine_area", B), ("nameplate_kg_per_day", D, False), ("dispensers", I, False),
                    ("pressure_class_mpa", I)),
    "production_plan": (("mine_id", S_, False), ("shift_date", DATE, False), ("shift_no", I, False),
                        ("shift_start_ts_utc", TS, False), ("planned_raw_coal_t", D, False),
                        ("trucks_dispatched", I, False), ("published_ts_utc", TS, False),
                        ("event_date_local", DATE, False)),
    "mine_production": (("mine_id", S_, False), ("shift_date", DATE, False), ("shift_no", I, False),
                        ("shift_start_ts_utc", TS, False), ("shift_end_ts_utc", TS), ("raw_coal_t", D, False),
                        ("electricity_kwh", D, False), ("diesel_kg", D), ("other_energy_kgce", D),
                        ("event_date_local", DATE, False)),
    "washing": (("plant_id", S_, False), ("prod_date", DATE, False), ("raw_coal_fed_t", D, False),
                ("clean_coal_t", D, False), ("middlings_t", D), ("gangue_t", D), ("slime_t", D),
                ("electricity_kwh", D, False), ("water_m3", D), ("magnetite_kg", D),
                ("event_date_local", DATE, False)),
    "telematics": (("vin", S_, False), ("event_ts_utc", TS, False), ("msg_type", S_), ("speed_kmh", D),
                   ("odometer_km", D), ("total_voltage_v", D), ("total_current_a", D), ("soc_pct", D),
                   ("h2_remaining_pct", D), ("fuel_total_l", D), ("position_valid", B), ("coord_sys_source", S_),
                   ("lon_wgs84_deg", D), ("lat_wgs84_deg", D), ("event_date_local", DATE, False)),
    "weighbridge": (("ticket_id", S_, False), ("vin", S_, False), ("mine_id", S_, False),
                    ("load_ts_utc", TS, False), ("gross_t", D), ("tare_t", D), ("net_t", D, False),
                    ("destination_id", S_), ("event_date_local", DATE, False)),
    "charging_sessions": (("session_id", S_, False), ("station_id", S_, False), ("connector_id", S_, False),
                          ("vin", S_), ("plug_in_ts_utc", TS, False), ("charge_start_ts_utc", TS),
                          ("charge_end_ts_utc", TS), ("plug_out_ts_utc", TS, False),
                          ("meter_start_kwh", D, False), ("meter_stop_kwh", D, False), ("energy_kwh", D, False),
                          ("max_power_kw", D), ("stop_reason", S_), ("event_date_local", DATE, False)),
    "connector_status": (("station_id", S_, False), ("connector_id", S_, False), ("status_ts_utc", TS, False),
                         ("status_code", I, False), ("status", S_, False), ("event_date_local", DATE, False)),
    "h2_fills": (("fill_id", S_, False), ("station_id", S_, False), ("dispenser_id", S_, False), ("vin", S_),
                 ("start_ts_utc", TS, False), ("end_ts_utc", TS, False), ("h2_kg", D, False),
                 ("pressure_mpa", I), ("event_date_local", DATE, False)),
    "shipments": (("shipment_id", S_, False), ("mine_id", S_, False), ("product", S_, False),
                  ("tonnes", D, False), ("ship_date", DATE, False), ("destination", S_),
                  ("distance_km", D, False), ("legs", S_, False), ("road_km", D, False), ("rail_km", D, False),
                  ("belt_km", D, False), ("mode_pattern", S_, False), ("event_date_local", DATE, False)),
}


def silver_spec(source: str) -> TableSpec:
    src = S.SOURCES[source]
    cols = SILVER_COLUMNS[source]
    partition = () if src.is_dimension else ("event_date_local",)
    return TableSpec(
        name=f"silver_{source}", layer="silver", schema=_struct(*cols, *LINEAGE),
        natural_key=src.natural_key, partition_cols=partition, source=source,
        stats_cols=src.natural_key,     # MERGE's join and lookups of one truck, station or mine
    )


def bronze_spec(source: str) -> TableSpec:
    schema = BRONZE_TELEMATICS_SCHEMA if source == "telematics" else BRONZE_SCHEMA
    return TableSpec(name=f"bronze_{source}", layer="bronze", schema=schema,
                     partition_cols=("landing_date",), source=source,
                     stats_cols=("file_sha256", "source_file", "record_no"))   # replaced and traced by file


SILVER: dict[str, TableSpec] = {s.name: silver_spec(s.name) for s in S.ALL_SOURCES}
BRONZE: dict[str, TableSpec] = {s.name: bronze_spec(s.name) for s in S.ALL_SOURCES}
QUARANTINE = TableSpec("quarantine", "ops", QUARANTINE_SCHEMA, partition_cols=("source",))
INGESTED_FILES = TableSpec("ingested_files", "ops", INGESTED_FILES_SCHEMA, partition_cols=("source",))
INGEST_AUDIT = TableSpec("ingest_audit", "ops", INGEST_AUDIT_SCHEMA)

CONNECTOR_STATUS_NAMES = {1: "idle", 2: "occupied_not_charging", 3: "charging", 4: "reserved", 255: "fault"}
