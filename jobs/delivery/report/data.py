"""Extract: the month's KPI data for the reports, aggregated in Spark, returned as small pandas frames.

Everything is read once for the whole city (:func:`load_month`); a company's report is then cut from
it by :func:`for_company`, the one place tenant isolation is decided: entity rows (mines, plants,
stations, trucks, forecasts) are kept by their ``company_id`` (carried by the gold rows or joined from
``silver_mines`` / ``silver_charging_stations``), roll-up rows only at ``scope_level = 'company'`` for
that company. Banner and city roll-ups, plan targets and other companies' rows never reach a company
report.

Tables are read only through :mod:`jobs.platform.delta_tables` (``read_existing``), and only when they exist: a report is
read-only and must not create an empty table in the lake (``read_table`` would). Gold tables are read only if the
gold catalogue (``schemas/gold.py``) declares them for the reports; monthly figures come from the monthly gold
tables as written by the build, never re-added here from daily rows.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.platform import delta_log, delta_tables
from jobs.platform.settings import Settings
from schemas import gold
from schemas.quality import QUALITY_RESULTS
from schemas.tables import SILVER, TableSpec

log = logging.getLogger(__name__)

CITY_SCOPE_ID = "ordos"
COLLECT_THREADS = 4
TREND_MONTHS = 12                   # rail-share trend: the report month and up to 11 before it
# Gold tables whose rows say whether a month has data at all (table -> its day or month column).
MONTH_EVIDENCE = {name: gold.table(name).period_col for name in (
    "gold_mine_energy_daily", "gold_washing_daily", "gold_charging_station_daily", "gold_h2_station_daily",
    "gold_rail_share_monthly")}
# Daily gold tables whose first and last day of the month are the report's data span.
DAY_SPAN = {name: gold.table(name).period_col for name in (
    "gold_mine_energy_daily", "gold_washing_daily", "gold_charging_station_daily", "gold_h2_station_daily")}


class NoGoldData(RuntimeError):
    """The lake has no gold rows for the requested month (or no gold tables at all)."""


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    first = month.replace(day=1)
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, nxt - dt.timedelta(days=1)


def add_months(month: dt.date, n: int) -> dt.date:
    i = month.year * 12 + month.month - 1 + n
    return dt.date(i // 12, i % 12 + 1, 1)


# --- reading ------------------------------------------------------------------------------------------
def gold_spec(name: str) -> TableSpec:
    """The declared spec of a gold table the reports read (schemas/gold.py); any other name is an error."""
    table = gold.table(name)
    if not table.reports:
        raise KeyError(f"{name} is not declared for the reports (schemas/gold.py: reports=True)")
    return table.spec


def read_if_exists(spark: SparkSession, spec: TableSpec, settings: Settings) -> DataFrame | None:
    return delta_tables.read_existing(spark, spec, settings) if delta_log.table_exists(spec, settings) else None


class Lake:
    """The lake's tables, each located and opened once per report run (opening a Delta table reads its log)."""

    def __init__(self, spark: SparkSession, settings: Settings):
        self.spark, self.settings = spark, settings
        self._open: dict[str, DataFrame | None] = {}
        self._lock = threading.Lock()

    def table(self, spec: TableSpec) -> DataFrame | None:
        with self._lock:
            if spec.name not in self._open:
                self._open[spec.name] = read_if_exists(self.spark, spec, self.settings)
            return self._open[spec.name]

    def gold(self, name: str) -> DataFrame | None:
        return self.table(gold_spec(name))

    def silver(self, source: str) -> DataFrame | None:
        return self.table(SILVER[source])


def _pandas(df: DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """A small Spark result as pandas; decimals become floats (plotting and display only, never grading)."""
    if df is None:
        return pd.DataFrame(columns=columns)
    casts = [F.col(f.name).cast("double").alias(f.name) if isinstance(f.dataType, T.DecimalType) else F.col(f.name)
             for f in df.schema.fields]
    out = df.select(*casts).toPandas()
    return out if len(out.columns) else pd.DataFrame(columns=columns)


def months_with_data(lake: Lake) -> list[dt.date]:
    """First days of the months that have rows in any of the gold tables of :data:`MONTH_EVIDENCE`."""
    months: set[dt.date] = set()
    for name, date_col in MONTH_EVIDENCE.items():
        df = lake.gold(name)
        if df is not None:
            months.update(r[0] for r in df.select(F.trunc(date_col, "month")).distinct().collect() if r[0])
    return sorted(months)


# --- the month's data --------------------------------------------------------------------------------
@dataclass
class MonthData:
    month: dt.date                          # first day of the month
    month_end: dt.date
    data_first_day: dt.date | None          # first / last day with any daily gold row in the month
    data_last_day: dt.date | None
    companies: pd.DataFrame                 # company_id, company_name
    mines: pd.DataFrame                     # mine_id, company_id, mine_name, banner, mine_type
    stations: pd.DataFrame                  # station_id, company_id, station_name, banner, in_mine_area
    mine_daily: pd.DataFrame                # per mine x shift-day, with the standard's level lines
    mine_monthly: pd.DataFrame              # per mine, the month's grade
    washing_daily: pd.DataFrame             # per plant x production day, GB 29446 value and level lines
    washing_monthly: pd.DataFrame
    mine_rollup: pd.DataFrame               # scope rows (company / banner / city) of the month
    washing_rollup: pd.DataFrame
    washing_rate: pd.DataFrame
    chain_rollup: pd.DataFrame
    rail: pd.DataFrame                      # scope rows for up to 12 months; mine rows carry company_id, banner
    charging_rollup: pd.DataFrame           # gold_charging_rollup_monthly: company / banner / city rows of the month
    station_month: pd.DataFrame             # gold_charging_station_monthly, with status_unknown_pct
    heatmap: pd.DataFrame                   # station x weekday x local hour: occupancy over the month
    flex_heatmap: pd.DataFrame              # station x weekday x local hour: flexible share of the energy charged
    flex_station_month: pd.DataFrame        # per station: the month's flexible share and peaks it could remove
    h2_rollup: pd.DataFrame                 # gold_h2_rollup_monthly: company / banner / city rows of the month
    fleet: pd.DataFrame                     # gold_truck_energy_monthly: company x powertrain
    targets: pd.DataFrame                   # gold_target_tracking (city; planners only)
    forecast: pd.DataFrame                  # the latest forecast run of the month, per station and hour
    forecast_actual: pd.DataFrame           # station hourly energy over the forecast window, where known
    forecast_table_exists: bool
    quality_counts: pd.DataFrame            # table_name, severity, success, evaluations
    quality_failures: pd.DataFrame          # critical failures recorded for the period
    quality_runs: int
    quality_table_exists: bool
    scope_company_id: str | None = None     # set by for_company
    notes: list[str] = field(default_factory=list)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), pd.DataFrame)}


def load_month(lake: Lake, month: dt.date) -> MonthData:
    """Read and aggregate everything the reports show for ``month``; raises :class:`NoGoldData`."""
    settings = lake.settings
    first, last = month_bounds(month)
    available = months_with_data(lake)
    if not available:
        raise NoGoldData(f"no gold KPI data under {settings.gold_root}: build gold first "
                         "(python -m jobs.kpi.build --from ... --to ...)")
    if first not in available:
        have = ", ".join(m.strftime("%Y-%m") for m in available)
        raise NoGoldData(f"no gold KPI data for {first:%Y-%m} under {settings.gold_root}; months with data: {have}")

    def between(c: str):
        return F.col(c).between(F.lit(first), F.lit(last))

    log.info("reading dimensions")
    companies = _select(lake.silver("companies"), "company_id", "company_name")
    mines_df = _select(lake.silver("mines"), "mine_id", "company_id", "mine_name", "banner", "mine_type")
    stations_df = _select(lake.silver("charging_stations"), "station_id", "company_id", "station_name",
                          "banner", "in_mine_area")
    plants_df = _select(lake.silver("washing_plants"), "plant_id", "plant_name")

    log.info("reading mine energy and washing")
    mine_daily = _select(_filter(lake.gold("gold_mine_energy_daily"), between("shift_date")),
                         "shift_date", "mine_id", "company_id", "banner", "mine_type", "raw_coal_t", "energy_kgce",
                         "energy_kgce_per_t", "electricity_kwh_per_t", "level_1_max_kgce_per_t",
                         "level_2_max_kgce_per_t", "level_3_max_kgce_per_t", "standard", "grade", "limits_version",
                         "limits_need_review", "factor_version", "electricity_basis")
    mine_monthly = _select(_filter(lake.gold("gold_mine_energy_monthly"), F.col("month_start") == first),
                           "mine_id", "company_id", "banner", "mine_type", "raw_coal_t", "energy_kgce_per_t",
                           "electricity_kwh_per_t", "standard", "grade", "limits_version", "factor_version")
    washing_daily = _select(_filter(lake.gold("gold_washing_daily"), between("prod_date")),
                            "prod_date", "plant_id", "company_id", "mine_id", "banner", "coal_type", "process",
                            "raw_coal_fed_t", "corrected_electricity_kwh", "gb29446_electricity_kwh_per_t",
                            "level_1_max_kwh_per_t",
                            "level_2_max_kwh_per_t", "level_3_max_kwh_per_t", "standard", "grade",
                            "limits_version", "limits_need_review", "process_factor_version")
    washing_monthly = _select(_filter(lake.gold("gold_washing_monthly"), F.col("month_start") == first),
                              "plant_id", "company_id", "mine_id", "banner", "coal_type", "process", "raw_coal_fed_t",
                              "gb29446_electricity_kwh_per_t", "yield_pct", "grade", "standard", "limits_version",
                              "process_factor_version")
    if mines_df is not None:
        # a plant without its own banner sits in its mine's banner (central plants keep none)
        mine_banner = mines_df.select("mine_id", F.col("banner").alias("_mine_banner"))
        washing_daily, washing_monthly = [
            None if w is None else w.join(mine_banner, on="mine_id", how="left")
            .withColumn("banner", F.coalesce("banner", "_mine_banner")).drop("_mine_banner")
            for w in (washing_daily, washing_monthly)]
    if plants_df is not None:
        if washing_daily is not None:
            washing_daily = washing_daily.join(plants_df, on="plant_id", how="left")
        if washing_monthly is not None:
            washing_monthly = washing_monthly.join(plants_df, on="plant_id", how="left")
    if mines_df is not None:
        names = mines_df.select("mine_id", "mine_name")
        mine_daily = mine_daily.join(names, on="mine_id", how="left") if mine_daily is not None else None
        mine_monthly = mine_monthly.join(names, on="mine_id", how="left") if mine_monthly is not None else None

    def month_rows(name: str) -> DataFrame | None:
        return _filter(lake.gold(name), F.col("month_start") == first)

    log.info("reading roll-ups, rail share, fleet, targets")
    rail = _filter(lake.gold("gold_rail_share_monthly"),
                   F.col("month_start").between(F.lit(add_months(first, 1 - TREND_MONTHS)), F.lit(first)))
    if rail is not None and mines_df is not None:
        # mine rows get their company and banner (tenant isolation needs the company of every mine row)
        m = mines_df.select(F.col("mine_id").alias("_mine_id"), F.col("company_id").alias("_mine_company"),
                            F.col("banner").alias("_mine_banner"), "mine_name")
        rail = (rail.join(m, on=(F.col("scope_level") == "mine") & (F.col("scope_id") == F.col("_mine_id")), how="left")
                .withColumn("company_id", F.when(F.col("scope_level") == "mine", F.col("_mine_company"))
                            .when(F.col("scope_level") == "company", F.col("scope_id")))
                .withColumn("banner", F.when(F.col("scope_level") == "mine", F.col("_mine_banner"))
                            .when(F.col("scope_level") == "banner", F.col("scope_id")))
                .drop("_mine_id", "_mine_company", "_mine_banner"))

    log.info("aggregating charging utilisation")
    hourly = _filter(lake.gold("gold_charging_station_hourly"), between("date_local"))
    heatmap = None
    if hourly is not None:
        # Monday = 0 (Spark's dayofweek is 1 = Sunday .. 7 = Saturday)
        heatmap = (hourly.withColumn("weekday", (F.dayofweek("date_local") + 5) % 7)
                   .groupBy("station_id", "company_id", "banner", "weekday", "hour_local")
                   .agg(F.sum("plugged_in_s").alias("plugged_in_s"), F.sum("calendar_s").alias("calendar_s"),
                        F.sum("status_unknown_s").alias("status_unknown_s"), F.count(F.lit(1)).alias("hours"))
                   # a cell whose whole time had no known connector status has no value (not 0 %)
                   .withColumn("occupancy_pct", F.when(F.col("status_unknown_s") < F.col("calendar_s"),
                                                       _pct("plugged_in_s", "calendar_s"))))
    flex_heatmap, flex_station_month = _flexibility(_filter(lake.gold("gold_charging_flexibility_hourly"),
                                                            between("date_local")))
    station_month = month_rows("gold_charging_station_monthly")
    if station_month is not None:
        # the share of connector time without a known status: how far the percentages are lower bounds
        station_month = station_month.withColumn("status_unknown_pct", _pct("status_unknown_s", "calendar_s"))

    # Every result is small; most of the time goes to planning and starting one Spark job per frame, so the
    # jobs are submitted side by side (Spark schedules concurrent jobs from several threads).
    frames = {
        "companies": (companies, ["company_id", "company_name"]),
        "mines": (mines_df, ["mine_id", "company_id", "mine_name", "banner", "mine_type"]),
        "stations": (stations_df, ["station_id", "company_id", "station_name", "banner", "in_mine_area"]),
        "mine_daily": (mine_daily, ["shift_date", "mine_id", "company_id", "banner", "mine_type"]),
        "mine_monthly": (mine_monthly, ["mine_id", "company_id", "banner"]),
        "washing_daily": (washing_daily, ["prod_date", "plant_id", "company_id", "banner", "coal_type"]),
        "washing_monthly": (washing_monthly, ["plant_id", "company_id", "banner"]),
        "mine_rollup": (month_rows("gold_mine_energy_rollup_monthly"), ["scope_level", "scope_id"]),
        "washing_rollup": (month_rows("gold_washing_rollup_monthly"), ["scope_level", "scope_id"]),
        "washing_rate": (month_rows("gold_raw_coal_washing_rate_monthly"), ["scope_level", "scope_id"]),
        "chain_rollup": (month_rows("gold_chain_energy_rollup_monthly"), ["scope_level", "scope_id"]),
        "rail": (rail, ["month_start", "scope_level", "scope_id", "company_id", "banner"]),
        "charging_rollup": (month_rows("gold_charging_rollup_monthly"), ["scope_level", "scope_id"]),
        "station_month": (station_month, ["station_id", "company_id", "banner"]),
        "heatmap": (heatmap, ["station_id", "company_id", "banner", "weekday", "hour_local", "occupancy_pct"]),
        "flex_heatmap": (flex_heatmap, ["station_id", "company_id", "banner", "weekday", "hour_local",
                                        "as_charged_kwh", "flexible_kwh", "flexible_share_pct"]),
        "flex_station_month": (flex_station_month, list(FLEX_STATION_COLUMNS)),
        "h2_rollup": (month_rows("gold_h2_rollup_monthly"), ["scope_level", "scope_id"]),
        "fleet": (month_rows("gold_truck_energy_monthly"), ["company_id", "powertrain"]),
        "targets": (month_rows("gold_target_tracking"), ["target_id"]),
    }
    tasks = {name: (lambda df=df, cols=cols: _pandas(df, cols)) for name, (df, cols) in frames.items()}
    tasks["_forecast"] = lambda: _forecast(lake, first, last, stations_df, hourly)
    tasks["_quality"] = lambda: _quality(lake, first, last)
    spans = []
    for name, c in DAY_SPAN.items():
        rows = _filter(lake.gold(name), between(c))
        if rows is not None:
            spans.append(rows.agg(F.min(c).alias("lo"), F.max(c).alias("hi")))
    if spans:      # one job for the four tables' first and last days
        union = spans[0]
        for span in spans[1:]:
            union = union.unionByName(span)
        tasks["_days"] = lambda: tuple(union.agg(F.min("lo"), F.max("hi")).first())
    log.info("collecting %d results", len(tasks))
    with ThreadPoolExecutor(max_workers=COLLECT_THREADS, thread_name_prefix="report-collect") as pool:
        futures = {name: pool.submit(fn) for name, fn in tasks.items()}
        done = {name: f.result() for name, f in futures.items()}
    first_day, last_day = done.get("_days") or (None, None)
    forecast, actual, forecast_exists = done["_forecast"]
    quality_counts, quality_failures, quality_runs, quality_exists = done["_quality"]
    return MonthData(
        month=first, month_end=last,
        data_first_day=first_day, data_last_day=last_day,
        **{name: done[name] for name in frames},
        forecast=forecast, forecast_actual=actual, forecast_table_exists=forecast_exists,
        quality_counts=quality_counts, quality_failures=quality_failures, quality_runs=quality_runs,
        quality_table_exists=quality_exists,
    )


def _select(df: DataFrame | None, *cols: str) -> DataFrame | None:
    return None if df is None else df.select(*[c for c in cols if c in df.columns])


def _filter(df: DataFrame | None, cond) -> DataFrame | None:
    return None if df is None else df.filter(cond)


def _pct(num: str, den: str):
    return F.when(F.col(den) > 0, F.col(num).cast("double") / F.col(den).cast("double") * 100.0)


FLEX_STATION_COLUMNS = ("station_id", "company_id", "banner", "days", "as_charged_kwh", "flexible_kwh",
                        "flexible_share_pct", "max_day_peak_as_charged_kw", "mean_day_peak_removed_kw",
                        "max_day_peak_removed_kw", "capacity_exceeded_session_hours")


def _flexibility(flex: DataFrame | None) -> tuple[DataFrame | None, DataFrame | None]:
    """Load flexibility of the month: per station, weekday and hour the flexible share of the energy charged
    (ratio of the month's sums), and per station the share and the station-day peaks it could have removed
    (each station-day's ``day_`` values counted once, not once per hour)."""
    if flex is None:
        return None, None
    keys = ["station_id", "company_id", "banner"]
    heatmap = (flex.withColumn("weekday", (F.dayofweek("date_local") + 5) % 7)
               .groupBy(*keys, "weekday", "hour_local")
               .agg(F.sum("as_charged_kwh").alias("as_charged_kwh"), F.sum("flexible_kwh").alias("flexible_kwh"))
               .withColumn("flexible_share_pct", _pct("flexible_kwh", "as_charged_kwh")))
    days = flex.groupBy(*keys, "date_local").agg(
        F.sum("as_charged_kwh").alias("as_charged_kwh"), F.sum("flexible_kwh").alias("flexible_kwh"),
        F.max("day_peak_as_charged_kw").alias("day_peak_as_charged_kw"),
        F.max("day_peak_removed_kw").alias("day_peak_removed_kw"),
        F.sum("capacity_exceeded_sessions").alias("capacity_exceeded_session_hours"))
    month = (days.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("days"), F.sum("as_charged_kwh").alias("as_charged_kwh"),
        F.sum("flexible_kwh").alias("flexible_kwh"),
        F.max("day_peak_as_charged_kw").alias("max_day_peak_as_charged_kw"),
        F.avg("day_peak_removed_kw").alias("mean_day_peak_removed_kw"),
        F.max("day_peak_removed_kw").alias("max_day_peak_removed_kw"),
        F.sum("capacity_exceeded_session_hours").alias("capacity_exceeded_session_hours"))
        .withColumn("flexible_share_pct", _pct("flexible_kwh", "as_charged_kwh")))
    return heatmap, month.select(*FLEX_STATION_COLUMNS)


def _forecast(lake: Lake, first: dt.date, last: dt.date, stations: DataFrame | None,
              hourly: DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The latest forecast run issued in the month (``forecast_date_local`` in the month), with each
    station's company and banner, and the actual hourly energy over its window where gold has it."""
    cols = ["station_id", "company_id", "banner", "ts_local", "p10_kwh", "p50_kwh", "p90_kwh", "method",
            "model_version", "forecast_date_local", "issued_at"]
    empty = pd.DataFrame(columns=cols), pd.DataFrame(columns=["station_id", "ts_local", "energy_kwh"])
    fc = lake.gold("gold_charging_forecast")
    if fc is None:
        return (*empty, False)
    log.info("reading the charging forecast")
    fc = fc.filter(F.col("forecast_date_local").between(F.lit(first), F.lit(last)))
    latest = fc.agg(F.max("forecast_date_local")).first()[0]
    if latest is None:
        return (*empty, True)
    run = fc.filter(F.col("forecast_date_local") == F.lit(latest))
    if stations is not None:
        run = run.join(stations.select("station_id", "company_id", "banner"), on="station_id", how="left")
    else:
        run = run.withColumn("company_id", F.lit(None).cast("string")).withColumn("banner", F.lit(None).cast("string"))
    run = run.select(*cols)
    actual = None
    if hourly is not None:
        lo, hi = run.agg(F.min("ts_local"), F.max("ts_local")).first()
        actual = (hourly.select("station_id", F.timestamp_seconds(
            F.unix_timestamp(F.col("date_local").cast("timestamp")) + F.col("hour_local") * 3600).alias("ts_local"),
            "energy_kwh").filter(F.col("ts_local").between(F.lit(lo), F.lit(hi))))
    return (_pandas(run, cols), _pandas(actual, ["station_id", "ts_local", "energy_kwh"]), True)


def _quality(lake: Lake, first: dt.date, last: dt.date
             ) -> tuple[pd.DataFrame, pd.DataFrame, int, bool]:
    """Expectation results for the period: rows whose validated days overlap the month, plus the dimension
    tables (validated whole, no days) of the same runs. A critical failure says whether a later run of the same
    expectation on an overlapping batch passed (the data was fixed and re-validated)."""
    count_cols = ["table_name", "severity", "success", "evaluations"]
    fail_cols = ["table_name", "expectation_type", "column_name", "unexpected_count", "unexpected_percent",
                 "exception_message", "run_id", "validated_at", "first_day", "last_day", "later_passed"]
    qr = lake.table(QUALITY_RESULTS)
    if qr is None:
        return pd.DataFrame(columns=count_cols), pd.DataFrame(columns=fail_cols), 0, False
    log.info("reading data-quality results")
    in_month = F.exists("event_dates", lambda d: d.between(F.lit(first), F.lit(last)))
    runs = qr.filter(in_month).select("run_id").distinct()
    period = qr.join(runs, on="run_id", how="left_semi").filter(F.col("event_dates").isNull() | in_month).cache()
    n_runs = runs.count()
    counts = period.groupBy("table_name", "severity", "success").agg(F.count(F.lit(1)).alias("evaluations"))
    key = ["table_name", "expectation_type", "column_name", "kwargs_json"]
    failed = (period.filter((F.col("severity") == "critical") & ~F.col("success"))
              .withColumn("_fid", F.monotonically_increasing_id()).cache())
    passed = period.filter(F.col("success")).select(*[F.col(k).alias(f"_p_{k}") for k in key],
                                                    F.col("validated_at").alias("_p_at"),
                                                    F.col("event_dates").alias("_p_dates"))
    # null-safe on the key: table-level expectations have no column_name
    fixed = failed.join(passed, on=[F.col(k).eqNullSafe(F.col(f"_p_{k}")) for k in key]
                        + [F.col("_p_at") > F.col("validated_at"),
                           (F.col("event_dates").isNull() & F.col("_p_dates").isNull())
                           | F.arrays_overlap(F.col("event_dates"), F.col("_p_dates"))], how="inner")
    fixed = fixed.select("_fid").distinct().withColumn("later_passed", F.lit(True))
    in_month_days = F.filter("event_dates", lambda d: d.between(F.lit(first), F.lit(last)))
    failures = (failed.join(fixed, on="_fid", how="left")
                .select("table_name", "expectation_type", "column_name", "unexpected_count", "unexpected_percent",
                        "exception_message", "run_id", "validated_at",
                        F.array_min(in_month_days).alias("first_day"), F.array_max(in_month_days).alias("last_day"),
                        F.coalesce(F.col("later_passed"), F.lit(False)).alias("later_passed"))
                .orderBy("validated_at", "table_name", "expectation_type"))
    try:
        return _pandas(counts, count_cols), _pandas(failures, fail_cols), n_runs, True
    finally:   # also on failure: a cache outlives the call in a long-lived session
        failed.unpersist()
        period.unpersist()


# --- tenant isolation --------------------------------------------------------------------------------
# Frames holding one row per entity (or per entity and time) with the entity's company_id.
_ENTITY_FRAMES = ("mines", "stations", "mine_daily", "mine_monthly", "washing_daily", "washing_monthly",
                  "station_month", "heatmap", "flex_heatmap", "flex_station_month", "fleet", "forecast")
# Roll-up frames with scope_level / scope_id: a company keeps its own company row only.
_ROLLUP_FRAMES = ("mine_rollup", "washing_rollup", "washing_rate", "chain_rollup", "charging_rollup", "h2_rollup")


def for_company(data: MonthData, company_id: str) -> MonthData:
    """The part of ``data`` a company may see: its own entities and its own company roll-up rows.

    Every frame is decided here (a new frame in :class:`MonthData` must be added to one of the lists, or
    the call fails), so a report cannot pick up another tenant's rows by omission.
    """
    out = dataclasses.replace(data, scope_company_id=company_id, notes=list(data.notes))
    handled = set(_ENTITY_FRAMES) | set(_ROLLUP_FRAMES) | {"companies", "rail", "forecast_actual", "targets",
                                                            "quality_counts", "quality_failures"}
    unknown = set(data.frames) - handled
    if unknown:
        raise RuntimeError(f"for_company does not know how to scope {sorted(unknown)}")
    for name in _ENTITY_FRAMES:
        df = getattr(data, name)
        setattr(out, name, df[df["company_id"] == company_id].reset_index(drop=True))
    for name in _ROLLUP_FRAMES:
        df = getattr(data, name)
        setattr(out, name, df[(df["scope_level"] == "company") & (df["scope_id"] == company_id)].reset_index(drop=True))
    out.companies = data.companies[data.companies["company_id"] == company_id].reset_index(drop=True)
    rail = data.rail
    out.rail = rail[rail["scope_level"].isin(["mine", "company"]) & (rail["company_id"] == company_id)].reset_index(drop=True)
    own_stations = set(out.forecast["station_id"])
    out.forecast_actual = data.forecast_actual[data.forecast_actual["station_id"].isin(own_stations)].reset_index(drop=True)
    out.targets = data.targets.iloc[0:0]          # city-wide plan targets: planners only
    # quality results are about shared pipeline tables: counts only, never sample values or row keys
    return out


def for_banner(data: MonthData, banner: str) -> MonthData:
    """One banner's entities and banner roll-up rows (planners' per-banner sections; not a tenant boundary)."""
    out = dataclasses.replace(data, notes=list(data.notes))
    for name in _ENTITY_FRAMES:
        df = getattr(data, name)
        setattr(out, name, df[df["banner"] == banner].reset_index(drop=True) if "banner" in df else df.iloc[0:0])
    for name in _ROLLUP_FRAMES:
        df = getattr(data, name)
        setattr(out, name, df[(df["scope_level"] == "banner") & (df["scope_id"] == banner)].reset_index(drop=True))
    out.rail = data.rail[data.rail["banner"] == banner].reset_index(drop=True)
    out.forecast_actual = data.forecast_actual[
        data.forecast_actual["station_id"].isin(set(out.forecast["station_id"]))].reset_index(drop=True)
    out.targets = data.targets.iloc[0:0]
    return out


def company_ids(data: MonthData) -> list[str]:
    """Companies to report on: every company of the dimension and every company id found in the month's rows."""
    ids = set(data.companies["company_id"].dropna())
    for name in _ENTITY_FRAMES:
        ids.update(getattr(data, name)["company_id"].dropna())
    return sorted(ids)


def company_name(data: MonthData, company_id: str) -> str:
    names = data.companies.loc[data.companies["company_id"] == company_id, "company_name"].dropna()
    return str(names.iloc[0]) if len(names) else company_id


def versions(data: MonthData) -> dict[str, list[str]]:
    """Every rule / factor / limits / target / definition version found in the (scoped) data, by kind."""
    kinds = {
        "factor_version": ("mine_daily", "mine_monthly", "mine_rollup", "chain_rollup"),
        "limits_version": ("mine_daily", "mine_monthly", "washing_daily", "washing_monthly", "mine_rollup",
                           "washing_rollup"),
        "process_factor_version": ("washing_daily", "washing_monthly", "washing_rollup"),
        "rule_version": ("rail", "washing_rate", "fleet"),
        "target_version": ("rail", "targets"),
        "definition_version": ("station_month", "charging_rollup", "h2_rollup"),
        "model_version": ("forecast",),
    }
    out: dict[str, list[str]] = {}
    for col, frames in kinds.items():
        found: set[str] = set()
        for name in frames:
            df = getattr(data, name)
            if col in df.columns:
                for v in df[col].dropna():
                    found.update(p for p in str(v).split("+") if p)
        if found:
            out[col] = sorted(found)
    return out
