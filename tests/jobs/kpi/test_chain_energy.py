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
    schema = "date_local date, vin string, powertrain string, battery_net_kwh double, h2_used_kg double, diesel_l double, rule_version string"
    daily = spark.createDataFrame([
        (d("2026-10-05"), "V1", "BEV", 600.0, 0.0, 0.0, "rules_v2026.1"), (d("2026-10-06"), "V1", "BEV", 400.0, 0.0, 0.0, "rules_v2026.1"),
        (d("2026-10-05"), "V2", "FCEV", 50.0, 100.0, 0.0, "rules_v2026.1"), (d("2026-10-07"), "V6", "DIESEL", 0.0, 0.0, 100.0, "rules_v2026.1"),
    ], schema)
    trips = spark.createDataFrame([
        ("T1", "V1", "M1", d("2026-10-05"), 40.0, 400.0), ("T2", "V1", "M2", d("2026-10-06"), 40.0, 600.0),
        ("T3", "V2", "M1", d("2026-10-05"), 30.0, 300.0), ("T4", "V6", "M2", d("2026-10-07"), 35.0, 350.0),
        ("T5", "V9", "M1", d("2026-10-08"), 38.0, None),
    ], "ticket_id string, vin string, mine_id string, date_local date, net_t double, tonne_km double")
    h = by(haulage_energy_by_mine(daily, trips=trips, factors=reference(spark, "conversion_factors")).collect(), "mine_id")
    m1, m2 = h["M1"], h["M2"]
    assert m1.haulage_kgce == pytest.approx(458.61) and m1.traced_t == 70.0 and m1.delivered_t == 108.0
    assert m1.haulage_kgce_per_t == pytest.approx(458.61 / 70) and m1.haulage_kgce_per_tkm == pytest.approx(458.61 / 700)
    assert m2.haulage_kgce == pytest.approx(196.1364) and m2.haulage_kgce_per_tkm == pytest.approx(196.1364 / 950)
    assert m1.factor_version == "factors_v2026.1" and m1.rule_version == "rules_v2026.1" and m1.month_start == OCT


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
    haulage = spark.createDataFrame(
        [(OCT, "M1", 0.005, "equivalent", "factors_v2026.1", "rules_v2026.1"), (OCT, "M3", 0.006, "equivalent", "factors_v2026.1", "rules_v2026.1")],
        "month_start date, mine_id string, haulage_kgce_per_tkm double, electricity_basis string, factor_version string, rule_version string")
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


def test_rail_component_missing_while_factor_is_a_placeholder(spark, inputs):
    # The checked-in rail factor is empty: S2 = 6.25 + 0.30725 + 0.15 = 6.70725 kgce/t, rail missing.
    r = by(chain(spark, inputs, reference(spark, "conversion_factors")).collect(), "shipment_id")
    assert r["S2"].chain_kgce_per_t == pytest.approx(6.70725) and r["S2"].missing_components == "rail"
    assert r["S1"].chain_complete   # no rail leg: unaffected


def test_rollup_ratio_of_sums(spark, with_rail):
    # M1: S1 1,000 t x 5.25 = 5,250 + S2 8,245.8 = 13,495.8 kgce over 1,800 t with a chain -> 7.4977 kgce/t
    # (S3 coke, 100 t, counts in tonnes but not in chain tonnes); complete 1,800 of 1,900 t = 94.74 %.
    # C1 adds M2 (S4 500 t x 5.8 = 2,900): 16,395.8 / 2,300 = 7.1286 kgce/t.
    roll = by(chain_energy_rollup(with_rail[1], mines=silver(spark, "mines", MINES)).collect(), "scope_level", "scope_id")
    m1 = roll[("mine", "M1")]
    assert m1.tonnes == 1900.0 and m1.chain_tonnes == 1800.0
    assert m1.chain_kgce_per_t == pytest.approx(13495.8 / 1800) and m1.complete_share_pct == pytest.approx(1800 / 1900 * 100)
    assert roll[("company", "C1")].chain_kgce_per_t == pytest.approx(16395.8 / 2300)
