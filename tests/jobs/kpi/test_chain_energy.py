"""Chain energy per delivered tonne: haulage attribution to mines, per-shipment components (mining,
washing, road, rail), missing components named, roll-ups as ratio of sums."""
from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.kpi.chain_energy import chain_energy_per_shipment, chain_energy_rollup, haulage_energy_by_mine
from tests.jobs.kpi.helpers import by, d, reference, silver

OCT = d("2026-10-01")
MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer"},
    {"mine_id": "M2", "company_id": "C1", "mine_type": "open_pit", "banner": "Zhungeer"},
    {"mine_id": "M3", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke"},
]


def test_haulage_attributed_to_mines_by_tonne_km(spark):
    # October. V1 (BEV): 600 + 400 = 1,000 kWh x 0.1229 = 122.9 kgce; trips M1 400 tkm, M2 600 tkm
    #   -> M1 122.9 x 0.4 = 49.16, M2 122.9 x 0.6 = 73.74 kgce.
    # V2 (FCEV): 100 kg H2 x 4.0945 = 409.45 kgce (its 50 kWh buffer-battery net is not added); trip M1 300 tkm.
    # V6 (diesel): 100 L x 0.84 kg/L x 1.4571 = 122.3964 kgce; trip M2 350 tkm.
    # T5: M1, 38 t, no telematics -> delivered, not traced.
    # M1: 49.16 + 409.45 = 458.61 kgce; traced 40 + 30 = 70 t; 400 + 300 = 700 tkm
    #     -> 6.5516 kgce/t, 0.655157 kgce/tkm; delivered 108 t.
    # M2: 73.74 + 122.3964 = 196.1364 kgce over 40 + 35 = 75 t and 950 tkm.
    # Grid side: V1 drew 660 + 440 = 1,100 kWh from the grid (10 % more than the 1,000 kWh net out of its
    #   pack) -> 1,100 x 0.1229 = 135.19 kgce: M1 x 0.4 = 54.076, M2 x 0.6 = 81.114; H2 and diesel are the same
    #   on both sides -> M1 54.076 + 409.45 = 463.526 kgce (/ 700 tkm = 0.662180), M2 81.114 + 122.3964 = 203.5104.
    # V7 (BEV, M3) swapped its battery: its packs were charged off the truck -> M3 grid side unknown (null),
    #   battery side 200 kWh x 0.1229 = 24.58 kgce.
    schema = ("date_local date, vin string, powertrain string, battery_net_kwh double, grid_kwh double, "
              "suspected_swaps bigint, h2_used_kg double, diesel_l double, rule_version string")
    daily = spark.createDataFrame([
        (d("2026-10-05"), "V1", "BEV", 600.0, 660.0, 0, 0.0, 0.0, "rules_v2026.1"),
        (d("2026-10-06"), "V1", "BEV", 400.0, 440.0, 0, 0.0, 0.0, "rules_v2026.1"),
        (d("2026-10-05"), "V2", "FCEV", 50.0, 0.0, 0, 100.0, 0.0, "rules_v2026.1"),
        (d("2026-10-07"), "V6", "DIESEL", 0.0, 0.0, 0, 0.0, 100.0, "rules_v2026.1"),
        (d("2026-10-09"), "V7", "BEV", 200.0, 0.0, 1, 0.0, 0.0, "rules_v2026.1"),
    ], schema)
    trips = spark.createDataFrame([
        ("T1", "V1", "M1", d("2026-10-05"), 40.0, 400.0), ("T2", "V1", "M2", d("2026-10-06"), 40.0, 600.0),
        ("T3", "V2", "M1", d("2026-10-05"), 30.0, 300.0), ("T4", "V6", "M2", d("2026-10-07"), 35.0, 350.0),
        ("T5", "V9", "M1", d("2026-10-08"), 38.0, None), ("T6", "V7", "M3", d("2026-10-09"), 40.0, 200.0),
    ], "ticket_id string, vin string, mine_id string, date_local date, net_t double, tonne_km double")
    h = by(haulage_energy_by_mine(daily, trips=trips, factors=reference(spark, "conversion_factors")).collect(), "mine_id")
    m1, m2, m3 = h["M1"], h["M2"], h["M3"]
    assert m1.haulage_kgce == pytest.approx(458.61) and m1.traced_t == 70.0 and m1.delivered_t == 108.0
    assert m1.haulage_kgce_per_t == pytest.approx(458.61 / 70) and m1.haulage_kgce_per_tkm == pytest.approx(458.61 / 700)
    assert m2.haulage_kgce == pytest.approx(196.1364) and m2.haulage_kgce_per_tkm == pytest.approx(196.1364 / 950)
    assert m1.factor_version == "factors_v2026.1" and m1.rule_version == "rules_v2026.1" and m1.month_start == OCT
    assert m1.haulage_grid_kgce == pytest.approx(463.526) and m1.haulage_grid_kgce_per_tkm == pytest.approx(463.526 / 700)
    assert m2.haulage_grid_kgce == pytest.approx(203.5104) and m2.haulage_grid_kgce_per_t == pytest.approx(203.5104 / 75)
    assert m3.haulage_kgce == pytest.approx(24.58) and m3.haulage_grid_kgce is None and m3.haulage_grid_kgce_per_tkm is None


def ship(sid, mine, product, tonnes, road=0.0, rail=0.0, belt=0.0):
    return {"shipment_id": sid, "mine_id": mine, "product": product, "tonnes": tonnes, "ship_date": d("2026-10-12"),
            "distance_km": road + rail + belt, "legs": "x", "road_km": road, "rail_km": rail, "belt_km": belt,
            "mode_pattern": "x", "event_date_local": d("2026-10-12")}


SHIPMENTS = [
    ship("S1", "M1", "raw_coal", 1000.0, road=50.0),
    ship("S2", "M1", "clean_coal", 800.0, road=30.0, rail=900.0),
    ship("S3", "M1", "coke", 100.0, rail=800.0),
    ship("S4", "M2", "raw_coal", 500.0, belt=5.0, rail=700.0),
    ship("S5", "M3", "raw_coal", 200.0, road=20.0),
]


@pytest.fixture(scope="module")
def inputs(spark):
    mine_monthly = spark.createDataFrame(
        [(OCT, "M1", 5.0, "equivalent", "factors_v2026.1"), (OCT, "M2", 3.0, "equivalent", "factors_v2026.1"),
         (OCT, "M1", 9.9, "equal_value", "factors_v2026.1")],
        "month_start date, mine_id string, energy_kgce_per_t double, electricity_basis string, factor_version string")
    washing_monthly = spark.createDataFrame(
        [(OCT, "M1", Decimal("10000"), Decimal("7000"), Decimal("1000"), Decimal("20000"))],
        "month_start date, mine_id string, raw_coal_fed_t decimal(22,6), clean_coal_t decimal(22,6), "
        "middlings_t decimal(22,6), electricity_kwh decimal(22,6)")
    # grid side of M1's haulage 0.0055 kgce/tkm (10 % above the battery side); M3's grid side unknown
    haulage = spark.createDataFrame(
        [(OCT, "M1", 0.005, 0.0055, "equivalent", "factors_v2026.1", "rules_v2026.1"),
         (OCT, "M3", 0.006, None, "equivalent", "factors_v2026.1", "rules_v2026.1")],
        "month_start date, mine_id string, haulage_kgce_per_tkm double, haulage_grid_kgce_per_tkm double, "
        "electricity_basis string, factor_version string, rule_version string")
    return {"shipments": silver(spark, "shipments", SHIPMENTS), "mine": mine_monthly, "washing": washing_monthly,
            "haulage": haulage}


def chain(spark, inputs, factors):
    return chain_energy_per_shipment(inputs["shipments"], mine_energy_monthly=inputs["mine"],
                                     washing_monthly=inputs["washing"], haulage_by_mine=inputs["haulage"], factors=factors)


@pytest.fixture(scope="module")
def with_rail(spark, inputs):
    # The checked-in factors plus a rail factor of 0.004 kgce/tkm (test value, not a sourced figure).
    factors = reference(spark, "conversion_factors").filter("carrier != 'rail_freight'").unionByName(
        reference(spark, "conversion_factors", [{"carrier": "rail_freight", "factor": 0.004, "unit": "kgce/tkm",
                                                 "basis": "equivalent", "version": "test_rail"}]))
    df = chain(spark, inputs, factors)
    rows = df.collect()
    return rows, spark.createDataFrame(rows, df.schema)


def test_shipment_components(with_rail):
    # S1 raw coal, 1,000 t, road 50 km: mining 5.0 x 1 + road 0.005 x 50 = 0.25 -> 5.25 kgce/t, complete.
    # S2 clean coal: raw per clean t = 10,000 fed / (7,000 clean + 1,000 middlings) = 1.25
    #   mining  5.0 x 1.25 = 6.25
    #   washing 20,000 kWh x 0.1229 / 10,000 t = 0.2458 kgce/t fed x 1.25 = 0.30725
    #   road 0.005 x 30 = 0.15; rail 0.004 x 900 = 3.6 -> 10.30725 kgce/t; x 800 t = 8,245.8 kgce
    r = by(with_rail[0], "shipment_id")
    assert r["S1"].chain_kgce_per_t == pytest.approx(5.25) and r["S1"].chain_complete
    s2 = r["S2"]
    assert s2.raw_coal_per_product_t == pytest.approx(1.25) and s2.mining_kgce_per_t == pytest.approx(6.25)
    assert s2.washing_kgce_per_t == pytest.approx(0.30725) and s2.rail_kgce_per_t == pytest.approx(3.6)
    assert s2.chain_kgce_per_t == pytest.approx(10.30725) and s2.chain_kgce == pytest.approx(8245.8)
    assert s2.factor_version == "factors_v2026.1+test_rail" and s2.rule_version == "rules_v2026.1"


def test_missing_components_are_named_not_zero(with_rail):
    # S3 coke: no coking-plant data -> not covered, no chain.
    # S4 M2 belt 5 km + rail 700 km: mining 3.0 + rail 0.004 x 700 = 2.8 -> 5.8, belt energy unknown -> incomplete.
    # S5 M3: no mine energy for M3 -> no chain ("mining" missing).
    r = by(with_rail[0], "shipment_id")
    assert r["S3"].chain_kgce_per_t is None and r["S3"].missing_components == "product_not_covered"
    assert r["S4"].chain_kgce_per_t == pytest.approx(5.8) and not r["S4"].chain_complete
    assert r["S4"].missing_components == "belt"
    assert r["S5"].chain_kgce_per_t is None and r["S5"].missing_components == "mining"


def test_grid_side_of_the_chain(with_rail):
    # S1: road grid 0.0055 x 50 = 0.275 -> 5.0 + 0.275 = 5.275 kgce/t (battery side 5.25); x 1,000 t = 5,275 kgce
    # S2: 10.30725 - 0.15 (road, battery side) + 0.0055 x 30 = 0.165 -> 10.32225 kgce/t
    # S4: no road leg -> grid side = battery side 5.8; S5: no chain on either side
    r = by(with_rail[0], "shipment_id")
    assert r["S1"].road_haulage_grid_kgce_per_t == pytest.approx(0.275)
    assert r["S1"].chain_grid_kgce_per_t == pytest.approx(5.275) and r["S1"].chain_grid_kgce == pytest.approx(5275.0)
    assert r["S2"].chain_grid_kgce_per_t == pytest.approx(10.32225)
    assert r["S4"].chain_grid_kgce_per_t == pytest.approx(5.8) and r["S5"].chain_grid_kgce_per_t is None


def test_checked_in_rail_factor_completes_the_chain(spark, inputs):
    # The checked-in rail factor: 4.94 tce per million converted tkm (Railway Statistical Bulletin 2010)
    # = 4,940 kgce / 1,000,000 tkm = 0.00494 kgce/tkm.
    # S2: 6.25 + 0.30725 + 0.15 + 0.00494 x 900 (= 4.446) = 11.15325 kgce/t, complete.
    r = by(chain(spark, inputs, reference(spark, "conversion_factors")).collect(), "shipment_id")
    assert r["S2"].rail_kgce_per_t == pytest.approx(4.446) and r["S2"].chain_kgce_per_t == pytest.approx(11.15325)
    assert r["S2"].chain_complete and r["S2"].missing_components == ""
    assert r["S2"].factor_version == "factors_v2026.1+factors_v2026.2"
    assert r["S1"].chain_complete and r["S1"].factor_version == "factors_v2026.1"   # no rail leg: no rail version


def test_rail_factor_of_the_other_electricity_basis_is_not_mixed_in(spark, inputs):
    # Equal-value run: the only rail factor is on the equivalent basis -> rail missing, not mixed in; the
    # haulage rows are equivalent-basis only -> road missing too. S2: mining 9.9 x 1.25 = 12.375, washing
    # 20,000 kWh x 0.30 / 10,000 t x 1.25 = 0.75 -> 13.125 kgce/t of known components.
    df = chain_energy_per_shipment(inputs["shipments"], mine_energy_monthly=inputs["mine"],
                                   washing_monthly=inputs["washing"], haulage_by_mine=inputs["haulage"],
                                   factors=reference(spark, "conversion_factors"), electricity_basis="equal_value")
    s2 = by(df.collect(), "shipment_id")["S2"]
    assert s2.rail_kgce_per_t is None and s2.missing_components == "road,rail" and not s2.chain_complete
    assert s2.chain_kgce_per_t == pytest.approx(13.125)


def test_rollup_keeps_complete_and_incomplete_chains_apart(spark, with_rail):
    # M1: S1 1,000 t x 5.25 = 5,250 + S2 800 t x 10.30725 = 8,245.8 -> complete 13,495.8 kgce over 1,800 t
    #     = 7.4977 kgce/t; S3 coke (100 t) has no chain -> no_chain_tonnes 100; complete share 1,800 / 1,900.
    #     Grid side: 5,275 + 800 x 10.32225 (= 8,257.8) = 13,532.8 kgce over 1,800 t.
    # M2: S4 500 t incomplete (belt unknown): known 500 x 5.8 = 2,900 kgce -> 5.8 kgce/t, a lower bound;
    #     no complete chain -> complete_chain_kgce_per_t null.
    # C1 = M1 + M2: complete 13,495.8 / 1,800 = 7.4977 kgce/t and incomplete 2,900 / 500 = 5.8 apart - one mean of
    #     both would be 16,395.8 / 2,300 = 7.1286; complete share 1,800 / 2,400 = 75 %.
    roll = by(chain_energy_rollup(with_rail[1], mines=silver(spark, "mines", MINES)).collect(), "scope_level", "scope_id")
    m1, m2, c1 = roll[("mine", "M1")], roll[("mine", "M2")], roll[("company", "C1")]
    assert (m1.tonnes, m1.complete_tonnes, m1.incomplete_chain_tonnes, m1.no_chain_tonnes) == (1900.0, 1800.0, 0.0, 100.0)
    assert m1.complete_chain_kgce_per_t == pytest.approx(13495.8 / 1800)
    assert m1.complete_share_pct == pytest.approx(1800 / 1900 * 100) and m1.incomplete_chain_known_kgce_per_t is None
    assert m1.complete_chain_grid_kgce_per_t == pytest.approx(13532.8 / 1800) and m1.complete_grid_tonnes == 1800.0
    assert m2.complete_chain_kgce_per_t is None and m2.incomplete_chain_known_kgce_per_t == pytest.approx(5.8)
    assert m2.incomplete_missing_components == "belt" and m1.incomplete_missing_components is None
    assert c1.complete_chain_kgce_per_t == pytest.approx(13495.8 / 1800)
    assert c1.incomplete_chain_known_kgce == pytest.approx(2900.0) and c1.incomplete_chain_tonnes == 500.0
    assert c1.complete_share_pct == pytest.approx(75.0)
    assert "chain_kgce_per_t" not in c1.asDict()
