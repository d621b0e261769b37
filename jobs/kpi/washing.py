"""Coal washing: GB 29446 electricity per tonne with process factor and grade, yield, gangue share,
water and magnetite per tonne, and the raw-coal washing rate per mine / company / banner / city.

* Day = ``prod_date`` of silver_washing (plant day); month = its calendar month.
* GB 29446-2019: e = E x k / raw coal fed, k from ``washing_process_factors`` by (coal type, process);
  graded against ``washing_limits`` by coal type and the date (daily: the day; monthly: the first of
  the month). A (coal type, process) pair without k gets ``no_process_factor`` (no automatic grade).
* Per-tonne ratios of optional measurements (water, magnetite, gangue) divide by the raw coal fed on
  the days that measurement was reported, so a missing value is not read as zero.
* Raw-coal washing rate = raw coal fed / raw coal produced. Mine level: feed of the plants attached to
  the mine (``washing_plants.mine_id``). Central plants (no mine) count from company level up, under
  the plant's company and banner. Coal washed by another company's plant (outsourced) counts for the
  plant's company: it is not observable in the data. The rate can exceed 100 % (stock draw-down,
  bought-in coal).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.kpi._common import (
    QTY, collect_versions, grade, in_force, month_start, ratio, rollup_scopes, sum_exact, sum_qty, times,
)

WASHING_RATE_RULE_VERSION = "washing_rate_rule_v2026.1"

_MASS = ("raw_coal_fed_t", "clean_coal_t", "middlings_t", "gangue_t", "slime_t")
_SUMS = (*_MASS, "electricity_kwh", "corrected_electricity_kwh", "water_m3", "magnetite_kg",
         "fed_with_water_t", "fed_with_magnetite_t", "fed_with_gangue_t")
_RATIOS = ("electricity_kwh_per_t_fed", "gb29446_electricity_kwh_per_t", "yield_pct", "gangue_share_pct",
           "water_m3_per_t", "magnetite_kg_per_t")
_GRADE_COLS = ("graded_date", "standard", "standard_clause", "level_1_max_kwh_per_t", "level_2_max_kwh_per_t",
               "level_3_max_kwh_per_t", "limits_version", "limits_need_review", "level", "grade")


def _with_ratios(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("electricity_kwh_per_t_fed", ratio("electricity_kwh", "raw_coal_fed_t"))
        .withColumn("gb29446_electricity_kwh_per_t", ratio("corrected_electricity_kwh", "raw_coal_fed_t"))
        .withColumn("yield_pct", ratio("clean_coal_t", "raw_coal_fed_t", 100.0))
        .withColumn("gangue_share_pct", ratio("gangue_t", "fed_with_gangue_t", 100.0))
        .withColumn("water_m3_per_t", ratio("water_m3", "fed_with_water_t"))
        .withColumn("magnetite_kg_per_t", ratio("magnetite_kg", "fed_with_magnetite_t"))
    )


def _graded(df: DataFrame, limits: DataFrame) -> DataFrame:
    out = grade(
        df, limits, type_col="coal_type", limit_type_col="coal_type", limit_value_col="max_kwh_per_t",
        date_col="graded_date", numerator_col="corrected_electricity_kwh", denominator_col="raw_coal_fed_t",
        unit="kwh_per_t",
    )
    no_k = F.col("corrected_electricity_kwh").isNull() & F.col("electricity_kwh").isNotNull()
    return out.withColumn("grade", F.when(no_k, F.lit("no_process_factor")).otherwise(F.col("grade"))).withColumn(
        "level", F.when(~no_k, F.col("level"))
    )


def washing_daily(
    washing: DataFrame, *, plants: DataFrame, process_factors: DataFrame, limits: DataFrame,
) -> DataFrame:
    """Per plant and day. Columns: prod_date, plant_id, company_id, mine_id, banner, coal_type, process,
    raw_coal_fed_t, clean_coal_t, middlings_t, gangue_t, slime_t, electricity_kwh, corrected_electricity_kwh
    (E x k), water_m3, magnetite_kg, fed_with_{water,magnetite,gangue}_t, k_factor,
    electricity_kwh_per_t_fed (E / fed), gb29446_electricity_kwh_per_t (E x k / fed), yield_pct,
    gangue_share_pct, water_m3_per_t, magnetite_kg_per_t, graded_date, standard, standard_clause,
    level_{1,2,3}_max_kwh_per_t, limits_version, limits_need_review, level, grade, process_factor_version.
    """
    w = washing.select("plant_id", "prod_date", *_MASS, "electricity_kwh", "water_m3", "magnetite_kg")
    p = plants.select("plant_id", "company_id", "mine_id", "banner", "coal_type", "process")
    day = w.groupBy("plant_id", "prod_date").agg(
        *[sum_qty(c).alias(c) for c in (*_MASS, "electricity_kwh", "water_m3", "magnetite_kg")],
        *[sum_qty(F.when(F.col(m).isNotNull(), F.col("raw_coal_fed_t"))).alias(f"fed_with_{n}_t")
          for m, n in (("water_m3", "water"), ("magnetite_kg", "magnetite"), ("gangue_t", "gangue"))],
    ).join(p, on="plant_id", how="left")
    k = process_factors.select(
        F.col("coal_type").alias("_k_coal_type"), F.col("process").alias("_k_process"),
        F.col("k_factor").alias("k_factor"), F.col("version").alias("process_factor_version"),
        F.col("effective_from").alias("_k_from"), F.col("effective_to").alias("_k_to"),
    )
    day = day.join(
        F.broadcast(k),
        on=(F.col("coal_type") == F.col("_k_coal_type")) & (F.col("process") == F.col("_k_process"))
        & in_force(F.col("prod_date"), "_k_from", "_k_to"),
        how="left",
    ).drop("_k_coal_type", "_k_process", "_k_from", "_k_to")
    day = day.withColumn("corrected_electricity_kwh", times("electricity_kwh", "k_factor")).withColumn(
        "graded_date", F.col("prod_date")
    )
    day = _graded(_with_ratios(day), limits)
    return day.select(
        "prod_date", "plant_id", "company_id", "mine_id", "banner", "coal_type", "process", *_SUMS, "k_factor",
        *_RATIOS, *_GRADE_COLS, "process_factor_version",
    )


def _sum_aggs() -> list:
    return [sum_exact(c).alias(c) if c == "corrected_electricity_kwh" else sum_qty(c).alias(c) for c in _SUMS]


def washing_monthly(daily: DataFrame, *, limits: DataFrame) -> DataFrame:
    """Per plant and month: sums of the daily rows, ratios of sums, graded on the first of the month.
    Columns as :func:`washing_daily` with ``month_start`` and ``days`` instead of ``prod_date`` and ``k_factor``."""
    d = daily.select("prod_date", "plant_id", "company_id", "mine_id", "banner", "coal_type", "process", *_SUMS,
                     "process_factor_version")
    month = d.groupBy(month_start("prod_date").alias("month_start"), "plant_id", "company_id", "mine_id", "banner",
                      "coal_type", "process").agg(
        F.count(F.lit(1)).alias("days"), *_sum_aggs(), collect_versions("process_factor_version").alias("process_factor_version"),
    ).withColumn("graded_date", F.col("month_start"))
    month = _graded(_with_ratios(month), limits)
    return month.select(
        "month_start", "plant_id", "company_id", "mine_id", "banner", "coal_type", "process", "days", *_SUMS,
        *_RATIOS, *_GRADE_COLS, "process_factor_version",
    )


def washing_rollup(per_plant: DataFrame, *, period_col: str) -> DataFrame:
    """Company / banner / city roll-up (ratios of sums, no grade: a company mixes coal types).
    Columns: <period_col>, scope_level, scope_id, plants, <sums>, <ratios>, plants_above_limit,
    process_factor_version, limits_version."""
    d = per_plant.select(period_col, "plant_id", "company_id", "banner", *_SUMS, "grade", "process_factor_version",
                         "limits_version")
    out = rollup_scopes(d, period_cols=[period_col], aggs=[
        F.countDistinct("plant_id").alias("plants"), *_sum_aggs(),
        F.count(F.when(F.col("grade") == "above_limit", F.col("plant_id"))).alias("plants_above_limit"),
        collect_versions("process_factor_version").alias("process_factor_version"),
        collect_versions("limits_version").alias("limits_version"),
    ])
    return _with_ratios(out).select(period_col, "scope_level", "scope_id", "plants", *_SUMS, *_RATIOS,
                                    "plants_above_limit", "process_factor_version", "limits_version")


def raw_coal_washing_rate(
    washing: DataFrame, *, plants: DataFrame, production: DataFrame, mines: DataFrame, period: str = "month",
) -> DataFrame:
    """Raw-coal washing rate (raw coal fed / raw coal produced) per mine, company, banner and city.

    ``period``: ``day`` (output column ``date_local``: washing prod_date, mine shift_date) or ``month``
    (``month_start``). Columns: <period>, scope_level, scope_id, raw_coal_fed_t, raw_coal_produced_t,
    raw_coal_washing_rate_pct, rule_version.
    """
    if period not in ("day", "month"):
        raise ValueError("period must be 'day' or 'month'")
    pcol = "date_local" if period == "day" else "month_start"

    def bucket(c: str):
        return (F.col(c) if period == "day" else month_start(c)).alias(pcol)

    m = mines.select("mine_id", F.col("company_id").alias("_m_company"), F.col("banner").alias("_m_banner"))
    fed = (
        washing.select("plant_id", "prod_date", "raw_coal_fed_t")
        .join(plants.select("plant_id", "company_id", "mine_id", "banner"), on="plant_id", how="left")
        .join(m, on="mine_id", how="left")
        .select(bucket("prod_date"), "mine_id", "company_id",
                F.coalesce(F.col("banner"), F.col("_m_banner")).alias("banner"), "raw_coal_fed_t")
    )
    produced = (
        production.select("mine_id", "shift_date", "raw_coal_t")
        .join(mines.select("mine_id", "company_id", "banner"), on="mine_id", how="left")
        .select(bucket("shift_date"), "mine_id", "company_id", "banner", "raw_coal_t")
    )

    def per_scope(df: DataFrame, value: str, alias: str) -> DataFrame:
        mine_level = (
            df.filter(F.col("mine_id").isNotNull())
            .groupBy(pcol, F.lit("mine").alias("scope_level"), F.col("mine_id").alias("scope_id"))
            .agg(sum_qty(value).alias(alias))
        )
        return mine_level.unionByName(rollup_scopes(df, period_cols=[pcol], aggs=[sum_qty(value).alias(alias)]))

    keys = [pcol, "scope_level", "scope_id"]
    out = per_scope(fed, "raw_coal_fed_t", "raw_coal_fed_t").join(
        per_scope(produced, "raw_coal_t", "raw_coal_produced_t"), on=keys, how="full_outer"
    )
    return out.select(
        *keys,
        F.coalesce(F.col("raw_coal_fed_t"), F.lit(0).cast(QTY)).alias("raw_coal_fed_t"),
        "raw_coal_produced_t",
        ratio(F.coalesce(F.col("raw_coal_fed_t"), F.lit(0)), "raw_coal_produced_t", 100.0).alias("raw_coal_washing_rate_pct"),
        F.lit(WASHING_RATE_RULE_VERSION).alias("rule_version"),
    )


def check_washing_feed_vs_production(
    washing: DataFrame, *, plants: DataFrame, production: DataFrame, opening_stock_t: float = 0.0,
    opening_stocks: DataFrame | None = None, tolerance_t: float = 0.0,
) -> DataFrame:
    """Cross-check: cumulative raw coal fed to a mine's plants never exceeds its cumulative production
    plus its opening stock, per mine and day. ``opening_stocks`` (mine_id, opening_stock_t) gives each
    mine's stock; mines not in it (or every mine, without it) get ``opening_stock_t``.

    Columns: date_local, mine_id, cumulative_fed_t, cumulative_produced_t, opening_stock_t, headroom_t
    (= produced + stock - fed), feed_within_production.
    """
    fed = (
        washing.select("plant_id", F.col("prod_date").alias("date_local"), "raw_coal_fed_t")
        .join(plants.select("plant_id", "mine_id"), on="plant_id", how="inner")
        .filter(F.col("mine_id").isNotNull())
        .groupBy("mine_id", "date_local").agg(F.sum("raw_coal_fed_t").alias("fed_t"))
    )
    produced = production.groupBy("mine_id", F.col("shift_date").alias("date_local")).agg(
        F.sum("raw_coal_t").alias("produced_t")
    )
    w = Window.partitionBy("mine_id").orderBy("date_local").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    both = fed.join(produced, on=["mine_id", "date_local"], how="full_outer")
    if opening_stocks is not None:
        both = both.join(opening_stocks.select("mine_id", F.col("opening_stock_t").alias("_stock")), on="mine_id",
                         how="left")
    else:
        both = both.withColumn("_stock", F.lit(None).cast("double"))
    out = both.select(
        "date_local", "mine_id",
        F.sum(F.coalesce(F.col("fed_t"), F.lit(0.0))).over(w).alias("cumulative_fed_t"),
        F.sum(F.coalesce(F.col("produced_t"), F.lit(0.0))).over(w).alias("cumulative_produced_t"),
        F.coalesce(F.col("_stock"), F.lit(float(opening_stock_t))).alias("opening_stock_t"),
    ).withColumn(
        "headroom_t", F.col("cumulative_produced_t") + F.col("opening_stock_t") - F.col("cumulative_fed_t")
    )
    return out.select(
        "date_local", "mine_id", "cumulative_fed_t", "cumulative_produced_t", "opening_stock_t", "headroom_t",
        (F.col("headroom_t") >= F.lit(-tolerance_t)).alias("feed_within_production"),
    )


__all__ = ["washing_daily", "washing_monthly", "washing_rollup", "raw_coal_washing_rate",
           "check_washing_feed_vs_production"]
