"""Hydrogen-station utilisation: nameplate share, fills per dispenser-day, kg per fill, busy time,
days without fills, ratio-of-sums roll-ups."""
from __future__ import annotations

import datetime as dt

import pytest

from jobs.kpi.h2_utilisation import h2_rollup, h2_station_daily, h2_station_monthly
from tests.jobs.kpi.helpers import by, d, silver

STATIONS = [
    {"station_id": "H1", "company_id": "C1", "banner": "Zhungeer", "nameplate_kg_per_day": 1000.0, "dispensers": 2},
    {"station_id": "H2", "company_id": "C2", "banner": "Etuoke", "nameplate_kg_per_day": 500.0, "dispensers": 1},
]


def fill(fid, station, dispenser, start, minutes, kg):
    t0 = dt.datetime.fromisoformat(start)
    return {"fill_id": fid, "station_id": station, "dispenser_id": dispenser, "start_ts_utc": t0,
            "end_ts_utc": t0 + dt.timedelta(minutes=minutes), "h2_kg": kg, "event_date_local": d(start[:10])}


FILLS = [
    fill("F1", "H1", "D1", "2026-10-01 01:00:00", 10, 40.0),
    fill("F2", "H1", "D1", "2026-10-01 02:00:00", 15, 35.0),
    fill("F3", "H1", "D2", "2026-10-01 03:00:00", 20, 45.0),
    fill("F4", "H2", "D1", "2026-10-01 04:00:00", 12, 50.0),
    fill("F5", "H2", "D1", "2026-10-03 04:00:00", 12, 50.0),     # outside the window: ignored
]


@pytest.fixture(scope="module")
def data(spark):
    daily_df = h2_station_daily(silver(spark, "h2_fills", FILLS), stations=silver(spark, "h2_stations", STATIONS),
                                start_date=d("2026-10-01"), end_date=d("2026-10-02"))
    rows = daily_df.collect()
    local = spark.createDataFrame(rows, daily_df.schema)
    return {"daily": by(rows, "station_id", "date_local"), "monthly": by(h2_station_monthly(local).collect(), "station_id"),
            "city": by(h2_rollup(local, period_col="date_local").collect(), "scope_level", "date_local")}


def test_station_day(data):
    # H1 on 10-01: fills 40 + 35 + 45 = 120 kg -> 120 / 1,000 kg nameplate = 12 %;
    # 3 fills / 2 dispensers = 1.5 fills per dispenser-day; 120 / 3 = 40 kg per fill;
    # dispensing (10 + 15 + 20) min = 2,700 s / (2 x 86,400 s) = 1.5625 % busy; both dispensers used -> 100 %.
    r = data["daily"][("H1", d("2026-10-01"))]
    assert (r.fills, r.h2_kg) == (3, 120.0)
    assert r.nameplate_utilisation_pct == pytest.approx(12.0)
    assert r.fills_per_dispenser_day == pytest.approx(1.5) and r.kg_per_fill == pytest.approx(40.0)
    assert r.dispenser_busy_pct == pytest.approx(2700 / 172800 * 100)
    assert r.active_dispenser_share_pct == pytest.approx(100.0) and r.definition_version == "h2_util_defs_v2026.1"


def test_day_without_fills_is_a_zero_row(data):
    # H1 on 10-02: no fill -> a row with 0 kg and 0 %, kg per fill undefined.
    r = data["daily"][("H1", d("2026-10-02"))]
    assert (r.fills, r.h2_kg, r.nameplate_utilisation_pct, r.kg_per_fill) == (0, 0.0, 0.0, None)
    assert len(data["daily"]) == 4   # 2 stations x 2 days; the fill on 10-03 is outside the window


def test_month_and_city_ratio_of_sums(data):
    # H1 over the two days: 120 kg / (2 x 1,000) = 6 %; 3 fills / (2 x 2) dispenser-days = 0.75;
    # days with fills 1 of 2 = 50 %.
    m = data["monthly"]["H1"]
    assert m.nameplate_utilisation_pct == pytest.approx(6.0) and m.fills_per_dispenser_day == pytest.approx(0.75)
    assert m.days_with_fills_pct == pytest.approx(50.0)
    # city on 10-01: (120 + 50) / (1,000 + 500) = 11.33 % (the mean of 12 % and 10 % would be 11 %).
    c = data["city"][("city", d("2026-10-01"))]
    assert c.stations == 2 and c.nameplate_utilisation_pct == pytest.approx(170 / 1500 * 100)
