"""Mine energy per tonne of raw coal: electricity kWh/t and comprehensive energy kgce/t, graded by level.

* Day = the mine's shift-day (``shift_date`` of silver_mine_production; a mine's day often runs
  08:00 -> 08:00 local), so a night shift stays in the day it belongs to.
* Comprehensive energy (kgce) = electricity kWh x electricity factor (one declared basis)
  + diesel kg x diesel factor + other energy already in kgce. An empty diesel / other energy field
  counts as 0 (the landing contract: empty = none reported).
* Grade: the standard in force on the graded date for the mine type (``mine_energy_limits``): the
  shift-day for daily rows, the first day of the month for monthly rows. Graded only on the
  equivalent electricity basis (the basis of the limits); correction factors k1..k5 are not applied.
* Roll-ups to company / banner / city are ratios of sums; they carry no grade (a company mixes mine
  types) but count the graded mines per level.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.kpi._common import (
    EXACT, GRADES, check_basis, collect_versions, electricity_factor, grade, month_start, ratio,
    rollup_scopes, sum_exact, sum_qty, times, versions_label, with_factor,
)

GRADED_BASIS = "equivalent"

_SUMS = ("raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce", "energy_kgce")
_GRADE_COLS = (
    "standard", "standard_clause", "level_1_max_kgce_per_t", "level_2_max_kgce_per_t", "level_3_max_kgce_per_t",
    "limits_version", "limits_need_review", "level", "grade",
)


def _with_ratios(df: DataFrame) -> DataFrame:
    return df.withColumn("electricity_kwh_per_t", ratio("electricity_kwh", "raw_coal_t")).withColumn(
        "energy_kgce_per_t", ratio("energy_kgce", "raw_coal_t")
    )


def _graded(df: DataFrame, limits: DataFrame, *, date_col: str) -> DataFrame:
    out = grade(
        df, limits, type_col="mine_type", limit_type_col="mine_type", limit_value_col="max_kgce_per_t",
        date_col=date_col, numerator_col="energy_kgce", denominator_col="raw_coal_t", unit="kgce_per_t",
    )
    return out.withColumn(
        "grade", F.when(F.col("electricity_basis") != GRADED_BASIS, F.lit("not_graded_basis")).otherwise(F.col("grade"))
    ).withColumn("level", F.when(F.col("electricity_basis") == GRADED_BASIS, F.col("level")))


def mine_energy_daily(
    production: DataFrame, *, mines: DataFrame, factors: DataFrame, limits: DataFrame,
    electricity_basis: str = "equivalent",
) -> DataFrame:
    """Per mine and shift-day: raw coal t, energy (kWh, kg diesel, kgce), kWh/t, kgce/t and grade.

    Columns: shift_date, mine_id, company_id, banner, mine_type, shifts, raw_coal_t, electricity_kwh,
    diesel_kg, other_energy_kgce, energy_kgce, electricity_kwh_per_t, energy_kgce_per_t, graded_date,
    standard, standard_clause, level_{1,2,3}_max_kgce_per_t, limits_version, limits_need_review, level,
    grade, electricity_basis, factor_version.
    """
    check_basis(electricity_basis)
    p = production.select("mine_id", "shift_date", "raw_coal_t", "electricity_kwh", "diesel_kg", "other_energy_kgce")
    m = mines.select("mine_id", "company_id", "banner", "mine_type")
    day = (
        p.groupBy("mine_id", "shift_date").agg(
            F.count(F.lit(1)).alias("shifts"),
            sum_qty("raw_coal_t").alias("raw_coal_t"),
            sum_qty("electricity_kwh").alias("electricity_kwh"),
            sum_qty(F.coalesce(F.col("diesel_kg"), F.lit(0.0))).alias("diesel_kg"),
            sum_qty(F.coalesce(F.col("other_energy_kgce"), F.lit(0.0))).alias("other_energy_kgce"),
        )
        .join(m, on="mine_id", how="left")
    )
    day = electricity_factor(day, factors, electricity_basis=electricity_basis, date_col="shift_date")
    day = with_factor(day, factors, carrier="diesel", basis="equivalent", date_col="shift_date",
                      factor_col="diesel_kgce_per_kg", version_col="_v_diesel")
    day = day.withColumn(
        "energy_kgce",
        (times("electricity_kwh", "electricity_kgce_per_kwh") + times("diesel_kg", "diesel_kgce_per_kg")
         + F.col("other_energy_kgce").cast(EXACT)).cast(EXACT),
    ).withColumn("electricity_basis", F.lit(electricity_basis)).withColumn(
        "factor_version", versions_label("_v_electricity", "_v_diesel")
    ).withColumn("graded_date", F.col("shift_date"))
    day = _graded(_with_ratios(day), limits, date_col="graded_date")
    return day.select(
        "shift_date", "mine_id", "company_id", "banner", "mine_type", "shifts", *_SUMS,
        "electricity_kwh_per_t", "energy_kgce_per_t", "graded_date", *_GRADE_COLS, "electricity_basis", "factor_version",
    )


def mine_energy_monthly(daily: DataFrame, *, limits: DataFrame) -> DataFrame:
    """Per mine and month (of the shift-day): sums of the daily rows, ratios of sums, graded on the
    standard in force on the first day of the month.

    Columns: month_start, mine_id, company_id, banner, mine_type, days, shifts, <sums>, the two ratios,
    graded_date, <grade columns>, electricity_basis, factor_version.
    """
    d = daily.select("shift_date", "mine_id", "company_id", "banner", "mine_type", "shifts", *_SUMS,
                     "electricity_basis", "factor_version")
    month = d.groupBy(month_start("shift_date").alias("month_start"), "mine_id", "company_id", "banner",
                      "mine_type", "electricity_basis").agg(
        F.count(F.lit(1)).alias("days"), F.sum("shifts").cast("long").alias("shifts"),
        *[sum_qty(c).alias(c) for c in _SUMS if c != "energy_kgce"], sum_exact("energy_kgce").alias("energy_kgce"),
        collect_versions("factor_version").alias("factor_version"),
    ).withColumn("graded_date", F.col("month_start"))
    month = _graded(_with_ratios(month), limits, date_col="graded_date")
    return month.select(
        "month_start", "mine_id", "company_id", "banner", "mine_type", "days", "shifts", *_SUMS,
        "electricity_kwh_per_t", "energy_kgce_per_t", "graded_date", *_GRADE_COLS, "electricity_basis", "factor_version",
    )


def mine_energy_rollup(per_mine: DataFrame, *, period_col: str) -> DataFrame:
    """Company / banner / city roll-up of daily (``period_col='shift_date'``) or monthly
    (``'month_start'``) mine rows: ratio of sums, never a mean of mine ratios.

    Columns: <period_col>, scope_level, scope_id, mines, mines_graded, mines_level_1, mines_level_2,
    mines_level_3, mines_above_limit, raw_coal_t, electricity_kwh, diesel_kg, other_energy_kgce,
    energy_kgce, electricity_kwh_per_t, energy_kgce_per_t, electricity_basis, factor_version, limits_version.
    """
    d = per_mine.select(period_col, "mine_id", "company_id", "banner", *_SUMS, "grade", "electricity_basis",
                        "factor_version", "limits_version")

    def n_grade(g: str):
        return F.count(F.when(F.col("grade") == g, F.col("mine_id"))).alias(f"mines_{g}")

    out = rollup_scopes(
        d, period_cols=[period_col, "electricity_basis"],
        aggs=[
            F.countDistinct("mine_id").alias("mines"),
            F.count(F.when(F.col("grade").isin(*GRADES), F.col("mine_id"))).alias("mines_graded"),
            n_grade("level_1"), n_grade("level_2"), n_grade("level_3"), n_grade("above_limit"),
            *[sum_qty(c).alias(c) for c in _SUMS if c != "energy_kgce"], sum_exact("energy_kgce").alias("energy_kgce"),
            collect_versions("factor_version").alias("factor_version"),
            collect_versions("limits_version").alias("limits_version"),
        ],
    )
    return _with_ratios(out).select(
        period_col, "scope_level", "scope_id", "mines", "mines_graded", "mines_level_1", "mines_level_2",
        "mines_level_3", "mines_above_limit", *_SUMS, "electricity_kwh_per_t", "energy_kgce_per_t",
        "electricity_basis", "factor_version", "limits_version",
    )


__all__ = ["mine_energy_daily", "mine_energy_monthly", "mine_energy_rollup"]
