"""Load flexibility: slack per session, flexible and must-run kWh per station-hour, the station-day's
as-charged and minimum peak, and the forecast day's flexible kWh.

The scenario (local Beijing times, day 2026-10-01 unless said; UTC = local - 8 h):
  ST1, connectors A 100 kW and B 100 kW - two overlapping sessions, one with slack, one without:
    S1 on A: plugged 08:00-11:30, charged 08:00-10:00, 200 kWh (100 kW). dwell 3.5 h, needs 200/100 = 2 h
             -> slack 1.5 h (150 kWh of room at 100 kW).
    S2 on B: plugged and charged 09:00-11:00, 200 kWh = 100 kW x 2 h -> slack 0.
  ST2, connector C 50 kW - a session across midnight:
    S3: plugged 10-01 23:00 - 10-02 02:00, charged 23:00-00:30, 60 kWh (40 kW): dwell 3 h, needs 1.2 h
        -> slack 1.8 h.
  ST3, connector E 60 kW - zero slack alone: S4 plugged 14:00-15:00, no charge times, 60 kWh = 60 kW x 1 h.
  ST4, connectors D 50 kW and F 100 kW - a data error beside a flexible session:
    S5 on D: plugged 10:00-11:00, 80 kWh > 50 kW x 1 h -> energy_exceeds_capacity, 30 kWh excess.
    S6 on F: plugged 10:00-12:00, charged 10:00-11:00, 100 kWh -> slack 2 - 1 = 1 h.
    S7 on connector Z (not in the connector list): 13:00-13:30, 20 kWh -> no_connector_power.
"""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.kpi.charging_flexibility import (
    charging_flexibility_forecast, charging_flexibility_hourly, minimum_peak_kw, session_slack,
)
from tests.jobs.kpi.helpers import by, d, silver

DAY1, DAY2 = d("2026-10-01"), d("2026-10-02")


def utc(local: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local) - dt.timedelta(hours=8)


def sess(sid, station, conn, plug_in, plug_out, kwh, charge_start=None, charge_end=None):
    return {"session_id": sid, "station_id": station, "connector_id": conn, "plug_in_ts_utc": utc(plug_in),
            "plug_out_ts_utc": utc(plug_out), "charge_start_ts_utc": utc(charge_start) if charge_start else None,
            "charge_end_ts_utc": utc(charge_end) if charge_end else None, "meter_start_kwh": 0.0,
            "meter_stop_kwh": kwh, "energy_kwh": kwh, "event_date_local": dt.date.fromisoformat(plug_in[:10])}


SESSIONS = [
    sess("S1", "ST1", "A", "2026-10-01 08:00", "2026-10-01 11:30", 200.0, "2026-10-01 08:00", "2026-10-01 10:00"),
    sess("S2", "ST1", "B", "2026-10-01 09:00", "2026-10-01 11:00", 200.0, "2026-10-01 09:00", "2026-10-01 11:00"),
    sess("S3", "ST2", "C", "2026-10-01 23:00", "2026-10-02 02:00", 60.0, "2026-10-01 23:00", "2026-10-02 00:30"),
    sess("S4", "ST3", "E", "2026-10-01 14:00", "2026-10-01 15:00", 60.0),
    sess("S5", "ST4", "D", "2026-10-01 10:00", "2026-10-01 11:00", 80.0),
    sess("S6", "ST4", "F", "2026-10-01 10:00", "2026-10-01 12:00", 100.0, "2026-10-01 10:00", "2026-10-01 11:00"),
    sess("S7", "ST4", "Z", "2026-10-01 13:00", "2026-10-01 13:30", 20.0),
]
CONNECTORS = [{"station_id": s, "connector_id": c, "rated_kw": kw} for s, c, kw in (
    ("ST1", "A", 100.0), ("ST1", "B", 100.0), ("ST2", "C", 50.0), ("ST3", "E", 60.0), ("ST4", "D", 50.0),
    ("ST4", "F", 100.0))]
STATIONS = [{"station_id": s, "company_id": "C1", "banner": "Zhungeer"} for s in ("ST1", "ST2", "ST3", "ST4")]


@pytest.fixture(scope="module")
def flex(spark):
    sessions, connectors = silver(spark, "charging_sessions", SESSIONS), silver(spark, "charging_connectors", CONNECTORS)
    hourly = charging_flexibility_hourly(sessions, connectors=connectors, stations=silver(
        spark, "charging_stations", STATIONS), start_date=DAY1, end_date=DAY2).collect()
    return {"slack": by(session_slack(sessions, connectors=connectors).collect(), "session_id"),
            "hourly": by(hourly, "station_id", "date_local", "hour_local"), "n_hourly": len(hourly)}


def test_session_slack_and_status(flex):
    s = flex["slack"]
    # S1: 3.5 h plugged - 200 kWh / 100 kW = 1.5 h; room 100 kW x 1.5 h = 150 kWh
    assert (s["S1"].dwell_h, s["S1"].min_charge_h) == pytest.approx((3.5, 2.0))
    assert (s["S1"].slack_h, s["S1"].slack_kwh, s["S1"].flex_status) == (pytest.approx(1.5), pytest.approx(150.0), "ok")
    # S2 and S4 charge at full power for their whole dwell: no slack
    assert (s["S2"].slack_h, s["S2"].slack_kwh) == (0.0, 0.0) and s["S4"].slack_h == 0.0
    # S3 across midnight: 3 h - 60 / 50 = 1.8 h
    assert s["S3"].slack_h == pytest.approx(1.8) and s["S3"].min_charge_h == pytest.approx(1.2)
    # S5: 80 kWh in 1 h at 50 kW at most -> flagged, slack clipped to 0, excess 80 - 50 = 30 kWh
    assert (s["S5"].flex_status, s["S5"].slack_h, s["S5"].capacity_excess_kwh) == (
        "energy_exceeds_capacity", 0.0, pytest.approx(30.0))
    assert s["S7"].flex_status == "no_connector_power" and s["S7"].connector_kw is None


def test_two_overlapping_sessions_one_with_slack(flex):
    h = flex["hourly"]
    r8, r9, r10, r11 = (h[("ST1", DAY1, hour)] for hour in (8, 9, 10, 11))
    # caps (kWh the session may take in the hour): S1 100, 100, 100, 50 in hours 8-11 (sum 350); S2 100, 100 in 9-10
    # must-run = energy - caps of the session's other hours:
    #   S1: 200 - (350 - cap) <= 0 in every hour; S2: 200 - 100 = 100 in hours 9 and 10
    # hour 08: S1 charged 100, all movable               -> as charged 100, must 0,   flexible 100
    assert (r8.as_charged_kwh, r8.must_run_kwh, r8.flexible_kwh) == pytest.approx((100.0, 0.0, 100.0))
    # hour 09: S1 100 (movable) + S2 100 (must run)       -> 200, must 100, flexible 100 (50 %)
    assert (r9.as_charged_kwh, r9.must_run_kwh, r9.flexible_kwh) == pytest.approx((200.0, 100.0, 100.0))
    assert r9.flexible_share_pct == pytest.approx(50.0)
    assert (r9.sessions, r9.flexible_sessions, r9.plugged_in_h) == (2, 1, pytest.approx(2.0))
    # hour 10: S1 plugged but done, S2 100 must run       -> 100, must 100, flexible 0
    assert (r10.as_charged_kwh, r10.must_run_kwh, r10.flexible_kwh) == pytest.approx((100.0, 100.0, 0.0))
    # hour 11: S1 plugged 0.5 h, nothing charged; S1's 1.5 h slack spread by plugged time: 1.5 x 0.5 / 3.5
    assert (r11.sessions, r11.as_charged_kwh, r11.flexible_kwh) == (1, 0.0, 0.0)
    assert r11.slack_h == pytest.approx(1.5 * 0.5 / 3.5) and r8.slack_h == pytest.approx(1.5 / 3.5)
    # peak: as charged 200 kW (hour 09). Minimum: S2 is forced to 100 in hours 9 and 10; S1 may take at
    # most 100, P - 100, P - 100, 50 in hours 8-11 -> 100 + 2 (P - 100) + 50 = 200 -> P = 125 kW
    # (S1: 100 at 08, 25 at 09, 25 at 10, 50 at 11). Removed: 200 - 125 = 75 kW, on every hour row of the day.
    for r in (r8, r9, r10, r11, h[("ST1", DAY1, 0)]):
        assert (r.day_peak_as_charged_kw, r.day_min_peak_kw, r.day_peak_removed_kw) == pytest.approx((200.0, 125.0, 75.0))
    assert r9.definition_version == "charging_flex_defs_v2026.1" and r9.company_id == "C1"


def test_zero_slack_gives_zero(flex):
    r = flex["hourly"][("ST3", DAY1, 14)]
    # S4: 60 kWh in its one plugged hour at 60 kW: all of it must run there, no peak to remove
    assert (r.sessions, r.flexible_sessions, r.as_charged_kwh, r.must_run_kwh, r.flexible_kwh, r.slack_h) == (
        1, 0, 60.0, 60.0, 0.0, 0.0)
    assert (r.day_peak_as_charged_kw, r.day_min_peak_kw, r.day_peak_removed_kw) == (60.0, 60.0, 0.0)


def test_session_across_midnight(flex):
    h = flex["hourly"]
    late, midnight, one = h[("ST2", DAY1, 23)], h[("ST2", DAY2, 0)], h[("ST2", DAY2, 1)]
    # S3 charged 40 kWh in 23:00-24:00 and 20 kWh in 00:00-00:30; caps 50 kWh in each of its 3 plugged hours:
    # must-run = 60 - 100 < 0 -> all of it movable in each hour; slack 1.8 h spread as 0.6 h per plugged hour
    assert (late.as_charged_kwh, late.flexible_kwh, late.slack_h) == pytest.approx((40.0, 40.0, 0.6))
    assert (midnight.as_charged_kwh, midnight.flexible_kwh, midnight.slack_h) == pytest.approx((20.0, 20.0, 0.6))
    assert (one.sessions, one.as_charged_kwh, one.slack_h) == (1, 0.0, pytest.approx(0.6))
    # the peak keeps each day's energy on its day: 10-01 has 40 kWh and one hour (23) -> 40 kW, nothing removed;
    # 10-02 has 20 kWh over hours 00 and 01 -> 10 + 10: peak 20 -> 10 kW, 10 kW removed
    assert (late.day_peak_as_charged_kw, late.day_min_peak_kw, late.day_peak_removed_kw) == (40.0, 40.0, 0.0)
    assert (one.day_peak_as_charged_kw, one.day_min_peak_kw, one.day_peak_removed_kw) == pytest.approx((20.0, 10.0, 10.0))


def test_energy_beyond_the_connector_is_flagged_and_kept_as_charged(flex):
    h = flex["hourly"]
    r10, r13 = h[("ST4", DAY1, 10)], h[("ST4", DAY1, 13)]
    # S5 (80 kWh, at most 50 possible) stays as charged, all must-run; S6 100 kWh movable into hour 11
    assert (r10.sessions, r10.capacity_exceeded_sessions, r10.flexible_sessions) == (2, 1, 1)
    assert (r10.as_charged_kwh, r10.must_run_kwh, r10.flexible_kwh, r10.capacity_excess_kwh) == pytest.approx(
        (180.0, 80.0, 100.0, 30.0))
    # the unrated connector's session is fixed load too, counted apart
    assert (r13.unrated_sessions, r13.as_charged_kwh, r13.must_run_kwh, r13.flexible_kwh) == (1, 20.0, 20.0, 0.0)
    # peak: 180 as charged at 10. S5 fixed 80 at 10; S6 100 kWh with caps 100 (10) and 100 (11):
    # (P - 80) + P = 100 -> P = 90 (S6 10 kWh at 10, 90 at 11; S7's 20 at 13 is below). Removed 90 kW.
    assert (r13.day_peak_as_charged_kw, r13.day_min_peak_kw, r13.day_peak_removed_kw) == pytest.approx((180.0, 90.0, 90.0))


def test_every_station_hour_of_the_window_has_a_row(flex):
    # 4 stations with connectors x 48 hours; an hour without sessions is zero, not missing
    assert flex["n_hourly"] == 4 * 48
    quiet = flex["hourly"][("ST1", DAY2, 12)]
    assert (quiet.sessions, quiet.as_charged_kwh, quiet.flexible_kwh, quiet.day_peak_removed_kw) == (0, 0.0, 0.0, 0.0)
    assert quiet.flexible_share_pct is None


def test_minimum_peak_is_exact_where_earliest_deadline_first_is_not():
    # A: 2 kWh by the end of hour 1, at most 2 kW; B: 3 kWh by the end of hour 2, at most 1 kW. EDF gives A
    # 2 kW in hour 0 under a 2 kW peak, then B gets 1 + 1 = 2 < 3 kWh; yet A 1+1 and B 1+1+1 fit 2 kW.
    assert minimum_peak_kw([(2.0, {0: 2.0, 1: 2.0}), (3.0, {0: 1.0, 1: 1.0, 2: 1.0})]) == 2.0
    # fixed load alone sets the floor; 30 kWh over two free hours beside 10 kWh fixed in the first: 20 + 20
    assert minimum_peak_kw([], {5: 7.0}) == 7.0
    assert minimum_peak_kw([(30.0, {0: 30.0, 1: 30.0})], {0: 10.0}) == 20.0
    with pytest.raises(ValueError, match="exceeds its caps"):
        minimum_peak_kw([(10.0, {0: 4.0, 1: 4.0})])


def test_forecast_day_uses_the_historical_share_per_station_and_hour(spark):
    # run of as-of day 10-02 forecasts from 10-03 00:00; its forecast day is 10-03 (10-04 rows are left out)
    fc = spark.createDataFrame([
        (DAY2, "ST1", dt.datetime(2026, 10, 3, 8), 8, 40.0), (DAY2, "ST1", dt.datetime(2026, 10, 3, 9), 9, 30.0),
        (DAY2, "ST1", dt.datetime(2026, 10, 3, 10), 10, 20.0), (DAY2, "ST1", dt.datetime(2026, 10, 4, 8), 32, 50.0),
        (DAY2, "ST9", dt.datetime(2026, 10, 3, 8), 8, 10.0),
    ], "forecast_date_local date, station_id string, ts_local timestamp, lead_h int, p50_kwh double").select(
        "*", F.lit("snaive_daily").alias("method"), F.lit("seasonal_naive_daily").alias("model_version"))
    history = spark.createDataFrame([
        (DAY1, 8, "ST1", 100.0, 100.0), (DAY1, 9, "ST1", 200.0, 100.0), (DAY2, 9, "ST1", 100.0, 0.0),
        (d("2026-09-04"), 10, "ST1", 100.0, 0.0),       # 28 days before 10-02 = 09-05..10-02: left out
    ], "date_local date, hour_local int, station_id string, as_charged_kwh double, flexible_kwh double")
    rows = by(charging_flexibility_forecast(fc, flexibility_hourly=history).collect(), "station_id", "hour_local")
    assert len(rows) == 4
    # hour 08: 100 / 100 = 100 % of 40 kWh; hour 09: (100 + 0) / (200 + 100) = 33.3 % of 30 kWh = 10 kWh
    assert (rows[("ST1", 8)].flexible_share_pct, rows[("ST1", 8)].flexible_p50_kwh) == pytest.approx((100.0, 40.0))
    assert (rows[("ST1", 9)].flexible_p50_kwh, rows[("ST1", 9)].share_basis) == (pytest.approx(10.0), "station_hour")
    # hour 10 never charged in the window: the station's share over all hours, 200 / 400 = 50 % of 20 kWh
    assert (rows[("ST1", 10)].flexible_p50_kwh, rows[("ST1", 10)].share_basis) == (pytest.approx(10.0), "station")
    assert rows[("ST1", 10)].history_days == 2 and rows[("ST1", 10)].date_local == d("2026-10-03")
    # no history at all: unknown, not zero
    assert (rows[("ST9", 8)].flexible_p50_kwh, rows[("ST9", 8)].share_basis, rows[("ST9", 8)].history_days) == (
        None, "none", 0)
