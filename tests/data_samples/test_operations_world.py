"""Operations drive the demand: the production plan, production against it, and the scenario events of the
``long`` preset (Spring Festival, maintenance days, a station opening mid-window, a connector down a week),
checked from the landing files of a small, short slice of that preset."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import replace
from statistics import median

import pytest

from data_samples.config import PRESETS
from data_samples.generator import generate

from tests.data_samples.landing import as_float, csv_rows, manifest, parse_local

# 2026-02-09 .. 02-28 holds Spring Festival 2026 (holiday 02-15 .. 02-23); 20 days, 24 trucks: ~2 s
SLICE = replace(PRESETS["long"], start_date="2026-02-02", days=20, trucks=24, station_opens_day=8,
                connector_outage_day=3, fault_rate=0.0)


@pytest.fixture(scope="module")
def ops_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("ops")
    generate(SLICE, str(out), jobs=1)
    return out


def _plans(root):
    return {(r["mine_id"], r["shift_date"], int(r["shift_no"])): r for r in csv_rows(root, "production_plan")}


def test_every_shift_of_the_window_has_a_plan_published_before_it_starts(ops_world, committed):
    for root in (ops_world, committed):
        plans = _plans(root)
        produced = [r for r in csv_rows(root, "mine_production") if as_float(r["raw_coal_t"]) is not None]
        shifts = {(r["mine_id"], r["shift_date"], int(r["shift_no"])) for r in produced}
        first = manifest(root)["window"]["start_local"][:10]
        in_window = {k for k in shifts if k[1] >= first}
        assert in_window and in_window <= set(plans)
        for key in in_window:
            p = plans[key]
            assert parse_local(p["published_local"]) < parse_local(p["shift_start_local"]), key
        # the plan for the day after the window is out by the last evening (tomorrow's forecast needs it)
        last = (dt.date.fromisoformat(first) + dt.timedelta(days=manifest(root)["window"]["days"])).isoformat()
        assert any(k[1] == last for k in plans)


def test_production_follows_the_plan_except_stops(ops_world):
    plans = _plans(ops_world)
    ratios = []
    for r in csv_rows(ops_world, "mine_production"):
        p = plans.get((r["mine_id"], r["shift_date"], int(r["shift_no"])))
        planned = as_float(p["planned_raw_coal_t"]) if p else None
        if not planned:
            continue
        actual = as_float(r["raw_coal_t"])
        if actual:                                       # 0 = an unplanned stop
            ratios.append(actual / planned)
    # actual = plan x (1 + N(0, 6 %)): the middle of the ratios near 1, none beyond 5 sigma
    assert 0.97 < median(ratios) < 1.03 and all(0.7 < x < 1.3 for x in ratios)


def test_spring_festival_and_maintenance_days_cut_plan_trips_and_charging(ops_world):
    plans = csv_rows(ops_world, "production_plan")
    per_day = defaultdict(float)
    maintenance = set()
    for p in plans:
        per_day[p["shift_date"]] += float(p["planned_raw_coal_t"])
    by_mine_day = defaultdict(list)
    for p in plans:
        by_mine_day[(p["mine_id"], p["shift_date"])].append(p)
    for (mine, day), ps in by_mine_day.items():
        if all(float(p["planned_raw_coal_t"]) == 0 and int(p["trucks_dispatched"]) == 0 for p in ps):
            maintenance.add((mine, day))
    # slowdown from 4 days before the holiday (02-11) to 6 days after it (03-01): x 0.35
    festival = [per_day[d] for d in per_day if "2026-02-12" <= d <= "2026-02-23"]
    normal = [per_day[d] for d in per_day if "2026-02-02" <= d <= "2026-02-09"]
    assert max(festival) < 0.6 * median(normal)
    energy = defaultdict(float)
    for s in csv_rows(ops_world, "charging_sessions"):
        energy[s["plug_in_local"][:10]] += float(s["meter_stop_kwh"]) - float(s["meter_start_kwh"])
    festival_kwh = [energy[d] for d in energy if "2026-02-14" <= d <= "2026-02-22"]
    normal_kwh = [energy[d] for d in energy if "2026-02-03" <= d <= "2026-02-09"]
    assert median(festival_kwh) < 0.7 * median(normal_kwh)
    # a planned maintenance day: no truck loads at that mine during that shift-day
    assert maintenance, "the slice should hold at least one maintenance day"
    starts = {m["mine_id"]: m["shift_day_start_local"] for m in csv_rows(ops_world, "mines")}
    for mine, day in maintenance:
        begin = parse_local(f"{day} {starts[mine]}:00")
        loads = [t for t in csv_rows(ops_world, "weighbridge") if t["mine_id"] == mine
                 and begin <= parse_local(t["load_time_local"]) < begin + dt.timedelta(days=1)]
        assert loads == [], (mine, day)


def test_a_station_opens_mid_window_and_a_connector_is_down_for_a_week(ops_world):
    sessions = csv_rows(ops_world, "charging_sessions")
    stations = sorted({r["station_id"] for r in csv_rows(ops_world, "charging_stations")})
    opening = (dt.date(2026, 2, 2) + dt.timedelta(days=SLICE.station_opens_day)).isoformat()
    last = [s for s in sessions if s["station_id"] == stations[-1]]
    assert last and min(s["plug_in_local"] for s in last) >= opening
    # connector 1 of the first station: 255 on 02-05 10:00, 1 a week later; no session in between
    status = [(r["status_time_local"], r["status_code"]) for r in csv_rows(ops_world, "connector_status")
              if r["station_id"] == stations[0] and r["connector_id"] == "1"]
    assert ("2026-02-05 10:00:00", "255") in status and ("2026-02-12 10:00:00", "1") in status
    down = [s for s in sessions if s["station_id"] == stations[0] and s["connector_id"] == "1"
            and s["plug_out_local"] > "2026-02-05 10:00:00" and s["plug_in_local"] < "2026-02-12 10:00:00"]
    assert down == []
    others = [s for s in sessions if s["station_id"] == stations[0] and s["connector_id"] != "1"
              and "2026-02-05 10:00:00" < s["plug_in_local"] < "2026-02-12 10:00:00"]
    assert others                                       # the station kept charging on its other connectors
