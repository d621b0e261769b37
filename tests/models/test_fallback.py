"""The seasonal-naive daily fallback served while a station's history is too short to train on."""
from __future__ import annotations

import numpy as np
import pandas as pd

from models.baselines import seasonal_naive_daily_forecast


def test_last_day_repeated_with_the_spread_of_the_same_hour():
    # site A, 3 days; hour 08 holds 10, 20, 30 kWh on days 1-3, hour 09 only 6 kWh on day 3, nothing else
    rows = [("A", "2026-11-02 08:00", 10.0), ("A", "2026-11-03 08:00", 20.0), ("A", "2026-11-04 08:00", 30.0),
            ("A", "2026-11-04 09:00", 6.0), ("A", "2026-11-04 23:00", 0.0)]
    hist = pd.DataFrame(rows, columns=["site_id", "ts", "energy_kwh"]).assign(ts=lambda d: pd.to_datetime(d.ts))
    fc = seasonal_naive_daily_forecast(hist, "2026-11-05 00:00", horizon=168)
    assert len(fc) == 168 and fc.lead.tolist() == list(range(1, 169))
    assert fc.ts.iloc[0] == pd.Timestamp("2026-11-05 00:00") and (fc.model_horizon == 24).all()
    h8 = fc[fc.ts.dt.hour == 8]
    # P50 = 30 (the last day) on all 7 days; P10/P90 = 10 %/90 % quantiles of {10, 20, 30} = 12 and 28,
    # widened to contain the P50 -> P90 = 30
    assert h8.p50.tolist() == [30.0] * 7 and np.allclose(h8.p10, 12.0) and np.allclose(h8.p90, 30.0)
    h9 = fc[fc.ts.dt.hour == 9]
    # the site exists from day 1 08:00, so hour 09 of days 1-2 is zero demand: {0, 0, 6} -> P10 0,
    # P50 6 (the last day), P90 0 + 0.8 * 6 = 4.8 widened to 6
    assert h9.p50.tolist() == [6.0] * 7 and (h9.p10 == 0).all() and np.allclose(h9.p90, 6.0)
    # hour 07 of day 1 is before the site's first row (unknown); days 2-3 are zero -> all zero
    assert (fc[fc.ts.dt.hour == 7][["p10", "p50", "p90"]] == 0).all().all()


def test_unknown_last_day_falls_back_to_the_median_of_known_days():
    # the feed stops after day 2: day 3 (the day before start) is unknown, not zero
    rows = [("A", "2026-11-02 08:00", 10.0), ("A", "2026-11-03 08:00", 20.0)]
    hist = pd.DataFrame(rows, columns=["site_id", "ts", "energy_kwh"]).assign(ts=lambda d: pd.to_datetime(d.ts))
    fc = seasonal_naive_daily_forecast(hist, "2026-11-05 00:00", horizon=24)
    assert fc.loc[fc.ts.dt.hour == 8, "p50"].tolist() == [15.0]
