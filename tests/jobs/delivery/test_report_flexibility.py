"""The planners' report data for load flexibility (month aggregation by hand) and its heatmap chart."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from jobs.delivery.report import charts
from jobs.delivery.report.data import _flexibility

THU, FRI = dt.date(2026, 10, 1), dt.date(2026, 10, 2)     # weekdays 3 and 4 (Monday = 0)


def test_month_flexibility_is_a_ratio_of_sums_and_counts_each_station_day_once(spark):
    rows = [  # date, hour, as charged, flexible, capacity-exceeded sessions, day peak as charged / min / removed
        (THU, 8, 100.0, 100.0, 0, 200.0, 125.0, 75.0), (THU, 9, 200.0, 100.0, 1, 200.0, 125.0, 75.0),
        (FRI, 9, 100.0, 0.0, 0, 100.0, 100.0, 0.0),
    ]
    flex = spark.createDataFrame(
        [("ST1", "C1", "Zhungeer", *r) for r in rows],
        "station_id string, company_id string, banner string, date_local date, hour_local int, as_charged_kwh double, "
        "flexible_kwh double, capacity_exceeded_sessions long, day_peak_as_charged_kw double, day_min_peak_kw double, "
        "day_peak_removed_kw double")
    heatmap, month = (df.toPandas() for df in _flexibility(flex))
    cells = {(r.weekday, r.hour_local): r.flexible_share_pct for r in heatmap.itertuples()}
    # Thu 08: 100/100; Thu 09: 100/200; Fri 09: 0/100
    assert cells == {(3, 8): pytest.approx(100.0), (3, 9): pytest.approx(50.0), (4, 9): pytest.approx(0.0)}
    m = month.iloc[0]
    # 200 of 400 kWh flexible = 50 %; peaks per day, not per hour: max 200, removed (75 + 0) / 2 = 37.5, max 75
    assert (m.days, m.as_charged_kwh, m.flexible_kwh, m.flexible_share_pct) == (2, 400.0, 200.0, pytest.approx(50.0))
    assert (m.max_day_peak_as_charged_kw, m.mean_day_peak_removed_kw, m.max_day_peak_removed_kw) == (
        200.0, pytest.approx(37.5), 75.0)
    assert m.capacity_exceeded_session_hours == 1


def test_flexibility_heatmap_draws_the_stations_with_rows_only():
    df = pd.DataFrame({"station_id": ["ST1", "ST1"], "weekday": [3, 4], "hour_local": [8, 9],
                       "flexible_share_pct": [100.0, None]})
    chart = charts.flexibility_heatmaps(df, stations=[("ST1", "Hub"), ("ST2", "Other")], title="t", caption="c")
    assert chart.kind == "flexibility" and chart.entities == ["ST1"] and len(chart.png_base64) > 1000
    assert charts.flexibility_heatmaps(df, stations=[("ST2", "Other")], title="t", caption="c") is None
