"""Expectation suites of the silver tables (Great Expectations 1.x), one per table, beside its schema.

A suite is built in code for one validation run (:func:`build_suite`) from three things:

* the table's declared schema (``schemas.tables.SILVER``): column types, non-nullable columns, the natural
  key's uniqueness - derived, so a schema change cannot leave its suite behind;
* the table's own rules below (``_RULES``): value sets and ranges, whose numbers are versioned data in
  ``schemas/quality_thresholds.csv`` (:func:`load_thresholds`), never literals here;
* the run: the validated event days give the window every event timestamp must lie in, and the
  lateness allowance bounds how long after its event day a record may have been delivered.

Checks that one batch cannot express - a foreign key into another table, a ratio to a dimension's
attribute, a per-truck odometer step - are computed by ``jobs.quality.validation`` as derived columns before
validation (their SQL is declared here: :data:`REFERENCES`, :data:`DERIVED`), and checked with ordinary
GX expectations on those columns, so every result comes out of GX in one format. A derived column is
null where it does not apply (no vin on a session, no rated payload), and GX column-map expectations
skip nulls; not-null is checked separately where it matters.

Severity (GX's own ``severity`` field, repeated in ``meta`` for readers of the JSON): **critical** = a
row that would make a gold number wrong or unjoinable (null or duplicate key, impossible physical value,
unknown reference, odometer going backwards, event outside the run window); a failed critical expectation
fails the Airflow task and blocks gold for the day. **warning** = plausible but suspicious (a position
outside the haulage region, a session drawing more than its connector's rating); recorded, not blocking.

This module imports Great Expectations only inside :func:`build_suite` / :func:`expectations_for`:
importing GX takes seconds, and DAG files must stay fast to parse.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from schemas.tables import SILVER, TableSpec

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations import ExpectationSuite
    from great_expectations.expectations import Expectation

# Silver specs by table name (schemas.tables.SILVER is keyed by source name).
SILVER_TABLES: dict[str, TableSpec] = {spec.name: spec for spec in SILVER.values()}
THRESHOLDS_FILE = Path(__file__).resolve().parent / "quality_thresholds.csv"
CRITICAL, WARNING = "critical", "warning"


# --- thresholds as versioned data --------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    parameter: str
    value: str
    unit: str
    version: str
    needs_review: bool
    rationale: str

    @property
    def number(self) -> float:
        return float(self.value)

    @property
    def members(self) -> list[str]:
        return [v.strip() for v in self.value.split("|") if v.strip()]


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, Threshold]:
    """Read the thresholds file (``#`` lines are comments); one row per parameter."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if line.strip() and not line.lstrip().startswith("#")))
    out: dict[str, Threshold] = {}
    for row in rows:
        name = row["parameter"].strip()
        if name in out:
            raise ValueError(f"{path.name}: parameter {name!r} appears twice")
        out[name] = Threshold(name, row["value"].strip(), row["unit"].strip(), row["version"].strip(),
                              row["needs_review"].strip().lower() == "true", row["rationale"].strip())
    return out


# --- cross-table checks, computed as derived columns by jobs.quality.validation ----------------------------------
@dataclass(frozen=True)
class Reference:
    """A foreign key: derived boolean ``flag`` = the row's ``keys`` exist in ``dimension``'s ``dimension_keys``
    (null when a key column is null). ``carry`` brings dimension attributes along for derived ratios."""

    flag: str
    keys: tuple[str, ...]
    dimension: str
    dimension_keys: tuple[str, ...]
    severity: str = CRITICAL
    carry: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Derived:
    """A derived column: a Spark SQL expression over the table's columns (and carried attributes)."""

    name: str
    sql: str
    description: str


_TRUCKS, _COMPANIES, _MINES = "silver_trucks", "silver_companies", "silver_mines"
REFERENCES: dict[str, tuple[Reference, ...]] = {
    "silver_mines": (Reference("company_known", ("company_id",), _COMPANIES, ("company_id",)),),
    "silver_washing_plants": (
        Reference("company_known", ("company_id",), _COMPANIES, ("company_id",)),
        Reference("mine_known", ("mine_id",), _MINES, ("mine_id",)),
    ),
    "silver_trucks": (Reference("company_known", ("company_id",), _COMPANIES, ("company_id",)),),
    "silver_charging_stations": (Reference("company_known", ("company_id",), _COMPANIES, ("company_id",)),),
    "silver_charging_connectors": (
        Reference("station_known", ("station_id",), "silver_charging_stations", ("station_id",)),),
    "silver_h2_stations": (Reference("company_known", ("company_id",), _COMPANIES, ("company_id",)),),
    "silver_mine_production": (Reference("mine_known", ("mine_id",), _MINES, ("mine_id",)),),
    "silver_production_plan": (Reference("mine_known", ("mine_id",), _MINES, ("mine_id",)),),
    "silver_washing": (Reference("plant_known", ("plant_id",), "silver_washing_plants", ("plant_id",)),),
    "silver_telematics": (Reference("vin_known", ("vin",), _TRUCKS, ("vin",),
                                    why="frames of an unknown truck belong to no company and no powertrain"),),
    "silver_weighbridge": (
        Reference("vin_known", ("vin",), _TRUCKS, ("vin",), carry=("rated_payload_t",)),
        Reference("mine_known", ("mine_id",), _MINES, ("mine_id",)),
    ),
    "silver_charging_sessions": (
        Reference("connector_known", ("station_id", "connector_id"), "silver_charging_connectors",
                  ("station_id", "connector_id"), carry=("rated_kw",)),
        # A public station also charges trucks outside the fleet register: recorded, not blocking.
        Reference("vin_known", ("vin",), _TRUCKS, ("vin",), severity=WARNING),
    ),
    "silver_connector_status": (
        Reference("connector_known", ("station_id", "connector_id"), "silver_charging_connectors",
                  ("station_id", "connector_id")),),
    "silver_h2_fills": (
        Reference("station_known", ("station_id",), "silver_h2_stations", ("station_id",)),
        Reference("vin_known", ("vin",), _TRUCKS, ("vin",), severity=WARNING, carry=("h2_tank_kg",)),
    ),
    "silver_shipments": (Reference("mine_known", ("mine_id",), _MINES, ("mine_id",)),),
}

# The delivery day is the landing folder in source_file: <source>/<yyyy-mm-dd>/<file> (schemas.sources).
_DELIVERY_LAG = Derived(
    "delivery_lag_days",
    "datediff(try_cast(regexp_extract(source_file, '([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]+$', 1) AS DATE), "
    "event_date_local)",
    "days from the event day to the delivery day (landing folder of source_file)",
)
DERIVED: dict[str, tuple[Derived, ...]] = {
    "silver_telematics": (
        # Previous non-null reading of the same truck; jobs.quality.validation reads the day before the window too,
        # so the first frame of a day is compared with the last one of the day before.
        Derived("odometer_step_km",
                "odometer_km - last(odometer_km, true) OVER (PARTITION BY vin ORDER BY event_ts_utc "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
                "odometer change since the truck's previous frame with an odometer"),
    ),
    "silver_weighbridge": (
        Derived("payload_ratio", "net_t / nullif(rated_payload_t, 0)", "net_t / the truck's rated_payload_t"),
    ),
    "silver_charging_sessions": (
        Derived("max_power_share_of_rated", "max_power_kw / nullif(rated_kw, 0)",
                "max_power_kw / the connector's rated_kw"),
        Derived("energy_share_of_rated_capacity",
                "energy_kwh / nullif(rated_kw * (unix_timestamp(plug_out_ts_utc) - unix_timestamp(plug_in_ts_utc))"
                " / 3600.0, 0)",
                "energy_kwh / (rated_kw x plugged-in hours): above 1 is more than the connector can deliver"),
    ),
    "silver_h2_fills": (
        Derived("fill_share_of_tank", "h2_kg / nullif(h2_tank_kg, 0)", "h2_kg / the truck's h2_tank_kg"),
    ),
    "silver_washing": (
        Derived("mass_balance_ratio",
                "(clean_coal_t + coalesce(middlings_t, 0) + coalesce(gangue_t, 0) + coalesce(slime_t, 0))"
                " / nullif(raw_coal_fed_t, 0)",
                "(clean + middlings + gangue + slime) / raw coal fed"),
    ),
}

# Event tables: the timestamp that places a row in its event day, and how many days past that day it may
# fall (a mine's shift-day starts at e.g. 08:00, so its night shift starts on the next calendar day).
EVENT_TIME: dict[str, tuple[str | None, int]] = {
    "silver_mine_production": ("shift_start_ts_utc", 1),
    "silver_production_plan": ("published_ts_utc", 0),
    "silver_washing": (None, 0),            # a plant day: a date only
    "silver_telematics": ("event_ts_utc", 0),
    "silver_weighbridge": ("load_ts_utc", 0),
    "silver_charging_sessions": ("plug_in_ts_utc", 0),
    "silver_connector_status": ("status_ts_utc", 0),
    "silver_h2_fills": ("start_ts_utc", 0),
    "silver_shipments": (None, 0),          # a ship date only
}
# Days read before the first validated day, as context for window functions (not validated themselves).
CONTEXT_DAYS_BEFORE: dict[str, int] = {"silver_telematics": 1}
# Columns identifying a failing row in the samples of a result (defaults to the natural key).
SAMPLE_KEYS: dict[str, tuple[str, ...]] = {}


def derived_columns(table: str) -> tuple[Derived, ...]:
    """Every derived column of a table, in the order jobs.quality.validation computes them."""
    spec = SILVER_TABLES[table]
    lag = (_DELIVERY_LAG,) if spec.partition_cols else ()
    return (*DERIVED.get(table, ()), *lag)


def sample_keys(table: str) -> tuple[str, ...]:
    return SAMPLE_KEYS.get(table) or SILVER_TABLES[table].natural_key


# --- parameters of one validation run ------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteParams:
    event_dates: tuple[dt.date, ...]          # empty for a dimension (validated whole)
    timezone: str
    lateness_allowance_days: int
    thresholds: dict[str, Threshold] = field(default_factory=load_thresholds)

    def t(self, name: str) -> float:
        return self.thresholds[name].number

    def window_utc(self, extra_days: int = 0) -> tuple[dt.datetime, dt.datetime]:
        """[first day 00:00 local, last day + 1 + extra_days 00:00 local) in UTC: the run window."""
        zone = ZoneInfo(self.timezone)
        start = dt.datetime.combine(min(self.event_dates), dt.time(), zone)
        end = dt.datetime.combine(max(self.event_dates) + dt.timedelta(days=1 + extra_days), dt.time(), zone)
        return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)

    @property
    def thresholds_version(self) -> str:
        return ",".join(sorted({t.version for t in self.thresholds.values()}))


# --- suites ---------------------------------------------------------------------------------------------
def _sev(severity: str, notes: str | None = None) -> dict[str, Any]:
    kw: dict[str, Any] = {"severity": severity, "meta": {"severity": severity}}
    if notes:
        kw["notes"] = notes
    return kw


def crit(notes: str | None = None) -> dict[str, Any]:
    return _sev(CRITICAL, notes)


def warn(notes: str | None = None) -> dict[str, Any]:
    return _sev(WARNING, notes)


def _schema_expectations(E, spec: TableSpec) -> list:
    """Types, non-nullable columns and key uniqueness, straight from the declared schema."""
    out: list = [E.ExpectColumnValuesToBeOfType(column=f.name, type_=type(f.dataType).__name__, **crit())
                 for f in spec.schema.fields]
    out += [E.ExpectColumnValuesToNotBeNull(column=f.name, **crit()) for f in spec.schema.fields if not f.nullable]
    if len(spec.natural_key) == 1:
        out.append(E.ExpectColumnValuesToBeUnique(column=spec.natural_key[0], **crit("natural key")))
    elif spec.natural_key:
        out.append(E.ExpectCompoundColumnsToBeUnique(column_list=list(spec.natural_key), **crit("natural key")))
    return out


def _run_expectations(E, table: str, spec: TableSpec, p: SuiteParams) -> list:
    """Referential integrity, and for event tables the run window, lateness and a non-empty day."""
    out: list = [E.ExpectColumnValuesToBeInSet(column=r.flag, value_set=[True], **_sev(r.severity, r.why or (
        f"{', '.join(r.keys)} must exist in {r.dimension}"))) for r in REFERENCES.get(table, ())]
    if not spec.partition_cols:
        return [*out, E.ExpectTableRowCountToBeBetween(min_value=1, **crit("an empty dimension breaks every join"))]
    ts_col, extra_days = EVENT_TIME[table]
    if ts_col:
        start, end = p.window_utc(extra_days)
        out.append(E.ExpectColumnValuesToBeBetween(
            column=ts_col, min_value=start, max_value=end, strict_max=True,
            **crit(f"run window: event days {', '.join(d.isoformat() for d in p.event_dates)} ({p.timezone})")))
    out.append(E.ExpectColumnValuesToBeBetween(
        column="delivery_lag_days", min_value=-int(p.t("clock_tolerance_days")), max_value=p.lateness_allowance_days,
        **crit(f"delivered at most {p.lateness_allowance_days} days (lateness allowance) after the event day")))
    out.append(E.ExpectColumnValuesToNotBeNull(column="delivery_lag_days", **crit(
        "source_file must name its delivery-day folder <source>/<yyyy-mm-dd>/<file>")))
    out.append(E.ExpectTableRowCountToBeBetween(min_value=1, **warn("no rows for the validated days")))
    return out


def _between(E, column: str, p: SuiteParams, lo: str | None, hi: str | None, severity: str = CRITICAL,
             notes: str | None = None, **kw) -> Any:
    return E.ExpectColumnValuesToBeBetween(
        column=column, min_value=p.t(lo) if lo else None, max_value=p.t(hi) if hi else None, **kw,
        **_sev(severity, notes))


def _site_position(E, p: SuiteParams) -> list:
    return [_between(E, "lat_deg", p, "site_lat_deg_min", "site_lat_deg_max", WARNING, "within Ordos"),
            _between(E, "lon_deg", p, "site_lon_deg_min", "site_lon_deg_max", WARNING, "within Ordos")]


def _companies(E, p: SuiteParams) -> list:
    return [E.ExpectColumnValuesToNotBeNull(column="company_name", **warn())]


def _mines(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeInSet(column="mine_type", value_set=["underground", "open_pit"],
                                      **crit("selects the GB 29445 limit row")),
        E.ExpectColumnValuesToBeInSet(column="banner", value_set=p.thresholds["ordos_banners"].members, **warn()),
        _between(E, "capacity_mt_per_yr", p, None, "mine_capacity_mt_per_yr_max", WARNING),
        E.ExpectColumnValuesToBeBetween(column="capacity_mt_per_yr", min_value=0, strict_min=True, **crit()),
        E.ExpectColumnValuesToMatchRegex(column="shift_day_start_local", regex=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                         **warn("HH:mm")),
        *_site_position(E, p),
    ]


# GB 29446-2019 process classes (schemas.sources.WASHING_PLANTS).
WASHING_PROCESSES = ("dry", "jig", "jig_flotation", "jig_dense_medium", "dense_medium", "dense_medium_flotation",
                     "dense_medium_jig_flotation")


def _washing_plants(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeInSet(column="coal_type", value_set=["thermal", "coking"],
                                      **crit("selects the GB 29446 limit row")),
        E.ExpectColumnValuesToBeInSet(column="process", value_set=list(WASHING_PROCESSES),
                                      **warn("a process outside GB 29446 gets no automatic grade")),
        E.ExpectColumnValuesToBeInSet(column="banner", value_set=p.thresholds["ordos_banners"].members, **warn()),
        E.ExpectColumnValuesToBeBetween(column="capacity_mt_per_yr", min_value=0, strict_min=True, **warn()),
    ]


def _trucks(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeInSet(column="powertrain", value_set=["BEV", "FCEV", "DIESEL"], **crit()),
        _between(E, "rated_payload_t", p, "truck_rated_payload_t_min", "truck_rated_payload_t_max", CRITICAL,
                 "divisor of the payload ratio and of tonne-km"),
        E.ExpectColumnValuesToNotBeNull(column="battery_kwh", row_condition="powertrain = 'BEV'",
                                        condition_parser="spark", **crit("SOC deltas x pack kWh")),
        E.ExpectColumnValuesToNotBeNull(column="h2_tank_kg", row_condition="powertrain = 'FCEV'",
                                        condition_parser="spark", **crit("remaining-H2 deltas x tank kg")),
        _between(E, "battery_kwh", p, "truck_battery_kwh_min", "truck_battery_kwh_max", WARNING),
        _between(E, "h2_tank_kg", p, "truck_h2_tank_kg_min", "truck_h2_tank_kg_max", WARNING),
        # ISO 3779: 17 characters, no I, O or Q.
        E.ExpectColumnValuesToMatchRegex(column="vin", regex=r"^[A-HJ-NPR-Z0-9]{17}$", **warn("ISO 3779 VIN")),
    ]


def _charging_stations(E, p: SuiteParams) -> list:
    return [E.ExpectColumnValuesToBeInSet(column="banner", value_set=p.thresholds["ordos_banners"].members, **warn()),
            *_site_position(E, p)]


def _charging_connectors(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeBetween(column="rated_kw", min_value=0, strict_min=True,
                                        **crit("divisor of energy-based utilisation")),
        _between(E, "rated_kw", p, None, "connector_rated_kw_max", WARNING),
    ]


def _h2_stations(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeBetween(column="nameplate_kg_per_day", min_value=0, strict_min=True,
                                        **crit("divisor of nameplate utilisation")),
        E.ExpectColumnValuesToBeBetween(column="dispensers", min_value=1, **crit("divisor of fills per dispenser-day")),
        E.ExpectColumnValuesToBeInSet(column="pressure_class_mpa", value_set=[35, 70], **warn()),
        E.ExpectColumnValuesToBeInSet(column="banner", value_set=p.thresholds["ordos_banners"].members, **warn()),
    ]


def _mine_production(E, p: SuiteParams) -> list:
    nonneg = [E.ExpectColumnValuesToBeBetween(column=c, min_value=0, **crit()) for c in
              ("raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce")]
    return [
        *nonneg,
        E.ExpectColumnValuesToBeBetween(column="shift_no", min_value=1, max_value=4, **crit()),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="shift_end_ts_utc", column_B="shift_start_ts_utc",
                                                  or_equal=False, ignore_row_if="either_value_is_missing", **crit()),
    ]


def _production_plan(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeBetween(column="planned_raw_coal_t", min_value=0, **crit()),
        E.ExpectColumnValuesToBeBetween(column="trucks_dispatched", min_value=0, **crit()),
        E.ExpectColumnValuesToBeBetween(column="shift_no", min_value=1, max_value=4, **crit()),
        # the forecast may use a plan only from its publication on: one released after its shift started
        # is quarantined at ingestion, so none may reach silver
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="shift_start_ts_utc", column_B="published_ts_utc",
                                                  or_equal=False, ignore_row_if="either_value_is_missing",
                                                  **crit("a plan is known before its shift starts")),
    ]


def _washing(E, p: SuiteParams) -> list:
    nonneg = [E.ExpectColumnValuesToBeBetween(column=c, min_value=0, **crit()) for c in
              ("raw_coal_fed_t", "clean_coal_t", "middlings_t", "gangue_t", "slime_t", "electricity_kwh",
               "water_m3", "magnetite_kg")]
    return [
        *nonneg,
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="raw_coal_fed_t", column_B="clean_coal_t", or_equal=True,
                                                  ignore_row_if="either_value_is_missing",
                                                  **crit("a yield above 100 % is impossible")),
        _between(E, "mass_balance_ratio", p, "washing_mass_balance_min", "washing_mass_balance_max", WARNING),
    ]


def _telematics(E, p: SuiteParams) -> list:
    return [
        _between(E, "soc_pct", p, "soc_pct_min", "soc_pct_max"),
        _between(E, "speed_kmh", p, "speed_kmh_min", "speed_kmh_max"),
        _between(E, "h2_remaining_pct", p, "h2_remaining_pct_min", "h2_remaining_pct_max"),
        _between(E, "odometer_step_km", p, "odometer_step_min_km", None, CRITICAL,
                 "per-truck odometer monotonic: distance comes from odometer differences"),
        E.ExpectColumnValuesToBeInSet(column="msg_type", value_set=["realtime", "resend"], **warn()),
        E.ExpectColumnValuesToBeInSet(column="coord_sys_source", value_set=["WGS84", "GCJ02", "GCJ-02"], **warn()),
        E.ExpectColumnValuesToBeInSet(column="position_valid", value_set=[True], mostly=p.t("position_valid_mostly"),
                                      **warn("share of frames with a GNSS fix")),
        _between(E, "lat_wgs84_deg", p, "haul_lat_deg_min", "haul_lat_deg_max", WARNING, "haulage region"),
        _between(E, "lon_wgs84_deg", p, "haul_lon_deg_min", "haul_lon_deg_max", WARNING, "haulage region"),
    ]


def _weighbridge(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeBetween(column="net_t", min_value=0, strict_min=True, **crit()),
        _between(E, "payload_ratio", p, None, "payload_factor_max", CRITICAL,
                 f"net_t <= {p.t('payload_factor_max'):g} x the truck's rated_payload_t"),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="gross_t", column_B="tare_t", or_equal=False,
                                                  ignore_row_if="either_value_is_missing", **crit()),
        E.ExpectColumnValuesToNotBeNull(column="destination_id", **warn()),
    ]


def _charging_sessions(E, p: SuiteParams) -> list:
    return [
        _between(E, "energy_kwh", p, "energy_kwh_min", None, CRITICAL, "meter_stop_kwh - meter_start_kwh"),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="plug_out_ts_utc", column_B="plug_in_ts_utc", or_equal=True,
                                                  ignore_row_if="either_value_is_missing", **crit()),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="charge_start_ts_utc", column_B="plug_in_ts_utc",
                                                  or_equal=True, ignore_row_if="either_value_is_missing", **warn()),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="plug_out_ts_utc", column_B="charge_end_ts_utc",
                                                  or_equal=True, ignore_row_if="either_value_is_missing", **warn()),
        _between(E, "max_power_share_of_rated", p, None, "session_power_factor_max", WARNING),
        _between(E, "energy_share_of_rated_capacity", p, None, "session_energy_factor_max", WARNING),
    ]


def _connector_status(E, p: SuiteParams) -> list:
    from schemas.tables import CONNECTOR_STATUS_NAMES

    return [
        E.ExpectColumnValuesToBeInSet(column="status_code", value_set=sorted(CONNECTOR_STATUS_NAMES),
                                      **crit("T/CEC 102 status codes")),
        E.ExpectColumnValuesToBeInSet(column="status", value_set=sorted(CONNECTOR_STATUS_NAMES.values()), **crit()),
    ]


def _h2_fills(E, p: SuiteParams) -> list:
    return [
        _between(E, "h2_kg", p, "h2_kg_min", None),
        _between(E, "fill_share_of_tank", p, None, "h2_fill_tank_factor_max", CRITICAL,
                 "H2 kg per fill <= the truck's tank"),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end_ts_utc", column_B="start_ts_utc", or_equal=True,
                                                  ignore_row_if="either_value_is_missing", **crit()),
        E.ExpectColumnValuesToBeInSet(column="pressure_mpa", value_set=[35, 70], **warn()),
    ]


def _shipments(E, p: SuiteParams) -> list:
    return [
        E.ExpectColumnValuesToBeInSet(column="product", value_set=["raw_coal", "clean_coal", "coke"], **crit()),
        E.ExpectColumnValuesToBeBetween(column="tonnes", min_value=0, strict_min=True, **crit()),
        *[E.ExpectColumnValuesToBeBetween(column=c, min_value=0, **crit())
          for c in ("distance_km", "road_km", "rail_km", "belt_km")],
        E.ExpectColumnValuesToMatchRegex(column="mode_pattern", regex=r"^(road|rail|belt)(>(road|rail|belt))*$",
                                         **crit("the rail-share rule reads the mode sequence")),
    ]


_RULES = {
    "silver_companies": _companies, "silver_mines": _mines, "silver_washing_plants": _washing_plants,
    "silver_trucks": _trucks, "silver_charging_stations": _charging_stations,
    "silver_charging_connectors": _charging_connectors, "silver_h2_stations": _h2_stations,
    "silver_mine_production": _mine_production, "silver_production_plan": _production_plan,
    "silver_washing": _washing, "silver_telematics": _telematics,
    "silver_weighbridge": _weighbridge, "silver_charging_sessions": _charging_sessions,
    "silver_connector_status": _connector_status, "silver_h2_fills": _h2_fills, "silver_shipments": _shipments,
}


def expectations_for(table: str, params: SuiteParams) -> list[Expectation]:
    """The table's expectations for one run: schema-derived, run-derived, then its own rules."""
    from great_expectations import expectations as E

    if table not in SILVER_TABLES:
        raise KeyError(f"unknown silver table {table!r}; expected one of {', '.join(SILVER_TABLES)}")
    spec = SILVER_TABLES[table]
    if spec.partition_cols and not params.event_dates:
        raise ValueError(f"{table} is validated per event day: give at least one event date")
    return [*_schema_expectations(E, spec), *_run_expectations(E, table, spec, params), *_RULES[table](E, params)]


def build_suite(table: str, params: SuiteParams) -> ExpectationSuite:
    import great_expectations as gx

    return gx.ExpectationSuite(name=table, expectations=expectations_for(table, params),
                               meta={"thresholds_version": params.thresholds_version})
