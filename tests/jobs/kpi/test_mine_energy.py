"""Mine energy per tonne: hand-computed values, exact boundary grading, the 2026-08-01 standard switch."""
from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.kpi.mine_energy import mine_energy_daily, mine_energy_monthly, mine_energy_rollup
from tests.jobs.kpi.helpers import by, d, reference, silver, ts

MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer"},
    {"mine_id": "M2", "company_id": "C1", "mine_type": "open_pit", "banner": "Zhungeer"},
    {"mine_id": "M3", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke"},
    # one mine per grading scenario, so a single Spark run serves all of them
    *[{"mine_id": m, "company_id": "CX", "mine_type": "underground", "banner": "Dongsheng"}
      for m in ("EXACT", "ABOVE", "SWITCH", "ZERO")],
    {"mine_id": "PIT", "company_id": "CX", "mine_type": "open_pit", "banner": "Dongsheng"},
]


def shift(mine, day, no, raw_t, kwh, diesel_kg=None, other_kgce=None):
    return {"mine_id": mine, "shift_date": d(day), "shift_no": no, "shift_start_ts_utc": ts(f"{day} 00:00:00"),
            "raw_coal_t": raw_t, "electricity_kwh": kwh, "diesel_kg": diesel_kg, "other_energy_kgce": other_kgce,
            "event_date_local": d(day)}


SCENARIOS = [
    # the worked example of docs/kpis.md section 1 split over two shifts (test_worked_example_two_shifts)
    shift("M1", "2026-08-03", 1, 6000.0, 15000.0, 500.0), shift("M1", "2026-08-03", 2, 4000.0, 10000.0, 300.0),
    shift("EXACT", "2026-08-05", 1, 10000.0, 100000.0, 16000.0, 26396.4),
    shift("ABOVE", "2026-08-05", 1, 10000.0, 100000.0, 16000.0, 26396.5),
    shift("SWITCH", "2026-07-31", 1, 10000.0, 0.0, 0.0, 65000.0), shift("SWITCH", "2026-08-01", 1, 10000.0, 0.0, 0.0, 65000.0),
    shift("PIT", "2026-09-01", 1, 10000.0, 0.0, None, 90000.0),
    shift("PIT", "2013-09-30", 1, 10000.0, 0.0, None, 90000.0), shift("PIT", "2013-10-01", 1, 10000.0, 0.0, None, 90000.0),
    shift("ZERO", "2026-09-01", 1, 0.0, 5000.0),
]


@pytest.fixture(scope="module")
def refs(spark):
    return {"mines": silver(spark, "mines", MINES), "factors": reference(spark, "conversion_factors"),
            "limits": reference(spark, "mine_energy_limits")}


def daily(spark, refs, shifts, **kw):
    prod = silver(spark, "mine_production", shifts)
    return mine_energy_daily(prod, mines=refs["mines"], factors=refs["factors"], limits=refs["limits"], **kw)


@pytest.fixture(scope="module")
def rows(spark, refs):
    return by(daily(spark, refs, SCENARIOS).collect(), "mine_id", "shift_date")


def test_worked_example_two_shifts(rows):
    # Two shifts of M1 on 2026-08-03: 6,000 + 4,000 t, 15,000 + 10,000 kWh, 500 + 300 kg diesel.
    # Day: 10,000 t, 25,000 kWh, 800 kg diesel.
    # kgce = 25,000 x 0.1229 + 800 x 1.4571 = 3,072.5 + 1,165.68 = 4,238.18 -> 0.423818 kgce/t
    # kWh/t = 25,000 / 10,000 = 2.5. Underground under GB 29445-2025: 0.423818 <= 2.5 -> level_1.
    r = rows[("M1", d("2026-08-03"))]
    assert r.shifts == 2 and r.raw_coal_t == Decimal("10000") and r.electricity_kwh == Decimal("25000")
    assert r.energy_kgce == Decimal("4238.18")
    assert r.energy_kgce_per_t == pytest.approx(0.423818, abs=1e-12)
    assert r.electricity_kwh_per_t == pytest.approx(2.5)
    assert (r.standard, r.grade, r.level) == ("GB 29445-2025", "level_1", 1)
    assert r.level_1_max_kgce_per_t == Decimal("2.5")
    assert r.company_id == "C1" and r.banner == "Zhungeer"
    assert r.factor_version == "factors_v2026.1" and r.limits_version == "mine_limits_v2026.1"
    assert r.electricity_basis == "equivalent" and r.limits_need_review is True


def test_value_exactly_on_level_limit_is_in_that_level(rows):
    # 100,000 kWh x 0.1229 = 12,290; 16,000 kg x 1.4571 = 23,313.6; other 26,396.4 kgce
    # total = 62,000 kgce / 10,000 t = 6.2 kgce/t exactly = level 2 max of underground -> level_2.
    # (In doubles the same sum is 62000.000000000007 -> 6.200000000000001 -> wrongly level_3.)
    assert 100000 * 0.1229 + 16000 * 1.4571 + 26396.4 > 62000  # the double trap this test guards against
    r = rows[("EXACT", d("2026-08-05"))]
    assert r.energy_kgce == Decimal("62000")
    assert r.grade == "level_2"


def test_value_rounding_onto_limit_but_above_it_is_next_level(rows):
    # other 26,396.5 kgce -> total 62,000.1 kgce / 10,000 t = 6.20001 kgce/t: shown as 6.20 to
    # 2 decimals, but above the 6.2 level-2 max at full precision -> level_3 (<= 10.8).
    r = rows[("ABOVE", d("2026-08-05"))]
    assert round(r.energy_kgce_per_t, 2) == 6.20
    assert r.energy_kgce == Decimal("62000.1")
    assert r.grade == "level_3"


def test_standard_switch_on_2026_08_01_with_checked_in_limits(rows):
    # Same mine, same numbers (6.5 kgce/t: other energy 65,000 kgce / 10,000 t) on both days.
    # 2026-07-31: GB 29444-2012 is in force; its limit values are not on file -> no_limit_available.
    # 2026-08-01: GB 29445-2025 underground: 6.2 < 6.5 <= 10.8 -> level_3.
    old, new = rows[("SWITCH", d("2026-07-31"))], rows[("SWITCH", d("2026-08-01"))]
    assert (old.standard, old.grade, old.level, old.limits_need_review) == ("GB 29444-2012", "no_limit_available", None, True)
    assert (new.standard, new.grade, new.level) == ("GB 29445-2025", "level_3", 3)


def test_open_pit_before_2026_grades_no_limit_available_from_2013_10_01(rows):
    # 9.0 kgce/t open pit. GB 29445-2012 was implemented on 2013-10-01: the day before, no standard is in
    # force (no_standard); from that day it is, but its limits are not on file -> no_limit_available, not a pass.
    before, after = rows[("PIT", d("2013-09-30"))], rows[("PIT", d("2013-10-01"))]
    assert (before.standard, before.grade) == (None, "no_standard")
    assert (after.standard, after.grade, after.level) == ("GB 29445-2012", "no_limit_available", None)
    assert after.level_3_max_kgce_per_t is None and after.limits_version == "mine_limits_v2026.2"


def test_open_pit_above_limit_and_zero_output(rows):
    # PIT open pit: 90,000 kgce / 10,000 t = 9.0 > 8.0 (level 3 max) -> above_limit.
    # ZERO with 0 t on a maintenance day: no ratio, grade no_output.
    pit, zero = rows[("PIT", d("2026-09-01"))], rows[("ZERO", d("2026-09-01"))]
    assert pit.grade == "above_limit" and pit.level is None
    assert pit.energy_kgce_per_t == pytest.approx(9.0)
    assert zero.grade == "no_output" and zero.energy_kgce_per_t is None


def test_standard_switch_with_reviewed_old_values(spark, refs):
    # Hypothetical old-standard values (test data only): underground 4.0 / 7.0 / 12.0 until 2026-08-01.
    # 6.5 kgce/t: old rule -> 4.0 < 6.5 <= 7.0 -> level_2 on 07-31; new rule -> level_3 on 08-01.
    old = [{"standard": "OLD-TEST", "clause": "t1", "mine_type": "underground", "level": n, "max_kgce_per_t": v,
            "effective_to": d("2026-08-01")} for n, v in ((1, 4.0), (2, 7.0), (3, 12.0))]
    new = [{"standard": "NEW-TEST", "clause": "t1", "mine_type": "underground", "level": n, "max_kgce_per_t": v,
            "effective_from": d("2026-08-01")} for n, v in ((1, 2.5), (2, 6.2), (3, 10.8))]
    limits = reference(spark, "mine_energy_limits", old + new)
    prod = silver(spark, "mine_production", [shift("M1", "2026-07-31", 1, 10000.0, 0.0, 0.0, 65000.0),
                                              shift("M1", "2026-08-01", 1, 10000.0, 0.0, 0.0, 65000.0)])
    rows = by(mine_energy_daily(prod, mines=refs["mines"], factors=refs["factors"], limits=limits).collect(), "shift_date")
    assert (rows[d("2026-07-31")].standard, rows[d("2026-07-31")].grade) == ("OLD-TEST", "level_2")
    assert (rows[d("2026-08-01")].standard, rows[d("2026-08-01")].grade) == ("NEW-TEST", "level_3")


def test_equal_value_basis_is_separate_and_not_graded(spark, refs):
    # Equal-value electricity 0.30 kgce/kWh: (25,000 x 0.30 + 800 x 1.4571) / 10,000
    # = (7,500 + 1,165.68) / 10,000 = 0.866568 kgce/t; the limits are on the equivalent basis -> not graded.
    r = daily(spark, refs, [shift("M1", "2026-08-03", 1, 10000.0, 25000.0, 800.0)], electricity_basis="equal_value").first()
    assert r.energy_kgce_per_t == pytest.approx(0.866568, abs=1e-12)
    assert (r.electricity_basis, r.grade) == ("equal_value", "not_graded_basis")
    with pytest.raises(ValueError):
        daily(spark, refs, [], electricity_basis="mixed")


def test_monthly_and_rollups_are_ratio_of_sums(spark, refs):
    # M1: 2026-08-03 10,000 t / 25,000 kWh; 2026-08-04 30,000 t / 15,000 kWh.
    #   month: 40,000 kWh / 40,000 t = 1.0 kWh/t (the mean of daily ratios would be (2.5 + 0.5) / 2 = 1.5).
    #   kgce = 40,000 x 0.1229 = 4,916 -> 0.1229 kgce/t, level_1 (graded on 2026-08-01).
    # M2 (same company C1, open pit): 20,000 t / 60,000 kWh in August.
    # C1: 100,000 kWh / 60,000 t = 1.6667 kWh/t; city adds M3 (C2): 10,000 t / 10,000 kWh
    #   -> 110,000 / 70,000 = 1.571428... kWh/t.
    d1 = daily(spark, refs, [shift("M1", "2026-08-03", 1, 10000.0, 25000.0), shift("M1", "2026-08-04", 1, 30000.0, 15000.0),
                             shift("M2", "2026-08-10", 1, 20000.0, 60000.0), shift("M3", "2026-08-10", 1, 10000.0, 10000.0)])
    monthly = mine_energy_monthly(d1, limits=refs["limits"])
    m = by(monthly.collect(), "mine_id")
    assert m["M1"].days == 2 and m["M1"].electricity_kwh_per_t == pytest.approx(1.0)
    assert m["M1"].energy_kgce == Decimal("4916") and m["M1"].grade == "level_1"
    assert m["M1"].graded_date == d("2026-08-01")
    roll = by(mine_energy_rollup(monthly, period_col="month_start").collect(), "scope_level", "scope_id")
    c1 = roll[("company", "C1")]
    assert c1.electricity_kwh_per_t == pytest.approx(100000 / 60000) and c1.mines == 2 and c1.mines_level_1 == 2
    assert roll[("banner", "Zhungeer")].raw_coal_t == Decimal("60000")
    assert roll[("city", "ordos")].electricity_kwh_per_t == pytest.approx(110000 / 70000)
    assert roll[("city", "ordos")].factor_version == "factors_v2026.1"
