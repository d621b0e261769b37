"""Target tracking: each target of the Ordos plan (``plan_targets``) with its current value, the target,
the gap and the versions behind both.

Two steps, both pure:

1. :func:`plan_target_values` computes the current value of every measured metric for one month,
   as an exact numerator / denominator pair (``current_value = numerator / denominator x scale``):
   * ``intelligent_mine_share_pct``: mines with production in the month whose ``intelligent_since`` is
     on or before the month's last day / mines with production in the month;
   * ``raw_coal_washing_rate_pct``: the city row of the monthly washing rate; its baseline is the same
     month one year earlier (the plan only says "raise");
   * ``rail_share_over_500km_tonnes_pct``: the city row of the monthly rail share;
   * ``new_underground_mine_capacity_mt_per_yr`` (T02): the smallest capacity (``silver_mines``) of the
     underground mines the mine register says were commissioned in or after ``new_mine_from_year``
     (every new mine meets ">= 3 Mt/yr" exactly when the smallest does); no new mine -> no value;
   * ``advanced_capacity_share_pct`` (T03): capacity of the mines producing in the month that the
     register designates advanced (in force on the month's last day) / capacity of the mines producing
     in the month; a producing mine without a register row counts as not advanced;
   * station counts from the current station dimensions (there is no commissioning date, so the count
     is "now", not "at the end of the month"): in-mine-area vs other charging stations, H2 stations,
     and how many of the four banners the plan names have an in-mine-area H2 station.
2. :func:`target_tracking` lists every target - measured or not - against those values.

Gap convention (``gap_to_target``, in the target's unit; <= 0 means met): ``>=``: target - current;
``<``: current - target; ``increase``: baseline - current. Met / not met is decided on the exact
numerator and denominator, not on the rounded percentage.
"""
from __future__ import annotations

import calendar
import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.kpi._common import EXACT, QTY, collect_versions, in_force, times

# Target T09 names these banners for mine-truck-dedicated hydrogen stations.
MINE_TRUCK_H2_BANNERS = ("Zhungeer", "Yijinhuoluo", "Etuoke", "Etuokeqian")

VALUES_SCHEMA = T.StructType([
    T.StructField("metric", T.StringType(), False),
    T.StructField("month_start", T.DateType(), False),
    T.StructField("numerator", QTY, True),
    T.StructField("denominator", QTY, True),
    T.StructField("scale", T.DoubleType(), False),
    T.StructField("baseline_value", T.DoubleType(), True),
    T.StructField("value_versions", T.StringType(), True),
    T.StructField("value_source", T.StringType(), False),
])


def _value(df: DataFrame, *, metric: str, month: dt.date, numerator, denominator, scale: float, source: str,
           versions=None, baseline=None) -> DataFrame:
    return df.select(
        F.lit(metric).alias("metric"), F.lit(month).alias("month_start"),
        numerator.cast(QTY).alias("numerator"), denominator.cast(QTY).alias("denominator"),
        F.lit(float(scale)).alias("scale"),
        (baseline if baseline is not None else F.lit(None)).cast("double").alias("baseline_value"),
        (versions if versions is not None else F.lit(None)).cast("string").alias("value_versions"),
        F.lit(source).alias("value_source"),
    )


def plan_target_values(
    *, mines: DataFrame, mine_production: DataFrame, washing_rate_monthly: DataFrame, rail_share_monthly: DataFrame,
    charging_stations: DataFrame, h2_stations: DataFrame, month: dt.date, mine_register: DataFrame,
    new_mine_from_year: float, rule_version: str,
) -> DataFrame:
    """Current values of the measured plan metrics for ``month`` (any day of it). ``mine_register``: the
    ``mine_register`` reference table; ``new_mine_from_year`` / ``rule_version``: rule ``plan_targets``.
    Columns: VALUES_SCHEMA."""
    first = month.replace(day=1)
    last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    one = F.lit(1)

    producing = (
        mine_production.filter(F.col("shift_date").between(F.lit(first), F.lit(last)) & (F.col("raw_coal_t") > 0))
        .select("mine_id").distinct()
        .join(mines.select("mine_id", "intelligent_since"), on="mine_id", how="left")
        .agg(F.count(F.lit(1)).alias("n"),
             F.count(F.when(F.col("intelligent_since") <= F.lit(last), one)).alias("smart"))
    )
    intelligent = _value(producing, metric="intelligent_mine_share_pct", month=first, numerator=F.col("smart"),
                         denominator=F.col("n"), scale=100.0, source="silver_mines.intelligent_since, silver_mine_production")

    register = mine_register.filter(in_force(F.lit(last))).select(
        "mine_id", "commissioned_on", "advanced_capacity", F.col("version").alias("_v_register"))
    new_from = dt.date(int(new_mine_from_year), 1, 1)
    new_mines = (
        mines.filter(F.col("mine_type") == "underground").select("mine_id", "capacity_mt_per_yr")
        .join(register, on="mine_id", how="inner")
        .filter(F.col("commissioned_on").between(F.lit(new_from), F.lit(last)))
        .agg(F.min("capacity_mt_per_yr").alias("smallest"), collect_versions("_v_register").alias("_v"))
    )
    new_underground = _value(
        new_mines, metric="new_underground_mine_capacity_mt_per_yr", month=first, numerator=F.col("smallest"),
        denominator=F.when(F.col("smallest").isNotNull(), one), scale=1.0,
        source=f"silver_mines.capacity_mt_per_yr, mine_register.commissioned_on >= {new_from}",
        versions=F.concat_ws("+", F.col("_v"), F.lit(rule_version)))
    capacity = (
        mine_production.filter(F.col("shift_date").between(F.lit(first), F.lit(last)) & (F.col("raw_coal_t") > 0))
        .select("mine_id").distinct()
        .join(mines.select("mine_id", "capacity_mt_per_yr"), on="mine_id", how="left")
        .join(register, on="mine_id", how="left")
        .agg(F.sum("capacity_mt_per_yr").alias("all"),
             F.sum(F.when(F.coalesce(F.col("advanced_capacity"), F.lit(False)), F.col("capacity_mt_per_yr"))
                   .otherwise(F.lit(0.0))).alias("advanced"),
             collect_versions("_v_register").alias("_v"))
    )
    advanced = _value(capacity, metric="advanced_capacity_share_pct", month=first, numerator=F.col("advanced"),
                      denominator=F.col("all"), scale=100.0,
                      source="silver_mines.capacity_mt_per_yr of producing mines, mine_register.advanced_capacity",
                      versions=F.col("_v"))

    prev = first.replace(year=first.year - 1)
    w = washing_rate_monthly.filter(F.col("scope_level") == "city")
    cur = w.filter(F.col("month_start") == F.lit(first))
    base = w.filter(F.col("month_start") == F.lit(prev)).select(
        F.lit(1).alias("_k"), F.col("raw_coal_washing_rate_pct").alias("_base"))
    # left join on a constant: a month without last year's row still reports its current value
    cur = cur.withColumn("_k", F.lit(1)).join(base, on="_k", how="left")
    washing = _value(cur, metric="raw_coal_washing_rate_pct", month=first, numerator=F.col("raw_coal_fed_t"),
                     denominator=F.col("raw_coal_produced_t"), scale=100.0,
                     source="gold raw_coal_washing_rate (city, month)", versions=F.col("rule_version"),
                     baseline=F.col("_base"))

    r = rail_share_monthly.filter((F.col("scope_level") == "city") & (F.col("month_start") == F.lit(first)))
    rail = _value(r, metric="rail_share_over_500km_tonnes_pct", month=first, numerator=F.col("rail_t"),
                  denominator=F.col("long_haul_t"), scale=100.0, source="gold rail_share (city, month)",
                  versions=F.concat_ws("+", F.col("rule_version"), F.col("target_version")))

    in_mine = F.coalesce(F.col("in_mine_area"), F.lit(False))
    cs = charging_stations.agg(F.count(F.when(in_mine, one)).alias("mine_area"), F.count(F.when(~in_mine, one)).alias("city"))
    h2 = h2_stations.agg(
        F.count(one).alias("all"),
        F.countDistinct(F.when(in_mine & F.col("banner").isin(*MINE_TRUCK_H2_BANNERS), F.col("banner"))).alias("banners"),
    )
    counts = [
        _value(cs, metric="charging_stations_in_mine_areas", month=first, numerator=F.col("mine_area"), denominator=one,
               scale=1.0, source="silver_charging_stations (current snapshot)"),
        _value(cs, metric="charging_stations_in_city", month=first, numerator=F.col("city"), denominator=one,
               scale=1.0, source="silver_charging_stations (current snapshot)"),
        _value(h2, metric="h2_stations", month=first, numerator=F.col("all"), denominator=one, scale=1.0,
               source="silver_h2_stations (current snapshot)"),
        _value(h2, metric="banners_with_mine_area_h2_station", month=first, numerator=F.col("banners"), denominator=one,
               scale=1.0, source="silver_h2_stations (current snapshot)"),
    ]
    out = intelligent.unionByName(new_underground).unionByName(advanced).unionByName(washing).unionByName(rail)
    for c in counts:
        out = out.unionByName(c)
    return out.select(*VALUES_SCHEMA.fieldNames())


def target_tracking(targets: DataFrame, *, values: DataFrame, month: dt.date) -> DataFrame:
    """Every plan target with its current value for ``month``, gap and status.

    Columns: month_start, target_id, description, metric, scope, comparator, target_value, unit, target_year,
    current_value, numerator, denominator, baseline_value, gap_to_target, status
    (met | not_met | no_data | no_baseline | not_measured | qualitative), target_version, target_needs_review,
    value_versions, value_source.
    """
    first = month.replace(day=1)
    t = targets.select("target_id", "description", "metric", "scope", "comparator", "target_value", "unit",
                       "target_year", "measured", "version", "needs_review")
    v = values.filter(F.col("month_start") == F.lit(first)).select(
        "metric", "numerator", "denominator", "scale", "baseline_value", "value_versions", "value_source")
    x = t.join(v, on="metric", how="left")
    num, den = F.col("numerator").cast("double"), F.col("denominator").cast("double")
    current = F.when(den > 0, F.try_divide(num, den) * F.col("scale"))
    target = F.col("target_value").cast("double")
    cmp = F.col("comparator")
    gap = (
        F.when(cmp == ">=", target - current)
        .when(cmp == "<", current - target)
        .when(cmp == "increase", F.col("baseline_value") - current)
    )
    scaled_num = times("numerator", F.col("scale")).cast(EXACT)
    target_den = times("denominator", "target_value")
    met = (
        F.when(cmp == ">=", scaled_num >= target_den)
        .when(cmp == "<", scaled_num < target_den)
        .when(cmp == "increase", current > F.col("baseline_value"))
    )
    status = (
        F.when(cmp == "qualitative", F.lit("qualitative"))
        .when(~F.col("measured"), F.lit("not_measured"))
        .when(current.isNull(), F.lit("no_data"))
        .when((cmp == "increase") & F.col("baseline_value").isNull(), F.lit("no_baseline"))
        .when(met, F.lit("met"))
        .otherwise(F.lit("not_met"))
    )
    return x.select(
        F.lit(first).alias("month_start"), "target_id", "description", "metric", "scope", "comparator",
        target.alias("target_value"), "unit", "target_year", current.alias("current_value"), "numerator", "denominator",
        "baseline_value", gap.alias("gap_to_target"), status.alias("status"), F.col("version").alias("target_version"),
        F.col("needs_review").alias("target_needs_review"), "value_versions", "value_source",
    )
