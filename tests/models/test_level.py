"""Daily level x hourly shape (models.level) and how the refit check serves it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import features as fe
from models import gbm, level
from models.backtest import BacktestConfig, run_backtest

from .conftest import FAST, last_day_setup, make_series

N_DAYS = 42
SLOPE_KWH_PER_DAY = 4.0


def _linear_trend_office_hours(n_days: int = N_DAYS) -> pd.DataFrame:
    """Day d (0 = Monday 2024-01-01) delivers 24 + 4 d kWh, one eighth in each hour 09:00-16:00, 0 otherwise:
    a known linear daily trend and a fixed hourly shape, the same on work days and weekends."""
    idx = pd.date_range("2024-01-01", periods=24 * n_days, freq="h")
    day = np.arange(len(idx)) // 24
    busy = (idx.hour >= 9) & (idx.hour < 17)
    y = np.where(busy, (24.0 + SLOPE_KWH_PER_DAY * day) / 8, 0.0)
    return pd.DataFrame({"site_id": "A", "ts": idx, "energy_kwh": y})


def test_daily_totals_and_the_last_complete_day_by_hand():
    y = np.arange(48, dtype=float)[:, None]                   # 2 days of hourly values 0..47
    y2 = y.copy()
    y2[30] = np.nan
    # day 0: 0 + 1 + ... + 23 = 276; day 1: 24 + ... + 47 = 276 + 24 * 24 = 852; unknown hour -> unknown day
    assert level.daily_totals(y, 24)[:, 0] == pytest.approx([276.0, 852.0])
    assert np.isnan(level.daily_totals(y2, 24)[1, 0])
    # H = 24: a target at 22:00 on day 2 (t = 70) is issued at 22:00 on day 1: day 0 is the last complete
    # day; at 23:00 (t = 71) it is issued at 23:00 on day 1, which completes day 1
    assert level.last_complete_day(np.array([70, 71]), 24, 24).tolist() == [0, 1]
    # H = 1 at 00:00 of day 2 (t = 48): issued at 23:00 of day 1 -> day 1; daily grid, H = 1: yesterday
    assert level.last_complete_day(np.array([48]), 1, 24).tolist() == [1]
    assert level.last_complete_day(np.array([5]), 1, 1).tolist() == [4]


def test_flat_and_trend_levels_by_hand_on_a_daily_grid():
    # daily grid (the shape is the one step of the day), all work days: 1, 2, 3, 4, 10 kWh, forecast day 5 at
    # H = 1 day (last complete day L = 4).
    #   flat  = mean of the last 5 days = 20 / 5 = 4; the median shape is median / mean = 3 / 4
    #   trend = Theil-Sen: pairwise slopes 1 (six pairs among days 0-3), (10-1)/4 = 2.25, (10-2)/3 = 2.67,
    #           (10-3)/2 = 3.5, (10-4)/1 = 6 -> median of the 10 = 1 (the outlier day does not tilt it);
    #           intercept = median(y - 1 * day) = median(1, 1, 1, 1, 6) = 1; line at L = 4: 5;
    #           damped (0.5) one day ahead: 5 + 0.5 * 1 * 1 = 5.5
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0, np.nan])[:, None]
    out = level.level_shape_forecasts(y, 1, np.zeros(6), 1, level.LevelConfig(damping=0.5))
    assert out["flat_mean"][5, 0] == pytest.approx(4.0)
    assert out["flat_median"][5, 0] == pytest.approx(4.0 * 3 / 4)
    assert out["trend_mean"][5, 0] == pytest.approx(5.5)
    assert out["trend_median"][5, 0] == pytest.approx(5.5 * 3 / 4)
    # least squares would have followed the outlier: slope 2.0 (check of the claim above, not of the code)
    assert np.polyfit(np.arange(5), y[:5, 0], 1)[0] == pytest.approx(2.0)
    # the first day has no complete day before it: unknown, not 0
    assert np.isnan(out["flat_mean"][0, 0])


def test_day_types_use_their_own_reference_days():
    # daily grid, 14 days from a Monday: work days 10 kWh, weekends 2 kWh; the flat level of each day type
    # is its own (no trend: the Theil-Sen slope is 0 and the line sits at the level)
    idx = pd.date_range("2024-01-01", periods=14, freq="D")
    off = (idx.dayofweek >= 5).astype(int)
    y = np.where(off == 1, 2.0, 10.0)[:, None]
    out = level.level_shape_forecasts(y, 1, off, 1)
    assert out["flat_mean"][12, 0] == pytest.approx(2.0)      # Saturday of week 2
    assert out["trend_median"][12, 0] == pytest.approx(2.0)
    assert out["flat_mean"][13 - 6, 0] == pytest.approx(10.0)  # Monday of week 2: previous work days


def test_level_x_shape_is_exact_on_a_linear_trend_where_the_gbm_is_not():
    p = fe.to_panel(_linear_trend_office_hours(), "h")
    off = fe.day_flags(p.index[::24], "none")["offday"].to_numpy()
    t = np.arange(p.n_steps - 24 * 7, p.n_steps)               # the last week (Saturday and Sunday included)
    truth = p.y[t, 0]
    # undamped trend x mean share: the line through the same-type totals is 24 + 4 d exactly and each busy
    # hour's share is 1/8, so P50 = (24 + 4 d) / 8 at 09-16 h and 0 otherwise: exact
    exact = level.level_shape_forecasts(p.y, 24, off, 24, level.LevelConfig(damping=1.0))["trend_mean"][t, 0]
    assert np.max(np.abs(exact - truth)) < 1e-9
    # the default damping (0.5) lags by half the slope per day ahead: at H = 24 h the busy hours (09-16) are
    # issued before the day in between completes, so 2 days ahead: 0.5 * 4 kWh/day * 2 days / 8 = 0.5 kWh
    # in each of 8 of the 24 hours -> MAE = 0.5 * 8 / 24 = 1/6 kWh
    damped = level.level_shape_forecasts(p.y, 24, off, 24)["trend_mean"][t, 0]
    assert np.mean(np.abs(damped - truth)) == pytest.approx(1 / 6)
    # the GBM trained on the weeks before cannot place a level it has not seen: measured 0.27 kWh MAE with
    # the fast test trees, 0.63 with the production ones (mean hour 7.4 kWh)
    cfg = fe.FeatureConfig(holidays="none")
    F = fe.build_features(p, 24, cfg)
    model = gbm.fit_horizon_model(p, 24, cfg, train_end=int(t[0]) - 24, F=F, params=FAST)
    q = gbm.predict_cells(model, F, t, np.zeros(len(t), int))
    assert np.mean(np.abs(q.p50.to_numpy() - truth)) > 0.2


def test_the_refit_check_serves_level_x_shape_where_it_won_and_the_backtest_is_exact():
    p = fe.to_panel(_linear_trend_office_hours(), "h")
    feats = fe.FeatureConfig(holidays="none", level_damping=1.0)
    runs = {}
    for use_level in (True, False):
        cfg = BacktestConfig(horizon=24, test_fraction=0.25, max_refits=2, params=FAST, features=feats,
                             window_candidates=(None,), level=use_level)
        pred, m = run_backtest(p, cfg)
        runs[use_level] = (pred, m)
    pred, m = runs[True]
    # on the two weeks before each origin the undamped trend x shape had zero error: served at both refits,
    # and it is exact on the whole test window (P10 = P50 = P90: no validation errors to widen them by)
    assert m["setup"]["served_per_refit"] == ["level_shape", "level_shape"]
    assert [c["level_variant"] for c in m["setup"]["refit_checks"]] == ["trend_mean", "trend_mean"]
    assert m["overall"]["model"]["mae"] < 1e-9
    assert np.allclose(pred.p10, pred.p50) and np.allclose(pred.p90, pred.p50)
    # without the level candidates the GBM (or a baseline) is served and is not exact
    assert "level_shape" not in runs[False][1]["setup"]["served_per_refit"]
    assert runs[False][1]["overall"]["model"]["mae"] > 0.05


def test_served_level_and_mix_in_predict_cells():
    p, F, model, t_idx, s_idx = last_day_setup()
    raw = gbm.predict_cells(model, F, t_idx, s_idx)
    lv = F["_level_flat_median"][t_idx, s_idx]
    scale = F["_scale"][t_idx, s_idx]
    model.served, model.level_variant, model.calibration = "level_shape", "flat_median", {"p10": -0.2, "p90": 0.3}
    alone = gbm.predict_cells(model, F, t_idx, s_idx)
    # P50 = the level x shape value; P10 / P90 = P50 - 0.2 / + 0.3 site scales (P10 floored at 0)
    assert np.allclose(alone.p50, lv) and set(alone.method) == {"level_shape"}
    assert np.allclose(alone.p10, np.clip(lv - 0.2 * scale, 0, None)) and np.allclose(alone.p90, lv + 0.3 * scale)
    model.served = "gbm_level_mix"
    mix = gbm.predict_cells(model, F, t_idx, s_idx)
    assert np.allclose(mix.p50, 0.5 * raw.p50 + 0.5 * lv) and set(mix.method) == {"gbm_level_mix"}


def _changes_before(fn, y: np.ndarray, horizon: int, spd: int) -> list[int]:
    """Cut-offs c (one per step of a day) at which perturbing every value after c changed some output for a
    target t <= c + horizon, i.e. issued at or before c: leakage."""
    leaks = []
    base = fn(y)
    rng = np.random.default_rng(2)
    for c in range(24 * 21, 24 * 22):
        z = y.copy()
        z[c + 1:] = z[c + 1:] * 3 + rng.random(z[c + 1:].shape) * 20
        out = fn(z)
        if any(not np.array_equal(base[k][: c + horizon + 1], out[k][: c + horizon + 1], equal_nan=True)
               for k in base):
            leaks.append(c)
    return leaks


@pytest.mark.parametrize("H", [1, 24, 168])
def test_level_x_shape_sees_no_value_after_its_issue_time(H):
    p = fe.to_panel(make_series(n_days=35), "h")
    off = fe.day_flags(p.index[::24], "none")["offday"].to_numpy()
    right = _changes_before(lambda y: level.level_shape_forecasts(y, 24, off, H), p.y, H, 24)
    assert right == []
    # the same check on the component shifted by one step (built for horizon H - 1, served at H) catches it:
    # at the cut-off c = 23:00 - 1 step the leaky version already counts the day ending at c + 1 as complete
    if H > 1:
        shifted = _changes_before(lambda y: level.level_shape_forecasts(y, 24, off, H - 1), p.y, H, 24)
        assert shifted != []


def test_a_level_candidate_must_beat_the_gbm_by_the_margin():
    # 4 validation cells, y = 0, 2, 4, 6; GBM P50 = y + 1 (MAE 1). Only flat_mean is known (the other
    # variants are NaN, i.e. fall back to the GBM's P50: MAE 1)
    y = np.array([0.0, 2.0, 4.0, 6.0])
    t_idx, s_idx, ok = np.arange(4), np.zeros(4, int), np.ones(4, bool)
    nan = np.full((4, 1), np.nan)
    for off_by, served in ((0.95, "model"), (0.8, "level_shape")):
        F = {f"{level.PREFIX}{v}": nan for v in level.VARIANTS}
        F[f"{level.PREFIX}flat_mean"] = (y + off_by)[:, None]
        check = gbm.RefitCheck(val_mae={"model": 1.0})
        gbm.choose_level(check, {}, F, t_idx, s_idx, y + 1.0, y, ok)
        # level alone: MAE = off_by; mix: (1 + off_by) / 2. 0.95 and 0.975 are not 10 % below 1: the GBM
        # stays; 0.8 is (and beats the mix's 0.9)
        assert check.level_variant == "flat_mean"
        assert check.val_mae["level_shape"] == pytest.approx(off_by)
        assert check.val_mae["gbm_level_mix"] == pytest.approx((1 + off_by) / 2)
        assert check.served == served


def test_train_and_predict_serve_the_level_candidate_the_refit_check_chose():
    from models.forecast import predict, train
    hist = _linear_trend_office_hours(49)
    hist = hist[hist.ts < "2024-02-12"]
    bundle = train(hist, horizons=(24,), holidays="none", params=FAST, window_candidates=(None,))
    served = bundle.metadata()["served"]["24"]
    # on this trend the damped level x shape and the GBM err in opposite directions: their mix had about a
    # third of the GBM's validation MAE (measured 0.05 vs 0.17 kWh), far past the 10 % margin
    assert served in gbm.LEVEL_SERVED and bundle.metadata()["level_variant"]["24"] == "trend_mean"
    fc = predict(bundle, hist, start="2024-02-12 00:00", horizon=24)
    assert len(fc) == 24 and set(fc.method) == {served}
    assert (fc.p10 <= fc.p50).all() and (fc.p50 <= fc.p90).all()
