"""Rolling per-site conformal calibration of the P10/P90 band (models.calibration)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import features as fe
from models.backtest import BacktestConfig, run_backtest
from models.calibration import (GAMMA, GAMMA_LONG, HALF_LIFE_STEPS, OFFSET_CAP, adaptive_offsets, apply_offsets,
                                calibration_cut, conformal_quantile, conformity_scores, horizon_settings,
                                offset_from_quantile, rolling_offsets)
from models.forecast import predict, train
from models.gbm import served_band

from .conftest import FAST, make_series

TEN = np.array([0.3, -1.2, 2.5, 0.0, -0.4, 1.1, 4.0, -2.0, 0.7, 1.9])


def test_conformal_quantile_of_ten_scores_by_hand():
    # sorted: -2.0, -1.2, -0.4, 0.0, 0.3, 0.7, 1.1, 1.9, 2.5, 4.0
    # level 0.9: k = ceil(11 x 0.9) = ceil(9.9) = 10 -> the 10th smallest = 4.0
    assert conformal_quantile(TEN, 0.9) == 4.0
    # level 0.8: k = ceil(11 x 0.8) = ceil(8.8) = 9 -> 2.5; level 0.5: k = ceil(5.5) = 6 -> 0.7
    assert conformal_quantile(TEN, 0.8) == 2.5
    assert conformal_quantile(TEN, 0.5) == 0.7
    # 5 scores at 0.9: k = ceil(5.4) = 6 > 5 -> the largest (the widest band seen); NaN ignored, none -> NaN
    assert conformal_quantile(np.array([1.0, np.nan, 3.0, 2.0, 0.0, -1.0]), 0.9) == 3.0
    assert np.isnan(conformal_quantile(np.array([np.nan]), 0.9))


def test_scores_and_offsets_in_units_of_the_site_scale():
    # y = 12 with band [8, 10] and scale 4: lo = (8 - 12) / 4 = -1 (inside), hi = (12 - 10) / 4 = 0.5 (miss)
    lo, hi = conformity_scores(np.array([12.0]), np.array([8.0]), np.array([10.0]), np.array([4.0]))
    assert lo[0] == -1.0 and hi[0] == 0.5
    # add -0.5 to P10 and +0.25 to P90 in scales of 4: P10 8 - 2 = 6, P90 10 + 1 = 11; P50 9 unchanged
    p10, p90 = apply_offsets(np.array([8.0]), np.array([9.0]), np.array([10.0]), -0.5, 0.25, np.array([4.0]))
    assert (p10[0], p90[0]) == (6.0, 11.0)
    # a bound pushed across the P50 stops at it; the P10 never goes below 0
    p10, p90 = apply_offsets(np.array([1.0, 8.0]), np.array([2.0, 9.0]), np.array([3.0, 10.0]),
                             np.array([-1.0, 1.0]), np.array([-1.0, 0.0]), np.array([4.0, 4.0]))
    # row 0: P10 1 - 4 = -3 -> 0, P90 3 - 4 = -1 -> P50 2; row 1: P10 8 + 4 = 12 -> P50 9, P90 10
    assert list(p10) == [0.0, 9.0] and list(p90) == [2.0, 10.0]


def test_calibration_cut_is_the_end_of_the_last_complete_day():
    # hourly: issued at 23:00 of day 2 (index 71) -> 71 (its own day is complete); at 15:00 (63) -> 47
    assert list(calibration_cut(np.array([71, 63, 47, 48]), 24)) == [71, 47, 47, 47]
    assert list(calibration_cut(np.array([5]), 1)) == [5]                          # daily: the day it was issued on


def test_rolling_offsets_use_only_the_window_before_the_cut_and_the_site_pool():
    spd = 24
    # site 0: ten scores on day 0 (targets 0..9) with the hand-worked values TEN, and on day 2 (targets
    # 48..57) scores of 100 that a forecast issued on day 1 must not see
    t = np.concatenate([np.arange(10), 48 + np.arange(10)])
    s = np.zeros(20, int)
    lo = np.concatenate([-TEN, np.full(10, 100.0)])
    hi = np.concatenate([TEN, np.full(10, 100.0)])
    # issued at 23:00 of day 1 (index 47; cut 47): window (47 - 2 x 24, 47] holds targets 0..9 only
    add_p10, add_p90 = rolling_offsets(t, s, lo, hi, np.array([47]), np.array([0]), spd, window_days=2,
                                       min_site_scores=5)
    # P90: +Q_0.9(TEN) = +4.0; P10: lo = -TEN, its 10th smallest = 2.0 (= -(-2.0)), so P10 moves by -2.0
    assert (add_p10[0], add_p90[0]) == (-2.0, 4.0)
    # issued on day 3 at 23:00 (95): window (47, 95] holds only the day-2 scores -> +-100
    add_p10, add_p90 = rolling_offsets(t, s, lo, hi, np.array([95]), np.array([0]), spd, window_days=2,
                                       min_site_scores=5)
    assert (add_p10[0], add_p90[0]) == (-100.0, 100.0)
    # site 1 has 2 scores (< 5): it uses the pool of all sites' scores in its window (12 scores on day 0:
    # TEN plus site 1's 10.0 and 20.0; k = ceil(13 x 0.9) = 12 -> the largest, 20.0)
    t2 = np.concatenate([np.arange(10), [10, 11]])
    s2 = np.concatenate([np.zeros(10, int), [1, 1]])
    hi2 = np.concatenate([TEN, [10.0, 20.0]])
    _, add_p90 = rolling_offsets(t2, s2, -hi2, hi2, np.array([47, 47]), np.array([0, 1]), spd, window_days=2,
                                 min_site_scores=5)
    assert list(add_p90) == [4.0, 20.0]
    # no score in the window at all: raw band (offset 0)
    assert rolling_offsets(t, s, lo, hi, np.array([1000]), np.array([0]), spd, window_days=2)[1][0] == 0.0


def test_per_site_rolling_calibration_reaches_80_percent_on_known_noise():
    # two sites with Gaussian noise of sd 1 and 3 around a known level, and a raw band that is wrong for
    # both (level +- 0.5, i.e. +-0.5 sd for site A and +-1/6 sd for B). Calibrated per site on a rolling
    # 14-day window, each site's band is level +- 1.2816 sd and covers ~80 % of the next days' actuals
    rng = np.random.default_rng(1)
    spd, n_days = 24, 70
    n = spd * n_days
    sd = np.array([1.0, 3.0])
    y = 10.0 + rng.normal(0.0, 1.0, (n, 2)) * sd
    t_idx, s_idx = np.repeat(np.arange(n), 2), np.tile([0, 1], n)
    yy = y[t_idx, s_idx]
    p10, p50, p90 = np.full(len(yy), 9.5), np.full(len(yy), 10.0), np.full(len(yy), 10.5)
    scale = np.ones(len(yy))
    lo, hi = conformity_scores(yy, p10, p90, scale)
    add_p10, add_p90 = rolling_offsets(t_idx, s_idx, lo, hi, t_idx - 24, s_idx, spd)
    c10, c90 = apply_offsets(p10, p50, p90, add_p10, add_p90, scale)
    late = t_idx >= 20 * spd                                     # after the first window has filled
    for j in (0, 1):
        m = late & (s_idx == j)
        cover = np.mean((yy[m] >= c10[m]) & (yy[m] <= c90[m]))
        assert 0.77 <= cover <= 0.83, (j, cover)
        raw = np.mean((yy[m] >= p10[m]) & (yy[m] <= p90[m]))
        assert raw < 0.4                      # the raw band: 38 % (A), 13 % (B)
    # pooled over both sites (one offset for all) site A would be over- and site B under-covered
    pooled_p10, pooled_p90 = rolling_offsets(t_idx, np.zeros_like(s_idx), lo, hi, t_idx - 24,
                                             np.zeros_like(s_idx), spd)
    c10, c90 = apply_offsets(p10, p50, p90, pooled_p10, pooled_p90, scale)
    cover_a = np.mean(((yy >= c10) & (yy <= c90))[late & (s_idx == 0)])
    cover_b = np.mean(((yy >= c10) & (yy <= c90))[late & (s_idx == 1)])
    assert cover_a > 0.9 and cover_b < 0.7


def test_predict_uses_the_served_models_errors_after_its_training_end():
    # train on 35 days, then forecast day 42 from a history whose last week is the same series with its
    # noise tripled: the band must widen from what the validation fortnight alone gives
    df = make_series(n_days=42, sites=("A",))
    cut = pd.Timestamp("2023-01-02") + pd.Timedelta(days=35)
    bundle = train(df[df["ts"] < cut], freq="h", horizons=(24,), holidays="none", params=FAST, level=False)
    start = pd.Timestamp("2023-01-02") + pd.Timedelta(days=42)
    calm = predict(bundle, df, start=start, horizon=24)
    loud = df.copy()
    late = loud["ts"] >= cut
    base = loud.loc[late, "energy_kwh"].rolling(24, min_periods=1).mean()
    loud.loc[late, "energy_kwh"] = (base + 3.0 * (loud.loc[late, "energy_kwh"] - base)).clip(lower=0)
    wide = predict(bundle, loud, start=start, horizon=24)
    assert (wide["p90"] - wide["p10"]).mean() > 1.2 * (calm["p90"] - calm["p10"]).mean()
    # the history *at or after* start is never read: changing it changes nothing
    later = pd.concat([df, df.assign(ts=df["ts"] + pd.Timedelta(days=42), energy_kwh=99.0)])
    pd.testing.assert_frame_equal(predict(bundle, later, start=start, horizon=24), calm)


def test_served_band_of_a_model_is_its_raw_gbm_quantiles():
    p = fe.to_panel(make_series(n_days=35), "h")
    bundle = train(make_series(n_days=35), freq="h", horizons=(24,), holidays="none", params=FAST,
                   calibrate=False, level=False, fallback=False)
    model = bundle.models[24]
    F = fe.build_features(p, 24, bundle.config)
    t_idx, s_idx = np.arange(p.n_steps - 24, p.n_steps), np.zeros(24, int)
    b = served_band(model, F, t_idx, s_idx)
    raw = model.predict_frame(fe.gather(F, t_idx, s_idx), F["_scale"][t_idx, s_idx])
    assert np.allclose(b["p10"], raw["p10"]) and np.allclose(b["p90"], raw["p90"])
    assert model.residuals == {}                              # calibrate=False keeps no scores


NO = -np.inf          # a side that cannot miss (the actual is on the P50's other side)


def test_scores_of_a_side_that_cannot_miss_are_minus_infinity():
    # P10 2, P50 4, P90 7, scale 2. y = 1: lo = (2 - 1) / 2 = 0.5 (a miss below), hi: y <= P50 -> -inf.
    # y = 4 (= P50): neither bound, which stops at the P50, can be crossed: both -inf. y = 9: lo -inf,
    # hi = (9 - 7) / 2 = 1. y = 0 at an empty hour with P10 = P50 = P90 = 0: both -inf (a tie at 0 is
    # covered whatever the offsets). Unknown actual: NaN (ignored by the window).
    y = np.array([1.0, 4.0, 9.0, 0.0, np.nan])
    p10, p50, p90 = np.array([2.0, 2, 2, 0, 2]), np.array([4.0, 4, 4, 0, 4]), np.array([7.0, 7, 7, 0, 7])
    lo, hi = conformity_scores(y, p10, p90, np.array([2.0, 2, 2, 1, 2]), p50=p50)
    assert list(lo[:4]) == [0.5, NO, NO, NO] and list(hi[:4]) == [NO, NO, 1.0, NO]
    assert np.isnan(lo[4]) and np.isnan(hi[4])
    # 10 scores, 9 of them -inf: Q_0.9 = the 10th smallest = the one finite score; with all 10 -inf the
    # quantile is -inf and the offset moves the bound onto the P50 (capped, then clipped by apply_offsets)
    assert conformal_quantile(np.array([NO] * 9 + [0.25]), 0.9) == 0.25
    assert conformal_quantile(np.array([NO] * 10), 0.9) == NO
    p10_, p90_ = apply_offsets(np.array([1.0]), np.array([3.0]), np.array([5.0]),
                               -offset_from_quantile(NO), offset_from_quantile(NO), np.array([1.0]))
    assert (p10_[0], p90_[0]) == (3.0, 3.0)


def test_adaptive_level_narrows_after_hits_by_hand():
    # daily grid (spd 1), horizon 1: the score of target t is the forecast issued at t - 1 (cut t - 1);
    # one site, hi scores 0, -1, -1, -1 at t = 0..3, lo all -inf; gamma 1, alpha_side 0.1, query issued at 4.
    #   t=0: issued at -1, no score before it: raw band, no feedback.
    #   cut 0 (t=1): alpha 0.1, window {0}: k = min(1, ceil(2 x 0.9)) = 1 -> Q 0; score -1 <= 0: hit.
    #   cut 1 (t=2): alpha 0.1 + 1 x (0.1 - 0) = 0.2, window {0, -1}: k = min(2, ceil(3 x 0.8)) = 2 -> 0: hit.
    #   cut 2 (t=3): alpha 0.3, window {0, -1, -1}: k = ceil(4 x 0.7) = 3 -> 0: hit.
    #   cut 4 (query): alpha 0.4, window {0, -1, -1, -1}: k = ceil(5 x 0.6) = 3 -> -1: P90 moves down by 1.
    # plain rolling conformal (gamma 0): k = min(4, ceil(5 x 0.9)) = 4 -> 0. The lower side's scores are all
    # -inf (it cannot miss): Q_lo = -inf, P10 moves up to the P50 (offset +OFFSET_CAP).
    t, s = np.arange(4), np.zeros(4, int)
    hi, lo = np.array([0.0, -1, -1, -1]), np.full(4, NO)
    kw = dict(spd=1, horizon=1, window_days=100, min_site_scores=1, alpha_side=0.1)
    trace = {}
    add_p10, add_p90 = adaptive_offsets(t, s, lo, hi, np.array([4]), np.array([0]), gamma=1.0, trace=trace, **kw)
    assert add_p90[0] == -1.0 and add_p10[0] == OFFSET_CAP
    assert np.isnan(trace["miss_hi"][0]) and list(trace["miss_hi"][1:]) == [0.0, 0.0, 0.0]
    assert adaptive_offsets(t, s, lo, hi, np.array([4]), np.array([0]), gamma=0.0, **kw)[1][0] == 0.0


def test_adaptive_level_widens_after_misses_and_feeds_back_with_the_horizons_delay():
    # as above with alpha_side 0.5, gamma 0.25: hi scores 0, 1, 2, 3, 4 at t = 0..4 (each above the last)
    #   cut 0 (t=1): alpha 0.5, window {0}: k = 1 -> 0; score 1 > 0: miss.
    #   cut 1 (t=2): alpha 0.5 + 0.25 x (0.5 - 1) = 0.375, level 0.625, window {0, 1}: k = ceil(1.875) = 2 -> 1;
    #                score 2 > 1: miss.
    #   cut 2 (t=3): alpha 0.25, window {0, 1, 2}: k = ceil(4 x 0.75) = 3 -> 2; 3 > 2: miss.
    #   cut 3 (t=4): alpha 0.125, window {0..3}: k = min(4, ceil(4.375)) = 4 -> 3; 4 > 3: miss.
    #   cut 5 (query): alpha 0, level 1, window {0..4}: the largest, 4.  Plain (level 0.5): k = 3 -> 2.
    t, s = np.arange(5), np.zeros(5, int)
    hi, lo = np.arange(5.0), np.full(5, NO)
    kw = dict(spd=1, window_days=100, min_site_scores=1, alpha_side=0.5)
    trace = {}
    assert adaptive_offsets(t, s, lo, hi, np.array([5]), np.array([0]), horizon=1, gamma=0.25, trace=trace,
                            **kw)[1][0] == 4.0
    assert list(trace["miss_hi"][1:]) == [1.0, 1.0, 1.0, 1.0]
    assert adaptive_offsets(t, s, lo, hi, np.array([5]), np.array([0]), horizon=1, gamma=0.0, **kw)[1][0] == 2.0
    # horizon 3: the score of target t is the forecast issued at t - 3 (cut t - 3), known only from cut t on.
    #   t=0..2: issued at -3..-1, no window: raw, no feedback. cut 0 (t=3): alpha 0.5, window {0}: Q 0, 3 > 0
    #   miss. cut 1 (t=4): target 3 not yet known (3 > 1): alpha still 0.5, window {0, 1}: k = ceil(1.5) = 2
    #   -> 1; 4 > 1 miss. cut 5 (query): both misses fed: alpha 0.25, level 0.75, window {0..4}:
    #   k = ceil(6 x 0.75) = 5 -> 4.  A query issued at 3 (cut 3): only t=3's miss is known (t=4 > 3):
    #   alpha 0.375, level 0.625, window {0..3}: k = ceil(5 x 0.625) = 4 -> 3.
    trace = {}
    add = adaptive_offsets(t, s, lo, hi, np.array([5, 3]), np.array([0, 0]), horizon=3, gamma=0.25, trace=trace,
                           **kw)[1]
    assert list(add) == [4.0, 3.0]
    assert np.isnan(trace["miss_hi"][:3]).all() and list(trace["miss_hi"][3:]) == [1.0, 1.0]


@pytest.mark.parametrize("H", [24, 168])
def test_adaptive_offsets_never_use_an_actual_after_the_issue_time(H):
    """Leakage: for every issue hour over two days, every score whose target lies after the forecast's
    calibration cut (unknown when it was issued) is set to an extreme value; the offsets of that forecast
    must not change. The same change to scores at or before the cut must change some of them. At 168 h
    with the week-ahead settings (recency weights relative to the cut)."""
    rng = np.random.default_rng(3)
    spd, n_days = 24, 30
    kw = dict(gamma=0.05, half_life_steps=horizon_settings(H, spd)["half_life_steps"])
    t = np.repeat(np.arange(spd * n_days), 2)
    s = np.tile([0, 1], spd * n_days)
    y = rng.gamma(2.0, 1.0, len(t)) * (1 + s)
    p10, p50, p90 = np.full(len(t), 0.8), np.full(len(t), 2.0), np.full(len(t), 4.0) * (1 + s)
    lo, hi = conformity_scores(y, p10, p90, np.ones(len(t)), p50=p50)
    issue = np.arange(spd * 20, spd * 22)
    q_s = np.zeros(len(issue), int)
    base = adaptive_offsets(t, s, lo, hi, issue, q_s, spd, horizon=H, **kw)
    changed_any = False
    for k, i in enumerate(issue):
        cut = calibration_cut(np.array([i]), spd)[0]
        later = t > cut
        lo2, hi2 = np.where(later, 1e6, lo), np.where(later, 1e6, hi)
        a10, a90 = adaptive_offsets(t, s, lo2, hi2, issue[k:k + 1], q_s[k:k + 1], spd, horizon=H, **kw)
        assert (a10[0], a90[0]) == (base[0][k], base[1][k]), i
        recent = (t <= cut) & (t > cut - 3 * spd)
        lo3, hi3 = np.where(recent, 1e6, lo), np.where(recent, 1e6, hi)
        b10, b90 = adaptive_offsets(t, s, lo3, hi3, issue[k:k + 1], q_s[k:k + 1], spd, horizon=H, **kw)
        changed_any |= (b10[0], b90[0]) != (base[0][k], base[1][k])
    assert changed_any


def test_backtest_interval_does_not_see_an_actual_after_its_issue_time():
    """Leakage, end to end: one actual in the test window set to an extreme value changes no P10/P50/P90 of a
    forecast issued before it was observed; the bands of later forecasts (calibrated on it) do change."""
    df = make_series(n_days=42)
    p = fe.to_panel(df, "h")
    cfg = BacktestConfig(horizon=24, test_fraction=0.25, refit_every=24 * 4, params=dict(FAST, max_iter=12),
                         features=fe.FeatureConfig(holidays="none", level_shape=False), window_candidates=(None,),
                         level=False)
    pred1, _ = run_backtest(p, cfg)
    T = pred1.ts.sort_values().unique()[len(pred1.ts.unique()) // 3]
    q = p.copy()
    ti = int(np.searchsorted(q.index, T))
    q.y[ti, 0] = 1e4
    pred2, _ = run_backtest(q, cfg)
    before = pred1.issued_at < T
    cols = ["p10", "p50", "p90"]
    pd.testing.assert_frame_equal(pred1.loc[before, cols], pred2.loc[before, cols])
    # the site's bands issued once T's day is complete (its score is in their window) are wider
    later = (pred1.site_id == "A") & (pred1.issued_at >= T.normalize() + pd.Timedelta(hours=23))
    assert (pred2.loc[later, "p90"] - pred2.loc[later, "p10"]).mean() > \
        (pred1.loc[later, "p90"] - pred1.loc[later, "p10"]).mean()


def test_weighted_conformal_quantile_by_hand():
    # scores 0..5 with weights 1/32, 1/16, 1/8, 1/4, 1/2, 1 (a half-life of one step, score 5 the newest):
    # total W = 63/32 = 1.96875; level 0.5 needs a cumulative weight of 0.5 x (W + 1) = 1.484375.
    # Sorted ascending the cumulative weights are 0.03125, 0.09375, 0.21875, 0.46875, 0.96875, 1.96875:
    # first reached at score 5. Unweighted: k = ceil(7 x 0.5) = 4 -> 3.
    s = np.arange(6.0)
    w = 0.5 ** (5 - np.arange(6))
    assert conformal_quantile(s, 0.5, w) == 5.0
    assert conformal_quantile(s, 0.5) == 3.0
    # the same weights on reversed scores (the newest is 0): cumulative 1, 1.5, ... -> 1.5 >= 1.484375 at 1
    assert conformal_quantile(s[::-1].copy(), 0.5, w) == 1.0
    # all weights 1 give the unweighted rule (TEN, level 0.9 and 0.8: 4.0 and 2.5); never reached -> the
    # largest (level 0.99: 0.99 x 11 = 10.89 > 10); NaN scores and their weights are ignored
    assert conformal_quantile(TEN, 0.9, np.ones(10)) == 4.0 and conformal_quantile(TEN, 0.8, np.ones(10)) == 2.5
    assert conformal_quantile(TEN, 0.99, np.ones(10)) == 4.0
    assert conformal_quantile(np.array([np.nan, 1.0, 2.0]), 0.5, np.array([100.0, 1.0, 1.0])) == 2.0


def test_week_ahead_settings_weight_recent_scores():
    # hourly: 168 h (7 days) uses the recency weights and the larger step, 24 h the plain window;
    # daily grid: 7 steps is a week
    assert horizon_settings(168, 24) == {"gamma": GAMMA_LONG, "half_life_steps": HALF_LIFE_STEPS}
    assert horizon_settings(24, 24) == horizon_settings(167, 24) == {"gamma": GAMMA, "half_life_steps": None}
    assert horizon_settings(7, 1)["half_life_steps"] == HALF_LIFE_STEPS and horizon_settings(6, 1)["gamma"] == GAMMA
    # daily grid, one site, horizon 1, hi scores 0..5 at t = 0..5, query issued at 5 (cut 5), fixed level
    # 0.5 (gamma 0): with a half-life of 1 step the weights are 2^-(5 - t), the hand-worked case above -> 5;
    # without weights -> 3
    t, s = np.arange(6), np.zeros(6, int)
    kw = dict(spd=1, horizon=1, window_days=100, min_site_scores=1, alpha_side=0.5, gamma=0.0)
    lo = np.full(6, NO)
    hi = np.arange(6.0)
    assert adaptive_offsets(t, s, lo, hi, np.array([5]), np.array([0]), half_life_steps=1, **kw)[1][0] == 5.0
    assert adaptive_offsets(t, s, lo, hi, np.array([5]), np.array([0]), **kw)[1][0] == 3.0
    # the weights are relative to the query's cut: issued at 7 (cut 7), t = 5 weighs 1/4, t = 0 1/128;
    # W = 63/128, target 0.5 x (W + 1) = 0.746 > W: never reached -> the largest, 5
    assert adaptive_offsets(t, s, lo, hi, np.array([7]), np.array([0]), half_life_steps=1, **kw)[1][0] == 5.0


def test_week_ahead_settings_keep_80_percent_on_known_noise():
    # the noise of test_per_site_rolling_calibration_reaches_80_percent_on_known_noise, forecast 168 h ahead
    # with the week-ahead settings: the recency weights do not move a stationary band's cover off 80 %
    # (measured 0.80 and 0.82 for the two sites)
    rng = np.random.default_rng(1)
    spd, n_days, H = 24, 70, 168
    n = spd * n_days
    y = 10.0 + rng.normal(0.0, 1.0, (n, 2)) * np.array([1.0, 3.0])
    t_idx, s_idx = np.repeat(np.arange(n), 2), np.tile([0, 1], n)
    yy = y[t_idx, s_idx]
    p10, p50, p90 = np.full(len(yy), 9.5), np.full(len(yy), 10.0), np.full(len(yy), 10.5)
    scale = np.ones(len(yy))
    lo, hi = conformity_scores(yy, p10, p90, scale, p50=p50)
    a10, a90 = adaptive_offsets(t_idx, s_idx, lo, hi, t_idx - H, s_idx, spd, horizon=H, **horizon_settings(H, spd))
    c10, c90 = apply_offsets(p10, p50, p90, a10, a90, scale)
    late = t_idx >= 20 * spd
    for j in (0, 1):
        m = late & (s_idx == j)
        assert 0.77 <= np.mean((yy[m] >= c10[m]) & (yy[m] <= c90[m])) <= 0.83
