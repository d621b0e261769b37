"""The production plan as forecast input: values worked by hand, and the publication-time rule (leakage)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from jobs.forecast import charging_demand as job
from jobs.forecast.plan_exog import (PLAN_FEATURES, issue_times, nominal_shift_tonnes, plan_exog,
                                     station_mine_weights)

T = pd.Timestamp


def _plan(rows):
    """rows: (mine, shift start, tonnes, trucks, published)."""
    return pd.DataFrame(rows, columns=["mine_id", "shift_start", "planned_raw_coal_t", "trucks_dispatched",
                                       "published"]).assign(shift_start=lambda d: pd.to_datetime(d["shift_start"]),
                                                            published=lambda d: pd.to_datetime(d["published"]))


# M1 works 08:00-16:00 (shift 1), 16:00-24:00 (shift 2), 00:00-08:00 (shift 3) of shift-day 2026-01-06.
PLAN = _plan([
    ("M1", "2026-01-05 16:00", 5000, 2, "2026-01-04 19:00"),
    ("M1", "2026-01-06 00:00", 4000, 2, "2026-01-04 19:00"),
    ("M1", "2026-01-06 08:00", 6000, 3, "2026-01-05 19:30"),
    ("M1", "2026-01-06 16:00", 6000, 4, "2026-01-05 19:30"),
    ("M1", "2026-01-07 00:00", 3000, 1, "2026-01-05 19:30"),
])
WEIGHTS = pd.DataFrame({"site_id": ["CS1"], "mine_id": ["M1"], "weight": [1.0]})
FLEET = pd.Series({"M1": 4})
# capacity 9.9 Mt/yr -> 9.9e6 / 330 days / 3 shifts = 10,000 t per shift
NOMINAL = nominal_shift_tonnes(pd.DataFrame({"mine_id": ["M1"], "capacity_mt_per_yr": ["9.9"]}))


def test_issue_time_is_the_midnight_after_the_features_last_hour_from_24_h_on():
    hours = pd.DatetimeIndex([T("2026-01-06 00:00"), T("2026-01-06 23:00"), T("2026-01-12 10:00")])
    # 24 h: features up to t - 24 h, complete at t - 23 h; next midnight: 01-06 00:00 for both hours of 01-06
    assert list(issue_times(hours[:2], 24)) == [T("2026-01-06 00:00"), T("2026-01-06 00:00")]
    # 168 h: 01-12 10:00 - 167 h = 01-05 11:00 -> issued at 01-06 00:00, before 01-12's plan exists
    assert issue_times(hours[2:], 168)[0] == T("2026-01-06 00:00")
    # under a day: issued when the features' last hour is complete, t - H + 1 h
    assert issue_times(hours[2:], 1)[0] == T("2026-01-12 10:00")


def test_plan_values_worked_by_hand():
    assert NOMINAL["M1"] == pytest.approx(10_000.0)
    hours = pd.DatetimeIndex([T("2026-01-06 09:00"), T("2026-01-06 17:00")])
    ex = plan_exog(PLAN, WEIGHTS, FLEET, NOMINAL, hours, issue_times(hours, 24)).set_index("ts")
    # 09:00 is in shift 1: 3 of 4 trucks = 0.75, 6000 / 10000 t = 0.6; the shift before (00-08) sent 2 = 0.5
    assert ex.loc[T("2026-01-06 09:00"), list(PLAN_FEATURES)].tolist() == pytest.approx([0.75, 0.5, 0.6])
    # 17:00 is in shift 2: 4 / 4 = 1.0, 6000 / 10000 = 0.6; the shift before is shift 1: 0.75
    assert ex.loc[T("2026-01-06 17:00"), list(PLAN_FEATURES)].tolist() == pytest.approx([1.0, 0.75, 0.6])


def test_two_mines_weighted_by_energy_and_an_unknown_mine_renormalised():
    sessions = pd.DataFrame({"site_id": ["CS1", "CS1", "CS1"], "vin": ["A", "B", "C"],
                             "energy_kwh": [300.0, 100.0, 50.0]})
    # A and B load at M1 and M2; C has no ticket (its 50 kWh carry no weight)
    tickets = pd.DataFrame({"vin": ["A", "A", "B", "B", "B", "X"], "mine_id": ["M1", "M1", "M2", "M2", "M1", "M2"]})
    weights, fleet = station_mine_weights(sessions, tickets)
    # A's home is M1 (2 tickets), B's M2 (2 of 3); CS1: 300 / (300 + 100) = 0.75 M1, 0.25 M2
    assert dict(zip(weights["mine_id"], weights["weight"])) == pytest.approx({"M1": 0.75, "M2": 0.25})
    assert fleet.to_dict() == {"M2": 2, "M1": 1}              # homes: A -> M1; B, X -> M2
    plan = pd.concat([PLAN, _plan([("M2", "2026-01-06 08:00", 1000, 1, "2026-01-05 20:00")])])
    nominal = pd.Series({"M1": 10_000.0, "M2": 5_000.0})
    hours = pd.DatetimeIndex([T("2026-01-06 09:00")])
    ex = plan_exog(plan, weights, fleet, nominal, hours, issue_times(hours, 24)).iloc[0]
    # trucks: 0.75 x 3/1 + 0.25 x 1/2 = 2.375; tonnes: 0.75 x 0.6 + 0.25 x 0.2 = 0.5
    assert (ex["plan_trucks_share"], ex["plan_tonnes_ratio"]) == pytest.approx((2.375, 0.5))
    # the shift before 08:00 is planned only for M1: its weight alone counts -> 2 / 1 = 2.0
    assert ex["plan_trucks_share_prev"] == pytest.approx(2.0)


def test_a_plan_is_used_only_from_its_publication_time():
    # shift-day 01-07 planned late: published 01-07 01:30, after the midnight the 24 h forecast is issued at
    late = pd.concat([PLAN, _plan([("M1", "2026-01-07 08:00", 7000, 4, "2026-01-07 01:30")])])
    hours = pd.date_range("2026-01-07 00:00", "2026-01-07 10:00", freq="h")
    day_ahead = plan_exog(late, WEIGHTS, FLEET, NOMINAL, hours, issue_times(hours, 24)).set_index("ts")
    # 00:00-07:00 belong to shift 3 of 01-06 (published 01-05 19:30): known; 08:00-10:00 to the late plan: not
    assert day_ahead.loc[T("2026-01-07 05:00"), "plan_trucks_share"] == pytest.approx(0.25)
    assert day_ahead.loc[T("2026-01-07 08:00"):, "plan_trucks_share"].isna().all()
    assert day_ahead.loc[T("2026-01-07 08:00"):, "plan_tonnes_ratio"].isna().all()
    # an hour-ahead forecast of 08:00 is issued at 08:00 (features up to 07:00): the plan is out by then
    hour_ahead = plan_exog(late, WEIGHTS, FLEET, NOMINAL, hours, issue_times(hours, 1)).set_index("ts")
    assert hour_ahead.loc[T("2026-01-07 08:00"), "plan_trucks_share"] == pytest.approx(1.0)
    # moving the publication to one second after the issue time hides it again
    later = late.copy()
    later.loc[later["shift_start"] == T("2026-01-07 08:00"), "published"] = T("2026-01-07 08:00:01")
    again = plan_exog(later, WEIGHTS, FLEET, NOMINAL, hours, issue_times(hours, 1)).set_index("ts")
    assert np.isnan(again.loc[T("2026-01-07 08:00"), "plan_trucks_share"])


def test_the_job_passes_only_plans_published_by_the_cut_off_as_future_input():
    # as-of 01-05: cut-off 01-06 00:00. Shift-day 01-06 was published 01-05 19:30 (known); a plan for
    # 01-07 published 01-06 18:00 is after the cut-off and must not reach the forecast
    plan = pd.concat([PLAN, _plan([("M1", "2026-01-07 08:00", 7000, 4, "2026-01-06 18:00")])])
    inputs = job.Inputs(pd.DataFrame(), pd.DataFrame(), "v", None, plan=plan,
                        session_vins=pd.DataFrame({"site_id": ["CS1"], "vin": ["A"], "energy_kwh": [10.0]}),
                        tickets=pd.DataFrame({"vin": ["A"], "mine_id": ["M1"]}),
                        mines=pd.DataFrame({"mine_id": ["M1"], "capacity_mt_per_yr": [9.9]}))
    fx = job.future_plan(inputs, ["CS1"], dt.date(2026, 1, 5)).set_index("ts")
    assert len(fx) == job.HORIZON_H
    # fleet = 1 truck (A): shift 1 of 01-06 sends 3 -> 3.0
    assert fx.loc[T("2026-01-06 09:00"), "plan_trucks_share"] == pytest.approx(3.0)
    # the shift of 01-07 00:00-08:00 was published 01-05 19:30: known at the cut-off
    assert fx.loc[T("2026-01-07 03:00"), "plan_trucks_share"] == pytest.approx(1.0)
    # 01-07 08:00 on is not planned by the cut-off: the 7-at-08:00, 4-truck plan must not show; the hour repeats
    # 01-06 08:00 (3 trucks -> 3.0) and 16:00 repeats 01-06 16:00 (4 trucks -> 4.0)
    assert fx.loc[T("2026-01-07 09:00"), "plan_trucks_share"] == pytest.approx(3.0)
    assert fx.loc[T("2026-01-07 17:00"), "plan_trucks_share"] == pytest.approx(4.0)
    assert fx.loc[T("2026-01-08 03:00"), "plan_trucks_share"] == pytest.approx(1.0)   # 01-07 03:00 again
    assert fx.loc[T("2026-01-07 09:00"), "plan_tonnes_ratio"] == pytest.approx(0.6)    # 6000 t, not 7000 t
