"""GB/T 32960.3-like decoded frames (bronze frame columns) → typed telematics rows, with Arrow and NumPy.

Raw integers are scaled per ``schemas.sources.TELEMATICS_ENCODING``: sentinels (0xFE/0xFF, 0xFFFE/0xFFFF,
...) mean abnormal/invalid and become null; a raw value above the field's valid range quarantines the
frame. Beijing time (no zone) → UTC. GCJ-02 positions are converted to WGS84.

Millions of frames a day, so the typing runs inside the Spark task that parses the landing file
(``jobs.ingest.frame_stage``), on whole Arrow batches: vectorised NumPy instead of per-row JVM
expressions, and Python code only for the few rows that have a problem (their error texts and the JSON of
their frame for the quarantine). The rules
are the ones every other source follows (``jobs.ingest.casting``): the same checks, the same messages.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

from jobs.ingest.frames import BRONZE_COLUMN, FRAME_COLUMNS
from jobs.ingest.casting import LINEAGE_NAMES, LOCAL_TS_FORMAT, window_reason
from schemas.sources import SOURCES, TELEMATICS_ENCODING, Encoding
from schemas.tables import BRONZE_TELEMATICS_SCHEMA, SILVER

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
# raw fields checked against their valid range, in the order their errors are listed
RANGE_CHECKED = (*[(path, enc) for _, path, enc in DECODED], ("position.lon", "lon"), ("position.lat", "lat"))
_TIME_FIELD = "collect_time"
_GCJ02_NAMES = ("GCJ02", "GCJ-02")

_ERROR_ARROW = pa.list_(pa.struct([("field", pa.string()), ("reason", pa.string())]))


def typed_schema() -> T.StructType:
    """Lineage columns + the silver telematics columns + ``_errors``: a typed frame row."""
    bronze = {f.name: f.dataType for f in BRONZE_TELEMATICS_SCHEMA.fields}
    silver = [f for f in SILVER["telematics"].schema.fields if f.name not in LINEAGE_NAMES]
    error_type = T.ArrayType(T.StructType([T.StructField("field", T.StringType()),
                                           T.StructField("reason", T.StringType())]))
    return T.StructType([*[T.StructField(n, bronze[n]) for n in LINEAGE_NAMES],
                         *[T.StructField(f.name, f.dataType) for f in silver],
                         T.StructField("_errors", error_type)])


_ARROW_TYPE = {T.StringType(): pa.string(), T.DateType(): pa.date32(), T.LongType(): pa.int64(),
               T.DoubleType(): pa.float64(), T.BooleanType(): pa.bool_(),
               T.TimestampType(): pa.timestamp("us", tz="UTC")}   # the session time zone is UTC


def arrow_schema(schema: T.StructType) -> pa.Schema:
    """The Arrow schema of ``typed_schema()`` (what ``type_frame_batch`` returns)."""
    return pa.schema([(f.name, _ERROR_ARROW if f.name == "_errors" else _ARROW_TYPE[f.dataType])
                      for f in schema.fields])


# --- decoding ---------------------------------------------------------------------------------------
def decode_raw(raw: pa.Array, enc: Encoding) -> tuple[np.ndarray, np.ndarray]:
    """(value, out_of_range): value = raw × scale + offset, NaN for null or a sentinel; out_of_range marks
    a raw value (not a sentinel) outside 0..valid_max_raw."""
    ints = pc.fill_null(raw, 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    absent = _is_null(raw) | np.isin(ints, enc.sentinels)
    as_float = ints.astype(np.float64)
    # Divide by 10 rather than multiply by 0.1: 1234567 / 10 is exactly the double nearest 123456.7.
    scaled = as_float / float(round(1 / enc.scale)) if enc.scale < 1 else as_float * enc.scale
    value = np.where(absent, np.nan, scaled + enc.offset)
    out_of_range = ~absent & ((ints > enc.valid_max_raw) | (ints < 0))
    return value, out_of_range


def _is_null(array: pa.Array) -> np.ndarray:
    return array.is_null().to_numpy(zero_copy_only=False)


def _float_array(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.float64(), mask=np.isnan(values))


# --- local time text → UTC ----------------------------------------------------------------------------
_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)   # positions of the digits in yyyy-MM-dd HH:mm:ss
_SEPARATORS = ((4, b"-"), (7, b"-"), (10, b" "), (13, b":"), (16, b":"))
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def local_time_parts(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zone-less ``yyyy-MM-dd HH:mm:ss`` text → (local epoch seconds, local epoch day, valid).

    Strict like Spark's ``try_to_timestamp`` with that pattern: exactly that shape, and a real date and time
    (no 30 February, hour 24 or second 60 rolled over into the next unit), else not valid.
    """
    text = text.cast(pa.large_string()) if not pa.types.is_large_string(text.type) else text
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset:text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], np.uint8) if text.buffers()[2] is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    valid = ~_is_null(text) & (np.diff(offsets) == len(LOCAL_TS_FORMAT))
    starts = np.where(valid, starts, 0)
    if data.size < len(LOCAL_TS_FORMAT):  # no valid text at all (and nothing to index)
        valid[:] = False
        data = np.zeros(len(LOCAL_TS_FORMAT), np.uint8)
    digits = []
    for at in _DIGITS:
        d = data[starts + at].astype(np.int64) - ord("0")
        valid &= (d >= 0) & (d <= 9)
        digits.append(d)
    for at, sep in _SEPARATORS:
        valid &= data[starts + at] == sep[0]
    year = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3]
    month, day = digits[4] * 10 + digits[5], digits[6] * 10 + digits[7]
    hour, minute, second = digits[8] * 10 + digits[9], digits[10] * 10 + digits[11], digits[12] * 10 + digits[13]
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    valid &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    valid &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_from_civil(year, month, day)
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    return np.where(valid, seconds, 0), np.where(valid, days, 0), valid


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), element-wise."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def utc_timestamps(local_seconds: np.ndarray, valid: np.ndarray, tz: str) -> pa.Array:
    """Local wall-clock epoch seconds in zone ``tz`` → UTC instants (timestamp[us, UTC]); invalid → null."""
    naive = pa.array(local_seconds, pa.timestamp("s"), mask=~valid)
    aware = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="earliest")
    return aware.cast(pa.timestamp("us", tz="UTC"))


# --- GCJ-02 → WGS84 (the published "Mars coordinates" offset; one inverse step, error ~1-2 m) ------------
_A = 6378245.0
_EE = 0.00669342162296594323


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pi = np.pi
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    return ret + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pi = np.pi
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    return ret + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0


def gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dlon, dlat) in degrees that WGS84 → GCJ-02 adds at this point."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad_lat) * np.sin(rad_lat)
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = gcj02_offset(lon, lat)
    return lon - dlon, lat - dlat


# --- one batch ----------------------------------------------------------------------------------------
def type_frame_batch(batch: pa.RecordBatch, tz: str, lateness_days: int, schema: pa.Schema) -> pa.RecordBatch:
    """One Arrow batch of bronze frame rows → typed rows (``schema``: lineage, silver columns, ``_errors``)."""
    col = {name: batch.column(name) for name in batch.schema.names}
    n = batch.num_rows
    parse_failed = ~_is_null(col["parse_error"])
    # (rows failing, (kind, field)) in the order the errors are listed
    checks: list[tuple[np.ndarray, tuple[str, str | None]]] = [(parse_failed, ("parse", None))]
    for name in SOURCES["telematics"].required:
        checks.append((~parse_failed & _missing(col, name), ("missing", name)))
    local_s, local_day, time_ok = local_time_parts(col[_TIME_FIELD])
    checks.append((~_is_null(col[_TIME_FIELD]) & ~time_ok, ("time", _TIME_FIELD)))
    decoded: dict[str, np.ndarray] = {}
    for path, enc in RANGE_CHECKED:
        decoded[path], out_of_range = decode_raw(col[BRONZE_COLUMN[path]], TELEMATICS_ENCODING[enc])
        checks.append((out_of_range, ("range", path)))
    landing_day = col["landing_date"].cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    lag_days = landing_day - local_day
    checks.append((time_ok & ((lag_days > lateness_days) | (lag_days < -1)), ("window", _TIME_FIELD)))

    coord_sys = pc.utf8_upper(col["position_coord_sys"])
    is_gcj = pc.fill_null(pc.is_in(coord_sys, pa.array(_GCJ02_NAMES)), False).to_numpy(zero_copy_only=False)
    lon, lat = decoded["position.lon"], decoded["position.lat"]
    if is_gcj.any():
        wgs_lon, wgs_lat = gcj02_to_wgs84(lon[is_gcj], lat[is_gcj])
        lon, lat = lon.copy(), lat.copy()
        lon[is_gcj], lat[is_gcj] = wgs_lon, wgs_lat

    errors, bad = _error_lists(checks, n, col, lag_days, lateness_days)
    raw_record = col["raw_record"]
    if bad.size:  # a bad row that parsed gets its frame as JSON: bronze keeps no text of a parsed frame
        texts = raw_record.take(pa.array(bad)).to_pylist()
        mask = np.zeros(n, bool)
        mask[bad] = True
        raw_record = pc.replace_with_mask(raw_record, pa.array(mask), pa.array(
            [t if t is not None else _frame_json(col, int(i)) for t, i in zip(texts, bad)], pa.string()))
    out = {
        **{name: col[name] for name in LINEAGE_NAMES},
        "raw_record": raw_record,
        "vin": col["vin"],
        "event_ts_utc": utc_timestamps(local_s, time_ok, tz),
        "msg_type": col["msg_type"],
        **{name: _float_array(decoded[path]) for name, path, _ in DECODED},
        "position_valid": pc.equal(col["position_valid"], 1),
        "coord_sys_source": coord_sys,
        "lon_wgs84_deg": _float_array(lon),
        "lat_wgs84_deg": _float_array(lat),
        "event_date_local": pa.array(local_day.astype(np.int32), pa.date32(), mask=~time_ok),
        "_errors": errors,
    }
    return pa.RecordBatch.from_arrays([_as(out[f.name], f.type) for f in schema], schema=schema)


def _as(array: pa.Array, typ: pa.DataType) -> pa.Array:
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return array if array.type == typ else array.cast(typ)


def _missing(col: dict[str, pa.Array], field: str) -> np.ndarray:
    """A top-level frame field is missing: null, or an object whose every field is null (or absent)."""
    missing = None
    for name, path, _ in FRAME_COLUMNS:
        if path[0] == field:
            null = _is_null(col[name])
            missing = null if missing is None else missing & null
    return missing


def _error_lists(checks: list[tuple[np.ndarray, tuple[str, str | None]]], n: int, col: dict[str, pa.Array],
                 lag_days: np.ndarray, lateness_days: int) -> tuple[pa.Array, np.ndarray]:
    """``_errors`` for every row (empty lists for good rows) and the indices of the rows with any error.
    Texts are built in Python for the rows at fault only."""
    masks = np.stack([mask for mask, _ in checks]) if checks else np.zeros((0, n), bool)
    counts = masks.sum(axis=0)
    bad = np.flatnonzero(counts)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    fields: list[str | None] = []
    reasons: list[str] = []
    if bad.size:
        rows = pa.array(bad)
        parse_error = col["parse_error"].take(rows).to_pylist()
        collect_time = col[_TIME_FIELD].take(rows).to_pylist()
        landing = col["landing_date"].take(rows).to_pylist()
        raw_ints = {path: col[BRONZE_COLUMN[path]].take(rows).to_pylist() for path, _ in RANGE_CHECKED}
        for j, i in enumerate(bad):
            for k in np.flatnonzero(masks[:, i]):
                field, reason = _reason(checks[k][1], j, int(i), parse_error, collect_time, landing, raw_ints,
                                        lag_days, lateness_days)
                fields.append(field)
                reasons.append(reason)
    values = pa.StructArray.from_arrays([pa.array(fields, pa.string()), pa.array(reasons, pa.string())],
                                        names=["field", "reason"])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=_ERROR_ARROW), bad


def _reason(check: tuple[str, str | None], j: int, i: int, parse_error, collect_time, landing, raw_ints,
            lag_days, lateness_days: int) -> tuple[str | None, str]:
    """(field, reason) of ``check`` failing on row ``i`` of the batch, ``j`` of the bad rows' value lists,
    in the words of ``jobs.ingest.casting``."""
    kind, field = check
    if kind == "parse":
        return None, parse_error[j]
    if kind == "missing":
        return field, "required field is missing"
    if kind == "time":
        return field, f"cannot read '{collect_time[j]}' as {LOCAL_TS_FORMAT}"
    if kind == "window":
        lag = int(lag_days[i])
        return field, window_reason(landing[j] - dt.timedelta(days=lag), landing[j], lag, lateness_days)
    enc_name = dict(RANGE_CHECKED)[field]
    return field, (f"raw value {raw_ints[field][j]} outside the valid range "
                   f"0..{TELEMATICS_ENCODING[enc_name].valid_max_raw} of {enc_name}")


def _frame_json(col: dict[str, pa.Array], i: int) -> str:
    """A parsed frame written back as JSON (its raw fields as delivered, nulls left out): the quarantine's
    ``raw_record`` for a frame that parsed but failed a check, since bronze keeps no text of valid frames."""
    frame: dict = {}
    for name, path, _ in FRAME_COLUMNS:
        value = col[name][i].as_py()
        node = frame if len(path) == 1 else frame.setdefault(path[0], {})
        if value is not None:
            node[path[-1]] = value
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
