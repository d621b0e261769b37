"""Truck energy: V x I integration with a gap cap, regen vs charging, SOC cross-check, H2 counting
refills, diesel, loaded / empty split, tonne-km, per delivered tonne, fleet-month ratio of sums, and
the battery-out vs grid-in cross-check."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.kpi.truck_energy import (
    check_battery_vs_grid, truck_energy_daily, truck_energy_monthly, truck_interval_sums, truck_intervals, truck_trips,
    with_battery_grid_check,
)
from schemas.reference_tables import rule_params
from tests.jobs.kpi.helpers import by, d, reference, silver

DAY = "2026-10-05"     # all frames are between 01:00 and 07:00 UTC = 09:00-15:00 local on the same day

TRUCKS = [
    {"vin": "V1", "company_id": "C1", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 40.0},
    {"vin": "V2", "company_id": "C1", "powertrain": "FCEV", "battery_kwh": 100.0, "h2_tank_kg": 60.0, "rated_payload_t": 40.0},
    {"vin": "V3", "company_id": "C1", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 40.0},
    {"vin": "V4", "company_id": "C2", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 40.0},
    {"vin": "V5", "company_id": "C2", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 40.0},
    {"vin": "V6", "company_id": "C2", "powertrain": "DIESEL", "rated_payload_t": 40.0},
    {"vin": "V7", "company_id": "C2", "powertrain": "BEV", "battery_kwh": 282.0, "rated_payload_t": 40.0},
]


def t(hms: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{DAY} {hms}")


def frame(vin, hms, speed, odo, current=None, soc=None, h2=None, fuel=None, volt=600.0):
    return {"vin": vin, "event_ts_utc": t(hms), "speed_kmh": speed, "odometer_km": odo,
            "total_voltage_v": volt if current is not None else None, "total_current_a": current, "soc_pct": soc,
            "h2_remaining_pct": h2, "fuel_total_l": fuel, "event_date_local": d(DAY)}


# V1, BEV at 600 V: energy per interval = 600 V x I x dt / 3.6e6 kWh (I = 10 A for 60 s -> 0.1 kWh).
V1 = [
    frame("V1", "01:00:00", 0, 1000.0, 10, 80),    # at the mine, auxiliaries; ticket T1 weighed at 01:00:30
    frame("V1", "01:01:00", 0, 1000.0, 10, 80),    # loaded, still at the weighbridge
    frame("V1", "01:02:00", 50, 1000.0, 200, 80),  # 2.0 kWh per minute at 200 A
    frame("V1", "01:03:00", 60, 1001.0, 200, 79),
    frame("V1", "01:04:00", 60, 1002.0, -50, 79),  # regen while moving: 0.5 kWh back
    frame("V1", "01:05:00", 60, 1003.0, 200, 78),
    frame("V1", "01:06:00", 0, 1004.0, 10, 78),    # arrives: stop 01:06-01:17 (11 min >= 10) -> unloaded
    frame("V1", "01:11:00", 0, 1004.0, 10, 78),    # 5 min steps: 600 x 10 x 300 / 3.6e6 = 0.5 kWh
    frame("V1", "01:16:00", 0, 1004.0, 10, 78),
    frame("V1", "01:17:00", 40, 1004.0, 100, 78),  # empty return, 1.0 kWh
    frame("V1", "01:18:00", 40, 1005.0, 100, 77),  # then a 12-min gap (> 5 min): 5 km, not integrated
    frame("V1", "01:30:00", 0, 1010.0, 10, 75),
    frame("V1", "01:31:00", 0, 1010.0, -300, 75),  # standstill, negative current: charging 15 kWh in 5 min
    frame("V1", "01:36:00", 0, 1010.0, 0, 80),
]
# V2, fuel cell, 60 kg tank: H2 50 -> 45 -> 40 %, refill to 90 %, then 85 %.
V2 = [
    frame("V2", "03:00:00", 60, 500.0, h2=50), frame("V2", "03:10:00", 60, 510.0, h2=45),
    frame("V2", "03:20:00", 0, 520.0, h2=40), frame("V2", "03:40:00", 0, 520.0, h2=90),
    frame("V2", "03:50:00", 60, 520.0, h2=90), frame("V2", "04:00:00", 100, 530.0, h2=85),
]


def balance_truck(vin):
    # 10 kWh out while driving 10 km (600 V x 200 A x 300 s), then 10 kWh in at standstill; SOC back to 50 %.
    return [frame(vin, "02:00:00", 100, 2000.0, 200, 50), frame(vin, "02:05:00", 0, 2010.0, -200, 46),
            frame(vin, "02:10:00", 0, 2010.0, 0, 50)]


V5 = [frame("V5", "02:00:00", 0, 3000.0, 0, 20), frame("V5", "02:06:00", 0, 3000.0, 0, 90),   # swap: +70 points, no current
      frame("V5", "02:07:00", 30, 3000.0, 100, 90)]
V6 = [frame("V6", "05:00:00", 60, 0.0, fuel=1000.0), frame("V6", "05:30:00", 60, 40.0, fuel=1010.0),
      frame("V6", "06:30:00", 0, 100.0, fuel=1030.0)]

TICKETS = [
    {"ticket_id": "T1", "vin": "V1", "mine_id": "M1", "load_ts_utc": t("01:00:30"), "net_t": 40.0, "event_date_local": d(DAY)},
    {"ticket_id": "T2", "vin": "V2", "mine_id": "M1", "load_ts_utc": t("02:59:00"), "net_t": 35.0, "event_date_local": d(DAY)},
    {"ticket_id": "T9", "vin": "V7", "mine_id": "M2", "load_ts_utc": t("05:00:00"), "net_t": 38.0, "event_date_local": d(DAY)},
]


def session(sid, vin, kwh):
    return {"session_id": sid, "station_id": "ST1", "connector_id": "A", "vin": vin, "plug_in_ts_utc": t("01:31:00"),
            "plug_out_ts_utc": t("01:40:00"), "meter_start_kwh": 0.0, "meter_stop_kwh": kwh, "energy_kwh": kwh,
            "event_date_local": d(DAY)}


SESSIONS = [session("S1", "V1", 16.5), session("S3", "V3", 11.0), session("S4", "V4", 20.0)]


@pytest.fixture(scope="module")
def data(spark):
    rules = reference(spark, "rule_parameters")
    params = rule_params(rules, "truck_energy", on_date=d(DAY))
    check_params = rule_params(rules, "battery_grid_check", on_date=d(DAY))
    telematics = silver(spark, "telematics", V1 + V2 + balance_truck("V3") + balance_truck("V4") + V5 + V6)
    trucks, tickets = silver(spark, "trucks", TRUCKS), silver(spark, "weighbridge", TICKETS)
    sums = truck_interval_sums(telematics, trucks=trucks, tickets=tickets, **params)
    daily_df = truck_energy_daily(sums, tickets=tickets, charging_sessions=silver(spark, "charging_sessions", SESSIONS))
    rows = daily_df.collect()
    local = spark.createDataFrame(rows, daily_df.schema)
    fleet = truck_energy_monthly(local, grain="fleet")
    month_check = check_battery_vs_grid(local, trucks=trucks, per_month=True, **check_params)
    return {
        "params": params, "daily": by(rows, "vin"),
        "fleet": by(truck_energy_monthly(local, grain="fleet").collect(), "company_id", "powertrain"),
        "check": by(check_battery_vs_grid(local, trucks=trucks, **check_params).collect(), "vin"),
        "fleet_checked": by(with_battery_grid_check(fleet, check=month_check).collect(), "company_id", "powertrain"),
        "trips": by(truck_trips(sums, tickets=tickets).collect(), "ticket_id"),
        "frames": sorted(truck_intervals(telematics, trucks=trucks, tickets=tickets, **params).filter("vin = 'V1'").collect(),
                         key=lambda r: r.ts),
    }


def test_rule_parameters(data):
    assert data["params"] == {"max_integration_gap_s": 300.0, "unload_stop_min_s": 600.0, "min_loaded_km": 1.0,
                              "max_loaded_h": 12.0, "swap_min_soc_jump_pct": 20.0, "rule_version": "rules_v2026.1"}


def test_battery_integration_gap_regen_and_charging(data):
    # discharge: 0.1 + 0.1 + 2.0 + 2.0 + 2.0 + 0.5 + 0.5 + 0.1 + 1.0 + 0.1 = 8.4 kWh; regen 0.5 -> net 7.9 kWh
    # the 01:31 interval (-300 A at standstill, 300 s) is charging: 600 x 300 x 300 / 3.6e6 = 15 kWh, not regen
    # integrated km: 4 x 1 km loaded + 1 km empty = 5 km; the 5 km driven in the 12-min gap are not integrated
    # battery 7.9 / 5 x 100 = 158 kWh/100 km; regen share 0.5 / 8.4 = 5.95 %
    v1 = data["daily"]["V1"]
    assert v1.battery_discharge_kwh == pytest.approx(8.4) and v1.regen_kwh == pytest.approx(0.5)
    assert v1.battery_net_kwh == pytest.approx(7.9) and v1.charge_in_battery_kwh == pytest.approx(15.0)
    assert (v1.distance_km, v1.integrated_distance_km) == (pytest.approx(10.0), pytest.approx(5.0))
    assert v1.battery_kwh_per_100km == pytest.approx(158.0)
    assert v1.regen_share_pct == pytest.approx(0.5 / 8.4 * 100)
    # 9 one-minute + 3 five-minute intervals integrated = 1,440 s; 720 s gap -> 66.7 % coverage
    assert (v1.integrated_s, v1.gap_s) == (1440.0, 720.0) and v1.integration_coverage_pct == pytest.approx(200 / 3)
    assert v1.rule_version == "rules_v2026.1"


def test_soc_cross_check_and_grid_side(data):
    # SOC drops on integrated intervals: 80->79, 79->78, 78->77 = 3 points x 2.82 kWh = 8.46 kWh
    # (the 77->75 drop is inside the gap; the 75->80 standstill rise is charging) -> 8.46 / 5 x 100 = 169.2
    # grid: session S1 16.5 kWh over all 10 km -> 165 kWh/100 km
    v1 = data["daily"]["V1"]
    assert v1.soc_net_kwh == pytest.approx(8.46) and v1.soc_kwh_per_100km == pytest.approx(169.2)
    assert v1.grid_kwh == 16.5 and v1.grid_kwh_per_100km == pytest.approx(165.0)
    assert (v1.soc_start_pct, v1.soc_end_pct) == (80.0, 80.0)


def test_loaded_empty_split_tonne_km_and_delivered_tonnes(data):
    # T1 weighed 01:00:30, 40 t. Loaded from the 01:01 frame until the stop that starts at 01:06
    # (11 min, 4 km from the weighbridge). The 01:00 stop at the weighbridge (0 km moved) does not end it.
    # loaded: 0.1 + 2.0 + 2.0 - 0.5 + 2.0 = 5.6 kWh over 4 km -> 140 kWh/100 km
    # empty:  7.9 - 5.6 = 2.3 kWh over 1 integrated km -> 230 kWh/100 km; empty km incl. gap = 10 - 4 = 6
    # tonne-km 40 x 4 = 160 -> 7.9 / 160 = 0.049375 kWh/tkm (empty return energy included)
    # per delivered tonne: 7.9 / 40 = 0.1975 kWh/t battery side, 16.5 / 40 = 0.4125 kWh/t grid side
    v1 = data["daily"]["V1"]
    assert (v1.loaded_km, v1.empty_km) == (pytest.approx(4.0), pytest.approx(6.0))
    assert v1.loaded_battery_kwh_per_100km == pytest.approx(140.0)
    assert v1.empty_battery_kwh_per_100km == pytest.approx(230.0)
    assert v1.tonne_km == pytest.approx(160.0) and v1.battery_kwh_per_tkm == pytest.approx(0.049375)
    assert (v1.tickets, v1.delivered_t) == (1, 40.0)
    assert v1.battery_kwh_per_delivered_t == pytest.approx(0.1975) and v1.grid_kwh_per_delivered_t == pytest.approx(0.4125)


def test_hydrogen_counts_refills(data):
    # decreases only: (50-45) + (45-40) + (90-85) = 15 % x 60 kg = 9 kg over 30 km -> 30 kg/100 km.
    # start - end would give (50 - 85) % x 60 = -21 kg: the refill of 50 % (30 kg) hides the use.
    # loaded 03:00-03:20 (stop of 30 min after 20 km): 6 kg; 35 t x 20 km = 700 tkm -> 9 / 700 kg/tkm.
    v2 = data["daily"]["V2"]
    assert v2.h2_used_kg == pytest.approx(9.0) and v2.h2_refilled_kg == pytest.approx(30.0)
    assert v2.h2_kg_per_100km == pytest.approx(30.0)
    assert v2.loaded_h2_kg == pytest.approx(6.0) and v2.h2_kg_per_tkm == pytest.approx(9 / 700)
    assert v2.h2_kg_per_delivered_t == pytest.approx(9 / 35)
    assert v2.battery_kwh_per_100km is None   # no V / I reported: nothing integrated -> undefined, not 0


def test_diesel_litres_per_100km(data):
    # counter 1,000 -> 1,010 -> 1,030 L over 100 km -> 30 L/100 km
    v6 = data["daily"]["V6"]
    assert v6.diesel_l == pytest.approx(30.0) and v6.diesel_l_per_100km == pytest.approx(30.0)


def test_fleet_month_is_ratio_of_sums(data):
    # C1 BEV = V1 (7.9 kWh / 5 km) + V3 (10 kWh / 10 km): 17.9 / 15 x 100 = 119.33 kWh/100 km
    # (mean of truck ratios would be (158 + 100) / 2 = 129); grid (16.5 + 11) / (10 + 10) x 100 = 137.5
    f = data["fleet"][("C1", "BEV")]
    assert f.trucks == 2 and f.truck_days == 2
    assert f.battery_kwh_per_100km == pytest.approx(17.9 / 15 * 100)
    assert f.grid_kwh_per_100km == pytest.approx(137.5)
    assert data["fleet"][("C1", "FCEV")].h2_kg_per_100km == pytest.approx(30.0)


def test_battery_out_vs_grid_in_within_losses(data):
    # V3: 10 kWh out, SOC 50 -> 50 (no stored change) -> 10 kWh must have come in; grid 11 kWh
    #     -> 10 / 11 = 0.909 within [0.80 x 11 - 2.82, 1.00 x 11 + 2.82] -> ok
    # V4: same truck day, grid 20 kWh -> band [13.18, 22.82] excludes 10 -> outside_losses
    # V5: SOC 20 -> 90 at standstill without current: a swap, grid energy cannot balance -> not applicable
    c = data["check"]
    assert c["V3"].check_status == "ok" and c["V3"].implied_charge_efficiency == pytest.approx(10 / 11)
    assert c["V3"].measured_charge_efficiency == pytest.approx(10 / 11)
    assert c["V4"].check_status == "outside_losses"
    assert c["V5"].check_status == "not_applicable_swaps"
    assert "V2" not in c and c["V3"].rule_version == "rules_v2026.1"


def test_trips_per_ticket(data):
    # T1: 4 loaded km x 40 t = 160 tkm; T2: 20 km x 35 t = 700 tkm; T9: no telematics -> km unknown (null)
    tr = data["trips"]
    assert tr["T1"].loaded_km == pytest.approx(4.0) and tr["T1"].tonne_km == pytest.approx(160.0)
    assert tr["T2"].tonne_km == pytest.approx(700.0) and tr["T2"].loaded_h2_kg == pytest.approx(6.0)
    assert tr["T9"].loaded_km is None and tr["T9"].mine_id == "M2"


def test_frame_by_frame_intervals_of_a_truck(data):
    # V1 frame by frame (the rows truck_interval_sums adds up): loaded are the frames from T1's weighing
    # (01:00:30) to the stop that starts at 01:06, i.e. 01:01-01:05; the 01:00 frame is before the ticket.
    frames = data["frames"]
    assert [r.ts.strftime("%H:%M") for r in frames if r.loaded] == ["01:01", "01:02", "01:03", "01:04", "01:05"]
    assert {r.ticket_id for r in frames} == {None, "T1"} and frames[0].ticket_id is None
    assert all(r.net_t == 40.0 for r in frames[1:]) and frames[0].net_t is None
    # 01:04 -> 01:05 at -50 A while moving: regen 600 x 50 x 60 / 3.6e6 = 0.5 kWh, nothing discharged
    at_0104 = next(r for r in frames if r.ts.strftime("%H:%M") == "01:04")
    assert (at_0104.regen_kwh, at_0104.battery_discharge_kwh, at_0104.dt_s) == (pytest.approx(0.5), 0.0, 60.0)
    # 01:18 -> 01:30 is a 720 s gap: 5 km, not integrated; the last frame has no interval
    gap = next(r for r in frames if r.ts.strftime("%H:%M") == "01:18")
    assert (gap.integrated, gap.distance_km, gap.integrated_distance_km, gap.dt_s) == (False, 5.0, None, 720.0)
    assert (frames[-1].next_ts, frames[-1].dt_s, frames[-1].integrated) == (None, None, False)


def test_charging_loss_per_truck_day_and_fleet_month(data):
    # V1: grid 16.5 kWh (session S1) - 15.0 kWh into the battery at standstill (-300 A, 600 V, 300 s)
    #     = 1.5 kWh lost -> 1.5 / 16.5 = 9.09 % of the grid energy
    # V3: grid 11.0 - 10.0 (600 V x 200 A x 300 s at standstill) = 1.0 kWh -> 9.09 %
    # C1 BEV month: (16.5 + 11.0) - (15.0 + 10.0) = 2.5 kWh of 27.5 -> 9.09 % (ratio of sums)
    v1, v3 = data["daily"]["V1"], data["daily"]["V3"]
    assert v1.charging_loss_kwh == pytest.approx(1.5) and v1.charging_loss_pct == pytest.approx(1.5 / 16.5 * 100)
    assert v3.charging_loss_kwh == pytest.approx(1.0) and v3.charging_loss_pct == pytest.approx(1.0 / 11.0 * 100)
    f = data["fleet"][("C1", "BEV")]
    assert f.charging_loss_kwh == pytest.approx(2.5) and f.charging_loss_pct == pytest.approx(2.5 / 27.5 * 100)
    # V5 (BEV, swapped, no session): 0 kWh from the grid -> loss 0 - 0 = 0 kWh, share undefined
    v5 = data["daily"]["V5"]
    assert v5.charging_loss_kwh == pytest.approx(0.0) and v5.charging_loss_pct is None


def test_ratios_that_do_not_apply_to_the_powertrain_are_null(data):
    # a BEV has no hydrogen or diesel ratio (its H2 and fuel sums are 0 because nothing was reported);
    # a FCEV has no battery-side, grid or charging-loss figure; a diesel truck has neither
    v1, v2, v6 = data["daily"]["V1"], data["daily"]["V2"], data["daily"]["V6"]
    assert (v1.h2_kg_per_100km, v1.h2_kg_per_tkm, v1.diesel_l_per_100km) == (None, None, None)
    assert v2.h2_kg_per_100km == pytest.approx(30.0)
    assert (v2.battery_kwh_per_100km, v2.grid_kwh_per_100km, v2.battery_kwh_per_tkm, v2.regen_share_pct,
            v2.charging_loss_kwh, v2.charging_loss_pct, v2.diesel_l_per_100km) == (None,) * 7
    assert (v6.h2_kg_per_100km, v6.battery_kwh_per_100km, v6.grid_kwh_per_delivered_t) == (None, None, None)
    assert v6.diesel_l_per_100km == pytest.approx(30.0)
    fleet = data["fleet"]
    assert fleet[("C1", "BEV")].h2_kg_per_100km is None and fleet[("C1", "FCEV")].battery_kwh_per_100km is None


def test_battery_grid_check_counted_per_fleet_month(data):
    # C1 BEV: V3 ok (above); V1 took in 7.9 kWh (net out, SOC 80 -> 80) against 16.5 kWh of grid:
    #   band [0.80 x 16.5 - 2.82, 1.00 x 16.5 + 2.82] = [10.38, 19.32] excludes 7.9 -> outside_losses
    # C2 BEV: V4 outside_losses, V5 a swap -> not applicable (V7 has no telematics: no truck-day, not checked)
    # fuel-cell and diesel rows: not applicable -> null
    f = data["fleet_checked"]
    c1, c2 = f[("C1", "BEV")], f[("C2", "BEV")]
    assert (c1.bev_trucks_checked, c1.bev_trucks_check_ok, c1.bev_trucks_outside_losses) == (2, 1, 1)
    assert (c2.bev_trucks_checked, c2.bev_trucks_check_ok, c2.bev_trucks_outside_losses,
            c2.bev_trucks_not_applicable_swaps, c2.bev_trucks_no_grid_energy) == (2, 0, 1, 1, 0)
    assert c1.battery_grid_check_version == "rules_v2026.1"
    assert f[("C1", "FCEV")].bev_trucks_checked is None and f[("C2", "DIESEL")].bev_trucks_check_ok is None
    assert c1.battery_kwh_per_100km == pytest.approx(17.9 / 15 * 100)   # the fleet columns are kept
