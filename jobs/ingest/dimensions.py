"""Dimension snapshots (companies, mines, plants, trucks, stations, connectors) → typed silver rows."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.casting import Field, add_errors, error, type_csv
from schemas.sources import SOURCES

MINE_TYPES = ("underground", "open_pit")
COAL_TYPES = ("thermal", "coking")
POWERTRAINS = ("BEV", "FCEV", "DIESEL")
WASHING_PROCESSES = ("dry", "jig", "jig_flotation", "jig_dense_medium", "dense_medium", "dense_medium_flotation",
                     "dense_medium_jig_flotation")

FIELDS: dict[str, list[Field]] = {
    "companies": [Field("company_id", "company_id"), Field("company_name", "company_name")],
    "mines": [
        Field("mine_id", "mine_id"), Field("company_id", "company_id"), Field("mine_name", "mine_name"),
        Field("mine_type", "mine_type"), Field("banner", "banner"),
        Field("capacity_mt_per_yr", "capacity_mt_per_yr", "double", 0, 100),
        Field("intelligent_since", "intelligent_since", "date"),
        Field("lat_deg", "lat_deg", "double", -90, 90), Field("lon_deg", "lon_deg", "double", -180, 180),
        Field("shift_day_start_local", "shift_day_start_local"),
    ],
    "washing_plants": [
        Field("plant_id", "plant_id"), Field("company_id", "company_id"), Field("mine_id", "mine_id"),
        Field("plant_name", "plant_name"), Field("banner", "banner"), Field("coal_type", "coal_type"),
        Field("process", "process"), Field("capacity_mt_per_yr", "capacity_mt_per_yr", "double", 0, 100),
    ],
    "trucks": [
        Field("vin", "vin"), Field("company_id", "company_id"), Field("powertrain", "powertrain"),
        Field("battery_kwh", "battery_kwh", "double", 0, 2000), Field("h2_tank_kg", "h2_tank_kg", "double", 0, 200),
        Field("rated_payload_t", "rated_payload_t", "double", 0, 100), Field("swap_capable", "swap_capable", "bool"),
    ],
    "charging_stations": [
        Field("station_id", "station_id"), Field("company_id", "company_id"), Field("station_name", "station_name"),
        Field("banner", "banner"), Field("in_mine_area", "in_mine_area", "bool"),
        Field("lat_deg", "lat_deg", "double", -90, 90), Field("lon_deg", "lon_deg", "double", -180, 180),
    ],
    "charging_connectors": [
        Field("station_id", "station_id"), Field("connector_id", "connector_id"),
        Field("rated_kw", "rated_kw", "double", 0, 5000),
    ],
    "h2_stations": [
        Field("station_id", "station_id"), Field("company_id", "company_id"), Field("station_name", "station_name"),
        Field("banner", "banner"), Field("in_mine_area", "in_mine_area", "bool"),
        Field("nameplate_kg_per_day", "nameplate_kg_per_day", "double", 0, 100_000),
        Field("dispensers", "dispensers", "int", 1, 100), Field("pressure_class_mpa", "pressure_class_mpa", "int"),
    ],
}

_ENUMS = {
    "mines": ("mine_type", MINE_TYPES),
    "washing_plants": ("coal_type", COAL_TYPES),
    "trucks": ("powertrain", POWERTRAINS),
}


def type_dimension(bronze: DataFrame, source: str, tz: str) -> DataFrame:
    spec = SOURCES[source]
    df = type_csv(bronze, FIELDS[source], spec.required, tz)
    if source in _ENUMS:
        col, allowed = _ENUMS[source]
        df = add_errors(df, F.when(F.col(col).isNotNull() & ~F.col(col).isin(*allowed), error(
            col, F.format_string(f"'%s' is not one of {', '.join(allowed)}", F.col(col)))))
    if source == "washing_plants":
        df = add_errors(df, F.when(F.col("process").isNotNull() & ~F.col("process").isin(*WASHING_PROCESSES), error(
            "process", F.format_string("'%s' is not a GB 29446-2019 process class", F.col("process")))))
    return df
