"""Rail share of coal and coke hauled beyond 500 km, against the plan's 80 % target.

Rule (parameters in ``rule_parameters.csv``, rule ``rail_share``; every row records the version):

* In scope: shipments of raw coal, clean coal and coke (the plan's "coal and coke") whose total
  distance is beyond ``long_haul_threshold_km`` (500 km; strictly greater unless
  ``long_haul_bound_inclusive`` = 1).
* A shipment counts as rail when rail carries at least ``multimodal_rail_min_km_share`` (0.5) of its
  km. A rail-only haul always counts, a road-only haul never does, and a road -> rail (or belt -> rail)
  haul counts when the long-haul trunk is the rail leg: Ordos first-mile road legs to a rail loading
  station are 20-200 km against 600-1,500 km of rail. A long road haul with a short rail leg does not
  count. A shipment counts whole (its tonnes), never split.
* Tonne-km variant beside it: rail tonne-km / all tonne-km of the in-scope shipments, using each
  leg's own km (no rule needed, and it credits the rail leg of every multimodal haul).
* Day = ``ship_date`` (local date), month = its calendar month. Roll-ups are ratios of sums.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.kpi._common import QTY, month_start, ratio, rollup_scopes, sum_qty, times

RAIL_SHARE_PRODUCTS = ("raw_coal", "clean_coal", "coke")
RAIL_SHARE_TARGET_ID = "T05_RAIL_SHARE_500KM"


def classify_shipments(
    shipments: DataFrame, *, long_haul_threshold_km: float, long_haul_bound_inclusive: float | bool,
    multimodal_rail_min_km_share: float, rule_version: str,
) -> DataFrame:
    """Per shipment: whether it is a long haul in scope and whether it counts as rail.

    Columns: shipment_id, mine_id, product, ship_date, tonnes, distance_km, road_km, rail_km, belt_km,
    rail_km_share, mode_class (rail_only | road_only | belt_only | multimodal), in_scope,
    counted_as_rail, tonne_km, rail_tonne_km, rule_version.
    """
    s = shipments.select("shipment_id", "mine_id", "product", "ship_date", "tonnes", "distance_km", "road_km",
                         "rail_km", "belt_km")
    dist, threshold = F.col("distance_km"), F.lit(float(long_haul_threshold_km))
    beyond = (dist >= threshold) if bool(long_haul_bound_inclusive) else (dist > threshold)
    legs = F.array(*[F.when(F.col(f"{m}_km") > 0, F.lit(m)) for m in ("road", "rail", "belt")])
    n_modes = F.size(F.array_compact(legs))
    mode_class = (
        F.when(n_modes > 1, F.lit("multimodal"))
        .when(F.col("rail_km") > 0, F.lit("rail_only"))
        .when(F.col("road_km") > 0, F.lit("road_only"))
        .when(F.col("belt_km") > 0, F.lit("belt_only"))
    )
    # rail_km >= share x distance_km, compared exactly (no division, no binary rounding of the share)
    rail_enough = F.col("rail_km").cast(QTY) >= times("distance_km", F.lit(str(multimodal_rail_min_km_share)))
    return s.select(
        "shipment_id", "mine_id", "product", "ship_date", "tonnes", "distance_km", "road_km", "rail_km", "belt_km",
        ratio("rail_km", "distance_km").alias("rail_km_share"),
        mode_class.alias("mode_class"),
        (F.col("product").isin(*RAIL_SHARE_PRODUCTS) & beyond).alias("in_scope"),
        ((F.col("rail_km") > 0) & rail_enough).alias("counted_as_rail"),
        (F.col("tonnes") * F.col("distance_km")).alias("tonne_km"),
        (F.col("tonnes") * F.col("rail_km")).alias("rail_tonne_km"),
        F.lit(rule_version).alias("rule_version"),
    )


def rail_share(
    classified: DataFrame, *, mines: DataFrame, targets: DataFrame, period: str = "month",
) -> DataFrame:
    """Rail share per mine, company, banner and city by day (``date_local``) or month (``month_start``).

    Columns: <period>, scope_level, scope_id, long_haul_shipments, long_haul_t, rail_t,
    rail_share_tonnes_pct, long_haul_tonne_km, rail_tonne_km, rail_share_tonne_km_pct,
    target_rail_share_pct, gap_to_target_pct_points (target - share; <= 0 means met), meets_target,
    rule_version, target_version.
    """
    if period not in ("day", "month"):
        raise ValueError("period must be 'day' or 'month'")
    pcol = "date_local" if period == "day" else "month_start"
    c = (
        classified.filter(F.col("in_scope"))
        .select((F.col("ship_date") if period == "day" else month_start("ship_date")).alias(pcol), "shipment_id",
                "mine_id", "tonnes", "counted_as_rail", "tonne_km", "rail_tonne_km", "rule_version")
        .join(mines.select("mine_id", "company_id", "banner"), on="mine_id", how="left")
    )
    aggs = [
        F.count("shipment_id").alias("long_haul_shipments"),
        sum_qty("tonnes").alias("long_haul_t"),
        sum_qty(F.when(F.col("counted_as_rail"), F.col("tonnes")).otherwise(F.lit(0.0))).alias("rail_t"),
        F.sum("tonne_km").alias("long_haul_tonne_km"),
        F.sum("rail_tonne_km").alias("rail_tonne_km"),
        F.array_join(F.array_sort(F.collect_set("rule_version")), "+").alias("rule_version"),
    ]
    per_mine = c.groupBy(pcol, F.lit("mine").alias("scope_level"), F.col("mine_id").alias("scope_id")).agg(*aggs)
    out = per_mine.unionByName(rollup_scopes(c, period_cols=[pcol], aggs=aggs))
    target = targets.filter(F.col("target_id") == RAIL_SHARE_TARGET_ID).select(
        F.col("target_value").alias("_target"), F.col("version").alias("target_version")
    )
    out = out.join(F.broadcast(target), how="cross")
    share = ratio("rail_t", "long_haul_t", 100.0)
    return out.select(
        pcol, "scope_level", "scope_id", "long_haul_shipments", "long_haul_t", "rail_t",
        share.alias("rail_share_tonnes_pct"), "long_haul_tonne_km", "rail_tonne_km",
        ratio("rail_tonne_km", "long_haul_tonne_km", 100.0).alias("rail_share_tonne_km_pct"),
        F.col("_target").cast("double").alias("target_rail_share_pct"),
        (F.col("_target").cast("double") - share).alias("gap_to_target_pct_points"),
        # met when rail_t x 100 >= target x long_haul_t, in exact decimals
        (times("rail_t", F.lit(100)) >= times("long_haul_t", "_target")).alias("meets_target"),
        "rule_version", "target_version",
    )


__all__ = ["classify_shipments", "rail_share", "RAIL_SHARE_PRODUCTS"]
