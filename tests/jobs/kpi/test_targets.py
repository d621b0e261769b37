"""Target tracking: every plan target listed with current value, target, gap, status and versions."""
from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.kpi.targets import VALUES_SCHEMA, plan_target_values, target_tracking
from tests.jobs.kpi.helpers import by, d, reference, silver, ts

OCT = d("2026-10-01")
MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer", "intelligent_since": d("2024-01-01"),
     "capacity_mt_per_yr": 2.4},
    {"mine_id": "M2", "company_id": "C1", "mine_type": "open_pit", "banner": "Zhungeer", "intelligent_since": d("2026-11-15"),
     "capacity_mt_per_yr": 20.0},
    {"mine_id": "M3", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke", "capacity_mt_per_yr": 6.0},
    {"mine_id": "M4", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke", "intelligent_since": d("2020-01-01"),
     "capacity_mt_per_yr": 1.2},
]
# M1 new (2024) and advanced; M2 open pit, its advanced designation withdrawn on 2026-10-15; M3 old and
# advanced; M4 commissioned only in November 2026
REGISTER = [
    {"mine_id": "M1", "commissioned_on": d("2024-05-01"), "advanced_capacity": True},
    {"mine_id": "M2", "commissioned_on": d("2025-03-01"), "advanced_capacity": True, "effective_to": d("2026-10-15")},
    {"mine_id": "M2", "commissioned_on": d("2025-03-01"), "advanced_capacity": False, "effective_from": d("2026-10-15")},
    {"mine_id": "M3", "commissioned_on": d("2010-01-01"), "advanced_capacity": True},
    {"mine_id": "M4", "commissioned_on": d("2026-11-01"), "advanced_capacity": True},
]


def prod(mine, day):
    return {"mine_id": mine, "shift_date": d(day), "shift_no": 1, "shift_start_ts_utc": ts(f"{day} 00:00:00"),
            "raw_coal_t": 1000.0, "electricity_kwh": 1.0, "event_date_local": d(day)}


CHARGING = [{"station_id": f"CS{i}", "company_id": "C1", "banner": "Zhungeer", "in_mine_area": flag}
            for i, flag in enumerate([True, True, True, False, None])]
H2 = [{"station_id": f"H{i}", "company_id": "C1", "banner": banner, "in_mine_area": flag, "nameplate_kg_per_day": 1000.0,
       "dispensers": 2} for i, (banner, flag) in enumerate([("Zhungeer", True), ("Zhungeer", True), ("Etuoke", True),
                                                             ("Dongsheng", True), ("Yijinhuoluo", False)])]


@pytest.fixture(scope="module")
def tracked(spark):
    washing_rate = spark.createDataFrame(
        [(OCT, "city", Decimal("45000"), Decimal("100000"), 45.0, "washing_rate_rule_v2026.1"),
         (d("2025-10-01"), "city", Decimal("40000"), Decimal("100000"), 40.0, "washing_rate_rule_v2026.1"),
         (OCT, "company", Decimal("1"), Decimal("1"), 100.0, "washing_rate_rule_v2026.1")],
        "month_start date, scope_level string, raw_coal_fed_t decimal(22,6), raw_coal_produced_t decimal(22,6), "
        "raw_coal_washing_rate_pct double, rule_version string")
    rail = spark.createDataFrame([(OCT, "city", Decimal("4000"), Decimal("9000"), "rules_v2026.1", "plan_targets_v2024.1")],
                                 "month_start date, scope_level string, rail_t decimal(22,6), long_haul_t decimal(22,6), "
                                 "rule_version string, target_version string")
    values = plan_target_values(
        mines=silver(spark, "mines", MINES),
        mine_production=silver(spark, "mine_production", [prod("M1", "2026-10-03"), prod("M2", "2026-10-04"),
                                                           prod("M3", "2026-10-31"), prod("M4", "2026-09-30")]),
        washing_rate_monthly=washing_rate, rail_share_monthly=rail,
        charging_stations=silver(spark, "charging_stations", CHARGING), h2_stations=silver(spark, "h2_stations", H2),
        month=d("2026-10-15"), mine_register=reference(spark, "mine_register", REGISTER), new_mine_from_year=2024.0,
        rule_version="rules_v2026.1")
    return by(target_tracking(reference(spark, "plan_targets"), values=values, month=d("2026-10-15")).collect(), "target_id")


def test_every_plan_target_is_listed(tracked):
    assert len(tracked) == 13
    assert {k for k, r in tracked.items() if r.status == "not_measured"} == {
        "T10_GREEN_H2_2025", "T11_GREEN_H2_2030", "T12_COAL_UNIT_SUPPLY_COAL_RATE"}
    assert tracked["T13_NEV_TRUCK_PRIORITY"].status == "qualitative"
    assert all(r.month_start == OCT for r in tracked.values())
    assert {k for k, r in tracked.items() if r.target_version == "plan_targets_v2024.2"} == {
        "T02_NEW_UNDERGROUND_MIN_CAPACITY", "T03_ADVANCED_CAPACITY_SHARE"}


def test_new_underground_mine_capacity(tracked):
    # Underground mines commissioned from 2024-01-01 to 2026-10-31: M1 (2024-05-01, 2.4 Mt/yr); M3 is from
    # 2010, M4 only from November, M2 is open pit -> smallest 2.4 vs >= 3 -> gap 0.6 Mt/yr, not met.
    r = tracked["T02_NEW_UNDERGROUND_MIN_CAPACITY"]
    assert float(r.numerator) == pytest.approx(2.4) and r.current_value == pytest.approx(2.4)
    assert r.gap_to_target == pytest.approx(0.6) and r.status == "not_met"
    assert r.value_versions == "test_v1+rules_v2026.1"


def test_advanced_capacity_share(tracked):
    # Producing in October: M1 2.4, M2 20.0, M3 6.0 Mt/yr = 28.4. Advanced on 2026-10-31: M1 and M3 (M2's
    # designation was withdrawn on 10-15) = 8.4 -> 8.4 / 28.4 = 29.58 % vs >= 85 % -> gap 55.42 points, not met.
    r = tracked["T03_ADVANCED_CAPACITY_SHARE"]
    assert float(r.numerator) == pytest.approx(8.4) and float(r.denominator) == pytest.approx(28.4)
    assert r.current_value == pytest.approx(8.4 / 28.4 * 100) and r.gap_to_target == pytest.approx(85 - 8.4 / 28.4 * 100)
    assert r.status == "not_met"


def test_intelligent_mine_share(tracked):
    # Producing in October: M1, M2, M3 (M4 only in September). Intelligent by 10-31: M1 only
    # (M2 from 11-15, M3 never) -> 1 / 3 = 33.33 % vs >= 100 % -> gap 66.67 points, not met.
    r = tracked["T01_INTELLIGENT_MINES"]
    assert (r.numerator, r.denominator) == (Decimal("1"), Decimal("3"))
    assert r.current_value == pytest.approx(100 / 3) and r.gap_to_target == pytest.approx(200 / 3)
    assert r.status == "not_met"


def test_washing_rate_increase_and_rail_share(tracked):
    # washing rate: 45,000 / 100,000 = 45 % vs 40 % in Oct 2025 -> gap 40 - 45 = -5 (raised) -> met.
    # rail share: 4,000 / 9,000 = 44.44 % vs >= 80 % -> gap 35.56 points, not met; versions carried.
    w, r = tracked["T04_RAW_COAL_WASHING_RATE"], tracked["T05_RAIL_SHARE_500KM"]
    assert w.current_value == pytest.approx(45.0) and w.baseline_value == 40.0 and w.gap_to_target == pytest.approx(-5.0)
    assert w.status == "met" and w.value_versions == "washing_rate_rule_v2026.1"
    assert r.current_value == pytest.approx(400 / 9) and r.gap_to_target == pytest.approx(80 - 400 / 9)
    assert r.status == "not_met" and r.value_versions == "rules_v2026.1+plan_targets_v2024.1"


def test_station_counts(tracked):
    # charging: 3 in mine areas (vs 80+: gap 77), 2 elsewhere incl. one with the flag unknown (vs 160+: gap 158).
    # H2: 5 stations (vs 45: gap 40); named banners with an in-mine-area station: Zhungeer, Etuoke -> 2 of 4.
    assert (tracked["T06_CHARGING_STATIONS_MINE_AREAS"].current_value, tracked["T06_CHARGING_STATIONS_MINE_AREAS"].gap_to_target) == (3.0, 77.0)
    assert tracked["T07_CHARGING_STATIONS_CITY"].current_value == 2.0
    assert tracked["T08_H2_STATIONS"].gap_to_target == 40.0 and tracked["T08_H2_STATIONS"].target_needs_review is True
    assert tracked["T09_MINE_TRUCK_H2_BANNERS"].current_value == 2.0 and tracked["T09_MINE_TRUCK_H2_BANNERS"].status == "not_met"


def test_met_is_decided_at_full_precision(spark):
    # A: 8,000 / 10,000 t = 80 % exactly vs >= 80 -> met (gap 0).
    # B: 7,999.999999 / 10,000 = 79.99999999 % -> shows as 80.00 % but is below the target -> not met.
    # C: no value for the month -> no_data. D: "increase" without last year's value -> no_baseline.
    targets = reference(spark, "plan_targets", [
        {"target_id": t, "description": t, "metric": m, "comparator": c, "target_value": v, "scope": "city", "measured": True}
        for t, m, c, v in (("A", "a", ">=", 80.0), ("B", "b", ">=", 80.0), ("C", "c", ">=", 1.0), ("D", "d", "increase", None))])
    values = spark.createDataFrame([
        ("a", OCT, Decimal("8000"), Decimal("10000"), 100.0, None, None, "test"),
        ("b", OCT, Decimal("7999.999999"), Decimal("10000"), 100.0, None, None, "test"),
        ("d", OCT, Decimal("5"), Decimal("10"), 100.0, None, None, "test"),
    ], VALUES_SCHEMA)
    r = by(target_tracking(targets, values=values, month=OCT).collect(), "target_id")
    assert r["A"].status == "met" and r["A"].gap_to_target == pytest.approx(0.0)
    assert round(r["B"].current_value, 2) == 80.0 and r["B"].status == "not_met"
    assert r["C"].status == "no_data" and r["D"].status == "no_baseline"
