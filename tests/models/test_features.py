import datetime as dt

import numpy as np
import pandas as pd
import pytest

from models import features as fe

from .conftest import make_series


def _series(df, site, ts):
    r = df[(df.site_id == site) & (df.ts == pd.Timestamp(ts))]
    return float(r.energy_kwh.iloc[0]) if len(r) else 0.0


def test_sessions_are_spread_over_the_hours_they_span():
    s = pd.DataFrame({
        "site_id": ["A", "A", "B", "B"],
        "start_ts": ["2024-03-01 10:30", "2024-03-01 23:45", "2024-03-01 08:10", "2024-03-01 09:00"],
        "end_ts": ["2024-03-01 12:30", "2024-03-02 00:15", None, "2024-03-01 09:00"],
        "energy_kwh": [4.0, 1.0, 3.0, 2.0],
    })
    out = fe.sessions_to_series(s, "h")
    # 2 h session, 10:30-12:30: a quarter, a half and a quarter of the energy
    assert _series(out, "A", "2024-03-01 10:00") == pytest.approx(1.0)
    assert _series(out, "A", "2024-03-01 11:00") == pytest.approx(2.0)
    assert _series(out, "A", "2024-03-01 12:00") == pytest.approx(1.0)
    # across midnight: half before, half after
    assert _series(out, "A", "2024-03-01 23:00") == pytest.approx(0.5)
    assert _series(out, "A", "2024-03-02 00:00") == pytest.approx(0.5)
    # missing or zero-length end: all energy in the start hour
    assert _series(out, "B", "2024-03-01 08:00") == pytest.approx(3.0)
    assert _series(out, "B", "2024-03-01 09:00") == pytest.approx(2.0)
    assert out.energy_kwh.sum() == pytest.approx(10.0)
    daily = fe.sessions_to_series(s, "D")
    assert _series(daily, "A", "2024-03-01") == pytest.approx(4.5)
    assert _series(daily, "A", "2024-03-02") == pytest.approx(0.5)


def test_long_sessions_are_capped():
    s = pd.DataFrame({"site_id": ["A"], "start_ts": ["2024-03-01 00:00"], "end_ts": ["2024-03-11 00:00"],
                      "energy_kwh": [72.0]})
    out = fe.sessions_to_series(s, "h", max_duration_h=72)
    assert len(out) == 72 and out.energy_kwh.sum() == pytest.approx(72.0)


def test_panel_fills_gaps_with_zero_after_site_start_only():
    df = pd.DataFrame({"site_id": ["A", "A", "B"],
                       "ts": ["2024-03-01 01:00", "2024-03-01 05:00", "2024-03-01 03:00"],
                       "energy_kwh": [1.0, 2.0, np.nan]})
    p = fe.to_panel(df, "h")
    a, b = p.sites.index("A"), p.sites.index("B")
    assert p.n_steps == 24 and p.index[0] == pd.Timestamp("2024-03-01")
    assert np.isnan(p.y[0, a]) and p.y[1, a] == 1.0 and p.y[3, a] == 0.0 and p.y[5, a] == 2.0
    assert np.isnan(p.y[6, a])                     # after the last observation: unknown, not zero
    assert p.first[b] == p.n_steps                 # only an explicit empty value: B never observed
    p2 = fe.to_panel(df, "h", gaps="nan")
    assert np.isnan(p2.y[3, a])


def test_chinese_calendar_flags():
    days = pd.DatetimeIndex(["2023-01-23", "2023-01-28", "2023-02-04", "2023-02-06"])
    f = fe.day_flags(days, "cn")
    # Spring Festival Monday: holiday; Sat 28 Jan 2023: make-up working day; Sat 4 Feb: ordinary weekend
    assert f.loc["2023-01-23", ["offday", "holiday", "makeup_workday"]].tolist() == [1, 1, 0]
    assert f.loc["2023-01-28", ["offday", "holiday", "makeup_workday"]].tolist() == [0, 0, 1]
    assert f.loc["2023-02-04", ["offday", "holiday", "makeup_workday"]].tolist() == [1, 0, 0]
    assert f.loc["2023-02-06", ["offday", "holiday", "makeup_workday"]].tolist() == [0, 0, 0]
    # outside chinese_calendar's years: weekends only, no crash
    g = fe.day_flags(pd.DatetimeIndex(["1999-10-01", "1999-10-02"]), "cn")
    assert g["offday"].tolist() == [0, 1]


def test_hand_worked_lags_and_windows():
    # y[t] = t on one site, 4 weeks hourly: every lag and window has a closed form
    T = 24 * 28
    df = pd.DataFrame({"site_id": "A", "ts": pd.date_range("2024-03-04", periods=T, freq="h"),
                       "energy_kwh": np.arange(T, dtype=float)})
    p = fe.to_panel(df, "h")
    for H in (1, 24, 168):
        F = fe.build_features(p, H, fe.FeatureConfig(holidays="none"))
        sc = F["_scale"][:, 0]
        t = 600
        unscaled = {k: F[k][t, 0] * sc[t] for k in F if k.startswith(("lag_", "roll_mean", "sameh_m", "samewh_m"))}
        assert unscaled[f"lag_{H}"] == pytest.approx(t - H)
        assert unscaled[f"lag_{H + 1}"] == pytest.approx(t - H - 1)
        kd = -(-H // 24)
        assert unscaled[f"lag_{24 * kd}"] == pytest.approx(t - 24 * kd)
        assert unscaled["lag_168"] == pytest.approx(t - 168)
        # week ending at t - H: mean of t-H-167 .. t-H
        assert unscaled["roll_mean_week"] == pytest.approx(t - H - 83.5)
        assert unscaled["roll_mean_prevweek"] == pytest.approx(t - H - 168 - 83.5)
        # same hour on the first 7 available days (t-24k, k >= kd), only those inside the series
        lags = [24 * (kd + i) for i in range(7) if t - 24 * (kd + i) >= 0]
        assert unscaled["sameh_mean"] == pytest.approx(np.mean([t - L for L in lags]))
        # scale: mean of the 4 weeks ending at t - H (the series starts at 0, so fewer values here)
        assert sc[t] == pytest.approx(np.mean(np.arange(0, t - H + 1)))
        assert F["site_age_days"][t, 0] == pytest.approx((t - H) / 24)


def test_daytype_profile_uses_days_of_the_same_type():
    # weekdays 10 kWh every hour, weekends 2 kWh: the day-type mean is exact
    idx = pd.date_range("2024-03-04", periods=24 * 21, freq="h")
    y = np.where(idx.dayofweek < 5, 10.0, 2.0)
    p = fe.to_panel(pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": y}), "h")
    F = fe.build_features(p, 24, fe.FeatureConfig(holidays="none"))
    sc = F["_scale"][:, 0]
    sat = np.nonzero((idx.dayofweek == 5) & (idx >= "2024-03-16"))[0][10]
    mon = np.nonzero((idx.dayofweek == 0) & (idx >= "2024-03-18"))[0][10]
    assert F["daytype_mean"][sat, 0] * sc[sat] == pytest.approx(2.0)
    assert F["daytype_mean"][mon, 0] * sc[mon] == pytest.approx(10.0)
    assert F["offday_ref_day"][mon, 0] == 1.0 and F["offday"][mon, 0] == 0.0


@pytest.mark.parametrize("H", [1, 24, 168])
@pytest.mark.parametrize("level", [{}, {"scale_by": "recent", "level_halflife_days": 3.0}])
def test_no_future_values_leak_into_features(H, level):
    """Perturbing every value after a cut-off c must leave the features of all targets t <= c + H unchanged
    (their issue time t - H <= c), and must change some target after that (the test can see leakage)."""
    df = make_series(n_days=35)
    p = fe.to_panel(df, "h")
    cut = 24 * 21 + 7
    q = p.copy()
    rng = np.random.default_rng(1)
    q.y[cut + 1:] = q.y[cut + 1:] * 10 + rng.random(q.y[cut + 1:].shape) * 50
    cfg = fe.FeatureConfig(holidays="cn", **level)
    Fp, Fq = fe.build_features(p, H, cfg), fe.build_features(q, H, cfg)
    changed_after = False
    for k in Fp:
        a, b = Fp[k], Fq[k]
        np.testing.assert_array_equal(a[: cut + H + 1], b[: cut + H + 1], err_msg=f"{k} leaks at H={H}")
        if not np.array_equal(a[cut + H + 1:], b[cut + H + 1:], equal_nan=True):
            changed_after = True
    assert changed_after


def test_read_input_detects_sessions_and_aggregates_finer_steps():
    sess = pd.DataFrame({"site_id": ["A"], "start_ts": ["2024-03-01 10:00"], "end_ts": ["2024-03-01 12:00"],
                         "energy_kwh": [2.0]})
    assert fe.read_input(sess, "h").energy_kwh.tolist() == [1.0, 1.0]
    q = pd.DataFrame({"site_id": "A", "ts": pd.date_range("2024-03-01", periods=8, freq="15min"),
                      "energy_kwh": 1.0, "trucks_in_service": [3, 3, 3, 3, 5, 5, 5, 5]})
    out = fe.read_input(q, "h")
    assert out.energy_kwh.tolist() == [4.0, 4.0] and out.trucks_in_service.tolist() == [3, 5]
    with pytest.raises(ValueError):
        fe.read_input(pd.DataFrame({"x": [1]}), "h")
    assert dt.date(2024, 3, 1) == out.ts.iloc[0].date()


def test_time_varying_exog_relative_to_its_reference_hours():
    # 14 days hourly, y = 10 kWh every hour; planned_trips = 4 on days 0-12 and 8 on day 13; rated_kw = 300.
    # At H = 24 a target hour t on day 13 has reference days 12..6 (the 7 days of sameh_mean), all with 4 trips:
    #   rel = 8 / mean(4 x 7) = 2.0; x_sameh = sameh_mean (10 / scale 10 = 1.0) x 2.0 = 2.0
    #   lag-day reference (day 12) also 4: x_lagday = lag_24 (1.0) x 8 / 4 = 2.0
    # On day 12 (reference days 11..5, all 4): rel = 1.0. rated_kw is static: no relative features.
    idx = pd.date_range("2024-03-04", periods=24 * 14, freq="h")
    trips = np.where(np.arange(len(idx)) // 24 == 13, 8.0, 4.0)
    df = pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": 10.0, "planned_trips": trips, "rated_kw": 300.0})
    p = fe.to_panel(fe.read_input(df, "h", exog=("planned_trips", "rated_kw")), "h")
    F = fe.build_features(p, 24, fe.FeatureConfig(holidays="none", exog=("planned_trips", "rated_kw")))
    t13, t12 = 24 * 13 + 15, 24 * 12 + 15
    assert F["exog_planned_trips_rel"][t13, 0] == pytest.approx(2.0)
    assert F["exog_planned_trips_x_sameh"][t13, 0] == pytest.approx(2.0)
    assert F["exog_planned_trips_x_lagday"][t13, 0] == pytest.approx(2.0)
    assert F["exog_planned_trips_rel"][t12, 0] == pytest.approx(1.0)
    assert not any(k.startswith("exog_rated_kw_") for k in F)
    off = fe.build_features(p, 24, fe.FeatureConfig(holidays="none", exog=("planned_trips",), exog_relative=False))
    assert [k for k in off if k.startswith("exog_")] == ["exog_planned_trips"]
