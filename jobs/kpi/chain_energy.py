"""Chain energy per delivered tonne: mining + washing + road haulage (+ rail where a factor is known),
in kgce per tonne of product, traceable per shipment.

Per shipment (mine m, month M of ``ship_date``), every component is a per-tonne figure of the product:

* raw coal per tonne of product: 1 for raw coal; for clean coal, raw coal fed / (clean coal +
  middlings) of m's plants in M (mass allocation over the saleable products; gangue and slime are
  waste). Coke is not covered (no coking-plant data): its chain is null.
* mining  = mine m's comprehensive energy kgce/t of M (gold mine energy, same electricity basis)
  x raw coal per tonne of product;
* washing = (electricity of m's plants in M x electricity factor) / raw coal fed x raw coal per tonne
  of product - clean coal only;
* road    = m's haulage intensity of M (kgce per tonne-km of its trucks) x the shipment's road km;
* rail    = rail freight factor (kgce/tkm, ``conversion_factors`` carrier ``rail_freight``, looked up on
  the run's electricity basis) x rail km; without a factor in force the component is missing, never zero;
* belt legs have no energy source: a shipment with belt km lists ``belt`` as missing.

``chain_kgce_per_t`` sums the known components; ``chain_complete`` says whether all applicable ones
were known and ``missing_components`` names the others. One electricity basis per run, recorded.

Battery side and grid side: the road component above is the battery side (energy out of the truck's
pack). The grid side (``*_grid_*``) counts what the mine buys for the same haulage: a battery-electric
truck-month's charging-session kWh (charging losses included) instead of its battery net kWh; fuel
cell and diesel trucks are the same on both sides. A battery-electric truck-month with a suspected
battery swap (packs charged off the truck, not in the sessions) or without session energy has no
known grid figure, and a mine-month with such a truck has no grid-side haulage.

Roll-ups never average complete and incomplete chains: complete chains (``complete_chain_*``) and
incomplete ones with their known components only (``incomplete_chain_known_*``) are separate columns,
and shipments without a chain value are counted as ``no_chain_tonnes``.

Haulage intensity per mine and month: each truck-month's energy (BEV: battery net kWh x electricity
factor; FCEV: H2 kg x hydrogen factor - the buffer battery is charged by the fuel cell, so it is not
added; diesel: L x density x diesel factor) is attributed to the mines of its trips by tonne-km share
(by tonnes when no trip has a distance). Trips without telematics bring tonnes but no energy: they
are ``delivered_t`` but not ``traced_t``.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.kpi._common import (
    check_basis, collect_versions, electricity_factor, month_start, ratio, rollup_scopes, versions_label,
    with_factor,
)

_UNBOUNDED = (Window.unboundedPreceding, Window.unboundedFollowing)
COVERED_PRODUCTS = ("raw_coal", "clean_coal")


def dbl(c: str):
    """Haulage and chain figures are not graded against a standard: doubles suffice."""
    return F.col(c).cast("double")


def haulage_energy_by_mine(
    truck_daily: DataFrame, *, trips: DataFrame, factors: DataFrame, electricity_basis: str = "equivalent",
) -> DataFrame:
    """Road haulage energy per mine and month, attributed from truck-months by tonne-km share.

    Columns: month_start, mine_id, delivered_t, traced_t, tonne_km, haulage_kgce, haulage_kgce_per_t,
    haulage_kgce_per_tkm, haulage_grid_kgce, haulage_grid_kgce_per_t, haulage_grid_kgce_per_tkm,
    electricity_basis, factor_version, rule_version.
    """
    check_basis(electricity_basis)
    d = truck_daily.select("date_local", "vin", "powertrain", "battery_net_kwh", "grid_kwh", "suspected_swaps",
                           "h2_used_kg", "diesel_l", "rule_version")
    tm = d.groupBy(month_start("date_local").alias("month_start"), "vin", "powertrain").agg(
        F.sum("battery_net_kwh").alias("battery_net_kwh"), F.sum("grid_kwh").alias("grid_kwh"),
        F.sum("suspected_swaps").alias("suspected_swaps"), F.sum("h2_used_kg").alias("h2_used_kg"),
        F.sum("diesel_l").alias("diesel_l"), collect_versions("rule_version").alias("rule_version"),
    )
    tm = electricity_factor(tm, factors, electricity_basis=electricity_basis, date_col="month_start")
    for carrier, basis, fcol in (("hydrogen", "equivalent", "h2_kgce_per_kg"), ("diesel", "equivalent", "diesel_kgce_per_kg"),
                                 ("diesel_density", "physical", "diesel_kg_per_l")):
        tm = with_factor(tm, factors, carrier=carrier, basis=basis, date_col="month_start", factor_col=fcol,
                         version_col=f"_v_{fcol}")
    fuel = (
        F.when(F.col("powertrain") == "FCEV", dbl("h2_used_kg") * dbl("h2_kgce_per_kg"))
        .when(F.col("powertrain") == "DIESEL", dbl("diesel_l") * dbl("diesel_kg_per_l") * dbl("diesel_kgce_per_kg"))
    )
    bev = F.col("powertrain") == "BEV"
    energy = F.when(bev, dbl("battery_net_kwh") * dbl("electricity_kgce_per_kwh")).otherwise(fuel)
    grid_known = (F.coalesce(F.col("suspected_swaps"), F.lit(0)) == 0) & (F.col("grid_kwh") > 0)
    grid = F.when(bev, F.when(grid_known, dbl("grid_kwh") * dbl("electricity_kgce_per_kwh"))).otherwise(fuel)
    tm = tm.select("month_start", "vin", energy.alias("truck_kgce"), grid.alias("truck_grid_kgce"), "rule_version",
                   versions_label("_v_electricity", "_v_h2_kgce_per_kg", "_v_diesel_kgce_per_kg",
                                  "_v_diesel_kg_per_l").alias("factor_version"))

    tr = trips.select(month_start("date_local").alias("month_start"), "vin", "mine_id", "net_t", "tonne_km")
    truck_month = Window.partitionBy("month_start", "vin").orderBy("mine_id").rowsBetween(*_UNBOUNDED)
    traced = tr.filter(F.col("tonne_km").isNotNull())
    traced = traced.withColumn("_tkm_total", F.sum("tonne_km").over(truck_month)).withColumn(
        "_t_total", F.sum("net_t").over(truck_month))
    share = F.when(F.col("_tkm_total") > 0, ratio("tonne_km", "_tkm_total")).otherwise(ratio("net_t", "_t_total"))
    attributed = traced.join(tm, on=["month_start", "vin"], how="left").withColumn(
        "trip_kgce", F.col("truck_kgce") * share).withColumn("trip_grid_kgce", F.col("truck_grid_kgce") * share)
    per_mine = attributed.groupBy("month_start", "mine_id").agg(
        F.sum("net_t").alias("traced_t"), F.sum("tonne_km").alias("tonne_km"), F.sum("trip_kgce").alias("haulage_kgce"),
        # one trip of a truck without a known grid figure leaves the mine's grid side unknown, not lower
        F.when(F.count(F.when(F.col("trip_grid_kgce").isNull(), 1)) == 0, F.sum("trip_grid_kgce")).alias("haulage_grid_kgce"),
        collect_versions("factor_version").alias("factor_version"), collect_versions("rule_version").alias("rule_version"),
    )
    delivered = tr.groupBy("month_start", "mine_id").agg(F.sum("net_t").alias("delivered_t"))
    out = delivered.join(per_mine, on=["month_start", "mine_id"], how="left")
    return out.select(
        "month_start", "mine_id", "delivered_t", F.coalesce("traced_t", F.lit(0.0)).alias("traced_t"), "tonne_km",
        "haulage_kgce", ratio("haulage_kgce", "traced_t").alias("haulage_kgce_per_t"),
        ratio("haulage_kgce", "tonne_km").alias("haulage_kgce_per_tkm"), "haulage_grid_kgce",
        ratio("haulage_grid_kgce", "traced_t").alias("haulage_grid_kgce_per_t"),
        ratio("haulage_grid_kgce", "tonne_km").alias("haulage_grid_kgce_per_tkm"),
        F.lit(electricity_basis).alias("electricity_basis"), "factor_version", "rule_version",
    )


def chain_energy_per_shipment(
    shipments: DataFrame, *, mine_energy_monthly: DataFrame, washing_monthly: DataFrame, haulage_by_mine: DataFrame,
    factors: DataFrame, electricity_basis: str = "equivalent",
) -> DataFrame:
    """Per shipment: the chain components in kgce per tonne of product and their sum.

    Columns: shipment_id, mine_id, product, ship_date, month_start, tonnes, road_km, rail_km, belt_km,
    raw_coal_per_product_t, mining_kgce_per_t, washing_kgce_per_t, road_haulage_kgce_per_t,
    rail_kgce_per_t, chain_kgce_per_t, chain_kgce, chain_complete, missing_components,
    road_haulage_grid_kgce_per_t, chain_grid_kgce_per_t (null while the grid side of the road leg is
    unknown), chain_grid_kgce, electricity_basis, factor_version, rule_version.
    """
    check_basis(electricity_basis)
    s = shipments.select("shipment_id", "mine_id", "product", "ship_date", month_start("ship_date").alias("month_start"),
                         "tonnes", "road_km", "rail_km", "belt_km")
    keys = ["month_start", "mine_id"]
    mine = mine_energy_monthly.filter(F.col("electricity_basis") == electricity_basis).select(
        *keys, F.col("energy_kgce_per_t").alias("mine_kgce_per_t_raw"), F.col("factor_version").alias("_v_mine"))
    wm = washing_monthly.filter(F.col("mine_id").isNotNull()).select(
        *keys, "raw_coal_fed_t", "clean_coal_t", "middlings_t", "electricity_kwh")
    wash = wm.groupBy(*keys).agg(
        F.sum("raw_coal_fed_t").cast("double").alias("fed_t"),
        F.sum(F.col("clean_coal_t") + F.coalesce(F.col("middlings_t"), F.lit(0))).cast("double").alias("saleable_t"),
        F.sum("electricity_kwh").cast("double").alias("wash_kwh"),
    )
    wash = electricity_factor(wash, factors, electricity_basis=electricity_basis, date_col="month_start",
                              factor_col="_e_factor", version_col="_v_wash")
    wash = wash.select(*keys, ratio("fed_t", "saleable_t").alias("_raw_per_clean_t"),
                       ratio(F.col("wash_kwh") * F.col("_e_factor").cast("double"), "fed_t").alias("_wash_kgce_per_t_fed"),
                       "_v_wash")
    haul = haulage_by_mine.filter(F.col("electricity_basis") == electricity_basis).select(
        *keys, "haulage_kgce_per_tkm", "haulage_grid_kgce_per_tkm", F.col("factor_version").alias("_v_haul"),
        F.col("rule_version").alias("_r_haul"))
    x = (s.join(mine, on=keys, how="left").join(wash, on=keys, how="left").join(haul, on=keys, how="left"))
    # the rail factor of the run's basis: a factor on the other electricity basis is never mixed in
    x = with_factor(x, factors, carrier="rail_freight", basis=electricity_basis, date_col="month_start",
                    factor_col="_rail_kgce_per_tkm", version_col="_v_rail")

    clean = F.col("product") == "clean_coal"
    raw_per_product = F.when(F.col("product") == "raw_coal", F.lit(1.0)).when(clean, F.col("_raw_per_clean_t"))
    mining = F.col("mine_kgce_per_t_raw") * raw_per_product
    washing = F.when(clean, F.col("_wash_kgce_per_t_fed") * raw_per_product).when(F.col("product") == "raw_coal", F.lit(0.0))
    road = F.when(F.col("road_km") <= 0, F.lit(0.0)).otherwise(F.col("haulage_kgce_per_tkm") * F.col("road_km"))
    road_grid = F.when(F.col("road_km") <= 0, F.lit(0.0)).otherwise(F.col("haulage_grid_kgce_per_tkm") * F.col("road_km"))
    rail = F.when(F.col("rail_km") <= 0, F.lit(0.0)).otherwise(F.col("_rail_kgce_per_tkm").cast("double") * F.col("rail_km"))
    belt = F.when(F.col("belt_km") <= 0, F.lit(0.0))          # no belt energy source: missing when used
    x = x.select("*", raw_per_product.alias("raw_coal_per_product_t"), mining.alias("mining_kgce_per_t"),
                 washing.alias("washing_kgce_per_t"), road.alias("road_haulage_kgce_per_t"),
                 rail.alias("rail_kgce_per_t"), belt.alias("_belt"), road_grid.alias("road_haulage_grid_kgce_per_t"))
    parts = {"mining": "mining_kgce_per_t", "washing": "washing_kgce_per_t", "road": "road_haulage_kgce_per_t",
             "rail": "rail_kgce_per_t", "belt": "_belt"}
    covered = F.col("product").isin(*COVERED_PRODUCTS)
    missing = F.array_compact(F.array(*[F.when(F.col(c).isNull(), F.lit(name)) for name, c in parts.items()]))
    known_sum = sum((F.coalesce(F.col(c), F.lit(0.0)) for c in parts.values()), F.lit(0.0))
    chain = F.when(covered & F.col("mining_kgce_per_t").isNotNull(), known_sum)
    # grid side: the same known components with the road leg's grid figure; unknown while that is unknown
    # (a road leg whose battery side is missing stays missing on the grid side too)
    chain_grid = F.when(F.col("road_haulage_kgce_per_t").isNull(), chain).when(
        F.col("road_haulage_grid_kgce_per_t").isNotNull(),
        chain - F.col("road_haulage_kgce_per_t") + F.col("road_haulage_grid_kgce_per_t"))
    return x.select(
        "shipment_id", "mine_id", "product", "ship_date", "month_start", "tonnes", "road_km", "rail_km", "belt_km",
        "raw_coal_per_product_t", "mining_kgce_per_t", "washing_kgce_per_t", "road_haulage_kgce_per_t",
        "rail_kgce_per_t", chain.alias("chain_kgce_per_t"), (chain * F.col("tonnes")).alias("chain_kgce"),
        (covered & (F.size(missing) == 0)).alias("chain_complete"),
        F.when(covered, F.array_join(missing, ",")).otherwise(F.lit("product_not_covered")).alias("missing_components"),
        "road_haulage_grid_kgce_per_t", chain_grid.alias("chain_grid_kgce_per_t"),
        (chain_grid * F.col("tonnes")).alias("chain_grid_kgce"), F.lit(electricity_basis).alias("electricity_basis"),
        versions_label("_v_mine", "_v_wash", "_v_haul", F.when(F.col("rail_km") > 0, F.col("_v_rail"))).alias("factor_version"),
        F.col("_r_haul").alias("rule_version"),
    )


def chain_energy_rollup(per_shipment: DataFrame, *, mines: DataFrame, period: str = "month") -> DataFrame:
    """Per mine, company, banner and city by day (``date_local``) or month (``month_start``), complete and
    incomplete chains apart - never one mean of both.

    Columns: <period>, scope_level, scope_id, shipments, tonnes,
    complete_tonnes, complete_chain_kgce, complete_chain_kgce_per_t (complete chains only),
    complete_grid_tonnes, complete_chain_grid_kgce, complete_chain_grid_kgce_per_t (complete chains whose
    grid side is known), incomplete_chain_tonnes, incomplete_chain_known_kgce,
    incomplete_chain_known_kgce_per_t (a lower bound: known components only), incomplete_missing_components,
    no_chain_tonnes (no chain value: product not covered or no mine energy), complete_share_pct,
    electricity_basis, factor_version.
    """
    if period not in ("day", "month"):
        raise ValueError("period must be 'day' or 'month'")
    pcol = "date_local" if period == "day" else "month_start"
    p = per_shipment.select(
        (F.col("ship_date") if period == "day" else F.col("month_start")).alias(pcol), "shipment_id", "mine_id", "tonnes",
        "chain_kgce", "chain_grid_kgce", "chain_complete", "missing_components", "electricity_basis", "factor_version",
    ).join(mines.select("mine_id", "company_id", "banner"), on="mine_id", how="left")
    complete = F.col("chain_complete")
    incomplete = F.col("chain_kgce").isNotNull() & ~complete
    complete_grid = complete & F.col("chain_grid_kgce").isNotNull()

    missing_of_incomplete = F.array_join(F.array_sort(F.array_distinct(F.flatten(F.collect_list(
        F.when(incomplete, F.split(F.col("missing_components"), ",")))))), ",")

    def tonnes_if(cond):
        return F.sum(F.when(cond, F.col("tonnes")).otherwise(F.lit(0.0)))

    aggs = [
        F.count("shipment_id").alias("shipments"), F.sum("tonnes").alias("tonnes"),
        tonnes_if(complete).alias("complete_tonnes"), F.sum(F.when(complete, F.col("chain_kgce"))).alias("complete_chain_kgce"),
        tonnes_if(complete_grid).alias("complete_grid_tonnes"),
        F.sum(F.when(complete_grid, F.col("chain_grid_kgce"))).alias("complete_chain_grid_kgce"),
        tonnes_if(incomplete).alias("incomplete_chain_tonnes"),
        F.sum(F.when(incomplete, F.col("chain_kgce"))).alias("incomplete_chain_known_kgce"),
        missing_of_incomplete.alias("incomplete_missing_components"),
        tonnes_if(F.col("chain_kgce").isNull()).alias("no_chain_tonnes"),
        collect_versions("factor_version").alias("factor_version"),
    ]
    per_mine = p.groupBy(pcol, "electricity_basis", F.lit("mine").alias("scope_level"),
                         F.col("mine_id").alias("scope_id")).agg(*aggs)
    out = per_mine.unionByName(rollup_scopes(p, period_cols=[pcol, "electricity_basis"], aggs=aggs))
    return out.select(
        pcol, "scope_level", "scope_id", "shipments", "tonnes",
        "complete_tonnes", "complete_chain_kgce", ratio("complete_chain_kgce", "complete_tonnes").alias("complete_chain_kgce_per_t"),
        "complete_grid_tonnes", "complete_chain_grid_kgce",
        ratio("complete_chain_grid_kgce", "complete_grid_tonnes").alias("complete_chain_grid_kgce_per_t"),
        "incomplete_chain_tonnes", "incomplete_chain_known_kgce",
        ratio("incomplete_chain_known_kgce", "incomplete_chain_tonnes").alias("incomplete_chain_known_kgce_per_t"),
        F.when(F.col("incomplete_chain_tonnes") > 0, F.col("incomplete_missing_components")).alias(
            "incomplete_missing_components"),
        "no_chain_tonnes", ratio("complete_tonnes", "tonnes", 100.0).alias("complete_share_pct"),
        "electricity_basis", "factor_version",
    )
