"""GB/T 32960.3-like decoded frames (JSON lines) → typed telematics rows.

Raw integers are scaled per ``schemas.sources.TELEMATICS_ENCODING``: sentinels (0xFE/0xFF, 0xFFFE/0xFFFF,
...) mean abnormal/invalid and become null; a raw value above the field's valid range quarantines the
frame. Beijing time (no zone) → UTC. GCJ-02 positions are converted to WGS84.
"""
from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ingest.frames import BRONZE_COLUMN, FRAME_COLUMNS
from jobs.ingest.typing import (ERROR_TYPE, LINEAGE_NAMES, LOCAL_TS_FORMAT, error, lineage_columns, local_date_of,
                                local_ts)
from schemas.sources import SOURCES, TELEMATICS_ENCODING

# (silver column, path in the frame, encoding name)
DECODED = (
    ("speed_kmh", "vehicle.speed", "speed"),
    ("odometer_km", "vehicle.odometer", "odometer"),
    ("total_voltage_v", "vehicle.total_voltage", "total_voltage"),
    ("total_current_a", "vehicle.total_current", "total_current"),
    ("soc_pct", "vehicle.soc", "soc"),
    ("h2_remaining_pct", "fuel_cell.h2_remaining", "h2_remaining"),
    ("fuel_total_l", "engine.fuel_total", "fuel_total"),
)


def decode_raw(raw_value: Column, encoding_name: str) -> Column:
    """value = raw × scale + offset; sentinel → null. (Range violations are reported separately.)"""
    enc = TELEMATICS_ENCODING[encoding_name]
    return (F.when(raw_value.isNull() | raw_value.isin(*enc.sentinels), F.lit(None).cast("double"))
            .otherwise(_scaled(raw_value, enc.scale) + F.lit(enc.offset)))


def _scaled(raw_value: Column, scale: float) -> Column:
    # Divide by 10 rather than multiply by 0.1: 1234567 / 10 is exactly the double nearest 123456.7.
    if scale < 1:
        return raw_value.cast("double") / F.lit(float(round(1 / scale)))
    return raw_value.cast("double") * F.lit(scale)


def _range_error(raw_value: Column, encoding_name: str, field: str) -> Column:
    enc = TELEMATICS_ENCODING[encoding_name]
    bad = raw_value.isNotNull() & ~raw_value.isin(*enc.sentinels) & ((raw_value > enc.valid_max_raw) | (raw_value < 0))
    return F.when(bad, error(field, F.format_string(
        f"raw value %d outside the valid range 0..{enc.valid_max_raw} of {encoding_name}", raw_value)))


# --- GCJ-02 → WGS84 (the published "Mars coordinates" offset; one inverse step, error ~1-2 m) ------------
_A = 6378245.0
_EE = 0.00669342162296594323


def _transform_lat(x: Column, y: Column) -> Column:
    pi = math.pi
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * F.sqrt(F.abs(x))
    ret = ret + (20.0 * F.sin(6.0 * x * pi) + 20.0 * F.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret = ret + (20.0 * F.sin(y * pi) + 40.0 * F.sin(y / 3.0 * pi)) * 2.0 / 3.0
    return ret + (160.0 * F.sin(y / 12.0 * pi) + 320.0 * F.sin(y * pi / 30.0)) * 2.0 / 3.0


def _transform_lon(x: Column, y: Column) -> Column:
    pi = math.pi
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * F.sqrt(F.abs(x))
    ret = ret + (20.0 * F.sin(6.0 * x * pi) + 20.0 * F.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret = ret + (20.0 * F.sin(x * pi) + 40.0 * F.sin(x / 3.0 * pi)) * 2.0 / 3.0
    return ret + (150.0 * F.sin(x / 12.0 * pi) + 300.0 * F.sin(x / 30.0 * pi)) * 2.0 / 3.0


def gcj02_offset(lon: Column, lat: Column) -> tuple[Column, Column]:
    """(dlon, dlat) in degrees that WGS84 → GCJ-02 adds at this point."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * F.sin(rad_lat) * F.sin(rad_lat)
    sqrt_magic = F.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * F.cos(rad_lat) * math.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: Column, lat: Column) -> tuple[Column, Column]:
    dlon, dlat = gcj02_offset(lon, lat)
    return lon - dlon, lat - dlat


def type_telematics(bronze: DataFrame, tz: str) -> DataFrame:
    """Bronze frames (raw fields, parsed at bronze) → typed rows + ``_errors``: decode, then convert.

    Each stage reads the previous one's columns, so an expression used many times (a decoded
    longitude appears some thirty times in the GCJ-02 formulas) is computed once per row instead of
    being copied into every place that uses it.
    """
    required = SOURCES["telematics"].required
    raw_paths = [(f"_raw_{name}", path, enc) for name, path, enc in DECODED] + [
        ("_raw_lon", "position.lon", "lon"), ("_raw_lat", "position.lat", "lat")]
    stage1 = bronze.select(
        *lineage_columns(), F.col("parse_error"),
        "vin", "msg_type", F.col("collect_time").alias("_collect_time"),
        *[_missing(name).alias(f"_missing_{name}") for name in required],
        *[F.col(BRONZE_COLUMN[path]).alias(col) for col, path, _ in raw_paths],
        (F.col("position_valid") == 1).alias("position_valid"),
        F.upper(F.col("position_coord_sys")).alias("coord_sys_source"),
        _frame_json().alias("_frame_json"),
    )
    stage2 = stage1.select(
        "*",
        *[decode_raw(F.col(f"_raw_{name}"), enc).alias(name) for name, _, enc in DECODED],
        decode_raw(F.col("_raw_lon"), "lon").alias("_lon"), decode_raw(F.col("_raw_lat"), "lat").alias("_lat"),
    )
    lon, lat = F.col("_lon"), F.col("_lat")
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    is_gcj = F.col("coord_sys_source").isin("GCJ02", "GCJ-02")
    collect_time = F.col("_collect_time")
    ok_frame = F.col("parse_error").isNull()
    checks = [
        F.when(F.col("parse_error").isNotNull(), error(None, F.col("parse_error"))),
        *[F.when(ok_frame & F.col(f"_missing_{name}"), error(name, "required field is missing")) for name in required],
        F.when(collect_time.isNotNull() & F.try_to_timestamp(collect_time, F.lit(LOCAL_TS_FORMAT)).isNull(),
               error("collect_time", F.format_string("cannot read '%s' as yyyy-MM-dd HH:mm:ss", collect_time))),
        *[_range_error(F.col(col), enc, path) for col, path, enc in raw_paths],
    ]
    return stage2.select(
        *[c if c != "raw_record" else F.coalesce("raw_record", "_frame_json").alias("raw_record")
          for c in LINEAGE_NAMES],
        "vin",
        local_ts(collect_time, tz).alias("event_ts_utc"),
        "msg_type",
        *[name for name, _, _ in DECODED],
        "position_valid",
        "coord_sys_source",
        F.when(is_gcj, wgs_lon).otherwise(lon).alias("lon_wgs84_deg"),
        F.when(is_gcj, wgs_lat).otherwise(lat).alias("lat_wgs84_deg"),
        local_date_of(collect_time).alias("event_date_local"),
        F.array(*checks).cast(ERROR_TYPE).alias("_errors"),
    )


def _missing(field: str) -> Column:
    """A top-level frame field is missing: null, or an object whose every field is null (or absent)."""
    columns = [name for name, path, _ in FRAME_COLUMNS if path[0] == field]
    missing = F.col(columns[0]).isNull()
    for name in columns[1:]:
        missing = missing & F.col(name).isNull()
    return missing


def _frame_json() -> Column:
    """A parsed frame written back as JSON (its raw fields as delivered, nulls left out): the quarantine's
    ``raw_record`` for a frame that parsed but failed a check, since bronze keeps no text of valid frames."""
    top: list[Column] = []
    groups: dict[str, list[Column]] = {}
    for name, path, _ in FRAME_COLUMNS:
        if len(path) == 1:
            top.append(F.col(name).alias(path[0]))
        else:
            groups.setdefault(path[0], []).append(F.col(name).alias(path[1]))
    return F.to_json(F.struct(*top, *[F.struct(*cols).alias(group) for group, cols in groups.items()]))
