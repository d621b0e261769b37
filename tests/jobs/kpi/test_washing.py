"""Washing: GB 29446 corrected electricity and grade, yield, gangue, water and magnetite per tonne,
raw-coal washing rate, and the feed <= production + stock cross-check."""
from __future__ import annotations

from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from jobs.kpi.washing import (
    check_washing_feed_vs_production, raw_coal_washing_rate, washing_daily, washing_monthly, washing_rollup,
)
from tests.jobs.kpi.helpers import by, d, reference, silver, ts

PLANTS = [
    {"plant_id": "P1", "company_id": "C1", "mine_id": "M1", "banner": "Zhungeer", "coal_type": "thermal", "process": "dense_medium"},
    {"plant_id": "P2", "company_id": "C1", "mine_id": "M2", "banner": "Zhungeer", "coal_type": "coking", "process": "jig"},
    {"plant_id": "P3", "company_id": "C2", "mine_id": None, "banner": "Etuoke", "coal_type": "coking", "process": "dry"},
    {"plant_id": "PB", "company_id": "CX", "mine_id": None, "banner": "Dongsheng", "coal_type": "thermal", "process": "jig_flotation"},
]
MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer"},
    {"mine_id": "M2", "company_id": "C1", "mine_type": "open_pit", "banner": "Zhungeer"},
    {"mine_id": "M3", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke"},
]


def wash(plant, day, fed, clean, kwh, middlings=None, gangue=None, slime=None, water=None, magnetite=None):
    return {"plant_id": plant, "prod_date": d(day), "raw_coal_fed_t": fed, "clean_coal_t": clean, "middlings_t": middlings,
            "gangue_t": gangue, "slime_t": slime, "electricity_kwh": kwh, "water_m3": water, "magnetite_kg": magnetite,
            "event_date_local": d(day)}


def prod(mine, day, raw_t):
    return {"mine_id": mine, "shift_date": d(day), "shift_no": 1, "shift_start_ts_utc": ts(f"{day} 00:00:00"),
            "raw_coal_t": raw_t, "electricity_kwh": 0.0, "event_date_local": d(day)}


WASHING = [
    wash("P1", "2026-05-10", 10000.0, 7000.0, 25000.0, middlings=1500.0, gangue=1200.0, slime=300.0, water=1000.0, magnetite=8000.0),
    wash("P1", "2026-05-11", 10000.0, 8000.0, 15000.0),
    wash("P2", "2026-05-10", 10000.0, 6000.0, 60000.0),
    wash("P3", "2026-05-10", 15000.0, 9000.0, 30000.0),
    wash("PB", "2026-06-01", 10000.0, 7000.0, 37500.0),
    wash("PB", "2026-06-02", 10000.0, 7000.0, 37500.01),
]


@pytest.fixture(scope="module")
def refs(spark):
    return {"plants": silver(spark, "washing_plants", PLANTS), "mines": silver(spark, "mines", MINES),
            "k": reference(spark, "washing_process_factors"), "limits": reference(spark, "washing_limits")}


@pytest.fixture(scope="module")
def daily(spark, refs):
    return washing_daily(silver(spark, "washing", WASHING), plants=refs["plants"], process_factors=refs["k"],
                         limits=refs["limits"])


@pytest.fixture(scope="module")
def rows(daily):
    return by(daily.collect(), "plant_id", "prod_date")


def test_gb29446_corrected_electricity_yield_and_per_tonne_ratios(rows):
    # P1 thermal dense medium, k = 0.89. Fed 10,000 t, E = 25,000 kWh.
    # plain: 25,000 / 10,000 = 2.5 kWh/t; GB 29446: 25,000 x 0.89 / 10,000 = 22,250 / 10,000 = 2.225 kWh/t
    # thermal limits 2.0 / 3.0 / 4.5: 2.0 < 2.225 <= 3.0 -> level_2.
    # yield 7,000 / 10,000 = 70 %; gangue 1,200 / 10,000 = 12 %; water 1,000 m3 / 10,000 t = 0.1 m3/t;
    # magnetite 8,000 kg / 10,000 t = 0.8 kg/t.
    r = rows[("P1", d("2026-05-10"))]
    assert r.k_factor == Decimal("0.89") and r.corrected_electricity_kwh == Decimal("22250")
    assert r.electricity_kwh_per_t_fed == pytest.approx(2.5)
    assert r.gb29446_electricity_kwh_per_t == pytest.approx(2.225)
    assert (r.standard, r.grade, r.level) == ("GB 29446-2019", "level_2", 2)
    assert r.yield_pct == pytest.approx(70.0) and r.gangue_share_pct == pytest.approx(12.0)
    assert r.water_m3_per_t == pytest.approx(0.1) and r.magnetite_kg_per_t == pytest.approx(0.8)
    assert (r.process_factor_version, r.limits_version) == ("washing_k_v2026.1", "washing_limits_v2026.1")


def test_coking_grade_and_missing_measurements_stay_unknown(rows):
    # P2 coking jig, k = 1.26: 60,000 x 1.26 / 10,000 = 7.56 kWh/t; coking 7.0 < 7.56 <= 8.5 -> level_3.
    # Water and magnetite not reported -> their per-tonne ratios are null, not 0.
    r = rows[("P2", d("2026-05-10"))]
    assert r.gb29446_electricity_kwh_per_t == pytest.approx(7.56) and r.grade == "level_3"
    assert r.water_m3_per_t is None and r.magnetite_kg_per_t is None and r.gangue_share_pct is None


def test_process_outside_the_table_gets_no_grade(rows):
    # P3: coking coal with dry washing has no k in GB 29446-2019 -> no automatic grade.
    r = rows[("P3", d("2026-05-10"))]
    assert r.k_factor is None and r.grade == "no_process_factor" and r.level is None
    assert r.electricity_kwh_per_t_fed == pytest.approx(2.0)   # 30,000 / 15,000, still reported


def test_boundary_exactly_on_limit_and_just_above(rows):
    # PB thermal jig + flotation, k = 0.80.
    # 06-01: 37,500 x 0.80 = 30,000 kWh / 10,000 t = 3.0 exactly = level-2 max -> level_2.
    # 06-02: 37,500.01 x 0.80 = 30,000.008 / 10,000 = 3.0000008 -> rounds to 3.00, above 3.0 -> level_3.
    on, above = rows[("PB", d("2026-06-01"))], rows[("PB", d("2026-06-02"))]
    assert on.corrected_electricity_kwh == Decimal("30000") and on.grade == "level_2"
    assert round(above.gb29446_electricity_kwh_per_t, 2) == 3.00 and above.grade == "level_3"


def test_monthly_and_rollup_ratio_of_sums(spark, daily, refs):
    # P1 May: E 25,000 + 15,000 = 40,000 kWh x 0.89 = 35,600 / 20,000 t = 1.78 kWh/t -> level_1 (<= 2.0)
    # (mean of the daily values would be (2.225 + 1.335) / 2 = 1.78 too, but yield differs:)
    # yield (7,000 + 8,000) / 20,000 = 75 %; water 1,000 m3 over the 10,000 t fed on the day it was
    # reported = 0.1 m3/t (not 1,000 / 20,000 = 0.05).
    # Company C1 in May: P1 + P2 -> fed 30,000 t, clean 21,000 t -> yield 70 %.
    monthly = washing_monthly(daily, limits=refs["limits"])
    collected = monthly.collect()
    local = spark.createDataFrame(collected, monthly.schema)     # roll up from the collected rows: one Spark run less
    m = by(collected, "plant_id", "month_start")
    p1 = m[("P1", d("2026-05-01"))]
    assert p1.days == 2 and p1.gb29446_electricity_kwh_per_t == pytest.approx(1.78) and p1.grade == "level_1"
    assert p1.yield_pct == pytest.approx(75.0) and p1.water_m3_per_t == pytest.approx(0.1)
    roll = by(washing_rollup(local, period_col="month_start").collect(), "month_start", "scope_level", "scope_id")
    c1 = roll[(d("2026-05-01"), "company", "C1")]
    assert c1.plants == 2 and c1.raw_coal_fed_t == Decimal("30000") and c1.yield_pct == pytest.approx(70.0)
    assert roll[(d("2026-06-01"), "city", "ordos")].plants_above_limit == 0


def test_raw_coal_washing_rate_per_mine_company_banner_city(spark, refs):
    # May 2026. Produced: M1 60,000 t, M2 20,000 t, M3 30,000 t. Fed: P1 (M1) 20,000, P2 (M2) 10,000,
    # P3 (central plant of C2, Etuoke) 15,000.
    # mine: M1 20,000 / 60,000 = 33.33 %; M2 10,000 / 20,000 = 50 %; M3 0 / 30,000 = 0 %.
    # company: C1 30,000 / 80,000 = 37.5 %; C2 15,000 / 30,000 = 50 % (central plant counts at company level).
    # banner: Zhungeer 30,000 / 80,000 = 37.5 %; Etuoke 15,000 / 30,000 = 50 %.
    # city: 45,000 / 110,000 = 40.909 %.
    washing = silver(spark, "washing", [w for w in WASHING if w["plant_id"] != "PB"])
    production = silver(spark, "mine_production", [prod("M1", "2026-05-10", 60000.0), prod("M2", "2026-05-10", 20000.0),
                                                    prod("M3", "2026-05-12", 30000.0)])
    rate = raw_coal_washing_rate(washing, plants=refs["plants"], production=production, mines=refs["mines"], period="month")
    r = by(rate.collect(), "scope_level", "scope_id")
    expected = {("mine", "M1"): 100 / 3, ("mine", "M2"): 50.0, ("mine", "M3"): 0.0, ("company", "C1"): 37.5,
                ("company", "C2"): 50.0, ("banner", "Zhungeer"): 37.5, ("banner", "Etuoke"): 50.0,
                ("city", "ordos"): 45000 / 110000 * 100}
    assert {k: pytest.approx(v) for k, v in expected.items()} == {k: r[k].raw_coal_washing_rate_pct for k in expected}
    assert all(x.month_start == d("2026-05-01") and x.rule_version == "washing_rate_rule_v2026.1" for x in r.values())


def test_feed_never_exceeds_production_plus_stock(spark, refs):
    # M1 produces 5,000 t on 05-10 and 05-11; P1 (M1's plant) is fed 4,000 then 7,000 t.
    # cumulative: fed 4,000 / 11,000; produced 5,000 / 10,000 -> headroom 1,000 / -1,000 with no stock:
    # the second day fails; with a 1,000 t opening stock it passes (headroom 0).
    washing = silver(spark, "washing", [wash("P1", "2026-05-10", 4000.0, 3000.0, 1.0), wash("P1", "2026-05-11", 7000.0, 5000.0, 1.0)])
    production = silver(spark, "mine_production", [prod("M1", "2026-05-10", 5000.0), prod("M1", "2026-05-11", 5000.0)])
    no_stock = check_washing_feed_vs_production(washing, plants=refs["plants"], production=production)
    with_stock = check_washing_feed_vs_production(washing, plants=refs["plants"], production=production, opening_stock_t=1000.0)
    a = by(no_stock.unionByName(with_stock.withColumn("mine_id", F.concat(F.col("mine_id"), F.lit("_stock")))).collect(), "mine_id", "date_local")
    assert a[("M1", d("2026-05-11"))].headroom_t == pytest.approx(-1000.0) and not a[("M1", d("2026-05-11"))].feed_within_production
    assert a[("M1", d("2026-05-10"))].feed_within_production
    assert a[("M1_stock", d("2026-05-11"))].headroom_t == pytest.approx(0.0) and a[("M1_stock", d("2026-05-11"))].feed_within_production
