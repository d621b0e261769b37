"""pandas peer of the pipeline: the same telematics ingestion and four gold KPI families, with the json
module, numpy and pandas.

Written from the rules (``schemas/sources.py``, the KPI module docstrings, ``docs/kpis.md``), not
translated from our Spark code, so that agreement means something. Contract and comparison:
``jobs/tools/bench/peer_contract.py``.

Ingestion (:func:`ingest_telematics`) parses with the json module, thousands of lines per call
(``pd.read_json`` gives up on a whole file at its first truncated line), builds columns with
``DataFrame.from_records`` and types like Spark's JSON reader: a raw value that is not a JSON integer,
or a block that is not an object, makes the frame malformed (checked against Spark 4 ``from_json``). One
difference: a line with text after its JSON object is malformed here, while Spark reads the object and
ignores the rest; the generator writes no such line. Everything after parsing is vectorised.

Gold (:func:`gold_kpis`): our silver Delta tables are read with delta-rs (partition-pruned Arrow
tables) and computed in pandas. Quantities are doubles (ours sum exact decimals); the difference stays
near 1e-12 relative.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.tools.bench import peer_contract as pc
from schemas.sources import SOURCES, TELEMATICS_ENCODING

# JSON paths of the raw integers, in the order of the parsed tuple after vin, msg_type, collect_time
_RAW_FIELDS = (
    ("vehicle", "speed"), ("vehicle", "odometer"), ("vehicle", "total_voltage"), ("vehicle", "total_current"),
    ("vehicle", "soc"), ("fuel_cell", "h2_remaining"), ("engine", "fuel_total"), ("position", "lon"),
    ("position", "lat"),
)
# silver column <- raw field (encoding name = field name)
_DECODED = (
    ("speed_kmh", "speed"), ("odometer_km", "odometer"), ("total_voltage_v", "total_voltage"),
    ("total_current_a", "total_current"), ("soc_pct", "soc"), ("h2_remaining_pct", "h2_remaining"),
    ("fuel_total_l", "fuel_total"),
)
_LONG_MIN, _LONG_MAX = -(2 ** 63), 2 ** 63 - 1
_BLOCKS = ("vehicle", "fuel_cell", "engine", "position")
_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK_LINES = 20_000
_SHORT_CHUNK_LINES = 32


def _text_of(path: Path) -> str:
    """File bytes -> text: gzip by magic number, UTF-8 (BOM stripped), else GB18030."""
    content = path.read_bytes()
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    if content.startswith(_UTF8_BOM):
        content = content[len(_UTF8_BOM):]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("gb18030", errors="replace")


def _loads_or_none(line: str):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _parse_chunk(lines: list[str], out: list) -> None:
    """Append one parsed value per line (None for a malformed line). The chunk is parsed as one JSON
    array; when that fails (or does not give one value per line) it is halved until the malformed lines
    are isolated, and short chunks are parsed line by line."""
    if len(lines) <= _SHORT_CHUNK_LINES:
        out.extend(_loads_or_none(line) for line in lines)
        return
    try:
        parsed = json.loads("[" + ",".join(lines) + "]")
        if len(parsed) == len(lines):
            out.extend(parsed)
            return
    except (ValueError, RecursionError):
        pass
    half = len(lines) // 2
    _parse_chunk(lines[:half], out)
    _parse_chunk(lines[half:], out)


def _json_objects(text: str) -> tuple[int, list[dict]]:
    """(non-blank lines, the JSON objects among them in line order). Lines are parsed thousands at a time
    (one C call instead of one per line); a line that cannot end a JSON object is malformed unparsed."""
    lines = [line for line in text.splitlines() if line.strip()]
    candidates = [line for line in lines if line.rstrip().endswith("}")]
    objects: list = []
    for i in range(0, len(candidates), _CHUNK_LINES):
        _parse_chunk(candidates[i:i + _CHUNK_LINES], objects)
    return len(lines), [o for o in objects if type(o) is dict]


def _text_column(s: pd.Series) -> pd.Series:
    """A JSON string field; a non-string value reads as its JSON text, as in Spark's JSON reader."""
    s = s.astype(object).where(s.notna(), None)
    if pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s
    return s.map(lambda v: v if v is None or type(v) is str else json.dumps(v))


def _int_column(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64, NaN = null; malformed) of a raw integer field. Anything but a JSON integer
    that fits a long (a fraction, text, a boolean, an object) makes the frame malformed, as Spark's reader
    does with a LongType field. Raw integers are exact in a double up to 2^53, far above every valid
    range and sentinel."""
    if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype="float64"), np.zeros(len(s), dtype=bool)
    if pd.api.types.is_float_dtype(s.dtype):
        values = s.to_numpy(dtype="float64")
        return values, ~np.isnan(values) & (values != np.trunc(values))
    ok = np.array([v is None or (type(v) is float and v != v) or (type(v) is int and _LONG_MIN <= v <= _LONG_MAX)
                   for v in s], dtype=bool)
    values = np.array([float(v) if good and type(v) is int else np.nan for v, good in zip(s, ok)], dtype="float64")
    return values, ~ok


def _frames_table(objects: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    """Top-level text fields, raw integers (float64) and a malformed flag per parsed frame."""
    top = pd.DataFrame.from_records(objects, columns=["vin", "msg_type", "collect_time", *_BLOCKS])
    malformed = np.zeros(len(top), dtype=bool)
    out = pd.DataFrame({c: _text_column(top[c]) for c in ("vin", "msg_type", "collect_time")})
    out["vehicle_present"] = top["vehicle"].notna().to_numpy()
    for block in _BLOCKS:
        values = top[block].tolist()
        is_dict = np.array([type(v) is dict for v in values], dtype=bool)
        malformed |= ~is_dict & top[block].notna().to_numpy()      # a block that is not an object
        fields = [f for b, f in _RAW_FIELDS if b == block] + (["coord_sys"] if block == "position" else [])
        inner = pd.DataFrame.from_records([v if d else {} for v, d in zip(values, is_dict)], columns=fields)
        for f in fields:
            if f == "coord_sys":
                out[f] = _text_column(inner[f])
            else:
                out[f], bad = _int_column(inner[f])
                malformed |= bad
    return out, malformed


def _decode(raw: np.ndarray, encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(value, out_of_range) of a raw column: raw x scale + offset, sentinel -> NaN; a raw value outside
    0..valid_max that is not a sentinel is out of range."""
    enc = TELEMATICS_ENCODING[encoding]
    sentinel = np.isin(raw, np.array(enc.sentinels, dtype="float64"))
    out_of_range = ~np.isnan(raw) & ~sentinel & ((raw > enc.valid_max_raw) | (raw < 0))
    # scales below 1 divide: x / 10 is the double nearest the decimal value, x * 0.1 is not always
    scaled = raw / float(round(1 / enc.scale)) if enc.scale < 1 else raw * float(enc.scale)
    return np.where(sentinel, np.nan, scaled + float(enc.offset)), out_of_range


_A, _EE = 6378245.0, 0.00669342162296594323


def _gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the GCJ-02 offset computed at the GCJ point (one inverse step, ~1-2 m error)."""
    pi = math.pi
    x, y = lon - 105.0, lat - 35.0
    t_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
             + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    t_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
             + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
             + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    rad_lat = lat / 180.0 * pi
    magic = 1 - _EE * np.sin(rad_lat) * np.sin(rad_lat)
    sqrt_magic = np.sqrt(magic)
    dlat = (t_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (t_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * pi)
    return lon - dlon, lat - dlat


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
    rows_in = 0
    objects: list[dict] = []
    file_rank: list[np.ndarray] = []
    for rank, (_day, path) in enumerate(ordered):
        n, objs = _json_objects(_text_of(path))
        rows_in += n
        objects.extend(objs)
        file_rank.append(np.full(len(objs), rank, dtype="int64"))
    df, rejected = _frames_table(objects)
    rows_malformed = rows_in - len(objects)
    del objects

    landing = np.array([d for d, _ in ordered], dtype="datetime64[D]")[np.concatenate(file_rank)] if ordered \
        else np.array([], dtype="datetime64[D]")
    local_ts = pd.to_datetime(df["collect_time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    event_day = local_ts.to_numpy(dtype="datetime64[D]")
    lag = landing - event_day
    lag_days = np.where(np.isnat(lag), np.nan, lag.astype("timedelta64[D]").astype("float64"))
    missing = {"vin": df["vin"].isna(), "collect_time": df["collect_time"].isna(), "vehicle": ~df["vehicle_present"]}
    for name in SOURCES["telematics"].required:
        rejected |= missing[name].to_numpy()
    rejected |= local_ts.isna().to_numpy()
    decoded = {}
    for _, field in _RAW_FIELDS:
        decoded[field], out_of_range = _decode(df[field].to_numpy(), field)
        rejected |= out_of_range
    rejected |= (lag_days > lateness_allowance_days) | (lag_days < -1)

    lon, lat = decoded["lon"], decoded["lat"]
    is_gcj = df["coord_sys"].str.upper().isin(["GCJ02", "GCJ-02"]).to_numpy()
    wgs_lon, wgs_lat = _gcj02_to_wgs84(lon, lat)
    event_ts_utc = (local_ts.dt.tz_localize(source_timezone, ambiguous="NaT", nonexistent="shift_forward")
                    .dt.tz_convert("UTC").astype("datetime64[us, UTC]"))
    silver = pd.DataFrame({
        "vin": df["vin"], "event_ts_utc": event_ts_utc, "msg_type": df["msg_type"],
        **{col: decoded[field] for col, field in _DECODED},
        "lon_wgs84_deg": np.where(is_gcj, wgs_lon, lon), "lat_wgs84_deg": np.where(is_gcj, wgs_lat, lat),
        "event_date_local": event_day,
    })
    # rows are in delivery order (files sorted, lines in order): the last copy of a key is the latest
    silver = silver[~rejected].drop_duplicates(["vin", "event_ts_utc"], keep="last")
    table = pa.Table.from_pandas(silver.drop(columns="event_date_local"), preserve_index=False).append_column(
        "event_date_local", pa.array(silver["event_date_local"].to_numpy(dtype="datetime64[D]"), pa.date32()))
    out_parquet = Path(out_parquet)
    out_parquet.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.select(list(pc.SILVER_TELEMATICS_COLUMNS)), out_parquet)
    rows_rejected = rows_malformed + int(rejected.sum())
    return {"rows_in": rows_in, "rows_out": len(silver), "rows_rejected": rows_rejected,
            "rows_duplicate": rows_in - rows_rejected - len(silver),
            "seconds": round(time.perf_counter() - started, 3)}


# --- gold KPIs ----------------------------------------------------------------------------------------------
_TELEMATICS_READ = ("vin", "event_ts_utc", "event_date_local", "speed_kmh", "odometer_km", "total_voltage_v",
                    "total_current_a", "h2_remaining_pct", "fuel_total_l")


def _epoch_s(ts: pd.Series) -> np.ndarray:
    """Seconds since the epoch as doubles, as our Spark code takes them (unix_micros / 1e6); NaT -> NaN."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    values = ts.to_numpy(dtype="datetime64[us]")
    return np.where(np.isnat(values), np.nan, values.view("int64").astype("float64") / 1e6)


def _read(lake_root: Path, table: str, columns, first: dt.date | None = None, last: dt.date | None = None,
          partition_col: str | None = "event_date_local") -> pd.DataFrame:
    """A silver table (days first..last of its partition column) as pandas; dates as datetime64."""
    arrow = pc.read_delta(lake_root, table, columns, partition_col if first or last else None, first, last)
    df = arrow.to_pandas(date_as_object=False)
    for name in df.columns:
        if pd.api.types.is_datetime64_dtype(df[name].dtype):
            df[name] = df[name].astype("datetime64[us]")
    return df


def truck_energy_daily(lake_root: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
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
    window = _read(lake_root, "silver_telematics", _TELEMATICS_READ, start - dt.timedelta(days=1),
                   end + dt.timedelta(days=1))
    later = _read(lake_root, "silver_telematics", _TELEMATICS_READ, end + dt.timedelta(days=2))
    later = later.sort_values(["vin", "event_ts_utc"]).drop_duplicates("vin", keep="first")
    trucks = _read(lake_root, "silver_trucks", ("vin", "company_id", "powertrain", "h2_tank_kg"))
    f = pd.concat([window, later], ignore_index=True) if len(later) else window
    f = f.sort_values(["vin", "event_ts_utc"], ignore_index=True)

    same_truck = (f["vin"].shift(-1) == f["vin"]).to_numpy()

    def nxt(col: str) -> np.ndarray:
        values = f[col].shift(-1).to_numpy(dtype="float64", na_value=np.nan)
        return np.where(same_truck, values, np.nan)

    ts = _epoch_s(f["event_ts_utc"])
    next_ts = np.where(same_truck, np.roll(ts, -1), np.nan)
    dt_s = next_ts - ts
    odo = f["odometer_km"].to_numpy(dtype="float64", na_value=np.nan)
    odo_step = nxt("odometer_km") - odo
    speed = f["speed_kmh"].to_numpy(dtype="float64", na_value=np.nan)
    volt = f["total_voltage_v"].to_numpy(dtype="float64", na_value=np.nan)
    amp = f["total_current_a"].to_numpy(dtype="float64", na_value=np.nan)
    h2_drop = f["h2_remaining_pct"].to_numpy(dtype="float64", na_value=np.nan) - nxt("h2_remaining_pct")
    fuel_step = nxt("fuel_total_l") - f["fuel_total_l"].to_numpy(dtype="float64", na_value=np.nan)
    tank = f[["vin"]].merge(trucks[["vin", "h2_tank_kg"]], on="vin", how="left")["h2_tank_kg"].to_numpy(
        dtype="float64", na_value=np.nan)

    has_next = same_truck
    moving = (speed > 0) | (odo_step > 0)                       # NaN compares false
    integrated = has_next & (dt_s <= gap_s) & ~np.isnan(volt) & ~np.isnan(amp)
    e_kwh = volt * amp * dt_s / 3.6e6
    distance = np.where(odo_step >= 0, odo_step, 0.0)
    with np.errstate(invalid="ignore"):
        iv = pd.DataFrame({
            "date_local": f["event_date_local"], "vin": f["vin"],
            "integrated_s": np.where(integrated, dt_s, 0.0),
            "gap_s": np.where(~integrated & has_next, dt_s, 0.0),
            "distance_km": distance,
            "integrated_distance_km": np.where(integrated, distance, 0.0),
            "battery_discharge_kwh": np.where(integrated & (amp > 0), e_kwh, 0.0),
            "regen_kwh": np.where(integrated & (amp < 0) & moving, -e_kwh, 0.0),
            "h2_used_kg": np.where(h2_drop > 0, h2_drop * tank / 100.0, 0.0),
            "diesel_l": np.where(fuel_step > 0, fuel_step, 0.0),
        })
    day = iv["date_local"]
    iv = iv[(day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))]
    sums = ["integrated_s", "gap_s", "distance_km", "integrated_distance_km", "battery_discharge_kwh", "regen_kwh",
            "h2_used_kg", "diesel_l"]
    grouped = iv.groupby(["date_local", "vin"], sort=True)
    out = grouped[sums].sum(min_count=1)
    out.insert(0, "frames", grouped.size())
    out = out.reset_index().merge(trucks[["vin", "company_id", "powertrain"]], on="vin", how="left")
    out["battery_net_kwh"] = out["battery_discharge_kwh"] - out["regen_kwh"]
    return out


def mine_energy_daily(lake_root: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per (shift_date, mine_id), rules of jobs/kpi/mine_energy.py: sums over the mine's shifts of the
    shift-day; kgce = electricity kWh x electricity factor (equivalent basis, the basis our build grades
    on) + diesel kg x diesel factor + other kgce, factors in force on the shift-day; empty diesel or
    other energy = 0."""
    p = _read(lake_root, "silver_mine_production",
              ("mine_id", "shift_date", "raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce"), start, end)
    p["diesel_kg"] = p["diesel_kg"].fillna(0.0)
    p["other_energy_kgce"] = p["other_energy_kgce"].fillna(0.0)
    day = p.groupby(["shift_date", "mine_id"], as_index=False)[
        ["raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce"]].sum()
    for carrier, col in (("electricity", "electricity_kgce_per_kwh"), ("diesel", "diesel_kgce_per_kg")):
        factors = pc.conversion_factors(carrier, "equivalent")
        value = pd.Series(np.nan, index=day.index)
        for row in factors.itertuples():
            in_force = ((pd.isna(row.effective_from) | (day["shift_date"] >= row.effective_from))
                        & (pd.isna(row.effective_to) | (day["shift_date"] < row.effective_to)))
            value[in_force] = float(row.factor) if not pd.isna(row.factor) else np.nan
        day[col] = value
    day["energy_kgce"] = (day["electricity_kwh"] * day["electricity_kgce_per_kwh"]
                          + day["diesel_kg"] * day["diesel_kgce_per_kg"] + day["other_energy_kgce"])
    day["energy_kgce_per_t"] = (day["energy_kgce"] / day["raw_coal_t"]).where(day["raw_coal_t"] > 0)
    return day.sort_values(["shift_date", "mine_id"], ignore_index=True)


def charging_station_daily(lake_root: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per (date_local, station_id) for every station with connectors and every day start..end, rules of
    jobs/kpi/charging_utilisation.py: a session's kWh are spread evenly over its charging time (charge
    start -> charge end, each falling back to plug-in / plug-out; no duration = all at its start), cut at
    local day edges and at the window [start 00:00, end+1 00:00); sessions are counted on their plug-in
    local day. Sessions are read from plug-in day start-1 (our build's look-back)."""
    s = _read(lake_root, "silver_charging_sessions",
              ("session_id", "station_id", "connector_id", "plug_in_ts_utc", "charge_start_ts_utc", "charge_end_ts_utc",
               "plug_out_ts_utc", "energy_kwh", "event_date_local"), start - dt.timedelta(days=1), end)
    connectors = _read(lake_root, "silver_charging_connectors", ("station_id", "connector_id"))
    s = s.merge(connectors, on=["station_id", "connector_id"], how="inner")

    def local(ts: pd.Series, fallback: pd.Series) -> pd.Series:
        return ts.fillna(fallback).dt.tz_convert(pc.LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")

    s_start = local(s["charge_start_ts_utc"], s["plug_in_ts_utc"])
    s_end = local(s["charge_end_ts_utc"], s["plug_out_ts_utc"])
    s_end = s_end.where(s_end > s_start, s_start + pd.Timedelta(microseconds=1))
    w_start, w_end = pd.Timestamp(start), pd.Timestamp(end + dt.timedelta(days=1))
    spans = pd.DataFrame({"station_id": s["station_id"], "energy_kwh": s["energy_kwh"],
                          "duration_s": _epoch_s(s_end) - _epoch_s(s_start),
                          "start": s_start.where(s_start > w_start, w_start), "end": s_end.where(s_end < w_end, w_end)})
    spans = spans[spans["end"] > spans["start"]].reset_index(drop=True)
    # one row per local day a session's span touches
    first_day = spans["start"].dt.floor("D")
    n_days = ((spans["end"] - pd.Timedelta(microseconds=1)).dt.floor("D") - first_day).dt.days.to_numpy() + 1
    per_day = spans.loc[spans.index.repeat(n_days)].reset_index(drop=True)
    offsets = np.concatenate([np.arange(n) for n in n_days]) if len(n_days) else np.array([], dtype="int64")
    day = first_day.repeat(n_days).reset_index(drop=True) + pd.to_timedelta(offsets, unit="D")
    next_day = day + pd.Timedelta(days=1)
    overlap_s = (_epoch_s(per_day["end"].where(per_day["end"] < next_day, next_day))
                 - _epoch_s(per_day["start"].where(per_day["start"] > day, day)))
    per_day["date_local"] = day.astype("datetime64[us]")
    per_day["energy_kwh"] = per_day["energy_kwh"] * overlap_s / per_day["duration_s"]
    energy = per_day.groupby(["date_local", "station_id"])["energy_kwh"].sum()

    counted = s[(s["event_date_local"] >= pd.Timestamp(start)) & (s["event_date_local"] <= pd.Timestamp(end))]
    sessions = counted.groupby([counted["event_date_local"].rename("date_local"), "station_id"])["session_id"].count()
    days = pd.date_range(start, end, freq="D").astype("datetime64[us]")
    grid = pd.MultiIndex.from_product([days, sorted(connectors["station_id"].unique())],
                                      names=["date_local", "station_id"])
    out = pd.DataFrame(index=grid)
    out["energy_kwh"] = energy.reindex(grid).fillna(0.0)
    out["sessions"] = sessions.reindex(grid).fillna(0).astype("int64")
    return out.reset_index()


def rail_share_monthly(lake_root: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per month touching start..end and company, rules of jobs/kpi/rail_share.py: shipments of raw
    coal, clean coal and coke beyond ``long_haul_threshold_km`` (strictly, unless inclusive) are in
    scope; one counts as rail (whole tonnes) when rail km > 0 and rail km >= ``multimodal_rail_min_km_share``
    x distance (both rounded to 1e-6 km as our decimals are); share = rail t / long-haul t x 100 over
    the whole month."""
    rules = pc.rule_parameters("rail_share", end)
    months = pc.months_between(start, end)
    s = _read(lake_root, "silver_shipments",
              ("shipment_id", "mine_id", "product", "tonnes", "distance_km", "rail_km", "ship_date"),
              months[0], pc.month_end(months[-1]))
    mines = _read(lake_root, "silver_mines", ("mine_id", "company_id"))
    threshold = rules["long_haul_threshold_km"]
    beyond = s["distance_km"] >= threshold if rules["long_haul_bound_inclusive"] else s["distance_km"] > threshold
    s = s[s["product"].isin(["raw_coal", "clean_coal", "coke"]) & beyond].merge(mines, on="mine_id", how="left")
    rail_enough = s["rail_km"].round(6) >= (s["distance_km"].round(6) * rules["multimodal_rail_min_km_share"]).round(13)
    s["rail_t"] = s["tonnes"].where((s["rail_km"] > 0) & rail_enough, 0.0)
    s["month_start"] = s["ship_date"].dt.to_period("M").dt.start_time.astype("datetime64[us]")
    out = s.groupby(["month_start", "company_id"], dropna=False, as_index=False).agg(
        long_haul_t=("tonnes", "sum"), rail_t=("rail_t", "sum"))
    out = out.rename(columns={"company_id": "scope_id"})
    out.insert(1, "scope_level", "company")
    out["rail_share_tonnes_pct"] = (out["rail_t"] / out["long_haul_t"] * 100.0).where(out["long_haul_t"] > 0)
    return out.sort_values(["month_start", "scope_id"], ignore_index=True)


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
    for table, compute in _FAMILIES.items():
        started = time.perf_counter()
        df = compute(Path(lake_root), start, end)
        df.attrs["seconds"] = round(time.perf_counter() - started, 3)
        out[table] = df
    return out
