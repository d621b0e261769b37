"""What the benchmark peers (``peers_duckdb``, ``peers_pandas``) must produce, and how their numbers are
compared with ours.

The peers run beside the Spark pipeline on the same data: they ingest the same landing telematics into
the silver telematics columns, and compute four gold KPI families from OUR silver Delta tables (read
with delta-rs, never Spark). Each family is returned under our gold table's name, with its key and
column names, and compared with our table on its key (``PEER_KPIS`` / ``CONTRACT``):

* ``gold_truck_energy_daily`` by (date_local, vin): frames, integrated_s, gap_s, distance_km,
  integrated_distance_km, battery_discharge_kwh, regen_kwh, battery_net_kwh, h2_used_kg, diesel_l;
* ``gold_mine_energy_daily`` by (shift_date, mine_id): raw_coal_t, electricity_kwh, diesel_kg,
  energy_kgce, energy_kgce_per_t;
* ``gold_charging_station_daily`` by (date_local, station_id): energy_kwh, sessions;
* ``gold_rail_share_monthly`` by (month_start, scope_id), our rows with scope_level = 'company':
  long_haul_t, rail_t, rail_share_tonnes_pct.

Tolerances: relative 1e-6 or absolute 1e-6, whichever is looser (``math.isclose``). Our graded sums are
exact decimals and the peers' are doubles, and sums run in a different order; both differences stay
near 1e-12 relative, far inside 1e-6. Anything beyond the tolerance is a disagreement to explain.

Known disagreement (tests/jobs/tools/test_bench_peers.py pins it): our truck_intervals takes a frame with
speed 0 whose odometer advances to the next frame as standstill, so negative current there is charging;
the written rule (truck_energy.py docstring, docs/kpis.md section 3: standstill = speed 0 AND no odometer
advance) makes it regen, and the peers follow the written rule. regen_kwh and battery_net_kwh of
fuel-cell truck-days differ by that energy until our code is fixed.

Shared plumbing lives here too (reading silver with delta-rs, reference CSVs, delivery order of landing
files), so the two peers differ only in how they compute.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

REFERENCE_DIR = Path(__file__).resolve().parents[3] / "schemas" / "reference"
# Buckets of every KPI are Asia/Shanghai local days (China has no DST since 1991).
LOCAL_TZ = "Asia/Shanghai"
LATENESS_ALLOWANCE_DAYS = 7     # the default of Settings.lateness_allowance_days

REL_TOL = 1e-6
ABS_TOL = 1e-6
# Silver telematics: decoded values are single divisions and must match to the last bits but for the
# GCJ-02 -> WGS84 trigonometry, whose sin/cos may differ by an ulp between the JVM, numpy and DuckDB.
INGEST_REL_TOL = 1e-12
INGEST_ABS_TOL = 1e-9

SILVER_TELEMATICS_COLUMNS = (
    "vin", "event_ts_utc", "msg_type", "speed_kmh", "odometer_km", "total_voltage_v", "total_current_a",
    "soc_pct", "h2_remaining_pct", "fuel_total_l", "lon_wgs84_deg", "lat_wgs84_deg", "event_date_local",
)
SILVER_TELEMATICS_KEY = ("vin", "event_ts_utc")
SILVER_TELEMATICS_VALUES = tuple(c for c in SILVER_TELEMATICS_COLUMNS if c not in ("vin", "event_ts_utc", "msg_type"))


@dataclass(frozen=True)
class KpiSpec:
    table: str                               # our gold table (and the key of the peers' result dict)
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    period_col: str                          # the table's partition column
    ours_filter: dict[str, str] = field(default_factory=dict)   # rows of our table that the peers compute


TRUCK_ENERGY = KpiSpec(
    "gold_truck_energy_daily", ("date_local", "vin"),
    ("frames", "integrated_s", "gap_s", "distance_km", "integrated_distance_km", "battery_discharge_kwh",
     "regen_kwh", "battery_net_kwh", "h2_used_kg", "diesel_l"),
    "date_local",
)
MINE_ENERGY = KpiSpec(
    "gold_mine_energy_daily", ("shift_date", "mine_id"),
    ("raw_coal_t", "electricity_kwh", "diesel_kg", "energy_kgce", "energy_kgce_per_t"),
    "shift_date",
)
CHARGING_STATION = KpiSpec(
    "gold_charging_station_daily", ("date_local", "station_id"), ("energy_kwh", "sessions"), "date_local",
)
RAIL_SHARE = KpiSpec(
    "gold_rail_share_monthly", ("month_start", "scope_id"), ("long_haul_t", "rail_t", "rail_share_tonnes_pct"),
    "month_start", {"scope_level": "company"},
)
PEER_KPIS: dict[str, KpiSpec] = {s.table: s for s in (TRUCK_ENERGY, MINE_ENERGY, CHARGING_STATION, RAIL_SHARE)}
# keyword arguments of compare() per gold table: compare(ours, peer, **CONTRACT[table]). Our table must
# first be cut to the days compared (read_gold does): a build also rewrites the day before its first day.
CONTRACT: dict[str, dict] = {
    s.table: {"keys": s.keys, "columns": s.columns, "rel_tol": REL_TOL, "abs_tol": ABS_TOL,
              "ours_where": dict(s.ours_filter)}
    for s in PEER_KPIS.values()
}


# --- comparison ---------------------------------------------------------------------------------------
def _key_column(s: pd.Series) -> pd.Series:
    """Keys as comparable values: dates and timestamps as naive UTC datetime64[us], the rest as text."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("datetime64[us]")
    first = s.dropna().iloc[0] if s.notna().any() else None
    if isinstance(first, (dt.date, dt.datetime)):
        return pd.to_datetime(s).astype("datetime64[us]")
    return s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))


def _value_column(s: pd.Series) -> np.ndarray:
    """Values as float64 (decimals, integers and booleans included; dates and timestamps as seconds
    since the epoch); null -> NaN."""
    first = s.dropna().iloc[0] if s.notna().any() else None
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(first, (dt.date, dt.datetime)):
        micros = _key_column(s).to_numpy(dtype="datetime64[us]")
        return np.where(np.isnat(micros), np.nan, micros.view("int64") / 1e6)
    if s.dtype == object:
        return np.array([np.nan if v is None or v is pd.NA else float(v) for v in s], dtype="float64")
    return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)


def _key_text(row: tuple) -> str:
    parts = []
    for v in row:
        if isinstance(v, pd.Timestamp):
            v = v.date().isoformat() if v == v.normalize() else v.isoformat()
        parts.append(str(v))
    return "|".join(parts)


def compare(ours: pd.DataFrame, peer: pd.DataFrame, keys, columns, rel_tol: float = REL_TOL,
            abs_tol: float = ABS_TOL, *, ours_where: dict | None = None) -> dict:
    """Compare ``peer`` with ``ours`` on ``keys``, column by column (``ours_where``: only our rows with
    these column values take part, e.g. ``{"scope_level": "company"}``).

    A pair of values agrees when ``|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol)`` or both are null.
    Returns a JSON-serialisable report: row counts, rows on one side only (count and up to 5 keys each),
    duplicated keys, and per column the largest absolute and relative difference, the number of
    disagreeing pairs (null on one side counts) and the key of the worst one; ``agree`` is true when no
    row is on one side only, no key is duplicated and no pair disagrees.
    """
    keys, columns = list(keys), list(columns)
    for col, value in (ours_where or {}).items():
        ours = ours[ours[col] == value]
    missing = {side: [c for c in keys + columns if c not in df.columns] for side, df in (("ours", ours), ("peer", peer))}
    if missing["ours"] or missing["peer"]:
        raise KeyError(f"columns missing from the compared frames: {missing}")

    def prepared(df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({k: _key_column(df[k]) for k in keys})
        for c in columns:
            out[c] = _value_column(df[c])
        return out.reset_index(drop=True)

    a, b = prepared(ours), prepared(peer)
    for k in keys:  # an empty side has no values to tell a date key from text: give it the other's type
        if a[k].dtype != b[k].dtype and (a.empty or b.empty):
            (a if a.empty else b)[k] = (a if a.empty else b)[k].astype((b if a.empty else a)[k].dtype)
    dup_ours = int(a.duplicated(keys).sum())
    dup_peer = int(b.duplicated(keys).sum())
    m = a.merge(b, on=keys, how="outer", suffixes=("_ours", "_peer"), indicator=True)
    only_ours = m[m["_merge"] == "left_only"]
    only_peer = m[m["_merge"] == "right_only"]
    both = m[m["_merge"] == "both"]
    report: dict = {
        "keys": keys, "rel_tol": rel_tol, "abs_tol": abs_tol,
        "rows_ours": len(a), "rows_peer": len(b), "rows_matched": len(both),
        "only_ours": len(only_ours), "only_peer": len(only_peer),
        "only_ours_keys": [_key_text(r) for r in only_ours[keys].head(5).itertuples(index=False)],
        "only_peer_keys": [_key_text(r) for r in only_peer[keys].head(5).itertuples(index=False)],
        "duplicate_keys_ours": dup_ours, "duplicate_keys_peer": dup_peer,
        "columns": {},
    }
    mismatches_total = 0
    max_abs = max_rel = 0.0
    for c in columns:
        x, y = both[f"{c}_ours"].to_numpy(), both[f"{c}_peer"].to_numpy()
        nan_x, nan_y = np.isnan(x), np.isnan(y)
        null_mismatch = nan_x != nan_y
        valued = ~nan_x & ~nan_y
        diff = np.where(valued, np.abs(x - y), 0.0)
        scale = np.where(valued, np.maximum(np.abs(x), np.abs(y)), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scale > 0, diff / scale, 0.0)
        bad = null_mismatch | (valued & (diff > np.maximum(rel_tol * scale, abs_tol)))
        col_report = {
            "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
            "max_rel_diff": float(rel.max()) if len(rel) else 0.0,
            "mismatches": int(bad.sum()),
            "null_mismatches": int(null_mismatch.sum()),
            "worst_key": None,
        }
        if bad.any():
            worst = int(np.argmax(np.where(bad, np.where(null_mismatch, np.inf, rel), -1.0)))
            row = both.iloc[worst]
            col_report["worst_key"] = _key_text(tuple(row[k] for k in keys))
            col_report["worst_ours"] = None if nan_x[worst] else float(x[worst])
            col_report["worst_peer"] = None if nan_y[worst] else float(y[worst])
        report["columns"][c] = col_report
        mismatches_total += col_report["mismatches"]
        max_abs = max(max_abs, col_report["max_abs_diff"])
        max_rel = max(max_rel, col_report["max_rel_diff"])
    report["max_abs_diff"] = max_abs
    report["max_rel_diff"] = max_rel
    report["mismatches"] = mismatches_total
    report["agree"] = bool(mismatches_total == 0 and not len(only_ours) and not len(only_peer)
                           and not dup_ours and not dup_peer)
    return report


def compare_kpi(ours: pd.DataFrame, peer: pd.DataFrame, spec: KpiSpec, rel_tol: float = REL_TOL,
                abs_tol: float = ABS_TOL) -> dict:
    """:func:`compare` on one KPI family, with our rows restricted to those the peers compute."""
    return compare(ours, peer, spec.keys, spec.columns, rel_tol, abs_tol, ours_where=spec.ours_filter)


# --- reading our tables with delta-rs -------------------------------------------------------------------
def delta_path(lake_root: Path, table: str) -> Path:
    layer = table.split("_", 1)[0]
    return Path(lake_root) / layer / table


def read_delta(lake_root: Path, table: str, columns=None, partition_col: str | None = None,
               first: dt.date | None = None, last: dt.date | None = None) -> pa.Table:
    """One Delta table of our lake as an Arrow table, optionally only ``first <= partition_col <= last``
    (partition pruning: the filter is on the partition column, so other days' files are not opened)."""
    from deltalake import DeltaTable

    dataset = DeltaTable(str(delta_path(lake_root, table))).to_pyarrow_dataset()
    expr = None
    if partition_col is not None:
        if first is not None:
            expr = pads.field(partition_col) >= pa.scalar(first, pa.date32())
        if last is not None:
            upper = pads.field(partition_col) <= pa.scalar(last, pa.date32())
            expr = upper if expr is None else expr & upper
    return dataset.to_table(columns=list(columns) if columns else None, filter=expr)


def read_gold(lake_root: Path, spec: KpiSpec, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Our gold rows of one KPI family for local days start..end (monthly tables: the months touching it)."""
    first, last = (start.replace(day=1), end) if spec.period_col == "month_start" else (start, end)
    table = read_delta(lake_root, spec.table, None, spec.period_col, first, last)
    df = table.to_pandas()
    for col, value in spec.ours_filter.items():
        df = df[df[col] == value]
    return df.reset_index(drop=True)


# --- reference data (the same CSV files our build loads into ref_* tables) --------------------------------
def reference_csv(name: str) -> list[dict[str, str]]:
    """Rows of ``schemas/reference/<name>.csv`` as text (lines starting with '#' are comments)."""
    with (REFERENCE_DIR / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def _in_force(row: dict[str, str], day: dt.date) -> bool:
    lo, hi = row.get("effective_from") or "", row.get("effective_to") or ""
    return (not lo or dt.date.fromisoformat(lo) <= day) and (not hi or day < dt.date.fromisoformat(hi))


def rule_parameters(rule: str, on: dt.date) -> dict[str, float]:
    """The parameters of one KPI rule in force on ``on`` (our build takes them on its last day)."""
    rows = [r for r in reference_csv("rule_parameters") if r["rule"] == rule and _in_force(r, on)]
    if not rows:
        raise ValueError(f"no parameters of rule {rule!r} in force on {on}")
    return {r["parameter"]: float(r["value"]) for r in rows}


def conversion_factors(carrier: str, basis: str) -> pd.DataFrame:
    """Date-effective factors of one carrier and basis: factor, effective_from, effective_to (NaT = open)."""
    rows = [r for r in reference_csv("conversion_factors") if r["carrier"] == carrier and r["basis"] == basis]
    return pd.DataFrame({
        "factor": pd.array([float(r["factor"]) if r["factor"] else None for r in rows], dtype="Float64"),
        "factor_text": [r["factor"] or None for r in rows],
        "effective_from": pd.to_datetime([r["effective_from"] or None for r in rows]).astype("datetime64[us]"),
        "effective_to": pd.to_datetime([r["effective_to"] or None for r in rows]).astype("datetime64[us]"),
    })


# --- landing files ----------------------------------------------------------------------------------------
_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def landing_day(path: Path) -> dt.date:
    """The delivery day of a landing file: its folder ``<source>/<yyyy-mm-dd>/<file>``."""
    folder = Path(path).parent.name
    if not _DAY_DIR.match(folder):
        raise ValueError(f"{path}: not in a yyyy-mm-dd delivery-day folder")
    return dt.date.fromisoformat(folder)


def delivery_order(files) -> list[tuple[dt.date, Path]]:
    """(delivery day, file) in delivery order: day, then file name; the last delivered version of a
    frame wins the dedupe (then the last line of that file)."""
    return sorted(((landing_day(Path(f)), Path(f)) for f in files), key=lambda x: (x[0], x[1].name))


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    months, m = [], start.replace(day=1)
    while m <= end:
        months.append(m)
        m = (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


def month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
