"""Gold build: silver → KPI tables for the affected days and their months (the kpi_daily DAG's work).

    python -m jobs.kpi.build --from 2026-11-02 --to 2026-11-04     # rebuild these days and their months
    python -m jobs.kpi.build --affected                             # days touched by ingestion since the last build

Daily tables are replaced for exactly the days rebuilt (``replaceWhere`` on ``date_local``), monthly
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.platform import delta_log, delta_tables
from jobs.kpi import (chain_energy, charging_utilisation, h2_utilisation, mine_energy, rail_share, targets,
                      truck_energy, washing)
from jobs.platform.session import scheduler_pool
from jobs.platform.settings import Settings, get_settings
from schemas.reference_tables import REFERENCE, read_reference, rule_params
from schemas.tables import INGEST_AUDIT, SILVER, TableSpec

log = logging.getLogger(__name__)
DAY_COL, MONTH_COL = "date_local", "month_start"
# The day column a daily KPI table is keyed and replaced by: the local day, or a mine's shift-day.
DAY_COLS = ("date_local", "shift_date", "prod_date")


def _period_col(df: DataFrame, candidates: tuple[str, ...]) -> str:
    for c in candidates:
        if c in df.columns:
            return c
    raise ValueError(f"KPI output has none of the period columns {candidates}: {df.columns}")


def gold_spec(name: str, df: DataFrame, period_col: str) -> TableSpec:
    """Gold tables take the schema their transform produces (the transforms' final select is the contract)."""
    return TableSpec(name=name, layer="gold", schema=df.schema, partition_cols=(period_col,))


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

    def silver(self, source: str) -> DataFrame:
        return delta_tables.read_table(self.spark, SILVER[source], self.settings)

    def events(self, source: str, start: dt.date, end: dt.date) -> DataFrame:
        return self.silver(source).filter(F.col("event_date_local").between(F.lit(start), F.lit(end)))

    def rules(self, rule: str, on: dt.date) -> dict:
        return rule_params(self.ref["rule_parameters"], rule, on_date=on)

    def gold(self, name: str, start: dt.date, end: dt.date) -> DataFrame:
        """Rows of a daily gold table written by this or an earlier build (``date_local`` in start..end)."""
        table = delta_tables.read_existing(self.spark, TableSpec(name, "gold", None), self.settings)
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


def _replace(df: DataFrame, name: str, period_col: str, values: list[dt.date], settings: Settings,
             result: BuildResult) -> DataFrame:
    started = time.perf_counter()
    spec = gold_spec(name, df, period_col)
    # a gold table is a few thousand rows per rebuilt period: collected as Arrow and written with delta-rs,
    # which spares each of the 21 tables a Spark write stage and a Spark Delta commit (about 10 s of a build)
    rows = df.toArrow()
    delta_log.replace_rows(df.sparkSession, spec, rows, delta_log.in_list_condition(period_col, [v.isoformat() for v in values]),
                    settings, exact_columns=True)
    result.tables[name] = rows.num_rows
    result.step_s[name] = round(time.perf_counter() - started, 2)
    return delta_tables.read_table(df.sparkSession, spec, settings).filter(F.col(period_col).isin(values))


def build(spark: SparkSession, start: dt.date, end: dt.date, settings: Settings | None = None, *,
          refresh_day_before: bool = True) -> BuildResult:
    """Rebuild the KPI tables for local days start..end and their months. ``refresh_day_before=False``
    leaves the truck rows of start − 1 alone (used when the quality gate blocked that day)."""
    settings = settings or get_settings()
    t0 = time.perf_counter()
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    months = _months(start, end)
    m_start, m_end = months[0], _month_end(months[-1])
    result = BuildResult(days, months)
    inp = Inputs(spark, settings)
    result.reference_written = write_reference_tables(spark, inp, settings)
    result.step_s["reference_tables"] = round(time.perf_counter() - t0, 2)
    ref = inp.ref
    mines, plants, trucks = inp.silver("mines"), inp.silver("washing_plants"), inp.silver("trucks")
    connectors, stations = inp.silver("charging_connectors"), inp.silver("charging_stations")
    h2_stations = inp.silver("h2_stations")

    def daily(name, df):
        return _replace(df, name, _period_col(df, DAY_COLS), days, settings, result)

    def monthly(name, df):
        return _replace(df, name, _period_col(df, (MONTH_COL,)), months, settings, result)

    # Eight KPI families. Those that do not depend on each other run side by side in threads: the
    # tables are small except the truck family, so most of a table's time is driver-side planning and
    # its Delta commit, which overlap well with another family's Spark tasks.

    def mine_family():  # 1. mine energy per tonne, graded against the standard in force on each graded date
        def mine_daily(first, last):
            return mine_energy.mine_energy_daily(
                inp.events("mine_production", first, last), mines=mines, factors=ref["conversion_factors"],
                limits=ref["mine_energy_limits"])

        daily("gold_mine_energy_daily", mine_daily(start, end))
        mine_monthly = monthly("gold_mine_energy_monthly", mine_energy.mine_energy_monthly(
            mine_daily(m_start, m_end), limits=ref["mine_energy_limits"]))
        monthly("gold_mine_energy_rollup_monthly", mine_energy.mine_energy_rollup(mine_monthly, period_col=MONTH_COL))
        return mine_monthly

    def washing_family():  # 2. washing
        def washing_daily(first, last):
            return washing.washing_daily(
                inp.events("washing", first, last), plants=plants, process_factors=ref["washing_process_factors"],
                limits=ref["washing_limits"])

        daily("gold_washing_daily", washing_daily(start, end))
        washing_monthly = monthly("gold_washing_monthly", washing.washing_monthly(
            washing_daily(m_start, m_end), limits=ref["washing_limits"]))
        monthly("gold_washing_rollup_monthly", washing.washing_rollup(washing_monthly, period_col=MONTH_COL))
        washing_rate = monthly("gold_raw_coal_washing_rate_monthly", washing.raw_coal_washing_rate(
            inp.events("washing", m_start, m_end), plants=plants,
            production=inp.events("mine_production", m_start, m_end), mines=mines, period="month"))
        return washing_monthly, washing_rate

    def truck_family():
        # 3. truck energy per truck-day and trips per ticket, for the rebuilt days and the day before them
        # (its last interval and a trip loaded before midnight end in the first rebuilt day). Telematics is
        # read from two days before (loaded state of early frames) plus each truck's first frame after the
        # window (the next frame of its last interval), so a day costs the same whatever the history. The
        # month figures are summed from the stored daily and trip rows.
        te = inp.rules("truck_energy", end)
        truck_days = ([start - dt.timedelta(days=1)] if refresh_day_before else []) + days
        read_from, read_to = start - dt.timedelta(days=2), end + dt.timedelta(days=1)
        tickets_window = inp.events("weighbridge", read_from, read_to)
        # summed per truck-day and ticket inside the tasks: one row per truck-day and ticket is kept for both
        # tables, not one per frame
        sums = truck_energy.truck_interval_sums(
            _telematics_window(inp, read_from, read_to), trucks=trucks, tickets=tickets_window, **te,
        ).filter(F.col(DAY_COL).between(F.lit(truck_days[0]), F.lit(end))).persist()
        try:
            _replace(truck_energy.truck_energy_daily(
                sums, tickets=inp.events("weighbridge", truck_days[0], end),
                charging_sessions=inp.events("charging_sessions", truck_days[0], end)),
                "gold_truck_energy_daily", DAY_COL, truck_days, settings, result)
            _replace(truck_energy.truck_trips(sums, tickets=inp.events("weighbridge", truck_days[0], end)),
                     "gold_truck_trips", DAY_COL, truck_days, settings, result)
        finally:
            sums.unpersist()
        truck_daily_month = inp.gold("gold_truck_energy_daily", m_start, m_end)
        # the battery-vs-grid cross-check runs with every build, per truck-month; its status counts are
        # stored per fleet-month and in the build result
        check = truck_energy.check_battery_vs_grid(
            truck_daily_month, trucks=trucks, per_month=True, **inp.rules("battery_grid_check", end)).persist()
        try:
            result.battery_grid_check = {r["check_status"]: r["truck_months"] for r in check.groupBy("check_status").agg(
                F.count(F.lit(1)).alias("truck_months")).collect()}
            monthly("gold_truck_energy_monthly", truck_energy.with_battery_grid_check(
                truck_energy.truck_energy_monthly(truck_daily_month, grain="fleet"), check=check))
        finally:
            check.unpersist()
        if result.battery_grid_check.get("outside_losses"):
            log.warning("battery-vs-grid check: %s truck-month(s) outside the charging-loss band",
                        result.battery_grid_check["outside_losses"])
        return truck_daily_month, inp.gold("gold_truck_trips", m_start, m_end)

    def chain_family(mine_monthly, washing_monthly, truck_daily_month, trips):
        # 4. chain energy per delivered tonne, per shipment
        haulage = chain_energy.haulage_energy_by_mine(truck_daily_month, trips=trips, factors=ref["conversion_factors"])
        per_shipment = chain_energy.chain_energy_per_shipment(
            inp.events("shipments", m_start, m_end), mine_energy_monthly=mine_monthly, washing_monthly=washing_monthly,
            haulage_by_mine=haulage, factors=ref["conversion_factors"])
        chain = monthly("gold_chain_energy_shipment", per_shipment)
        monthly("gold_chain_energy_rollup_monthly", chain_energy.chain_energy_rollup(chain, mines=mines, period="month"))

    def charging_family(truck):  # 5. charging utilisation (connector-hour, connector-day, station-day, roll-ups)
        cu = inp.rules("charging_utilisation", end)
        status = inp.events("connector_status", start - dt.timedelta(days=int(cu["status_lookback_days"])),
                            end + dt.timedelta(days=1))
        sessions = inp.events("charging_sessions", start - dt.timedelta(days=1), end)
        c_hourly = charging_utilisation.charging_connector_hourly(
            status, sessions=sessions, connectors=connectors, start_date=start, end_date=end).persist()
        try:
            concurrency = charging_utilisation.peak_concurrency_hourly(status, start_date=start, end_date=end)
            daily("gold_charging_connector_hourly", c_hourly)
            c_daily = charging_utilisation.charging_connector_daily(c_hourly, sessions=sessions, start_date=start,
                                                                    end_date=end)
            daily("gold_charging_connector_daily", c_daily)
            daily("gold_charging_station_hourly", charging_utilisation.charging_station_hourly(
                c_hourly, concurrency=concurrency, stations=stations))
            # charging losses need the truck-days (energy into the battery) of the rebuilt days
            truck_daily_month, _ = truck.result()
            losses = charging_utilisation.station_charging_losses(
                sessions.filter(F.col("event_date_local").between(F.lit(start), F.lit(end))),
                truck_daily=truck_daily_month.filter(F.col(DAY_COL).between(F.lit(start), F.lit(end))))
            s_daily = daily("gold_charging_station_daily", charging_utilisation.charging_station_daily(
                c_daily, concurrency=concurrency, stations=stations, losses=losses))
            daily("gold_charging_rollup_daily", charging_utilisation.charging_rollup(s_daily, period_col=DAY_COL))
        finally:
            c_hourly.unpersist()

    def h2_family():  # 6. hydrogen stations
        h2_daily = daily("gold_h2_station_daily", h2_utilisation.h2_station_daily(
            inp.events("h2_fills", start, end), stations=h2_stations, start_date=start, end_date=end))
        daily("gold_h2_rollup_daily", h2_utilisation.h2_rollup(h2_daily, period_col=DAY_COL))

    def rail_family():  # 7. rail share beyond 500 km, per mine/company/banner/city and month
        rs = inp.rules("rail_share", end)
        classified = rail_share.classify_shipments(
            inp.events("shipments", m_start, m_end), long_haul_threshold_km=rs["long_haul_threshold_km"],
            long_haul_bound_inclusive=rs["long_haul_bound_inclusive"],
            multimodal_rail_min_km_share=rs["multimodal_rail_min_km_share"], rule_version=rs["rule_version"])
        return monthly("gold_rail_share_monthly", rail_share.rail_share(
            classified, mines=mines, targets=ref["plan_targets"], period="month"))

    def targets_family(washing_rate, rail_monthly):  # 8. target tracking, per month
        tracking = None
        pt = inp.rules("plan_targets", end)
        for month in months:
            values = targets.plan_target_values(
                mines=mines, mine_production=inp.silver("mine_production"), washing_rate_monthly=washing_rate,
                rail_share_monthly=rail_monthly, charging_stations=stations, h2_stations=h2_stations, month=month,
                mine_register=ref["mine_register"], new_mine_from_year=pt["new_mine_from_year"],
                rule_version=pt["rule_version"])
            rows = targets.target_tracking(ref["plan_targets"], values=values, month=month)
            tracking = rows if tracking is None else tracking.unionByName(rows)
        monthly("gold_target_tracking", tracking)

    def in_pool(family, *args):  # each family's jobs share the cores fairly with the others'
        scheduler_pool(spark, f"gold_{family.__name__}")
        return family(*args)

    with ThreadPoolExecutor(max_workers=settings.gold_build_threads, thread_name_prefix="gold") as pool:
        truck = pool.submit(in_pool, truck_family)   # the largest first
        mine, wash = pool.submit(in_pool, mine_family), pool.submit(in_pool, washing_family)
        rail = pool.submit(in_pool, rail_family)
        others = [pool.submit(in_pool, charging_family, truck), pool.submit(in_pool, h2_family)]
        washing_monthly, washing_rate = wash.result()
        dependent = [pool.submit(in_pool, targets_family, washing_rate, rail.result()),
                     pool.submit(in_pool, chain_family, mine.result(), washing_monthly, *truck.result())]
        for future in others + dependent:
            future.result()  # re-raises a family's error
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


def pending_blocked_days(spark: SparkSession, settings: Settings | None = None) -> set[dt.date]:
    """Blocked days that no build started after the block has covered yet."""
    blocked = delta_tables.read_table(spark, KPI_BLOCKED_DAYS, settings).collect()
    if not blocked:
        return set()
    builds = delta_tables.read_table(spark, KPI_BUILDS, settings).select("started_at", "start_date", "end_date").collect()
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


def last_build_started_at(spark: SparkSession, settings: Settings | None = None) -> dt.datetime | None:
    return delta_tables.read_table(spark, KPI_BUILDS, settings).agg(F.max("started_at")).first()[0]


def affected_days(spark: SparkSession, settings: Settings | None = None, since: dt.datetime | None = None) -> list[dt.date]:
    """Event days that ingestion touched (from the ingest audit) in runs that finished after ``since``
    (default: the start of the last gold build, so a run that overlapped it is taken again), plus days
    the quality gate blocked that no later build has covered."""
    audit = delta_tables.read_table(spark, INGEST_AUDIT, settings)
    since = since or last_build_started_at(spark, settings)
    if since is not None:
        audit = audit.filter(F.col("finished_at") > F.lit(since))
    days = set()
    for row in audit.select("event_dates").collect():
        days.update(dt.date.fromisoformat(d) for d in (row["event_dates"] or "").split(",") if d)
    return sorted(days | pending_blocked_days(spark, settings))


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
        days = affected_days(spark)
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
        print(f"  {name:<40}{rows:>8,} rows  {delta_log.table_path(TableSpec(name, 'gold', T.StructType()))}")


if __name__ == "__main__":
    main()
