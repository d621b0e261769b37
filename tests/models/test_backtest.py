import numpy as np
import pandas as pd
import pytest

from models import features as fe
from models.backtest import BacktestConfig, compute_metrics, point_metrics, run_backtest, holdout_window
from models.baselines import baseline_forecasts, seasonal_naive

from .conftest import FAST, make_series


def test_seasonal_naive_respects_the_horizon():
    y = np.arange(400, dtype=float)[:, None]
    assert seasonal_naive(y, 1, 24)[100, 0] == 76          # same hour yesterday
    assert seasonal_naive(y, 24, 24)[100, 0] == 76
    assert seasonal_naive(y, 25, 24)[100, 0] == 52          # yesterday is too recent at 25 h: two days back
    assert seasonal_naive(y, 168, 24)[200, 0] == 32         # at 168 h the daily naive is last week's value
    assert seasonal_naive(y, 24, 168)[200, 0] == 32
    assert np.isnan(seasonal_naive(y, 24, 168)[100, 0])


def test_point_metrics_by_hand():
    m = point_metrics(np.array([0.0, 2.0, 4.0, 0.0]), np.array([0.0, 1.0, 6.0, 1.0]))
    assert m["mae"] == pytest.approx(1.0)                   # (0 + 1 + 2 + 1) / 4
    assert m["rmse"] == pytest.approx(np.sqrt(6 / 4))
    # sMAPE: 0 (0/0), 2*1/3, 2*2/10, 2*1/1 -> mean
    assert m["smape_pct"] == pytest.approx(100 * (0 + 2 / 3 + 0.4 + 2) / 4)
    assert m["wape_pct"] == pytest.approx(100 * 4 / 6)
    assert m["bias_pct"] == pytest.approx(100 * 2 / 6)


def test_metrics_coverage_and_relative_mae():
    pred = pd.DataFrame({"site_id": ["a"] * 4, "ts": pd.date_range("2024-01-01", periods=4, freq="h"),
                         "actual": [1.0, 2.0, 3.0, 4.0], "p50": [1.0, 2.0, 3.0, 5.0],
                         "p10": [0.5, 2.5, 2.0, 3.0], "p90": [1.5, 3.0, 4.0, 3.5],
                         "snaive_daily": [2.0, 3.0, 4.0, 5.0], "snaive_weekly": [3.0, 4.0, 5.0, 6.0]})
    m = compute_metrics(pred, {"__all__": 2.0, "a": 2.0})["overall"]
    assert m["model"]["mae"] == 0.25 and m["snaive_weekly"]["mae"] == 2.0
    assert m["model"]["rel_mae_vs_snaive_weekly"] == pytest.approx(0.125)
    assert m["model"]["coverage_p10_p90"] == pytest.approx(0.5)     # rows 1 and 3 inside
    assert m["model"]["mase"] == pytest.approx(0.125)
    assert m["snaive_daily"]["coverage_p10_p90"] is None


def test_metrics_count_ties_at_a_bound_both_ways():
    # four empty hours forecast [0, 0] with P50 0 (actual 0: on both bounds), one busy hour 3 in [1, 5] with
    # P50 3, one hour 6 above [1, 5] (P50 2). Closed cover: the four ties and the 3 -> 5/6; open cover
    # (P10 < y < P90): only the 3 -> 1/6. Below P10: none, at or below: the four ties -> 4/6; above P90: the
    # 6 -> 1/6, at or above: the ties and the 6 -> 5/6; actual = P50: the ties and the 3 -> 5/6
    pred = pd.DataFrame({"site_id": ["a"] * 6, "ts": pd.date_range("2024-01-01", periods=6, freq="h"),
                         "actual": [0.0, 0, 0, 0, 3, 6], "p50": [0.0, 0, 0, 0, 3, 2],
                         "p10": [0.0, 0, 0, 0, 1, 1], "p90": [0.0, 0, 0, 0, 5, 5],
                         "snaive_daily": [0.0] * 6, "snaive_weekly": [0.0] * 6})
    m = compute_metrics(pred)["overall"]["model"]
    assert m["coverage_p10_p90"] == pytest.approx(5 / 6) and m["coverage_p10_p90_open"] == pytest.approx(1 / 6)
    assert m["below_p10"] == 0 and m["at_or_below_p10"] == pytest.approx(4 / 6)
    assert m["above_p90"] == pytest.approx(1 / 6) and m["at_or_above_p90"] == pytest.approx(5 / 6)
    assert m["actual_eq_p50"] == pytest.approx(5 / 6)


def _weekly_pattern(n_weeks=8, sites=("A", "B")):
    """Exactly weekly-periodic: 1 kWh every weekday hour, 0 at weekends (site B twice as much)."""
    idx = pd.date_range("2024-01-01", periods=24 * 7 * n_weeks, freq="h")    # starts on a Monday
    return pd.concat([pd.DataFrame({"site_id": s, "ts": idx, "energy_kwh": (j + 1.0) * (idx.dayofweek < 5)})
                      for j, s in enumerate(sites)], ignore_index=True)


def test_backtest_known_answer_on_a_weekly_periodic_series():
    df = _weekly_pattern()
    p = fe.to_panel(df, "h")
    cfg = BacktestConfig(horizon=24, test_fraction=0.25, max_refits=2, params=FAST,
                         features=fe.FeatureConfig(holidays="none"), window_candidates=(None, 14))
    pred, m = run_backtest(p, cfg)
    start, end = holdout_window(p, 0.25)
    assert (end - start + 1) == 24 * 14 and pred.ts.min() == p.index[start]     # last two weeks exactly
    ov = m["overall"]
    assert ov["snaive_weekly"]["mae"] == 0.0
    # same hour yesterday is wrong on Saturdays (Fri value) and Mondays (Sun value): 2 days in 7, by 1 or 2 kWh
    assert ov["snaive_daily"]["mae"] == pytest.approx((2 / 7) * 1.5)
    assert ov["model"]["mae"] < 0.1 * ov["snaive_daily"]["mae"]
    assert ov["n"] == 2 * 24 * 14
    # every forecast is issued H steps before its target by a model trained only on earlier targets
    assert (pred.ts - pred.issued_at == pd.Timedelta(hours=24)).all()
    assert (pred.model_trained_to <= pred.issued_at).all()
    assert set(m["per_site"]) == {"A", "B"}


@pytest.mark.parametrize("H", [1, 24])
def test_backtest_forecasts_do_not_see_the_future(H):
    """Perturb every value from time tau on: forecasts issued before tau must not change (features *and*
    model refits only use the past); forecasts issued later should."""
    df = make_series(n_days=30)
    p = fe.to_panel(df, "h")
    cfg = BacktestConfig(horizon=H, test_fraction=0.3, refit_every=24 * 4, params=dict(FAST, max_iter=12),
                         features=fe.FeatureConfig(holidays="cn"), window_candidates=(None, 14))
    pred1, _ = run_backtest(p, cfg)
    tau = pred1.issued_at.sort_values().unique()[len(pred1.issued_at.unique()) // 2]
    q = p.copy()
    ti = int(np.searchsorted(q.index, tau))
    q.y[ti:] = q.y[ti:] * 3 + 7
    pred2, _ = run_backtest(q, cfg)
    before = pred1.issued_at < tau
    cols = ["p10", "p50", "p90", "snaive_daily", "snaive_weekly"]
    pd.testing.assert_frame_equal(pred1.loc[before, cols], pred2.loc[before, cols])
    assert not np.allclose(pred1.loc[~before, "p50"], pred2.loc[~before, "p50"])


def test_baselines_on_panel_grid():
    p = fe.to_panel(_weekly_pattern(n_weeks=3, sites=("A",)), "h")
    b = baseline_forecasts(p, 1)
    t = 24 * 8 + 5    # Tuesday of week 2, 05:00
    assert b["snaive_daily"][t, 0] == p.y[t - 24, 0] and b["snaive_weekly"][t, 0] == p.y[t - 168, 0]
