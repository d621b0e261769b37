"""The gold catalogue: one declaration per gold table, and everything that is derived from it.

A declaration says what a table is (name, KPI family, grain, natural key, partition column), what it
holds (its columns with their Spark types; units are in the column names, see ``schemas/column_units.csv``),
whose rows they are (the column naming the company a row belongs to, or how the company is found, or that
the rows are city-wide), and where it goes: an Airflow Asset, the per-company extract packs, the reports.

Driven by it: the gold build (``jobs/kpi/build.py`` writes exactly the tables declared for it, each with
its declared schema), the Assets (``dags/assets.py``), the extract packs' table list and ownership rules
(``jobs/delivery/extracts.py``), the tables the reports may read (``jobs/delivery/report/data.py``), the
SQL CLI's table list (``jobs/delivery/query.py --list``) and the table index of ``docs/kpis.md``
(``python -m schemas.gold --write-docs`` rewrites it; a test compares).

Plain Python at import time (the DAG files import it while Airflow parses them): the Spark types are
written as Spark SQL type names and turned into a ``StructType`` only when :attr:`GoldTable.schema` is read.
The reference tables the build copies to gold (``ref_<name>``) are declared in ``schemas/reference_tables.py``.

    python -m schemas.gold                  # the table index, as in docs/kpis.md
    python -m schemas.gold --write-docs     # rewrite that index in docs/kpis.md
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import types as T

    from schemas.tables import TableSpec

# Spark SQL type names of the gold columns. Graded quantities are exact decimals (jobs/kpi/_common.py).
STRING, DOUBLE, BIGINT, INT, BOOLEAN = "string", "double", "bigint", "int", "boolean"
DATE, TIMESTAMP = "date", "timestamp"
QTY = "decimal(22,6)"            # measured quantities (t, kWh, kg)
FACTOR = "decimal(15,7)"         # conversion factors, process factors and limits
EXACT = "decimal(30,13)"         # quantity x factor, exact
REF_DECIMAL = "decimal(38,18)"   # a graded number as read from a reference file
NOT_NULL = False                 # third element of a column: nullable (default True) or NOT_NULL

# KPI families: the module that computes them and the title of their sheet in the extract workbook.
FAMILIES: dict[str, str] = {
    "mine_energy": "Mine energy",
    "washing": "Washing",
    "truck_energy": "Truck energy",
    "chain_energy": "Chain energy",
    "charging_utilisation": "Charging utilisation",
    "h2_utilisation": "Hydrogen utilisation",
    "rail_share": "Rail share",
    "targets": "Target tracking",
    "charging_forecast": "Charging forecast",
}
FAMILY_MODULES: dict[str, str] = {**{f: f"jobs/kpi/{f}.py" for f in FAMILIES},
                                  "charging_forecast": "jobs/forecast/charging_demand.py"}

KPI_BUILD = "jobs.kpi.build"
FORECAST_JOB = "jobs.forecast.charging_demand"

# Owner kinds: whose entity the owner column names. An entity's company comes from its silver dimension.
ENTITY_DIMENSIONS: dict[str, str] = {
    "company": "silver_companies", "mine": "silver_mines", "plant": "silver_washing_plants",
    "truck": "silver_trucks", "charging_station": "silver_charging_stations", "h2_station": "silver_h2_stations",
}
SCOPE, CITY = "scope", "city"


@dataclass(frozen=True)
class Owner:
    """How the company a row belongs to is found.

    ``kind``: an entity kind of :data:`ENTITY_DIMENSIONS` (``column`` names that entity: a company id, or a
    mine, truck or station whose company its dimension gives); ``scope`` (roll-ups: ``scope_level`` and
    ``scope_id``; a company or mine row belongs to that company, banner and city rows to none); or ``city``
    (city-wide rows over every company: no column, nobody's own rows).
    ``checks``: the row's other entity columns, (column, kind), that must belong to the same company.
    """

    kind: str
    column: str | None
    checks: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        known = set(ENTITY_DIMENSIONS) | {SCOPE, CITY}
        if self.kind not in known or any(k not in ENTITY_DIMENSIONS for _, k in self.checks):
            raise ValueError(f"unknown owner kind in {self}")
        if (self.column is None) != (self.kind == CITY):
            raise ValueError(f"{self}: every owner but city names its column")

    def describe(self) -> str:
        """The rule in words (docs/kpis.md's table index)."""
        if self.kind == CITY:
            return "none: city-wide rows over every company"
        if self.kind == SCOPE:
            return "roll-up: `scope_id` of a `company` or `mine` row; banner and city rows: none"
        rule = f"`{self.column}`" if self.kind == "company" else \
            f"`{self.column}` → `{ENTITY_DIMENSIONS[self.kind]}.company_id`"
        return rule + (f" (same company: {', '.join(f'`{c}`' for c, _ in self.checks)})" if self.checks else "")


def company(*checks: tuple[str, str]) -> Owner:
    return Owner("company", "company_id", checks)


def entity(column: str, kind: str, *checks: tuple[str, str]) -> Owner:
    return Owner(kind, column, checks)


ROLLUP, CITY_WIDE = Owner(SCOPE, "scope_id"), Owner(CITY, None)
_MINE, _PLANT, _TRUCK = ("mine_id", "mine"), ("plant_id", "plant"), ("vin", "truck")
_CS, _HS = ("station_id", "charging_station"), ("station_id", "h2_station")


@dataclass(frozen=True)
class GoldTable:
    name: str
    family: str                                  # a key of FAMILIES
    grain: str                                   # what one row is
    key: tuple[str, ...]                         # the columns that identify a row (unique)
    period_col: str                              # partition column; a build replaces whole periods
    owner: Owner                                 # whose row it is
    columns: tuple[tuple, ...]                   # (name, Spark SQL type[, NOT_NULL]), in order
    extract_title: str | None = None             # its title in the extract packs; None: not in the packs ...
    not_extracted: str | None = None             # ... and why
    reports: bool = False                        # the reports read it
    asset: bool = True                           # an Airflow Asset (dags/assets.py)
    written_by: str = KPI_BUILD                  # the job that writes it

    def __post_init__(self):
        names = [c[0] for c in self.columns]
        missing = [c for c in (*self.key, self.period_col) if c not in names]
        if self.family not in FAMILIES or len(set(names)) != len(names) or missing:
            raise ValueError(f"{self.name}: unknown family, repeated columns or key/period not among the columns")
        if (self.extract_title is None) == (self.not_extracted is None):
            raise ValueError(f"{self.name}: either an extract title or the reason it is not extracted")
        owner_cols = [c for c in (self.owner.column, *(c for c, _ in self.owner.checks)) if c is not None]
        if any(c not in names for c in owner_cols):
            raise ValueError(f"{self.name}: an owner column of {self.owner} is not a column")

    @property
    def extracts(self) -> bool:
        return self.extract_title is not None

    @property
    def monthly(self) -> bool:
        return self.period_col == "month_start"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c[0] for c in self.columns)

    @property
    def schema(self) -> T.StructType:
        from pyspark.sql import types as T

        return T.StructType([T.StructField(c[0], _spark_type(c[1]), c[2] if len(c) > 2 else True)
                             for c in self.columns])

    def schema_differences(self, actual: T.StructType) -> list[str]:
        """How ``actual`` (a transform's output schema) differs from the declaration: columns (names and
        order), types and nullability. Empty when it is the declared schema."""
        declared = self.schema
        if [f.name for f in actual.fields] != [f.name for f in declared.fields]:
            names = [f.name for f in actual.fields]
            return [f"columns differ: new {[n for n in names if n not in self.column_names]}, "
                    f"missing {[n for n in self.column_names if n not in names]}"
                    + ("" if set(names) != set(self.column_names) else ", or in another order")]
        out = []
        for want, got in zip(declared.fields, actual.fields):
            if got.dataType != want.dataType:
                out.append(f"{got.name}: {got.dataType.simpleString()}, declared {want.dataType.simpleString()}")
            elif got.nullable != want.nullable:
                out.append(f"{got.name}: {'nullable' if got.nullable else 'NOT NULL'}, declared "
                           f"{'nullable' if want.nullable else 'NOT NULL'}")
        return out

    @property
    def spec(self) -> TableSpec:
        from schemas.tables import TableSpec

        return TableSpec(self.name, "gold", self.schema, natural_key=self.key, partition_cols=(self.period_col,))


_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")


def _spark_type(name: str):
    from pyspark.sql import types as T

    simple = {STRING: T.StringType(), DOUBLE: T.DoubleType(), BIGINT: T.LongType(), INT: T.IntegerType(),
              BOOLEAN: T.BooleanType(), DATE: T.DateType(), TIMESTAMP: T.TimestampType()}
    if name in simple:
        return simple[name]
    m = _DECIMAL.fullmatch(name)
    if not m:
        raise ValueError(f"unknown column type {name!r}")
    return T.DecimalType(int(m[1]), int(m[2]))


ROLLUP_KEY, DAILY_ROLLUP_KEY = ("month_start", "scope_level", "scope_id"), ("date_local", "scope_level", "scope_id")

# --- column groups that several tables share (the transforms' own groups) ---------------------------------------
MONTH = ("month_start", DATE)                 # first day of the month, truncated from a day column
SCOPE_COLS = (("scope_level", STRING, NOT_NULL), ("scope_id", STRING))
STATION = (("company_id", STRING), ("banner", STRING))


def _levels(unit: str) -> tuple[tuple, ...]:
    """The standard in force on ``graded_date``, its level 1/2/3 maxima and the grade against them."""
    return (("standard", STRING), ("standard_clause", STRING), *((f"level_{n}_max_{unit}", FACTOR) for n in (1, 2, 3)),
            ("limits_version", STRING), ("limits_need_review", BOOLEAN), ("level", INT), ("grade", STRING, NOT_NULL))


MINE_ATTRS = (("company_id", STRING), ("banner", STRING), ("mine_type", STRING))
MINE_ENERGY = (("raw_coal_t", QTY), ("electricity_kwh", QTY), ("diesel_kg", QTY), ("other_energy_kgce", QTY),
               ("energy_kgce", EXACT), ("electricity_kwh_per_t", DOUBLE), ("energy_kgce_per_t", DOUBLE))
ENERGY_VERSIONS = (("electricity_basis", STRING, NOT_NULL), ("factor_version", STRING, NOT_NULL))

PLANT_ATTRS = (("company_id", STRING), ("mine_id", STRING), ("banner", STRING), ("coal_type", STRING),
               ("process", STRING))
WASHING_SUMS = (("raw_coal_fed_t", QTY), ("clean_coal_t", QTY), ("middlings_t", QTY), ("gangue_t", QTY),
                ("slime_t", QTY), ("electricity_kwh", QTY), ("corrected_electricity_kwh", EXACT), ("water_m3", QTY),
                ("magnetite_kg", QTY), ("fed_with_water_t", QTY), ("fed_with_magnetite_t", QTY),
                ("fed_with_gangue_t", QTY))
WASHING_RATIOS = (("electricity_kwh_per_t_fed", DOUBLE), ("gb29446_electricity_kwh_per_t", DOUBLE),
                  ("yield_pct", DOUBLE), ("gangue_share_pct", DOUBLE), ("water_m3_per_t", DOUBLE),
                  ("magnetite_kg_per_t", DOUBLE))

TRUCK_SUMS = (
    ("frames", BIGINT), ("integrated_s", DOUBLE), ("gap_s", DOUBLE), ("distance_km", DOUBLE),
    ("integrated_distance_km", DOUBLE), ("loaded_km", DOUBLE), ("empty_km", DOUBLE), ("loaded_integrated_km", DOUBLE),
    ("empty_integrated_km", DOUBLE), ("battery_discharge_kwh", DOUBLE), ("regen_kwh", DOUBLE),
    ("battery_net_kwh", DOUBLE), ("loaded_battery_net_kwh", DOUBLE), ("empty_battery_net_kwh", DOUBLE),
    ("charge_in_battery_kwh", DOUBLE), ("soc_net_kwh", DOUBLE), ("suspected_swaps", BIGINT), ("h2_used_kg", DOUBLE),
    ("h2_refilled_kg", DOUBLE), ("loaded_h2_kg", DOUBLE), ("diesel_l", DOUBLE), ("tonne_km", DOUBLE),
    ("integrated_tonne_km", DOUBLE),
)
TRUCK_RATIOS = tuple((c, DOUBLE) for c in (
    "battery_kwh_per_100km", "soc_kwh_per_100km", "grid_kwh_per_100km", "h2_kg_per_100km", "diesel_l_per_100km",
    "loaded_battery_kwh_per_100km", "empty_battery_kwh_per_100km", "battery_kwh_per_tkm", "h2_kg_per_tkm",
    "diesel_l_per_tkm", "battery_kwh_per_delivered_t", "grid_kwh_per_delivered_t", "h2_kg_per_delivered_t",
    "diesel_l_per_delivered_t", "regen_share_pct", "integration_coverage_pct", "charging_loss_kwh",
    "charging_loss_pct"))


def _charging_sums(*nullable: bool) -> tuple[tuple, ...]:
    """Connector-seconds, kWh and rated capacity of the bucket (NOT NULL per connector-hour)."""
    return tuple((c, DOUBLE, *nullable) for c in ("calendar_s", "status_unknown_s", "charging_s", "plugged_in_s",
                                                  "fault_s", "energy_kwh", "rated_capacity_kwh"))


CHARGING_PCTS = tuple((c, DOUBLE) for c in ("time_based_utilisation_pct", "occupancy_pct",
                                            "availability_adjusted_utilisation_pct", "energy_based_utilisation_pct"))
PER_CONNECTOR_DAY = (("sessions_per_connector_day", DOUBLE), ("kwh_per_connector_day", DOUBLE))
DEFINITION = ("definition_version", STRING, NOT_NULL)


def _charging_rollup(period: tuple) -> tuple[tuple, ...]:
    return (period, *SCOPE_COLS, ("stations", BIGINT, NOT_NULL), ("connector_days", BIGINT), *_charging_sums(),
            ("sessions", BIGINT), *CHARGING_PCTS, *PER_CONNECTOR_DAY, ("max_station_peak_concurrent_charging", INT),
            DEFINITION)


def _h2_sums(count: str, *nullable: bool) -> tuple[tuple, ...]:
    """Station-days, nameplate kg, dispenser-days, fills, kg, dispensing s (NOT NULL per station-day)."""
    return (("station_days", count, *nullable), ("nameplate_kg", DOUBLE, *nullable),
            ("dispenser_days", count, *nullable), ("fills", BIGINT, *nullable), ("h2_kg", DOUBLE, *nullable),
            ("dispensing_s", DOUBLE, *nullable), ("station_days_with_fills", count, *nullable))


H2_RATIOS = tuple((c, DOUBLE) for c in ("nameplate_utilisation_pct", "fills_per_dispenser_day", "kg_per_fill",
                                        "dispenser_busy_pct", "days_with_fills_pct"))


def _h2_rollup(period: tuple) -> tuple[tuple, ...]:
    return (period, *SCOPE_COLS, ("stations", BIGINT, NOT_NULL), *_h2_sums(BIGINT), *H2_RATIOS, DEFINITION)


TABLES: tuple[GoldTable, ...] = (
    # --- 1. mine energy -------------------------------------------------------------------------------------
    GoldTable(
        "gold_mine_energy_daily", "mine_energy", grain="mine × shift-day", key=("shift_date", "mine_id"),
        period_col="shift_date", owner=company(_MINE), extract_title="per mine and shift-day", reports=True,
        columns=(("shift_date", DATE, NOT_NULL), ("mine_id", STRING, NOT_NULL), *MINE_ATTRS,
                 ("shifts", BIGINT, NOT_NULL), *MINE_ENERGY, ("graded_date", DATE, NOT_NULL), *_levels("kgce_per_t"),
                 *ENERGY_VERSIONS),
    ),
    GoldTable(
        "gold_mine_energy_monthly", "mine_energy", grain="mine × month", key=("month_start", "mine_id"),
        period_col="month_start", owner=company(_MINE), extract_title="per mine and month", reports=True,
        columns=(MONTH, ("mine_id", STRING, NOT_NULL), *MINE_ATTRS, ("days", BIGINT, NOT_NULL), ("shifts", BIGINT),
                 *MINE_ENERGY, ("graded_date", DATE), *_levels("kgce_per_t"), *ENERGY_VERSIONS),
    ),
    GoldTable(
        "gold_mine_energy_rollup_monthly", "mine_energy", grain="company / banner / city × month", key=ROLLUP_KEY,
        period_col="month_start", owner=ROLLUP, extract_title="company roll-up", reports=True,
        columns=(MONTH, *SCOPE_COLS, *((c, BIGINT, NOT_NULL) for c in (
                     "mines", "mines_graded", "mines_level_1", "mines_level_2", "mines_level_3", "mines_above_limit")),
                 *MINE_ENERGY, *ENERGY_VERSIONS, ("limits_version", STRING, NOT_NULL)),
    ),
    # --- 2. washing -----------------------------------------------------------------------------------------
    GoldTable(
        "gold_washing_daily", "washing", grain="washing plant × production day", key=("prod_date", "plant_id"),
        period_col="prod_date", owner=company(_PLANT, _MINE), extract_title="per plant and day", reports=True,
        columns=(("prod_date", DATE, NOT_NULL), ("plant_id", STRING, NOT_NULL), *PLANT_ATTRS, *WASHING_SUMS,
                 ("k_factor", REF_DECIMAL), *WASHING_RATIOS, ("graded_date", DATE, NOT_NULL), *_levels("kwh_per_t"),
                 ("process_factor_version", STRING)),
    ),
    GoldTable(
        "gold_washing_monthly", "washing", grain="washing plant × month", key=("month_start", "plant_id"),
        period_col="month_start", owner=company(_PLANT, _MINE), extract_title="per plant and month", reports=True,
        columns=(MONTH, ("plant_id", STRING, NOT_NULL), *PLANT_ATTRS, ("days", BIGINT, NOT_NULL), *WASHING_SUMS,
                 *WASHING_RATIOS, ("graded_date", DATE), *_levels("kwh_per_t"),
                 ("process_factor_version", STRING, NOT_NULL)),
    ),
    GoldTable(
        "gold_washing_rollup_monthly", "washing", grain="company / banner / city × month", key=ROLLUP_KEY,
        period_col="month_start", owner=ROLLUP, extract_title="company roll-up", reports=True,
        columns=(MONTH, *SCOPE_COLS, ("plants", BIGINT, NOT_NULL), *WASHING_SUMS, *WASHING_RATIOS,
                 ("plants_above_limit", BIGINT, NOT_NULL), ("process_factor_version", STRING, NOT_NULL),
                 ("limits_version", STRING, NOT_NULL)),
    ),
    GoldTable(
        "gold_raw_coal_washing_rate_monthly", "washing", grain="mine / company / banner / city × month",
        key=ROLLUP_KEY, period_col="month_start", owner=ROLLUP,
        extract_title="raw-coal washing rate per mine and company", reports=True,
        columns=(MONTH, ("scope_level", STRING), ("scope_id", STRING), ("raw_coal_fed_t", QTY, NOT_NULL),
                 ("raw_coal_produced_t", QTY), ("raw_coal_washing_rate_pct", DOUBLE),
                 ("rule_version", STRING, NOT_NULL)),
    ),
    # --- 3. truck energy ------------------------------------------------------------------------------------
    GoldTable(
        "gold_truck_energy_daily", "truck_energy", grain="truck × local day", key=("date_local", "vin"),
        period_col="date_local", owner=company(_TRUCK), extract_title="per truck and day",
        columns=(("date_local", DATE), ("vin", STRING), ("company_id", STRING), ("powertrain", STRING), *TRUCK_SUMS,
                 ("tickets", BIGINT, NOT_NULL), ("delivered_t", DOUBLE, NOT_NULL),
                 ("charging_sessions", BIGINT, NOT_NULL), ("grid_kwh", DOUBLE, NOT_NULL), ("soc_start_pct", DOUBLE),
                 ("soc_end_pct", DOUBLE), *TRUCK_RATIOS, ("rule_version", STRING, NOT_NULL)),
    ),
    GoldTable(
        "gold_truck_energy_monthly", "truck_energy", grain="company × powertrain (fleet) × month",
        key=("month_start", "company_id", "powertrain"), period_col="month_start", owner=company(),
        extract_title="per fleet (powertrain) and month", reports=True,
        columns=(MONTH, ("company_id", STRING), ("powertrain", STRING), ("trucks", BIGINT, NOT_NULL),
                 ("truck_days", BIGINT, NOT_NULL), *TRUCK_SUMS, ("tickets", BIGINT), ("delivered_t", DOUBLE),
                 ("charging_sessions", BIGINT), ("grid_kwh", DOUBLE), *TRUCK_RATIOS, ("rule_version", STRING, NOT_NULL),
                 # the battery-vs-grid check of the month's battery-electric trucks (null for other powertrains)
                 *((f"bev_trucks_{c}", BIGINT) for c in (
                     "checked", "check_ok", "outside_losses", "not_applicable_swaps", "no_grid_energy")),
                 ("battery_grid_check_version", STRING)),
    ),
    # A truck loading at another company's mine: the extract withholds that mine and its ticket (extracts.WITHHELD).
    GoldTable(
        "gold_truck_trips", "truck_energy", grain="weighbridge ticket (loaded trip)", key=("ticket_id",),
        period_col="date_local", owner=entity("vin", "truck"),
        extract_title="per weighbridge ticket (loaded trip)",
        columns=(("ticket_id", STRING, NOT_NULL), ("vin", STRING, NOT_NULL), ("mine_id", STRING, NOT_NULL),
                 ("load_ts_utc", TIMESTAMP, NOT_NULL), ("date_local", DATE, NOT_NULL), ("net_t", DOUBLE, NOT_NULL),
                 ("loaded_km", DOUBLE), ("tonne_km", DOUBLE), ("loaded_battery_net_kwh", DOUBLE),
                 ("loaded_h2_kg", DOUBLE), ("rule_version", STRING)),
    ),
    # --- 4. chain energy ------------------------------------------------------------------------------------
    GoldTable(
        "gold_chain_energy_shipment", "chain_energy", grain="shipment", key=("shipment_id",),
        period_col="month_start", owner=entity("mine_id", "mine"), extract_title="per shipment",
        columns=(("shipment_id", STRING, NOT_NULL), ("mine_id", STRING, NOT_NULL), ("product", STRING, NOT_NULL),
                 ("ship_date", DATE, NOT_NULL), MONTH, *((c, DOUBLE, NOT_NULL) for c in (
                     "tonnes", "road_km", "rail_km", "belt_km")),
                 *((c, DOUBLE) for c in ("raw_coal_per_product_t", "mining_kgce_per_t", "washing_kgce_per_t",
                                         "road_haulage_kgce_per_t", "rail_kgce_per_t", "chain_kgce_per_t",
                                         "chain_kgce")),
                 ("chain_complete", BOOLEAN, NOT_NULL), ("missing_components", STRING, NOT_NULL),
                 ("road_haulage_grid_kgce_per_t", DOUBLE), ("chain_grid_kgce_per_t", DOUBLE),
                 ("chain_grid_kgce", DOUBLE), *ENERGY_VERSIONS, ("rule_version", STRING)),
    ),
    GoldTable(
        "gold_chain_energy_rollup_monthly", "chain_energy", grain="mine / company / banner / city × month",
        key=ROLLUP_KEY, period_col="month_start", owner=ROLLUP, extract_title="per mine and company", reports=True,
        columns=(MONTH, *SCOPE_COLS, ("shipments", BIGINT, NOT_NULL),
                 *((c, DOUBLE) for c in ("tonnes", "complete_tonnes", "complete_chain_kgce",
                                         "complete_chain_kgce_per_t", "complete_grid_tonnes",
                                         "complete_chain_grid_kgce", "complete_chain_grid_kgce_per_t",
                                         "incomplete_chain_tonnes",
                                         "incomplete_chain_known_kgce", "incomplete_chain_known_kgce_per_t")),
                 ("incomplete_missing_components", STRING), ("no_chain_tonnes", DOUBLE),
                 ("complete_share_pct", DOUBLE), *ENERGY_VERSIONS),
    ),
    # --- 5. charging utilisation ----------------------------------------------------------------------------
    GoldTable(
        "gold_charging_connector_hourly", "charging_utilisation", grain="connector × local hour",
        key=("date_local", "hour_local", "station_id", "connector_id"), period_col="date_local",
        owner=entity("station_id", "charging_station"), extract_title="per connector and hour",
        columns=(("date_local", DATE, NOT_NULL), ("hour_local", INT, NOT_NULL), ("station_id", STRING, NOT_NULL),
                 ("connector_id", STRING, NOT_NULL), ("rated_kw", DOUBLE, NOT_NULL), *_charging_sums(NOT_NULL),
                 *CHARGING_PCTS, DEFINITION),
    ),
    GoldTable(
        "gold_charging_connector_daily", "charging_utilisation", grain="connector × local day",
        key=("date_local", "station_id", "connector_id"), period_col="date_local",
        owner=entity("station_id", "charging_station"), extract_title="per connector and day",
        columns=(("date_local", DATE, NOT_NULL), ("station_id", STRING, NOT_NULL), ("connector_id", STRING, NOT_NULL),
                 ("rated_kw", DOUBLE, NOT_NULL), *_charging_sums(), *CHARGING_PCTS,
                 ("sessions_per_connector_day", BIGINT, NOT_NULL), ("kwh_per_connector_day", DOUBLE), DEFINITION),
    ),
    GoldTable(
        "gold_charging_station_hourly", "charging_utilisation", grain="charging station × local hour",
        key=("date_local", "hour_local", "station_id"), period_col="date_local", owner=company(_CS),
        extract_title="per station and hour", reports=True,
        columns=(("date_local", DATE, NOT_NULL), ("hour_local", INT, NOT_NULL), ("station_id", STRING, NOT_NULL),
                 *STATION, ("connectors", BIGINT, NOT_NULL), *_charging_sums(), *CHARGING_PCTS,
                 ("peak_concurrent_charging", INT, NOT_NULL), DEFINITION),
    ),
    GoldTable(
        "gold_charging_station_daily", "charging_utilisation", grain="charging station × local day",
        key=("date_local", "station_id"), period_col="date_local", owner=company(_CS),
        extract_title="per station and day", reports=True,
        columns=(("date_local", DATE, NOT_NULL), ("station_id", STRING, NOT_NULL), *STATION,
                 ("connectors", BIGINT, NOT_NULL), *_charging_sums(), ("sessions", BIGINT), *CHARGING_PCTS,
                 *PER_CONNECTOR_DAY, ("peak_concurrent_charging", INT, NOT_NULL),
                 # charging losses of the sessions traced to battery-electric truck-days
                 *((c, DOUBLE) for c in ("traced_grid_kwh", "charge_in_battery_kwh", "charging_loss_kwh",
                                         "charging_loss_pct")),
                 DEFINITION),
    ),
    GoldTable(
        "gold_charging_station_monthly", "charging_utilisation", grain="charging station × month",
        key=("month_start", "station_id"), period_col="month_start", owner=company(_CS),
        extract_title="per station and month", reports=True,
        columns=(MONTH, ("station_id", STRING, NOT_NULL), *STATION, ("connectors", BIGINT), ("connector_days", BIGINT),
                 *_charging_sums(), ("sessions", BIGINT), *CHARGING_PCTS, *PER_CONNECTOR_DAY,
                 ("peak_concurrent_charging", INT), DEFINITION),
    ),
    GoldTable(
        "gold_charging_rollup_daily", "charging_utilisation", grain="company / banner / city × local day",
        key=DAILY_ROLLUP_KEY, period_col="date_local", owner=ROLLUP, extract_title="company roll-up per day",
        columns=_charging_rollup(("date_local", DATE, NOT_NULL)),
    ),
    GoldTable(
        "gold_charging_rollup_monthly", "charging_utilisation", grain="company / banner / city × month",
        key=ROLLUP_KEY, period_col="month_start", owner=ROLLUP, extract_title="company roll-up per month",
        reports=True, columns=_charging_rollup(MONTH),
    ),
    # Load flexibility (docs/kpis.md §5a, jobs/kpi/charging_flexibility.py): the energy of each station-hour that
    # could have moved without missing a departure, and the station-day's peak a schedule using it would remove.
    GoldTable(
        "gold_charging_flexibility_hourly", "charging_utilisation", grain="charging station × local hour",
        key=("date_local", "hour_local", "station_id"), period_col="date_local", owner=company(_CS),
        extract_title="load flexibility per station and hour", reports=True,
        columns=(("date_local", DATE, NOT_NULL), ("hour_local", INT, NOT_NULL), ("station_id", STRING, NOT_NULL),
                 *STATION,
                 *((c, BIGINT, NOT_NULL) for c in ("sessions", "flexible_sessions", "capacity_exceeded_sessions",
                                                   "unrated_sessions")),
                 *((c, DOUBLE, NOT_NULL) for c in ("plugged_in_h", "slack_h", "as_charged_kwh", "must_run_kwh",
                                                   "flexible_kwh")),
                 ("flexible_share_pct", DOUBLE),                  # null for an hour without energy
                 ("capacity_excess_kwh", DOUBLE, NOT_NULL),
                 # the station-day's values, repeated on each of its hours: take one, never sum them
                 *((c, DOUBLE, NOT_NULL) for c in ("day_peak_as_charged_kw", "day_min_peak_kw", "day_peak_removed_kw")),
                 DEFINITION),
    ),
    # --- 6. hydrogen-station utilisation --------------------------------------------------------------------
    GoldTable(
        "gold_h2_station_daily", "h2_utilisation", grain="hydrogen station × local day",
        key=("date_local", "station_id"), period_col="date_local", owner=company(_HS),
        extract_title="per station and day", reports=True,
        columns=(("date_local", DATE, NOT_NULL), ("station_id", STRING, NOT_NULL), ("company_id", STRING, NOT_NULL),
                 ("banner", STRING), ("nameplate_kg_per_day", DOUBLE, NOT_NULL), ("dispensers", INT, NOT_NULL),
                 *_h2_sums(INT, NOT_NULL), ("active_dispensers", BIGINT, NOT_NULL), *H2_RATIOS,
                 ("active_dispenser_share_pct", DOUBLE), DEFINITION),
    ),
    GoldTable(
        "gold_h2_station_monthly", "h2_utilisation", grain="hydrogen station × month",
        key=("month_start", "station_id"), period_col="month_start", owner=company(_HS),
        extract_title="per station and month",
        columns=(MONTH, ("station_id", STRING, NOT_NULL), ("company_id", STRING, NOT_NULL), ("banner", STRING),
                 *_h2_sums(BIGINT), *H2_RATIOS, DEFINITION),
    ),
    GoldTable(
        "gold_h2_rollup_daily", "h2_utilisation", grain="company / banner / city × local day", key=DAILY_ROLLUP_KEY,
        period_col="date_local", owner=ROLLUP, extract_title="company roll-up per day",
        columns=_h2_rollup(("date_local", DATE, NOT_NULL)),
    ),
    GoldTable(
        "gold_h2_rollup_monthly", "h2_utilisation", grain="company / banner / city × month", key=ROLLUP_KEY,
        period_col="month_start", owner=ROLLUP, extract_title="company roll-up per month", reports=True,
        columns=_h2_rollup(MONTH),
    ),
    # --- 7. rail share --------------------------------------------------------------------------------------
    GoldTable(
        "gold_rail_share_monthly", "rail_share", grain="mine / company / banner / city × month", key=ROLLUP_KEY,
        period_col="month_start", owner=ROLLUP, extract_title="per mine and company", reports=True,
        columns=(MONTH, *SCOPE_COLS, ("long_haul_shipments", BIGINT, NOT_NULL), ("long_haul_t", QTY), ("rail_t", QTY),
                 *((c, DOUBLE) for c in ("rail_share_tonnes_pct", "long_haul_tonne_km", "rail_tonne_km",
                                         "rail_share_tonne_km_pct", "target_rail_share_pct",
                                         "gap_to_target_pct_points")),
                 ("meets_target", BOOLEAN), ("rule_version", STRING, NOT_NULL), ("target_version", STRING)),
    ),
    # --- 8. plan targets ------------------------------------------------------------------------------------
    GoldTable(
        "gold_target_tracking", "targets", grain="plan target × month", key=("month_start", "target_id"),
        period_col="month_start", owner=CITY_WIDE, not_extracted="city-wide plan targets over every company",
        reports=True,
        columns=(("month_start", DATE, NOT_NULL), *((c, STRING) for c in (
                     "target_id", "description", "metric", "scope", "comparator")),
                 ("target_value", DOUBLE), ("unit", STRING), ("target_year", INT), ("current_value", DOUBLE),
                 ("numerator", QTY), ("denominator", QTY), ("baseline_value", DOUBLE), ("gap_to_target", DOUBLE),
                 ("status", STRING, NOT_NULL), ("target_version", STRING), ("target_needs_review", BOOLEAN),
                 ("value_versions", STRING), ("value_source", STRING)),
    ),
    # --- charging-demand forecast: written by the forecast DAG, not the KPI build -------------------------
    # One run per as-of day D (``forecast_date_local``): the 168 hours after D's local midnight, per station
    # (schemas/gold_forecast.py).
    GoldTable(
        "gold_charging_forecast", "charging_forecast", grain="charging station × forecast hour × as-of day",
        key=("forecast_date_local", "station_id", "ts_utc"), period_col="forecast_date_local",
        owner=entity("station_id", "charging_station"), reports=True, written_by=FORECAST_JOB,
        not_extracted="station forecasts of the next days, not figures of the month",
        columns=(
            ("station_id", STRING, NOT_NULL),
            ("ts_utc", TIMESTAMP, NOT_NULL),                  # start of the forecast hour (UTC)
            ("ts_local", TIMESTAMP, NOT_NULL),                # the same hour as Asia/Shanghai wall-clock time
            ("lead_h", INT, NOT_NULL),                        # hours after the cut-off: 1 = the first hour
            ("p10_kwh", DOUBLE, NOT_NULL),                    # energy delivered in the hour, 10 % quantile
            ("p50_kwh", DOUBLE, NOT_NULL),                    # median: the point forecast
            ("p90_kwh", DOUBLE, NOT_NULL),                    # 90 % quantile
            # what the P50 is: gbm_quantile; snaive_daily / snaive_weekly (the model's refit check found that
            # baseline better over the two weeks before training and serves it); seasonal_naive_daily (no model yet)
            ("method", STRING, NOT_NULL),
            ("model_version", STRING, NOT_NULL),              # registry folder, or seasonal_naive_daily
            ("data_version", STRING, NOT_NULL),               # silver_charging_sessions@v<N>
            ("feature_cutoff_ts_utc", TIMESTAMP, NOT_NULL),   # no data at or after this instant was used
            ("issued_at", TIMESTAMP, NOT_NULL),               # wall-clock time of the run (UTC)
            ("forecast_date_local", DATE, NOT_NULL),          # as-of day D: run key and partition
        ),
    ),
    # The flexible energy of the forecast day D + 1 of each run (docs/kpis.md §5a): the P50 x the station's
    # flexible share of that local hour over the 28 days up to D (jobs/forecast/flexibility.py, run by predict).
    GoldTable(
        "gold_charging_flexibility_forecast", "charging_forecast",
        grain="charging station × hour of the forecast day × as-of day",
        key=("forecast_date_local", "station_id", "ts_local"), period_col="forecast_date_local",
        owner=entity("station_id", "charging_station"), written_by=FORECAST_JOB,
        not_extracted="an estimate for the next day from the forecast, not figures of the month",
        columns=(
            ("forecast_date_local", DATE, NOT_NULL),          # as-of day D of the forecast run: partition
            ("date_local", DATE, NOT_NULL),                   # the forecast day, D + 1
            ("hour_local", INT, NOT_NULL),
            ("station_id", STRING, NOT_NULL),
            ("ts_local", TIMESTAMP, NOT_NULL),                # start of the hour, Asia/Shanghai wall-clock time
            ("lead_h", INT, NOT_NULL),                        # 1..24
            ("p50_kwh", DOUBLE, NOT_NULL),                    # the run's P50 of the hour
            ("flexible_share_pct", DOUBLE),                   # the station's historical share; null: no history
            ("flexible_p50_kwh", DOUBLE),                     # p50_kwh x flexible_share_pct / 100
            ("share_basis", STRING, NOT_NULL),                # station_hour | station | none
            ("history_days", BIGINT, NOT_NULL),               # days of flexibility history found
            ("method", STRING, NOT_NULL),                     # the forecast run's method and model
            ("model_version", STRING, NOT_NULL),
            DEFINITION,
        ),
    ),
)

GOLD: dict[str, GoldTable] = {t.name: t for t in TABLES}
if len(GOLD) != len(TABLES):
    raise ValueError("a gold table is declared twice")


def table(name: str) -> GoldTable:
    """The declaration of a gold table; a ``KeyError`` naming the catalogue for an undeclared one."""
    try:
        return GOLD[name]
    except KeyError:
        raise KeyError(f"{name} is not a declared gold table (schemas/gold.py)") from None


def written_by(job: str) -> tuple[GoldTable, ...]:
    return tuple(t for t in TABLES if t.written_by == job)


def families(job: str = KPI_BUILD) -> tuple[str, ...]:
    """The KPI families whose tables ``job`` writes, in catalogue order."""
    return tuple(dict.fromkeys(t.family for t in written_by(job)))


def extracted() -> tuple[GoldTable, ...]:
    return tuple(t for t in TABLES if t.extracts)


def reported() -> tuple[GoldTable, ...]:
    return tuple(t for t in TABLES if t.reports)


def assets() -> tuple[GoldTable, ...]:
    return tuple(t for t in TABLES if t.asset)


# --- the table index of docs/kpis.md -------------------------------------------------------------------------
DOCS_FILE = Path(__file__).resolve().parents[1] / "docs" / "kpis.md"
INDEX_BEGIN = "<!-- gold table index: generated by `python -m schemas.gold --write-docs`; do not edit by hand -->"
INDEX_END = "<!-- end of the gold table index -->"


def docs_index() -> str:
    """The markdown table of every gold table, between the two marker lines."""
    rows = ["| Table | Family | One row per | Key | Partition | Company of a row | Columns | Asset | Extracts "
            "| Reports |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in TABLES:
        extracts = "yes" if t.extracts else f"no: {t.not_extracted}"
        asset, reports = ("yes" if flag else "no" for flag in (t.asset, t.reports))
        rows.append(f"| `{t.name}` | {FAMILIES[t.family]} (`{FAMILY_MODULES[t.family]}`) | {t.grain} | "
                    f"{', '.join(f'`{k}`' for k in t.key)} | `{t.period_col}` | {t.owner.describe()} | "
                    f"{len(t.columns)} | {asset} | {extracts} | {reports} |")
    return "\n".join([INDEX_BEGIN, *rows, INDEX_END])


def docs_with_index(text: str) -> str:
    """``text`` (docs/kpis.md) with its table index replaced by :func:`docs_index`."""
    begin, end = text.find(INDEX_BEGIN), text.find(INDEX_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{DOCS_FILE.name} has no gold table index markers")
    return text[:begin] + docs_index() + text[end + len(INDEX_END):]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-docs", action="store_true", help=f"rewrite the table index of {DOCS_FILE.name}")
    args = parser.parse_args(argv)
    if args.write_docs:
        DOCS_FILE.write_text(docs_with_index(DOCS_FILE.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the gold table index of {DOCS_FILE}")
    else:
        print(docs_index())


if __name__ == "__main__":
    main()
