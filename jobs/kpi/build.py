"""Gold build: silver → KPI tables for the affected days and their months (the kpi_daily DAG's work).

    python -m jobs.kpi.build --from 2026-11-02 --to 2026-11-04     # rebuild these days and their months
    python -m jobs.kpi.build --affected                             # days touched by ingestion since the last build

The tables are those the gold catalogue (``schemas/gold.py``) declares for this build, each with its
declared schema: a table it does not declare, or rows of another schema, stop the build
(:class:`UndeclaredTable`). One function per KPI family (``build_<family>``) writes the family's tables;
:data:`FAMILIES` lists them with the families each reads, and families run side by side in threads.

Daily tables are replaced for exactly the days rebuilt (``replaceWhere`` on their day column), monthly
tables for the months containing them (``month_start``). Reference data (factors, standards, targets,
rule parameters) is loaded from ``schemas/reference/`` into ``ref_<name>`` Delta tables at each build;
every KPI row carries the versions it used.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.platform import delta_log, delta_tables
from jobs.kpi import (chain_energy, charging_flexibility, charging_utilisation, h2_utilisation, mine_energy,
                      rail_share, targets, truck_energy, washing)
from jobs.platform.session import scheduler_pool
from jobs.platform.settings import Settings, get_settings
from schemas import gold
from schemas.reference_tables import REFERENCE, read_reference, rule_params
from schemas.tables import INGEST_AUDIT, SILVER, TableSpec

log = logging.getLogger(__name__)
DAY_COL, MONTH_COL = "date_local", "month_start"
DIMENSIONS = ("mines", "washing_plants", "trucks", "charging_connectors", "charging_stations", "h2_stations")


class UndeclaredTable(RuntimeError):
    """The build was about to write a gold table the catalogue (schemas/gold.py) does not declare for it, or
    rows whose schema is not the declared one."""


@dataclass
class BuildResult:
    days: list[dt.date]
    months: list[dt.date]
    tables: dict[str, int] = field(default_factory=dict)     # table -> rows written
    seconds: float = 0.0
    # wall-clock seconds per step: each table's compute + write (its inputs computed on first use), and
    # the reference tables
    step_s: dict[str, float] = field(default_factory=dict)
    reference_written: list[str] = field(default_factory=list)  # ref_ tables copied again (file changed)
    # battery-vs-grid check of the rebuilt months: battery-electric truck-months per check_status (the
    # per-fleet counts are columns of gold_truck_energy_monthly)
    battery_grid_check: dict[str, int] = field(default_factory=dict)


class Inputs:
    """Silver tables and reference data, read once per build."""

    def __init__(self, spark: SparkSession, settings: Settings):
        self.spark, self.settings = spark, settings
        self.ref = {name: read_reference(spark, name).cache() for name in REFERENCE}
        # the dimension tables, opened once: every family of the build sees the same version of them
        self.dims = {source: self.silver(source) for source in DIMENSIONS}

    def release(self) -> None:
        """Drop the cached reference data. Spark finds a cache by the plan (the file's path), not by the
        file's content, and one cache serves every session of the application: left cached, the next
        build on a long-lived session or Spark Connect server would read the files as they were at the
        first build, and copy that stale content into the ``ref_`` tables under the new file's checksum."""
        for df in self.ref.values():
            df.unpersist()

    def silver(self, source: str) -> DataFrame:
        return delta_tables.read_table(self.spark, SILVER[source], self.settings)

    def events(self, source: str, start: dt.date, end: dt.date) -> DataFrame:
        return self.silver(source).filter(F.col("event_date_local").between(F.lit(start), F.lit(end)))

    def rules(self, rule: str, on: dt.date) -> dict:
        return rule_params(self.ref["rule_parameters"], rule, on_date=on)

    def gold(self, name: str, start: dt.date, end: dt.date) -> DataFrame:
        """Rows of a daily gold table written by this or an earlier build (``date_local`` in start..end)."""
        table = delta_tables.read_existing(self.spark, gold.table(name).spec, self.settings)
        return table.filter(F.col(DAY_COL).between(F.lit(start), F.lit(end)))


def _telematics_window(inp: Inputs, start: dt.date, end: dt.date) -> DataFrame:
    """Frames of local days start..end plus each truck's first frame after them (if any), which closes
    the last interval of the window exactly as a build over all history would."""
    frames = inp.events("telematics", start, end)
    later = inp.silver("telematics").filter(F.col("event_date_local") > F.lit(end))
    first_later = later.groupBy("vin").agg(F.min_by(F.struct(*later.columns), "event_ts_utc").alias("f")).select("f.*")
    return frames.unionByName(first_later)


def _months(start: dt.date, end: dt.date) -> list[dt.date]:
    months, m = [], start.replace(day=1)
    while m <= end:
        months.append(m)
        m = (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


def _month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def reference_digest(name: str) -> str:
    """Checksum of a reference file and its declared schema: what its ``ref_<name>`` table was copied from."""
    spec = REFERENCE[name]
    digest = hashlib.sha256(spec.file.read_bytes() + spec.schema.json().encode()).hexdigest()
    return f"reference_sha256={digest}"


def write_reference_tables(spark: SparkSession, inputs: Inputs, settings: Settings) -> list[str]:
    """Copy each reference file into its ``ref_<name>`` gold table, unless the table's last commit already
    is a copy of this exact file (its checksum is the commit's user metadata): most builds change no
    reference, and six overwrites cost seconds on the build's critical path. Returns the names written."""
    written = []
    for name, df in inputs.ref.items():
        spec = TableSpec(name=f"ref_{name}", layer="gold", schema=df.schema)
        path, digest = str(delta_log.table_path(spec, settings)), reference_digest(name)
        if delta_log.last_commit_metadata(spec, settings) == digest:
            continue
        delta_log.with_retry(lambda: df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
                      .option("userMetadata", digest).save(path))
        written.append(name)
    return written


def declared_for_build(name: str, job: str = gold.KPI_BUILD) -> gold.GoldTable:
    """The catalogue's declaration of a table ``job`` (by default this build) writes; :class:`UndeclaredTable`
    otherwise."""
    try:
        table = gold.table(name)
    except KeyError as exc:
        raise UndeclaredTable(str(exc.args[0])) from None
    if table.written_by != job:
        who = "the gold build" if job == gold.KPI_BUILD else job
        raise UndeclaredTable(f"{name} is declared as written by {table.written_by}, not by {who}")
    return table


def write_declared(spark: SparkSession, name: str, df: DataFrame, periods: list[dt.date], settings: Settings, *,
                   job: str = gold.KPI_BUILD) -> int:
    """Replace ``periods`` (values of the table's partition column) of gold table ``name`` with ``df``, whose
    schema must be the one the catalogue declares for a table ``job`` writes (:class:`UndeclaredTable`
    otherwise, before anything is written). Returns the rows written."""
    table = declared_for_build(name, job)
    wrong = table.schema_differences(df.schema)
    if wrong:
        raise UndeclaredTable(f"{name}: the transform's output differs from its declaration in "
                              f"schemas/gold.py: {'; '.join(wrong)}")
    # a gold table is a few thousand rows per rebuilt period: collected as Arrow and written with
    # delta-rs, which spares each table a Spark write stage and a Spark Delta commit
    rows = df.toArrow()
    delta_log.replace_rows(spark, table.spec, rows,
                           delta_log.in_list_condition(table.period_col, [v.isoformat() for v in periods]),
                           settings, exact_columns=True)
    return rows.num_rows


@dataclass
class GoldBuild:
    """One build: its window (the local days rebuilt and their months), inputs, result, and the tables that
    a family hands to the families that read them (``outputs``, filled as families finish)."""

    spark: SparkSession
    settings: Settings
    inputs: Inputs
    days: list[dt.date]
    months: list[dt.date]
    result: BuildResult
    refresh_day_before: bool = True
    outputs: dict[str, DataFrame] = field(default_factory=dict)

    @property
    def start(self) -> dt.date:
        return self.days[0]

    @property
    def end(self) -> dt.date:
        return self.days[-1]

    @property
    def month_first(self) -> dt.date:
        return self.months[0]

    @property
    def month_last(self) -> dt.date:
        return _month_end(self.months[-1])

    def write(self, name: str, df: DataFrame, periods: list[dt.date] | None = None) -> DataFrame:
        """Replace the rebuilt periods of gold table ``name`` with ``df`` (its schema must be the declared one);
        returns the table's rows of those periods. ``periods``: the days or months replaced, by default the
        build's days (daily tables) or months (monthly tables)."""
        started = time.perf_counter()
        table = declared_for_build(name)
        periods = periods or (self.months if table.monthly else self.days)
        self.result.tables[name] = write_declared(self.spark, name, df, periods, self.settings)
        self.result.step_s[name] = round(time.perf_counter() - started, 2)
        return delta_tables.read_table(self.spark, table.spec, self.settings).filter(
            F.col(table.period_col).isin(periods))


# --- one function per KPI family ----------------------------------------------------------------------------
# Each writes its family's tables and returns the frames other families read (by table name).

def build_mine_energy(b: GoldBuild) -> dict[str, DataFrame]:
    """Mine energy per tonne, graded against the standard in force on each graded date."""
    inp, ref = b.inputs, b.inputs.ref
    per_shift_day = partial(mine_energy.mine_energy_daily, mines=inp.dims["mines"],
                            factors=ref["conversion_factors"], limits=ref["mine_energy_limits"])
    b.write("gold_mine_energy_daily", per_shift_day(inp.events("mine_production", b.start, b.end)))
    mine_monthly = b.write("gold_mine_energy_monthly", mine_energy.mine_energy_monthly(
        per_shift_day(inp.events("mine_production", b.month_first, b.month_last)), limits=ref["mine_energy_limits"]))
    b.write("gold_mine_energy_rollup_monthly", mine_energy.mine_energy_rollup(mine_monthly, period_col=MONTH_COL))
    return {"gold_mine_energy_monthly": mine_monthly}


def build_washing(b: GoldBuild) -> dict[str, DataFrame]:
    """Washing per plant, its roll-up, and the raw-coal washing rate."""
    inp, first, last = b.inputs, b.month_first, b.month_last
    plants, limits = inp.dims["washing_plants"], inp.ref["washing_limits"]
    per_plant_day = partial(washing.washing_daily, plants=plants,
                            process_factors=inp.ref["washing_process_factors"], limits=limits)
    b.write("gold_washing_daily", per_plant_day(inp.events("washing", b.start, b.end)))
    washing_monthly = b.write("gold_washing_monthly", washing.washing_monthly(
        per_plant_day(inp.events("washing", first, last)), limits=limits))
    b.write("gold_washing_rollup_monthly", washing.washing_rollup(washing_monthly, period_col=MONTH_COL))
    washing_rate = b.write("gold_raw_coal_washing_rate_monthly", washing.raw_coal_washing_rate(
        inp.events("washing", first, last), plants=plants,
        production=inp.events("mine_production", first, last), mines=inp.dims["mines"], period="month"))
    return {"gold_washing_monthly": washing_monthly, "gold_raw_coal_washing_rate_monthly": washing_rate}


def build_truck_energy(b: GoldBuild) -> dict[str, DataFrame]:
    """Truck energy per truck-day and trips per ticket, for the rebuilt days and the day before them (its
    last interval and a trip loaded before midnight end in the first rebuilt day). Telematics is read from
    two days before (loaded state of early frames) plus each truck's first frame after the window (the next
    frame of its last interval), so a day costs the same whatever the history. The month figures are summed
    from the stored daily and trip rows."""
    inp, start, end = b.inputs, b.start, b.end
    trucks = inp.dims["trucks"]
    te = inp.rules("truck_energy", end)
    truck_days = ([start - dt.timedelta(days=1)] if b.refresh_day_before else []) + b.days
    read_from, read_to = start - dt.timedelta(days=2), end + dt.timedelta(days=1)
    tickets_window = inp.events("weighbridge", read_from, read_to)
    # summed per truck-day and ticket inside the tasks: one row per truck-day and ticket is kept for both
    # tables, not one per frame
    sums = truck_energy.truck_interval_sums(
        _telematics_window(inp, read_from, read_to), trucks=trucks, tickets=tickets_window, **te,
    ).filter(F.col(DAY_COL).between(F.lit(truck_days[0]), F.lit(end))).persist()
    try:
        b.write("gold_truck_energy_daily", truck_energy.truck_energy_daily(
            sums, tickets=inp.events("weighbridge", truck_days[0], end),
            charging_sessions=inp.events("charging_sessions", truck_days[0], end)), truck_days)
        b.write("gold_truck_trips", truck_energy.truck_trips(
            sums, tickets=inp.events("weighbridge", truck_days[0], end)), truck_days)
    finally:
        sums.unpersist()
    truck_daily_month = inp.gold("gold_truck_energy_daily", b.month_first, b.month_last)
    # the battery-vs-grid cross-check runs with every build, per truck-month; its status counts are
    # stored per fleet-month and in the build result
    check = truck_energy.check_battery_vs_grid(
        truck_daily_month, trucks=trucks, per_month=True, **inp.rules("battery_grid_check", end)).persist()
    try:
        counts = check.groupBy("check_status").agg(F.count(F.lit(1)).alias("truck_months")).collect()
        b.result.battery_grid_check = {r["check_status"]: r["truck_months"] for r in counts}
        b.write("gold_truck_energy_monthly", truck_energy.with_battery_grid_check(
            truck_energy.truck_energy_monthly(truck_daily_month, grain="fleet"), check=check))
    finally:
        check.unpersist()
    if b.result.battery_grid_check.get("outside_losses"):
        log.warning("battery-vs-grid check: %s truck-month(s) outside the charging-loss band",
                    b.result.battery_grid_check["outside_losses"])
    return {"gold_truck_energy_daily": truck_daily_month,
            "gold_truck_trips": inp.gold("gold_truck_trips", b.month_first, b.month_last)}


def build_chain_energy(b: GoldBuild) -> dict[str, DataFrame]:
    """Chain energy per delivered tonne, per shipment, from the mine, washing and truck families' tables."""
    ref, out = b.inputs.ref, b.outputs
    haulage = chain_energy.haulage_energy_by_mine(out["gold_truck_energy_daily"], trips=out["gold_truck_trips"],
                                                  factors=ref["conversion_factors"])
    per_shipment = chain_energy.chain_energy_per_shipment(
        b.inputs.events("shipments", b.month_first, b.month_last),
        mine_energy_monthly=out["gold_mine_energy_monthly"], washing_monthly=out["gold_washing_monthly"],
        haulage_by_mine=haulage, factors=ref["conversion_factors"])
    chain = b.write("gold_chain_energy_shipment", per_shipment)
    b.write("gold_chain_energy_rollup_monthly", chain_energy.chain_energy_rollup(
        chain, mines=b.inputs.dims["mines"], period="month"))
    return {}


def _write_station_months(b: GoldBuild, daily: str, monthly: str, rollup: str, *,
                          per_station: Callable[[DataFrame], DataFrame], roll_up: Callable[..., DataFrame]) -> None:
    """A station family's month tables: per station from the month's stored daily rows (this build's days and
    earlier builds'), then rolled up per company, banner and city."""
    rows = b.write(monthly, per_station(b.inputs.gold(daily, b.month_first, b.month_last)))
    b.write(rollup, roll_up(rows, period_col=MONTH_COL))


def build_charging_utilisation(b: GoldBuild) -> dict[str, DataFrame]:
    """Charging utilisation per connector-hour, connector-day, station-hour, station-day and station-month,
    with company / banner / city roll-ups, and load flexibility per station-hour; charging losses need the
    truck family's truck-days."""
    inp, start, end = b.inputs, b.start, b.end
    stations = inp.dims["charging_stations"]
    cu = inp.rules("charging_utilisation", end)
    status = inp.events("connector_status", start - dt.timedelta(days=int(cu["status_lookback_days"])),
                        end + dt.timedelta(days=1))
    sessions = inp.events("charging_sessions", start - dt.timedelta(days=1), end)
    c_hourly = charging_utilisation.charging_connector_hourly(
        status, sessions=sessions, connectors=inp.dims["charging_connectors"], start_date=start,
        end_date=end).persist()
    try:
        concurrency = charging_utilisation.peak_concurrency_hourly(status, start_date=start, end_date=end)
        b.write("gold_charging_connector_hourly", c_hourly)
        c_daily = charging_utilisation.charging_connector_daily(c_hourly, sessions=sessions, start_date=start,
                                                                end_date=end)
        b.write("gold_charging_connector_daily", c_daily)
        b.write("gold_charging_station_hourly", charging_utilisation.charging_station_hourly(
            c_hourly, concurrency=concurrency, stations=stations))
        b.write("gold_charging_flexibility_hourly", charging_flexibility.charging_flexibility_hourly(
            sessions, connectors=inp.dims["charging_connectors"], stations=stations, start_date=start, end_date=end))
        # charging losses need the truck-days (energy into the battery) of the rebuilt days
        losses = charging_utilisation.station_charging_losses(
            sessions.filter(F.col("event_date_local").between(F.lit(start), F.lit(end))),
            truck_daily=b.outputs["gold_truck_energy_daily"].filter(F.col(DAY_COL).between(F.lit(start), F.lit(end))))
        s_daily = b.write("gold_charging_station_daily", charging_utilisation.charging_station_daily(
            c_daily, concurrency=concurrency, stations=stations, losses=losses))
        b.write("gold_charging_rollup_daily", charging_utilisation.charging_rollup(s_daily, period_col=DAY_COL))
    finally:
        c_hourly.unpersist()
    _write_station_months(b, "gold_charging_station_daily", "gold_charging_station_monthly",
                          "gold_charging_rollup_monthly", per_station=charging_utilisation.charging_station_monthly,
                          roll_up=charging_utilisation.charging_rollup)
    return {}


def build_h2_utilisation(b: GoldBuild) -> dict[str, DataFrame]:
    """Hydrogen-station utilisation per station-day and station-month, with roll-ups."""
    inp = b.inputs
    h2_daily = b.write("gold_h2_station_daily", h2_utilisation.h2_station_daily(
        inp.events("h2_fills", b.start, b.end), stations=inp.dims["h2_stations"], start_date=b.start,
        end_date=b.end))
    b.write("gold_h2_rollup_daily", h2_utilisation.h2_rollup(h2_daily, period_col=DAY_COL))
    _write_station_months(b, "gold_h2_station_daily", "gold_h2_station_monthly", "gold_h2_rollup_monthly",
                          per_station=h2_utilisation.h2_station_monthly, roll_up=h2_utilisation.h2_rollup)
    return {}


def build_rail_share(b: GoldBuild) -> dict[str, DataFrame]:
    """Rail share beyond 500 km, per mine / company / banner / city and month."""
    inp = b.inputs
    rs = inp.rules("rail_share", b.end)
    classified = rail_share.classify_shipments(
        inp.events("shipments", b.month_first, b.month_last), long_haul_threshold_km=rs["long_haul_threshold_km"],
        long_haul_bound_inclusive=rs["long_haul_bound_inclusive"],
        multimodal_rail_min_km_share=rs["multimodal_rail_min_km_share"], rule_version=rs["rule_version"])
    rail_monthly = b.write("gold_rail_share_monthly", rail_share.rail_share(
        classified, mines=inp.dims["mines"], targets=inp.ref["plan_targets"], period="month"))
    return {"gold_rail_share_monthly": rail_monthly}


def build_targets(b: GoldBuild) -> dict[str, DataFrame]:
    """Plan target tracking per month, from the washing rate and rail share of the other families."""
    inp = b.inputs
    pt = inp.rules("plan_targets", b.end)
    tracking = None
    for month in b.months:
        values = targets.plan_target_values(
            mines=inp.dims["mines"], mine_production=inp.silver("mine_production"),
            washing_rate_monthly=b.outputs["gold_raw_coal_washing_rate_monthly"],
            rail_share_monthly=b.outputs["gold_rail_share_monthly"], charging_stations=inp.dims["charging_stations"],
            h2_stations=inp.dims["h2_stations"], month=month, mine_register=inp.ref["mine_register"],
            new_mine_from_year=pt["new_mine_from_year"], rule_version=pt["rule_version"])
        rows = targets.target_tracking(inp.ref["plan_targets"], values=values, month=month)
        tracking = rows if tracking is None else tracking.unionByName(rows)
    b.write("gold_target_tracking", tracking)
    return {}


@dataclass(frozen=True)
class Family:
    build: Callable[[GoldBuild], dict[str, DataFrame]]
    needs: tuple[str, ...] = ()         # families whose tables it reads: it starts when they have finished


# The builder of every KPI family of the catalogue (schemas/gold.py), in the order they start when ready:
# the truck family first, the largest. Most of a small table's time is driver-side planning and its Delta
# commit, which overlap well with another family's Spark tasks.
FAMILIES: dict[str, Family] = {
    "truck_energy": Family(build_truck_energy),
    "mine_energy": Family(build_mine_energy),
    "washing": Family(build_washing),
    "rail_share": Family(build_rail_share),
    "charging_utilisation": Family(build_charging_utilisation, needs=("truck_energy",)),
    "h2_utilisation": Family(build_h2_utilisation),
    "targets": Family(build_targets, needs=("washing", "rail_share")),
    "chain_energy": Family(build_chain_energy, needs=("mine_energy", "washing", "truck_energy")),
}


def _build_family(b: GoldBuild, family: str) -> dict[str, DataFrame]:
    scheduler_pool(b.spark, f"gold_{family}")   # each family's jobs share the cores fairly with the others'
    return FAMILIES[family].build(b)


def build_families(b: GoldBuild) -> None:
    """Build every KPI family the catalogue declares for the gold build, side by side in
    ``settings.gold_build_threads`` threads; a family starts once the families it reads have finished."""
    declared = gold.families(gold.KPI_BUILD)
    if set(declared) != set(FAMILIES):
        raise UndeclaredTable(f"the catalogue's KPI families {sorted(declared)} and the build's "
                              f"{sorted(FAMILIES)} differ")
    pending, running, done = sorted(declared, key=list(FAMILIES).index), {}, set()   # the catalogue's, in start order
    with ThreadPoolExecutor(max_workers=b.settings.gold_build_threads, thread_name_prefix="gold") as pool:
        while pending or running:
            for family in [f for f in pending if set(FAMILIES[f].needs) <= done]:
                pending.remove(family)
                running[pool.submit(_build_family, b, family)] = family
            if not running:
                raise RuntimeError(f"KPI families {pending} wait for each other")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                b.outputs.update(future.result())      # re-raises a family's error
                done.add(running.pop(future))
    missing = [t.name for t in gold.written_by(gold.KPI_BUILD) if t.name not in b.result.tables]
    if missing:
        raise UndeclaredTable(f"declared for the gold build but not written: {missing}")


def build(spark: SparkSession, start: dt.date, end: dt.date, settings: Settings | None = None, *,
          refresh_day_before: bool = True) -> BuildResult:
    """Rebuild the KPI tables for local days start..end and their months. ``refresh_day_before=False``
    leaves the truck rows of start − 1 alone (used when the quality gate blocked that day)."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    months = _months(start, end)
    result = BuildResult(days, months)
    inputs = Inputs(spark, settings)
    try:
        result.reference_written = write_reference_tables(spark, inputs, settings)
        result.step_s["reference_tables"] = round(time.perf_counter() - t0, 2)
        build_families(GoldBuild(spark, settings, inputs, days, months, result, refresh_day_before))
    finally:
        inputs.release()
    result.seconds = time.perf_counter() - t0
    log.info("gold build %s..%s: %s tables in %.1f s; battery-vs-grid check %s", start, end, len(result.tables),
             result.seconds, result.battery_grid_check)
    return result


KPI_BUILDS = TableSpec("kpi_builds", "ops", T.StructType([
    T.StructField("started_at", T.TimestampType(), False), T.StructField("finished_at", T.TimestampType(), False),
    T.StructField("start_date", T.DateType(), False), T.StructField("end_date", T.DateType(), False),
    T.StructField("tables", T.IntegerType(), False), T.StructField("seconds", T.DoubleType(), False),
]))


KPI_BLOCKED_DAYS = TableSpec("kpi_blocked_days", "ops", T.StructType([
    T.StructField("day", T.DateType(), False), T.StructField("blocked_at", T.TimestampType(), False),
    T.StructField("reason", T.StringType(), True),
]))


def record_blocked(spark: SparkSession, blocked: dict[dt.date, str], settings: Settings | None = None) -> None:
    """Days the quality gate kept out of gold; they stay affected until a later build covers them."""
    if not blocked:
        return
    now = dt.datetime.now(dt.timezone.utc)
    rows = [(day, now, reason[:4000]) for day, reason in sorted(blocked.items())]
    delta_log.append_rows(spark, KPI_BLOCKED_DAYS, rows, settings)  # delta-rs: safe beside any writer on S3 too


def pending_blocked_days(settings: Settings | None = None) -> set[dt.date]:
    """Blocked days that no build started after the block has covered yet (delta-rs: no Spark job)."""
    blocked = delta_log.read_rows(KPI_BLOCKED_DAYS, ["day", "blocked_at"], settings)
    if not blocked:
        return set()
    builds = delta_log.read_rows(KPI_BUILDS, ["started_at", "start_date", "end_date"], settings)
    return {b["day"] for b in blocked
            if not any(r["started_at"] > b["blocked_at"] and r["start_date"] <= b["day"] <= r["end_date"] for r in builds)}


def contiguous_runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """[2, 3, 5] → [(2, 3), (5, 5)]: the ranges a build of exactly these days is made of."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def record_build(spark: SparkSession, result: BuildResult, started_at: dt.datetime, settings: Settings | None = None) -> None:
    row = (started_at, dt.datetime.now(dt.timezone.utc), result.days[0], result.days[-1], len(result.tables),
           float(result.seconds))
    delta_log.append_rows(spark, KPI_BUILDS, [row], settings)


def build_passed_days(spark: SparkSession, passed: list[dt.date], blocked: dict[dt.date, str], read_at: dt.datetime,
                      settings: Settings | None = None) -> dict[str, float]:
    """kpi_daily's build: the days that passed the gate, each run of consecutive days at once, then the
    blocked days recorded. Each build is recorded as started at ``read_at``, when the run read its affected
    days from the ingest audit (before the gate): an ingest that finishes while the gate runs is then
    affected for the next run, not lost between the two. Returns the seconds per built range."""
    built = {}
    for start, end in contiguous_runs(passed):
        result = build(spark, start, end, settings, refresh_day_before=(start - dt.timedelta(days=1)) not in blocked)
        record_build(spark, result, read_at, settings)
        built[f"{start}..{end}"] = result.seconds
    record_blocked(spark, blocked, settings)
    return built


def last_build_started_at(settings: Settings | None = None) -> dt.datetime | None:
    """When the newest gold build started (UTC; None before the first)."""
    return max(delta_log.read_column(KPI_BUILDS, "started_at", settings=settings), default=None)


def touched_by_source(settings: Settings | None = None, since: dt.datetime | None = None) -> dict[str, set[dt.date]]:
    """Per source, the event days its ingest runs touched (from the ingest audit) in runs that finished after
    ``since`` (default: the start of the last gold build, so a run that overlapped it is taken again); a source
    ingested without event days (a dimension) maps to an empty set. Read with delta-rs: no Spark job."""
    since = since or last_build_started_at(settings)
    touched: dict[str, set[dt.date]] = {}
    for row in delta_log.read_rows(INGEST_AUDIT, ["source", "finished_at", "event_dates"], settings):
        if since is None or row["finished_at"] > since:
            touched.setdefault(row["source"], set()).update(
                dt.date.fromisoformat(d) for d in (row["event_dates"] or "").split(",") if d)
    return touched


def affected_with_plan(settings: Settings | None = None,
                       since: dt.datetime | None = None) -> tuple[list[dt.date], dict[str, list[dt.date]]]:
    """The affected days: event days that ingestion touched since the last build (`touched_by_source`), plus
    days the quality gate blocked that no later build has covered; and the gate's `gate_plan` for them."""
    touched, pending = touched_by_source(settings, since), pending_blocked_days(settings)
    days = sorted(set().union(*touched.values()) | pending)
    return days, gate_plan(days, touched, pending)


def affected_days(settings: Settings | None = None, since: dt.datetime | None = None) -> list[dt.date]:
    """The affected days of `affected_with_plan`."""
    return affected_with_plan(settings, since)[0]


def gate_plan(days: list[dt.date], touched: dict[str, set[dt.date]], pending: set[dt.date]) -> dict[str, list[dt.date]]:
    """What the quality gate validates of ``days`` (the affected days), per silver source: the days the
    source's own ingest touched, plus every day still blocked; a dimension (no event days) whole when it was
    ingested or a blocked day is pending. A source that has neither is left out: its rows on these days are
    the ones an earlier gate passed into gold."""
    wanted = set(days)
    plan: dict[str, list[dt.date]] = {}
    for name, spec in SILVER.items():
        if not spec.partition_cols:                      # a dimension: validated whole
            if name in touched or pending & wanted:
                plan[name] = sorted(wanted)
            continue
        own = (touched.get(name, set()) | pending) & wanted
        if own:
            plan[name] = sorted(own)
    return plan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat)
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat)
    parser.add_argument("--affected", action="store_true", help="rebuild every day the ingest audit lists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from jobs.platform.session import get_spark

    spark = get_spark("kpi_build")
    if args.affected:
        days = affected_days()
        if not days:
            print("no affected days")
            return
        start, end = days[0], days[-1]
    else:
        if not (args.start and args.end):
            parser.error("give --from and --to, or --affected")
        start, end = args.start, args.end
    started_at = dt.datetime.now(dt.timezone.utc)
    result = build(spark, start, end)
    record_build(spark, result, started_at)
    print(f"gold build {start}..{end} in {result.seconds:.1f} s")
    for name, rows in sorted(result.tables.items()):
        print(f"  {name:<40}{rows:>8,} rows  {delta_log.table_path(gold.table(name).spec)}")


if __name__ == "__main__":
    main()
