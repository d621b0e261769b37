"""Per-company monthly KPI extract packs (CSV, Parquet, one Excel workbook, checksum manifest).

    python -m jobs.delivery.extracts --month 2026-11
    python -m jobs.delivery.extracts --latest                          # the latest month present in gold
    python -m jobs.delivery.extracts --month 2026-11 --company C01 --company C03

For every company of ``silver_companies`` (or the ones named) one folder
``<extracts_root>/<yyyy-mm>/<company_key>/`` with ``company_key = c_`` + the first 16 hex digits of
sha256(salt + company_id) (``jobs.delivery.company_keys``, shared with the reports): a company id or name never
appears in a path.

    csv/<gold table>.csv          one per gold table in the pack (all of them, empty ones too)
    parquet/<gold table>.parquet  the same rows with the gold column types (decimals stay decimals)
    kpi_extract_<yyyy-mm>.xlsx    cover sheet (company, period, generated-at, versions, tables, KPI
                                  definitions) + one sheet per KPI family, units in the headers
    MANIFEST.json                 company, period, versions, every file with sha256, bytes and rows
    SHA256SUMS                    ``sha256sum -c SHA256SUMS`` in the folder verifies every file

Tenant isolation: each table has one rule naming its owning company (``TABLES``, from the gold catalogue
``schemas/gold.py``): its ``company_id``;
its station via ``silver_charging_stations``; its mine via ``silver_mines``; its truck via ``silver_trucks``;
or, for roll-up tables,
``scope_level`` ∈ {company, mine} with a ``scope_id`` the company owns — banner and city rows sum over
several companies and are never included. Every other entity column of a row (mine, plant, truck,
station) must belong to the same company, else the run stops (``IsolationError``) before writing; a
trip loaded at another company's mine (contract haulage) is the truck owner's with ``mine_id`` and
``ticket_id`` withheld (empty). A station's figures count every session at it, whichever company's truck,
and name no truck; its charging-loss columns rest on truck telematics and trace the owner's trucks only.
``gold_target_tracking`` (city-wide) and ``gold_charging_forecast`` are not in the packs.

A pack is written to a hidden temporary sibling folder and renamed into place: the folder is the old
complete pack or the new complete pack, never a half-written one, and a re-run replaces it. Contents
are deterministic: a re-run on the same gold data writes identical files except the generated-at
timestamp (cover sheet, manifest, and the checksums that cover them).

Exit codes: 0 success, 1 bad input (no gold data for the month, unknown company) or failure, 2 usage.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io as bytes_io
import json
import logging
import math
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.delivery.company_keys import company_key
from jobs.platform.settings import Settings, get_settings
from schemas import gold

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

GENERATOR_VERSION = "extracts_v1.0"
PACK_FORMAT = 1
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
OWNER = "_owner_company_id"
MANIFEST, CHECKSUMS = "MANIFEST.json", "SHA256SUMS"

# Roll-up scope levels that belong to one company, and the entity kind their scope_id names. Any other
# level (banner, city, or one added later) aggregates over companies and is left out.
SCOPE_KINDS: dict[str, str] = {"company": "company", "mine": "mine", "plant": "plant", "truck": "truck"}
# A station's figures include every session at it, whichever company's truck charged or refuelled; they
# name no truck or company. The charging-loss columns of a station-day are the exception: they rest on the
# trucks' own telematics (energy into the battery), so a pack traces them over the station owner's trucks.
OWN_FLEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "gold_charging_station_daily": ("traced_grid_kwh", "charge_in_battery_kwh", "charging_loss_kwh",
                                    "charging_loss_pct"),
}
# Columns that name an entity or an event: each one in a pack table must be its owner column, a checked or
# withheld reference, the roll-up scope, or an id of the owned row itself (a connector of the company's
# station, a ticket of its truck, a shipment of its mine). A new id column in gold stops the run until
# someone decides how it is isolated.
ROW_IDS = frozenset({"connector_id", "ticket_id", "shipment_id"})


def _is_id_column(name: str) -> bool:
    return name == "vin" or name.endswith("_id")


# Row order of every file (whichever of these a table has, in this order): stable across re-runs.
SORT_COLUMNS = ("month_start", "date_local", "shift_date", "prod_date", "hour_local", "scope_level", "scope_id",
                "company_id", "powertrain", "mine_id", "plant_id", "vin", "station_id", "connector_id",
                "shipment_id", "ticket_id", "product")


@dataclass(frozen=True)
class ExtractTable:
    """A gold table in the packs, and how a row's owning company is found."""

    name: str
    family: str
    period_col: str
    owner_col: str                       # column naming the owning entity
    owner_kind: str                      # its kind: company | mine | truck | charging_station | h2_station | scope
    title: str
    refs: tuple[tuple[str, str], ...] = ()   # other entity columns (column, kind): must be the same company's
    # (column, kind, columns withheld with it): another company's entity in this column is withheld (the
    # column and the named ones written empty) instead of stopping the run
    withheld: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @property
    def isolation(self) -> str:
        if self.owner_kind == "scope":
            return ("scope_level in (company, mine) and the company owns scope_id; "
                    "banner and city rows (several companies) excluded")
        if self.owner_kind == "company":
            rule = "company_id = the company"
        else:
            source = {"mine": "silver_mines", "truck": "silver_trucks",
                      "charging_station": "silver_charging_stations", "h2_station": "silver_h2_stations"}
            rule = f"{self.owner_col} -> {source[self.owner_kind]}.company_id = the company"
        for column, _, also in self.withheld:
            rule += f"; {', '.join((column, *also))} empty where {column} is another company's"
        if self.name in OWN_FLEET_COLUMNS:
            rule += f"; {', '.join(OWN_FLEET_COLUMNS[self.name])} traced over the company's own trucks only"
        return rule


# Contract haulage: a truck loading at another company's mine is the truck owner's trip, but the mine and its
# weighbridge ticket (whose id names the mine) are the mine owner's: both are withheld from the truck owner.
WITHHELD: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "gold_truck_trips": (("mine_id", "mine", ("ticket_id",)),),
}


def _extract_table(t: gold.GoldTable) -> ExtractTable:
    return ExtractTable(t.name, t.family, t.period_col, t.owner.column, t.owner.kind, t.extract_title,
                        t.owner.checks, WITHHELD.get(t.name, ()))


# The tables in the packs and the rule naming a row's company: the gold catalogue's (schemas/gold.py).
TABLES: tuple[ExtractTable, ...] = tuple(_extract_table(t) for t in gold.extracted())
EXCLUDED_TABLES: dict[str, str] = {t.name: t.not_extracted for t in gold.TABLES if not t.extracts}
# One workbook sheet per KPI family in the packs, in catalogue order.
FAMILIES: dict[str, str] = {t.family: gold.FAMILIES[t.family] for t in TABLES}


class ExtractError(Exception):
    """Bad input (month, company) or a lake that cannot give a pack: the message says which."""


class IsolationError(ExtractError):
    """A row about to go into a company's pack names another company's entity."""


# --- companies and who owns what --------------------------------------------------------------------------

@dataclass(frozen=True)
class Owners:
    """Every company and the company of every mine, plant, truck and station (from silver)."""

    company_names: dict[str, str | None]
    entities: dict[str, dict[str, str]]          # kind -> entity id -> company_id

    def company_of(self, kind: str, entity_id: str) -> str | None:
        return self.entities.get(kind, {}).get(entity_id)


def read_owners(spark: SparkSession, settings: Settings) -> Owners:
    from jobs.platform import delta_tables
    from schemas.tables import SILVER

    def pairs(source: str, id_col: str) -> dict[str, str]:
        rows = delta_tables.read_existing(spark, SILVER[source], settings).select(id_col, "company_id").collect()
        return {r[id_col]: r["company_id"] for r in rows}

    names = {r["company_id"]: r["company_name"] for r in
             delta_tables.read_existing(spark, SILVER["companies"], settings).select("company_id", "company_name").collect()}
    entities = {
        "company": {c: c for c in names},
        "mine": pairs("mines", "mine_id"),
        "plant": pairs("washing_plants", "plant_id"),
        "truck": pairs("trucks", "vin"),
        "charging_station": pairs("charging_stations", "station_id"),
        "h2_station": pairs("h2_stations", "station_id"),
    }
    return Owners(names, entities)


def _lookup(mapping: dict[str, str], key: Column) -> Column:
    """``mapping[key]`` as a literal map expression (null for unknown keys): the entity lists are small,
    and a literal map costs no join and no broadcast job per table."""
    from pyspark.sql import functions as F

    if not mapping:
        return F.lit(None).cast("string")
    return F.create_map(*[F.lit(x) for kv in sorted(mapping.items()) for x in kv])[key]


def with_owner(df: DataFrame, table: ExtractTable, *, owners: Owners) -> DataFrame:
    """Add the owning company of each row (``OWNER``, null when silver does not know the entity); roll-up
    rows of scope levels that are not one company's (banner, city) are dropped."""
    from pyspark.sql import functions as F

    if table.owner_kind != "scope":
        return df.withColumn(OWNER, _lookup(owners.entities.get(table.owner_kind, {}), F.col(table.owner_col)))
    owner = F.lit(None).cast("string")
    for level, kind in SCOPE_KINDS.items():
        owner = F.when(F.col("scope_level") == level,
                       _lookup(owners.entities.get(kind, {}), F.col("scope_id"))).otherwise(owner)
    return df.filter(F.col("scope_level").isin(list(SCOPE_KINDS))).withColumn(OWNER, owner)


def check_isolation(rows: pa.Table, table: ExtractTable, company_id: str, owners: Owners) -> None:
    """Fail closed: every entity a row names must be the company's own, and every id column is declared."""
    declared = {table.owner_col, *(c for c, _ in table.refs), "scope_id",
                *(c for column, _, also in table.withheld for c in (column, *also))} | ROW_IDS
    undeclared = sorted(c for c in rows.column_names if _is_id_column(c) and c not in declared)
    if undeclared:
        raise IsolationError(f"{table.name}: id column(s) {undeclared} have no isolation rule (TABLES in "
                             f"jobs/delivery/extracts.py); no pack written")
    checks = list(table.refs) + [(column, kind) for column, kind, _ in table.withheld]
    if table.owner_kind != "scope":
        checks.append((table.owner_col, table.owner_kind))
    for column, kind in checks:
        foreign = sorted({v for v in rows.column(column).to_pylist()
                          if v is not None and owners.company_of(kind, v) != company_id})
        if foreign:
            raise IsolationError(
                f"{table.name}: rows of company {company_id} name {column} value(s) {foreign[:5]} owned by "
                f"another company or by none; no pack written")
    if table.owner_kind == "scope":
        levels = set(rows.column("scope_level").to_pylist()) - set(SCOPE_KINDS)
        if levels:
            raise IsolationError(f"{table.name}: scope levels {sorted(levels)} are not single-company")


# --- reading gold -----------------------------------------------------------------------------------------

def _gold(spark: SparkSession, name: str, settings: Settings) -> DataFrame:
    from pyspark.sql import types as T

    from jobs.platform import delta_tables
    from schemas.tables import TableSpec

    try:
        return delta_tables.read_existing(spark, TableSpec(name, "gold", T.StructType()), settings)
    except FileNotFoundError as exc:
        raise ExtractError(f"{exc}; build gold first (python -m jobs.kpi.build)") from exc


def _union(frames: list[DataFrame]) -> DataFrame:
    from functools import reduce

    return reduce(lambda a, b: a.union(b), frames)


def available_months(spark: SparkSession, settings: Settings) -> list[dt.date]:
    """Months with at least one row in any gold table of the packs (scans every table: error messages only)."""
    from pyspark.sql import functions as F

    months = _union([_gold(spark, t.name, settings).select(F.trunc(F.col(t.period_col), "month").alias("m"))
                     .distinct() for t in TABLES]).distinct().collect()
    return sorted(r["m"] for r in months if r["m"] is not None)


def latest_month(spark: SparkSession, settings: Settings) -> dt.date | None:
    """The month of the latest period in any gold table of the packs (maxima of partition columns)."""
    from pyspark.sql import functions as F

    latest = _union([_gold(spark, t.name, settings).agg(F.max(F.col(t.period_col)).alias("m"))
                     for t in TABLES]).agg(F.max("m")).first()[0]
    return latest.replace(day=1) if latest else None


def month_in_gold(spark: SparkSession, month: dt.date, settings: Settings) -> tuple[bool, list[dt.date]]:
    """Whether gold has rows in ``month``, and (only when it is not known from the first table) every
    month it has: a partition-pruned probe of one table usually answers, the scan of all tables runs only
    for a month that table lacks."""
    from pyspark.sql import functions as F

    probe = TABLES[0]
    rows = _gold(spark, probe.name, settings).filter(
        F.col(probe.period_col).between(F.lit(month), F.lit(month_end(month)))).limit(1).count()
    if rows:
        return True, []
    months = available_months(spark, settings)
    return month in months, months


def month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def collect_month(spark: SparkSession, month: dt.date, company_ids: Sequence[str], owners: Owners,
                  settings: Settings) -> dict[str, pa.Table]:
    """Each gold table's rows of the month owned by one of ``company_ids``, with ``OWNER`` (one Spark job
    per table; the per-company split happens in memory)."""
    from pyspark.sql import functions as F

    end = month_end(month)
    out: dict[str, pa.Table] = {}
    for i, table in enumerate(TABLES, 1):
        df = _gold(spark, table.name, settings).filter(F.col(table.period_col).between(F.lit(month), F.lit(end)))
        if table.name in OWN_FLEET_COLUMNS:
            df = with_own_fleet_losses(spark, df, month, owners, settings)
        df = with_owner(df, table, owners=owners).filter(
            F.col(OWNER).isin(list(company_ids)) | F.col(OWNER).isNull())
        rows = df.toArrow()
        unowned = rows.column(OWNER).null_count
        if unowned:
            log.warning("%s: %d row(s) name an entity that no company owns in silver: left out of every pack",
                        table.name, unowned)
            rows = rows.filter(rows.column(OWNER).is_valid())
        out[table.name] = rows
        log.info("reading [%d/%d] %s: %d rows for %d company(ies)", i, len(TABLES), table.name, rows.num_rows,
                 len(company_ids))
    return out


def withhold_foreign(rows: pa.Table, table: ExtractTable, company_id: str, owners: Owners) -> pa.Table:
    """The rows with every withheld reference to another company's entity (and the columns withheld with
    it) set to null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for column, kind, also in table.withheld:
        foreign = pa.array([v is not None and owners.company_of(kind, v) != company_id
                            for v in rows.column(column).to_pylist()], pa.bool_())
        if not pc.any(foreign).as_py():
            continue
        log.info("%s: %d row(s) name another company's %s: %s withheld", table.name, pc.sum(foreign).as_py(),
                 kind, ", ".join((column, *also)))
        for name in (column, *also):
            i = rows.column_names.index(name)
            values = rows.column(name)
            rows = rows.set_column(i, rows.schema.field(i), pc.if_else(foreign, pa.scalar(None, values.type), values))
    return rows


def with_own_fleet_losses(spark: SparkSession, station_daily: DataFrame, month: dt.date, owners: Owners,
                          settings: Settings) -> DataFrame:
    """``gold_charging_station_daily`` rows of ``month`` with the charging-loss columns traced over the
    station owner's trucks only: the sessions at a station by trucks of the same company (silver), against
    those trucks' energy into the battery (``gold_truck_energy_daily``). Gold traces every company's trucks;
    another company's battery figures are that company's data."""
    from pyspark.sql import functions as F

    from jobs.kpi.charging_utilisation import station_charging_losses
    from jobs.platform import delta_tables
    from schemas.tables import SILVER

    loss_columns = OWN_FLEET_COLUMNS["gold_charging_station_daily"]
    in_month = F.col("event_date_local").between(F.lit(month), F.lit(month_end(month)))
    sessions = delta_tables.read_existing(spark, SILVER["charging_sessions"], settings).filter(in_month)
    same_company = (_lookup(owners.entities.get("truck", {}), F.col("vin"))
                    == _lookup(owners.entities.get("charging_station", {}), F.col("station_id")))
    truck_daily = _gold(spark, "gold_truck_energy_daily", settings).filter(
        F.col("date_local").between(F.lit(month), F.lit(month_end(month))))
    losses = station_charging_losses(sessions.filter(same_company), truck_daily=truck_daily)
    keys = ["date_local", "station_id"]
    own = losses.select(*keys, *[F.col(c).cast("double").alias(c) for c in loss_columns])
    return station_daily.drop(*loss_columns).join(own, on=keys, how="left").select(*station_daily.columns)


def company_rows(rows: pa.Table, table: ExtractTable, company_id: str, owners: Owners) -> pa.Table:
    import pyarrow.compute as pc

    own = rows.filter(pc.equal(rows.column(OWNER), company_id)).drop_columns([OWNER])
    own = withhold_foreign(own, table, company_id, owners)
    keys = [c for c in SORT_COLUMNS if c in own.column_names]
    own = own.sort_by([(c, "ascending") for c in keys]) if keys else own
    check_isolation(own, table, company_id, owners)
    return own


# --- writing one pack -------------------------------------------------------------------------------------

@dataclass
class PackResult:
    company_key: str
    company_id: str
    path: Path
    table_rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


# A text cell starting with one of these is read as a formula by spreadsheet programs (a company name
# '=HYPERLINK(...)' would run when the CSV is opened): such text is written with a leading apostrophe,
# which spreadsheets show as text and hide. Numbers are never text here, so -5.0 stays a number.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_text(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return neutralise_text(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def write_csv(rows: pa.Table, path: Path) -> None:
    # csv quotes a field holding a character of its line terminator ("\n") but not a bare CR, which
    # readers take as the end of the row: a row with a CR is formatted by a writer ending rows in CRLF
    # (so the field is quoted) and ends in "\n" like the others.
    crlf_buffer = bytes_io.StringIO()
    crlf = csv.writer(crlf_buffer, lineterminator="\r\n")
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(rows.column_names)
        for batch in rows.to_batches(max_chunksize=10_000):
            for record in batch.to_pylist():
                values = [_csv_value(v) for v in record.values()]
                if not any("\r" in v for v in values):
                    w.writerow(values)
                    continue
                crlf_buffer.seek(0)
                crlf_buffer.truncate()
                crlf.writerow(values)
                f.write(crlf_buffer.getvalue()[:-2] + "\n")


def write_parquet(rows: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(rows.replace_schema_metadata(None), path)


def _excel_value(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dt.datetime) and v.tzinfo is not None:     # Excel has no time zones: UTC, naive
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def _versions(tables: dict[str, pa.Table]) -> dict[str, list[str]]:
    """Every ``*_version`` value in the pack's rows; several versions in one value are joined with '+'."""
    found: dict[str, set[str]] = {}
    for rows in tables.values():
        for column in rows.column_names:
            if column.endswith("_version"):
                for value in rows.column(column).unique().to_pylist():
                    if value:
                        found.setdefault(column, set()).update(p for p in str(value).split("+") if p)
    return {c: sorted(v) for c, v in sorted(found.items())}


def _cover_rows(*, company_id: str, company_name: str | None, key: str, month: dt.date, generated_at: str,
                versions: dict[str, list[str]], tables: dict[str, pa.Table]) -> list[tuple[list, bool]]:
    """(cells, bold) rows of the cover sheet."""
    from schemas.kpi_metadata import column_unit, definitions_version, kpi_definitions, units_version

    rows: list[tuple[list, bool]] = [
        (["KPI extract pack"], True),
        (["Company", company_name or company_id], False),
        (["Company id", company_id], False),
        (["Company key", key], False),
        (["Period", month.strftime("%Y-%m"), f"{month.isoformat()} to {month_end(month).isoformat()}"], False),
        (["Generated at (UTC)", generated_at], False),
        (["Generator", GENERATOR_VERSION], False),
        (["Units mapping", units_version(), "schemas/column_units.csv; units are in brackets in the headers"],
         False),
        (["KPI definitions", definitions_version(), "schemas/kpi_definitions.csv, from docs/kpis.md"], False),
        ([], False),
        (["Versions found in the data"], True),
        (["column", "versions"], True),
    ]
    rows += [([column, ", ".join(values)], False) for column, values in versions.items()]
    rows += [([], False), (["Tables"], True), (["table", "sheet", "content", "rows", "isolation rule"], True)]
    rows += [([t.name, FAMILIES[t.family], t.title, tables[t.name].num_rows, t.isolation], False) for t in TABLES]
    rows += [([], False), (["Not included"], True)]
    rows += [([name, reason], False) for name, reason in EXCLUDED_TABLES.items()]
    rows += [(["banner and city roll-up rows", "they sum over several companies"], False)]
    present = {c for rows_ in tables.values() for c in rows_.column_names}
    rows += [([], False), (["KPI definitions"], True),
             (["kpi", "unit", "sheet", "definition", "formula", "reference"], True)]
    rows += [([d.kpi, column_unit(d.kpi) or "", FAMILIES[d.family], d.definition, d.formula, d.reference], False)
             for d in kpi_definitions() if d.kpi in present]
    return rows


def write_workbook(path: Path, *, company_id: str, company_name: str | None, key: str, month: dt.date,
                   generated_at: dt.datetime, tables: dict[str, pa.Table]) -> dict[str, dict[str, int]]:
    """The Excel workbook; returns {sheet: {table: data rows}} for the manifest."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    from schemas.kpi_metadata import header_with_unit

    bold = Font(bold=True)
    wb = Workbook(write_only=True)
    wb.properties.creator = "coalchain"
    wb.properties.created = generated_at.replace(tzinfo=None)

    def cell(ws, v, is_bold: bool):
        if not isinstance(v, str) and not is_bold:
            return _excel_value(v)
        c = WriteOnlyCell(ws, value=_excel_value(v))
        if isinstance(v, str):
            c.data_type = "s"          # text stays text: openpyxl would store '=...' as a formula
        if is_bold:
            c.font = bold
        return c

    def append(ws, cells: list, is_bold: bool = False) -> None:
        ws.append([cell(ws, v, is_bold) for v in cells])

    cover = wb.create_sheet("Cover")
    for col, width in zip("ABCDEF", (34, 28, 44, 60, 60, 18)):
        cover.column_dimensions[col].width = width
    generated_text = generated_at.isoformat()
    for cells, is_bold in _cover_rows(company_id=company_id, company_name=company_name, key=key, month=month,
                                      generated_at=generated_text, versions=_versions(tables), tables=tables):
        append(cover, cells, is_bold)

    counts: dict[str, dict[str, int]] = {}
    for family, sheet_name in FAMILIES.items():
        ws = wb.create_sheet(sheet_name)
        members = [t for t in TABLES if t.family == family]
        widths: dict[int, int] = {}
        for t in members:
            for i, c in enumerate(tables[t.name].column_names, 1):
                widths[i] = max(widths.get(i, 10), min(len(header_with_unit(c)) + 2, 40))
        for i, w in widths.items():
            ws.column_dimensions[get_column_letter(i)].width = w
        append(ws, [sheet_name, f"{month.strftime('%Y-%m')}; units in brackets; definitions on the Cover sheet"],
               True)
        append(ws, [])
        counts[sheet_name] = {}
        for t in members:
            rows = tables[t.name]
            append(ws, [t.name, t.title, f"{rows.num_rows} rows"], True)
            append(ws, [header_with_unit(c) for c in rows.column_names], True)
            for batch in rows.to_batches(max_chunksize=10_000):
                for record in batch.to_pylist():
                    append(ws, list(record.values()))
            append(ws, [])
            counts[sheet_name][t.name] = rows.num_rows

    raw = bytes_io.BytesIO()
    wb.save(raw)
    path.write_bytes(_normalised_zip(raw.getvalue(), generated_at))
    return counts


def _normalised_zip(xlsx: bytes, generated_at: dt.datetime) -> bytes:
    """The workbook with fixed zip entry times and ``modified`` = generated-at (openpyxl writes "now"),
    so two runs differ only by the generated-at timestamp."""
    stamp = generated_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = bytes_io.BytesIO()
    with zipfile.ZipFile(bytes_io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + stamp + rb"\g<2>",
                              data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, data)
    return out.getvalue()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _clean_stale(parent: Path, key: str) -> None:
    """Remove temporary folders a crashed run of this company's pack left behind."""
    for stale in parent.glob(f".{key}.*"):
        if stale.is_dir() and (stale.name.startswith(f".{key}.tmp-") or stale.name.startswith(f".{key}.old-")):
            shutil.rmtree(stale, ignore_errors=True)


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``. A directory cannot be renamed over a non-empty one, so the old pack is
    renamed aside first: readers see the old pack, then (for an instant) none, then the new one —
    never a mix."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)


def write_pack(root: Path, *, key: str, company_id: str, company_name: str | None, month: dt.date,
               tables: dict[str, pa.Table], generated_at: dt.datetime, progress: str = "") -> PackResult:
    """Write one company's pack for ``month`` under ``root/<yyyy-mm>/<key>/`` (``key``: the company's
    hashed key; ``tables``: the company's rows of every table in ``TABLES``, already isolated)."""
    from schemas.kpi_metadata import definitions_version, units_version

    period = month.strftime("%Y-%m")
    parent = root / period
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(parent, key)
    final = parent / key
    tmp = parent / f".{key}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    prefix = f"{progress}company {key}"
    try:
        (tmp / "csv").mkdir()
        (tmp / "parquet").mkdir()
        files: list[dict] = []
        for i, t in enumerate(TABLES, 1):
            rows = tables[t.name]
            for fmt, writer in (("csv", write_csv), ("parquet", write_parquet)):
                rel = f"{fmt}/{t.name}.{fmt}"
                writer(rows, tmp / rel)
                files.append({"path": rel, "format": fmt, "table": t.name, "rows": rows.num_rows})
            log.info("%s: %d/%d tables (%s: %d rows)", prefix, i, len(TABLES), t.name, rows.num_rows)
        workbook = f"kpi_extract_{period}.xlsx"
        sheets = write_workbook(tmp / workbook, company_id=company_id, company_name=company_name, key=key,
                                month=month, generated_at=generated_at, tables=tables)
        files.append({"path": workbook, "format": "xlsx", "sheets": sheets})
        log.info("%s: workbook %s (%d sheets)", prefix, workbook, len(sheets) + 1)
        for f in files:
            path = tmp / f["path"]
            f["bytes"] = path.stat().st_size
            f["sha256"] = _sha256(path)
        manifest = {
            "pack_format": PACK_FORMAT,
            "generator": {"name": "jobs.delivery.extracts", "version": GENERATOR_VERSION,
                          "units_version": units_version(), "definitions_version": definitions_version()},
            "company": {"key": key, "id": company_id, "name": company_name},
            "period": {"month": period, "start": month.isoformat(), "end": month_end(month).isoformat()},
            "generated_at": generated_at.isoformat(),
            "versions": _versions(tables),
            "tables": [{"table": t.name, "family": t.family, "sheet": FAMILIES[t.family], "content": t.title,
                        "rows": tables[t.name].num_rows, "isolation": t.isolation} for t in TABLES],
            "excluded_tables": EXCLUDED_TABLES,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                                    encoding="utf-8")
        listed = sorted([f["path"] for f in files] + [MANIFEST])
        (tmp / CHECKSUMS).write_text("".join(f"{_sha256(tmp / p)}  {p}\n" for p in listed), encoding="utf-8")
        _swap_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
    result = PackResult(key, company_id, final, {t: r.num_rows for t, r in tables.items()}, len(listed) + 1, total)
    log.info("%s: done, %d files, %.1f kB -> %s", prefix, result.files, total / 1024, final)
    return result


# --- the job ----------------------------------------------------------------------------------------------

def build_extracts(spark: SparkSession, month: dt.date | None = None, *, companies: Sequence[str] | None = None,
                   settings: Settings | None = None, generated_at: dt.datetime | None = None) -> list[PackResult]:
    """Write the packs of ``month`` (default: the latest month in gold) for ``companies`` (default: all)."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    owners = read_owners(spark, settings)
    if companies:
        unknown = sorted(set(companies) - set(owners.company_names))
        if unknown:
            raise ExtractError(f"unknown company id(s) {', '.join(unknown)}: not in silver_companies "
                               f"({len(owners.company_names)} companies known)")
        company_ids = sorted(set(companies))
    else:
        company_ids = sorted(owners.company_names)
    if not company_ids:
        raise ExtractError("silver_companies is empty: no company to write a pack for")
    if month is None:
        month = latest_month(spark, settings)
        if month is None:
            raise ExtractError("no gold data at all: build gold first (python -m jobs.kpi.build)")
    month = month.replace(day=1)
    present, months = month_in_gold(spark, month, settings)
    if not present:
        have = ", ".join(m.strftime("%Y-%m") for m in months) or "none"
        raise ExtractError(f"no gold data for {month.strftime('%Y-%m')} (months in gold: {have})")
    generated_at = (generated_at or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    log.info("extracts %s: %d company(ies), %d tables -> %s", month.strftime("%Y-%m"), len(company_ids),
             len(TABLES), settings.extracts_root / month.strftime("%Y-%m"))
    collected = collect_month(spark, month, company_ids, owners, settings)
    results = []
    for n, cid in enumerate(company_ids, 1):
        key = company_key(cid, settings)
        tables = {t.name: company_rows(collected[t.name], t, cid, owners) for t in TABLES}
        if not any(r.num_rows for r in tables.values()):
            log.warning("[%d/%d] company %s has no rows in %s: its pack holds empty tables", n, len(company_ids),
                        key, month.strftime("%Y-%m"))
        results.append(write_pack(settings.extracts_root, key=key, company_id=cid,
                                  company_name=owners.company_names[cid], month=month, tables=tables,
                                  generated_at=generated_at, progress=f"[{n}/{len(company_ids)}] "))
    log.info("extracts %s: %d pack(s) in %.1f s", month.strftime("%Y-%m"), len(results), time.perf_counter() - t0)
    return results


def _month_arg(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid month {text!r}: expected yyyy-mm, e.g. 2026-11") from None


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.delivery.extracts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", type=_month_arg, help="month to extract, yyyy-mm")
    when.add_argument("--latest", action="store_true", help="the latest month present in gold")
    parser.add_argument("--company", action="append", metavar="ID", help="company id (repeatable; default: all)")
    args = parser.parse_args(argv)
    from jobs.platform.session import get_spark

    settings = settings or get_settings()
    try:
        results = build_extracts(get_spark("extracts"), None if args.latest else args.month,
                                 companies=args.company, settings=settings)
    except ExtractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for r in results:
        print(f"{r.company_key}  {sum(r.table_rows.values()):>8,} rows  {r.files:>3} files  {r.path}")
    return EXIT_OK


if __name__ == "__main__":
    # progress lines on stderr; configured here, not in main(), so callers (tests, Airflow) keep theirs
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
