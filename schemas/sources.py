"""The landing contract: every source's file format, fields and natural key.

This module is the single description shared by the sample-world generator (which writes these files)
and the ingestion jobs (which read them). Landing layout::

    <landing_root>/<source>/<yyyy-mm-dd>/<any name>.<csv|jsonl>

The folder date is the *delivery* day (when the file landed), not the event day: a late record sits in
a later folder than its event and still lands in its own event day in silver.

Conventions shared by all sources
---------------------------------
* Any landing file may be gzip-compressed (``.csv.gz``, ``.jsonl.gz``); ingestion reads both.
* CSV: UTF-8, comma separated, one header line, ``"`` quoting; empty field = null.
* JSON lines (telematics): one JSON object per line, UTF-8.
* Local timestamps are ``yyyy-MM-dd HH:mm:ss`` with no zone and mean Asia/Shanghai (Beijing time).
* Dates are ``yyyy-MM-dd`` local calendar days.
* Numbers use ``.`` as decimal separator; units are in the field names.

Telematics frames (decoded GB/T 32960.3 real-time/resend messages) keep the standard's raw integer
encodings; ingestion applies the scale, offset and sentinels listed in ``TELEMATICS_ENCODING``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CSV = "csv"
JSONL = "jsonl"


@dataclass(frozen=True)
class SourceSpec:
    name: str                      # landing folder name and bronze table suffix
    domain: str                    # ingest DAG it belongs to
    file_format: str               # CSV or JSONL
    fields: tuple[str, ...]        # CSV header (exact order written by the generator) / JSON top-level keys
    required: tuple[str, ...]      # fields whose absence (column missing or value empty) quarantines the row
    natural_key: tuple[str, ...]   # silver key the MERGE dedupes on (silver column names)
    is_dimension: bool = False
    description: str = ""


# --- dimensions (snapshots; a newer snapshot upserts by key) ----------------------------------------
COMPANIES = SourceSpec(
    "companies", "mine_operations", CSV,
    ("company_id", "company_name"),
    ("company_id", "company_name"), ("company_id",), True,
    "Mining companies (tenants).",
)
MINES = SourceSpec(
    "mines", "mine_operations", CSV,
    ("mine_id", "company_id", "mine_name", "mine_type", "banner", "capacity_mt_per_yr",
     "intelligent_since", "lat_deg", "lon_deg", "shift_day_start_local"),
    ("mine_id", "company_id", "mine_type", "banner"), ("mine_id",), True,
    "mine_type: underground | open_pit. banner: e.g. Zhungeer, Yijinhuoluo, Etuoke, Etuokeqian, Dongsheng. "
    "shift_day_start_local: HH:mm when the mine's production day starts (often 08:00).",
)
WASHING_PLANTS = SourceSpec(
    "washing_plants", "mine_operations", CSV,
    ("plant_id", "company_id", "mine_id", "plant_name", "banner", "coal_type", "process", "capacity_mt_per_yr"),
    ("plant_id", "company_id", "coal_type", "process"), ("plant_id",), True,
    "coal_type: thermal | coking. process: dry | jig | jig_flotation | jig_dense_medium | dense_medium | "
    "dense_medium_flotation | dense_medium_jig_flotation (GB 29446-2019 process classes). mine_id: the mine "
    "whose raw coal it washes (empty for a central plant).",
)
TRUCKS = SourceSpec(
    "trucks", "fleet_telematics", CSV,
    ("vin", "company_id", "powertrain", "battery_kwh", "h2_tank_kg", "rated_payload_t", "swap_capable"),
    ("vin", "company_id", "powertrain", "rated_payload_t"), ("vin",), True,
    "powertrain: BEV | FCEV | DIESEL. battery_kwh (BEV: 282 or 141; FCEV: small buffer pack e.g. 100), "
    "h2_tank_kg (FCEV only, 56-80). swap_capable: true|false.",
)
CHARGING_STATIONS = SourceSpec(
    "charging_stations", "charging", CSV,
    ("station_id", "company_id", "station_name", "banner", "in_mine_area", "lat_deg", "lon_deg"),
    ("station_id", "company_id", "banner"), ("station_id",), True,
    "in_mine_area: true|false.",
)
CHARGING_CONNECTORS = SourceSpec(
    "charging_connectors", "charging", CSV,
    ("station_id", "connector_id", "rated_kw"),
    ("station_id", "connector_id", "rated_kw"), ("station_id", "connector_id"), True,
    "connector_id is unique only within its station.",
)
H2_STATIONS = SourceSpec(
    "h2_stations", "hydrogen", CSV,
    ("station_id", "company_id", "station_name", "banner", "in_mine_area", "nameplate_kg_per_day",
     "dispensers", "pressure_class_mpa"),
    ("station_id", "company_id", "nameplate_kg_per_day", "dispensers"), ("station_id",), True,
    "pressure_class_mpa: 35 or 70.",
)

# --- events ----------------------------------------------------------------------------------------
MINE_PRODUCTION = SourceSpec(
    "mine_production", "mine_operations", CSV,
    ("mine_id", "shift_date", "shift_no", "shift_start_local", "shift_end_local", "raw_coal_t",
     "electricity_kwh", "diesel_kg", "other_energy_kgce"),
    ("mine_id", "shift_date", "shift_no", "shift_start_local", "raw_coal_t", "electricity_kwh"),
    ("mine_id", "shift_date", "shift_no"), False,
    "One row per mine shift. shift_date is the mine's shift-day (local date on which the shift-day "
    "starts); shift_no 1..3. diesel_kg and other_energy_kgce may be empty (= 0 not known).",
)
PRODUCTION_PLAN = SourceSpec(
    "production_plan", "mine_operations", CSV,
    ("mine_id", "shift_date", "shift_no", "shift_start_local", "planned_raw_coal_t", "trucks_dispatched",
     "published_local"),
    ("mine_id", "shift_date", "shift_no", "shift_start_local", "planned_raw_coal_t", "trucks_dispatched",
     "published_local"),
    ("mine_id", "shift_date", "shift_no"), False,
    "Day-ahead production plan, one row per mine shift: planned raw-coal tonnes and trucks dispatched (all "
    "powertrains). published_local: when the dispatch office released it, normally the evening before the "
    "shift-day; a plan may only be used from that time on. 0 tonnes and 0 trucks = a planned stop "
    "(maintenance day). The file lands on the publication day.",
)
WASHING = SourceSpec(
    "washing", "mine_operations", CSV,
    ("plant_id", "prod_date", "raw_coal_fed_t", "clean_coal_t", "middlings_t", "gangue_t", "slime_t",
     "electricity_kwh", "water_m3", "magnetite_kg"),
    ("plant_id", "prod_date", "raw_coal_fed_t", "clean_coal_t", "electricity_kwh"),
    ("plant_id", "prod_date"), False,
    "One row per plant day. Mass balance: clean + middlings + gangue + slime ~= raw fed (moisture aside).",
)
TELEMATICS = SourceSpec(
    "telematics", "fleet_telematics", JSONL,
    ("vin", "msg_type", "collect_time", "vehicle", "fuel_cell", "engine", "position"),
    ("vin", "collect_time", "vehicle"), ("vin", "event_ts_utc"), False,
    "Decoded GB/T 32960.3 frames, one per line, e.g.\n"
    '{"vin":"LZT0001","msg_type":"realtime","collect_time":"2026-11-01 08:00:10",'
    '"vehicle":{"speed":352,"odometer":1234567,"total_voltage":6120,"total_current":31200,"soc":78},'
    '"fuel_cell":{"h2_remaining":64},'
    '"position":{"valid":1,"coord_sys":"WGS84","lon":109781234,"lat":39608765}}\n'
    "msg_type: realtime | resend (resend = late re-transmission, same content). fuel_cell is null for "
    "BEV/diesel. Diesel trucks (remote OBD per GB 17691) send vehicle.total_voltage/total_current/soc as the "
    "invalid sentinel and an engine block {\"fuel_total\": cumulative fuel used, 0.1 L}; engine is null for "
    "BEV/FCEV.",
)
WEIGHBRIDGE = SourceSpec(
    "weighbridge", "logistics", CSV,
    ("ticket_id", "vin", "mine_id", "load_time_local", "gross_t", "tare_t", "net_t", "destination_id"),
    ("ticket_id", "vin", "mine_id", "load_time_local", "net_t"), ("ticket_id",), False,
    "One ticket per loaded trip leaving a mine. net_t = gross_t - tare_t.",
)
CHARGING_SESSIONS = SourceSpec(
    "charging_sessions", "charging", CSV,
    ("session_id", "station_id", "connector_id", "vin", "plug_in_local", "charge_start_local",
     "charge_end_local", "plug_out_local", "meter_start_kwh", "meter_stop_kwh", "max_power_kw", "stop_reason"),
    ("session_id", "station_id", "connector_id", "plug_in_local", "plug_out_local", "meter_start_kwh",
     "meter_stop_kwh"),
    ("session_id",), False,
    "OCPP-like transaction: meter_* are the connector's cumulative energy register (kWh). "
    "energy = meter_stop - meter_start. Times are local.",
)
CONNECTOR_STATUS = SourceSpec(
    "connector_status", "charging", CSV,
    ("station_id", "connector_id", "status_time_local", "status_code"),
    ("station_id", "connector_id", "status_time_local", "status_code"),
    ("station_id", "connector_id", "status_ts_utc"), False,
    "T/CEC 102 status change events: 1 idle, 2 occupied (plugged, not charging), 3 charging, 4 reserved, "
    "255 fault. A status holds until the next event of the same connector.",
)
H2_FILLS = SourceSpec(
    "h2_fills", "hydrogen", CSV,
    ("fill_id", "station_id", "dispenser_id", "vin", "start_local", "end_local", "h2_kg", "pressure_mpa"),
    ("fill_id", "station_id", "dispenser_id", "start_local", "end_local", "h2_kg"), ("fill_id",), False,
    "One hydrogen fill. pressure_mpa: 35 or 70.",
)
SHIPMENTS = SourceSpec(
    "shipments", "logistics", CSV,
    ("shipment_id", "mine_id", "product", "tonnes", "ship_date", "destination", "distance_km", "legs"),
    ("shipment_id", "mine_id", "product", "tonnes", "ship_date", "distance_km", "legs"),
    ("shipment_id",), False,
    "product: raw_coal | clean_coal | coke. legs: '|'-separated 'mode:km' in travel order, modes road, "
    "rail, belt; e.g. 'road:35|rail:1120'. distance_km = sum of leg km.",
)

ALL_SOURCES: tuple[SourceSpec, ...] = (
    COMPANIES, MINES, WASHING_PLANTS, TRUCKS, CHARGING_STATIONS, CHARGING_CONNECTORS, H2_STATIONS,
    PRODUCTION_PLAN, MINE_PRODUCTION, WASHING, TELEMATICS, WEIGHBRIDGE, CHARGING_SESSIONS, CONNECTOR_STATUS, H2_FILLS, SHIPMENTS,
)
SOURCES = {s.name: s for s in ALL_SOURCES}
DOMAINS = ("mine_operations", "fleet_telematics", "charging", "hydrogen", "logistics")


def sources_of(domain: str) -> tuple[SourceSpec, ...]:
    """Sources of one ingest DAG, dimensions first (events are checked against them)."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    members = [s for s in ALL_SOURCES if s.domain == domain]
    return tuple(sorted(members, key=lambda s: not s.is_dimension))


# GB/T 32960.3 encodings of the telematics vehicle/fuel-cell/position blocks: value = raw * scale + offset;
# raw values in `sentinels` mean "abnormal" (0xFE / 0xFFFE / ...) or "invalid" (0xFF / 0xFFFF / ...) -> null.
@dataclass(frozen=True)
class Encoding:
    scale: float
    offset: float
    sentinels: tuple[int, ...]
    valid_max_raw: int


BYTE_SENTINELS = (0xFE, 0xFF)
WORD_SENTINELS = (0xFFFE, 0xFFFF)
DWORD_SENTINELS = (0xFFFFFFFE, 0xFFFFFFFF)
TELEMATICS_ENCODING: dict[str, Encoding] = {
    "speed": Encoding(0.1, 0.0, WORD_SENTINELS, 2200),                 # 0.1 km/h, 0..220 km/h
    "odometer": Encoding(0.1, 0.0, DWORD_SENTINELS, 9_999_999),        # 0.1 km
    "total_voltage": Encoding(0.1, 0.0, WORD_SENTINELS, 10_000),       # 0.1 V, 0..1000 V
    "total_current": Encoding(0.1, -3000.0, WORD_SENTINELS, 60_000),   # 0.1 A, offset -3000 A (2025 edition)
    "soc": Encoding(1.0, 0.0, BYTE_SENTINELS, 100),                    # %
    "h2_remaining": Encoding(1.0, 0.0, BYTE_SENTINELS, 100),           # % of tank
    "fuel_total": Encoding(0.1, 0.0, DWORD_SENTINELS, 4_000_000_000),  # 0.1 L cumulative diesel used
    "lon": Encoding(1e-6, 0.0, DWORD_SENTINELS, 180_000_000),          # degrees x 1e6
    "lat": Encoding(1e-6, 0.0, DWORD_SENTINELS, 90_000_000),
}
# Current sign: positive = discharge (traction), negative = charging or regenerative braking.
