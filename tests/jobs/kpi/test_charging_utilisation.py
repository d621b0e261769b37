"""Charging utilisation: the four named definitions per connector-hour and connector-day, sessions and
kWh per connector-day, peak concurrency, station / company roll-ups as ratios of sums.

The scenario (local Beijing times, day 2026-10-01; UTC = local - 8 h):
station ST1 (company C1), connectors A 360 kW, B 180 kW, C 180 kW; station ST2 (C1) connector D 120 kW.
  A: idle since 09-30 22:00; 08:00 plugged (2); 08:10 charging (3); 09:10 plugged (2); 09:30 idle (1);
     14:00 fault (255); 16:00 idle; 23:30 charging (3) to the end of the day.
     sessions: A1 plug 08:00-09:30, charge 08:10-09:10, 300 kWh; A2 plug 23:30 - 00:30 next day, 60 kWh.
  B: first event 08:30 charging (unknown before); 10:00 idle. session B1 08:30-10:00, 150 kWh.
  C: idle since 09-30 23:00; 10:00 charging; 11:00 idle. session C1 10:00-11:00, 90 kWh.
  D: no status event at all (unknown the whole day), no session.
"""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.kpi.charging_utilisation import (
    charging_connector_daily, charging_connector_hourly, charging_rollup, charging_station_daily,
    charging_station_hourly, charging_station_monthly, peak_concurrency_hourly, station_charging_losses,
)
from tests.jobs.kpi.helpers import by, d, silver

DAY = d("2026-10-01")


def utc(local: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local) - dt.timedelta(hours=8)


def ev(conn, local, code, station="ST1"):
    return {"station_id": station, "connector_id": conn, "status_ts_utc": utc(local), "status_code": code,
            "status": str(code), "event_date_local": dt.date.fromisoformat(local[:10])}


def sess(sid, conn, plug_in, plug_out, kwh, charge_start=None, charge_end=None):
    return {"session_id": sid, "station_id": "ST1", "connector_id": conn, "plug_in_ts_utc": utc(plug_in),
            "plug_out_ts_utc": utc(plug_out), "charge_start_ts_utc": utc(charge_start) if charge_start else None,
            "charge_end_ts_utc": utc(charge_end) if charge_end else None, "meter_start_kwh": 0.0,
            "meter_stop_kwh": kwh, "energy_kwh": kwh, "event_date_local": dt.date.fromisoformat(plug_in[:10])}


STATUS = [
    ev("A", "2026-09-30 22:00:00", 1), ev("A", "2026-10-01 08:00:00", 2), ev("A", "2026-10-01 08:10:00", 3),
    ev("A", "2026-10-01 09:10:00", 2), ev("A", "2026-10-01 09:30:00", 1), ev("A", "2026-10-01 14:00:00", 255),
    ev("A", "2026-10-01 16:00:00", 1), ev("A", "2026-10-01 23:30:00", 3),
    ev("B", "2026-10-01 08:30:00", 3), ev("B", "2026-10-01 10:00:00", 1),
    ev("C", "2026-09-30 23:00:00", 1), ev("C", "2026-10-01 10:00:00", 3), ev("C", "2026-10-01 11:00:00", 1),
]
SESSIONS = [
    sess("A1", "A", "2026-10-01 08:00:00", "2026-10-01 09:30:00", 300.0, "2026-10-01 08:10:00", "2026-10-01 09:10:00"),
    sess("A2", "A", "2026-10-01 23:30:00", "2026-10-02 00:30:00", 60.0),
    sess("B1", "B", "2026-10-01 08:30:00", "2026-10-01 10:00:00", 150.0),
    sess("C1", "C", "2026-10-01 10:00:00", "2026-10-01 11:00:00", 90.0),
]
# Charging losses: sessions of trucks (by vin) and their truck-days (grid kWh, energy into the battery).
def truck_sess(sid, station, vin, kwh):
    return {**sess(sid, "A", "2026-10-01 08:00:00", "2026-10-01 09:00:00", kwh), "station_id": station, "vin": vin}


LOSS_SESSIONS = [truck_sess("L1", "ST1", "V1", 300.0), truck_sess("L2", "ST2", "V1", 100.0),
                 truck_sess("L3", "ST1", "V2", 200.0), truck_sess("L4", "ST1", None, 50.0),
                 truck_sess("L5", "ST2", "V3", 30.0)]
LOSS_TRUCK_SCHEMA = "date_local date, vin string, powertrain string, grid_kwh double, charge_in_battery_kwh double"
LOSS_TRUCK_DAYS = [(DAY, "V1", "BEV", 400.0, 360.0), (DAY, "V2", "BEV", 200.0, 184.0), (DAY, "V3", "FCEV", 30.0, 25.0)]

CONNECTORS = [{"station_id": "ST1", "connector_id": c, "rated_kw": kw} for c, kw in (("A", 360.0), ("B", 180.0), ("C", 180.0))] + [
    {"station_id": "ST2", "connector_id": "D", "rated_kw": 120.0}]
STATIONS = [{"station_id": s, "company_id": "C1", "banner": "Zhungeer"} for s in ("ST1", "ST2")]


@pytest.fixture(scope="module")
def data(spark):
    """Run each stage once and keep its rows; later stages start from the collected rows."""
    status, sessions = silver(spark, "connector_status", STATUS), silver(spark, "charging_sessions", SESSIONS)
    connectors, stations = silver(spark, "charging_connectors", CONNECTORS), silver(spark, "charging_stations", STATIONS)
    window = {"start_date": DAY, "end_date": DAY}

    def run(df):
        rows = df.collect()
        return rows, spark.createDataFrame(rows, df.schema)

    hourly_rows, hourly = run(charging_connector_hourly(status, sessions=sessions, connectors=connectors, **window))
    daily_rows, daily = run(charging_connector_daily(hourly, sessions=sessions, **window))
    conc_rows, conc = run(peak_concurrency_hourly(status, **window))
    st_daily_rows, st_daily = run(charging_station_daily(daily, concurrency=conc, stations=stations))
    losses = station_charging_losses(silver(spark, "charging_sessions", LOSS_SESSIONS),
                                     truck_daily=spark.createDataFrame(LOSS_TRUCK_DAYS, LOSS_TRUCK_SCHEMA))
    with_losses = charging_station_daily(daily, concurrency=conc, stations=stations, losses=losses)
    return {
        "losses": by(losses.collect(), "station_id"), "st_daily_losses": by(with_losses.collect(), "station_id"),
        "hourly": by(hourly_rows, "connector_id", "hour_local"), "daily": by(daily_rows, "connector_id"),
        "conc": by(conc_rows, "station_id", "hour_local"), "st_daily": by(st_daily_rows, "station_id"),
        "st_hourly": by(charging_station_hourly(hourly, concurrency=conc, stations=stations).collect(), "station_id", "hour_local"),
        "company": by(charging_rollup(st_daily, period_col="date_local").collect(), "scope_level", "scope_id"),
        "monthly": by(charging_station_monthly(st_daily).collect(), "station_id"),
        "n_hourly": len(hourly_rows),
    }


def test_connector_day_four_definitions(data):
    # A: charging 08:10-09:10 (3,600 s) + 23:30-24:00 (1,800 s) = 5,400 s; plugged adds 08:00-08:10 and
    # 09:10-09:30 -> 5,400 + 600 + 1,200 = 7,200 s; fault 14:00-16:00 = 7,200 s.
    # time-based      5,400 / 86,400            = 6.25 %
    # occupancy       7,200 / 86,400            = 8.333 %
    # avail.-adjusted 5,400 / (86,400 - 7,200)  = 6.818 %
    # energy-based    (300 + 60 x 30/60) / (360 kW x 24 h) = 330 / 8,640 = 3.819 %
    a = data["daily"]["A"]
    assert (a.charging_s, a.plugged_in_s, a.fault_s, a.status_unknown_s) == (5400.0, 7200.0, 7200.0, 0.0)
    assert a.time_based_utilisation_pct == pytest.approx(6.25)
    assert a.occupancy_pct == pytest.approx(7200 / 86400 * 100)
    assert a.availability_adjusted_utilisation_pct == pytest.approx(5400 / 79200 * 100)
    assert a.energy_based_utilisation_pct == pytest.approx(330 / 8640 * 100)
    # sessions counted on their plug-in day (A1, A2); kWh only the part inside the day (A2 half in 10-02)
    assert a.sessions_per_connector_day == 2 and a.kwh_per_connector_day == pytest.approx(330.0)
    assert a.definition_version == "charging_util_defs_v2026.1"


def test_connector_hours_and_unknown_status(data):
    h = data["hourly"]
    # A, hour 08: charging 08:10-09:00 = 3,000 s -> 83.33 %; plugged the whole hour -> 100 %;
    # energy 300 kWh x 50/60 min = 250 kWh / (360 kW x 1 h) = 69.44 %.
    assert h[("A", 8)].time_based_utilisation_pct == pytest.approx(3000 / 36)
    assert h[("A", 8)].occupancy_pct == pytest.approx(100.0)
    assert h[("A", 8)].energy_kwh == pytest.approx(250.0)
    assert h[("A", 8)].energy_based_utilisation_pct == pytest.approx(250 / 360 * 100)
    # A, hour 14: faulted all hour -> no available time, availability-adjusted undefined (null), time-based 0.
    assert h[("A", 14)].availability_adjusted_utilisation_pct is None and h[("A", 14)].time_based_utilisation_pct == 0.0
    # B: status unknown before its first event at 08:30 -> 8.5 h = 30,600 s unknown over the day;
    # charging 08:30-10:00 = 5,400 s -> 6.25 %, a lower bound.
    assert data["daily"]["B"].status_unknown_s == 30600.0
    assert data["daily"]["B"].time_based_utilisation_pct == pytest.approx(6.25)
    # D: no events at all -> every hour unknown; 4 connectors x 24 h = 96 connector-hours in the grid.
    assert data["daily"]["D"].status_unknown_s == 86400.0 and data["n_hourly"] == 96


def test_peak_concurrency(data):
    # A charges 08:10-09:10 and B 08:30-10:00 -> 2 at once in hours 08 and 09.
    # B stops at 10:00 exactly when C starts -> hour 10 peak is 1, not 2.
    c = data["conc"]
    assert c[("ST1", 8)].peak_concurrent_charging == 2 and c[("ST1", 9)].peak_concurrent_charging == 2
    assert c[("ST1", 10)].peak_concurrent_charging == 1 and ("ST1", 12) not in c
    assert data["st_hourly"][("ST1", 12)].peak_concurrent_charging == 0
    assert data["st_daily"]["ST1"].peak_concurrent_charging == 2


def test_station_and_company_are_ratio_of_sums(data):
    # ST1: charging 5,400 (A) + 5,400 (B) + 3,600 (C) = 14,400 s over 3 x 86,400 = 259,200 s -> 5.556 %
    # availability-adjusted 14,400 / (259,200 - 7,200) = 5.714 %
    # energy (330 + 150 + 90) = 570 kWh / ((360 + 180 + 180) kW x 24 h = 17,280 kWh) = 3.299 %
    # sessions 4 over 3 connector-days = 1.333 per connector-day; 570 / 3 = 190 kWh per connector-day
    st = data["st_daily"]["ST1"]
    assert st.connectors == 3 and st.time_based_utilisation_pct == pytest.approx(14400 / 259200 * 100)
    assert st.availability_adjusted_utilisation_pct == pytest.approx(14400 / 252000 * 100)
    assert st.energy_based_utilisation_pct == pytest.approx(570 / 17280 * 100)
    assert st.sessions_per_connector_day == pytest.approx(4 / 3) and st.kwh_per_connector_day == pytest.approx(190.0)
    # station-hour ST1 08:00: A 3,000 s + B 1,800 s charging over 3 x 3,600 s = 44.44 %
    assert data["st_hourly"][("ST1", 8)].time_based_utilisation_pct == pytest.approx(4800 / 10800 * 100)
    # company C1 = ST1 + ST2 (D idle-unknown): 14,400 / (4 x 86,400) = 4.1667 %, not the mean of 5.556 % and 0 %
    c1 = data["company"][("company", "C1")]
    assert c1.stations == 2 and c1.time_based_utilisation_pct == pytest.approx(14400 / 345600 * 100)
    assert c1.max_station_peak_concurrent_charging == 2
    # one-day month: same figures; 3 connectors on its one day = 3 connector-days
    month = data["monthly"]["ST1"]
    assert month.sessions_per_connector_day == pytest.approx(4 / 3)
    assert (month.connectors, month.connector_days) == (3, 3)


def test_charging_losses_per_station_day(data):
    # V1 drew 400 kWh (300 at ST1, 100 at ST2) and 360 kWh reached its battery: shared by session kWh,
    #   ST1 360 x 300 / 400 = 270, ST2 360 x 100 / 400 = 90.
    # V2 drew 200 kWh at ST1, 184 kWh reached the battery.
    # ST1: traced 300 + 200 = 500 kWh, into batteries 270 + 184 = 454 -> loss 46 kWh = 9.2 %
    #      (L4 has no truck: its 50 kWh are not traced)
    # ST2: traced 100 (L5 is a fuel-cell truck: not traced), in 90 -> loss 10 kWh = 10 %
    st1, st2 = data["losses"]["ST1"], data["losses"]["ST2"]
    assert (st1.traced_grid_kwh, st1.charge_in_battery_kwh) == (500.0, pytest.approx(454.0))
    assert st1.charging_loss_kwh == pytest.approx(46.0) and st1.charging_loss_pct == pytest.approx(9.2)
    assert st2.traced_grid_kwh == 100.0 and st2.charging_loss_kwh == pytest.approx(10.0)
    assert st2.charging_loss_pct == pytest.approx(10.0)
    # joined onto the station-day rows; without losses the columns are null
    assert data["st_daily_losses"]["ST1"].charging_loss_pct == pytest.approx(9.2)
    assert data["st_daily_losses"]["ST1"].sessions == data["st_daily"]["ST1"].sessions
    assert data["st_daily"]["ST1"].charging_loss_kwh is None
